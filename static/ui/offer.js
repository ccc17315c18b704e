// Offers nobody misses: a modal dialog over whatever screen is open (the rooms included), with
// a countdown, the patient, Accept and Decline with a reason; a ring repeated until the offer is
// answered or gone; each new offer announced to screen readers. When an offer lapsed and the
// server set the specialist away, ask whether they are still on duty instead of going quiet.
import { errorNode } from "/static/ui/dom.js";

const RING_EVERY_MS = 2500;
const MISSED_WINDOW_MS = 8000; // an "away" this soon after an offer lapsed is that offer's doing

// The ring: two short tones through WebAudio. The context is made at sign-in (a user gesture)
// so the browser lets it sound later without one.
export class Ringer {
  constructor() {
    this.audio = null;
    this.timer = null;
  }

  unlock() {
    try {
      this.audio ??= new AudioContext();
      this.audio.resume?.();
    } catch (e) {
      /* no sound device */
    }
  }

  tone(frequency, at, length = 0.18) {
    const osc = this.audio.createOscillator();
    const gain = this.audio.createGain();
    osc.frequency.value = frequency;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(this.audio.destination);
    osc.start(this.audio.currentTime + at);
    osc.stop(this.audio.currentTime + at + length);
  }

  chime() {
    try {
      this.unlock();
      this.tone(660, 0);
      this.tone(880, 0.22);
    } catch (e) {
      /* no sound device */
    }
  }

  start() {
    if (this.timer) return;
    this.chime();
    this.timer = setInterval(() => this.chime(), RING_EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }
}

// `ctx`: { h, t, connection, announce, specialtyName, ringer, onAccepted(consult) }.
export class OfferDesk {
  constructor(ctx) {
    this.ctx = ctx;
    this.lapsed = 0; // when an offer we held last ran out
    this.drafts = new Map(); // consult id -> decline reason being typed (kept across redraws)
    this.shown = new Map(); // consult id -> expiry (ms) of the offers on screen
    this.answered = new Set(); // offers this device accepted or declined
    this.hidden = new Set(); // declined here: closed before the server's update arrives
    this.dialog = ctx.h("dialog", { class: "offer-dialog", "aria-labelledby": "offer-title" });
    this.dialog.addEventListener("cancel", (e) => e.preventDefault()); // Escape does not hide an offer
    this.duty = ctx.h("dialog", { class: "duty-dialog", "aria-labelledby": "duty-title" });
    document.body.append(this.dialog, this.duty);
    this.listeners = {
      offer: ({ consult }) => {
        this.announce(consult);
        this.draw();
      },
      // Gone unanswered at its expiry (not taken, declined or cancelled): it lapsed.
      "offer-gone": ({ consult_id: id }) => {
        const expires = this.shown.get(id);
        if (expires && !this.answered.has(id) && expires - Date.now() < 2000) this.lapsed = Date.now();
        this.draw();
      },
      consult: () => this.draw(),
      state: () => this.draw(),
      presence: ({ presence, reason }) => this.presenceChanged(presence, reason),
    };
    for (const [name, fn] of Object.entries(this.listeners)) ctx.connection.on(name, fn);
    this.timer = setInterval(() => this.tick(), 1000);
    this.draw();
  }

  offers() {
    const now = Date.now();
    return [...(this.ctx.connection.state.offers?.values() || [])]
      .filter((o) => new Date(o.expires_at).getTime() > now - 1000 && !this.hidden.has(o.consult.id))
      .sort((a, b) => a.expires_at.localeCompare(b.expires_at));
  }

  announce(consult) {
    const { t, specialtyName } = this.ctx;
    const text = t("offer.announce", {
      urgency: t(`urgency.${consult.urgency}`),
      specialty: specialtyName(consult.specialty),
      ref: consult.patient?.ref || "",
    });
    this.ctx.announce(text);
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      try {
        new Notification(t("offer.title"), { body: text, tag: consult.id });
      } catch (e) {
        /* not allowed here */
      }
    }
  }

  // Seconds left on each visible countdown; an offer whose time ran out closes by itself.
  tick() {
    let gone = false;
    for (const el of this.dialog.querySelectorAll("[data-expires]")) {
      const left = Math.round((new Date(el.dataset.expires).getTime() - Date.now()) / 1000);
      el.textContent = this.ctx.t("offer.expires", { s: Math.max(0, left) });
      if (left < 0) gone = true;
    }
    if (gone) {
      this.lapsed = Date.now();
      this.draw();
    }
  }

  draw() {
    const { h, t } = this.ctx;
    const offers = this.offers();
    for (const o of offers) this.shown.set(o.consult.id, new Date(o.expires_at).getTime());
    for (const id of [...this.drafts.keys()]) if (!offers.some((o) => o.consult.id === id)) this.drafts.delete(id);
    if (!offers.length) {
      this.ctx.ringer.stop();
      if (this.dialog.open) this.dialog.close();
      this.dialog.replaceChildren();
      return;
    }
    const focused =
      document.activeElement && this.dialog.contains(document.activeElement) ? document.activeElement.name : null;
    this.dialog.replaceChildren(
      h("h2", { id: "offer-title" }, t(offers.length > 1 ? "offer.title_many" : "offer.title", { n: offers.length })),
      ...offers.map((o) => this.card(o)),
    );
    if (!this.dialog.open) this.dialog.showModal();
    if (focused) this.dialog.querySelector(`[name="${focused}"]`)?.focus();
    this.ctx.ringer.start();
  }

  card({ consult: c, expires_at }) {
    const { h, t, connection, specialtyName } = this.ctx;
    const slot = h("div", { class: "field-error" });
    const reasonId = `decline-reason-${c.id}`;
    const reason = h("input", {
      id: reasonId,
      name: `reason-${c.id}`,
      maxlength: 500,
      value: this.drafts.get(c.id) || "",
      oninput: () => this.drafts.set(c.id, reason.value),
    });
    const left = Math.max(0, Math.round((new Date(expires_at).getTime() - Date.now()) / 1000));
    const busy = (on) => {
      for (const b of card.querySelectorAll("button")) b.disabled = on;
    };
    const accept = h(
      "button",
      {
        type: "button",
        class: "accept",
        onclick: async () => {
          slot.replaceChildren();
          busy(true);
          this.answered.add(c.id);
          try {
            const { consult } = await connection.request("consult:accept", { consult_id: c.id });
            this.draw();
            this.ctx.onAccepted(consult);
          } catch (error) {
            slot.replaceChildren(errorNode(t, error));
            busy(false);
          }
        },
      },
      t("action.accept"),
    );
    const decline = h(
      "button",
      {
        type: "button",
        class: "secondary decline",
        onclick: async () => {
          slot.replaceChildren();
          busy(true);
          this.answered.add(c.id);
          try {
            await connection.request("consult:decline", {
              consult_id: c.id,
              ...(reason.value.trim() ? { reason: reason.value.trim() } : {}),
            });
            this.hidden.add(c.id); // the server tells the others; this device closes the card now
            this.draw();
          } catch (error) {
            slot.replaceChildren(errorNode(t, error));
            busy(false);
          }
        },
      },
      t("action.decline"),
    );
    const patient = [
      c.patient?.ref,
      c.patient?.age != null ? t("offer.age", { age: c.patient.age }) : null,
      c.patient?.sex ? t(`sex.${c.patient.sex}`) : null,
    ]
      .filter(Boolean)
      .join(" · ");
    // The classes keep the knock of the earlier offer card: seen, not only heard.
    const card = h(
      "div",
      {
        class: `card offer ${c.urgency} knocking`,
        "data-consult": c.id,
        role: "group",
        "aria-label": t("offer.title"),
      },
      h(
        "div",
        { class: "offer-head" },
        h("strong", { class: `urgency ${c.urgency}` }, t(`urgency.${c.urgency}`)),
        h("span", {}, ` — ${specialtyName(c.specialty)}`),
        h("span", { class: "countdown", "data-expires": expires_at, role: "timer" }, t("offer.expires", { s: left })),
      ),
      h("div", { class: "offer-patient" }, patient),
      h("div", { class: "muted" }, `${c.requester?.name || ""} — ${c.requester?.hospital?.name || ""}`),
      c.patient?.summary ? h("p", { class: "offer-summary" }, c.patient.summary) : null,
      // Without the patient's consent to the consult (an emergency, or withdrawn), said before Accept.
      c.consent?.scopes?.includes("consult")
        ? null
        : h(
            "p",
            { class: "offer-no-consent" },
            t("offer.no_consent") + (c.consent_waived_reason ? ` — ${c.consent_waived_reason}` : ""),
          ),
      h(
        "div",
        { class: "offer-actions" },
        accept,
        h("div", { class: "field decline-reason" }, h("label", { for: reasonId }, t("offer.reason")), reason),
        decline,
      ),
      slot,
    );
    return card;
  }

  presenceChanged(presence, reason) {
    this.draw();
    // Without the server's reason: away just as an offer on screen ran out, unanswered.
    const now = Date.now();
    const running = [...this.shown].some(([id, expires]) => !this.answered.has(id) && Math.abs(expires - now) < 3000);
    const missed =
      reason === "offer_missed" || (presence?.status === "away" && (running || now - this.lapsed < MISSED_WINDOW_MS));
    if (missed) this.askStillOnDuty();
    else if (presence?.status === "available" && this.duty.open) this.duty.close();
  }

  // "Are you still on duty?": one button sets available again; the other leaves it away.
  askStillOnDuty() {
    const { h, t, connection } = this.ctx;
    const slot = h("div", { class: "field-error" });
    this.duty.replaceChildren(
      h("h2", { id: "duty-title" }, t("offer.still_on_duty")),
      h("p", {}, t("offer.missed_explain")),
      h(
        "div",
        { class: "row" },
        h(
          "button",
          {
            type: "button",
            class: "still-here",
            onclick: async () => {
              try {
                await connection.request("presence:set", { status: "available" });
                this.duty.close();
                this.ctx.onPresence?.(); // the ack moved the state; the screens showing it redraw
              } catch (error) {
                slot.replaceChildren(errorNode(t, error));
              }
            },
          },
          t("offer.still_here"),
        ),
        h(
          "button",
          { type: "button", class: "secondary stay-away", onclick: () => this.duty.close() },
          t("offer.stay_away"),
        ),
      ),
      slot,
    );
    this.ctx.announce(t("offer.still_on_duty"));
    if (!this.duty.open) this.duty.showModal();
  }

  redraw() {
    this.draw();
    if (this.duty.open) this.askStillOnDuty();
  }

  close() {
    this.ctx.ringer.stop();
    clearInterval(this.timer);
    for (const [name, fn] of Object.entries(this.listeners)) this.ctx.connection.off(name, fn);
    this.dialog.remove();
    this.duty.remove();
  }
}

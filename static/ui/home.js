// The home screen of clinicians and specialists: the request form (clinicians), the presence
// switch (specialists), their open consults, and the week's ward rounds. Kept for the whole
// sign-in so what is being typed survives every redraw; rebuilt on a language change.
import { AppFailure, errorNode } from "/static/ui/dom.js";
import { patientProblems } from "/static/ui/identity.js";

const URGENCIES = ["routine", "urgent", "emergency"];
const OPEN = ["queued", "offered", "active"];

// The seconds since an instant, as m:ss (or h:mm:ss), for the ticking wait on a card.
export function elapsed(since, now = Date.now()) {
  const s = Math.max(0, Math.floor((now - new Date(since).getTime()) / 1000));
  const two = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(s / 3600);
  return hours ? `${hours}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}` : `${Math.floor(s / 60)}:${two(s % 60)}`;
}

// `ctx`: { h, t, when, api, connection, user, say, announce, specialtyName, specialties,
//          openRoom(consult), rounds (the RoundsList element or null), onFlash(text or () => text) }.
export class Home {
  constructor(ctx) {
    this.ctx = ctx;
    this.statuses = new Map(); // consult id -> last status seen, to notice an accept
    this.element = ctx.h("div", { class: "home" });
    this.cards = ctx.h("section", { class: "mine", "aria-labelledby": "mine-title" });
    this.presence = ctx.user.role === "specialist" ? ctx.h("section", { class: "presence" }) : null;
    this.form = ctx.user.role === "clinician" ? this.requestForm() : null;
    for (const c of this.open()) this.statuses.set(c.id, c.status);
    this.timer = setInterval(() => this.tick(), 1000);
    this.draw();
  }

  open() {
    const { connection, user } = this.ctx;
    return [...(connection.state.consults?.values() || [])].filter(
      (c) =>
        c.kind !== "round" &&
        OPEN.includes(c.status) &&
        (c.requester?.id === user.id || c.specialist?.id === user.id || c.status !== "active"),
    );
  }

  // A consult changed (an event or a fresh session:state): an accepted request of ours is told
  // with a sound and the tab's title, so it is noticed from another tab too.
  consultChanged(consult) {
    const before = this.statuses.get(consult.id);
    this.statuses.set(consult.id, consult.status);
    if (consult.status === "active" && before && before !== "active" && consult.requester?.id === this.ctx.user.id) {
      const values = { name: consult.specialist?.name || "", ref: consult.patient?.ref || "" };
      this.ctx.announce(this.ctx.t("mine.accepted", values));
      // The title flashes for a while: in the page's language of the moment, toggled meanwhile too.
      this.ctx.onFlash?.(() => this.ctx.t("mine.accepted", values));
    }
    this.drawCards();
  }

  draw() {
    const { h, t, rounds } = this.ctx;
    this.drawPresence();
    this.drawCards();
    const precall = h(
      "p",
      { class: "precall-link" },
      h(
        "a",
        {
          href: "#/",
          class: "precall",
          onclick: (e) => {
            e.preventDefault();
            this.ctx.onCheck?.();
          },
        },
        t("precall.link"),
      ),
    );
    this.element.replaceChildren(
      ...[this.presence, this.form, this.cards, rounds?.() || null, precall].filter(Boolean),
    );
  }

  drawPresence() {
    if (!this.presence) return;
    const { h, t, connection } = this.ctx;
    const status = connection.state.presence?.status || "away";
    const slot = h("div", { class: "field-error" });
    const select = h(
      "select",
      {
        id: "presence-select",
        name: "presence",
        onchange: async () => {
          slot.replaceChildren();
          try {
            await connection.request("presence:set", { status: select.value });
          } catch (error) {
            slot.replaceChildren(errorNode(t, error));
            select.value = status;
          }
        },
      },
      ["available", "busy", "away"].map((s) => h("option", { value: s, selected: status === s }, t(`presence.${s}`))),
    );
    this.presence.replaceChildren(
      h("h2", {}, t("presence.title")),
      h("label", { for: "presence-select" }, t("presence.label")),
      select,
      slot,
    );
  }

  tick() {
    if (!this.element.isConnected) return;
    for (const el of this.element.querySelectorAll("[data-since]")) {
      el.textContent = this.ctx.t("mine.waited", { time: elapsed(el.dataset.since) });
    }
  }

  drawCards() {
    const { h, t } = this.ctx;
    const items = this.open()
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
      .map((c) => this.card(c));
    this.cards.replaceChildren(
      h("h2", { id: "mine-title" }, t("mine.title")),
      items.length ? h("div", { class: "cards" }, items) : h("p", { class: "muted" }, t("mine.none")),
      h("p", {}, h("a", { href: "#/history", class: "history-link" }, t("history.link"))),
    );
  }

  card(c) {
    const { h, t, connection, user, specialtyName } = this.ctx;
    const mine = c.requester?.id === user.id;
    const slot = h("div", { class: "field-error" });
    const act = (event) => async () => {
      slot.replaceChildren();
      try {
        await connection.request(event, { consult_id: c.id });
      } catch (error) {
        slot.replaceChildren(errorNode(t, error));
      }
    };
    const lines = [
      h("strong", {}, `${c.patient.ref} — ${specialtyName(c.specialty)} — ${t(`urgency.${c.urgency}`)}`),
      h("div", { class: "status", "data-status": c.status }, t(`status.${c.status}`)),
    ];
    const waiting = ["queued", "offered"].includes(c.status);
    if (waiting)
      lines.push(
        h("div", { class: "waited", "data-since": c.created_at }, t("mine.waited", { time: elapsed(c.created_at) })),
      );
    if (c.queue_position)
      lines.push(h("div", { class: "queue-position" }, t("queue.position", { n: c.queue_position })));
    if (waiting && mine && c.online_specialists != null) {
      lines.push(
        h(
          "div",
          { class: "online-specialists" },
          t("mine.online", { n: c.online_specialists, specialty: specialtyName(c.specialty) }),
        ),
      );
    }
    // Who let the offer lapse, and who said no and why: the latest of each, newest last.
    const missed = (c.unanswered || []).at(-1);
    if (waiting && missed && !c.named_answer)
      lines.push(h("div", { class: "unanswered" }, t("mine.unanswered", { name: missed.by?.name || "" })));
    for (const d of (c.declines || []).slice(-2)) {
      lines.push(
        h(
          "div",
          { class: "decline" },
          d.reason
            ? t("mine.declined_reason", { name: d.by?.name || "", reason: d.reason })
            : t("mine.declined", { name: d.by?.name || "" }),
        ),
      );
    }
    if (c.named_answer) {
      lines.push(
        h(
          "div",
          { class: "named-answer" },
          t(`named.${c.named_answer}`),
          " ",
          h("button", { type: "button", class: "widen", onclick: act("consult:widen") }, t("action.widen")),
        ),
      );
    }
    if (c.specialist)
      lines.push(h("div", { class: "muted" }, `${c.specialist.name} — ${c.specialist.hospital?.name || ""}`));
    const actions = h("div", { class: "row" });
    if (waiting && mine)
      actions.append(
        h("button", { type: "button", class: "secondary cancel", onclick: act("consult:cancel") }, t("action.cancel")),
      );
    if (c.status === "active")
      actions.append(
        h("button", { type: "button", class: "join", onclick: () => this.ctx.openRoom(c) }, t("action.join")),
      );
    return h("div", { class: `card ${c.urgency}`, "data-consult": c.id }, lines, actions, slot);
  }

  // The request form; the named-specialist list follows the chosen specialty.
  requestForm() {
    const { h, t, api, connection, specialties } = this.ctx;
    const field = (id, label, control) => h("div", { class: "field" }, h("label", { for: id }, label), control);
    const specialty = h(
      "select",
      { id: "req-specialty", name: "specialty" },
      specialties.map((s) => h("option", { value: s.code }, this.ctx.specialtyName(s.code))),
    );
    const urgency = h(
      "select",
      { id: "req-urgency", name: "urgency" },
      URGENCIES.map((u) => h("option", { value: u }, t(`urgency.${u}`))),
    );
    const ref = h("input", { id: "req-ref", name: "ref", required: true, maxlength: 64, autocomplete: "off" });
    const summary = h("textarea", { id: "req-summary", name: "summary", rows: 3, maxlength: 2000 });
    const age = h("input", { id: "req-age", name: "age", type: "number", min: 0, max: 130, inputmode: "numeric" });
    const sex = h(
      "select",
      { id: "req-sex", name: "sex" },
      h("option", { value: "" }, "—"),
      ["male", "female", "other", "unknown"].map((s) => h("option", { value: s }, t(`sex.${s}`))),
    );
    // The patient's identity (Công văn 7946/BYT-KCB: identify the patient in the software).
    const text = (id, extra = {}) => h("input", { id, name: id.slice(4), autocomplete: "off", ...extra });
    const name = text("req-name", { maxlength: 200 });
    const birthDate = text("req-birth_date", { type: "date", min: "1900-01-01" });
    const nationalId = text("req-national_id", { inputmode: "numeric", maxlength: 12, pattern: "[0-9]{12}" });
    const insuranceId = text("req-insurance_id", { maxlength: 15 });
    const address = text("req-address", { maxlength: 300 });
    const identity = h(
      "fieldset",
      { class: "identity" },
      h("legend", {}, t("identity.title")),
      field("req-name", t("identity.name"), name),
      h(
        "div",
        { class: "row" },
        field("req-birth_date", t("identity.birth_date"), birthDate),
        field("req-national_id", t("identity.national_id"), nationalId),
        field("req-insurance_id", t("identity.insurance_id"), insuranceId),
      ),
      field("req-address", t("identity.address"), address),
    );
    // The patient's consent, in plain words: who gave it, how, to what; for an emergency without
    // it, why it could not be had.
    const consented = h("input", { id: "req-consent", name: "consent", type: "checkbox" });
    const recording = h("input", { id: "req-consent-recording", name: "consent_recording", type: "checkbox" });
    const givenBy = h(
      "select",
      { id: "req-given_by", name: "given_by" },
      ["patient", "relative", "guardian"].map((g) => h("option", { value: g }, t(`consent.given_by.${g}`))),
    );
    const relation = text("req-relation", { maxlength: 100 });
    const method = h(
      "select",
      { id: "req-method", name: "method" },
      ["verbal", "written", "electronic"].map((m) => h("option", { value: m }, t(`consent.method.${m}`))),
    );
    const waiver = h("textarea", { id: "req-waiver", name: "consent_waived_reason", rows: 2, maxlength: 500 });
    const waiverField = field("req-waiver", t("consent.waiver"), waiver);
    const check = (id, label, control) =>
      h("div", { class: "field check" }, control, h("label", { for: id }, label));
    const consent = h(
      "fieldset",
      { class: "consent" },
      h("legend", {}, t("consent.title")),
      check("req-consent", t("consent.given"), consented),
      h(
        "div",
        { class: "row" },
        field("req-given_by", t("consent.given_by"), givenBy),
        field("req-relation", t("consent.relation"), relation),
        field("req-method", t("consent.method"), method),
      ),
      check("req-consent-recording", t("consent.recording"), recording),
      waiverField,
    );
    const showWaiver = () => {
      waiverField.hidden = urgency.value !== "emergency" || consented.checked;
    };
    urgency.addEventListener("change", showWaiver);
    consented.addEventListener("change", showWaiver);
    showWaiver();
    const named = h("select", { id: "req-named", name: "specialist" }, h("option", { value: "" }, t("request.anyone")));
    const rosterError = h("div", { class: "field-error" });
    const fillRoster = async () => {
      rosterError.replaceChildren();
      try {
        const { specialists } = await api(`/api/roster?specialty=${encodeURIComponent(specialty.value)}`);
        const chosen = named.value;
        // replaceChildren takes nodes one by one: spread the list (an array would become text).
        named.replaceChildren(
          h("option", { value: "" }, t("request.anyone")),
          ...specialists.map((s) => {
            const state = s.presence?.online ? t(`presence.${s.presence.status}`) : t("presence.offline");
            return h(
              "option",
              { value: s.id, selected: s.id === chosen },
              `${s.name} — ${s.hospital?.name || ""} (${state})`,
            );
          }),
        );
      } catch (error) {
        rosterError.replaceChildren(errorNode(t, error));
      }
    };
    specialty.addEventListener("change", fillRoster);
    named.addEventListener("focus", fillRoster, { once: true }); // fresh presence when first opened
    fillRoster();
    const formError = h("div", { class: "field-error" });
    const submit = h("button", { type: "submit" }, t("request.submit"));
    const form = h(
      "form",
      {
        class: "request-form",
        "aria-labelledby": "request-title",
        onsubmit: async (e) => {
          e.preventDefault();
          formError.replaceChildren();
          const patient = { ref: ref.value.trim(), summary: summary.value };
          if (age.value) patient.age = Number(age.value);
          if (sex.value) patient.sex = sex.value;
          const typed = {
            name: name.value.trim(),
            birth_date: birthDate.value,
            national_id: nationalId.value.trim(),
            insurance_id: insuranceId.value.trim().toUpperCase(),
            address: address.value.trim(),
          };
          for (const [key, value] of Object.entries(typed)) if (value) patient[key] = value;
          const payload = { specialty: specialty.value, urgency: urgency.value, patient };
          if (named.value) payload.specialist_id = named.value;
          const refuse = (key) => formError.replaceChildren(errorNode(t, new AppFailure("invalid", t(key))));
          const problem = patientProblems(patient)[0];
          if (problem) return refuse(problem[1]);
          if (consented.checked) {
            if (givenBy.value !== "patient" && !relation.value.trim()) return refuse("consent.relation_needed");
            payload.consent = {
              given_by: givenBy.value,
              method: method.value,
              scopes: recording.checked ? ["consult", "recording"] : ["consult"],
            };
            if (relation.value.trim()) payload.consent.relation = relation.value.trim();
          } else if (urgency.value === "emergency") {
            if (!waiver.value.trim()) return refuse("consent.waiver_needed");
            payload.consent_waived_reason = waiver.value.trim();
          } else {
            return refuse("consent.needed");
          }
          submit.disabled = true;
          try {
            await connection.write("consult:request", payload);
            ref.value = "";
            summary.value = "";
            age.value = "";
            sex.value = "";
            for (const input of [name, birthDate, nationalId, insuranceId, address, relation, waiver]) input.value = "";
            consented.checked = false;
            recording.checked = false;
            givenBy.value = "patient";
            showWaiver();
            this.ctx.announce(t("request.sent"));
          } catch (error) {
            formError.replaceChildren(errorNode(t, error));
          } finally {
            submit.disabled = false;
          }
        },
      },
      h("h2", { id: "request-title" }, t("request.title")),
      h(
        "div",
        { class: "row" },
        field("req-specialty", t("request.specialty"), specialty),
        field("req-urgency", t("request.urgency"), urgency),
      ),
      field("req-ref", t("request.ref"), ref),
      field("req-summary", t("request.summary"), summary),
      h("div", { class: "row" }, field("req-age", t("request.age"), age), field("req-sex", t("request.sex"), sex)),
      identity,
      consent,
      field("req-named", t("request.named"), named),
      rosterError,
      formError,
      submit,
    );
    return h("section", { class: "request" }, form);
  }

  close() {
    clearInterval(this.timer);
  }
}

// The round room: one call for the whole ward round, on the same stage as a consult's, while the
// focus moves from bed to bed; each patient's notes, attachments and decision are on their own
// consult. Built from data with h() only: whatever users typed is always textContent.
import { Attachments } from "/static/ui/attachments.js";
import { CallRoom } from "/static/ui/callroom.js";
import { AppFailure, errorNode, retranslate, tx } from "/static/ui/dom.js";
import { consentText } from "/static/ui/consent.js";
import { listedPatientDetails } from "/static/ui/listedpatient.js";
import { Notes } from "/static/ui/notes.js";
import { OUTCOMES } from "/static/ui/room.js";
import { Stage } from "/static/ui/stage.js";

export class RoundRoom extends CallRoom {
  // `ctx`: { h, t, when, api, connection, user, say, onClose, show? }.
  constructor(ctx, round) {
    super(ctx, "round");
    this.round = round;
    this.notesBy = new Map(); // consult_id -> [note], every note of the session's patients
    this.shown = null; // the patient whose record is shown; follows the focus unless one was picked
    const { h } = ctx;
    this.patientList = h("ol", { class: "round-patients" });
    this.panel = h("div", { class: "round-panel" });
    this.element = h("div", { class: "room round-room", "data-round": round.id });
    const mine = (p) => p.round_id === this.id;
    this.handlers = {
      signal: (m) => m.round_id === this.id && this.signal(m),
      "round-peer-joined": (p) => mine(p) && this.peerJoined(p),
      "round-peer-reconnecting": (p) => mine(p) && this.stage?.peerReconnecting(p.peer_id),
      "round-peer-left": (p) => mine(p) && this.peerLeft(p.peer_id),
      round: ({ round: r }) => r.id === this.id && this.apply(r),
      consult: ({ consult }) => consult.kind === "round" && this.consultUpdated(consult),
      note: ({ consult_id, note }) => this.keepNote({ ...note, consult_id }),
      replaced: (p) => p.round_id === this.id && this.leave("replaced", { message: p.message }),
      state: (state) => this.resume(state),
    };
  }

  get id() {
    return this.round.id;
  }

  // The round's lead chairs it: they start and stop its recording.
  chairs() {
    return this.round.lead_specialist?.id === this.ctx.user.id && this.round.lead_status === "accepted";
  }

  // The round's name: translated, with its title and ward as typed.
  title() {
    return `${this.ctx.t("round.title")} — ${this.round.title} — ${this.round.ward}`;
  }

  // The call is built once; the patient list and the panel are redrawn as the round changes.
  joined(ack) {
    for (const note of ack.notes) this.keepNote(note);
    this.apply(ack.round, true);
  }

  // The ack brings the first page of the patients' notes; the rest follow with the cursor.
  async more(ack) {
    let cursor = ack.next_cursor;
    while (cursor && !this.closed) {
      const page = await this.ctx.connection.request("round:notes", { round_id: this.id, cursor });
      for (const note of page.notes) this.keepNote(note);
      this.showNotes();
      cursor = page.next_cursor;
    }
  }

  // A refused join leaves the round room: there is nothing to show without its call.
  refused(e) {
    super.refused(e);
    this.leave("left");
  }

  // After a reconnect: join again (same peer back); the ack brings every note and the focus.
  async resume(state) {
    if (this.closed || !this.stage) return;
    const live = (state?.rounds || []).find((x) => x.round.id === this.id && x.round.session?.status === "active");
    if (!live) {
      this.leave("ended");
      return;
    }
    await this.join();
  }

  // A newer view of the round: keep the highest (version, session.version).
  apply(round, force = false) {
    if (this.closed) return;
    const known = [this.round.version, this.round.session?.version || 0];
    const next = [round.version, round.session?.version || 0];
    if (!force && (next[0] < known[0] || (next[0] === known[0] && next[1] < known[1]))) return;
    const focusMoved = round.session?.focus_patient_id !== this.round.session?.focus_patient_id;
    this.round = round;
    if (focusMoved || !this.round.patients.some((p) => p.id === this.shown)) this.shown = null;
    if (round.session?.status === "ended") {
      this.ctx.say?.(this.ctx.t("round.ended"));
      this.leave("ended");
      return;
    }
    this.drawPatients();
    this.drawPanel();
  }

  consultUpdated(consult) {
    const patient = this.round.patients.find((p) => p.consult_id === consult.id);
    if (!patient) return;
    patient.status = consult.status;
    patient.outcome = consult.outcome;
    this.drawPatients();
    this.drawPanel();
  }

  // Every note of the session's patients, by consult: the Notes part shows the current patient's.
  keepNote(note) {
    if (!note.consult_id) return;
    if (!this.notesBy.has(note.consult_id)) this.notesBy.set(note.consult_id, new Map());
    this.notesBy.get(note.consult_id).set(note.id, note);
  }

  focusId() {
    return this.round.session?.focus_patient_id || null;
  }

  current() {
    const wanted = this.shown || this.focusId() || this.round.patients[0]?.id;
    return this.round.patients.find((p) => p.id === wanted) || null;
  }

  statusText(p) {
    const { t } = this.ctx;
    if (p.status === "ended") return t(`outcome.${p.outcome}`);
    return t(`round.status.${p.status || "none"}`);
  }

  drawPatients() {
    const { h, t, user } = this.ctx;
    const focus = this.focusId();
    const shown = this.current()?.id;
    this.patientList.replaceChildren(
      ...this.round.patients.map((p) =>
        h(
          "li",
          {
            class: `round-patient${p.id === focus ? " current" : ""}${p.id === shown ? " shown" : ""}`,
            "data-patient": p.id,
            "data-status": p.status || "none",
            "aria-current": p.id === focus ? "true" : false,
          },
          h("strong", {}, `${t("round.bed", { bed: p.bed })} — ${p.ref}`),
          p.id === focus ? h("span", { class: "badge" }, t("round.current")) : null,
          h("div", { class: "muted" }, p.summary),
          h("div", { class: "patient-status" }, this.statusText(p)),
          h(
            "div",
            { class: "row" },
            user.role === "specialist" && p.id !== focus
              ? h("button", { type: "button", class: "focus", onclick: () => this.focus(p) }, t("round.focus"))
              : null,
            p.id !== shown
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "secondary view",
                    onclick: () => {
                      this.shown = p.id;
                      this.drawPatients();
                      this.drawPanel();
                    },
                  },
                  t("round.view"),
                )
              : null,
          ),
        ),
      ),
    );
  }

  async focus(p) {
    try {
      this.apply((await this.ctx.connection.request("round:focus", { round_id: this.id, patient_id: p.id })).round);
    } catch (e) {
      this.ctx.say?.(this.ctx.t("error", { message: e.message }), true);
    }
  }

  // The current patient's notes and attachments: the parts are kept, pointed at its consult.
  showNotes() {
    const p = this.current();
    if (!p?.consult_id) return;
    this.notes.setConsult(p.consult_id, ["active", "ended"].includes(p.status));
    this.notes.addAll([...(this.notesBy.get(p.consult_id)?.values() || [])]);
  }

  // Whom the team is discussing: the identity and consent the list holds for the patient (the
  // round view carries them to its team and supervisors), as the record page shows a consult's.
  identityFacts(p) {
    const { h, t, when } = this.ctx;
    const id = p.identity || {};
    const fact = (label, value) => (value ? [h("dt", {}, label), h("dd", {}, value)] : []);
    return h(
      "dl",
      { class: "facts patient-identity" },
      fact(t("identity.name"), id.name),
      fact(t("request.sex"), id.sex ? t(`sex.${id.sex}`) : ""),
      fact(t("identity.birth_date"), id.birth_date),
      fact(t("identity.national_id"), id.national_id),
      fact(t("identity.insurance_id"), id.insurance_id),
      fact(t("identity.address"), id.address),
      fact(t("consent.title"), consentText(t, when, { consent: p.consent })),
    );
  }

  drawPanel() {
    const { h, t } = this.ctx;
    const p = this.current();
    if (!p) {
      this.panel.replaceChildren(h("p", { class: "muted" }, t("round.no_patient")));
      return;
    }
    if (p.consult_id) {
      this.showNotes();
      this.files.setConsult(p.consult_id);
    }
    const outcome = h(
      "select",
      { name: "round-outcome" },
      OUTCOMES.map((o) => h("option", { value: o }, t(`outcome.${o}`))),
    );
    const summary = h("textarea", { name: "round-summary", rows: 2 });
    const error = h("p", { class: "error", role: "alert" });
    const decision =
      p.status === "active"
        ? h(
            "form",
            {
              class: "round-decision",
              onsubmit: async (e) => {
                e.preventDefault();
                try {
                  const { consult } = await this.ctx.connection.write("consult:end", {
                    consult_id: p.consult_id,
                    outcome: outcome.value,
                    summary: summary.value || undefined,
                  });
                  this.consultUpdated(consult);
                } catch (err) {
                  error.textContent = t("error", { message: err.message });
                }
              },
            },
            h("h3", {}, t("round.decision")),
            h("label", {}, t("room.outcome"), outcome),
            h("label", {}, t("room.summary"), summary),
            error,
            h("button", { type: "submit" }, t("round.decide")),
          )
        : h("p", { class: "patient-status" }, this.statusText(p));
    this.panel.replaceChildren(
      h(
        "div",
        { "data-patient": p.id, "data-consult": p.consult_id || "" },
        h("h2", {}, `${t("round.bed", { bed: p.bed })} — ${p.ref}`),
        h("p", { class: "muted" }, p.summary),
        this.identityFacts(p),
        h("h3", {}, t("notes.title")),
        p.consult_id ? this.notes.element : h("p", { class: "muted" }, t("round.no_consult")),
        p.consult_id ? h("h3", {}, t("files.title")) : null,
        p.consult_id ? this.files.element : null,
        decision,
      ),
    );
  }

  addPatientForm() {
    const { h, t, api, user } = this.ctx;
    const bed = h("input", { name: "round-bed", required: true, maxlength: 20 });
    const ref = h("input", { name: "round-ref", required: true, maxlength: 64 });
    const summary = h("input", { name: "round-patient-summary", maxlength: 2000 });
    const error = h("div", { class: "field-error" });
    // Identity and consent as on the round form; consent by the district team (the requesting side).
    const recordsConsent = user.role === "clinician" && user.hospital?.id === this.round.hospital?.id;
    let more = listedPatientDetails(this.ctx, {}, { word: tx, consent: recordsConsent });
    const form = h(
      "form",
      {
        class: "round-add",
        onsubmit: async (e) => {
          e.preventDefault();
          error.replaceChildren();
          const problem = more.problem();
          if (problem) return error.replaceChildren(errorNode(t, new AppFailure("invalid", t(problem))));
          try {
            const { round } = await api(`/api/rounds/${encodeURIComponent(this.id)}/patients`, {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ bed: bed.value, ref: ref.value, summary: summary.value, ...more.added() }),
            });
            bed.value = "";
            ref.value = "";
            summary.value = "";
            const fresh = listedPatientDetails(this.ctx, {}, { word: tx, consent: recordsConsent });
            more.element.replaceWith(fresh.element);
            more = fresh;
            this.apply(round);
          } catch (err) {
            error.replaceChildren(errorNode(t, err));
          }
        },
      },
      h("label", {}, tx("round.bed_label"), bed),
      h("label", {}, tx("request.ref"), ref),
      h("label", {}, tx("request.summary"), summary),
      more.element,
      error,
      h("button", { type: "submit" }, tx("round.add_patient")),
    );
    return h("details", {}, h("summary", {}, tx("round.add_patient")), form);
  }

  draw() {
    const { h, user, connection } = this.ctx;
    this.stage = new Stage(this.ctx, {
      stream: this.stream,
      selfName: user.name,
      onLeave: () => this.leaveCall(),
      onStats: (sample) => connection.request("rtc:stats", { round_id: this.id, ...sample }).catch(() => {}),
    });
    this.notes = new Notes(this.ctx, { prefix: "round-" });
    this.files = new Attachments(this.ctx, { prefix: "round-" });
    if (user.role === "specialist") {
      this.stage.addControl(
        h(
          "button",
          {
            type: "button",
            class: "end-round",
            onclick: async () => {
              try {
                this.apply((await connection.request("round:end", { round_id: this.id })).round, true);
              } catch (e) {
                this.ctx.say?.(this.ctx.t("error", { message: e.message }), true);
              }
            },
          },
          tx("round.end"),
        ),
      );
    }
    this.element.replaceChildren(
      h(
        "div",
        { class: "room-stage" },
        h("h2", { class: "room-title" }, tx(() => this.title())),
        this.stage.element,
      ),
      h(
        "div",
        { class: "room-side" },
        h("section", {}, h("h2", {}, tx("round.patients")), this.patientList, this.addPatientForm()),
        h("section", {}, this.panel),
      ),
    );
    this.drawPatients();
    this.drawPanel();
  }

  // After a language change: the stage, the patient list and the panel in the new language.
  retranslate() {
    if (!this.stage) return; // still on the pre-join screen: the shell retranslates that
    retranslate(this.element);
    this.stage.retranslate();
    this.drawPatients();
    this.drawPanel();
    this.notes.draw();
    this.files.draw();
  }

  finish(reason, extra = {}) {
    this.ctx.onClose?.({ reason, round: this.round, ...extra });
  }
}

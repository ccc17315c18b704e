// The consult room: the call stage, kept in view, beside the notes and the attachments. Only the
// accepted specialist ends the consult, choosing the outcome in a dialog that asks to confirm;
// anyone leaves. The room follows the connection's events itself and resumes after a reconnect.
import { Attachments } from "/static/ui/attachments.js";
import { CallRoom } from "/static/ui/callroom.js";
import { consentForm, consentText } from "/static/ui/consent.js";
import { errorNode, retranslate, tx } from "/static/ui/dom.js";
import { Notes } from "/static/ui/notes.js";
import { Stage } from "/static/ui/stage.js";

export const OUTCOMES = ["treated_locally", "transfer", "follow_up", "onsite_support"];

export class ConsultRoom extends CallRoom {
  // `ctx`: { h, t, when, api, connection, user, say, specialtyName, onClose, show? }.
  constructor(ctx, consult) {
    super(ctx, "consult");
    this.consult = consult;
    this.element = ctx.h("div", { class: "room consult-room", "data-consult": consult.id });
    this.handlers = {
      signal: (m) => m.consult_id === this.consult.id && this.signal(m),
      "peer-joined": (p) => p.consult_id === this.consult.id && this.peerJoined(p),
      "peer-reconnecting": (p) => p.consult_id === this.consult.id && this.stage?.peerReconnecting(p.peer_id),
      "peer-left": (p) => p.consult_id === this.consult.id && this.peerLeft(p.peer_id),
      consult: ({ consult }) => consult.id === this.consult.id && this.updated(consult),
      replaced: (p) => p.consult_id === this.consult.id && this.leave("replaced", { message: p.message }),
      state: (state) => this.resume(state),
    };
  }

  get id() {
    return this.consult.id;
  }

  // The accepted specialist chairs the consult: they start and stop its recording.
  chairs() {
    return this.consult.specialist?.id === this.ctx.user.id;
  }

  // The room's name: translated parts and the patient's reference, redrawn on a language change.
  title() {
    const { t, specialtyName } = this.ctx;
    const c = this.consult;
    return `${t("room.title")} — ${c.patient.ref} — ${specialtyName?.(c.specialty) || c.specialty}`;
  }

  draw() {
    const { h, user } = this.ctx;
    const c = this.consult;
    this.stage = new Stage(this.ctx, {
      stream: this.stream,
      selfName: user.name,
      onLeave: () => this.leaveCall(),
      onStats: (sample) => this.ctx.connection.request("rtc:stats", { consult_id: c.id, ...sample }).catch(() => {}),
    });
    this.notes = new Notes(this.ctx, { consultId: c.id });
    this.files = new Attachments(this.ctx, { consultId: c.id });
    const minutes = h(
      "button",
      { type: "button", class: "link minutes", onclick: () => this.minutes() },
      tx("room.minutes"),
    );
    let end = null;
    // Only the accepted specialist records the outcome and ends the consult.
    if (c.specialist?.id === user.id) {
      this.endDialog = this.endForm();
      end = h(
        "button",
        { type: "button", class: "end-consult", onclick: () => this.endDialog.showModal() },
        tx("room.end"),
      );
      this.stage.addControl(end);
    }
    // The consent as it stands (followed on every update), and the form to record or withdraw it.
    this.consentState = tx(() => consentText(this.ctx.t, this.ctx.when, this.consult));
    this.consentForm = consentForm(this.ctx, c, {
      prefix: "room-consent",
      word: tx,
      onSaved: (consult) => consult && this.updated(consult),
    });
    const who = [c.requester, c.specialist]
      .filter(Boolean)
      .map((p) => `${p.name} — ${p.hospital?.name || ""}`)
      .join(" · ");
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
        h(
          "section",
          { class: "room-patient" },
          h("h2", {}, tx("room.patient")),
          h("p", {}, `${c.patient.ref}${c.patient.age != null ? `, ${c.patient.age}` : ""}`),
          c.patient.summary ? h("p", { class: "note-text" }, c.patient.summary) : null,
          h("p", { class: "muted", translate: "no" }, who),
          h("p", { class: "room-consent" }, h("strong", {}, tx("consent.title")), ": ", this.consentState),
          this.consentForm,
          minutes,
          this.rolesForm(),
        ),
        h("section", { class: "room-notes" }, h("h2", {}, tx("notes.title")), this.notes.element),
        h("section", { class: "room-files" }, h("h2", {}, tx("files.title")), this.files.element),
        this.endDialog || null,
      ),
    );
    this.files.load();
  }

  // Who chairs and who takes the minutes (`PATCH /api/consults/{id}/minutes`), for the requester
  // and the accepted specialist (whom the route allows); the choices are the record's participants,
  // read when the control is opened (people join during the call).
  rolesForm() {
    const { h, t, user, api } = this.ctx;
    const c = this.consult;
    if (!api || !user?.id || ![c.requester?.id, c.specialist?.id].includes(user.id)) return null;
    const url = `/api/consults/${encodeURIComponent(c.id)}/minutes`;
    const chair = h("select", { id: "room-chair", name: "chair_id" });
    const secretary = h("select", { id: "room-secretary", name: "secretary_id" });
    const slot = h("div", { class: "field-error", role: "status" });
    const fill = (select, fallback, people, current) =>
      select.replaceChildren(
        h("option", { value: "" }, tx(fallback)),
        ...people.map((p) => h("option", { value: p.id, selected: p.id === current, translate: "no" }, p.name)),
      );
    const load = async () => {
      slot.replaceChildren();
      try {
        const record = await api(`/api/consults/${encodeURIComponent(c.id)}`);
        fill(chair, "roles.default_chair", record.participants, record.minutes?.chair_id);
        fill(secretary, "roles.default_secretary", record.participants, record.minutes?.secretary_id);
      } catch (error) {
        slot.replaceChildren(errorNode(t, error));
      }
    };
    const save = async () => {
      slot.replaceChildren();
      try {
        await api(url, {
          method: "PATCH",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ chair_id: chair.value || null, secretary_id: secretary.value || null }),
        });
        slot.replaceChildren(h("p", { class: "saved" }, tx("roles.saved")));
        this.ctx.announce?.(t("roles.saved"));
      } catch (error) {
        slot.replaceChildren(errorNode(t, error));
      }
    };
    const field = (control, label) =>
      h("div", { class: "field" }, h("label", { for: control.id }, tx(label)), control);
    const form = h(
      "details",
      { class: "minutes-roles", ontoggle: () => form.open && load() },
      h("summary", {}, tx("roles.title")),
      h("div", { class: "row" }, field(chair, "roles.chair"), field(secretary, "roles.secretary")),
      h("button", { type: "button", class: "save-roles", onclick: save }, tx("roles.save")),
      slot,
    );
    return form;
  }

  // The end of the consult: the outcome is chosen here, and the dialog asks to confirm.
  endForm() {
    const { h } = this.ctx;
    const outcome = h(
      "select",
      { name: "outcome", required: true },
      h("option", { value: "" }, tx("room.outcome_choose")),
      OUTCOMES.map((o) => h("option", { value: o }, tx(`outcome.${o}`))),
    );
    const summary = h("textarea", { name: "summary", rows: 3, maxlength: 4000 });
    const error = h("p", { class: "error", role: "alert" });
    const dialog = h("dialog", { class: "end-dialog", "aria-labelledby": "end-dialog-title" });
    const form = h(
      "form",
      {
        class: "end-form",
        onsubmit: async (e) => {
          e.preventDefault();
          if (!outcome.value) {
            error.replaceChildren(tx("room.outcome_needed"));
            outcome.focus();
            return;
          }
          error.replaceChildren();
          try {
            const ack = await this.ctx.connection.write("consult:end", {
              consult_id: this.consult.id,
              outcome: outcome.value,
              summary: summary.value || undefined,
            });
            dialog.close();
            this.leave("ended", { consult: ack?.consult });
          } catch (err) {
            error.replaceChildren(tx("error", { message: err.message }));
          }
        },
      },
      h("h2", { id: "end-dialog-title" }, tx("room.end_title")),
      h("p", {}, tx("room.end_confirm")),
      h("label", {}, tx("room.outcome"), outcome),
      h("label", {}, tx("room.summary"), summary),
      error,
      h(
        "div",
        { class: "row" },
        h("button", { type: "submit", class: "danger" }, tx("room.end_submit")),
        h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, tx("room.end_cancel")),
      ),
    );
    dialog.append(form);
    return dialog;
  }

  joined(ack) {
    if (ack.consult) this.consult = ack.consult;
    this.notes.addAll(ack.notes);
  }

  more(ack) {
    return this.restOfNotes(ack.next_cursor);
  }

  // The notes come a page at a time (the join ack brings the first): fetch the rest with the cursor.
  async restOfNotes(cursor) {
    while (cursor && !this.closed) {
      const page = await this.ctx.connection.request("note:list", { consult_id: this.id, cursor });
      this.notes.addAll(page.notes);
      cursor = page.next_cursor;
    }
  }

  updated(consult) {
    if (consult.version != null && this.consult.version != null && consult.version < this.consult.version) return;
    this.consult = { ...this.consult, ...consult };
    if (this.consentState) this.consentState.data = this.consentState.i18n();
    this.consentForm?.consentChanged(this.consult);
    if (["ended", "cancelled"].includes(consult.status)) this.leave("ended", { consult });
  }

  // After a reconnect: still active, join again (same peer back) and fetch the notes written
  // meanwhile; ended while we were away, say so.
  async resume(state) {
    if (this.closed || !this.stage) return;
    const known = state?.consults?.get ? state.consults.get(this.id) : null;
    if (!known || known.status !== "active") {
      this.leave("ended", { consult: known || undefined });
      return;
    }
    const after = this.notes.lastSeq;
    await this.join();
    if (this.closed) return;
    const page = await this.ctx.connection.request("note:list", { consult_id: this.id, after_seq: after });
    this.notes.addAll(page.notes);
    await this.restOfNotes(page.next_cursor);
  }

  // After a language change: the stage, the notes, the attachments and the dialog in the new language.
  retranslate() {
    if (!this.stage) return; // still on the pre-join screen: the shell retranslates that
    retranslate(this.element);
    this.stage.retranslate();
    this.notes.draw();
    this.files.draw();
  }

  async minutes() {
    // The record page (the shell's `#/record/<id>`) shows the minutes styled, with a Print button.
    window.open(`#/record/${encodeURIComponent(this.id)}`, "_blank", "noopener");
  }

  finish(reason, extra = {}) {
    this.ctx.onClose?.({ reason, ...extra, consult: extra.consult || this.consult });
  }

  close() {
    if (this.closed) return;
    if (this.endDialog?.open) this.endDialog.close();
    super.close();
    if (!this.stage) for (const track of this.stream?.getTracks() || []) track.stop();
  }
}

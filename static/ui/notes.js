// A consult's notes in a room: the current version of each, with what an amendment replaced;
// a form to add one; amending inline, by the author only. Writes go through the connection's
// outbox, so a note written while the network is down is shown "not sent yet" and sent later.

import { tx } from "/static/ui/dom.js";

export const SECTIONS = ["history", "examination", "investigations", "assessment", "plan", "discussion"];
const RETRIED = new Set(["timeout", "offline", "unavailable", "rate_limited"]); // the outbox sends these again

export class Notes {
  // `prefix`: the form fields' name prefix ("" in a consult room, "round-" in a round room).
  constructor(ctx, { consultId = null, prefix = "", writable = true } = {}) {
    this.ctx = ctx;
    this.consultId = consultId;
    this.writable = writable;
    this.notes = new Map(); // note id -> note, every version
    this.lastSeq = 0;
    this.editing = null; // the note id being amended
    const { h } = ctx;
    this.list = h("div", { class: "notes", "aria-live": "polite" });
    this.section = h(
      "select",
      { name: `${prefix}section`, "aria-label": tx("notes.section") },
      SECTIONS.map((s) => h("option", { value: s }, tx(`section.${s}`))),
    );
    this.text = h("textarea", { name: `${prefix}note`, rows: 3, maxlength: 20000, "aria-label": tx("notes.text") });
    this.error = h("p", { class: "error notes-error", role: "alert" });
    this.form = h(
      "form",
      {
        class: `note-form${prefix ? ` ${prefix}note-form` : ""}`,
        onsubmit: (e) => {
          e.preventDefault();
          this.submit();
        },
      },
      h("label", {}, tx("notes.section"), this.section),
      h("label", {}, tx("notes.text"), this.text),
      h("button", { type: "submit" }, tx("notes.add")),
    );
    this.element = h("div", { class: "notes-part" }, this.list, this.form, this.error);
    this.onNote = ({ consult_id, note }) => consult_id === this.consultId && this.add(note);
    this.onOutbox = () => this.draw();
    ctx.connection.on("note", this.onNote);
    ctx.connection.on("outbox", this.onOutbox);
    this.setWritable(writable);
  }

  // The round room shows one patient's notes at a time.
  setConsult(consultId, writable = true) {
    if (consultId !== this.consultId) {
      this.notes.clear();
      this.lastSeq = 0;
      this.editing = null;
    }
    this.consultId = consultId;
    this.setWritable(writable);
    this.draw();
  }

  setWritable(writable) {
    this.writable = writable;
    this.form.hidden = !writable;
  }

  add(note) {
    if (note.consult_id && this.consultId && note.consult_id !== this.consultId) return;
    this.notes.set(note.id, note);
    this.lastSeq = Math.max(this.lastSeq, note.seq || 0);
    this.draw();
  }

  addAll(notes) {
    for (const note of notes) {
      this.notes.set(note.id, note);
      this.lastSeq = Math.max(this.lastSeq, note.seq || 0);
    }
    this.draw();
  }

  pending() {
    const box = this.ctx.connection.outbox;
    if (!box || !this.consultId) return [];
    const entries = box.forConsult
      ? box.forConsult(this.consultId)
      : box.pending().filter((x) => x.payload?.consult_id === this.consultId);
    return entries.filter((x) => ["note:add", "note:amend"].includes(x.event));
  }

  async write(event, payload) {
    const { t } = this.ctx;
    this.error.textContent = "";
    const sent = this.ctx.connection.write(event, { consult_id: this.consultId, ...payload });
    this.draw(); // the outbox has it now: shown as not sent yet until the ack
    try {
      const ack = await sent;
      if (ack?.note) this.add(ack.note);
      return true;
    } catch (e) {
      if (!RETRIED.has(e?.code)) this.error.textContent = t("error", { message: e?.message || String(e) });
      this.draw();
      return RETRIED.has(e?.code);
    }
  }

  async submit() {
    const text = this.text.value;
    if (!text.trim()) return;
    const consultId = this.consultId;
    this.text.value = "";
    const kept = await this.write("note:add", { section: this.section.value, text });
    // Refused for good (too large, forbidden): give the text back rather than lose it.
    if (!kept && this.consultId === consultId && !this.text.value) this.text.value = text;
  }

  draw() {
    const { h, t, when, user } = this.ctx;
    const all = [...this.notes.values()];
    const replacedBy = new Map(all.filter((n) => n.amends).map((n) => [n.amends, n]));
    const current = all.filter((n) => !replacedBy.has(n.id)).sort((a, b) => a.seq - b.seq);
    const byId = this.notes;
    const items = current.map((n) => {
      // What it replaced, oldest first: the line of `amends` back to the first version.
      const earlier = [];
      for (let x = byId.get(n.amends); x; x = byId.get(x.amends)) earlier.unshift(x);
      for (const old of n.history || []) if (!earlier.some((e) => e.id === old.id)) earlier.push(old);
      const mine = n.author?.id === user.id;
      const body = this.editing === n.id ? this.editor(n) : h("div", { class: "note-text" }, n.text);
      return h(
        "div",
        { class: "note", "data-seq": n.seq, "data-section": n.section, "data-note": n.id },
        h("strong", {}, t(`section.${n.section}`)),
        body,
        earlier.length
          ? h(
              "div",
              { class: "note-history" },
              h("span", { class: "muted" }, t("notes.before")),
              earlier.map((old) =>
                h(
                  "del",
                  { class: "note-old" },
                  old.text,
                  h("small", {}, ` — ${old.author?.name || ""} · ${when(old.created_at)}`),
                ),
              ),
            )
          : null,
        h(
          "small",
          {},
          `${n.author?.name || ""} · ${when(n.created_at)}${n.amends ? ` · ${t("notes.amended")}` : ""} `,
          // Only its author amends a note (the server refuses anyone else).
          mine && this.writable && this.editing !== n.id
            ? h(
                "button",
                {
                  type: "button",
                  class: "secondary amend",
                  onclick: () => {
                    this.editing = n.id;
                    this.editorElement = null;
                    this.draw();
                    this.list.querySelector(".amend-editor textarea")?.focus();
                  },
                },
                t("notes.amend"),
              )
            : null,
        ),
      );
    });
    // The server tells everyone of an amendment, its author too, and that may come before the
    // author's own ack: the new version is then shown once, not also as "not sent yet".
    const arrived = (p) => all.some((n) => n.amends === p.note_id && n.text === p.text && n.author?.id === user.id);
    const waiting = this.pending()
      .filter((x) => !(x.event === "note:amend" && arrived(x.payload || {})))
      .map((x) => {
        const p = x.payload || {};
        const original = p.note_id ? this.notes.get(p.note_id) : null;
        return h(
          "div",
          { class: "note pending", "data-section": p.section || original?.section || "", "data-op": x.op_id },
          h("strong", {}, t(`section.${p.section || original?.section || "discussion"}`)),
          h("div", { class: "note-text" }, p.text || ""),
          h(
            "small",
            { class: "pending-label" },
            x.event === "note:amend" ? t("notes.pending_amend") : t("notes.pending"),
          ),
        );
      });
    this.list.replaceChildren(...items, ...waiting);
    if (!items.length && !waiting.length) this.list.append(h("p", { class: "muted" }, t("notes.none")));
  }

  // The amendment editor in place of the note's text: many lines, saved as a new version.
  editor(n) {
    const { h, t } = this.ctx;
    // Redrawn while typing (a note arrived): the same editor, with what is typed so far.
    if (this.editorFor === n.id && this.editorElement) return this.editorElement;
    const area = h("textarea", {
      name: "amend",
      rows: Math.min(12, Math.max(3, n.text.split("\n").length + 1)),
      maxlength: 20000,
      "aria-label": t("notes.amend_label"),
    });
    area.value = n.text;
    const form = h(
      "form",
      {
        class: "amend-editor",
        onsubmit: async (e) => {
          e.preventDefault();
          const text = area.value;
          if (!text.trim() || text === n.text) {
            this.editing = null;
            this.draw();
            return;
          }
          this.editing = null;
          await this.write("note:amend", { note_id: n.id, text });
        },
      },
      area,
      h(
        "div",
        { class: "row" },
        h("button", { type: "submit" }, t("notes.save")),
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: () => {
              this.editing = null;
              this.draw();
            },
          },
          t("notes.cancel"),
        ),
      ),
    );
    this.editorFor = n.id;
    this.editorElement = form;
    return form;
  }

  close() {
    this.ctx.connection.off("note", this.onNote);
    this.ctx.connection.off("outbox", this.onOutbox);
  }
}

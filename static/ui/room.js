// The consult room, as it was before the call stage: tiles, call controls, notes, files and the
// conclusion. Kept working on the protocol layer until static/ui/stage.js and its ConsultRoom
// replace this file. `ctx`: { h, t, when, api, connection, user, say, specialtyName, onClose }.
import { Call, Tiles } from "/static/call.js";

const SECTIONS = ["history", "examination", "investigations", "assessment", "plan", "discussion"];
const OUTCOMES = ["treated_locally", "transfer", "follow_up", "onsite_support"];

export async function cameraAndMicrophone() {
  try { return await navigator.mediaDevices.getUserMedia({ audio: true, video: true }); }
  catch (e) { return navigator.mediaDevices.getUserMedia({ audio: true }).catch(() => new MediaStream()); }
}

export class ConsultRoom {
  constructor(ctx, consult) {
    this.ctx = ctx;
    this.consult = consult;
    this.lastSeq = 0;
    this.notes = new Map();
    this.element = ctx.h("div", { class: "room", "data-consult": consult.id });
    this.noteList = ctx.h("div", { class: "notes" });
    this.fileList = ctx.h("ul", { class: "files" });
    const mine = (p) => p.consult_id === consult.id;
    this.listeners = {
      "peer-joined": (p) => mine(p) && this.peerJoined(p),
      "peer-left": (p) => mine(p) && this.call?.drop(p.peer_id),
      signal: (m) => mine(m) && this.signal(m),
      note: (p) => mine(p) && this.addNote(p.note),
      attachment: (p) => mine(p) && this.addFile(p.attachment),
      replaced: (p) => mine(p) && this.close({ reason: "replaced", message: p.message }),
      consult: ({ consult: c }) => c.id === consult.id && c.status === "ended" && this.close({ reason: "ended", consult: c }),
      state: (s) => {
        if (s.consults.get(consult.id)?.status === "active") this.resume().catch((e) => console.warn("resume", e));
        else this.close({ reason: "left" });
      },
    };
    for (const [name, fn] of Object.entries(this.listeners)) ctx.connection.on(name, fn);
  }

  get id() { return this.consult.id; }

  request(event, payload) {
    return this.ctx.connection.request(event, payload).catch((error) => {
      this.ctx.say(this.ctx.t("error", { message: error.detail?.message || error.message }), true);
      throw error;
    });
  }

  async enter() {
    this.stream = await cameraAndMicrophone();
    if (this.closed) { this.stopMedia(); return; }
    this.tiles = new Tiles(this.ctx.h, this.ctx.t("room.you"), this.stream);
    this.draw();
    await this.join();
  }

  async join() {
    // A peer that sees us joined may offer before our own join ack arrives (it travels through
    // another instance): keep such signals until the call exists, then play them in order.
    this.call?.close();
    this.call = null;
    this.pending = [];
    const ack = await this.request("consult:join", { consult_id: this.id });
    this.tiles.expect(ack.peers);
    this.call = new Call(this.ctx.connection.socket, "consult_id", this.id, ack.ice_servers, this.stream,
      (peerId, stream) => this.tiles.show(peerId, stream), (peerId) => this.tiles.remove(peerId));
    this.call.selfId = ack.peer_id;
    for (const note of ack.notes) this.addNote(note);
    for (const m of this.pending.splice(0)) await this.call.receive(m.from, m.data);
    for (const peer of ack.peers) if (!this.call.peers.has(peer.peer_id)) await this.call.offerTo(peer.peer_id);
    await this.restOfNotes(ack.next_cursor);
  }

  async restOfNotes(cursor) {
    while (cursor) {
      const page = await this.request("note:list", { consult_id: this.id, cursor });
      for (const note of page.notes) this.addNote(note);
      cursor = page.next_cursor;
    }
  }

  signal(m) {
    if (this.call) this.call.receive(m.from, m.data).catch((e) => console.warn("rtc:signal", e));
    else this.pending?.push(m);
  }

  // After a reconnect: join again (same peer back), fetch the notes written meanwhile.
  async resume() {
    if (!this.tiles || this.closed) return;
    await this.join();
    const page = await this.request("note:list", { consult_id: this.id, after_seq: this.lastSeq });
    for (const note of page.notes) this.addNote(note);
    await this.restOfNotes(page.next_cursor);
  }

  peerJoined(p) {
    this.tiles?.peerJoined(p);
    if (p.rejoined) this.call?.drop(p.peer_id); // it will send a new offer
  }

  addNote(note) {
    const { h, t, when, user } = this.ctx;
    this.notes.set(note.id, note);
    this.lastSeq = Math.max(this.lastSeq, note.seq);
    const replaced = new Set([...this.notes.values()].map((n) => n.amends).filter(Boolean));
    const items = [...this.notes.values()].filter((n) => !replaced.has(n.id)).sort((a, b) => a.seq - b.seq).map((n) =>
      h("div", { class: "note", "data-seq": n.seq, "data-section": n.section },
        h("strong", {}, t(`section.${n.section}`)), " ", n.text,
        h("small", {}, `${n.author?.name || ""} · ${when(n.created_at)}${n.amends ? ` · ${t("notes.amended")}` : ""} `,
          n.author?.id === user.id ? h("button", { type: "button", class: "secondary", onclick: async () => {
            const text = prompt(t("notes.amend_prompt"), n.text);
            if (text) this.addNote((await this.ctx.connection.write("note:amend", { consult_id: this.id, note_id: n.id, text })).note);
          } }, t("notes.amend")) : null)));
    this.noteList.replaceChildren(...items);
  }

  addFile(file) {
    const { h, api } = this.ctx;
    if (this.fileList.querySelector(`[data-file="${file.id}"]`)) return;
    this.fileList.append(h("li", { "data-file": file.id }, h("button", { type: "button", class: "secondary", onclick: async () => {
      const a = h("a", { href: URL.createObjectURL(await api(file.url, { as: "blob" })), download: file.filename, hidden: true });
      document.body.append(a); a.click(); a.remove();
    } }, file.filename)));
  }

  draw() {
    const { h, t, api, connection, specialtyName } = this.ctx;
    const c = this.consult;
    const label = (text, control) => h("label", {}, text, control);
    const section = h("select", { name: "section", "aria-label": t("notes.section") }, SECTIONS.map((s) => h("option", { value: s }, t(`section.${s}`))));
    const text = h("textarea", { name: "note", rows: 3, maxlength: 20000, "aria-label": t("notes.text") });
    const noteForm = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      if (!text.value.trim()) return;
      const pending = connection.write("note:add", { consult_id: c.id, section: section.value, text: text.value });
      text.value = "";
      this.addNote((await pending).note);
    } }, section, text, h("button", { type: "submit" }, t("notes.add")));
    const file = h("input", { type: "file", accept: "image/jpeg,image/png,application/pdf", "aria-label": t("files.choose") });
    const upload = h("button", { type: "button", class: "secondary", onclick: async () => {
      if (!file.files[0]) return;
      const form = new FormData(); form.append("file", file.files[0]);
      this.addFile((await api(`/api/consults/${c.id}/attachments`, { method: "POST", body: form })).attachment);
      file.value = "";
    } }, t("files.upload"));
    const outcome = h("select", { name: "outcome" }, OUTCOMES.map((o) => h("option", { value: o }, t(`outcome.${o}`))));
    const summary = h("textarea", { name: "summary", rows: 2 });
    const end = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      const ack = await connection.write("consult:end", { consult_id: c.id, outcome: outcome.value, summary: summary.value || undefined });
      this.close({ reason: "ended", consult: ack.consult });
    } }, h("h2", {}, t("end.title")), label(t("end.outcome"), outcome), label(t("end.summary"), summary),
    h("button", { type: "submit" }, t("end.submit")));
    let mic = true, cam = true;
    const micButton = h("button", { type: "button", class: "secondary", onclick: () => {
      mic = !mic; this.call?.setAudio(mic); micButton.textContent = t(mic ? "room.mute" : "room.unmute");
    } }, t("room.mute"));
    const camButton = h("button", { type: "button", class: "secondary", onclick: () => {
      cam = !cam; this.call?.setVideo(cam); camButton.textContent = t(cam ? "room.camera_off" : "room.camera_on");
    } }, t("room.camera_off"));
    const leave = h("button", { type: "button", class: "secondary leave", onclick: () => {
      connection.request("consult:leave", { consult_id: c.id }).catch(() => {});
      this.close({ reason: "left" });
    } }, t("room.leave"));
    this.element.replaceChildren(
      h("section", {}, h("h2", {}, `${t("room.title")} — ${c.patient.ref} — ${specialtyName(c.specialty)}`), this.tiles.element,
        h("div", { class: "row" }, micButton, camButton, leave)),
      h("div", {}, h("section", {}, h("h2", {}, t("notes.title")), this.noteList, noteForm),
        h("section", {}, h("h2", {}, t("files.title")), this.fileList, file, upload), h("section", {}, end)));
  }

  stopMedia() { for (const track of this.stream?.getTracks() || []) track.stop(); }

  close(why = { reason: "left" }) {
    if (this.closed) return;
    this.closed = true;
    for (const [name, fn] of Object.entries(this.listeners)) this.ctx.connection.off(name, fn);
    this.call?.close();
    this.stopMedia();
    this.ctx.onClose?.(why);
  }
}

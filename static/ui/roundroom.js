// The round room, as it was before the call stage: one call for the whole ward round while the
// focus moves from bed to bed, notes and a decision on each patient's consult. Kept working on
// the protocol layer until the stage's RoundRoom replaces this file.
// `ctx`: { h, t, when, api, connection, user, say, onClose }.
import { Call, Tiles } from "/static/call.js";
import { cameraAndMicrophone } from "/static/ui/room.js";

const SECTIONS = ["history", "examination", "investigations", "assessment", "plan", "discussion"];
const OUTCOMES = ["treated_locally", "transfer", "follow_up", "onsite_support"];

export class RoundRoom {
  constructor(ctx, round) {
    this.ctx = ctx;
    this.round = round;
    this.notes = new Map(); // consult_id -> Map(note id -> note)
    this.shown = null; // the patient whose record is shown; follows the focus unless one was picked
    this.patientList = ctx.h("ol", { class: "round-patients" });
    this.panel = ctx.h("div", { class: "round-panel" });
    this.element = ctx.h("div", { class: "room round-room", "data-round": round.id });
    const mine = (p) => p.round_id === round.id;
    this.listeners = {
      "round-peer-joined": (p) => mine(p) && this.peerJoined(p),
      "round-peer-left": (p) => mine(p) && this.call?.drop(p.peer_id),
      signal: (m) => mine(m) && this.signal(m),
      round: ({ round: r }) => r.id === round.id && this.apply(r),
      note: ({ consult_id, note }) => this.addNote(consult_id, note),
      consult: ({ consult }) => consult.kind === "round" && this.consultUpdated(consult),
      replaced: (p) => mine(p) && this.close({ reason: "replaced", message: p.message }),
      state: (s) => {
        const live = s.rounds.find((x) => x.round.id === round.id && x.round.session?.status === "active");
        if (live) this.resume().catch((e) => console.warn("resume", e)); else this.close({ reason: "left" });
      },
    };
    for (const [name, fn] of Object.entries(this.listeners)) ctx.connection.on(name, fn);
  }

  async enter() {
    this.stream = await cameraAndMicrophone();
    if (this.closed) { for (const track of this.stream.getTracks()) track.stop(); return; }
    this.tiles = new Tiles(this.ctx.h, this.ctx.t("room.you"), this.stream);
    this.layout();
    await this.join();
  }

  get id() { return this.round.id; }

  // The call is built once; the patient list and the panel are redrawn as the round changes.
  async join() {
    this.call?.close();
    this.call = null;
    this.pending = [];
    const ack = await this.emit("round:join", { round_id: this.id });
    this.tiles.expect(ack.peers);
    this.call = new Call(this.ctx.connection.socket, "round_id", this.id, ack.ice_servers, this.stream,
      (peerId, stream) => this.tiles.show(peerId, stream), (peerId) => this.tiles.remove(peerId));
    this.call.selfId = ack.peer_id;
    for (const note of ack.notes) this.keepNote(note);
    this.apply(ack.round, true);
    for (const m of this.pending.splice(0)) await this.call.receive(m.from, m.data);
    for (const peer of ack.peers) if (!this.call.peers.has(peer.peer_id)) await this.call.offerTo(peer.peer_id);
    // The ack brings the first page of the patients' notes; the rest follow with the cursor.
    let cursor = ack.next_cursor;
    while (cursor) {
      const page = await this.emit("round:notes", { round_id: this.id, cursor });
      for (const note of page.notes) this.keepNote(note);
      if (page.notes.length) this.drawPanel();
      cursor = page.next_cursor;
    }
  }

  emit(event, payload) {
    return this.ctx.connection.request(event, payload).catch((error) => {
      this.ctx.say(this.ctx.t("error", { message: error.detail?.message || error.message }), true);
      throw error;
    });
  }

  // After a reconnect: join again (same peer back); the ack brings every note and the focus.
  async resume() { if (this.tiles && !this.closed) await this.join(); }

  signal(m) {
    if (this.call) this.call.receive(m.from, m.data).catch((e) => console.warn("rtc:signal", e));
    else this.pending?.push(m);
  }

  peerJoined(p) {
    this.tiles.peerJoined(p);
    if (p.rejoined) this.call?.drop(p.peer_id); // it will send a new offer
  }

  // A newer view of the round: keep the highest (version, session.version).
  apply(round, force = false) {
    const known = [this.round.version, this.round.session?.version || 0];
    const next = [round.version, round.session?.version || 0];
    if (!force && (next[0] < known[0] || (next[0] === known[0] && next[1] < known[1]))) return;
    const focusMoved = round.session?.focus_patient_id !== this.round.session?.focus_patient_id;
    this.round = round;
    if (focusMoved || !this.round.patients.some((p) => p.id === this.shown)) this.shown = null;
    if (round.session?.status === "ended") { this.ctx.say(this.ctx.t("round.ended")); this.close({ reason: "ended" }); return; }
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

  keepNote(note) {
    if (!this.notes.has(note.consult_id)) this.notes.set(note.consult_id, new Map());
    this.notes.get(note.consult_id).set(note.id, note);
  }

  addNote(consultId, note) {
    if (!this.round.patients.some((p) => p.consult_id === consultId)) return false;
    this.keepNote(note);
    if (this.current()?.consult_id === consultId) this.drawPanel();
    return true;
  }

  focusId() { return this.round.session?.focus_patient_id || null; }

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
    this.patientList.replaceChildren(...this.round.patients.map((p) => h("li", {
      class: `round-patient${p.id === focus ? " current" : ""}${p.id === shown ? " shown" : ""}`,
      "data-patient": p.id, "data-status": p.status || "none", "aria-current": p.id === focus ? "true" : false },
    h("strong", {}, `${t("round.bed", { bed: p.bed })} — ${p.ref}`),
    p.id === focus ? h("span", { class: "badge" }, t("round.current")) : null,
    h("div", { class: "muted" }, p.summary),
    h("div", { class: "patient-status" }, this.statusText(p)),
    h("div", { class: "row" },
      user.role === "specialist" && p.id !== focus
        ? h("button", { class: "focus", onclick: async () => this.apply((await this.emit("round:focus", { round_id: this.id, patient_id: p.id })).round) }, t("round.focus"))
        : null,
      p.id !== shown ? h("button", { class: "secondary view", onclick: () => { this.shown = p.id; this.drawPatients(); this.drawPanel(); } }, t("round.view")) : null))));
  }

  drawPanel() {
    const { h, t, when, connection } = this.ctx;
    const emit = (e, x) => this.emit(e, x);
    const p = this.current();
    if (!p) { this.panel.replaceChildren(h("p", { class: "muted" }, t("round.no_patient"))); return; }
    const notes = [...(this.notes.get(p.consult_id)?.values() || [])];
    const replaced = new Set(notes.map((n) => n.amends).filter(Boolean));
    const items = notes.filter((n) => !replaced.has(n.id)).sort((a, b) => a.seq - b.seq).map((n) =>
      h("div", { class: "note", "data-seq": n.seq, "data-section": n.section },
        h("strong", {}, t(`section.${n.section}`)), " ", n.text,
        h("small", {}, `${n.author?.name || ""} · ${when(n.created_at)}${n.amends ? ` · ${t("notes.amended")}` : ""}`)));
    const section = h("select", { name: "round-section", "aria-label": t("notes.section") }, SECTIONS.map((s) => h("option", { value: s }, t(`section.${s}`))));
    const text = h("textarea", { name: "round-note", rows: 3, maxlength: 20000, "aria-label": t("notes.text") });
    const writable = p.consult_id && ["active", "ended"].includes(p.status);
    const noteForm = writable ? h("form", { class: "round-note-form", onsubmit: async (e) => {
      e.preventDefault();
      if (!text.value.trim()) return;
      const pending = connection.write("note:add", { consult_id: p.consult_id, section: section.value, text: text.value });
      text.value = "";
      const { note } = await pending;
      this.addNote(p.consult_id, note);
    } }, section, text, h("button", { type: "submit" }, t("notes.add"))) : null;
    const outcome = h("select", { name: "round-outcome" }, OUTCOMES.map((o) => h("option", { value: o }, t(`outcome.${o}`))));
    const summary = h("textarea", { name: "round-summary", rows: 2 });
    const decision = p.status === "active" ? h("form", { class: "round-decision", onsubmit: async (e) => {
      e.preventDefault();
      const { consult } = await connection.write("consult:end", { consult_id: p.consult_id, outcome: outcome.value, summary: summary.value || undefined });
      this.consultUpdated(consult);
    } }, h("h3", {}, t("round.decision")), h("label", {}, t("end.outcome"), outcome), h("label", {}, t("end.summary"), summary),
    h("button", { type: "submit" }, t("round.decide"))) : h("p", { class: "patient-status" }, this.statusText(p));
    this.panel.replaceChildren(h("div", { "data-patient": p.id, "data-consult": p.consult_id || "" },
      h("h2", {}, `${t("round.bed", { bed: p.bed })} — ${p.ref}`), h("p", { class: "muted" }, p.summary),
      h("h3", {}, t("notes.title")), h("div", { class: "notes round-notes" }, items), noteForm, decision));
  }

  addPatientForm() {
    const { h, t, api } = this.ctx;
    const bed = h("input", { name: "round-bed", required: true, maxlength: 20 });
    const ref = h("input", { name: "round-ref", required: true, maxlength: 64 });
    const summary = h("input", { name: "round-patient-summary", maxlength: 2000 });
    return h("details", {}, h("summary", {}, t("round.add_patient")), h("form", { class: "round-add", onsubmit: async (e) => {
      e.preventDefault();
      const { round } = await api(`/api/rounds/${encodeURIComponent(this.id)}/patients`, { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ bed: bed.value, ref: ref.value, summary: summary.value }) });
      bed.value = ""; ref.value = ""; summary.value = "";
      this.apply(round);
    } }, h("label", {}, t("round.bed_label"), bed), h("label", {}, t("request.ref"), ref),
    h("label", {}, t("request.summary"), summary), h("button", { type: "submit" }, t("round.add_patient"))));
  }

  layout() {
    const { h, t, user } = this.ctx;
    const emit = (e, x) => this.emit(e, x);
    const r = this.round;
    let mic = true, cam = true;
    const micButton = h("button", { class: "secondary", onclick: () => { mic = !mic; this.call?.setAudio(mic); micButton.textContent = t(mic ? "room.mute" : "room.unmute"); } }, t("room.mute"));
    const camButton = h("button", { class: "secondary", onclick: () => { cam = !cam; this.call?.setVideo(cam); camButton.textContent = t(cam ? "room.camera_off" : "room.camera_on"); } }, t("room.camera_off"));
    const leave = h("button", { class: "secondary leave-round", onclick: () => { emit("round:leave", { round_id: this.id }).catch(() => {}); this.close({ reason: "left" }); } },
      t("room.leave"));
    const end = user.role === "specialist" ? h("button", { class: "secondary end-round", onclick: async () => this.apply((await emit("round:end", { round_id: this.id })).round, true) }, t("round.end")) : null;
    this.element.replaceChildren(
      h("section", {}, h("h2", {}, `${t("round.title")} — ${r.title} — ${r.ward}`), this.tiles.element,
        h("div", { class: "row" }, micButton, camButton, leave, end)),
      h("div", {}, h("section", {}, h("h2", {}, t("round.patients")), this.patientList, this.addPatientForm()),
        h("section", {}, this.panel)));
    this.drawPatients();
    this.drawPanel();
  }

  close(why = { reason: "left" }) {
    if (this.closed) return;
    this.closed = true;
    for (const [name, fn] of Object.entries(this.listeners)) this.ctx.connection.off(name, fn);
    this.call?.close();
    for (const track of this.stream?.getTracks() || []) track.stop();
    this.ctx.onClose?.(why);
  }
}

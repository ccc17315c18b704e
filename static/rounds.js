// Ward rounds in the browser: the week's rounds, and the round room — one call for the whole
// round while the focus moves from bed to bed, notes and a decision on each patient's consult.
// Built from data with h() only: whatever users typed is always textContent, never HTML.
import { Call } from "/static/call.js";

const SECTIONS = ["history", "examination", "investigations", "assessment", "plan", "discussion"];
const OUTCOMES = ["treated_locally", "transfer", "follow_up", "onsite_support"];
const ZONE = "Asia/Ho_Chi_Minh";
const DAY_MS = 24 * 60 * 60 * 1000;

// The Vietnam date of an instant, as YYYY-MM-DD.
const dayOf = (moment) => new Intl.DateTimeFormat("en-CA", { timeZone: ZONE }).format(new Date(moment));

// `ctx`: { h, t, api, language, onEnter(round) }. The user's rounds of the next 7 days, day by day.
export class RoundsList {
  constructor(ctx) {
    this.ctx = ctx;
    this.rounds = [];
    this.feed = null;
    this.element = ctx.h("section", { class: "rounds" });
    this.draw();
    this.load();
  }

  async load() {
    try { this.rounds = (await this.ctx.api("/api/rounds")).rounds; } catch (e) { this.rounds = []; }
    this.draw();
  }

  draw() {
    const { h, t, language } = this.ctx;
    const locale = language === "vi" ? "vi-VN" : "en-GB";
    const today = dayOf(Date.now());
    const days = [...Array(7).keys()].map((i) => dayOf(Date.now() + i * DAY_MS));
    const time = new Intl.DateTimeFormat(locale, { timeZone: ZONE, hour: "2-digit", minute: "2-digit" });
    const dayName = new Intl.DateTimeFormat(locale, { timeZone: ZONE, weekday: "short", day: "2-digit", month: "2-digit" });
    const columns = days.map((day) => {
      const items = [];
      for (const r of this.rounds) {
        for (const at of r.occurrences || []) {
          if (dayOf(at) !== day) continue;
          const running = r.session?.status === "active";
          items.push({ at, card: h("div", { class: `card round${running ? " running" : ""}`, "data-round": r.id },
            h("strong", {}, `${time.format(new Date(at))} — ${r.title}`),
            h("div", {}, `${r.hospital?.name || ""} — ${r.ward}`),
            h("div", { class: "muted" }, t("rounds.lead", { name: r.lead_specialist?.name || "" })),
            h("div", { class: "muted" }, `${t(`rounds.recurrence.${r.recurrence || "once"}`)} · ${t("rounds.patients_count", { n: r.patients.length })}`),
            day === today || running ? h("button", { class: "join-round", onclick: () => this.ctx.onEnter(r) }, t("rounds.enter")) : null) });
        }
      }
      items.sort((a, b) => a.at.localeCompare(b.at));
      return h("div", { class: "day", "data-day": day }, h("h3", {}, dayName.format(new Date(`${day}T12:00:00+07:00`))), items.map((x) => x.card));
    });
    const any = this.rounds.some((r) => (r.occurrences || []).length);
    this.element.replaceChildren(h("h2", {}, t("rounds.title")),
      any ? h("div", { class: "week" }, columns) : h("p", { class: "muted" }, t("rounds.none")),
      this.calendar());
  }

  // The secret calendar address: made (or remade, revoking the old one) and revoked here.
  calendar() {
    const { h, t, api } = this.ctx;
    const send = async (method) => {
      const body = await api("/api/rounds/calendar", { method });
      this.feed = body.url || null;
      this.feedNote = body.url ? t("rounds.calendar_hint") : t("rounds.calendar_revoked");
      this.draw();
    };
    return h("details", { class: "calendar-feed" }, h("summary", {}, t("rounds.calendar")),
      this.feed ? h("input", { readonly: true, value: this.feed, class: "feed-url" }) : null,
      this.feedNote ? h("p", { class: "muted" }, this.feedNote) : null,
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", onclick: () => send("POST") }, t("rounds.calendar_new")),
        h("button", { type: "button", class: "secondary", onclick: () => send("DELETE") }, t("rounds.calendar_revoke"))));
  }
}

// `ctx`: { h, t, when, api, emit, opId, say, socket, user, onClose }.
export class RoundRoom {
  constructor(ctx, round, stream) {
    this.ctx = ctx;
    this.round = round;
    this.stream = stream;
    this.notes = new Map(); // consult_id -> Map(note id -> note)
    this.shown = null; // the patient whose record is shown; follows the focus unless one was picked
    this.tiles = ctx.h("div", { class: "tiles" });
    this.patientList = ctx.h("ol", { class: "round-patients" });
    this.panel = ctx.h("div", { class: "round-panel" });
    this.tiles.append(this.tile("self", ctx.t("room.you"), stream, true));
    this.layout();
  }

  get id() { return this.round.id; }

  tile(id, name, stream, muted = false) {
    const { h } = this.ctx;
    const video = h("video", { autoplay: true, playsinline: true, muted });
    video.muted = muted;
    video.srcObject = stream;
    return h("div", { class: "tile", "data-peer": id }, video, h("span", { class: "name" }, name));
  }

  // The call is built once; the patient list and the panel are redrawn as the round changes.
  async join() {
    this.call?.close();
    this.call = null;
    this.pending = [];
    const ack = await this.ctx.emit("round:join", { round_id: this.id });
    this.peerNames = new Map(ack.peers.map((p) => [p.peer_id, p.user.name]));
    this.call = new Call(this.ctx.socket, "round_id", this.id, ack.ice_servers, this.stream,
      (peerId, stream) => this.showPeer(peerId, stream), (peerId) => this.tiles.querySelector(`[data-peer="${peerId}"]`)?.remove());
    this.call.selfId = ack.peer_id;
    for (const note of ack.notes) this.keepNote(note);
    this.apply(ack.round, true);
    for (const m of this.pending.splice(0)) await this.call.receive(m.from, m.data);
    for (const peer of ack.peers) if (!this.call.peers.has(peer.peer_id)) await this.call.offerTo(peer.peer_id);
  }

  // After a reconnect: join again (same peer back); the ack brings every note and the focus.
  async resume() { await this.join(); }

  signal(m) {
    if (this.call) this.call.receive(m.from, m.data).catch((e) => console.warn("rtc:signal", e));
    else this.pending?.push(m);
  }

  peerJoined(p) {
    this.peerNames?.set(p.peer_id, p.user.name);
    if (p.rejoined) this.call?.drop(p.peer_id); // it will send a new offer
  }

  showPeer(peerId, stream) {
    let tile = this.tiles.querySelector(`[data-peer="${peerId}"]`);
    if (!tile) { tile = this.tile(peerId, this.peerNames?.get(peerId) || "", stream); this.tiles.append(tile); }
    tile.querySelector("video").srcObject = stream;
  }

  // A newer view of the round: keep the highest (version, session.version).
  apply(round, force = false) {
    const known = [this.round.version, this.round.session?.version || 0];
    const next = [round.version, round.session?.version || 0];
    if (!force && (next[0] < known[0] || (next[0] === known[0] && next[1] < known[1]))) return;
    const focusMoved = round.session?.focus_patient_id !== this.round.session?.focus_patient_id;
    this.round = round;
    if (focusMoved || !this.round.patients.some((p) => p.id === this.shown)) this.shown = null;
    if (round.session?.status === "ended") { this.ctx.say(this.ctx.t("round.ended")); this.close(); return; }
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
        ? h("button", { class: "focus", onclick: async () => this.apply((await this.ctx.emit("round:focus", { round_id: this.id, patient_id: p.id })).round) }, t("round.focus"))
        : null,
      p.id !== shown ? h("button", { class: "secondary view", onclick: () => { this.shown = p.id; this.drawPatients(); this.drawPanel(); } }, t("round.view")) : null))));
  }

  drawPanel() {
    const { h, t, when, emit, opId } = this.ctx;
    const p = this.current();
    if (!p) { this.panel.replaceChildren(h("p", { class: "muted" }, t("round.no_patient"))); return; }
    const notes = [...(this.notes.get(p.consult_id)?.values() || [])];
    const replaced = new Set(notes.map((n) => n.amends).filter(Boolean));
    const items = notes.filter((n) => !replaced.has(n.id)).sort((a, b) => a.seq - b.seq).map((n) =>
      h("div", { class: "note", "data-seq": n.seq, "data-section": n.section },
        h("strong", {}, t(`section.${n.section}`)), " ", n.text,
        h("small", {}, `${n.author?.name || ""} · ${when(n.created_at)}${n.amends ? ` · ${t("notes.amended")}` : ""}`)));
    const section = h("select", { name: "round-section" }, SECTIONS.map((s) => h("option", { value: s }, t(`section.${s}`))));
    const text = h("textarea", { name: "round-note", rows: 3, maxlength: 20000 });
    const writable = p.consult_id && ["active", "ended"].includes(p.status);
    const noteForm = writable ? h("form", { class: "round-note-form", onsubmit: async (e) => {
      e.preventDefault();
      if (!text.value.trim()) return;
      const { note } = await emit("note:add", { consult_id: p.consult_id, op_id: opId(), section: section.value, text: text.value });
      text.value = "";
      this.addNote(p.consult_id, note);
    } }, section, text, h("button", { type: "submit" }, t("notes.add"))) : null;
    const outcome = h("select", { name: "round-outcome" }, OUTCOMES.map((o) => h("option", { value: o }, t(`outcome.${o}`))));
    const summary = h("textarea", { name: "round-summary", rows: 2 });
    const decision = p.status === "active" ? h("form", { class: "round-decision", onsubmit: async (e) => {
      e.preventDefault();
      const { consult } = await emit("consult:end", { consult_id: p.consult_id, outcome: outcome.value, summary: summary.value || undefined });
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
    const { h, t, user, emit } = this.ctx;
    const r = this.round;
    let mic = true, cam = true;
    const micButton = h("button", { class: "secondary", onclick: () => { mic = !mic; this.call?.setAudio(mic); micButton.textContent = t(mic ? "room.mute" : "room.unmute"); } }, t("room.mute"));
    const camButton = h("button", { class: "secondary", onclick: () => { cam = !cam; this.call?.setVideo(cam); camButton.textContent = t(cam ? "room.camera_off" : "room.camera_on"); } }, t("room.camera_off"));
    const leave = h("button", { class: "secondary leave-round", onclick: () => { emit("round:leave", { round_id: this.id }); this.close(); } }, t("room.leave"));
    const end = user.role === "specialist" ? h("button", { class: "secondary end-round", onclick: async () => this.apply((await emit("round:end", { round_id: this.id })).round, true) }, t("round.end")) : null;
    this.element = h("div", { class: "room round-room", "data-round": r.id },
      h("section", {}, h("h2", {}, `${t("round.title")} — ${r.title} — ${r.ward}`), this.tiles,
        h("div", { class: "row" }, micButton, camButton, leave, end)),
      h("div", {}, h("section", {}, h("h2", {}, t("round.patients")), this.patientList, this.addPatientForm()),
        h("section", {}, this.panel)));
    this.drawPatients();
    this.drawPanel();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.call?.close();
    for (const track of this.stream.getTracks()) track.stop();
    this.ctx.onClose();
  }
}

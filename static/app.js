// telerounds in the browser: login, a home per role, the consult room. Snapshot + events:
// every screen is rebuilt from `session:state`, then kept current by events.
import { io } from "/static/vendor/socket.io.esm.min.js";
import { adminHome } from "/static/admin.js";
import { Board } from "/static/board.js";
import { Call, Tiles } from "/static/call.js";
import { RoundRoom, RoundsList } from "/static/rounds.js";
import { language, load, t, when } from "/static/i18n.js";

const SECTIONS = ["history", "examination", "investigations", "assessment", "plan", "discussion"];
const app = document.getElementById("app");
const banner = document.getElementById("banner");
const state = { token: sessionStorage.getItem("telerounds.token"), user: null, socket: null, session: null,
  consults: new Map(), offers: new Map(), knocks: new Map(), specialties: [], room: null, board: null,
  round: null, roundsList: null };

// Elements from data only: text is always textContent, never HTML.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else if (value !== false && value != null) el.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child != null) el.append(child instanceof Node ? child : String(child));
  return el;
}

function say(text, error = false) {
  banner.hidden = !text;
  banner.textContent = text || "";
  banner.className = error ? "error" : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) } });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.blob();
  if (!response.ok) throw new Error(body?.error?.message || response.statusText);
  return body;
}

async function emit(event, payload) {
  const ack = await state.socket.timeout(10000).emitWithAck(event, payload);
  if (!ack.ok) { say(t("error", { message: ack.error.message }), true); throw new Error(ack.error.message); }
  return ack;
}

function opId() { return crypto.randomUUID(); }

// Login.
function showLogin(message = "") {
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const response = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: username.value, password: password.value }) });
    // Throttled (429) is not a wrong password: say how long to wait, from Retry-After (seconds).
    if (response.status === 429) {
      const minutes = Math.max(1, Math.ceil(Number(response.headers.get("Retry-After") || 60) / 60));
      showLogin(t("login.throttled", { minutes })); return;
    }
    if (!response.ok) { showLogin(t("login.failed")); return; }
    const body = await response.json();
    state.token = body.token;
    sessionStorage.setItem("telerounds.token", body.token);
    start();
  } },
  h("h2", {}, t("login.title")),
  h("label", {}, t("login.username"), username),
  h("label", {}, t("login.password"), password),
  message ? h("p", { class: "error" }, message) : null,
  h("button", { type: "submit" }, t("login.submit")));
  app.replaceChildren(h("section", {}, form));
}

// Connection: reconnects by itself; every (re)connect brings a fresh session:state.
function start() {
  state.socket?.disconnect();
  const socket = io({ auth: { token: state.token }, transports: ["websocket"] });
  state.socket = socket;
  socket.on("connect_error", (error) => {
    if (error.data?.code === "unauthorized") { sessionStorage.removeItem("telerounds.token"); socket.disconnect(); showLogin(); }
    // Too many tabs or devices of this user are connected: say so, and try again now and then.
    else if (error.data?.code === "rate_limited") {
      say(error.data.message, true);
      if (!socket.active) setTimeout(() => socket.connect(), 15000);
    }
    // Refused by the server for now (`unavailable`: its storage is down): socket.io-client does
    // not retry a refusal by itself, so try again shortly. Network errors it retries on its own.
    // Either way the banner says so: a page opened meanwhile would otherwise stay blank.
    else {
      say(t("banner.reconnecting"));
      if (!socket.active) setTimeout(() => socket.connect(), 3000);
    }
  });
  socket.on("disconnect", (reason) => {
    say(t("banner.reconnecting"));
    // The server ended the session (deactivated, or the password changed): socket.io-client
    // would not come back by itself. Connect again: still valid, it resumes; if not, the
    // refusal (`unauthorized`) above brings back the login.
    if (reason === "io server disconnect") socket.connect();
  });
  socket.on("session:state", onSessionState);
  socket.on("consult:updated", ({ consult }) => {
    if (consult.kind === "round") { state.round?.consultUpdated(consult); return; } // a round patient's
    track(consult); render();
  });
  socket.on("consult:offer", ({ consult, expires_at }) => { state.offers.set(consult.id, { consult, expires_at }); knock(consult); render(); });
  socket.on("presence:changed", ({ presence }) => { state.session.presence = presence; say(t("presence.changed", { status: t(`presence.${presence.status}`) })); render(); });
  socket.on("note:added", ({ consult_id, note }) => state.round?.addNote(consult_id, note) || (state.room?.consult.id === consult_id && state.room.addNote(note)));
  socket.on("attachment:added", ({ consult_id, attachment }) => state.room?.consult.id === consult_id && state.room.addFile(attachment));
  socket.on("consult:peer-joined", (p) => state.room?.peerJoined(p));
  socket.on("consult:peer-left", (p) => state.room?.call?.drop(p.peer_id));
  socket.on("rtc:signal", (m) => (m.round_id ? state.round?.signal(m) : state.room?.signal(m)));
  socket.on("round:updated", ({ round }) => state.round?.id === round.id && state.round.apply(round));
  socket.on("round:peer-joined", (p) => state.round?.peerJoined(p));
  socket.on("round:peer-left", (p) => state.round?.call?.drop(p.peer_id));
  // This user joined the call from another tab or device, which now holds their one seat.
  socket.on("consult:replaced", (p) => { if (state.room?.consult.id === p.consult_id) { state.room.close(); say(p.message); } });
  socket.on("round:replaced", (p) => { if (state.round?.id === p.round_id) { state.round.close(); say(p.message); } });
  socket.on("round:starting", ({ round }) => { say(t("rounds.starting", { title: round.title })); state.roundsList?.load(); });
  socket.on("round:lead-requested", ({ request }) => { say(t("rounds.lead_requested", { title: request.title })); state.roundsList?.load(); });
}

async function onSessionState(session) {
  const reconnect = state.session !== null;
  state.session = session;
  state.user = session.user;
  if (reconnect) say(t("banner.back")); else say("");
  setTimeout(() => banner.textContent === t("banner.back") && say(""), 2000);
  document.getElementById("logout").hidden = false;
  document.getElementById("who").textContent = `${session.user.name} — ${session.user.hospital.name}`;
  state.consults = new Map(session.consults.map((c) => [c.id, c]));
  state.offers = new Map(session.offers.map((o) => [o.consult.id, o]));
  if (!state.specialties.length) state.specialties = (await api("/api/specialties")).specialties;
  if (state.room) {
    const consult = state.consults.get(state.room.consult.id);
    if (consult?.status === "active") { await state.room.resume(); return; }
    state.room.close();
  }
  if (state.round) {
    const live = session.rounds.find((x) => x.round.id === state.round.id && x.round.session?.status === "active");
    if (live) { await state.round.resume(); return; }
    state.round.close();
  }
  state.roundsList?.load();
  render();
}

function track(consult) {
  if (["ended", "cancelled"].includes(consult.status) || (consult.status === "active" && consult.specialist?.id !== state.user.id && consult.requester?.id !== state.user.id)) {
    state.consults.delete(consult.id);
  } else {
    const known = state.consults.get(consult.id);
    if (!known || known.version <= consult.version) state.consults.set(consult.id, consult);
  }
  if (consult.status !== "offered") state.offers.delete(consult.id);
  if (state.room?.consult.id === consult.id && consult.status === "ended") state.room.close();
}

function render() {
  if (state.room || state.round) return; // the room draws itself
  const role = state.user.role;
  const precall = h("p", {}, h("a", { href: "/static/precall.html", class: "precall" }, t("precall.link")));
  if (role === "clinician") app.replaceChildren(requestForm(), myConsults(), roundsSection(), precall);
  else if (role === "specialist") app.replaceChildren(presenceSwitch(), offersList(), myConsults(), roundsSection(), precall);
  else if (role === "supervisor") app.replaceChildren(supervisorBoard().element);
  else if (role === "admin") app.replaceChildren(administration(), roundsSection());
}

// Admin: the screen keeps what is being typed across renders; rebuilt on a language change.
function administration() {
  if (!state.admin || state.admin.language !== language) {
    state.admin = { language, element: adminHome({ h, t, api, when }) };
  }
  return state.admin.element;
}

// Supervisor: one board per sign-in, kept across renders; redrawn on a language change.
function supervisorBoard() {
  if (!state.board || state.board.language !== language) {
    state.board?.stop();
    state.board = new Board({ h, t, when, api, token: state.token, specialtyName });
    state.board.language = language;
    state.board.start();
  }
  return state.board;
}

// Ward rounds: the week's list, kept across renders; rebuilt on a language change.
function roundsSection() {
  if (!state.roundsList || state.roundsList.language !== language) {
    state.roundsList = new RoundsList({ h, t, api, language, user: state.user, onEnter: enterRound });
    state.roundsList.language = language;
  }
  return state.roundsList.element;
}

async function enterRound(round) {
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true }); }
  catch (e) { stream = await navigator.mediaDevices.getUserMedia({ audio: true }).catch(() => new MediaStream()); }
  const ctx = { h, t, when, api, emit, opId, say, socket: state.socket, user: state.user,
    onClose: () => { state.round = null; state.roundsList?.load(); render(); } };
  state.round = new RoundRoom(ctx, round, stream);
  app.replaceChildren(state.round.element);
  await state.round.join();
}

// Clinician.
function requestForm() {
  const specialty = h("select", { name: "specialty" }, state.specialties.map((s) => h("option", { value: s.code }, s.name)));
  const urgency = h("select", { name: "urgency" }, ["routine", "urgent", "emergency"].map((u) => h("option", { value: u }, t(`urgency.${u}`))));
  const ref = h("input", { name: "ref", required: true, maxlength: 64 });
  const summary = h("textarea", { name: "summary", rows: 3, maxlength: 2000 });
  const age = h("input", { name: "age", type: "number", min: 0, max: 130 });
  const sex = h("select", { name: "sex" }, h("option", { value: "" }, "—"), ["male", "female", "other"].map((s) => h("option", { value: s }, t(`sex.${s}`))));
  const named = h("select", { name: "specialist" }, h("option", { value: "" }, t("request.anyone")));
  const fillRoster = async () => {
    const { specialists } = await api(`/api/roster?specialty=${specialty.value}`);
    named.replaceChildren(h("option", { value: "" }, t("request.anyone")), specialists.map((s) =>
      h("option", { value: s.id }, `${s.name} — ${s.hospital.name} (${s.presence.online ? t(`presence.${s.presence.status}`) : "offline"})`)));
  };
  specialty.addEventListener("change", fillRoster);
  fillRoster();
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const patient = { ref: ref.value, summary: summary.value };
    if (age.value) patient.age = Number(age.value);
    if (sex.value) patient.sex = sex.value;
    const payload = { op_id: opId(), specialty: specialty.value, urgency: urgency.value, patient };
    if (named.value) payload.specialist_id = named.value;
    const { consult } = await emit("consult:request", payload);
    track(consult); render();
  } },
  h("h2", {}, t("request.title")),
  h("label", {}, t("request.specialty"), specialty), h("label", {}, t("request.urgency"), urgency),
  h("label", {}, t("request.ref"), ref), h("label", {}, t("request.summary"), summary),
  h("div", { class: "row" }, h("label", {}, t("request.age"), age), h("label", {}, t("request.sex"), sex)),
  h("label", {}, t("request.named"), named),
  h("button", { type: "submit" }, t("request.submit")));
  return h("section", {}, form);
}

function myConsults() {
  const items = [...state.consults.values()].map((c) => {
    const lines = [h("strong", {}, `${c.patient.ref} — ${specialtyName(c.specialty)} — ${t(`urgency.${c.urgency}`)}`),
      h("div", { class: "status", "data-status": c.status }, t(`status.${c.status}`))];
    if (c.queue_position) lines.push(h("div", { class: "queue-position" }, t("queue.position", { n: c.queue_position })));
    if (c.named_answer) lines.push(h("div", {}, t(`named.${c.named_answer}`), " ", h("button", { onclick: () => emit("consult:widen", { consult_id: c.id }) }, t("action.widen"))));
    if (c.specialist) lines.push(h("div", { class: "muted" }, `${c.specialist.name} — ${c.specialist.hospital.name}`));
    const actions = h("div", { class: "row" });
    if (["queued", "offered"].includes(c.status) && c.requester?.id === state.user.id) actions.append(h("button", { class: "secondary", onclick: async () => { track((await emit("consult:cancel", { consult_id: c.id })).consult); render(); } }, t("action.cancel")));
    if (c.status === "active") actions.append(h("button", { class: "join", onclick: () => enterRoom(c) }, t("action.join")));
    return h("div", { class: `card ${c.urgency}`, "data-consult": c.id }, lines, actions);
  });
  return h("section", {}, h("h2", {}, t("mine.title")), items.length ? items : h("p", { class: "muted" }, t("mine.none")));
}

function specialtyName(code) { return state.specialties.find((s) => s.code === code)?.name || code; }

// Specialist.
function presenceSwitch() {
  const select = h("select", { name: "presence", onchange: async () => {
    const { presence } = await emit("presence:set", { status: select.value });
    state.session.presence = presence;
  } }, ["available", "busy", "away"].map((s) => h("option", { value: s, selected: state.session.presence.status === s }, t(`presence.${s}`))));
  return h("section", {}, h("h2", {}, t("presence.title")), select);
}

function offersList() {
  const cards = [...state.offers.values()].map(({ consult: c, expires_at }) => {
    const countdown = h("span", { class: "countdown" });
    const tick = () => { countdown.textContent = t("offer.expires", { s: Math.max(0, Math.round((new Date(expires_at) - Date.now()) / 1000)) }); };
    tick();
    const timer = setInterval(() => (countdown.isConnected ? tick() : clearInterval(timer)), 1000);
    const reason = h("input", { placeholder: t("offer.reason"), maxlength: 500 });
    const knocking = (state.knocks.get(c.id) || 0) > Date.now() ? " knocking" : "";
    return h("div", { class: `card offer ${c.urgency}${knocking}`, "data-consult": c.id },
      h("strong", {}, `${t(`urgency.${c.urgency}`)} — ${specialtyName(c.specialty)}`),
      h("div", {}, `${c.requester.name} — ${c.requester.hospital.name}`),
      h("div", {}, `${c.patient.ref}${c.patient.age != null ? `, ${c.patient.age}` : ""}`),
      h("p", { class: "note" }, c.patient.summary || ""), countdown,
      h("div", { class: "row" },
        h("button", { class: "accept", onclick: async () => { const { consult } = await emit("consult:accept", { consult_id: c.id }); state.offers.delete(c.id); track(consult); enterRoom(consult); } }, t("action.accept")),
        reason,
        h("button", { class: "secondary", onclick: async () => { await emit("consult:decline", { consult_id: c.id, reason: reason.value || undefined }); state.offers.delete(c.id); render(); } }, t("action.decline"))));
  });
  return h("section", {}, h("h2", {}, t("offers.title")), cards.length ? cards : h("p", { class: "muted" }, t("offers.none")));
}

// The knock: a sound, a browser notification, and the card shaking for a few seconds so it is
// seen on a muted laptop too.
function knock(consult) {
  state.knocks.set(consult.id, Date.now() + 5000);
  setTimeout(render, 5100);
  try {
    const audio = new AudioContext(); const osc = audio.createOscillator(); osc.frequency.value = 660;
    osc.connect(audio.destination); osc.start(); osc.stop(audio.currentTime + 0.25);
  } catch (e) { /* no sound device */ }
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(t("offers.title"), { body: `${t(`urgency.${consult.urgency}`)} — ${specialtyName(consult.specialty)}` });
  } else if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission();
  }
}

// The consult room.
class Room {
  constructor(consult, stream) {
    this.consult = consult;
    this.stream = stream;
    this.lastSeq = 0;
    this.notes = new Map();
    this.tiles = new Tiles(h, t("room.you"), stream);
    this.noteList = h("div", { class: "notes" });
    this.fileList = h("ul", { class: "files" });
    this.quality = h("span", { class: "quality" });
    this.audioOnly = false;
    this.draw();
  }

  async join() {
    // A peer that sees us joined may offer before our own join ack arrives (it travels through
    // another instance): keep such signals until the call exists, then play them in order.
    this.call?.close();
    this.call = null;
    this.pending = [];
    const ack = await emit("consult:join", { consult_id: this.consult.id });
    this.tiles.expect(ack.peers);
    this.call = new Call(state.socket, "consult_id", this.consult.id, ack.ice_servers, this.stream,
      (peerId, stream) => this.tiles.show(peerId, stream), (peerId) => this.tiles.remove(peerId));
    this.call.selfId = ack.peer_id;
    for (const note of ack.notes) this.addNote(note);
    for (const m of this.pending.splice(0)) await this.call.receive(m.from, m.data);
    for (const peer of ack.peers) if (!this.call.peers.has(peer.peer_id)) await this.call.offerTo(peer.peer_id);
    this.statsTimer ??= setInterval(() => this.report(), 5000);
    await this.restOfNotes(ack.next_cursor);
  }

  // The notes come a page at a time (the join ack brings the first): fetch the rest with the cursor.
  async restOfNotes(cursor) {
    while (cursor) {
      const page = await emit("note:list", { consult_id: this.consult.id, cursor });
      for (const note of page.notes) this.addNote(note);
      cursor = page.next_cursor;
    }
  }

  signal(m) {
    if (this.call) this.call.receive(m.from, m.data).catch((e) => console.warn("rtc:signal", e));
    else this.pending?.push(m);
  }

  // After a reconnect: join again (same peer back), fetch the notes written meanwhile, renegotiate.
  async resume() {
    await this.join();
    const page = await emit("note:list", { consult_id: this.consult.id, after_seq: this.lastSeq });
    for (const note of page.notes) this.addNote(note);
    await this.restOfNotes(page.next_cursor);
  }

  peerJoined(p) {
    this.tiles.peerJoined(p);
    if (p.rejoined) this.call?.drop(p.peer_id); // it will send a new offer
  }

  addNote(note) {
    this.notes.set(note.id, note);
    this.lastSeq = Math.max(this.lastSeq, note.seq);
    const replaced = new Set([...this.notes.values()].map((n) => n.amends).filter(Boolean));
    const items = [...this.notes.values()].filter((n) => !replaced.has(n.id)).sort((a, b) => a.seq - b.seq).map((n) =>
      h("div", { class: "note", "data-seq": n.seq, "data-section": n.section },
        h("strong", {}, t(`section.${n.section}`)), " ", n.text,
        h("small", {}, `${n.author?.name || ""} · ${when(n.created_at)}${n.amends ? ` · ${t("notes.amended")}` : ""} `,
          // Only its author amends a note (the server refuses anyone else).
          n.author?.id === state.user.id ? h("button", { class: "secondary", onclick: async () => {
            const text = prompt(t("notes.amend_prompt"), n.text);
            if (text) this.addNote((await emit("note:amend", { consult_id: this.consult.id, op_id: opId(), note_id: n.id, text })).note);
          } }, t("notes.amend")) : null)));
    this.noteList.replaceChildren(...items);
  }

  addFile(file) {
    if (this.fileList.querySelector(`[data-file="${file.id}"]`)) return;
    this.fileList.append(h("li", { "data-file": file.id }, h("a", { href: "#", onclick: async (e) => {
      e.preventDefault();
      window.open(URL.createObjectURL(await api(file.url)), "_blank", "noopener");
    } }, file.filename)));
  }

  async report() {
    if (!this.call) return;
    const q = await this.call.quality();
    const bitrate = this.lastBytes != null ? Math.round(((q.bytes - this.lastBytes) * 8) / 5000) : undefined;
    this.lastBytes = q.bytes;
    const level = q.loss_pct > 10 || q.rtt_ms > 800 ? "poor" : q.loss_pct > 3 || q.rtt_ms > 300 ? "fair" : "good";
    this.quality.textContent = `${t("room.quality")}: ${t(`room.quality.${level}`)} (${q.rtt_ms} ms, ${q.loss_pct}%)`;
    if (level === "poor" && !this.audioOnly) say(t("room.poor_link"));
    state.socket.emit("rtc:stats", { consult_id: this.consult.id, rtt_ms: q.rtt_ms, loss_pct: q.loss_pct, audio_only: this.audioOnly, ...(bitrate != null ? { bitrate_kbps: bitrate } : {}) });
  }

  draw() {
    const c = this.consult;
    const section = h("select", { name: "section" }, SECTIONS.map((s) => h("option", { value: s }, t(`section.${s}`))));
    const text = h("textarea", { name: "note", rows: 3, maxlength: 20000 });
    const noteForm = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      if (!text.value.trim()) return;
      const { note } = await emit("note:add", { consult_id: c.id, op_id: opId(), section: section.value, text: text.value });
      text.value = ""; this.addNote(note);
    } }, section, text, h("button", { type: "submit" }, t("notes.add")));
    const file = h("input", { type: "file", accept: "image/jpeg,image/png,application/pdf" });
    const upload = h("button", { type: "button", class: "secondary", onclick: async () => {
      if (!file.files[0]) return;
      const form = new FormData(); form.append("file", file.files[0]);
      this.addFile((await api(`/api/consults/${c.id}/attachments`, { method: "POST", body: form })).attachment);
    } }, t("files.upload"));
    const outcome = h("select", { name: "outcome" }, ["treated_locally", "transfer", "follow_up", "onsite_support"].map((o) => h("option", { value: o }, t(`outcome.${o}`))));
    const summary = h("textarea", { name: "summary", rows: 2 });
    const end = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      await emit("consult:end", { consult_id: c.id, outcome: outcome.value, summary: summary.value || undefined });
      this.close();
    } }, h("h2", {}, t("end.title")), h("label", {}, t("end.outcome"), outcome), h("label", {}, t("end.summary"), summary), h("button", { type: "submit" }, t("end.submit")));
    let mic = true, cam = true;
    const micButton = h("button", { class: "secondary", onclick: () => { mic = !mic; this.call.setAudio(mic); micButton.textContent = t(mic ? "room.mute" : "room.unmute"); } }, t("room.mute"));
    const camButton = h("button", { class: "secondary", onclick: () => { cam = !cam; this.call.setVideo(cam); camButton.textContent = t(cam ? "room.camera_off" : "room.camera_on"); } }, t("room.camera_off"));
    const audioButton = h("button", { class: "secondary", onclick: () => {
      this.audioOnly = !this.audioOnly; this.call.setVideo(!this.audioOnly);
      audioButton.textContent = t(this.audioOnly ? "room.video_back" : "room.audio_only");
      say(this.audioOnly ? t("room.audio_only_on") : "");
    } }, t("room.audio_only"));
    const cameraTrack = () => this.stream.getVideoTracks()[0];
    const shareButton = h("button", { class: "secondary", onclick: async () => {
      const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
      const track = screen.getVideoTracks()[0];
      await this.call.replaceVideo(track);
      say(t("room.sharing"));
      track.onended = async () => { await this.call.replaceVideo(cameraTrack()); say(""); };
    } }, t("room.share"));
    const switchButton = h("button", { class: "secondary", onclick: async () => {
      const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
      if (cameras.length < 2) { say(t("room.one_camera")); return; }
      const current = cameraTrack()?.getSettings().deviceId;
      const next = cameras[(cameras.findIndex((d) => d.deviceId === current) + 1) % cameras.length];
      const fresh = (await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: next.deviceId } } })).getVideoTracks()[0];
      const old = cameraTrack();
      if (old) { this.stream.removeTrack(old); old.stop(); }
      this.stream.addTrack(fresh);
      await this.call.replaceVideo(fresh);
    } }, t("room.switch_camera"));
    app.replaceChildren(h("div", { class: "room", "data-consult": c.id },
      h("section", {}, h("h2", {}, `${t("room.title")} — ${c.patient.ref} — ${specialtyName(c.specialty)}`), this.tiles.element,
        h("div", { class: "row" }, micButton, camButton, audioButton, switchButton, shareButton, this.quality,
          h("a", { href: "#", onclick: async (e) => { e.preventDefault(); window.open(URL.createObjectURL(await api(`/api/consults/${c.id}/minutes`)), "_blank"); } }, t("minutes")),
          h("button", { class: "secondary", onclick: () => { emit("consult:leave", { consult_id: c.id }); this.close(); } }, t("room.leave")))),
      h("div", {}, h("section", {}, h("h2", {}, t("notes.title")), this.noteList, noteForm),
        h("section", {}, h("h2", {}, t("files.title")), this.fileList, file, upload), h("section", {}, end))));
  }

  close() {
    clearInterval(this.statsTimer);
    this.call?.close();
    for (const track of this.stream.getTracks()) track.stop();
    state.room = null;
    render();
  }
}

async function enterRoom(consult) {
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true }); }
  catch (e) { stream = await navigator.mediaDevices.getUserMedia({ audio: true }).catch(() => new MediaStream()); }
  state.room = new Room(consult, stream);
  await state.room.join();
}

document.getElementById("language").addEventListener("click", async () => { await load(language === "vi" ? "en" : "vi"); if (state.user) render(); });
// Signing out ends the token on the server too (POST /api/logout), not only in this tab.
document.getElementById("logout").addEventListener("click", () => { if (state.token) fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${state.token}` } }).catch(() => {}); state.token = null; sessionStorage.removeItem("telerounds.token"); state.socket?.disconnect(); state.board?.stop(); state.board = null; state.admin = null; state.session = null; state.room?.close(); state.round?.close(); state.roundsList = null; showLogin(); });

await load();
if (state.token) start(); else showLogin();

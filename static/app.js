// telerounds in the browser: login, a home per role, the consult room. Snapshot + events:
// every screen is rebuilt from `session:state`, then kept current by events.
import { io } from "/static/vendor/socket.io.esm.min.js";
import { adminHome } from "/static/admin.js";
import { Board } from "/static/board.js";
import { Connection } from "/static/protocol.js";
import { RoundsList } from "/static/rounds.js";
import { ConsultRoom } from "/static/ui/room.js";
import { RoundRoom } from "/static/ui/roundroom.js";
import { preJoin } from "/static/ui/stage.js";
import { language, load, t, when } from "/static/i18n.js";

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
  state.connection?.close();
  state.connection = new Connection({ io, token: state.token, storage: localStorage });
  state.connection.connect();
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
    if (consult.kind === "round") return; // a round patient's: the round room has it
    track(consult); render();
  });
  socket.on("consult:offer", ({ consult, expires_at }) => { state.offers.set(consult.id, { consult, expires_at }); knock(consult); render(); });
  socket.on("presence:changed", ({ presence }) => { state.session.presence = presence; say(t("presence.changed", { status: t(`presence.${presence.status}`) })); render(); });
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
  if (state.room || state.round) return; // an open room resumes itself (or closes) from the Connection's state
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
}

function render() {
  if (state.room || state.round || state.precall) return; // the room (or the pre-join check) draws itself
  const role = state.user.role;
  const precall = h("p", {}, h("a", { href: "#/precall", class: "precall", onclick: (e) => { e.preventDefault(); check(); } }, t("precall.link")));
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
  state.round = new RoundRoom(roomContext(), round);
  await state.round.enter();
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

// ---- Until the shell's rewrite of this file: the rooms run on the protocol layer's Connection
// (its own socket, beside this page's), which this page opens at sign-in.
function roomContext() {
  return { h, t, when, api, connection: state.connection, user: state.user, say, specialtyName, show: (el) => app.replaceChildren(el),
    onClose: ({ reason, message }) => {
      state.room = null; state.round = null;
      if (reason === "full" || reason === "replaced") say(message, reason === "full");
      else if (reason === "ended") say(t("room.ended"));
      state.roundsList?.load();
      render();
    } };
}
// ---- end of the stand-in connection

async function enterRoom(consult) {
  state.room = new ConsultRoom(roomContext(), consult);
  await state.room.enter();
}

// The camera, microphone and network check (the pre-join screen without Join).
async function check() {
  state.precall = true;
  await preJoin(roomContext(), { title: t("prejoin.check_title"), check: true });
  state.precall = false;
  render();
}

document.getElementById("language").addEventListener("click", async () => { await load(language === "vi" ? "en" : "vi"); if (state.user) render(); });
// Signing out ends the token on the server too (POST /api/logout), not only in this tab.
document.getElementById("logout").addEventListener("click", () => { if (state.token) fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${state.token}` } }).catch(() => {}); state.token = null; sessionStorage.removeItem("telerounds.token"); state.socket?.disconnect(); state.connection?.close(); state.connection = null; state.board?.stop(); state.board = null; state.admin = null; state.session = null; state.room?.close(); state.round?.close(); state.room = null; state.round = null; state.roundsList = null; showLogin(); });

await load();
if (state.token) start(); else showLogin();

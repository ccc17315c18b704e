// telerounds in the browser: the shell. It signs in, holds the one Connection (static/protocol.js),
// routes by location.hash (#/ home, #/history, #/record/<id>, #/report/<YYYY-MM>), opens the
// rooms, and keeps the header, the banner, the offer dialog and the one aria-live region.
// Every screen is drawn from the connection's state and redrawn from its events.
import { io } from "/static/vendor/socket.io.esm.min.js";
import { Connection } from "/static/protocol.js";
import { adminHome } from "/static/admin.js";
import { Board, ReportView } from "/static/board.js";
import { RoundsList } from "/static/rounds.js";
import { language, load, t, when } from "/static/i18n.js";
import { AppFailure, h, retranslate } from "/static/ui/dom.js";
import { loginPage } from "/static/ui/login.js";
import { Home } from "/static/ui/home.js";
import { OfferDesk, Ringer } from "/static/ui/offer.js";
import { History } from "/static/ui/history.js";
import { RecordPage } from "/static/ui/record.js";
import { ConsultRoom } from "/static/ui/room.js";
import { RoundRoom } from "/static/ui/roundroom.js";
import { preJoin } from "/static/ui/stage.js";

const TOKEN_KEY = "telerounds.token";
// The consult whose room this tab is in: after a reload the clinician lands back in it.
const ROOM_KEY = "telerounds.room";
const app = document.getElementById("app");
const banner = document.getElementById("banner");
const announcer = document.getElementById("announcer");
const ringer = new Ringer();
const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  connection: null,
  user: null,
  specialties: [],
  screen: null, // the page component shown (Home, History, RecordPage, …) with an optional close()
  room: null, // the open ConsultRoom or RoundRoom: shown whatever the route until it closes
  home: null,
  desk: null,
  board: null,
  admin: null,
  roundsList: null,
  banner: null, // { key, values, error } or { text, error }: kept so a language change retranslates it
  ended: null, // the consult whose end is told on the home screen
  loginNotice: null,
  connectedOnce: false,
};

// The one live region: offers, call events and the banner are read out from here.
function announce(text) {
  announcer.textContent = "";
  // A fresh text node after a tick, so the same words twice are announced twice.
  setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

// The banner: a key (retranslated on a language change) or a text the caller translated.
function say(message, error = false) {
  if (message && typeof message === "object") state.banner = { ...message, error: message.error ?? error };
  else state.banner = message ? { text: message, error } : null;
  drawBanner();
  if (state.banner) announce(bannerText());
}

function bannerText() {
  const b = state.banner;
  return b ? (b.key ? t(b.key, b.values || {}) : b.text) : "";
}

function drawBanner() {
  banner.hidden = !state.banner;
  banner.textContent = bannerText();
  banner.className = state.banner?.error ? "error" : "";
}

// HTTP with the token. A refusal carries the server's code (translated where it is shown) and
// its English message as the detail; a network failure is "offline".
async function api(path, options = {}) {
  const { as, ...rest } = options;
  let response;
  try {
    response = await fetch(path, {
      ...rest,
      headers: { Authorization: `Bearer ${state.token}`, ...(rest.headers || {}) },
    });
  } catch (error) {
    throw new AppFailure("offline", error.message);
  }
  const json = response.headers.get("content-type")?.includes("json");
  if (!response.ok) {
    const body = json ? await response.json().catch(() => null) : null;
    throw new AppFailure(
      body?.error?.code || (response.status >= 500 ? "unavailable" : "unknown"),
      body?.error?.message || response.statusText,
    );
  }
  if (as === "text") return response.text();
  if (as === "blob") return response.blob();
  return json ? response.json() : response.blob();
}

// Specialty names in the page's language (the server's list is Vietnamese).
function specialtyName(code) {
  const key = `specialty.${code}`;
  const text = t(key);
  return text !== key ? text : state.specialties.find((s) => s.code === code)?.name || code;
}

function ctx(extra = {}) {
  return {
    h,
    t,
    when,
    api,
    connection: state.connection,
    user: state.user,
    say,
    announce,
    specialtyName,
    specialties: state.specialties,
    language,
    ...extra,
  };
}

// The header: the signed-in person (behind a menu button on a phone), the pages, language, sign-out.
function drawHeader() {
  const signedIn = Boolean(state.user);
  document.getElementById("logout").hidden = !signedIn;
  document.getElementById("account").hidden = !signedIn;
  document.getElementById("menu-button").hidden = !signedIn;
  const pages = signedIn && ["clinician", "specialist"].includes(state.user.role);
  document.querySelector("#account .menu-nav").hidden = !pages;
  document.getElementById("nav").hidden = !signedIn || !["clinician", "specialist"].includes(state.user?.role);
  document.getElementById("who").textContent = signedIn
    ? `${state.user.name} — ${state.user.hospital?.name || ""}`
    : "";
  const initials = signedIn ? state.user.name.split(/\s+/).filter(Boolean).slice(-1)[0]?.[0] || "?" : "";
  document.getElementById("menu-initial").textContent = initials;
  for (const link of document.querySelectorAll("#nav a, .menu-nav a")) {
    const here = (location.hash || "#/") === link.getAttribute("href");
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showLogin(notice = state.loginNotice) {
  state.loginNotice = notice;
  state.user = null;
  drawHeader();
  app.replaceChildren(
    loginPage(
      { h, t },
      {
        notice,
        onNotice: (n) => {
          state.loginNotice = n;
        },
        onSignedIn: signedIn,
      },
    ),
  );
}

function signedIn(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  state.loginNotice = null;
  ringer.unlock(); // a user gesture: the ring of a later offer is allowed to sound
  // Asked now, with the sign-in, rather than when the first offer arrives.
  if ("Notification" in window && Notification.permission === "default")
    Notification.requestPermission().catch(() => {});
  start();
}

function start() {
  state.connection?.close();
  state.connectedOnce = false;
  const connection = new Connection({ io, token: state.token, storage: localStorage });
  state.connection = connection;
  connection.on("status", onStatus);
  connection.on("state", onState);
  connection.on("consult", ({ consult }) => {
    if (consult.kind === "round") return;
    noticeEnd(consult);
    state.home?.consultChanged(consult);
  });
  connection.on("presence", () => state.home?.drawPresence());
  connection.on("outbox-failed", ({ entry, error }) => {
    say({
      key: "outbox.failed",
      values: { what: t(`outbox.event.${entry.event}`), why: error?.message || "" },
      error: true,
    });
  });
  connection.on("round-starting", ({ round }) => {
    say({ key: "rounds.starting", values: { title: round.title } });
    state.roundsList?.load();
  });
  connection.on("lead-requested", ({ request }) => {
    say({ key: "rounds.lead_requested", values: { title: request.title } });
    state.roundsList?.load();
  });
  connection.connect();
}

function onStatus({ status, code, message }) {
  if (status === "refused" && code === "unauthorized") {
    signOut({ key: "login.expired" });
    return;
  }
  // Too many tabs or devices of this user: the server's words say which to close.
  if (code === "rate_limited") {
    say({ key: "banner.too_many", values: { detail: message || "" }, error: true });
    return;
  }
  if (status === "reconnecting" || status === "refused") say({ key: "banner.reconnecting" });
}

async function onState(session) {
  const reconnect = state.connectedOnce;
  state.connectedOnce = true;
  const first = !state.user || state.user.id !== session.user.id;
  state.user = session.user;
  if (!state.specialties.length) {
    try {
      state.specialties = (await api("/api/specialties")).specialties;
    } catch (e) {
      /* names fall back to codes */
    }
  }
  if (reconnect) {
    say({ key: "banner.back" });
    setTimeout(() => state.banner?.key === "banner.back" && say(null), 2000);
  } else if (state.banner?.key === "banner.reconnecting") say(null);
  if (first) {
    state.desk?.close();
    state.desk = ["specialist"].includes(state.user.role)
      ? new OfferDesk(ctx({ ringer, onAccepted: acceptedOffer, onPresence: () => state.home?.drawPresence() }))
      : null;
    state.home?.close();
    state.home = null;
  }
  drawHeader();
  if (first && !state.room && rejoin(session)) return;
  if (!state.room) render();
  else state.home?.drawCards();
}

// The page was reloaded (or reopened in this tab) during a consult: back to its room (through
// the pre-join screen, whose Join lets the call's sound play) while the consult is still active.
function rejoin(session) {
  const id = sessionStorage.getItem(ROOM_KEY);
  const consult = id ? session.consults?.get?.(id) : null;
  if (consult?.status !== "active") {
    sessionStorage.removeItem(ROOM_KEY);
    return false;
  }
  openConsult(consult);
  return true;
}

// A consult of ours ended: say so, by whom and with what outcome, with its record a click away.
function noticeEnd(consult) {
  if (consult.status !== "ended" || state.ended?.id === consult.id) return;
  if (![consult.requester?.id, consult.specialist?.id].includes(state.user?.id)) return;
  const known = state.home?.statuses.get(consult.id);
  if (known && known !== "ended") {
    state.ended = consult;
    if (!state.room) render();
  }
}

function endedNotice() {
  const c = state.ended;
  if (!c) return null;
  const by = c.ended_by?.name;
  const outcome = c.outcome ? t(`outcome.${c.outcome}`) : "—";
  const text = by ? t("ended.by", { name: by, outcome }) : t("ended.plain", { outcome });
  return h(
    "section",
    { class: "ended-notice", role: "status", "data-consult": c.id },
    h("p", {}, h("strong", {}, text), " ", h("span", { class: "muted" }, c.patient?.ref || "")),
    h(
      "div",
      { class: "row" },
      h("a", { href: `#/record/${encodeURIComponent(c.id)}`, class: "record-link button-link" }, t("ended.record")),
      h(
        "button",
        {
          type: "button",
          class: "secondary dismiss",
          onclick: () => {
            state.ended = null;
            render();
          },
        },
        t("ended.dismiss"),
      ),
    ),
  );
}

// Rooms: the shell opens them; they close themselves and say why.
async function openRoom(Kind, subject) {
  if (state.room) return;
  const room = new Kind(ctx({ onClose: (why) => roomClosed(room, why || {}), show }), subject);
  state.room = room;
  if (Kind === ConsultRoom) sessionStorage.setItem(ROOM_KEY, subject.id);
  state.screen?.close?.();
  state.screen = null;
  try {
    await room.enter();
  } catch (error) {
    console.warn("room", error);
    if (state.room === room) {
      room.close();
    }
  }
}

function roomClosed(room, { reason, consult, message }) {
  if (state.room !== room) return;
  state.room = null;
  sessionStorage.removeItem(ROOM_KEY);
  if (reason === "ended" && consult) state.ended = consult;
  else if (reason === "replaced" && message) say(message);
  else if (reason === "full") say(message ? { text: message, error: true } : { key: "room.full", error: true });
  state.roundsList?.load();
  if (location.hash && location.hash !== "#/") location.hash = "#/";
  else render();
}

// The rooms and the pre-join screen put themselves on the page through this.
function show(element) {
  app.replaceChildren(element);
}

// The camera, microphone and network check (the pre-join screen with the server's echo test).
async function check() {
  if (state.room) return;
  state.room = { close() {} }; // holds the page like a room while the check runs
  try {
    await preJoin(ctx({ show }), { title: t("prejoin.check_title"), check: true });
  } finally {
    state.room = null;
    render();
  }
}

const openConsult = (consult) => openRoom(ConsultRoom, consult);
const openRound = (round) => openRoom(RoundRoom, round);

// Accepted from the offer dialog, on whatever screen: a round's call is left for the consult's.
async function acceptedOffer(consult) {
  if (state.room) {
    const previous = state.room;
    previous.close();
    if (state.room === previous) state.room = null;
  }
  await openConsult(consult);
}

// The week's ward rounds, kept across redraws; rebuilt on a language change.
function roundsSection() {
  if (!state.roundsList || state.roundsList.language !== language) {
    state.roundsList = new RoundsList({ h, t, api, language, user: state.user, onEnter: openRound });
    state.roundsList.language = language;
  }
  return state.roundsList.element;
}

function homeScreen() {
  const role = state.user.role;
  if (role === "supervisor") {
    if (!state.board || state.board.language !== language) {
      state.board?.stop();
      state.board = new Board({ h, t, when, api, token: state.token, specialtyName });
      state.board.language = language;
      state.board.start();
    }
    return { element: state.board.element };
  }
  if (role === "admin") {
    if (!state.admin || state.admin.language !== language)
      state.admin = { language, element: adminHome({ h, t, api, when, specialtyName }) };
    return { element: h("div", {}, state.admin.element, roundsSection()) };
  }
  if (!state.home || state.home.language !== language) {
    state.home?.close();
    state.home = new Home(ctx({ openRoom: openConsult, rounds: roundsSection, onFlash: flashTitle, onCheck: check }));
    state.home.language = language;
  } else state.home.draw();
  const notice = endedNotice();
  return { element: notice ? h("div", {}, notice, state.home.element) : state.home.element };
}

// The monthly report: the server's printable page inside the app (the board's view of it).
function reportScreen(month) {
  const view = new ReportView(ctx({ token: state.token }), month, { onBack: () => (location.hash = "#/") });
  view.load();
  return view;
}

function render() {
  if (!state.user) {
    showLogin();
    return;
  }
  if (state.room) return; // the room draws itself
  drawHeader();
  state.screen?.close?.();
  const hash = location.hash || "#/";
  let match;
  if (hash === "#/history") state.screen = new History(ctx());
  else if ((match = hash.match(/^#\/record\/(.+)$/)))
    state.screen = new RecordPage(ctx(), decodeURIComponent(match[1]));
  else if ((match = hash.match(/^#\/report\/(\d{4}-\d{2})$/))) state.screen = reportScreen(match[1]);
  else state.screen = homeScreen();
  app.replaceChildren(state.screen.element);
}

// The tab's title flashes when a request is accepted, until the tab is looked at.
let flashing = null;
let flashWords = () => "";
// `text`: the words, or a function giving them in the language of the moment.
function flashTitle(text) {
  const plain = () => t("app.document_title");
  const words = () => (typeof text === "function" ? text() : text);
  flashWords = words;
  clearInterval(flashing);
  let on = false;
  const stop = () => {
    clearInterval(flashing);
    flashing = null;
    document.title = plain();
  };
  flashing = setInterval(() => {
    on = !on;
    document.title = on ? `● ${words()}` : plain();
  }, 1000);
  setTimeout(stop, 20000);
  document.addEventListener(
    "visibilitychange",
    () => document.visibilityState === "visible" && document.hasFocus() && stop(),
    { once: true },
  );
  ringer.chime();
}

function signOut(notice = null) {
  const token = state.token;
  // Signing out ends the token on the server too (POST /api/logout), not only in this tab.
  if (token && !notice)
    fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ROOM_KEY);
  state.room?.close();
  state.room = null;
  state.connection?.close();
  state.connection = null;
  state.board?.stop();
  state.desk?.close();
  state.home?.close();
  state.screen?.close?.();
  Object.assign(state, {
    board: null,
    admin: null,
    desk: null,
    home: null,
    screen: null,
    roundsList: null,
    ended: null,
    user: null,
    connectedOnce: false,
  });
  say(null);
  showLogin(notice);
}

document.getElementById("language").addEventListener("click", async () => {
  await load(language === "vi" ? "en" : "vi");
  // A flashing title keeps flashing, in the new language.
  document.title =
    flashing && document.title.startsWith("● ") ? `● ${flashWords()}` : t("app.document_title");
  // What was read out is said; left in the live region it would be the old language's words.
  announcer.textContent = "";
  drawBanner();
  state.desk?.redraw();
  if (!state.user) showLogin();
  else if (!state.room) render();
  else {
    // A call (or its pre-join screen) is not redrawn, which would drop its videos: its texts are.
    retranslate(app);
    state.room.retranslate?.();
  }
});
document.getElementById("logout").addEventListener("click", () => signOut());
document.getElementById("menu-button").addEventListener("click", (e) => {
  const open = e.currentTarget.getAttribute("aria-expanded") !== "true";
  e.currentTarget.setAttribute("aria-expanded", String(open));
  document.getElementById("account").classList.toggle("open", open);
});
window.addEventListener("hashchange", () => {
  document.getElementById("account").classList.remove("open");
  document.getElementById("menu-button").setAttribute("aria-expanded", "false");
  if (state.room) return; // a call is not left by following a link; its own Leave does that
  render();
});
// Unsent clinical writes are kept (and resent on the next visit), but say so before closing.
window.addEventListener("beforeunload", (e) => {
  if (state.connection?.outbox?.pending().length) {
    e.preventDefault();
    e.returnValue = "";
  }
});
// Only the app shell is cached (static/sw.js): never the API or the socket.
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/static/sw.js", { scope: "/" }).catch(() => {});

await load();
document.title = t("app.document_title");
if (state.token) start();
else showLogin();

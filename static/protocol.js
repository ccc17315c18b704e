// The protocol layer: one connection to the service, one state, and the outbox for clinical writes.
// It never touches the page (no document, window or localStorage: the socket.io client and the
// storage are handed in), so the same file runs in the browser and under Node's test runner.
//
// The state is `session:state` (sent after every connect) moved along by every later event with
// `applyEvent`, a pure function: after any sequence of events it equals what a fresh
// `session:state` would give (tests/js/state.test.mjs checks it against a real server). A lost
// event is healed by the next connect's snapshot.
import { Outbox, outboxKey } from "./outbox.js";

export class ProtocolError extends Error {
  // code: a contract code (`invalid`, `forbidden`, `conflict`, `unavailable`, …), or `timeout`
  // (no answer in time) or `offline` (not connected, or the connection dropped while waiting).
  constructor(code, message, detail = undefined) {
    super(message || code);
    this.name = "ProtocolError";
    this.code = code;
    this.detail = detail ?? message;
  }
}

// Answers after which a write is kept and sent again (`rate_limited` only when it is passing, see
// retryAfterMs); any other error answer is a refusal.
export const RETRYABLE = new Set(["timeout", "offline", "unavailable", "rate_limited"]);
// How long to wait before sending a write again after this error answer; null: it is refused.
// `rate_limited` is passing when it says when to try again (the event budget: "try again in N s");
// without that it is a cap the user must act on (too many open requests), and waiting will not
// help.
export function retryAfterMs(error, fallbackMs = DEFAULT_DELAYS.retryWriteMs) {
  if (!RETRYABLE.has(error?.code)) return null;
  if (error.code !== "rate_limited") return fallbackMs;
  const seconds = error.retry_after_s ?? Number(/try again in (\d+) s/.exec(error.message || "")?.[1]);
  return Number.isFinite(seconds) && seconds > 0 ? Math.max(fallbackMs, seconds * 1000) : null;
}

// Writes whose payload carries the op_id that makes a repeat harmless on the server. Others are
// still kept in the outbox under an op_id of their own, which is not sent.
export const WRITES_WITH_OP_ID = new Set([
  "note:add", "note:amend", "consult:request", "consult:end", "consult:result", "consult:consent",
]);
// Consults the user's screen lists (as `session:state.consults` does).
const OPEN = new Set(["queued", "offered", "active"]);
// Server events that change nothing `session:state` holds (calls, files, invitations, notes:
// those are read with their own snapshots: `consult:join`, `note:list`, the record).
export const EVENTS_WITHOUT_STATE = new Set([
  "note:added",
  "attachment:added",
  "consult:invited",
  "consult:uninvited",
  "consult:peer-joined",
  "consult:peer-reconnecting",
  "consult:peer-left",
  "consult:replaced",
  "rtc:signal",
  "round:lead-requested",
  "round:peer-joined",
  "round:peer-reconnecting",
  "round:peer-left",
  "round:replaced",
  "recording:updated",
]);

export function stateFromSession(session, status = "connected", seen = new Map()) {
  const consults = new Map(session.consults.map((c) => [c.id, c]));
  const offers = new Map(session.offers.map((o) => [o.consult.id, { consult: o.consult, expires_at: o.expires_at }]));
  let remembered = seen;
  for (const consult of [...consults.values(), ...[...offers.values()].map((o) => o.consult)]) {
    remembered = remember(remembered, consult);
  }
  return {
    user: session.user,
    presence: session.presence,
    consults,
    offers,
    rounds: [...session.rounds],
    server_time: session.server_time,
    status,
    seen: remembered,
  };
}

export function emptyState(status = "connecting") {
  return {
    user: null,
    presence: null,
    consults: new Map(),
    offers: new Map(),
    rounds: [],
    server_time: null,
    status,
    seen: new Map(),
  };
}

// The state after one server event; `state` is left as it was (a changed part is a new object,
// the rest is shared). Unknown events change nothing.
export function applyEvent(state, name, payload) {
  switch (name) {
    case "session:state":
      return stateFromSession(payload, "connected", state.seen);
    case "presence:changed":
      return { ...state, presence: payload.presence };
    case "consult:offer": {
      if (isOlder(state, payload.consult)) return state;
      const offers = new Map(state.offers);
      offers.set(payload.consult.id, { consult: payload.consult, expires_at: payload.expires_at });
      return consultChanged({ ...state, offers }, payload.consult);
    }
    case "consult:updated": {
      const consult = payload.consult;
      if (isOlder(state, consult)) return state;
      // An offer stays open only while the consult is offered as it was when offered; any other
      // change (taken, cancelled, expired, moved on to someone else) closes it.
      const offer = state.offers.get(consult.id);
      let next = state;
      if (offer && !(consult.status === "offered" && consult.version === offer.consult.version)) {
        const offers = new Map(state.offers);
        offers.delete(consult.id);
        next = { ...state, offers };
      }
      return consultChanged(next, consult);
    }
    case "round:updated":
      return roundChanged(state, payload.round);
    case "round:starting": {
      const rounds = state.rounds.filter((r) => r.round.id !== payload.round.id);
      return { ...state, rounds: [...rounds, { round: payload.round, starts_at: payload.starts_at }] };
    }
    default:
      return state;
  }
}

// Never go back to an older version of a consult than one already seen, also once that consult
// has left the screen: events from two instances may cross, and a `cancelled` arriving before the
// `offered` that preceded it must not bring the offer back.
function isOlder(state, consult) {
  const known = state.seen?.get(consult.id);
  return known != null && known > consult.version;
}

// How many consults' versions a screen remembers; the oldest remembered is forgotten first.
const SEEN_LIMIT = 1000;

// `seen` with the consult's version in it (a new Map when it changes).
function remember(seen, consult) {
  const known = seen.get(consult.id);
  if (known != null && known >= consult.version) return seen;
  const next = new Map(seen);
  next.delete(consult.id); // re-inserted last: the most recently changed is forgotten last
  next.set(consult.id, consult.version);
  if (next.size > SEEN_LIMIT) next.delete(next.keys().next().value);
  return next;
}

// `consults` holds the user's open consults as requester or specialist (not round patients');
// an offer card shows the consult as it is now; a round patient's row shows its consult's status.
function consultChanged(state, consult) {
  const me = state.user?.id;
  const mine = me != null && (consult.requester?.id === me || consult.specialist?.id === me);
  const consults = new Map(state.consults);
  if (mine && OPEN.has(consult.status) && consult.kind !== "round") consults.set(consult.id, consult);
  else consults.delete(consult.id);
  let offers = state.offers;
  const offer = offers.get(consult.id);
  if (offer && offer.consult !== consult) {
    offers = new Map(offers);
    offers.set(consult.id, { ...offer, consult });
  }
  let rounds = state.rounds;
  if (rounds.some((r) => (r.round.patients || []).some((p) => p.consult_id === consult.id))) {
    rounds = rounds.map((entry) => {
      const patients = entry.round.patients || [];
      if (!patients.some((p) => p.consult_id === consult.id)) return entry;
      const changed = patients.map((p) =>
        p.consult_id === consult.id ? { ...p, status: consult.status, outcome: consult.outcome } : p,
      );
      return { ...entry, round: { ...entry.round, patients: changed } };
    });
  }
  return { ...state, consults, offers, rounds, seen: remember(state.seen ?? new Map(), consult) };
}

// Keep the highest (version, session.version) of a round, as the protocol says.
function roundChanged(state, round) {
  const rank = (r) => [r.version || 0, r.session?.version || 0];
  const atLeast = (a, b) => a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1]);
  let changed = false;
  const rounds = state.rounds.map((entry) => {
    if (entry.round.id !== round.id || !atLeast(rank(round), rank(entry.round))) return entry;
    changed = true;
    return { ...entry, round };
  });
  return changed ? { ...state, rounds } : state;
}

// Server events and the names the page listens to (the payload is passed on as it came).
const PASSED_ON = {
  "note:added": "note",
  "attachment:added": "attachment",
  "consult:peer-joined": "peer-joined",
  "consult:peer-reconnecting": "peer-reconnecting",
  "consult:peer-left": "peer-left",
  "rtc:signal": "signal",
  "round:peer-joined": "round-peer-joined",
  "round:peer-reconnecting": "round-peer-reconnecting",
  "round:peer-left": "round-peer-left",
  "consult:replaced": "replaced",
  "round:replaced": "replaced",
  "round:starting": "round-starting",
  "round:lead-requested": "lead-requested",
  "consult:invited": "invited",
  "consult:uninvited": "uninvited",
  "presence:changed": "presence",
  "consult:offer": "offer",
  "round:updated": "round",
  "recording:updated": "recording",
};

const DEFAULT_DELAYS = {
  refusedMs: 3000, // connect refused for now (`unavailable`): socket.io-client does not retry it
  rateLimitedMs: 15000, // too many sockets of this user: try again now and then
  retryWriteMs: 3000, // a write answered `unavailable`, `rate_limited` or not at all, still connected
};

export class Connection {
  constructor({ io, token, url = undefined, storage, path = undefined, delays = {}, timeoutMs = 10000 }) {
    this.io = io;
    this.token = token;
    this.url = url;
    this.path = path;
    this.delays = { ...DEFAULT_DELAYS, ...delays };
    this.timeoutMs = timeoutMs;
    this.socket = null;
    this.state = emptyState("connecting");
    // The outbox is per user, so that another user signing in on this device never sends (or
    // sees) what the previous one wrote; the token says whose it is before the server does.
    this.outbox = new Outbox(storage, outboxKey(tokenSubject(token) ?? "unknown"));
    this.listeners = new Map();
    this.synced = false; // session:state received since the last connect
    this.waiters = new Map(); // op_id -> [{resolve, reject}] of write() calls
    this.calls = new Set(); // answers awaited, rejected `offline` when the socket drops
    this.timers = new Set();
    this.flushing = null;
    this.again = false;
  }

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return this;
  }

  off(name, fn) {
    this.listeners.get(name)?.delete(fn);
    return this;
  }

  emit(name, payload) {
    for (const fn of [...(this.listeners.get(name) || [])]) {
      try {
        fn(payload);
      } catch (error) {
        // One broken listener must not stop the others, nor the state from moving on.
        globalThis.console?.error?.(`listener of ${name}`, error);
      }
    }
  }

  connect() {
    if (this.socket) return;
    // forceNew: this connection owns its Manager (socket.io-client would otherwise share one per
    // address), so that closing it closes its WebSocket too.
    const options = { auth: { token: this.token }, transports: ["websocket"], forceNew: true };
    if (this.path !== undefined) options.path = this.path;
    const socket = this.url === undefined ? this.io(options) : this.io(this.url, options);
    this.socket = socket;
    this.#status({ status: "connecting" });
    socket.on("connect_error", (error) => this.#refused(socket, error));
    socket.on("disconnect", (reason) => this.#dropped(socket, reason));
    socket.on("session:state", (session) => this.#session(session));
    socket.on("consult:updated", (payload) => this.#consultUpdated(payload));
    for (const [event, name] of Object.entries(PASSED_ON)) {
      socket.on(event, (payload) => {
        this.#apply(event, payload);
        this.emit(name, payload);
      });
    }
    // Every event also as one stream, in the order received (the state tests record it); it is
    // told before the event is applied and passed on by name.
    socket.onAny((event, payload) => this.emit("event", { name: event, payload }));
  }

  close() {
    for (const timer of this.timers) globalThis.clearTimeout(timer);
    this.timers.clear();
    const socket = this.socket;
    this.socket = null;
    this.synced = false;
    socket?.off();
    socket?.offAny();
    socket?.disconnect();
    this.#abandon("offline", "closed");
    this.#status({ status: "closed" });
  }

  get connected() {
    return Boolean(this.socket?.connected && this.synced);
  }

  // One event with its answer. Rejects with ProtocolError: the error answer's code, `timeout`,
  // or `offline` (not connected now, or the connection dropped before the answer came).
  async request(event, payload, { timeoutMs = this.timeoutMs } = {}) {
    const ack = await this.#call(event, payload, timeoutMs);
    if (!ack || ack.ok !== true) {
      const error = ack?.error || {};
      throw new ProtocolError(error.code || "invalid", error.message, error);
    }
    this.#learn(ack);
    return ack;
  }

  // A clinical write, through the outbox: kept (with its op_id) before it is sent, sent now if
  // connected, and again after every reconnect until answered. Resolves with the ack once it is
  // stored; rejects with ProtocolError only when the server refuses it (then it is dropped from
  // the outbox and "outbox-failed" is emitted too). While it cannot be sent it stays pending.
  write(event, payload) {
    const body = { ...payload };
    let opId = body.op_id;
    if (!opId) {
      opId = newOpId();
      if (WRITES_WITH_OP_ID.has(event)) body.op_id = opId;
    }
    const entry = { op_id: opId, event, payload: body, queued_at: new Date().toISOString(), attempts: 0 };
    const promise = new Promise((resolve, reject) => {
      if (!this.waiters.has(opId)) this.waiters.set(opId, []);
      this.waiters.get(opId).push({ resolve, reject });
    });
    this.outbox.add(entry);
    this.emit("outbox", this.outbox.pending());
    this.flush();
    return promise;
  }

  // True while some write is not yet acknowledged: the page warns before it is closed.
  beforeUnloadNeeded() {
    return this.outbox.pending().length > 0;
  }

  // An rtc:signal to one peer of a call (`roomKey`: "consult_id" or "round_id").
  signal(roomKey, roomId, to, data) {
    return this.request("rtc:signal", { [roomKey]: roomId, to, data });
  }

  // Sends the pending writes in order, one at a time, while connected. Called after every
  // session:state and every write; a second call while one runs makes it go round again.
  flush() {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      do {
        this.again = false;
        for (const entry of this.outbox.pending()) {
          if (!this.connected) return;
          if (!(await this.#send(entry))) return;
        }
      } while (this.again);
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  // One try at one entry. False when it must wait (the rest wait behind it, to keep the order).
  async #send(entry) {
    if (!this.outbox.get(entry.op_id)) return true; // answered meanwhile (another tab, or twice)
    this.outbox.attempted(entry.op_id);
    let ack;
    try {
      ack = await this.#call(entry.event, entry.payload, this.timeoutMs);
    } catch (error) {
      ack = { ok: false, error: { code: error.code || "offline", message: error.message } };
    }
    if (ack?.ok === true) {
      this.outbox.remove(entry.op_id);
      this.#learn(ack);
      this.emit("outbox", this.outbox.pending());
      this.emit("outbox-sent", { entry, ack });
      this.#settle(entry.op_id, (w) => w.resolve(ack));
      return true;
    }
    const error = ack?.error || { code: "invalid" };
    const wait = retryAfterMs(error, this.delays.retryWriteMs);
    if (wait !== null) {
      // Kept, with why it is not through yet (the page may say "no answer" or "service down").
      const kept = this.outbox.get(entry.op_id);
      if (kept) this.outbox.add({ ...kept, last_error: error.code });
      if (this.connected) this.#later(() => this.flush(), wait);
      this.emit("outbox", this.outbox.pending());
      return false;
    }
    this.outbox.remove(entry.op_id);
    const refusal = new ProtocolError(error.code, error.message, error);
    this.emit("outbox", this.outbox.pending());
    this.emit("outbox-failed", { entry, error: refusal });
    this.#settle(entry.op_id, (w) => w.reject(refusal));
    return true;
  }

  #settle(opId, fn) {
    const waiting = this.waiters.get(opId) || [];
    this.waiters.delete(opId);
    for (const w of waiting) fn(w);
  }

  // Emits with an answer expected; an answer that never comes is `timeout`, a drop `offline`.
  #call(event, payload, timeoutMs) {
    const socket = this.socket;
    if (!socket?.connected) return Promise.reject(new ProtocolError("offline", "not connected"));
    return new Promise((resolve, reject) => {
      const call = {
        reject: (error) => finish(() => reject(error)),
      };
      const timer = globalThis.setTimeout(
        () => finish(() => reject(new ProtocolError("timeout", `no answer to ${event} in ${timeoutMs} ms`))),
        timeoutMs,
      );
      const finish = (fn) => {
        if (!this.calls.delete(call)) return;
        globalThis.clearTimeout(timer);
        fn();
      };
      this.calls.add(call);
      socket.emit(event, payload, (ack) => finish(() => resolve(ack)));
    });
  }

  #abandon(code, message) {
    for (const call of [...this.calls]) call.reject(new ProtocolError(code, message));
  }

  // What an answer tells about the state (the server tells the other devices by events; the
  // device that acted reads it from the answer).
  #learn(ack) {
    if (ack.presence) this.#apply("presence:changed", { presence: ack.presence });
    if (ack.consult?.id && ack.consult.version != null) this.#consultUpdated({ consult: ack.consult });
    if (ack.round?.id) this.#apply("round:updated", { round: ack.round });
  }

  #apply(event, payload) {
    if (!this.state.user) return; // nothing to move along before the first session:state
    this.state = applyEvent(this.state, event, payload);
  }

  #consultUpdated(payload) {
    const before = this.state;
    this.#apply("consult:updated", payload);
    const id = payload.consult.id;
    if (this.state === before) return;
    this.emit("consult", payload);
    if (before.offers.has(id) && !this.state.offers.has(id)) {
      this.emit("offer-gone", { consult_id: id, reason: payload.consult.status, consult: payload.consult });
    }
  }

  #session(session) {
    this.synced = true;
    this.state = stateFromSession(session, "connected", this.state.seen);
    if (session.user?.id) this.outbox.moveTo(outboxKey(session.user.id));
    this.#status({ status: "connected" });
    this.emit("state", this.state);
    this.emit("outbox", this.outbox.pending());
    this.flush();
  }

  #status(status) {
    this.state = { ...this.state, status: status.status };
    this.emit("status", status);
  }

  #refused(socket, error) {
    if (socket !== this.socket) return;
    const code = error?.data?.code;
    const message = error?.data?.message || error?.message;
    if (code === "unauthorized") {
      socket.disconnect();
      this.#status({ status: "refused", code, message });
      return;
    }
    this.#status({ status: "reconnecting", code, message });
    // A refusal by the server is not retried by socket.io-client (a network error is).
    const delay = code === "rate_limited" ? this.delays.rateLimitedMs : this.delays.refusedMs;
    this.#later(() => {
      if (this.socket === socket && !socket.active) socket.connect();
    }, delay);
  }

  #dropped(socket, reason) {
    if (socket !== this.socket) return;
    this.synced = false;
    this.#abandon("offline", `disconnected: ${reason}`);
    this.#status({ status: "reconnecting", message: reason });
    // The server ended this socket (deactivated, password changed, storage restarted):
    // socket.io-client would not come back by itself. Still valid, it resumes; if not, the
    // refusal (`unauthorized`) ends in "refused".
    if (reason === "io server disconnect") socket.connect();
  }

  #later(fn, ms) {
    const timer = globalThis.setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }
}

// A new op_id. crypto.randomUUID exists only on secure pages (HTTPS or localhost); a hospital
// reaching the service over plain HTTP on its own network still gets 122 random bits.
export function newOpId() {
  const crypto = globalThis.crypto;
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// The user id a token was issued to (its `sub`), read without checking it: only to pick the
// outbox's key before the server answers. Null if it cannot be read.
function tokenSubject(token) {
  try {
    const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(globalThis.atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof claims.sub === "string" ? claims.sub : null;
  } catch {
    return null;
  }
}

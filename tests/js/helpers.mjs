// What the protocol layer's tests share: where the real instances are (from the pytest wrapper,
// tests/system/test_protocol_js.py), Web Storage in Node, and waiting for things to happen.
import assert from "node:assert/strict";
import test from "node:test";
import { io } from "../../static/vendor/socket.io.esm.min.js";
import { Connection } from "../../static/protocol.js";

export { io };

// A test that waits longer than this fails (and says where), rather than holding up the run.
export const TEST_TIMEOUT_MS = 20000;
export const check = (name, fn) => test(name, { timeout: TEST_TIMEOUT_MS }, fn);

export const env = {
  url: need("TELEROUNDS_URL"),
  urlB: process.env.TELEROUNDS_URL_B || process.env.TELEROUNDS_URL,
  control: process.env.TELEROUNDS_CONTROL,
  password: process.env.TELEROUNDS_PASSWORD,
  tokens: {
    clinician: need("TELEROUNDS_TOKEN_CLINICIAN"),
    specialist: need("TELEROUNDS_TOKEN_SPECIALIST"),
  },
};

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/system/test_protocol_js.py`);
  return value;
}

// The Web Storage interface (what localStorage offers), kept in a Map: in Node there is no
// localStorage, and a "reload" is a new Connection handed the same object.
export class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

// Short delays so the tests need not wait the page's.
const DELAYS = { refusedMs: 300, rateLimitedMs: 300, retryWriteMs: 300 };

// A connection of a demo user ("clinician": a clinician at Ba Vì, "specialist": a surgeon at
// Xanh Pôn), connected and holding its first session:state; it records every event it gets.
export async function open(who, { url = env.url, storage = new MemoryStorage(), connect = true } = {}) {
  const connection = new Connection({ io, token: env.tokens[who], url, storage, delays: DELAYS });
  connection.log = [];
  connection.on("event", (e) => connection.log.push(e));
  if (connect) {
    const ready = next(connection, "state");
    connection.connect();
    await ready;
  }
  return connection;
}

// The next `name` emitted by the connection for which `check` holds.
export function next(connection, name, check = () => true, within = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.off(name, fn);
      reject(new Error(`no ${name} within ${within} ms`));
    }, within);
    const fn = (payload) => {
      if (!check(payload)) return;
      clearTimeout(timer);
      connection.off(name, fn);
      resolve(payload);
    };
    connection.on(name, fn);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Until no connection has received an event for `quietMs`: the action's events have all come.
export async function settle(connections, quietMs = 1200) {
  let seen = connections.map((c) => c.log.length);
  for (;;) {
    await sleep(quietMs);
    const now = connections.map((c) => c.log.length);
    if (now.every((n, i) => n === seen[i])) return;
    seen = now;
  }
}

// The session:state a newly connected socket is given (a socket of its own, then closed).
export async function freshSession(who, url = env.url) {
  const socket = io(url, { auth: { token: env.tokens[who] }, transports: ["websocket"], forceNew: true });
  try {
    return await new Promise((resolve, reject) => {
      socket.on("session:state", resolve);
      socket.on("connect_error", reject);
    });
  } finally {
    socket.disconnect();
  }
}

// Fields that move with the clock, not with events.
const VOLATILE = new Set(["server_time", "waiting_s", "duration_s"]);

// A state in a form two states compare in: maps as lists ordered by id, the clock left out,
// and not the connection's status.
export function comparable(state) {
  const strip = (value) => {
    if (Array.isArray(value)) return value.map(strip);
    if (value && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value)
          .filter(([k]) => !VOLATILE.has(k))
          .map(([k, v]) => [k, strip(v)]),
      );
    }
    return value;
  };
  const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return strip({
    user: state.user,
    presence: state.presence,
    consults: [...state.consults.values()].sort(byId),
    offers: [...state.offers.values()].sort((a, b) => byId(a.consult, b.consult)),
    rounds: [...state.rounds].sort((a, b) => byId(a.round, b.round)),
  });
}

// A raw socket of a user, for what the test does beside the connection under test.
export async function rawSocket(who, url = env.url) {
  const socket = io(url, { auth: { token: env.tokens[who] }, transports: ["websocket"], forceNew: true });
  try {
    await new Promise((resolve, reject) => {
      socket.on("session:state", resolve);
      socket.on("connect_error", reject);
    });
  } catch (error) {
    socket.disconnect(); // a refused socket keeps its WebSocket open otherwise
    throw error;
  }
  return socket;
}

// Every note of a consult, page after page, as a participant reads them.
export async function notesOf(connection, consultId) {
  const notes = [];
  let cursor = null;
  for (;;) {
    const ask = cursor ? { consult_id: consultId, cursor } : { consult_id: consultId };
    const ack = await connection.request("note:list", ask);
    notes.push(...ack.notes);
    cursor = ack.next_cursor;
    if (!cursor) return notes;
  }
}

// The patient's consent a request carries (a routine or urgent one is refused without it).
export const CONSENT = { given_by: "patient", method: "verbal", scopes: ["consult"] };

// A consult from the clinician to the specialist by name, accepted: active, ready for notes.
export async function activeConsult(clinician, specialist, ref) {
  const offered = next(specialist, "offer", (o) => o.consult.patient.ref === ref);
  const { consult } = await clinician.write("consult:request", {
    specialty: "surgery",
    urgency: "routine",
    patient: { ref },
    consent: CONSENT,
    specialist_id: specialist.state.user.id,
  });
  await offered;
  const accepted = await specialist.request("consult:accept", { consult_id: consult.id });
  assert.equal(accepted.consult.status, "active");
  return accepted.consult;
}

// Ends a consult (the cap on open requests is small: every test tidies up after itself).
export async function end(connection, consultId) {
  return connection.write("consult:end", { consult_id: consultId, outcome: "treated_locally" });
}

// Asks the pytest side to stop or start again the instance at TELEROUNDS_URL.
export async function instance(action) {
  assert.ok(env.control, "TELEROUNDS_CONTROL is not set");
  const response = await fetch(`${env.control}/${action}`, { method: "POST" });
  assert.equal(response.status, 200, `control ${action}`);
}

// A sign-in of its own (a token no other test uses), as the login page does.
export async function signIn(username, url = env.url) {
  const response = await fetch(`${url}/api/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password: env.password }),
  });
  assert.equal(response.status, 200, `sign-in of ${username}`);
  return (await response.json()).token;
}

// applyEvent and the Outbox on their own (no server): the rules the state tests rely on, each
// shown on a small example. Runs without an instance too: node --test tests/js/reducer.test.mjs
import test from "node:test";
import assert from "node:assert/strict";
import { applyEvent, newOpId, retryAfterMs, stateFromSession } from "../../static/protocol.js";
import { Outbox } from "../../static/outbox.js";

const person = (id, role) => ({ id, name: id, role, hospital: { id: "h", name: "h", level: "district" } });
const me = person("me", "specialist");
const other = person("other", "clinician");

function consult(id, status, version, extra = {}) {
  return { id, kind: "consult", status, version, requester: other, specialist: null, created_at: "t", ...extra };
}

function session(extra = {}) {
  return {
    user: me,
    presence: { status: "available", online: true },
    consults: [],
    offers: [],
    rounds: [],
    server_time: "t",
    ...extra,
  };
}

// applyEvent, checking on the way that the state it is given is left exactly as it was.
function apply(state, name, payload) {
  const before = structuredClone(state);
  const after = applyEvent(state, name, payload);
  assert.deepEqual(state, before, `${name} changed the state it was given`);
  return after;
}

test("an offer is held while the consult is offered as it was, and closes on any other change", () => {
  const offered = consult("c1", "offered", 2);
  let state = stateFromSession(session());
  state = apply(state, "consult:offer", { consult: offered, expires_at: "x" });
  assert.equal(state.offers.get("c1").expires_at, "x");
  assert.equal(state.consults.size, 0, "an offer is not one of my consults yet");
  const same = apply(state, "consult:updated", { consult: offered });
  assert.ok(same.offers.has("c1"));
  const moved = apply(state, "consult:updated", { consult: consult("c1", "offered", 3) });
  assert.ok(!moved.offers.has("c1"), "offered to someone else now");
  const mine = apply(state, "consult:updated", { consult: consult("c1", "active", 3, { specialist: me }) });
  assert.ok(!mine.offers.has("c1"));
  assert.equal(mine.consults.get("c1").status, "active");
});

test("a consult is never replaced by an older version", () => {
  let state = stateFromSession(session({ consults: [consult("c1", "active", 5, { specialist: me })] }));
    const late = apply(state, "consult:updated", { consult: consult("c1", "ended", 4, { specialist: me }) });
  assert.equal(late, state, "an older version changes nothing");
  const ended = apply(state, "consult:updated", { consult: consult("c1", "ended", 6, { specialist: me }) });
  assert.ok(!ended.consults.has("c1"), "an ended consult leaves the list");
  assert.ok(state.consults.has("c1"), "the state given is left as it was");
});

test("a consult that has left the screen is not brought back by an older event that crossed it", () => {
  // Two instances sent `offered` (v2) and `cancelled` (v3); the cancellation arrived first.
  let state = stateFromSession(session({ user: other }));
  state = apply(state, "consult:updated", { consult: consult("c1", "cancelled", 3) });
  const late = apply(state, "consult:updated", { consult: consult("c1", "offered", 2) });
  assert.equal(late, state, "the older `offered` changes nothing");
  assert.equal(late.consults.size, 0);
  const lateOffer = apply(state, "consult:offer", { consult: consult("c1", "offered", 2), expires_at: "x" });
  assert.equal(lateOffer.offers.size, 0, "nor does an older offer");
  const reconnected = applyEvent(state, "session:state", session({ user: other }));
  assert.equal(applyEvent(reconnected, "consult:updated", { consult: consult("c1", "offered", 2) }), reconnected);
});

test("only the user's own open consults are listed, not round patients'", () => {
  const state = stateFromSession(session());
  const others = apply(state, "consult:updated", { consult: consult("c2", "active", 1, { specialist: other }) });
  assert.equal(others.consults.size, 0);
  const round = apply(state, "consult:updated", {
    consult: consult("c3", "active", 1, { specialist: me, kind: "round" }),
  });
  assert.equal(round.consults.size, 0);
  const queued = apply(state, "consult:updated", { consult: consult("c4", "queued", 1, { requester: me }) });
  assert.ok(queued.consults.has("c4"));
});

test("rounds keep the highest version; a round patient's row shows its consult's status", () => {
  const round = { id: "r1", version: 2, session: { version: 1 }, patients: [{ consult_id: "c9", status: "queued" }] };
  const state = stateFromSession(session({ rounds: [{ round, starts_at: "s" }] }));
  const older = apply(state, "round:updated", { round: { ...round, version: 1, title: "old" } });
  assert.equal(older, state);
  const newer = apply(state, "round:updated", { round: { ...round, session: { version: 2 }, title: "new" } });
  assert.equal(newer.rounds[0].round.title, "new");
  const decided = apply(state, "consult:updated", {
    consult: consult("c9", "ended", 3, { kind: "round", outcome: "transfer" }),
  });
  assert.deepEqual(decided.rounds[0].round.patients[0], { consult_id: "c9", status: "ended", outcome: "transfer" });
  const starting = apply(state, "round:starting", { round: { id: "r2", version: 1 }, starts_at: "s2" });
  assert.deepEqual(
    starting.rounds.map((r) => r.round.id),
    ["r1", "r2"],
  );
});

test("events without state, and unknown ones, leave the state as it was", () => {
  const state = stateFromSession(session());
  for (const name of ["note:added", "rtc:signal", "consult:peer-joined", "something:new"]) {
    assert.equal(apply(state, name, {}), state);
  }
  const presence = apply(state, "presence:changed", { presence: { status: "away" }, reason: "offer_missed" });
  assert.equal(presence.presence.status, "away");
});

class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.get(key) ?? null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

test("the outbox is kept as JSON under its key, in order, and read back by another outbox", () => {
  const storage = new MemoryStorage();
  const outbox = new Outbox(storage, "telerounds.outbox.u1");
  outbox.add({ op_id: "a", event: "note:add", payload: { consult_id: "c1" }, attempts: 0 });
  outbox.add({ op_id: "b", event: "consult:end", payload: { consult_id: "c2" }, attempts: 0 });
  const again = new Outbox(storage, "telerounds.outbox.u1");
  assert.deepEqual(
    again.pending().map((e) => e.op_id),
    ["a", "b"],
  );
  assert.deepEqual(
    again.forConsult("c2").map((e) => e.op_id),
    ["b"],
  );
  again.attempted("a");
  assert.equal(outbox.get("a").attempts, 1);
  assert.ok(outbox.remove("a"));
  assert.ok(outbox.remove("b"));
  assert.equal(storage.getItem("telerounds.outbox.u1"), null, "an empty outbox leaves nothing behind");
});

test("a storage that refuses still lets the outbox work, in memory", () => {
  const full = { getItem: () => null, setItem: () => { throw new Error("QuotaExceededError"); }, removeItem() {} };
  const outbox = new Outbox(full, "k");
  outbox.add({ op_id: "a", event: "note:add", payload: {} });
  assert.deepEqual(
    outbox.pending().map((e) => e.op_id),
    ["a"],
  );
});

test("a passing refusal is retried after the wait it names; a cap or a refusal is not", () => {
  assert.equal(retryAfterMs({ code: "unavailable", message: "database unavailable" }, 3000), 3000);
  assert.equal(retryAfterMs({ code: "timeout" }, 3000), 3000);
  const budget = { code: "rate_limited", message: "too many events; slow down; try again in 7 s" };
  assert.equal(retryAfterMs(budget, 3000), 7000);
  assert.equal(retryAfterMs({ code: "rate_limited", message: "x", retry_after_s: 2 }, 1000), 2000);
  assert.equal(retryAfterMs({ code: "rate_limited", message: "3 requests wait already: cancel one" }, 3000), null);
  for (const code of ["invalid", "forbidden", "not_found", "conflict", "too_large", "unauthorized"]) {
    assert.equal(retryAfterMs({ code, message: "try again in 1 s" }), null, code);
  }
});

test("op_ids are UUIDs, also where crypto.randomUUID is missing (a page over plain HTTP)", () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(newOpId(), uuid);
  // As on an insecure page: the method is not there.
  Object.defineProperty(globalThis.crypto, "randomUUID", { value: undefined, configurable: true });
  try {
    assert.equal(globalThis.crypto.randomUUID, undefined);
    const ids = new Set(Array.from({ length: 100 }, () => newOpId()));
    assert.equal(ids.size, 100);
    for (const id of ids) assert.match(id, uuid);
  } finally {
    delete globalThis.crypto.randomUUID;
  }
  assert.equal(typeof globalThis.crypto.randomUUID, "function");
});

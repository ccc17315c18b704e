// The outbox: what a clinician writes is kept until the server has it, and stored exactly once.
// Real instances, the vendored socket.io client over a real WebSocket; the network "drops" by
// closing the connection, or by the pytest side stopping the instance and starting it again.
import assert from "node:assert/strict";
import { Connection, ProtocolError } from "../../static/protocol.js";
import {
  CONSENT,
  MemoryStorage,
  activeConsult,
  env,
  instance,
  io,
  next,
  notesOf,
  open,
  rawSocket,
  check,
} from "./helpers.mjs";

const count = (notes, text) => notes.filter((n) => n.text === text).length;

// A clinician at Ba Vì (on the first instance) in an active consult with a specialist at Xanh Pôn
// (on the second), for the length of `body`.
async function inConsult(name, body) {
  const storage = new MemoryStorage();
  const clinician = await open("clinician", { url: env.url, storage });
  const specialist = await open("specialist", { url: env.urlB });
  let consult = null;
  try {
    consult = await activeConsult(clinician, specialist, `BV-${name}-${Date.now()}`);
    await body({ clinician, specialist, consult, storage });
  } finally {
    // Straight to the server, not through the outbox under test: the next test needs the
    // specialist free again.
    if (consult) await specialist.request("consult:end", { consult_id: consult.id, outcome: "treated_locally" });
    clinician.close();
    specialist.close();
  }
}

check("a note written offline is kept with its op_id, resent after reconnecting, and stored once", async () => {
  await inConsult("OFFLINE", async ({ clinician, specialist, consult }) => {
    clinician.close();
    const text = `Ghi chú khi mất mạng ${Date.now()}`;
    const outboxEvents = [];
    clinician.on("outbox", (pending) => outboxEvents.push(pending.length));
    const written = clinician.write("note:add", { consult_id: consult.id, section: "examination", text });
    const [entry] = clinician.outbox.forConsult(consult.id);
    assert.ok(entry, "kept before anything is sent");
    assert.equal(entry.payload.op_id, entry.op_id);
    assert.equal(entry.payload.text, text);
    assert.ok(clinician.beforeUnloadNeeded(), "the page would warn before closing");
    assert.deepEqual(outboxEvents, [1]);

    // The first try reached the server but its answer was lost: the server has the note already.
    const socket = await rawSocket("clinician");
    const first = await socket.emitWithAck("note:add", entry.payload);
    socket.disconnect();
    assert.equal(first.ok, true);

    const back = next(clinician, "state");
    clinician.connect();
    await back;
    const ack = await written;
    assert.equal(ack.note.id, first.note.id, "the resend with the same op_id returns the same note");
    assert.equal(clinician.outbox.pending().length, 0);
    assert.equal(clinician.beforeUnloadNeeded(), false);
    assert.equal(outboxEvents.at(-1), 0);
    assert.equal(count(await notesOf(specialist, consult.id), text), 1, "stored exactly once");
  });
});

check("an end whose answer was lost is sent again with its op_id and gets the same answer", async () => {
  await inConsult("END", async ({ clinician, specialist, consult }) => {
    clinician.close();
    const ending = clinician.write("consult:end", { consult_id: consult.id, outcome: "transfer", summary: "Chuyển" });
    const [entry] = clinician.outbox.forConsult(consult.id);
    assert.equal(entry.payload.op_id, entry.op_id, "the end carries its op_id");
    // The end reached the server, but its answer was lost with the network.
    const socket = await rawSocket("clinician");
    const first = await socket.emitWithAck("consult:end", entry.payload);
    socket.disconnect();
    assert.equal(first.ok, true);
    assert.equal(first.consult.status, "ended");

    clinician.connect();
    const ack = await ending;
    assert.deepEqual(ack.consult, first.consult, "the resend is answered as the first was, not refused");
    assert.equal(clinician.outbox.pending().length, 0);
    // The specialist's own end now, another op: the outcome chosen stands and theirs is refused.
    await assert.rejects(
      specialist.write("consult:end", { consult_id: consult.id, outcome: "treated_locally" }),
      (error) => error instanceof ProtocolError && error.code === "conflict",
    );
  });
});

check("a write whose answer does not come in time stays in the outbox and is sent again", async () => {
  await inConsult("TIMEOUT", async ({ clinician, specialist, consult }) => {
    // No real network answers in a millisecond: the first try times out, after the server
    // may well have stored it.
    clinician.timeoutMs = 1;
    const text = `Ghi chú trả lời chậm ${Date.now()}`;
    const written = clinician.write("note:add", { consult_id: consult.id, section: "plan", text });
    const [kept] = await next(clinician, "outbox", (pending) => pending.some((e) => e.last_error));
    assert.equal(kept.last_error, "timeout");
    assert.ok(kept.attempts >= 1);
    assert.equal(clinician.outbox.pending().length, 1, "a timeout keeps it");
    clinician.timeoutMs = 10000;
    const ack = await written;
    assert.equal(ack.note.text, text);
    assert.ok(ack.note.seq >= 1);
    assert.equal(clinician.outbox.pending().length, 0);
    assert.equal(count(await notesOf(specialist, consult.id), text), 1, "stored exactly once");
  });
});

check("a reload (a new connection on the same storage) sends what the last page had not, once", async () => {
  await inConsult("RELOAD", async ({ clinician, specialist, consult, storage }) => {
    clinician.close();
    const texts = [`Trước khi tải lại 1 ${Date.now()}`, `Trước khi tải lại 2 ${Date.now()}`];
    for (const text of texts) clinician.write("note:add", { consult_id: consult.id, section: "assessment", text });
    const kept = clinician.outbox.pending();
    assert.equal(kept.length, 2);
    // The first had reached the server just before the page went; its answer never came back.
    const socket = await rawSocket("clinician");
    assert.equal((await socket.emitWithAck(kept[0].event, kept[0].payload)).ok, true);
    socket.disconnect();

    // The page is reloaded: nothing of the old one is left but the storage.
    const reloaded = new Connection({ io, token: env.tokens.clinician, url: env.url, storage });
    assert.deepEqual(
      reloaded.outbox.pending().map((e) => e.op_id),
      kept.map((e) => e.op_id),
      "the new page finds the unsent writes before it connects",
    );
    const sent = [];
    reloaded.on("outbox-sent", ({ entry, ack }) => sent.push([entry.op_id, ack.note.seq]));
    const empty = next(reloaded, "outbox", (pending) => pending.length === 0);
    reloaded.connect();
    try {
      await empty;
      assert.deepEqual(
        sent.map(([opId]) => opId),
        kept.map((e) => e.op_id),
        "sent in the order written",
      );
      assert.ok(sent[0][1] < sent[1][1], "and stored in that order");
      const notes = await notesOf(specialist, consult.id);
      for (const text of texts) assert.equal(count(notes, text), 1, "stored exactly once");
      assert.equal(storage.getItem(`telerounds.outbox.${reloaded.state.user.id}`), null, "nothing left behind");
    } finally {
      reloaded.close();
    }
  });
});

check("two tabs on one storage both send a pending write: it is stored once", async () => {
  await inConsult("TABS", async ({ clinician, specialist, consult, storage }) => {
    clinician.close();
    const text = `Hai thẻ ${Date.now()}`;
    clinician.write("note:add", { consult_id: consult.id, section: "discussion", text });
    const tabs = [0, 1].map(() => new Connection({ io, token: env.tokens.clinician, url: env.url, storage }));
    const both = tabs.map((tab) => next(tab, "state"));
    try {
      for (const tab of tabs) tab.connect();
      await Promise.all(both);
      await Promise.all(tabs.map((tab) => tab.flushing));
      assert.equal(tabs[0].outbox.pending().length, 0);
      assert.equal(count(await notesOf(specialist, consult.id), text), 1, "stored exactly once");
    } finally {
      for (const tab of tabs) tab.close();
    }
  });
});

check("a refused write is removed from the outbox and reported", async () => {
  await inConsult("REFUSED", async ({ clinician, consult }) => {
    // Refused as it is sent: the promise rejects with the server's code.
    const failures = [];
    clinician.on("outbox-failed", (f) => failures.push(f));
    await assert.rejects(
      clinician.write("note:add", { consult_id: consult.id, section: "gossip", text: "không hợp lệ" }),
      (error) => error instanceof ProtocolError && error.code === "invalid",
    );
    assert.equal(failures.length, 1);
    assert.equal(failures[0].entry.payload.section, "gossip");
    assert.equal(failures[0].error.code, "invalid");
    assert.equal(clinician.outbox.pending().length, 0);

    // Refused when resent after a reconnect (the page that wrote it may be gone): reported too,
    // and the writes behind it still go.
    clinician.close();
    const text = `Sau ghi chú bị từ chối ${Date.now()}`;
    clinician.write("note:amend", { consult_id: consult.id, note_id: "no-such-note", text: "sửa" }).catch(() => {});
    const good = clinician.write("note:add", { consult_id: consult.id, section: "plan", text });
    const failed = next(clinician, "outbox-failed");
    clinician.connect();
    const { entry, error } = await failed;
    assert.equal(entry.event, "note:amend");
    assert.ok(["not_found", "invalid", "forbidden"].includes(error.code), error.code);
    assert.equal((await good).note.text, text);
    assert.equal(clinician.outbox.pending().length, 0);
  });
});

check("a write made while the instance is down is delivered once it is back", async () => {
  await inConsult("RESTART", async ({ clinician, specialist, consult }) => {
    const dropped = next(clinician, "status", (s) => s.status === "reconnecting");
    await instance("stop");
    await dropped;
    const text = `Khi máy chủ tắt ${Date.now()}`;
    const written = clinician.write("note:add", { consult_id: consult.id, section: "history", text });
    await assert.rejects(clinician.request("note:list", { consult_id: consult.id }), (e) => e.code === "offline");
    assert.equal(clinician.outbox.pending().length, 1);
    await instance("start");
    const ack = await written;
    assert.equal(ack.note.text, text);
    assert.equal(clinician.state.status, "connected");
    assert.equal(count(await notesOf(specialist, consult.id), text), 1, "stored exactly once");
  });
});

check("a request beyond the cap on open requests is refused and reported, not retried", async () => {
  // No surgeon is online to take them (every test closes its connections): the requests wait,
  // queued, and count towards the cap.
  const clinician = await open("clinician");
  const waiting = [];
  try {
    for (;;) {
      const ref = `BV-CAP-${Date.now()}-${waiting.length}`;
      const request = { specialty: "surgery", urgency: "routine", patient: { ref }, consent: CONSENT };
      const failed = next(clinician, "outbox-failed", () => true, 5000).catch(() => null);
      try {
        waiting.push((await clinician.write("consult:request", request)).consult);
      } catch (error) {
        assert.equal(error.code, "rate_limited");
        const reported = await failed;
        assert.equal(reported.entry.payload.patient.ref, ref);
        assert.equal(reported.error.code, "rate_limited");
        break;
      }
      assert.ok(waiting.length <= 10, "the cap never came");
    }
    assert.ok(waiting.length >= 1);
    assert.equal(clinician.outbox.pending().length, 0, "the refused request is not kept");
  } finally {
    for (const consult of waiting) await clinician.request("consult:cancel", { consult_id: consult.id });
    clinician.close();
  }
});

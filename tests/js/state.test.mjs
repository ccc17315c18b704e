// The state a connection keeps by applying events equals the state a fresh session:state gives:
// a clinician at Ba Vì asks a specialist at Xanh Pôn by name, the specialist is offered it and
// accepts, the clinician writes a note, the specialist ends it. After every step, for both of
// them: (1) their state before the step with the events received applied by `applyEvent`, and
// (2) the connection's own state, each equal the state from a fresh session:state.
import assert from "node:assert/strict";
import { applyEvent, stateFromSession } from "../../static/protocol.js";
import { CONSENT, check, comparable, end, env, freshSession, next, open, settle, sleep } from "./helpers.mjs";

// How long a step's events may take to agree with a fresh snapshot.
const WITHIN_MS = 10000;

async function verifyStep(screens, action) {
  await settle(Object.values(screens));
  const before = Object.fromEntries(Object.entries(screens).map(([who, c]) => [who, c.state]));
  const from = Object.fromEntries(Object.entries(screens).map(([who, c]) => [who, c.log.length]));
  const result = await action();
  const deadline = Date.now() + WITHIN_MS;
  for (;;) {
    await settle(Object.values(screens));
    const wrong = [];
    for (const [who, connection] of Object.entries(screens)) {
      const events = connection.log.slice(from[who]);
      const applied = events.reduce((state, e) => applyEvent(state, e.name, e.payload), before[who]);
      const fresh = comparable(stateFromSession(await freshSession(who, connection.url)));
      const problems = [];
      try {
        assert.deepEqual(comparable(applied), fresh);
      } catch (error) {
        problems.push(`events applied to the state before: ${error.message}`);
      }
      try {
        assert.deepEqual(comparable(connection.state), fresh);
      } catch (error) {
        problems.push(`the connection's state: ${error.message}`);
      }
      const names = events.map((e) => e.name).join(", ");
      if (problems.length) wrong.push(`${who} (events: ${names}):\n${problems.join("\n")}`);
    }
    if (!wrong.length) return result;
    if (Date.now() > deadline) assert.fail(wrong.join("\n\n"));
    await sleep(300);
  }
}

check("applying a consult's events gives the state of a fresh session:state, on both sides", async () => {
  // The specialist on the second instance: events cross between instances as in production.
  const clinician = await open("clinician", { url: env.url });
  const specialist = await open("specialist", { url: env.urlB });
  const screens = { clinician, specialist };
  try {
    assert.equal(clinician.state.user.role, "clinician");
    assert.equal(specialist.state.user.role, "specialist");
    const ref = `BV-STATE-${Date.now()}`;

    const offered = next(specialist, "offer", (o) => o.consult.patient.ref === ref);
    const { consult } = await verifyStep(screens, async () => {
      const ack = await clinician.write("consult:request", {
        specialty: "surgery",
        urgency: "urgent",
        patient: { ref, summary: "Đau bụng hố chậu phải" },
        consent: CONSENT,
        specialist_id: specialist.state.user.id,
      });
      await offered;
      return ack;
    });
    assert.ok(specialist.state.offers.has(consult.id), "the specialist holds the offer");
    assert.ok(clinician.state.consults.has(consult.id), "the clinician holds the request");

    await verifyStep(screens, () => specialist.request("consult:accept", { consult_id: consult.id }));
    assert.equal(specialist.state.offers.size, 0, "the offer closed on accept");
    assert.equal(specialist.state.consults.get(consult.id).status, "active");
    assert.equal(clinician.state.consults.get(consult.id).status, "active");
    assert.equal(specialist.state.presence.status, "busy");

    const noted = next(specialist, "note", (n) => n.consult_id === consult.id);
    await verifyStep(screens, async () => {
      await clinician.write("note:add", { consult_id: consult.id, section: "history", text: "Sốt 38,5 °C từ hôm qua" });
      await noted;
    });

    await verifyStep(screens, () => end(specialist, consult.id));
    assert.ok(!clinician.state.consults.has(consult.id), "an ended consult leaves the clinician's list");
    assert.ok(!specialist.state.consults.has(consult.id), "and the specialist's");
    assert.equal(specialist.state.presence.status, "available");
  } finally {
    clinician.close();
    specialist.close();
  }
});

check("a request cancelled while offered closes the offer on both sides", async () => {
  const clinician = await open("clinician", { url: env.url });
  const specialist = await open("specialist", { url: env.urlB });
  const screens = { clinician, specialist };
  try {
    const ref = `BV-CANCEL-${Date.now()}`;
    const offered = next(specialist, "offer", (o) => o.consult.patient.ref === ref);
    const { consult } = await clinician.write("consult:request", {
      specialty: "surgery",
      urgency: "routine",
      patient: { ref },
      consent: CONSENT,
      specialist_id: specialist.state.user.id,
    });
    await offered;
    const gone = next(specialist, "offer-gone", (g) => g.consult_id === consult.id);
    await verifyStep(screens, () => clinician.request("consult:cancel", { consult_id: consult.id }));
    assert.equal((await gone).reason, "cancelled");
    assert.ok(!specialist.state.offers.has(consult.id));
    assert.ok(!clinician.state.consults.has(consult.id));
  } finally {
    clinician.close();
    specialist.close();
  }
});

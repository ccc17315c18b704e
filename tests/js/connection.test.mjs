// The connection's life against a real instance: refused, ended by the server, too many sockets.
import assert from "node:assert/strict";
import { Connection } from "../../static/protocol.js";
import { MemoryStorage, check, env, io, next, rawSocket, signIn } from "./helpers.mjs";

const DELAYS = { refusedMs: 300, rateLimitedMs: 300, retryWriteMs: 300 };

function connection(token) {
  return new Connection({ io, token, url: env.url, storage: new MemoryStorage(), delays: DELAYS });
}

check("a token the server refuses ends in status refused, with its code", async () => {
  const c = connection("not-a-token");
  const refused = next(c, "status", (s) => s.status === "refused");
  c.connect();
  try {
    const status = await refused;
    assert.equal(status.code, "unauthorized");
    assert.equal(c.state.status, "refused");
    await assert.rejects(c.request("presence:set", { status: "away" }), (e) => e.code === "offline");
  } finally {
    c.close();
  }
});

check("signed out elsewhere: the server ends the socket, the connection tries again and is refused", async () => {
  const token = await signIn("bavi.clinician");
  const c = connection(token);
  const statuses = [];
  c.on("status", (s) => statuses.push(s.status));
  const ready = next(c, "state");
  c.connect();
  try {
    await ready;
    const refused = next(c, "status", (s) => s.status === "refused");
    const headers = { Authorization: `Bearer ${token}` };
    const response = await fetch(`${env.url}/api/logout`, { method: "POST", headers });
    assert.equal(response.status, 200);
    assert.equal((await refused).code, "unauthorized");
    assert.deepEqual(statuses, ["connecting", "connected", "reconnecting", "refused"]);
  } finally {
    c.close();
  }
});

check("too many sockets of one user: refused for now, connected once one closes", async () => {
  const token = await signIn("xanhpon.surgeon");
  const others = [];
  const c = connection(token);
  try {
    // Up to the cap (MAX_SOCKETS_PER_USER, 8 by default), less the tests' own connections.
    for (;;) {
      try {
        others.push(await rawSocket("specialist"));
      } catch (error) {
        assert.equal(error.data?.code, "rate_limited");
        break;
      }
    }
    const limited = next(c, "status", (s) => s.status === "reconnecting" && s.code === "rate_limited");
    c.connect();
    await limited;
    const ready = next(c, "state");
    others.pop().disconnect();
    await ready;
    assert.equal(c.state.status, "connected");
    assert.equal(c.state.user.role, "specialist");
  } finally {
    c.close();
    for (const socket of others) socket.disconnect();
  }
});

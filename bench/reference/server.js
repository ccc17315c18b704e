// The reference relay: the smallest Socket.IO 4.8 server that speaks the bench's part of the
// telerounds protocol (connect with auth.token, `consult:join`, `rtc:signal` relayed to one peer
// with an ack). With REDIS_URL it uses @socket.io/redis-adapter, so two instances form one relay.
//
//   PORT=9001 [REDIS_URL=redis://127.0.0.1:6379] node server.js
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 9001);
const httpServer = http.createServer((req, res) => {
  res.writeHead(req.url === "/readyz" ? 200 : 404).end();
});
const io = new Server(httpServer, { transports: ["websocket"], maxHttpBufferSize: 128 * 1024 });

// Like telerounds, refuse a connection without a token (the token is not checked: no accounts here).
io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  next(typeof token === "string" && token ? undefined : new Error("unauthorized"));
});

io.on("connection", (socket) => {
  socket.on("consult:join", async (payload, ack) => {
    if (typeof ack !== "function") return;
    if (!payload || typeof payload.consult_id !== "string") {
      return ack({ ok: false, error: { code: "invalid", message: "consult_id is required" } });
    }
    const room = `consult:${payload.consult_id}`;
    const others = (await io.in(room).fetchSockets()).map((s) => ({ peer_id: s.id }));
    socket.join(room);
    socket.to(room).emit("consult:peer-joined", { consult_id: payload.consult_id, peer_id: socket.id });
    ack({ ok: true, peer_id: socket.id, peers: others });
  });

  socket.on("rtc:signal", (payload, ack) => {
    if (typeof ack !== "function") return;
    if (!payload || typeof payload.consult_id !== "string" || typeof payload.to !== "string" || !payload.data) {
      return ack({ ok: false, error: { code: "invalid", message: "consult_id, to and data are required" } });
    }
    if (!socket.rooms.has(`consult:${payload.consult_id}`)) {
      return ack({ ok: false, error: { code: "forbidden", message: "join the call before signaling" } });
    }
    io.to(payload.to).emit("rtc:signal", { consult_id: payload.consult_id, from: socket.id, data: payload.data });
    ack({ ok: true });
  });
});

async function main() {
  if (process.env.REDIS_URL) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  httpServer.listen(port, "127.0.0.1");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

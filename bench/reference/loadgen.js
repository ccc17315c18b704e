// The load generator of `make bench`, one process for every server measured, so no server gets
// a faster client than another. It reads a plan (JSON file, argv[2]) from bench/, drives the
// servers and prints one JSON object per line: results, progress and errors.
//
// Plans:
//   {mode: "relay", targets, phases, rounds}  S1/S2/S6 (and the floors), alternating the targets
//   {mode: "idle", target, steps, concurrency} S3: idle connections, RSS and connect rate
//   {mode: "soak", target, rooms, rate, note_rate, seconds, sample_s}
//
// A target is {name, kind: "socketio" | "ws" | "redis", pids, redis_pids, rooms: [{id, a, b}]}
// where a and b are {url, token}: in a "socketio" room, a sends `rtc:signal` to b. A "ws" room
// is one WebSocket to an echo server (a sends, the echo is the delivery); a "redis" room is one
// Redis connection sending PING.
"use strict";

const fs = require("fs");
const { io } = require("socket.io-client");
const WebSocket = require("ws");

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const CLK_TCK = plan.clk_tck || 100;
const ACK_TIMEOUT_MS = 10000;
const JOIN_TIMEOUT_MS = 60000; // joins happen before measuring, many at once, on a busy machine

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- /proc readings -------------------------------------------------------------------------

function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids || []) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    } catch {
      // the process is gone: counted as nothing
    }
  }
  return ticks / CLK_TCK;
}

function rssKb(pid) {
  try {
    const match = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

function ownCpuSeconds() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

function percentiles(values) {
  if (values.length === 0) return { p50: null, p95: null, p99: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.round((p / 100) * (sorted.length - 1)))];
  return { p50: at(50), p95: at(95), p99: at(99), max: sorted[sorted.length - 1] };
}

// ---- channels: something that can send a numbered message and report its delivery ----------

// Every channel calls `onDelivered(seq)` when message `seq` arrives at its receiver and
// `onAck(seq, ok)` when the sender learns the server took it (for ws and redis, the same moment).
class Channel {
  constructor() {
    this.onDelivered = () => {};
    this.onAck = () => {};
    this.onError = () => {};
  }
}

function connectSocket(side) {
  return new Promise((resolve, reject) => {
    const socket = io(side.url, {
      transports: ["websocket"],
      auth: { token: side.token },
      forceNew: true,
      reconnection: false,
      timeout: 60000,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => reject(new Error(`connect ${side.url}: ${error.message}`)));
  });
}

function call(socket, event, payload) {
  return new Promise((resolve, reject) => {
    socket.timeout(JOIN_TIMEOUT_MS).emit(event, payload, (error, answer) => {
      if (error) reject(new Error(`${event}: no ack`));
      else resolve(answer);
    });
  });
}

class RelayRoom extends Channel {
  async open(room) {
    this.room = room;
    this.a = await connectSocket(room.a);
    this.b = await connectSocket(room.b);
    const first = await call(this.a, "consult:join", { consult_id: room.id });
    if (!first.ok) throw new Error(`consult:join: ${JSON.stringify(first.error)}`);
    const second = await call(this.b, "consult:join", { consult_id: room.id });
    if (!second.ok) throw new Error(`consult:join: ${JSON.stringify(second.error)}`);
    this.to = second.peer_id;
    this.b.on("rtc:signal", (message) => {
      const candidate = message.data.candidate.candidate;
      this.onDelivered(Number(candidate.slice(10, candidate.indexOf(" "))));
    });
    for (const socket of [this.a, this.b]) {
      socket.on("disconnect", (reason) => this.onError(`disconnected: ${reason}`));
    }
  }

  send(seq) {
    const data = {
      candidate: { candidate: `candidate:${seq} 1 udp 2122260223 192.0.2.1 ${9000 + (seq % 1000)} typ host`, sdpMid: "0", sdpMLineIndex: 0 },
    };
    this.a.timeout(ACK_TIMEOUT_MS).emit("rtc:signal", { consult_id: this.room.id, to: this.to, data }, (error, answer) => {
      this.onAck(seq, !error && answer && answer.ok, error ? "ack timeout" : answer && answer.error && answer.error.code);
    });
  }

  note(seq) {
    const payload = { consult_id: this.room.id, op_id: `soak-${seq}`, section: "discussion", text: `soak note ${seq}` };
    this.a.timeout(ACK_TIMEOUT_MS).emit("note:add", payload, (error, answer) => {
      this.onAck(-1, !error && answer && answer.ok, error ? "note ack timeout" : answer && answer.error && answer.error.code);
    });
  }

  close() {
    this.a.disconnect();
    this.b.disconnect();
  }
}

class EchoRoom extends Channel {
  open(room) {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(room.a.url);
      this.ws.on("open", resolve);
      this.ws.on("error", reject);
      this.ws.on("message", (raw) => {
        const seq = Number(String(raw).slice(0, 12));
        this.onAck(seq, true);
        this.onDelivered(seq);
      });
    });
  }

  send(seq) {
    // The same size as the relayed signal, so the floor moves as many bytes.
    this.ws.send(String(seq).padStart(12, "0") + " candidate 1 udp 2122260223 192.0.2.1 9000 typ host".padEnd(120, " "));
  }

  close() {
    this.ws.close();
  }
}

class PingRoom extends Channel {
  async open(room) {
    const { createClient } = require("redis");
    this.client = createClient({ url: room.a.url });
    await this.client.connect();
  }

  send(seq) {
    this.client.ping().then(
      () => {
        this.onAck(seq, true);
        this.onDelivered(seq);
      },
      (error) => this.onAck(seq, false, String(error)),
    );
  }

  close() {
    this.client.disconnect().catch(() => {});
  }
}

const KINDS = { socketio: RelayRoom, ws: EchoRoom, redis: PingRoom };

// Opens the rooms of a target, at most `concurrency` at a time.
async function openRooms(target, count, concurrency = 20) {
  const rooms = [];
  let next = 0;
  async function worker() {
    while (next < count) {
      const spec = target.rooms[next++];
      const room = new KINDS[target.kind]();
      await room.open(spec);
      rooms.push(room);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return rooms;
}

// ---- one measured phase on one target --------------------------------------------------------

class Counter {
  constructor(rooms) {
    this.scheduled = new Map(); // seq → scheduled send time (ms)
    this.latencies = [];
    this.delivered = 0;
    this.errors = 0;
    this.errorKinds = {};
    this.recording = false;
    this.afterAck = null;
    for (const room of rooms) {
      room.onDelivered = (seq) => this.delivered1(seq);
      room.onAck = (seq, ok, why) => {
        if (!ok) this.error(why || "refused");
        if (this.afterAck) this.afterAck(room, seq);
      };
      room.onError = (why) => this.error(why);
    }
  }

  error(why) {
    this.errors += 1;
    this.errorKinds[why] = (this.errorKinds[why] || 0) + 1;
  }

  delivered1(seq) {
    const at = now();
    const sent = this.scheduled.get(seq);
    if (sent === undefined) return;
    this.scheduled.delete(seq);
    if (this.recording) {
      this.delivered += 1;
      this.latencies.push(at - sent);
    }
  }
}

function usage(target) {
  return { t: now(), server: cpuSeconds(target.pids), redis: cpuSeconds(target.redis_pids), own: ownCpuSeconds() };
}

function summary(target, phase, counter, before, after, extra) {
  const seconds = (after.t - before.t) / 1000;
  const server = after.server - before.server;
  const result = {
    type: "result",
    target: target.name,
    phase: phase.name,
    kind: phase.kind,
    rooms: phase.rooms,
    seconds,
    delivered: counter.delivered,
    per_s: counter.delivered / seconds,
    server_cpu_s: server,
    server_cpu_pct: (100 * server) / seconds,
    redis_cpu_s: after.redis - before.redis,
    per_server_cpu_s: server > 0 ? counter.delivered / server : null,
    per_cpu_s_with_redis: server > 0 ? counter.delivered / (server + after.redis - before.redis) : null,
    loadgen_cpu_pct: (100 * (after.own - before.own)) / seconds,
    errors: counter.errors,
    error_kinds: counter.errorKinds,
    ...extra,
  };
  if (phase.kind === "open") Object.assign(result, percentiles(counter.latencies));
  return result;
}

let seqBase = 0;

// Open loop: message i is due at start + i/rate whatever happened before; its latency counts
// from that due time, so a stalled server cannot hide its backlog (no coordinated omission).
async function openLoop(target, rooms, phase) {
  const used = rooms.slice(0, phase.rooms);
  const counter = new Counter(used);
  const warmupMs = (phase.warmup || 0) * 1000;
  const totalMs = warmupMs + phase.seconds * 1000;
  const start = now();
  let i = 0;
  let before = null;
  while (true) {
    const elapsed = now() - start;
    if (before === null && elapsed >= warmupMs) {
      before = usage(target);
      counter.recording = true;
    }
    if (elapsed >= totalMs) break;
    const due = Math.floor((elapsed / 1000) * phase.rate);
    for (; i <= due; i++) {
      const seq = ++seqBase;
      counter.scheduled.set(seq, start + (i * 1000) / phase.rate);
      used[i % used.length].send(seq);
    }
    await sleep(1);
  }
  const after = usage(target);
  const sentInWindow = i - Math.ceil((warmupMs / 1000) * phase.rate);
  await drain(counter);
  const lost = counter.scheduled.size;
  return summary(target, phase, counter, before, after, {
    offered_per_s: phase.rate,
    sent: sentInWindow,
    lost,
  });
}

// Closed loop: each room keeps `window` messages in flight, sending the next on each ack, so
// the server runs as fast as it can; throughput per server CPU-second is the figure.
async function closedLoop(target, rooms, phase) {
  const used = rooms.slice(0, phase.rooms);
  const counter = new Counter(used);
  let running = true;
  counter.afterAck = (room) => {
    if (running) send(room);
  };
  const send = (room) => {
    const seq = ++seqBase;
    counter.scheduled.set(seq, now());
    room.send(seq);
  };
  counter.recording = false;
  for (const room of used) for (let w = 0; w < (phase.window || 1); w++) send(room);
  await sleep((phase.warmup || 0) * 1000);
  counter.recording = true;
  const before = usage(target);
  await sleep(phase.seconds * 1000);
  const after = usage(target);
  counter.recording = false;
  running = false;
  await drain(counter);
  return summary(target, phase, counter, before, after, { window: phase.window || 1 });
}

async function drain(counter, ms = 3000) {
  const until = now() + ms;
  while (counter.scheduled.size > 0 && now() < until) await sleep(10);
  await sleep(100);
}

async function relay() {
  const opened = new Map();
  // A phase may name the targets it runs on (the optimization steps run only some phases).
  const applies = (phase, target) => !phase.targets || phase.targets.includes(target.name);
  for (const target of plan.targets) {
    const t0 = now();
    const most = Math.max(0, ...plan.phases.filter((p) => applies(p, target)).map((p) => p.rooms));
    opened.set(target.name, await openRooms(target, Math.min(most, target.rooms.length)));
    out({ type: "progress", message: `${target.name}: ${opened.get(target.name).length} rooms open in ${((now() - t0) / 1000).toFixed(1)} s` });
  }
  const order = plan.targets.slice();
  for (let round = 1; round <= plan.rounds; round++) {
    for (const phase of plan.phases) {
      for (const target of order) {
        if (!applies(phase, target)) continue;
        const rooms = opened.get(target.name);
        const result = phase.kind === "open" ? await openLoop(target, rooms, phase) : await closedLoop(target, rooms, phase);
        result.round = round;
        out(result);
        await sleep(300);
      }
    }
    order.reverse(); // A B … then … B A: drift over time weighs on every target alike
  }
  for (const rooms of opened.values()) for (const room of rooms) room.close();
}

// ---- S3: idle connections ---------------------------------------------------------------------

async function idle() {
  const target = plan.target;
  const sockets = [];
  const rss = () => Object.fromEntries(target.pids.map((pid) => [pid, rssKb(pid)]));
  const baseline = rss();
  out({ type: "rss", connections: 0, rss_kb: baseline });
  let done = 0;
  for (const step of plan.steps) {
    const t0 = now();
    let next = done;
    async function worker() {
      while (next < step) {
        const side = target.sides[next++ % target.sides.length];
        sockets.push(await connectSocket(side));
      }
    }
    await Promise.all(Array.from({ length: plan.concurrency }, worker));
    const seconds = (now() - t0) / 1000;
    const connectRate = (step - done) / seconds;
    done = step;
    await sleep(plan.settle * 1000);
    out({ type: "rss", connections: step, rss_kb: rss(), connect_per_s: connectRate, seconds });
  }
  for (const socket of sockets) socket.disconnect();
}

// ---- soak -------------------------------------------------------------------------------------

async function soak() {
  const target = plan.target;
  const rooms = await openRooms(target, plan.rooms);
  out({ type: "progress", message: `soak: ${rooms.length} rooms (${rooms.length * 2} clients) open` });
  const counter = new Counter(rooms);
  counter.recording = true;
  const start = now();
  const samples = [];
  const sample = () => {
    const point = { t_s: (now() - start) / 1000, rss_kb: Object.fromEntries(target.pids.map((p) => [p, rssKb(p)])) };
    samples.push(point);
    out({ type: "sample", ...point, delivered: counter.delivered, errors: counter.errors });
  };
  sample();
  let i = 0;
  let notes = 0;
  let nextSample = plan.sample_s * 1000;
  while (now() - start < plan.seconds * 1000) {
    const elapsed = now() - start;
    for (const due = Math.floor((elapsed / 1000) * plan.rate); i <= due; i++) {
      const seq = ++seqBase;
      counter.scheduled.set(seq, start + (i * 1000) / plan.rate);
      rooms[i % rooms.length].send(seq);
    }
    for (const due = Math.floor((elapsed / 1000) * plan.note_rate); notes <= due; notes++) {
      rooms[(notes * 7) % rooms.length].note(`${Date.now()}-${notes}`);
    }
    if (elapsed >= nextSample) {
      sample();
      nextSample += plan.sample_s * 1000;
    }
    await sleep(5);
  }
  await drain(counter);
  sample();
  const lost = counter.scheduled.size;
  out({
    type: "result",
    target: target.name,
    seconds: (now() - start) / 1000,
    signals: counter.delivered,
    notes,
    lost,
    errors: counter.errors + lost,
    error_kinds: counter.errorKinds,
    samples,
    ...percentiles(counter.latencies),
  });
  for (const room of rooms) room.close();
}

const modes = { relay, idle, soak };
modes[plan.mode]()
  .then(() => process.exit(0))
  .catch((error) => {
    out({ type: "error", message: String(error && error.stack ? error.stack : error) });
    process.exit(1);
  });

// What the consult room and the round room share: the pre-join screen, joining the call (signals
// that arrive before the join ack are kept and played in order), peers coming and going, leaving
// and closing. Each room says what its call is (`kind`: "consult" or "round") and adds its own
// page around the stage; the server's events for both differ only in their names and room key.
import { Call } from "/static/call.js";
import { preJoin } from "/static/ui/prejoin.js";

// Join refused because the call has its six people already (the server says `conflict`, "full").
export const isFull = (e) => e?.code === "conflict" && /full/i.test(e?.message || "");

export class CallRoom {
  // `kind`: "consult" or "round", which names the join and leave events and the room key.
  constructor(ctx, kind) {
    this.ctx = ctx;
    this.kind = kind;
    this.key = `${kind}_id`;
    this.call = null;
    this.closed = false;
  }

  show(element) {
    (this.ctx.show || ((el) => document.getElementById("app").replaceChildren(el)))(element);
  }

  // The pre-join screen, then the room. Resolves once the call is joined (or the user went back).
  async enter() {
    const stream = await preJoin(this.ctx, { title: () => this.title() });
    if (!stream) {
      this.finish("left");
      return;
    }
    this.stream = stream;
    this.draw();
    this.show(this.element);
    for (const [name, fn] of Object.entries(this.handlers)) this.ctx.connection.on(name, fn);
    await this.join();
  }

  // Join the call: `joined(ack)` takes what the ack brings before the early signals are played;
  // `more(ack)` fetches what follows page by page once the call is up.
  async join() {
    const { connection } = this.ctx;
    // A peer that sees us joined may offer before our join ack arrives (it travels through another
    // instance): keep such signals until the call exists, then play them in order.
    this.pending = [];
    this.joining = true;
    let ack;
    try {
      ack = await connection.request(`${this.kind}:join`, { [this.key]: this.id });
    } catch (e) {
      this.joining = false;
      if (isFull(e)) this.leave("full", { message: this.ctx.t("room.full") });
      else this.refused(e);
      return;
    }
    if (this.closed) return;
    this.stage.expect(ack.peers);
    const call = new Call({
      signal: (to, data) => connection.signal(this.key, this.id, to, data),
      iceServers: ack.ice_servers,
      icePolicy: ack.ice_transport_policy || "all",
      iceTtlS: ack.ice_ttl_s || 0,
      refreshNetwork: () => this.ctx.api("/api/ice-servers"),
      stream: this.stream,
      selfId: ack.peer_id,
    });
    this.stage.attach(call);
    this.call = call;
    for (const peer of ack.peers) this.noteRecorder(peer);
    this.joining = false;
    this.joined(ack);
    for (const m of this.pending.splice(0))
      await call.receive(m.from, m.data).catch((e) => console.warn("rtc:signal", e));
    for (const peer of ack.peers) if (!call.peers.has(peer.peer_id)) await call.offerTo(peer.peer_id);
    await this.more(ack);
  }

  // A join refused for another reason than a full call: said in the banner.
  refused(e) {
    this.ctx.say?.(this.ctx.t("error", { message: e.message }), true);
  }

  signal(m) {
    if (this.call && !this.joining) this.call.receive(m.from, m.data).catch((e) => console.warn("rtc:signal", e));
    else this.pending?.push(m);
  }

  // The recorder's connection is never made audio-only by a weak link: the record keeps its video.
  noteRecorder(peer) {
    if (peer.role === "recorder" || peer.user?.role === "recorder") this.call?.recorders.add(peer.peer_id);
  }

  peerJoined(p) {
    this.noteRecorder(p);
    this.stage.peerJoined(p);
    if (p.rejoined) this.call?.drop(p.peer_id, true); // it will send a new offer
  }

  peerLeft(peerId) {
    this.stage.peerLeft(peerId);
    this.call?.drop(peerId);
  }

  leaveCall() {
    this.ctx.connection.request(`${this.kind}:leave`, { [this.key]: this.id }).catch(() => {});
    this.leave("left");
  }

  leave(reason, extra = {}) {
    if (this.closed) return;
    this.close();
    this.finish(reason, extra);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const [name, fn] of Object.entries(this.handlers)) this.ctx.connection.off(name, fn);
    this.stage?.close();
    this.notes?.close();
    this.files?.close();
  }
}

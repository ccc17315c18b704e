// What the consult room and the round room share: the pre-join screen, joining the call (signals
// that arrive before the join ack are kept and played in order), peers coming and going, leaving
// and closing. Each room says what its call is (`kind`: "consult" or "round") and adds its own
// page around the stage; the server's events for both differ only in their names and room key.
import { Call } from "/static/call.js";
import { tx } from "/static/ui/dom.js";
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
    this.handlers.recording = ({ recording }) =>
      recording[this.key] === this.id && this.setRecording(recording.state === "recording");
    this.drawRecording();
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
    const recorders = ack.peers.filter((p) => p.role === "recorder");
    // Joining a call being recorded: told before anything is sent to the recorder.
    if (recorders.length) this.setRecording(true, { late: true });
    this.stage.expect(ack.peers.filter((p) => p.role !== "recorder"));
    const call = new Call({
      signal: (to, data) => connection.signal(this.key, this.id, to, data),
      iceServers: ack.ice_servers,
      icePolicy: ack.ice_transport_policy || "all",
      iceTtlS: ack.ice_ttl_s || 0,
      refreshNetwork: () => this.ctx.api("/api/ice-servers"),
      stream: this.stream,
      selfId: ack.peer_id,
    });
    for (const p of recorders) call.recorders.add(p.peer_id);
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

  // --- recording at the server: "Đang ghi hình" for everyone; start and stop for the chair

  drawRecording() {
    const { h } = this.ctx;
    this.recordingBadge = h("span", { class: "recording-badge", role: "status", hidden: true }, tx("recording.on"));
    this.recordingNotice = h("p", { class: "recording-notice", role: "alert", hidden: true }, tx("recording.notice"));
    this.stage.element.querySelector(".stage-status")?.prepend(this.recordingBadge);
    this.stage.element.prepend(this.recordingNotice);
    if (!this.chairs()) return;
    this.recordingButton = h("button", { type: "button", class: "recording-control", onclick: () => this.toggleRecording() });
    this.stage.addControl(this.recordingButton);
    this.setRecording(false);
  }

  setRecording(on, { late = false } = {}) {
    this.recording = on;
    if (this.recordingBadge) this.recordingBadge.hidden = !on;
    if (this.recordingNotice) this.recordingNotice.hidden = !(on && late);
    if (!on && this.recordingNotice) this.recordingNotice.hidden = true;
    if (on && !late) this.ctx.announce?.(this.ctx.t("recording.on"));
    if (this.recordingButton) {
      this.recordingButton.replaceChildren(tx(on ? "recording.stop" : "recording.start"));
      this.recordingButton.setAttribute("aria-pressed", String(on));
    }
  }

  async toggleRecording() {
    const event = this.recording ? "recording:stop" : "recording:start";
    this.recordingButton.disabled = true;
    try {
      const { recording } = await this.ctx.connection.request(event, { [this.key]: this.id });
      this.setRecording(recording.state === "recording");
    } catch (e) {
      this.ctx.say?.(this.ctx.t("recording.refused", { message: e.message }), true);
    } finally {
      this.recordingButton.disabled = false;
    }
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
    if (p.role === "recorder") {
      // The server's recorder: no tile; it offers, and what we send it is capped.
      this.call?.recorders.add(p.peer_id);
      this.setRecording(true);
      return;
    }
    this.stage.peerJoined(p);
    if (p.rejoined) this.call?.drop(p.peer_id, true); // it will send a new offer
  }

  peerLeft(peerId) {
    if (this.call?.recorders.has(peerId)) this.setRecording(false);
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

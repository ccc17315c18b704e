// One person's video in a call, with their name under it (`h` builds elements, never HTML).
function videoTile(h, id, name, stream, muted = false) {
  const video = h("video", { autoplay: true, playsinline: true, muted });
  video.muted = muted;
  video.srcObject = stream;
  return h("div", { class: "tile", "data-peer": id }, video, h("span", { class: "name" }, name));
}

// The videos of a call, the consult's or the round's: yours (muted), then one per other peer.
export class Tiles {
  constructor(h, yourName, stream) {
    this.h = h;
    this.names = new Map(); // peer_id -> name
    this.element = h("div", { class: "tiles" });
    this.element.append(videoTile(h, "self", yourName, stream, true));
  }

  // The peers of a join ack, whose media will follow.
  expect(peers) { this.names = new Map(peers.map((p) => [p.peer_id, p.user.name])); }

  peerJoined(p) { this.names.set(p.peer_id, p.user.name); }

  show(peerId, stream) {
    let tile = this.element.querySelector(`[data-peer="${peerId}"]`);
    if (!tile) { tile = videoTile(this.h, peerId, this.names.get(peerId) || "", stream); this.element.append(tile); }
    tile.querySelector("video").srcObject = stream;
  }

  remove(peerId) { this.element.querySelector(`[data-peer="${peerId}"]`)?.remove(); }
}

// A mesh call: one RTCPeerConnection per other peer. The newcomer offers; the others answer.
export class Call {
  constructor(socket, roomKey, roomId, iceServers, stream, onTrack, onGone) {
    this.socket = socket;
    this.roomKey = roomKey; // "consult_id" or "round_id"
    this.roomId = roomId;
    this.iceServers = iceServers;
    this.stream = stream;
    this.onTrack = onTrack;
    this.onGone = onGone;
    this.peers = new Map(); // peer_id -> RTCPeerConnection
  }

  connection(peerId) {
    let pc = this.peers.get(peerId);
    if (pc) return pc;
    pc = new RTCPeerConnection({ iceServers: this.iceServers });
    for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    pc.onicecandidate = (e) => {
      if (e.candidate) this.signal(peerId, { candidate: e.candidate.toJSON() });
    };
    pc.ontrack = (e) => this.onTrack(peerId, e.streams[0] || new MediaStream([e.track]));
    // For whoever has to find out why a call did not come up (support, the browser tests).
    pc.onconnectionstatechange = () => console.info(`call ${peerId}: ${pc.connectionState}`);
    this.peers.set(peerId, pc);
    return pc;
  }

  signal(to, data) {
    return this.socket.emitWithAck("rtc:signal", { [this.roomKey]: this.roomId, to, data });
  }

  // As the newcomer: offer to everyone already in the call.
  async offerTo(peerId) {
    console.info(`call ${peerId}: offering`);
    this.drop(peerId);
    const pc = this.connection(peerId);
    await pc.setLocalDescription(await pc.createOffer());
    await this.signal(peerId, { type: pc.localDescription.type, sdp: pc.localDescription.sdp });
  }

  async receive(from, data) {
    console.info(`call ${from}: received ${data.type || "candidate"}`);
    if (data.type === "offer") {
      // The server tells only one of two peers to offer; should both offer anyway (glare), the
      // offer of the peer with the smaller peer_id stands and the other answers it.
      const mine = this.peers.get(from);
      if (mine?.signalingState === "have-local-offer" && this.selfId && this.selfId < from) return;
      this.drop(from); // a (re)joined peer starts afresh
      const pc = this.connection(from);
      await pc.setRemoteDescription(data);
      await pc.setLocalDescription(await pc.createAnswer());
      await this.signal(from, { type: "answer", sdp: pc.localDescription.sdp });
    } else if (data.type === "answer") {
      const pc = this.peers.get(from);
      if (pc?.signalingState === "have-local-offer") await pc.setRemoteDescription(data);
    } else if (data.candidate) {
      try { await this.peers.get(from)?.addIceCandidate(data.candidate); } catch (e) { /* late candidate */ }
    }
  }

  drop(peerId) {
    const pc = this.peers.get(peerId);
    if (pc) { pc.close(); this.peers.delete(peerId); this.onGone(peerId); }
  }

  setVideo(enabled) {
    for (const track of this.stream.getVideoTracks()) track.enabled = enabled;
  }

  // Send another picture (a screen, another camera) to every peer without renegotiating.
  async replaceVideo(track) {
    for (const pc of this.peers.values()) {
      const sender = pc.getSenders().find((x) => x.track?.kind === "video");
      if (sender) await sender.replaceTrack(track);
    }
  }

  setAudio(enabled) {
    for (const track of this.stream.getAudioTracks()) track.enabled = enabled;
  }

  // The worst figures over all peers: round trip, loss and incoming bitrate.
  async quality() {
    let rtt = 0, lost = 0, received = 0, bytes = 0;
    for (const pc of this.peers.values()) {
      for (const report of (await pc.getStats()).values()) {
        if (report.type === "candidate-pair" && report.nominated && report.currentRoundTripTime) {
          rtt = Math.max(rtt, report.currentRoundTripTime * 1000);
        }
        if (report.type === "inbound-rtp") {
          lost += report.packetsLost || 0; received += report.packetsReceived || 0; bytes += report.bytesReceived || 0;
        }
      }
    }
    const loss = received + lost ? (100 * lost) / (received + lost) : 0;
    return { rtt_ms: Math.round(rtt), loss_pct: Math.round(loss * 10) / 10, bytes };
  }

  close() {
    for (const id of [...this.peers.keys()]) this.drop(id);
  }
}

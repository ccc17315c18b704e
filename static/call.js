// A mesh call: one RTCPeerConnection per other peer. The newcomer offers; the others answer.
// No DOM here: the page gets tracks, peer states, the others' media state and audio levels
// through callbacks, and sends signals through the `signal(to, data)` it hands in.

const PEER_STATE = {
  new: "connecting",
  connecting: "connecting",
  connected: "connected",
  disconnected: "reconnecting",
  failed: "failed",
};

export class Call {
  // `signal(to, data) -> Promise`, or a `connection` with signal(roomKey, roomId, to, data).
  constructor({ signal, connection, roomKey, roomId, iceServers = [], icePolicy = "all", stream, selfId = null }) {
    this.send = signal || ((to, data) => connection.signal(roomKey, roomId, to, data));
    this.iceServers = iceServers;
    this.icePolicy = icePolicy;
    this.stream = stream;
    this.selfId = selfId;
    this.peers = new Map(); // peer_id -> RTCPeerConnection
    this.recorders = new Set(); // peer_ids of the server's recorder (it records the call)
    this.media = {
      audio: stream.getAudioTracks().some((x) => x.enabled),
      video: stream.getVideoTracks().some((x) => x.enabled),
      screen: false,
    };
    this.onTrack = () => {};
    this.onGone = () => {};
    this.onPeerState = () => {};
    this.onMedia = () => {};
  }

  connection(peerId) {
    let pc = this.peers.get(peerId);
    if (pc) return pc;
    pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.icePolicy });
    for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    pc.onicecandidate = (e) => {
      if (e.candidate) this.signal(peerId, { candidate: e.candidate.toJSON() });
    };
    pc.ontrack = (e) => this.onTrack(peerId, e.streams[0] || new MediaStream([e.track]));
    pc.onconnectionstatechange = () => {
      // For whoever has to find out why a call did not come up (support, the browser tests).
      console.info(`call ${peerId}: ${pc.connectionState}`);
      if (this.peers.get(peerId) !== pc) return; // an old connection, replaced meanwhile
      const state = PEER_STATE[pc.connectionState];
      if (state) this.onPeerState(peerId, state);
      // The other side learns our mute, camera and screen state once connected: it may have
      // joined after we changed them.
      if (state === "connected") this.sendMedia(peerId);
    };
    this.peers.set(peerId, pc);
    this.onPeerState(peerId, "connecting");
    return pc;
  }

  signal(to, data) {
    return this.send(to, data).catch((e) => console.warn(`call ${to}: signal refused`, e?.code || e));
  }

  // Our media state to one peer, or to all. A server that does not know this shape yet refuses it
  // (`invalid`): the call goes on without the badges.
  sendMedia(peerId = null) {
    const targets = peerId ? [peerId] : [...this.peers.keys()];
    for (const to of targets) {
      this.send(to, { media: { ...this.media } }).catch(() => {});
    }
  }

  // As the newcomer: offer to everyone already in the call.
  async offerTo(peerId) {
    console.info(`call ${peerId}: offering`);
    this.drop(peerId, true);
    const pc = this.connection(peerId);
    await pc.setLocalDescription(await pc.createOffer());
    await this.capRecorder(peerId);
    await this.signal(peerId, { type: pc.localDescription.type, sdp: pc.localDescription.sdp });
  }

  // The copy sent to the server's recorder costs a district uplink little: at most about 360p,
  // 15 frames a second and 400 kbps, and no picture at all in audio-only mode.
  async capRecorder(peerId) {
    const pc = this.peers.get(peerId);
    if (!pc || !this.recorders.has(peerId)) return;
    for (const sender of pc.getSenders()) {
      if (sender.track?.kind !== "video") continue;
      const params = sender.getParameters();
      if (!params.encodings?.length) params.encodings = [{}];
      const height = sender.track.getSettings?.().height || 360;
      Object.assign(params.encodings[0], {
        active: this.media.video,
        maxBitrate: 400000,
        maxFramerate: 15,
        scaleResolutionDownBy: Math.max(1, height / 360),
      });
      await sender.setParameters(params).catch((e) => console.warn(`call ${peerId}: cap refused`, e));
    }
  }

  async receive(from, data) {
    if (data.media) {
      this.onMedia(from, { audio: !!data.media.audio, video: !!data.media.video, screen: !!data.media.screen });
      return;
    }
    console.info(`call ${from}: received ${data.type || "candidate"}`);
    if (data.type === "offer") {
      // The server tells only one of two peers to offer; should both offer anyway (glare), the
      // offer of the peer with the smaller peer_id stands and the other answers it.
      const mine = this.peers.get(from);
      if (mine?.signalingState === "have-local-offer" && this.selfId && this.selfId < from) return;
      this.drop(from, true); // a (re)joined peer starts afresh
      const pc = this.connection(from);
      await pc.setRemoteDescription(data);
      await pc.setLocalDescription(await pc.createAnswer());
      await this.capRecorder(from);
      await this.signal(from, { type: "answer", sdp: pc.localDescription.sdp });
    } else if (data.type === "answer") {
      const pc = this.peers.get(from);
      if (pc?.signalingState === "have-local-offer") await pc.setRemoteDescription(data);
    } else if (data.candidate) {
      try {
        await this.peers.get(from)?.addIceCandidate(data.candidate);
      } catch (e) {
        /* late candidate */
      }
    }
  }

  // `renewing`: a new connection to the same peer follows at once (a rejoin, an offer).
  drop(peerId, renewing = false) {
    const pc = this.peers.get(peerId);
    if (!pc) return;
    pc.close();
    this.peers.delete(peerId);
    if (!renewing) this.recorders.delete(peerId);
    this.onGone(peerId, renewing);
  }

  setAudio(enabled) {
    for (const track of this.stream.getAudioTracks()) track.enabled = enabled;
    this.media.audio = enabled;
    this.sendMedia();
  }

  setVideo(enabled) {
    for (const track of this.stream.getVideoTracks()) track.enabled = enabled;
    this.media.video = enabled;
    for (const peerId of this.recorders) this.capRecorder(peerId);
    this.sendMedia();
  }

  // Send another picture (a screen, another camera) to every peer without renegotiating.
  async replaceVideo(track, { screen = false } = {}) {
    for (const pc of this.peers.values()) {
      const sender = pc.getSenders().find((x) => x.track?.kind === "video" || x.track === null);
      if (sender) await sender.replaceTrack(track);
    }
    this.media.screen = screen;
    if (track) this.media.video = screen || track.enabled;
    this.sendMedia();
  }

  // The worst figures over all peers: round trip, loss and incoming bitrate.
  async quality() {
    let rtt = 0,
      lost = 0,
      received = 0,
      bytes = 0;
    for (const pc of this.peers.values()) {
      for (const report of (await pc.getStats()).values()) {
        if (report.type === "candidate-pair" && report.nominated && report.currentRoundTripTime) {
          rtt = Math.max(rtt, report.currentRoundTripTime * 1000);
        }
        if (report.type === "inbound-rtp") {
          lost += report.packetsLost || 0;
          received += report.packetsReceived || 0;
          bytes += report.bytesReceived || 0;
        }
      }
    }
    const loss = received + lost ? (100 * lost) / (received + lost) : 0;
    return { rtt_ms: Math.round(rtt), loss_pct: Math.round(loss * 10) / 10, bytes };
  }

  // How loud each peer is now (0..1), from the incoming audio's statistics: for the active speaker.
  async levels() {
    const levels = new Map();
    for (const [peerId, pc] of this.peers) {
      let level = 0;
      for (const report of (await pc.getStats()).values()) {
        if (report.type === "inbound-rtp" && report.kind === "audio" && report.audioLevel != null) {
          level = Math.max(level, report.audioLevel);
        }
      }
      levels.set(peerId, level);
    }
    return levels;
  }

  close() {
    for (const id of [...this.peers.keys()]) this.drop(id);
  }
}

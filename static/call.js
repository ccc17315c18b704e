// A mesh call: one RTCPeerConnection per other peer. The newcomer offers; the others answer.
// No DOM here: the page gets tracks, peer states, the others' media state and audio levels
// through callbacks, and sends signals through the `signal(to, data)` it hands in.
//
// A lost path is found again by an ICE restart on the same connection (`{type: "offer", sdp,
// restart: true}`: new candidates, same DTLS session, the picture keeps its place); only when
// that does not bring it back within RESTART_WAIT_MS is the connection made anew. TURN
// credentials expire (`TURN_TTL_S`): before they do, `refreshNetwork()` fetches fresh ones and
// every connection restarts ICE with them, so a long call keeps its relay.
//
// Audio first, per link: each connection's statistics are read once a second
// (static/linkquality.js decides); when its link cannot carry video, the video sender of that
// connection only is made inactive (audio untouched) and the other side is told `{link:
// "audio_only"}`; `{link: "ok"}` when video is back. Connections to the recorder are never
// touched: the record keeps its video.
import { initialLink, nextLink, sendsVideo } from "/static/linkquality.js";

const PEER_STATE = {
  new: "connecting",
  connecting: "connecting",
  connected: "connected",
  disconnected: "reconnecting",
  failed: "failed",
};

// How long a connection may stay disconnected (or failed) before its ICE is restarted, and how
// long a restart may take before the connection is made anew.
export const LOST_PATH_MS = 2000;
export const RESTART_WAIT_MS = 15000;
// How often each connection's statistics are read, and how long nothing may come in over a
// connected one before its path counts as lost (audio alone sends some 50 packets a second).
export const WATCH_MS = 1000;
export const STALL_MS = 3000;
// After a quiet path comes back, the other side's reports still cover the outage (its loss):
// the link is judged again only after this.
export const RESUMED_GRACE_MS = 3000;
// The other side's report on a stream is judged until this long after it last changed.
export const REPORT_MAX_AGE_MS = 3000;

// When to fetch fresh TURN credentials: a minute before they expire, or halfway for short ones.
export function refreshDelayMs(ttlS) {
  return Math.max(ttlS - 60, ttlS / 2) * 1000;
}

export class Call {
  // `signal(to, data) -> Promise`, or a `connection` with signal(roomKey, roomId, to, data).
  // `refreshNetwork() -> Promise<{ice_servers, ice_transport_policy, ice_ttl_s}>` (GET
  // /api/ice-servers) renews the TURN credentials every `iceTtlS` seconds or so.
  constructor({
    signal,
    connection,
    roomKey,
    roomId,
    iceServers = [],
    icePolicy = "all",
    iceTtlS = 0,
    refreshNetwork = null,
    stream,
    selfId = null,
  }) {
    this.send = signal || ((to, data) => connection.signal(roomKey, roomId, to, data));
    this.iceServers = iceServers;
    this.icePolicy = icePolicy;
    this.refreshNetwork = refreshNetwork;
    this.restarts = 0; // ICE restarts sent, for whoever looks into a call (support, the tests)
    this.lostTimers = new Map(); // peer_id -> timer: restart once the path has been lost long enough
    this.closed = false;
    this.watched = new WeakMap(); // RTCPeerConnection -> {bytesIn, lastInAt, link, told}
    this.reportCounts = new WeakMap(); // RTCPeerConnection -> Map(remote-inbound-rtp id -> {count, at})
    this.theirLinks = new Map(); // peer_id -> true while that peer sends us audio only for the link
    this.watchTimer = setInterval(() => {
      if (this.watching) return; // the last reading is still under way (a busy machine): skip one
      this.watching = true;
      this.watch()
        .catch(() => {})
        .finally(() => (this.watching = false));
    }, WATCH_MS);
    if (refreshNetwork && iceTtlS > 0) this.scheduleRefresh(iceTtlS);
    this.stream = stream;
    this.selfId = selfId;
    this.peers = new Map(); // peer_id -> RTCPeerConnection
    this.recorders = new Set(); // peer_ids of the server's recorder: it records the call, and its video is never stopped for a weak link
    this.media = {
      audio: stream.getAudioTracks().some((x) => x.enabled),
      video: stream.getVideoTracks().some((x) => x.enabled),
      screen: false,
    };
    this.onTrack = () => {};
    this.onGone = () => {};
    this.onPeerState = () => {};
    this.onMedia = () => {};
    this.onLink = () => {}; // (peerId, {sending, receiving}): either side's video stopped by the link
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
    pc.oniceconnectionstatechange = () => {
      console.info(`call ${peerId}: ice ${pc.iceConnectionState}`);
      if (this.peers.get(peerId) !== pc) return;
      const lost = ["disconnected", "failed"].includes(pc.iceConnectionState);
      if (lost && !this.lostTimers.has(peerId)) {
        this.lostTimers.set(
          peerId,
          setTimeout(() => this.recover(peerId, pc), pc.iceConnectionState === "failed" ? 0 : LOST_PATH_MS),
        );
      } else if (!lost && ["connected", "completed"].includes(pc.iceConnectionState)) {
        clearTimeout(this.lostTimers.get(peerId));
        this.lostTimers.delete(peerId);
      }
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

  // The path to a peer is lost: restart ICE on the same connection; if that has not brought it
  // back within RESTART_WAIT_MS, make the connection anew (a full offer, new DTLS).
  async recover(peerId, pc) {
    if (this.closed || this.peers.get(peerId) !== pc) return;
    console.info(`call ${peerId}: path lost (${pc.iceConnectionState}), restarting ICE`);
    const watched = this.watched.get(pc);
    if (watched) watched.lastInAt = performance.now(); // give the restart its time
    if (this.recorders.has(peerId)) {
      // The server's recorder takes no ICE restart: any offer is a new connection to it.
      await this.offerTo(peerId);
      return;
    }
    await this.restartIce(peerId);
    this.lostTimers.set(
      peerId,
      setTimeout(() => {
        this.lostTimers.delete(peerId);
        if (this.closed || this.peers.get(peerId) !== pc) return;
        if (["connected", "completed"].includes(pc.iceConnectionState) && this.flowing(pc)) return;
        console.info(`call ${peerId}: ICE restart did not bring it back, offering anew`);
        this.offerTo(peerId).catch((e) => console.warn(`call ${peerId}: offer failed`, e));
      }, RESTART_WAIT_MS),
    );
  }

  // An ICE restart on the connection to a peer: new candidates (through the current ICE servers),
  // the same DTLS session and tracks.
  async restartIce(peerId) {
    const pc = this.peers.get(peerId);
    if (!pc || pc.signalingState !== "stable") return false;
    this.restarts += 1;
    await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
    await this.signal(peerId, { type: "offer", sdp: pc.localDescription.sdp, restart: true });
    return true;
  }

  // Whether anything came in over the connection lately.
  flowing(pc) {
    const watched = this.watched.get(pc);
    return !watched || performance.now() - watched.lastInAt < STALL_MS;
  }

  // Once a second, per connection: has the path gone quiet (restart it), and can the link carry
  // video (audio first when it cannot)?
  async watch() {
    for (const [peerId, pc] of this.peers) {
      if (pc.connectionState === "new" || pc.connectionState === "connecting") continue;
      const sample = { kbps: null, loss: null, rttS: null };
      let bytesIn = 0;
      for (const r of (await pc.getStats()).values()) {
        if (r.type === "inbound-rtp") bytesIn += r.bytesReceived || 0;
        else if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded" && r.availableOutgoingBitrate)
          sample.kbps = r.availableOutgoingBitrate / 1000;
        else if (r.type === "remote-inbound-rtp" && this.recentReport(pc, r, performance.now())) {
          if (r.fractionLost != null) sample.loss = Math.max(sample.loss ?? 0, r.fractionLost);
          if (r.roundTripTime != null) sample.rttS = Math.max(sample.rttS ?? 0, r.roundTripTime);
        }
      }
      if (this.peers.get(peerId) !== pc) continue; // replaced while the statistics were read
      const now = performance.now();
      let w = this.watched.get(pc);
      if (!w) {
        w = { bytesIn, lastInAt: now, link: initialLink(), told: "ok", videoOn: true, judgeFrom: 0 };
        this.watched.set(pc, w);
      }
      if (bytesIn !== w.bytesIn) {
        if (now - w.lastInAt >= STALL_MS) w.judgeFrom = now + RESUMED_GRACE_MS; // back after a quiet spell
        w.bytesIn = bytesIn;
        w.lastInAt = now;
      } else if (bytesIn > 0 && now - w.lastInAt >= STALL_MS && !this.lostTimers.has(peerId)) {
        // Quiet after media came in (a peer that sends nothing, as the recorder, is never "lost").
        this.lostTimers.set(peerId, null);
        this.recover(peerId, pc).catch((e) => console.warn(`call ${peerId}: ICE restart failed`, e));
      }
      if (this.recorders.has(peerId) || !this.flowing(pc) || now < w.judgeFrom) continue;
      const before = w.link;
      w.link = nextLink(before, sample);
      if (w.link.mode !== before.mode) {
        console.info(`call ${peerId}: link ${w.link.mode} (${JSON.stringify(sample)})`);
      }
      // Applied until it takes: a renegotiation (an ICE restart) in between makes setParameters fail.
      const want = sendsVideo(w.link);
      if (w.videoOn !== want) {
        try {
          await this.linkVideo(pc, want);
          w.videoOn = want;
        } catch (e) {
          console.warn(`call ${peerId}: video ${want ? "on" : "off"} not applied yet`, e?.name || e);
        }
      }
      const told = w.link.mode === "ok" ? "ok" : "audio_only";
      if (told !== w.told) {
        w.told = told;
        this.send(peerId, { link: told }).catch(() => {});
        this.onLink(peerId, { sending: told === "audio_only", receiving: !!this.theirLinks.get(peerId) });
      }
    }
  }

  // Whether the other side's report on one of our streams is recent enough to judge the link by:
  // it changed within REPORT_MAX_AGE_MS. A report that stopped coming keeps its last figures in the
  // statistics: with video stopped, the video's last loss (often the burst a cut left) was read
  // again every second and held video off for good (issue 23, seen in bench/district_calls.py).
  // Not only new ones: over a capped link the reports themselves get through only now and then.
  recentReport(pc, report, now) {
    const count = report.roundTripTimeMeasurements ?? report.reportsReceived;
    if (count == null) return true; // a browser that does not count them: as before
    let seen = this.reportCounts.get(pc);
    if (!seen) this.reportCounts.set(pc, (seen = new Map()));
    const last = seen.get(report.id);
    if (!last || last.count !== count) seen.set(report.id, { count, at: now });
    return now - seen.get(report.id).at < REPORT_MAX_AGE_MS;
  }

  // Video on one connection only, by its sender's encodings: audio and the other links untouched.
  async linkVideo(pc, on) {
    for (const sender of pc.getSenders()) {
      if (sender.track?.kind !== "video") continue;
      const params = sender.getParameters();
      if (!params.encodings?.length) continue;
      for (const encoding of params.encodings) encoding.active = on;
      await sender.setParameters(params);
    }
  }

  // Fresh TURN credentials before the current ones expire, then an ICE restart with them on every
  // connection (a relay allocation cannot be refreshed with an expired username).
  scheduleRefresh(ttlS) {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(async () => {
      if (this.closed) return;
      try {
        const network = await this.refreshNetwork();
        this.iceServers = network.ice_servers;
        for (const [peerId, pc] of this.peers) {
          pc.setConfiguration({ iceServers: this.iceServers, iceTransportPolicy: this.icePolicy });
          // Not towards the recorder: a server peer may not take an ICE restart; its own TURN
          // credentials are the server's business.
          if (!this.recorders.has(peerId)) await this.restartIce(peerId);
        }
        console.info(`call: ICE servers renewed for ${network.ice_ttl_s} s`);
        this.scheduleRefresh(network.ice_ttl_s);
      } catch (e) {
        console.warn("call: could not renew the ICE servers; trying again", e?.code || e);
        this.scheduleRefresh(Math.min(ttlS, 20));
      }
    }, refreshDelayMs(ttlS));
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
    if (data.link) {
      // The other side stopped (or brought back) its video to us because of the link.
      const pc = this.peers.get(from);
      const w = pc && this.watched.get(pc);
      this.theirLinks.set(from, data.link === "audio_only");
      this.onLink(from, { sending: w ? w.told === "audio_only" : false, receiving: data.link === "audio_only" });
      return;
    }
    if (data.media) {
      this.onMedia(from, { audio: !!data.media.audio, video: !!data.media.video, screen: !!data.media.screen });
      return;
    }
    console.info(`call ${from}: received ${data.type || "candidate"}${data.restart ? " (ICE restart)" : ""}`);
    const current = this.peers.get(from);
    if (data.type === "offer" && data.restart && current) {
      // An ICE restart on the connection we have: answer it there, keeping its DTLS session.
      if (current.signalingState === "have-local-offer") {
        if (this.selfId && this.selfId < from) return; // both restarted at once: ours stands
        await current.setLocalDescription({ type: "rollback" });
      }
      await current.setRemoteDescription({ type: "offer", sdp: data.sdp });
      await current.setLocalDescription(await current.createAnswer());
      await this.signal(from, { type: "answer", sdp: current.localDescription.sdp });
      return;
    }
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
    clearTimeout(this.lostTimers.get(peerId));
    this.lostTimers.delete(peerId);
    const pc = this.peers.get(peerId);
    if (!pc) return;
    if (this.theirLinks.delete(peerId) || this.watched.get(pc)?.told === "audio_only") {
      this.onLink(peerId, { sending: false, receiving: false }); // a new connection starts with video
    }
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
    this.closed = true;
    clearInterval(this.watchTimer);
    clearTimeout(this.refreshTimer);
    for (const id of [...this.peers.keys()]) this.drop(id);
  }
}

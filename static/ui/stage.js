// One call stage for the consult room and the round room: the others large (a grid when there
// are several), yourself small and mirrored in a corner, the control bar under them (at the
// bottom of the screen on a phone). Every tile says who it is, whether they are muted or their
// camera is off, and when their connection is being re-made; the loudest speaker is outlined.
import { retranslate, tx } from "/static/ui/dom.js";
import { icon } from "/static/ui/icons.js";

export { preJoin } from "/static/ui/prejoin.js";

const LEAVING_MS = 2500; // how long a peer who left stays on screen, marked as leaving
const SPEAKING = 0.02; // the audio level (0..1) above which someone counts as speaking
const SHORTCUTS = { m: "mic", v: "camera", a: "audioOnly", c: "switchCamera", s: "screen", l: "leave" };

export class Stage {
  // `onStats(sample)`: every 5 s, the call's figures for rtc:stats (the rooms send them).
  constructor(ctx, { stream, selfName, onLeave, onStats = null }) {
    this.ctx = ctx;
    this.stream = stream;
    this.selfName = selfName;
    this.onLeave = onLeave;
    this.onStats = onStats;
    this.call = null;
    this.names = new Map(); // peer_id -> name
    this.tiles = new Map(); // peer_id -> tile element
    this.mic = stream.getAudioTracks().length > 0;
    this.camera = stream.getVideoTracks().length > 0;
    this.audioOnly = false;
    this.screen = null; // the shared screen's track
    this.lastBytes = null;
    this.build();
    this.onKey = (e) => this.shortcut(e);
    document.addEventListener("keydown", this.onKey);
    this.levelTimer = setInterval(() => this.speaker(), 500);
    this.statsTimer = setInterval(() => this.stats(), 5000);
  }

  build() {
    const { h } = this.ctx;
    this.grid = h("div", { class: "stage-tiles", "data-count": "0" });
    this.waiting = h("p", { class: "stage-waiting" }, tx("stage.waiting"));
    this.selfVideo = h("video", { autoplay: true, playsinline: true, muted: true });
    this.selfVideo.muted = true;
    this.selfVideo.srcObject = this.stream;
    this.selfTile = h(
      "div",
      { class: "tile self", "data-peer": "self" },
      this.selfVideo,
      h("div", { class: "tile-avatar" }, h("span", { class: "avatar-name" }, this.selfName)),
      this.badges(tx("stage.you")),
    );
    this.sharing = h(
      "div",
      { class: "stage-sharing", hidden: true, role: "status" },
      h("span", {}, tx("stage.sharing")),
      h("button", { type: "button", class: "stop-share", onclick: () => this.stopShare() }, tx("stage.stop_share")),
    );
    this.quality = h("span", { class: "stage-quality", role: "status" });
    this.buttons = {
      mic: this.control("mic", "mic", () => this.toggleMic()),
      camera: this.control("camera", "camera", () => this.toggleCamera()),
      audioOnly: this.control("audioOnly", "audioOnly", () => this.toggleAudioOnly()),
      switchCamera: this.control("switchCamera", "switchCamera", () => this.switchCamera()),
      screen: this.control("screen", "screen", () => (this.screen ? this.stopShare() : this.share())),
      leave: this.control("leave", "leave", () => this.onLeave?.()),
    };
    this.buttons.leave.classList.add("leave");
    this.extra = h("span", { class: "stage-extra" });
    this.bar = h(
      "div",
      { class: "call-bar", role: "toolbar", "aria-label": tx("stage.controls") },
      this.buttons.mic,
      this.buttons.camera,
      this.buttons.audioOnly,
      this.buttons.switchCamera,
      this.buttons.screen,
      this.extra,
      this.buttons.leave,
    );
    this.element = h(
      "div",
      { class: "stage" },
      h("div", { class: "stage-main" }, this.grid, this.waiting, this.selfTile, this.sharing),
      h("div", { class: "stage-status" }, this.quality),
      this.bar,
    );
    this.paint();
  }

  // A control bar button: its icon, its label (aria-label and title, with its shortcut key).
  control(name, iconName, onclick) {
    const button = this.ctx.h("button", { type: "button", class: `control control-${name}`, onclick });
    button.append(icon(iconName));
    return button;
  }

  // Room-specific controls (ending the consult, ending the round) go into the bar too.
  addControl(element) {
    this.extra.append(element);
  }

  label(name, key, on) {
    const { t } = this.ctx;
    const button = this.buttons[name];
    const shortcut = Object.entries(SHORTCUTS)
      .find(([, v]) => v === name)?.[0]
      .toUpperCase();
    const text = t(key);
    button.setAttribute("aria-label", text);
    button.title = t("stage.shortcut", { action: text, key: shortcut });
    if (on != null) {
      button.setAttribute("aria-pressed", String(on));
      button.dataset.on = String(on);
    }
    const want = { mic: this.mic ? "mic" : "micOff", camera: this.camera ? "camera" : "cameraOff" }[name];
    if (want && button.dataset.icon !== want) {
      button.replaceChildren(icon(want));
      button.dataset.icon = want;
    }
  }

  // The controls' labels and colours, and your own tile, from the current state.
  paint() {
    this.label("mic", this.mic ? "stage.mute" : "stage.unmute", !this.mic);
    this.label("camera", this.camera ? "stage.camera_off" : "stage.camera_on", !this.camera);
    this.label("audioOnly", this.audioOnly ? "stage.video_back" : "stage.audio_only", this.audioOnly);
    this.label("switchCamera", "stage.switch_camera");
    this.label("screen", this.screen ? "stage.stop_share" : "stage.share", Boolean(this.screen));
    this.label("leave", "stage.leave");
    this.buttons.mic.classList.toggle("off", !this.mic);
    this.buttons.camera.classList.toggle("off", !this.camera);
    this.selfTile.dataset.audio = this.mic ? "on" : "off";
    this.selfTile.dataset.video = this.camera && !this.audioOnly ? "on" : "off";
    this.selfTile.classList.toggle("screen", Boolean(this.screen));
    this.element.classList.toggle("audio-only", this.audioOnly);
    this.sharing.hidden = !this.screen;
  }

  badges(name) {
    const { h } = this.ctx;
    const muted = h("span", {
      class: "badge-muted",
      role: "img",
      "aria-label": tx("stage.muted"),
      title: tx("stage.muted"),
    });
    muted.append(icon("micOff"));
    const cameraOff = h("span", {
      class: "badge-camera-off",
      role: "img",
      "aria-label": tx("stage.camera_is_off"),
      title: tx("stage.camera_is_off"),
    });
    cameraOff.append(icon("cameraOff"));
    return h("div", { class: "tile-badges" }, h("span", { class: "badge-name" }, name), muted, cameraOff);
  }

  // --- the others' tiles

  expect(peers) {
    for (const p of peers) this.names.set(p.peer_id, p.user?.name || "");
    // Someone on screen who is not in the call any more (left while we were away) is leaving.
    const present = new Set(peers.map((p) => p.peer_id));
    for (const peerId of this.tiles.keys()) if (!present.has(peerId)) this.leaving(peerId);
  }

  peerJoined({ peer_id, user, rejoined }) {
    this.names.set(peer_id, user?.name || "");
    if (rejoined) this.setState(peer_id, "reconnecting");
    else this.announce("stage.joined", peer_id);
  }

  // The server says their connection dropped: it keeps their seat for a while.
  peerReconnecting(peerId) {
    this.setState(peerId, "reconnecting");
    this.announce("stage.reconnecting_name", peerId);
  }

  peerLeft(peerId) {
    if (this.tiles.has(peerId)) this.announce("stage.left", peerId);
    this.leaving(peerId);
  }

  // Call events are read out by the page's one live region (a screen reader hears who came and went).
  announce(key, peerId) {
    this.ctx.announce?.(this.ctx.t(key, { name: this.names.get(peerId) || this.ctx.t("stage.someone") }));
  }

  tile(peerId) {
    const { h } = this.ctx;
    const name = this.names.get(peerId) || "";
    const video = h("video", { autoplay: true, playsinline: true });
    const speaker = localStorage.getItem("telerounds.speaker");
    if (speaker && video.setSinkId) video.setSinkId(speaker).catch(() => {});
    const element = h(
      "div",
      { class: "tile", "data-peer": peerId, "data-state": "connecting", "data-audio": "on", "data-video": "on" },
      video,
      h(
        "div",
        { class: "tile-avatar" },
        h("span", { class: "avatar-initials", "aria-hidden": "true" }, initials(name)),
        h("span", { class: "avatar-name" }, name),
      ),
      h("div", { class: "tile-overlay", role: "status" }, tx("stage.connecting")),
      // Shown while the link to this person carries audio only (either side stopped its video).
      h("div", { class: "tile-link", role: "status" }, tx("stage.link_audio_only")),
      this.badges(name),
    );
    return element;
  }

  // A new connection to a peer gets a new tile (the old one, marked stale, is replaced by it).
  show(peerId, stream) {
    let tile = this.tiles.get(peerId);
    if (!tile || tile.dataset.stale) {
      const fresh = this.tile(peerId);
      if (tile) {
        // Not the link's state: a new connection starts with video.
        for (const key of ["audio", "video"]) fresh.dataset[key] = tile.dataset[key];
        clearTimeout(tile.leavingTimer);
        tile.replaceWith(fresh);
      } else this.grid.append(fresh);
      tile = fresh;
      this.tiles.set(peerId, tile);
    }
    const video = tile.querySelector("video");
    if (video.srcObject !== stream) video.srcObject = stream;
    // A remote stream without a picture (audio only, no camera): the tile shows the name instead.
    if (!stream.getVideoTracks().length) tile.dataset.video = "off";
    this.count();
  }

  gone(peerId, renewing) {
    const tile = this.tiles.get(peerId);
    if (!tile) return;
    if (renewing || tile.dataset.state === "reconnecting") {
      tile.dataset.stale = "1";
      this.setState(peerId, "reconnecting");
    } else this.leaving(peerId);
  }

  setState(peerId, state) {
    const tile = this.tiles.get(peerId);
    if (!tile || tile.dataset.state === "leaving") return;
    if (state === "connecting" && tile.dataset.state === "reconnecting") return; // still re-making it
    tile.dataset.state = state;
    const key = { connecting: "stage.connecting", reconnecting: "stage.reconnecting", failed: "stage.reconnecting" }[
      state
    ];
    tile.querySelector(".tile-overlay").replaceChildren(key ? tx(key) : "");
  }

  leaving(peerId) {
    const tile = this.tiles.get(peerId);
    if (!tile || tile.dataset.state === "leaving") return;
    tile.dataset.state = "leaving";
    tile.querySelector(".tile-overlay").replaceChildren(tx("stage.left", { name: this.names.get(peerId) || "" }));
    tile.leavingTimer = setTimeout(() => {
      if (this.tiles.get(peerId) === tile) this.tiles.delete(peerId);
      tile.remove();
      this.count();
    }, LEAVING_MS);
  }

  // The link to a peer carries audio only (our video to them, or theirs to us, stopped by it).
  link(peerId, { sending, receiving }) {
    const tile = this.tiles.get(peerId);
    if (!tile) return;
    const audioOnly = sending || receiving;
    if ((tile.dataset.link === "audio_only") === audioOnly) return;
    tile.dataset.link = audioOnly ? "audio_only" : "ok";
    this.announce(audioOnly ? "stage.link_audio_only_name" : "stage.link_ok_name", peerId);
  }

  media(peerId, { audio, video, screen }) {
    const tile = this.tiles.get(peerId);
    if (!tile) return;
    tile.dataset.audio = audio ? "on" : "off";
    tile.dataset.video = video || screen ? "on" : "off";
    tile.classList.toggle("screen", Boolean(screen));
  }

  count() {
    const n = this.grid.children.length;
    this.grid.dataset.count = String(n);
    this.waiting.hidden = n > 0;
  }

  // --- the call

  attach(call) {
    if (this.call && this.call !== call) {
      // Re-joining: the old connections are re-made; their tiles wait, marked, for the new ones.
      const old = this.call;
      old.onTrack = old.onGone = old.onPeerState = old.onMedia = old.onLink = () => {};
      for (const peerId of this.tiles.keys()) this.gone(peerId, true);
      old.close();
    }
    this.call = call;
    call.onTrack = (peerId, stream) => this.show(peerId, stream);
    call.onGone = (peerId, renewing) => this.gone(peerId, renewing);
    call.onPeerState = (peerId, state) => this.setState(peerId, state);
    call.onMedia = (peerId, media) => this.media(peerId, media);
    call.onLink = (peerId, state) => this.link(peerId, state);
    call.media.audio = this.mic;
    call.media.video = this.camera && !this.audioOnly;
    call.media.screen = Boolean(this.screen);
    if (this.screen) call.replaceVideo(this.screen, { screen: true });
  }

  async speaker() {
    if (!this.call || document.hidden) return;
    let levels;
    try {
      levels = await this.call.levels();
    } catch (e) {
      return;
    }
    let loudest = null,
      top = SPEAKING;
    for (const [peerId, level] of levels)
      if (level > top) {
        top = level;
        loudest = peerId;
      }
    for (const [peerId, tile] of this.tiles) tile.classList.toggle("speaking", peerId === loudest);
  }

  async stats() {
    if (!this.call) return;
    const { t } = this.ctx;
    let q;
    try {
      q = await this.call.quality();
    } catch (e) {
      return;
    }
    const bitrate = this.lastBytes != null ? Math.round(((q.bytes - this.lastBytes) * 8) / 5000) : undefined;
    this.lastBytes = q.bytes;
    const level = q.loss_pct > 10 || q.rtt_ms > 800 ? "poor" : q.loss_pct > 3 || q.rtt_ms > 300 ? "fair" : "good";
    this.quality.dataset.level = level;
    this.quality.replaceChildren(
      tx(() => `${t("stage.quality")}: ${t(`stage.quality.${level}`)} (${q.rtt_ms} ms, ${q.loss_pct}%)`),
    );
    if (level === "poor" && !this.audioOnly && !this.toldPoor) {
      this.toldPoor = true;
      this.ctx.say?.({ key: "stage.poor_link" });
    }
    this.onStats?.({
      rtt_ms: q.rtt_ms,
      loss_pct: q.loss_pct,
      audio_only: this.audioOnly,
      ...(bitrate != null && bitrate >= 0 ? { bitrate_kbps: bitrate } : {}),
    });
  }

  // --- the controls

  toggleMic() {
    this.mic = !this.mic;
    if (this.call) this.call.setAudio(this.mic);
    else for (const track of this.stream.getAudioTracks()) track.enabled = this.mic;
    this.paint();
  }

  sendVideo() {
    const on = this.camera && !this.audioOnly;
    if (this.call && !this.screen) this.call.setVideo(on);
    else for (const track of this.stream.getVideoTracks()) track.enabled = on;
  }

  toggleCamera() {
    this.camera = !this.camera;
    this.sendVideo();
    this.paint();
  }

  // Audio only, for a poor link: no picture sent, and the others' pictures give way to their names.
  toggleAudioOnly() {
    this.audioOnly = !this.audioOnly;
    this.sendVideo();
    this.ctx.say?.(this.audioOnly ? { key: "stage.audio_only_on" } : null);
    this.paint();
  }

  cameraTrack() {
    return this.stream.getVideoTracks()[0] || null;
  }

  async switchCamera() {
    const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    if (cameras.length < 2) {
      this.ctx.say?.({ key: "stage.one_camera" });
      return;
    }
    const current = this.cameraTrack()?.getSettings().deviceId;
    const next = cameras[(cameras.findIndex((d) => d.deviceId === current) + 1) % cameras.length];
    const fresh = (
      await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: next.deviceId } } })
    ).getVideoTracks()[0];
    const old = this.cameraTrack();
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    fresh.enabled = this.camera && !this.audioOnly;
    this.stream.addTrack(fresh);
    if (!this.screen) await this.call?.replaceVideo(fresh);
  }

  async share() {
    let screen;
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    } catch (e) {
      return;
    } // declined
    if (this.closed) {
      for (const track of screen.getTracks()) track.stop();
      return;
    }
    this.screen = screen.getVideoTracks()[0];
    this.screen.onended = () => this.stopShare(); // stopped from the browser's own bar
    this.selfVideo.srcObject = new MediaStream([this.screen]);
    await this.call?.replaceVideo(this.screen, { screen: true });
    this.ctx.say?.({ key: "stage.sharing" });
    this.paint();
  }

  async stopShare() {
    if (!this.screen) return;
    const track = this.screen;
    this.screen = null;
    track.onended = null;
    track.stop();
    this.selfVideo.srcObject = this.stream;
    this.paint();
    if (!this.closed) {
      this.ctx.say?.(null);
      const camera = this.cameraTrack();
      await this.call?.replaceVideo(camera, { screen: false });
      if (this.call) this.call.setVideo(this.camera && !this.audioOnly);
    }
  }

  // After a language change: every text of the stage in the new language, the controls' labels too.
  retranslate() {
    retranslate(this.element);
    this.paint();
  }

  shortcut(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const target = e.target;
    if (target?.closest?.("input, textarea, select, [contenteditable], dialog[open]")) return;
    const name = SHORTCUTS[e.key?.toLowerCase()];
    if (!name) return;
    e.preventDefault();
    this.buttons[name].click();
  }

  // Leaving, the end of the consult or the round, the page closed: the screen share and the
  // camera and microphone stop with the call.
  close() {
    if (this.closed) return;
    this.closed = true;
    document.removeEventListener("keydown", this.onKey);
    clearInterval(this.levelTimer);
    clearInterval(this.statsTimer);
    this.stopShare();
    this.call?.close();
    for (const track of this.stream.getTracks()) track.stop();
    for (const tile of this.tiles.values()) clearTimeout(tile.leavingTimer);
  }
}

function initials(name) {
  const words = name
    .replace(/^(BS|ThS|TS|PGS|GS|ĐD|YS)\.?\s+/i, "")
    .split(/\s+/)
    .filter(Boolean);
  return words
    .slice(-2)
    .map((w) => w[0])
    .join("")
    .toUpperCase();
}

// The pre-join screen: see yourself, choose the camera, microphone and speaker, watch the
// microphone's level, and (if in doubt) send your picture and sound to the server's echo peer
// and see them come back, before joining. It replaces the separate pre-call page.

import { tx } from "/static/ui/dom.js";

const SPEAKER_KEY = "telerounds.speaker";

// `ctx.show(element)` puts a screen on the page (the app's main area by default).
// `title`: a text, or a function giving it (then it follows a language change).
// `check`: only the test, no Join (opened from the home screen). Resolves with the stream to
// join with, or null when the user went back.
export function preJoin(ctx, { title, check = false }) {
  return new Promise((resolve) => {
    const screen = new PreJoin(ctx, { title, check, done: resolve });
    (ctx.show || ((el) => document.getElementById("app").replaceChildren(el)))(screen.element);
    screen.start();
  });
}

class PreJoin {
  constructor(ctx, { title, check, done }) {
    this.ctx = ctx;
    this.check = check;
    this.done = done;
    this.stream = new MediaStream();
    const { h } = ctx;
    this.preview = h("video", { class: "prejoin-preview", autoplay: true, playsinline: true, muted: true });
    this.preview.muted = true;
    this.camera = h("select", {
      name: "camera",
      onchange: () => {
        this.opened = this.open();
      },
    });
    this.microphone = h("select", {
      name: "microphone",
      onchange: () => {
        this.opened = this.open();
      },
    });
    this.speaker = h("select", { name: "speaker", onchange: () => this.chooseSpeaker() });
    this.meter = h("meter", {
      class: "mic-level",
      min: 0,
      max: 1,
      low: 0.05,
      high: 0.8,
      optimum: 0.3,
      value: 0,
      "aria-label": tx("prejoin.mic_level"),
    });
    this.status = h("p", { class: "prejoin-status", role: "status" });
    this.echoStatus = h("p", { class: "echo-status", role: "status" });
    this.echo = h("video", { class: "echo", autoplay: true, playsinline: true });
    this.figures = h("p", { class: "echo-figures" });
    const speakers = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
    this.join = check
      ? null
      : h("button", { type: "button", class: "prejoin-join", onclick: () => this.finish(true) }, tx("prejoin.join"));
    this.element = h(
      "section",
      { class: "prejoin" },
      h("h2", {}, typeof title === "function" ? tx(title) : title),
      h(
        "div",
        { class: "prejoin-body" },
        h(
          "div",
          { class: "prejoin-media" },
          h("div", { class: "tile self" }, this.preview),
          h("label", { class: "mic-level-label" }, tx("prejoin.mic_level"), this.meter),
        ),
        h(
          "div",
          { class: "prejoin-devices" },
          h("label", {}, tx("prejoin.camera"), this.camera),
          h("label", {}, tx("prejoin.microphone"), this.microphone),
          speakers ? h("label", {}, tx("prejoin.speaker"), this.speaker) : null,
          this.status,
          h(
            "details",
            { class: "echo-test", open: check },
            h("summary", {}, tx("prejoin.echo_title")),
            h("p", { class: "muted" }, tx("prejoin.echo_explain")),
            h(
              "button",
              { type: "button", class: "secondary echo-start", onclick: () => this.echoTest() },
              tx("prejoin.echo_start"),
            ),
            this.echoStatus,
            h("div", { class: "tile echo-tile" }, this.echo, h("span", { class: "name" }, tx("prejoin.echo_back"))),
            this.figures,
          ),
        ),
      ),
      h(
        "div",
        { class: "row prejoin-actions" },
        this.join,
        h(
          "button",
          { type: "button", class: "secondary prejoin-back", onclick: () => this.finish(false) },
          tx("prejoin.back"),
        ),
      ),
    );
  }

  async start() {
    this.opened = this.open();
    await this.opened;
    await this.listDevices();
    this.join?.focus();
  }

  // (Re)open the chosen devices; the first time, whatever the browser gives.
  async open() {
    // Join and the echo test wait until the devices are open: a stream without tracks would join
    // the call without picture or sound.
    if (this.join) this.join.disabled = true;
    const camera = this.camera.value,
      microphone = this.microphone.value;
    this.stopTracks();
    const want = {
      audio: microphone ? { deviceId: { exact: microphone } } : true,
      video: camera ? { deviceId: { exact: camera } } : true,
    };
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(want);
    } catch (e) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: want.audio });
        this.say(tx("prejoin.no_camera"));
      } catch (e2) {
        stream = new MediaStream();
        this.say(tx("prejoin.no_devices"));
      }
    }
    if (this.finished) {
      for (const track of stream.getTracks()) track.stop();
      return;
    }
    this.stream = stream;
    this.preview.srcObject = stream;
    this.level();
    if (this.join) this.join.disabled = false;
  }

  async listDevices() {
    const { h } = this.ctx;
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch (e) {
      return;
    }
    const using = (kind) =>
      this.stream
        .getTracks()
        .find((x) => x.kind === kind)
        ?.getSettings().deviceId;
    const fill = (select, kind, current) => {
      const options = devices
        .filter((d) => d.kind === kind)
        .map((d, i) =>
          h(
            "option",
            { value: d.deviceId, selected: d.deviceId === current },
            d.label || tx(`prejoin.${kind}_n`, { n: i + 1 }),
          ),
        );
      select.replaceChildren(...options);
      select.disabled = options.length === 0;
    };
    fill(this.camera, "videoinput", using("video"));
    fill(this.microphone, "audioinput", using("audio"));
    fill(this.speaker, "audiooutput", localStorage.getItem(SPEAKER_KEY) || "default");
  }

  chooseSpeaker() {
    localStorage.setItem(SPEAKER_KEY, this.speaker.value);
    this.echo.setSinkId?.(this.speaker.value).catch(() => {});
  }

  // The microphone's level, from an analyser on its track.
  level() {
    this.audio?.close().catch(() => {});
    this.audio = null;
    const track = this.stream.getAudioTracks()[0];
    if (!track) {
      this.meter.value = 0;
      return;
    }
    try {
      const audio = new AudioContext();
      const analyser = audio.createAnalyser();
      analyser.fftSize = 512;
      audio.createMediaStreamSource(new MediaStream([track])).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      const tick = () => {
        if (this.audio !== audio) return;
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const x of samples) sum += x * x;
        this.meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
        setTimeout(tick, 100);
      };
      this.audio = audio;
      tick();
    } catch (e) {
      /* no audio processing: no meter */
    }
  }

  // The server's echo peer: it sends back what it gets, and its figures on a data channel.
  async echoTest() {
    const { t, api } = this.ctx;
    await this.opened;
    this.pc?.close();
    this.echoStatus.replaceChildren(tx("prejoin.echo_starting"));
    delete this.echoStatus.dataset.state;
    // The calls' ICE servers and policy, so a relay-only service checks the path through TURN.
    let network = { ice_servers: [], ice_transport_policy: "all" };
    try {
      network = await api("/api/ice-servers");
    } catch (e) {
      /* an older server: check the direct path */
    }
    const pc = new RTCPeerConnection({
      iceServers: network.ice_servers,
      iceTransportPolicy: network.ice_transport_policy,
    });
    this.pc = pc;
    for (const track of this.stream.getTracks()) pc.addTrack(track.clone());
    pc.ontrack = (e) => {
      this.echo.srcObject = e.streams[0] || new MediaStream([e.track]);
    };
    const channel = pc.createDataChannel("figures");
    channel.onmessage = (e) => {
      const f = JSON.parse(e.data);
      this.figures.replaceChildren(
        tx(
          () =>
            `${t("stage.quality")}: ${f.connection}` +
            (f.rtt_ms != null ? ` · ${f.rtt_ms} ms` : "") +
            (f.video_packets_lost != null ? ` · ${t("prejoin.lost")}: ${f.video_packets_lost}` : ""),
        ),
      );
    };
    pc.onconnectionstatechange = () => {
      const known = ["new", "connecting", "connected", "disconnected", "failed", "closed"];
      if (!known.includes(pc.connectionState)) return;
      this.echoStatus.replaceChildren(tx(`prejoin.echo.${pc.connectionState}`));
      this.echoStatus.dataset.state = pc.connectionState;
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      // The server peer takes the whole offer at once: wait for every candidate.
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
        setTimeout(resolve, 3000);
      });
      const answer = await api("/api/precall/offer", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
      });
      await pc.setRemoteDescription(answer);
    } catch (e) {
      this.echoStatus.replaceChildren(tx("prejoin.echo_failed", { message: e.message || String(e) }));
      this.echoStatus.dataset.state = "failed";
    }
  }

  say(text) {
    this.status.replaceChildren(text);
  }

  stopTracks() {
    for (const track of this.stream.getTracks()) track.stop();
  }

  finish(join) {
    if (this.finished) return;
    this.finished = true;
    this.audio?.close().catch(() => {});
    this.audio = null;
    if (this.pc) {
      for (const sender of this.pc.getSenders()) sender.track?.stop();
      this.pc.close();
    }
    this.preview.srcObject = null;
    if (!join) this.stopTracks();
    this.done(join ? this.stream : null);
  }
}

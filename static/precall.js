// The pre-call check: send camera and microphone to the server's echo peer and see them come back.
import { load, t } from "/static/i18n.js";

await load();
const token = sessionStorage.getItem("telerounds.token");
const status = document.getElementById("status");
const figures = document.getElementById("figures");

async function check() {
  if (!token) { status.textContent = t("precall.login_first"); return; }
  status.textContent = t("precall.starting");
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  document.getElementById("local").srcObject = stream;
  const pc = new RTCPeerConnection({ iceServers: [] });
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  pc.ontrack = (e) => { document.getElementById("echo").srcObject = e.streams[0] || new MediaStream([e.track]); };
  const channel = pc.createDataChannel("figures");
  channel.onmessage = (e) => {
    const f = JSON.parse(e.data);
    figures.textContent = `${t("room.quality")}: ${f.connection}` + (f.rtt_ms != null ? ` · ${f.rtt_ms} ms` : "") +
      (f.video_packets_lost != null ? ` · ${t("precall.lost")}: ${f.video_packets_lost}` : "");
  };
  pc.onconnectionstatechange = () => { status.textContent = t(`precall.${pc.connectionState}`) ; status.dataset.state = pc.connectionState; };
  await pc.setLocalDescription(await pc.createOffer());
  // The server peer takes the whole offer at once: wait for every candidate.
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
    setTimeout(resolve, 3000);
  });
  const response = await fetch("/api/precall/offer", { method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }) });
  const body = await response.json();
  if (!response.ok) { status.textContent = body.error.message; return; }
  await pc.setRemoteDescription(body);
}

document.getElementById("start").addEventListener("click", () => check().catch((e) => { status.textContent = String(e); }));

// Audio first: whether one peer connection's link can carry video, decided from its statistics
// once a second. Pure (no DOM, no WebRTC): static/call.js feeds it samples and acts on the mode;
// tests/js/linkquality.test.mjs runs it under Node.
//
// A sample is {kbps, loss, rttS}: the available outgoing bitrate of the selected candidate pair
// (the sender's bandwidth estimate), the fraction of our packets the other side reports lost, and
// the round trip it reports (remote-inbound-rtp); any may be null (not known yet).
//
// Modes: "ok" (video sent), "audio_only" (video stopped on this connection, audio untouched),
// "trial" (video sent again to see whether the link carries it now). Hysteresis: video stops
// after `badSamples` poor samples in a row; with video stopped, the bandwidth estimate says
// little (audio alone never fills the link), so after `hold` samples with audio doing well the
// video is tried again; it stays if `trialSamples` samples in a row are not poor, else it stops
// again and the next try waits twice as long (at most `maxHoldSamples`).

export const LINK = {
  minKbps: 150, // below this estimate the link cannot carry video (and audio) at once
  maxLoss: 0.1, // more of our packets lost than this, as the receiver reports
  maxRttS: 1.0, // a longer round trip than this
  badSamples: 3, // poor samples in a row before video stops
  holdSamples: 4, // good samples (audio only) before video is tried again
  maxHoldSamples: 8,
  trialSamples: 3, // samples video must hold up for to stay
};

export function initialLink(th = LINK) {
  return { mode: "ok", bad: 0, good: 0, hold: th.holdSamples };
}

// A sample that says the link cannot carry what is being sent.
export function poor(sample, th = LINK, { withVideo = true } = {}) {
  if (sample.loss != null && sample.loss > th.maxLoss) return true;
  if (sample.rttS != null && sample.rttS > th.maxRttS) return true;
  // With video stopped the estimate follows the audio alone: it says nothing about video.
  return withVideo && sample.kbps != null && sample.kbps < th.minKbps;
}

// The next state of a link after one sample. Whether video is sent follows: `sendsVideo(link)`.
export function nextLink(link, sample, th = LINK) {
  if (link.mode === "ok") {
    const bad = poor(sample, th) ? link.bad + 1 : 0;
    if (bad >= th.badSamples) return { mode: "audio_only", bad: 0, good: 0, hold: link.hold };
    return { ...link, bad };
  }
  if (link.mode === "audio_only") {
    const good = poor(sample, th, { withVideo: false }) ? 0 : link.good + 1;
    if (good >= link.hold) return { mode: "trial", bad: 0, good: 0, hold: link.hold };
    return { ...link, good };
  }
  // On trial: one poor sample stops video again, and the next try waits longer.
  if (poor(sample, th)) {
    return { mode: "audio_only", bad: 0, good: 0, hold: Math.min(link.hold * 2, th.maxHoldSamples) };
  }
  const good = link.good + 1;
  if (good >= th.trialSamples) return { mode: "ok", bad: 0, good: 0, hold: th.holdSamples };
  return { ...link, good };
}

export const sendsVideo = (link) => link.mode !== "audio_only";

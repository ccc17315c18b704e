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
// video is tried again; it stays if the link is not lossy or slow for `trialSamples` samples and
// the estimate has reached the floor by the trial's last one, else it stops again and the next
// try waits twice as long (at most `maxHoldSamples`).
//
// Repeated cuts (issue 23): each ICE restart makes the browser learn its estimate anew, and over
// the 400 kbps, 3 % loss district link it then sits at about 130–180 kbps for a long while. Two
// things keep that from flapping between audio-only and video:
// - a link that has carried video (`provenSamples` samples in a row without a poor one) is
//   judged against the lower `provenKbps` floor: after a cut the estimate is re-learning, the link
//   has not changed; a link capped at 64 kbps still reads below it and goes audio first;
// - a trial's estimate is judged at its end, not at its first sample: video had been off, so the
//   first samples still read what audio alone left (the bench saw 136 kbps before and after).
// (The third cause, a report that stopped coming read again for ever, is call.js's to drop: it
// passes the other side's loss and round trip only while their report changed within 3 s.)

export const LINK = {
  minKbps: 150, // below this estimate a link not yet proven cannot carry video and audio at once
  provenKbps: 100, // the floor once the link has carried video: audio (~40 kbps) and a small picture
  provenSamples: 10, // samples in a row with video and none poor that prove the link carries video
  maxLoss: 0.1, // more of our packets lost than this, as the receiver reports
  maxRttS: 1.0, // a longer round trip than this
  badSamples: 3, // poor samples in a row before video stops
  holdSamples: 4, // good samples (audio only) before video is tried again
  maxHoldSamples: 8,
  trialSamples: 3, // samples video must hold up for to stay
};

export function initialLink(th = LINK) {
  return { mode: "ok", bad: 0, good: 0, hold: th.holdSamples, carried: 0, proven: false };
}

// The bandwidth estimate below which this link cannot carry video.
export const floorKbps = (link, th = LINK) => (link.proven ? th.provenKbps : th.minKbps);

// A sample that says the link cannot carry what is being sent: lossy or slow, or (when the
// estimate says something about video) an estimate below `minKbps`.
export function poor(sample, th = LINK, { withVideo = true, minKbps = th.minKbps } = {}) {
  if (sample.loss != null && sample.loss > th.maxLoss) return true;
  if (sample.rttS != null && sample.rttS > th.maxRttS) return true;
  return withVideo && sample.kbps != null && sample.kbps < minKbps;
}

// The next state of a link after one sample. Whether video is sent follows: `sendsVideo(link)`.
export function nextLink(link, sample, th = LINK) {
  const floor = floorKbps(link, th);
  if (link.mode === "ok") {
    const isPoor = poor(sample, th, { minKbps: floor });
    const bad = isPoor ? link.bad + 1 : 0;
    const carried = isPoor ? 0 : link.carried + 1;
    const proven = link.proven || carried >= th.provenSamples;
    if (bad >= th.badSamples) return { ...link, mode: "audio_only", bad: 0, good: 0, carried: 0, proven };
    return { ...link, bad, carried, proven };
  }
  if (link.mode === "audio_only") {
    // With video stopped the estimate follows the audio alone: it says nothing about video.
    const good = poor(sample, th, { withVideo: false }) ? 0 : link.good + 1;
    if (good >= link.hold) return { ...link, mode: "trial", bad: 0, good: 0 };
    return { ...link, good };
  }
  // On trial: one lossy or slow sample stops video again, as does an estimate still under the
  // floor at the trial's end; the next try then waits longer.
  const good = link.good + 1;
  if (poor(sample, th, { withVideo: good >= th.trialSamples, minKbps: floor })) {
    return { ...link, mode: "audio_only", bad: 0, good: 0, hold: Math.min(link.hold * 2, th.maxHoldSamples) };
  }
  if (good >= th.trialSamples) return { ...link, mode: "ok", bad: 0, good: 0, carried: 0, hold: th.holdSamples };
  return { ...link, good };
}

export const sendsVideo = (link) => link.mode !== "audio_only";

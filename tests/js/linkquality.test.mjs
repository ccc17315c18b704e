// Audio first (static/linkquality.js) on its own: when a link stops video, how it tries it again,
// and that it never flaps on one poor or one good sample. Runs without an instance too:
// node --test tests/js/linkquality.test.mjs
import test from "node:test";
import assert from "node:assert/strict";
import { LINK, floorKbps, initialLink, nextLink, poor, sendsVideo } from "../../static/linkquality.js";

const GOOD = { kbps: 1200, loss: 0, rttS: 0.08 };
const THIN = { kbps: 60, loss: 0.01, rttS: 0.3 }; // a 64 kbps link: the estimate says so
const LOSSY = { kbps: null, loss: 0.3, rttS: null };

function run(link, samples) {
  for (const s of samples) link = nextLink(link, s);
  return link;
}

test("a thin or lossy link stops video after three poor samples in a row, not before", () => {
  let link = run(initialLink(), [THIN, THIN]);
  assert.ok(sendsVideo(link));
  link = nextLink(link, THIN);
  assert.equal(link.mode, "audio_only");
  assert.equal(run(initialLink(), [LOSSY, LOSSY, LOSSY]).mode, "audio_only");
  // One good sample between poor ones starts the count again.
  assert.equal(run(initialLink(), [THIN, THIN, GOOD, THIN, THIN]).mode, "ok");
});

test("with video stopped, the thin estimate of audio alone does not keep it stopped", () => {
  assert.equal(poor(THIN, LINK, { withVideo: false }), false);
  assert.equal(poor(LOSSY, LINK, { withVideo: false }), true);
  let link = run(initialLink(), [THIN, THIN, THIN]);
  link = run(link, Array(LINK.holdSamples).fill(THIN)); // audio does well: video is tried again
  assert.equal(link.mode, "trial");
  assert.ok(sendsVideo(link));
});

test("a failed trial stops video again and waits twice as long, at most maxHoldSamples", () => {
  let link = run(initialLink(), [THIN, THIN, THIN, ...Array(LINK.holdSamples).fill(THIN)]);
  // The estimate is judged at the trial's end: video had been off, its first samples say little.
  link = run(link, Array(LINK.trialSamples - 1).fill(THIN));
  assert.equal(link.mode, "trial");
  link = nextLink(link, THIN); // the link still cannot carry video
  assert.equal(link.mode, "audio_only");
  assert.equal(link.hold, Math.min(LINK.holdSamples * 2, LINK.maxHoldSamples));
  for (let i = 0; i < 5; i++) link = run(link, [...Array(link.hold).fill(THIN), ...Array(LINK.trialSamples).fill(THIN)]);
  assert.equal(link.hold, LINK.maxHoldSamples);
  // A lossy sample ends a trial at once.
  link = run(link, [...Array(link.hold).fill(THIN), LOSSY]);
  assert.equal(link.mode, "audio_only");
});

test("a trial that holds up brings video back for good and resets the wait", () => {
  let link = run(initialLink(), [THIN, THIN, THIN, ...Array(LINK.holdSamples).fill(GOOD)]);
  link = run(link, Array(LINK.trialSamples).fill(GOOD));
  assert.deepEqual(link, initialLink());
});

test("nothing known yet is not poor", () => {
  assert.equal(poor({ kbps: null, loss: null, rttS: null }), false);
  assert.equal(run(initialLink(), Array(10).fill({ kbps: null, loss: null, rttS: null })).mode, "ok");
});

// Issue 23: the 400 kbps, 3 % loss district link cut for 8 s, ten times in one call. After each
// ICE restart the estimate is learnt anew and reads about 130–180 kbps for a while (the bench's
// readings), then climbs. A sample once a second.
const CARRIES = { kbps: 360, loss: 0.03, rttS: 0.32 }; // the district link carrying video
const RELEARNT = [136, 136, 137, 148, 152, 141, 139, 160, 175, 180].map((kbps) => ({ kbps, loss: 0.03, rttS: 0.32 }));
const CUT = { kbps: null, loss: null, rttS: null }; // call.js judges nothing while no media comes in
// The first report after a restore counts what the cut lost; call.js judges nothing for 3 s after
// media flows again and a report for at most 3 s after it came: it can still be read a second or two.
const BURST = { kbps: 136, loss: 0.59, rttS: 0.32 };
const CAPPED = { kbps: 58, loss: 0.04, rttS: 0.6 }; // a 64 kbps cap: the estimate cannot pass it
const CAPPED_WITH_VIDEO = { kbps: 60, loss: 0.35, rttS: 1.4 }; // video over it: its buffer overflows

test("after repeated cuts of a link that carried video, video stays on while the estimate is learnt anew", () => {
  let link = run(initialLink(), Array(LINK.provenSamples).fill(CARRIES));
  assert.equal(link.proven, true);
  assert.equal(floorKbps(link), LINK.provenKbps);
  const modes = [];
  for (let cut = 0; cut < 10; cut++) {
    for (const s of [...Array(8).fill(CUT), BURST, BURST, ...RELEARNT]) {
      link = nextLink(link, s);
      modes.push(link.mode);
    }
  }
  assert.deepEqual(new Set(modes), new Set(["ok"])); // never audio-only, never flapping
});

test("a link first seen at the re-learnt estimate goes audio first, and its trials bring video back", () => {
  // Not proven yet: the stricter floor holds, as before issue 23.
  let link = run(initialLink(), RELEARNT.slice(0, LINK.badSamples));
  assert.equal(link.mode, "audio_only");
  // With video stopped the estimate stays where audio left it; a trial's first samples read the
  // same, then the estimate climbs with video: judged at the trial's end, video stays.
  link = run(link, Array(link.hold).fill(RELEARNT[0]));
  assert.equal(link.mode, "trial");
  link = run(link, [RELEARNT[0], RELEARNT[0], { ...RELEARNT[0], kbps: 280 }]);
  assert.equal(link.mode, "ok");
});

test("a link capped at 64 kbps goes audio first and stays so, even after carrying video", () => {
  for (const start of [initialLink(), run(initialLink(), Array(LINK.provenSamples).fill(CARRIES))]) {
    let link = run(start, Array(LINK.badSamples).fill(CAPPED));
    assert.equal(link.mode, "audio_only");
    // Five minutes: trials now and then (video sent with audio over the cap overflows it), never ok.
    const modes = [];
    for (let i = 0; i < 300; i++) {
      link = nextLink(link, link.mode === "trial" ? CAPPED_WITH_VIDEO : CAPPED);
      modes.push(link.mode);
    }
    assert.ok(!modes.includes("ok"));
    const withVideo = modes.filter((m) => m === "trial").length;
    assert.ok(withVideo <= 300 / LINK.maxHoldSamples, `video sent for ${withVideo} of 300 s`);
    assert.equal(link.hold, LINK.maxHoldSamples); // tried at the longest wait, not flapping
    // Even with a calm buffer, an estimate under the floor ends each trial at its end.
    link = run(link, Array(link.hold).fill(CAPPED));
    link = run(link, Array(LINK.trialSamples).fill(CAPPED));
    assert.equal(link.mode, "audio_only");
  }
});

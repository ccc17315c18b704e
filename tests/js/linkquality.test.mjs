// Audio first (static/linkquality.js) on its own: when a link stops video, how it tries it again,
// and that it never flaps on one poor or one good sample. Runs without an instance too:
// node --test tests/js/linkquality.test.mjs
import test from "node:test";
import assert from "node:assert/strict";
import { LINK, initialLink, nextLink, poor, sendsVideo } from "../../static/linkquality.js";

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
  link = nextLink(link, THIN); // the link still cannot carry video
  assert.equal(link.mode, "audio_only");
  assert.equal(link.hold, Math.min(LINK.holdSamples * 2, LINK.maxHoldSamples));
  for (let i = 0; i < 5; i++) link = nextLink(run(link, Array(link.hold).fill(THIN)), THIN);
  assert.equal(link.hold, LINK.maxHoldSamples);
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

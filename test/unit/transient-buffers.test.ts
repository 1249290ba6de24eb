// core/transient-buffers: a young-generation collection every 16 MiB of short-lived big buffers, a full one
// once they stop coming.
import assert from "node:assert/strict";
import { PerformanceObserver, constants, type PerformanceEntry } from "node:perf_hooks";
import { test } from "node:test";
import { transientBuffer, transientReclaims } from "../../runtime/core/transient-buffers";
import { waitFor } from "../helpers/cluster";

const turn = () => new Promise((r) => setImmediate(r));

/** Collections of `kind` (perf_hooks' gc entries) observed while `fn` runs. */
async function observeGc(kind: number, fn: () => Promise<void>): Promise<number> {
  let seen = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === kind) seen++;
  });
  obs.observe({ entryTypes: ["gc"] });
  try {
    await fn();
    // (entries are delivered asynchronously)
    for (let i = 0; i < 50 && seen === 0; i++) await new Promise((r) => setTimeout(r, 10));
    return seen;
  } finally {
    obs.disconnect();
  }
}

test("16 MiB of transient buffers counted ask for one young-generation collection, after the turn; less asks for none", async () => {
  await turn();
  const before = transientReclaims().young;
  transientBuffer(8 << 20);
  await turn();
  await turn();
  assert.equal(transientReclaims().young, before, "8 MiB: none yet");
  const scavenges = await observeGc(constants.NODE_PERFORMANCE_GC_MINOR, async () => {
    transientBuffer(8 << 20);
    transientBuffer(8 << 20); // (one collection for both: asked once per turn)
    assert.equal(transientReclaims().young, before, "not within the turn that allocated");
    await turn();
    await turn();
    assert.equal(transientReclaims().young, before + 1);
  });
  // V8 really collected (the collector is made available at run time, without --expose-gc)
  assert.ok(scavenges >= 1, "a scavenge was observed");
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a stream of transient buffers gets one full collection once it stops, none while it goes on", async () => {
  // The test above's stream is over once its full collection is: `full` unchanged over 1 s (a late one
  // would land inside `during`).
  let last = -1;
  let same = 0;
  await waitFor("the full collection of the test above", () => {
    const full = transientReclaims().full;
    same = full === last ? same + 1 : 0;
    last = full;
    return same >= 2;
  }, 10000, 500);
  const start = transientReclaims();
  let during = { young: 0, full: 0 };
  const majors = await observeGc(constants.NODE_PERFORMANCE_GC_MAJOR, async () => {
    // 16 MiB every 20 ms for 400 ms: longer than IDLE_MS (200 ms), never idle that long
    for (let i = 0; i < 20; i++) {
      transientBuffer(16 << 20);
      await sleep(20);
    }
    during = transientReclaims();
    assert.equal(during.young - start.young, 20, "a young collection per 16 MiB");
    assert.equal(during.full, start.full, "no full collection while it streams");
    // nothing counted for IDLE_MS (the check runs every 200 ms): then a full collection
    await waitFor("a full collection", () => transientReclaims().full > during.full, 5000, 20);
  });
  const after = transientReclaims();
  assert.equal(after.full, during.full + 1, "one full collection once the stream stopped");
  assert.ok(majors >= 1, "V8 ran a full collection");
  await sleep(500);
  assert.equal(transientReclaims().full, after.full, "and no more while nothing is counted");
});

test("under 16 MiB asks for no collection at all", async () => {
  await sleep(600);
  const before = transientReclaims();
  transientBuffer(1 << 20);
  await sleep(700);
  assert.deepEqual(transientReclaims(), before);
});

// core/transient-buffers: a young-generation collection every 16 MiB of short-lived big buffers.
import assert from "node:assert/strict";
import { PerformanceObserver, constants, type PerformanceEntry } from "node:perf_hooks";
import { test } from "node:test";
import { transientBuffer, transientReclaims } from "../../runtime/core/transient-buffers";

const turn = () => new Promise((r) => setImmediate(r));

test("16 MiB of transient buffers counted ask for one young-generation collection, after the turn; less asks for none", async () => {
  await turn();
  const before = transientReclaims();
  transientBuffer(8 << 20);
  await turn();
  await turn();
  assert.equal(transientReclaims(), before, "8 MiB: none yet");
  const minor: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor.push(e.startTime);
  });
  obs.observe({ entryTypes: ["gc"] });
  try {
    transientBuffer(8 << 20);
    transientBuffer(8 << 20); // (one collection for both: asked once per turn)
    assert.equal(transientReclaims(), before, "not within the turn that allocated");
    await turn();
    await turn();
    assert.equal(transientReclaims(), before + 1);
    // V8 really collected (the collector is made available at run time, without --expose-gc)
    for (let i = 0; i < 50 && minor.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(minor.length >= 1, "a scavenge was observed");
  } finally {
    obs.disconnect();
  }
});

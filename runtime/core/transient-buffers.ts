import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Big buffers that live for one request (a received frame, a read's data) are freed only when V8
 * collects their wrappers, and for memory outside its heap V8 collects after every ~64 MB allocated
 * (its external-memory soft limit, not configurable): streaming 1 MiB requests at 500 MB/s kept up to
 * ~70 MB of dead buffers resident above the process's working set. Counting what such buffers take
 * and asking for a young-generation collection (a scavenge: the wrappers die young) every
 * RECLAIM_EVERY bytes bounds that.
 */
const RECLAIM_EVERY = 16 << 20;
/**
 * Some of them do not die young: a buffer still held when a scavenge runs (read-ahead's next run, a
 * frame being received) is promoted and then waits for a full collection, which V8 starts on its own
 * while a stream goes on but not after it. Measured on a mount reading a 256 MiB file again and again
 * (1 s idle after each read): its RSS after each read went 98 -> 124 MB and stayed there through the
 * next workloads (the bench's cold read left the mount 46-64 MB above its working set). So one full
 * collection once a stream is over: after IDLE_MS with nothing counted (on these small heaps it takes
 * 2-6 ms). The mount then gives the freed memory back to the system (kernel/channel.ts, trimHeap):
 * 76-78 MB after each read, as before the first. (The peak within a read did not move: ~125 MB.)
 */
const IDLE_MS = 200;

let sinceLast = 0;
/** All bytes counted, to tell whether any came since a moment. */
let counted = 0;
let scheduled = false;
let idleCheck: NodeJS.Timeout | undefined;
/** Collections asked for so far (young-generation, full). */
let reclaims = 0;
let fullReclaims = 0;
/** V8's gc(): with no argument a full collection (on Node 20, `{ type: "major" }` ran a scavenge). */
let gcFn: ((opts?: { type: "minor" }) => void) | null | undefined;

/** V8's gc(), made available at run time (no --expose-gc on the command line needed); null when refused. */
function collector(): ((opts?: { type: "minor" }) => void) | null {
  if (gcFn !== undefined) return gcFn;
  try {
    setFlagsFromString("--expose-gc");
    gcFn = runInNewContext("gc") as (opts?: { type: "minor" }) => void;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** Once nothing has been counted for IDLE_MS, a full collection of what the stream left promoted. */
function collectAfterStream(): void {
  if (idleCheck) return;
  const seen = counted;
  idleCheck = setTimeout(() => {
    idleCheck = undefined;
    if (counted !== seen) return collectAfterStream();
    fullReclaims++;
    collector()?.();
  }, IDLE_MS);
  idleCheck.unref(); // (never what keeps a process alive)
}

/** Counts `bytes` of a buffer that will be garbage once its request is answered. */
export function transientBuffer(bytes: number): void {
  sinceLast += bytes;
  counted += bytes;
  if (sinceLast < RECLAIM_EVERY || scheduled) return;
  scheduled = true;
  // after the turn that allocated: the buffers of requests answered meanwhile are dead by then
  setImmediate(() => {
    scheduled = false;
    sinceLast = 0;
    reclaims++;
    collector()?.({ type: "minor" });
    collectAfterStream();
  });
}

/** How many collections were asked for (statedump, tests). */
export function transientReclaims(): { young: number; full: number } {
  return { young: reclaims, full: fullReclaims };
}

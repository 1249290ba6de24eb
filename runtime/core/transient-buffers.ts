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

let sinceLast = 0;
let scheduled = false;
/** Collections asked for so far. */
let reclaims = 0;
let minorGc: (() => void) | null | undefined;

/** V8's gc(), made available at run time (no --expose-gc on the command line needed); null when refused. */
function collector(): (() => void) | null {
  if (minorGc !== undefined) return minorGc;
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as (opts?: { type: "minor" | "major" }) => void;
    minorGc = () => gc({ type: "minor" });
  } catch {
    minorGc = null;
  }
  return minorGc;
}

/** Counts `bytes` of a buffer that will be garbage once its request is answered. */
export function transientBuffer(bytes: number): void {
  sinceLast += bytes;
  if (sinceLast < RECLAIM_EVERY || scheduled) return;
  scheduled = true;
  // after the turn that allocated: the buffers of requests answered meanwhile are dead by then
  setImmediate(() => {
    scheduled = false;
    sinceLast = 0;
    reclaims++;
    collector()?.();
  });
}

/** How many collections were asked for (statedump, tests). */
export function transientReclaims(): number {
  return reclaims;
}


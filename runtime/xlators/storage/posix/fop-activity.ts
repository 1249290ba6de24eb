/**
 * How long the brick must have had no fop before its background work runs (making inodes for
 * precreated-inodes.ts, freeing those of unlinked-inodes.ts): longer than the gaps inside a burst of
 * reads (a listing's readdirs come every few tens of ms), whose CPU that work would take on a small
 * machine (ls -lR of 10,000 files measured 15-20% slower with 20 ms here).
 */
export const IDLE_MS = 250;

/** When the brick last served a fop: its background work waits for it to be idle. */
export class FopActivity {
  private lastFopAt = 0;

  /** A fop arrived. */
  busy(): void {
    this.lastFopAt = performance.now();
  }

  /** Milliseconds still to wait before the brick has been idle for `idleMs` (0: it has). */
  untilIdle(idleMs = IDLE_MS): number {
    return Math.max(0, idleMs - (performance.now() - this.lastFopAt));
  }
}

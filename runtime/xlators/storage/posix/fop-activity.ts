/**
 * How long the brick must have had no fop before it makes inodes for precreated-inodes.ts: longer than
 * the gaps inside a burst of reads (a listing's readdirs come every few tens of ms), whose CPU that
 * work would take on a small machine (ls -lR of 10,000 files measured 15-20% slower with 20 ms here).
 * unlinked-inodes.ts waits less (its own FREE_IDLE_MS): it has work only right after unlinks.
 */
export const IDLE_MS = 250;

/** When the brick last served a fop: its background work (precreating, freeing) waits for it to be idle. */
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

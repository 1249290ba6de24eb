/**
 * The self-heal daemon, inside each AFR (GlusterFS runs it as a separate process; here every server's
 * AFR does it): when a child comes back, learn its brick identity and heal the pending index of all
 * bricks at once; and every heal-timeout seconds. One crawl at a time; a request during a crawl
 * queues exactly one more.
 */
import { byDepth, crawlIndex, refreshIndexEntry } from "../../../heal/pending-index";
import type { Afr } from "./afr";

/** How long a noted file waits before its heal (lets the batch that marked it end first). */
const NOTED_HEAL_DELAY_MS = 1000;

export class HealDaemon {
  private timer: NodeJS.Timeout | undefined;
  private crawling: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  lastCrawl: { at: number; pending: number; healed: number } | undefined;
  /** Files a post-op left blamed since they were last healed (healed soon, not at the next crawl). */
  private readonly noted = new Set<string>();
  private notedTimer: NodeJS.Timeout | undefined;

  constructor(private readonly afr: Afr) {}

  private get enabled(): boolean {
    return this.afr.options["self-heal-daemon"] === true;
  }

  start(): void {
    this.stopped = false;
    this.restartTimer();
    if (this.enabled) this.trigger();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.notedTimer) clearTimeout(this.notedTimer);
    this.notedTimer = undefined;
  }

  /**
   * A transaction ended leaving blame on disk (a replica missed it): heal those paths soon — once
   * every replica is up — instead of waiting for the next crawl (heal-timeout, 600 s by default).
   */
  notePending(paths: readonly string[]): void {
    if (!this.enabled || this.stopped) return;
    for (const p of paths) this.noted.add(p);
    if (this.afr.upChildren().length >= 2) this.armNoted();
  }

  private armNoted(): void {
    if (this.notedTimer || this.noted.size === 0) return;
    this.notedTimer = setTimeout(() => {
      this.notedTimer = undefined;
      if (this.stopped || this.afr.upChildren().length < 2) return;
      const paths = byDepth(this.noted);
      this.noted.clear();
      // Parents first, one after the other: an entry heal may create what a file heal then fills.
      void (async () => {
        for (const p of paths) {
          const r = await this.afr.heals.schedule(p);
          if (r && !r.splitBrain && !r.missing && r.gfidMismatch.length === 0) await refreshIndexEntry(this.afr, p);
        }
      })();
    }, NOTED_HEAL_DELAY_MS);
    this.notedTimer.unref();
  }

  restartTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.stopped || !this.enabled) return;
    this.timer = setInterval(() => this.trigger(), this.afr.options["heal-timeout"] * 1000);
    this.timer.unref();
  }

  childUp(i: number): void {
    void this.afr.learnBrickId(i).then(() => {
      if (!this.enabled || this.stopped) return;
      const delay = (this.afr.options["child-up-heal-delay"] ?? 0) * 1000;
      setTimeout(() => {
        void this.trigger();
        this.armNoted();
      }, delay).unref();
    });
  }

  /** Crawls the index now (or right after the running crawl). */
  trigger(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.crawling) {
      this.again = true;
      return this.crawling;
    }
    this.crawling = (async () => {
      do {
        this.again = false;
        if (this.afr.upChildren().length < 2) break;
        try {
          const r = await crawlIndex(this.afr);
          this.lastCrawl = { at: Date.now(), pending: r.pending, healed: r.healed };
          if (r.pending > 0) this.afr.log.info({ msgid: "AFR_INDEX_CRAWL_DONE", pending: r.pending, healed: r.healed, splitBrain: r.splitBrain.length }, "index crawl done");
        } catch (err) {
          this.afr.log.warn({ msgid: "AFR_INDEX_CRAWL_FAILED", err: (err as Error).message }, "index crawl failed");
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.crawling = undefined;
    });
    return this.crawling;
  }
}

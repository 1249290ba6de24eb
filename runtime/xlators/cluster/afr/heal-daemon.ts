/**
 * The self-heal daemon, inside each AFR (GlusterFS runs it as a separate process; here every server's
 * AFR does it): when a child comes back, learn its brick identity and heal the pending index of all
 * bricks at once; and every heal-timeout seconds. One crawl at a time; a request during a crawl
 * queues exactly one more.
 */
import { crawlIndex } from "../../../heal/pending-index";
import type { Afr } from "./afr";

export class HealDaemon {
  private timer: NodeJS.Timeout | undefined;
  private crawling: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  lastCrawl: { at: number; pending: number; healed: number } | undefined;

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
      setTimeout(() => this.trigger(), delay).unref();
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

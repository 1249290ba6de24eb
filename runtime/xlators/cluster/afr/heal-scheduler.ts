/**
 * Background heals: one heal per path at a time (a second request joins the running one), at most
 * `heal-parallel` at once, so heals never hold up client I/O on other files.
 */
import type { Afr } from "./afr";
import { healPath, type HealResult } from "./self-heal";
import type { HealOptions } from "./self-heal-common";
import { metrics } from "../../../core/metrics";

export interface HealStats {
  healed: number;
  bytes: number;
  failed: number;
  splitBrain: number;
}

export class HealScheduler {
  private readonly running = new Map<string, Promise<HealResult | undefined>>();
  private readonly queue: { path: string; opts: HealOptions; resolve: (r: HealResult | undefined) => void }[] = [];
  private active_ = 0;
  readonly stats: HealStats = { healed: 0, bytes: 0, failed: 0, splitBrain: 0 };

  constructor(private readonly afr: Afr) {}

  active(): string[] {
    return [...this.running.keys()];
  }

  /** Queues a heal in the background; never rejects. */
  schedule(path: string, opts: HealOptions = {}): Promise<HealResult | undefined> {
    const existing = this.running.get(path);
    if (existing) return existing;
    if (this.afr.upChildren().length < 2) return Promise.resolve(undefined);
    const p = new Promise<HealResult | undefined>((resolve) => this.queue.push({ path, opts, resolve }));
    this.running.set(path, p);
    this.pump();
    return p;
  }

  /** Heals now (waiting for a running heal of the same path first); rejects with the heal's error. */
  async healNow(path: string, opts: HealOptions = {}): Promise<HealResult> {
    await this.running.get(path);
    return this.run(path, opts, true) as Promise<HealResult>;
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()]);
  }

  private pump(): void {
    const limit = Math.max(1, this.afr.options["heal-parallel"] ?? 4);
    while (this.active_ < limit && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.active_++;
      void this.run(job.path, job.opts, false).then((r) => {
        this.active_--;
        this.running.delete(job.path);
        job.resolve(r);
        this.pump();
      });
    }
  }

  private async run(path: string, opts: HealOptions, rethrow: boolean): Promise<HealResult | undefined> {
    try {
      const r = await healPath(this.afr, path, opts);
      if (r.healed) {
        this.stats.healed++;
        this.stats.bytes += r.bytes;
        metrics().healed.inc({ volume: this.afr.name, kind: r.created > 0 || r.deleted > 0 ? "entry" : r.bytes > 0 ? "data" : "metadata" });
        this.afr.log.info({ msgid: "AFR_HEAL_DONE", path, bytes: r.bytes, created: r.created, deleted: r.deleted }, "self-heal completed");
      }
      if (r.splitBrain) {
        this.stats.splitBrain++;
        this.afr.log.error({ msgid: "AFR_SPLIT_BRAIN", path }, "split-brain: no source can be chosen; resolve with `gluster-ha heal split-brain`");
      }
      return r;
    } catch (err) {
      this.stats.failed++;
      this.afr.log.warn({ msgid: "AFR_HEAL_FAILED", path, err: (err as Error).message }, "self-heal failed");
      if (rethrow) throw err;
      return undefined;
    }
  }
}

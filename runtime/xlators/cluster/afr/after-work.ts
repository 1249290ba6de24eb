/**
 * Work a transaction leaves running after its fop was answered: the unlock (always — nothing depends
 * on it being on disk), and the post-op when the op succeeded on every replica (the pre-op marks are
 * already on disk; a crash before the post-op leaves every replica self-accusing, which heal only
 * clears). A later transaction of this process on the same lock waits for it here instead of finding
 * the lock taken on the brick and falling back to blocking locks; lookup does not mistake the marks of
 * an own transaction in flight for a heal to do.
 */
export class AfterWork {
  private readonly byKey = new Map<string, Promise<void>>();
  private readonly paths = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();

  /** Runs `work` in the background; lockers of `keys` wait for it. */
  run(keys: readonly string[], work: () => Promise<void>): void {
    const done: Promise<void> = work().catch(() => undefined).finally(() => {
      this.running.delete(done);
      for (const k of keys) if (this.byKey.get(k) === done) this.byKey.delete(k);
    });
    this.running.add(done);
    for (const k of keys) this.byKey.set(k, done);
  }

  /** Resolves once background work holding any of `keys` is done. */
  async settled(keys: readonly string[]): Promise<void> {
    for (const k of keys) {
      const p = this.byKey.get(k);
      if (p) await p;
    }
  }

  /** Whether an own transaction on `path` is between its pre-op and its post-op. */
  busy(path: string): boolean {
    return this.paths.has(path);
  }

  /** Counts `path` as busy until the returned function is called (once). */
  markBusy(path: string): () => void {
    this.paths.set(path, (this.paths.get(path) ?? 0) + 1);
    let once = false;
    return () => {
      if (once) return;
      once = true;
      const n = (this.paths.get(path) ?? 1) - 1;
      if (n <= 0) this.paths.delete(path);
      else this.paths.set(path, n);
    };
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  get size(): number {
    return this.running.size;
  }
}

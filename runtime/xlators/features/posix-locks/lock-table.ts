import { FopError } from "../../../core/errors";

/** What every held or awaited lock carries: who owns it, and over which connection. */
export interface HeldLock {
  /** Lock owner identity: `${client}\0${lkOwner}` for fcntl/inodelk/entrylk, `fd:<id>` for flock. */
  owner: string;
  client: string;
}

interface Waiter<L> {
  lock: L;
  resolve: () => void;
  reject: (err: FopError) => void;
}

export interface LockTableKind<L extends HeldLock> {
  /** Whether two locks of different owners exclude each other (owners are compared by the table). */
  conflicts(a: L, b: L): boolean;
  /** The granted list after granting `lock` (ranges merge/split; others just append). */
  place(granted: L[], lock: L): L[];
  /**
   * Fairness (inodelk/entrylk, as GlusterFS): a new lock that conflicts with a queued waiter waits
   * behind it unless its owner already holds a lock here. fcntl and flock grant whatever fits.
   */
  fair: boolean;
}

/** Granted locks and the FIFO of waiters on one object (an inode, a directory in a domain). */
export class LockTable<L extends HeldLock> {
  granted: L[] = [];
  readonly waiting: Waiter<L>[] = [];

  constructor(private readonly kind: LockTableKind<L>) {}

  firstConflict(lock: L): L | undefined {
    return this.granted.find((g) => g.owner !== lock.owner && this.kind.conflicts(g, lock));
  }

  private mustWait(lock: L): boolean {
    if (this.firstConflict(lock)) return true;
    if (!this.kind.fair) return false;
    const queuedConflict = this.waiting.some((w) => w.lock.owner !== lock.owner && this.kind.conflicts(w.lock, lock));
    return queuedConflict && !this.granted.some((g) => g.owner === lock.owner);
  }

  /** Grants now, or (block) queues until granted, or rejects with `busyCode`. */
  acquire(lock: L, block: boolean, busyCode: string, where: { xlator: string; fop: string }): Promise<void> {
    if (!this.mustWait(lock)) {
      this.granted = this.kind.place(this.granted, lock);
      return Promise.resolve();
    }
    if (!block) return Promise.reject(new FopError(busyCode, `${where.fop}: lock held by another owner`, where));
    return new Promise<void>((resolve, reject) => this.waiting.push({ lock, resolve, reject }));
  }

  /** Changes the granted list (unlock, release) and wakes whoever can go now. */
  update(change: (granted: L[]) => L[]): void {
    this.granted = change(this.granted);
    this.wake();
  }

  /** Rejects and drops the waiters matching `which`. */
  cancel(which: (lock: L) => boolean, err: FopError): void {
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i]!;
      if (which(w.lock)) {
        this.waiting.splice(i, 1);
        w.reject(err);
      } else i++;
    }
  }

  /** Grants waiters in arrival order; repeats while a grant changed what others see. */
  wake(): void {
    for (let progress = true; progress; ) {
      progress = false;
      for (let i = 0; i < this.waiting.length; ) {
        const w = this.waiting[i]!;
        if (this.firstConflict(w.lock)) {
          i++;
          continue;
        }
        this.waiting.splice(i, 1);
        this.granted = this.kind.place(this.granted, w.lock);
        w.resolve();
        progress = true;
      }
    }
  }

  get idle(): boolean {
    return this.granted.length === 0 && this.waiting.length === 0;
  }

  dump(show: (l: L) => unknown): { granted: unknown[]; waiting: unknown[] } {
    return { granted: this.granted.map(show), waiting: this.waiting.map((w) => show(w.lock)) };
  }
}

/** Tables by key, created on demand and dropped when idle. */
export class LockTables<L extends HeldLock> {
  readonly tables = new Map<string, LockTable<L>>();

  constructor(private readonly kind: LockTableKind<L>) {}

  get(key: string): LockTable<L> {
    let t = this.tables.get(key);
    if (!t) {
      t = new LockTable(this.kind);
      this.tables.set(key, t);
    }
    return t;
  }

  peek(key: string): LockTable<L> | undefined {
    return this.tables.get(key);
  }

  tidy(key: string): void {
    if (this.tables.get(key)?.idle) this.tables.delete(key);
  }

  /** Drops every lock of `which` everywhere (waiters get `err`) and wakes the rest. */
  dropAll(which: (lock: L) => boolean, err: FopError): number {
    let dropped = 0;
    for (const [key, t] of this.tables) {
      const before = t.granted.length + t.waiting.length;
      t.cancel(which, err);
      t.update((g) => g.filter((l) => !which(l)));
      dropped += before - (t.granted.length + t.waiting.length);
      if (t.idle) this.tables.delete(key);
    }
    return dropped;
  }
}

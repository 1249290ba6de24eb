import { constants as fsConstants } from "node:fs";
import { defineXlator, Xlator, type XlatorInit, type ReconfigureResult } from "../../../core/xlator";
import { FOP_NAMES, type FopName } from "../../../core/fops";
import type { CallCtx, Fd, Xdata } from "../../../core/types";
import schema from "../../../../schema/xlators/performance/io-threads.json";

export interface IoThreadsOptions {
  "thread-count": number;
  "cache-size": number;
}

/**
 * Lock fops may wait for as long as another owner holds the lock; if they took slots, the unlock
 * that frees them could queue behind them forever. They bypass the pool.
 */
const UNBOUNDED_FOPS: ReadonlySet<FopName> = new Set<FopName>(["lk", "flock", "inodelk", "entrylk"]);

/** A write of one fd that later fops of the same fd may have to wait for. */
interface FdWrite {
  start: number;
  end: number;
  done: Promise<unknown>;
}

interface FdQueue {
  writes: Set<FdWrite>;
}

/**
 * performance/io-threads: at most thread-count fops in flight below it (the rest wait in FIFO order),
 * so one slow operation holds one slot, not the whole brick. Writes of the same fd keep their order
 * where they overlap (all of them for O_APPEND); reads, fsync and flush of an fd wait for its earlier
 * writes. Writes waiting for a slot hold at most cache-size bytes; further writers wait.
 */
export class IoThreads extends Xlator {
  declare options: Record<string, unknown> & IoThreadsOptions;
  private active = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private queuedWriteBytes = 0;
  private readonly byteWaiters: (() => void)[] = [];
  private completed = 0;

  constructor(init: XlatorInit<IoThreadsOptions>) {
    super(init);
  }

  private acquire(): Promise<void> {
    if (this.active < this.options["thread-count"]) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private releaseSlot(): void {
    this.completed++;
    const next = this.slotWaiters.shift();
    if (next && this.active <= this.options["thread-count"]) next(); // the slot passes on
    else {
      if (next) this.slotWaiters.unshift(next);
      this.active--;
    }
  }

  /** Runs one fop in a slot. */
  async run<T>(fop: FopName, args: unknown[]): Promise<T> {
    await this.acquire();
    try {
      return await (this.child[fop] as (...a: unknown[]) => Promise<T>).apply(this.child, args);
    } finally {
      this.releaseSlot();
    }
  }

  private fdQueue(fd: Fd): FdQueue {
    let q = fd.get<FdQueue>(this);
    if (!q) fd.set(this, (q = { writes: new Set() }));
    return q;
  }

  /** Earlier writes of this fd that a fop on [start, end) must wait for (all when end is Infinity). */
  private before(fd: Fd, start: number, end: number): Promise<unknown>[] {
    const q = fd.get<FdQueue>(this);
    if (!q) return [];
    const deps: Promise<unknown>[] = [];
    for (const w of q.writes) if (start < w.end && w.start < end) deps.push(w.done);
    return deps;
  }

  override async write(ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number> {
    const size = data.length;
    const append = (fd.flags & fsConstants.O_APPEND) !== 0;
    const [start, end] = append ? [0, Infinity] : [offset, offset + size];
    const deps = this.before(fd, start, end);
    const q = this.fdQueue(fd);
    let done!: () => void;
    const entry: FdWrite = { start, end, done: new Promise<void>((r) => (done = r)) };
    q.writes.add(entry);
    let counted = false;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      this.queuedWriteBytes -= size;
      for (const w of this.byteWaiters.splice(0)) w();
    };
    try {
      // The order among this fd's writes was fixed above (deps), so waiting for space cannot reorder them.
      while (this.queuedWriteBytes > 0 && this.queuedWriteBytes + size > this.options["cache-size"]) {
        await new Promise<void>((resolve) => this.byteWaiters.push(resolve));
      }
      this.queuedWriteBytes += size;
      counted = true;
      if (deps.length) await Promise.allSettled(deps);
      await this.acquire();
      uncount();
      try {
        return await this.child.write(ctx, fd, data, offset, xdata);
      } finally {
        this.releaseSlot();
      }
    } finally {
      uncount();
      q.writes.delete(entry);
      done();
    }
  }

  override async read(ctx: CallCtx, fd: Fd, size: number, offset: number, xdata?: Xdata): Promise<Buffer> {
    const deps = this.before(fd, offset, offset + size);
    if (deps.length) await Promise.allSettled(deps);
    return this.run("read", [ctx, fd, size, offset, xdata]);
  }

  override async fsync(ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void> {
    const deps = this.before(fd, 0, Infinity);
    if (deps.length) await Promise.allSettled(deps);
    return this.run("fsync", [ctx, fd, datasync, xdata]);
  }

  override async flush(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const deps = this.before(fd, 0, Infinity);
    if (deps.length) await Promise.allSettled(deps);
    return this.run("flush", [ctx, fd, xdata]);
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied: string[] = [];
    for (const k of ["thread-count", "cache-size"] as const) {
      if (options[k] !== undefined && options[k] !== this.options[k]) {
        (this.options as Record<string, unknown>)[k] = options[k];
        applied.push(k);
      }
    }
    // More slots: start waiters now. (Fewer: the surplus drains as fops finish.)
    while (this.active < this.options["thread-count"] && this.slotWaiters.length) {
      this.active++;
      this.slotWaiters.shift()!();
    }
    for (const w of this.byteWaiters.splice(0)) w();
    return { applied, needsRestart: [] };
  }

  override dump(): Record<string, unknown> {
    return {
      options: { ...this.options },
      active: this.active,
      waiting: this.slotWaiters.length,
      queuedWriteBytes: this.queuedWriteBytes,
      writersWaitingForSpace: this.byteWaiters.length,
      completed: this.completed,
    };
  }
}

// Every other fop runs in a slot too (lock fops excepted, see UNBOUNDED_FOPS).
const own = new Set<string>(["write", "read", "fsync", "flush"]);
for (const fop of FOP_NAMES) {
  if (own.has(fop) || UNBOUNDED_FOPS.has(fop)) continue;
  (IoThreads.prototype as unknown as Record<string, unknown>)[fop] = function (this: IoThreads, ...args: unknown[]) {
    return this.run(fop, args);
  };
}

export default defineXlator<IoThreadsOptions>({
  type: "performance/io-threads",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new IoThreads(init),
});

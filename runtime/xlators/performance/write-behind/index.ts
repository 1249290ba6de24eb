import { constants as fsConstants } from "node:fs";
import { defineXlator, Xlator, type XlatorInit, type ReconfigureResult } from "../../../core/xlator";
import { FopError } from "../../../core/errors";
import type { CallCtx, Fd, Flock, Iatt, LkCmd, Loc, LookupResult, SetattrArgs, Xdata } from "../../../core/types";
import schema from "../../../../schema/xlators/performance/write-behind.json";
import { InodeTable } from "./inode-table";
import { BufferPool } from "./buffer-pool";

export interface WriteBehindOptions {
  "aggregate-size": number;
  "window-size": number;
  "flush-behind": boolean;
}

/**
 * Copies of the largest writes come from a pool of reused buffers (also those down to half of their
 * size): the pool's buffers are the size of the largest write seen, rounded up to a power of two, from
 * 128 KiB (fuse-native's max_write) to 1 MiB (the kernel engine's).
 */
const POOLED_WRITE_MIN = 131072;
const POOLED_WRITE_MAX = 1 << 20;

/** Writes of one inode sent down at once (non-overlapping; window-size bounds their bytes): replication below is latency-bound, so several must be in flight. */
const MAX_IN_FLIGHT = 16;

/** One acknowledged write (possibly several contiguous ones merged), not yet confirmed by the child. */
interface WbRequest {
  seq: number;
  fd: Fd;
  ctx: CallCtx;
  offset: number;
  chunks: Buffer[];
  size: number;
  sent: boolean;
  /** Pool buffers the chunks are (or were) views of: given back once the write has settled below. */
  pooled: Buffer[] | undefined;
}

interface DrainWaiter {
  upTo: number;
  resolve: () => void;
}

/** The write queue of one inode (shared by all its fds, so overlapping writes stay in order). */
class WbInode {
  readonly queue: WbRequest[] = [];
  readonly inFlight = new Set<WbRequest>();
  pendingBytes = 0;
  fdCount = 0;
  /** An error of a background write whose fd was released before it could be reported. */
  orphanError: FopError | undefined;
  readonly drainWaiters: DrainWaiter[] = [];
  readonly windowWaiters: (() => void)[] = [];
  windowGate: Promise<void> = Promise.resolve();
  /** Writes waiting at the window gate (later writes queue behind them to keep their order). */
  gated = 0;
  constructor(readonly key: string) {}

  get idle(): boolean {
    return this.queue.length === 0 && this.inFlight.size === 0;
  }
  /** Lowest seq not yet confirmed; Infinity when idle. */
  oldestOutstanding(): number {
    let min = Infinity;
    for (const r of this.inFlight) min = Math.min(min, r.seq);
    if (this.queue.length) min = Math.min(min, this.queue[0]!.seq);
    return min;
  }
  /** Largest end offset of the writes not yet confirmed (what the size will be once they land). */
  pendingEnd(): number {
    let end = 0;
    for (const r of this.inFlight) end = Math.max(end, r.offset + r.size);
    for (const r of this.queue) end = Math.max(end, r.offset + r.size);
    return end;
  }
}

interface WbFd {
  inode: WbInode;
  /** The first error of this fd's background writes, reported (and cleared) at the next write/fsync/flush. */
  error: FopError | undefined;
  /**
   * The same error for the next fsync or flush, even once a write reported it: the kernel turns a
   * failed write into a short one when part of the caller's buffer went through, so the caller may
   * never see that error; fsync and close are where it must learn that acknowledged data is lost.
   */
  syncError: FopError | undefined;
  /** Whether anything changed the file through this fd (write, fallocate, fsetattr). */
  changed: boolean;
}

/**
 * performance/write-behind: acknowledges writes at once and sends them down in the background,
 * merging contiguous ones up to aggregate-size, at most window-size bytes pending per inode.
 * Overlapping writes keep their order; reads, fsync, flush, setattr and truncate wait for the writes
 * before them; stat reports the size including pending writes. A background write's error is kept
 * and reported on the fd's next write, fsync or flush.
 */
export class WriteBehind extends Xlator {
  declare options: Record<string, unknown> & WriteBehindOptions;
  private readonly inodes = new InodeTable((key) => new WbInode(key));
  private nextSeq = 1;
  /** Whether any fcntl lock was ever asked for through this client (then every close must reach the servers). */
  private locksUsed = false;
  /** Closes answered here (statedump). */
  private flushesSkipped = 0;
  /** Buffers for copies of full-size writes (FUSE's max_write), reused instead of allocated per write. */
  private pool: BufferPool;

  constructor(init: XlatorInit<WriteBehindOptions>) {
    super(init);
    if (init.options["aggregate-size"] > init.options["window-size"]) {
      throw this.configError("aggregate-size must not exceed window-size", "aggregate-size");
    }
    this.pool = new BufferPool(POOLED_WRITE_MIN, this.poolKeep(POOLED_WRITE_MIN));
  }

  /** How many free pool buffers of `size` are kept: as many as the window can hold, and a few. */
  private poolKeep(size: number): number {
    return Math.ceil(this.options["window-size"] / size) + 2;
  }

  private fdState(fd: Fd): WbFd {
    let st = fd.get<WbFd>(this);
    if (!st) {
      const inode = this.inodes.forFd(fd);
      inode.fdCount++;
      st = { inode, error: undefined, syncError: undefined, changed: false };
      fd.set(this, st);
    }
    return st;
  }

  /** Takes the error waiting to be reported for this fd (or its inode), clearing it; fsync and flush also take what a write reported. */
  private takeError(st: WbFd, atSync = false): FopError | undefined {
    const err = st.error ?? (atSync ? st.syncError : undefined) ?? st.inode.orphanError;
    st.error = undefined;
    if (atSync) st.syncError = undefined;
    st.inode.orphanError = undefined;
    return err;
  }

  override async create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    const iatt = await this.child.create(ctx, loc, flags, mode, fd, xdata);
    fd.gfid ??= iatt.gfid;
    this.fdState(fd);
    return iatt;
  }

  override async open(ctx: CallCtx, loc: Loc, flags: number, fd: Fd, xdata?: Xdata): Promise<void> {
    await this.child.open(ctx, loc, flags, fd, xdata);
    this.fdState(fd);
  }

  override async write(ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number> {
    const st = this.fdState(fd);
    st.changed = true;
    const err = this.takeError(st);
    if (err) throw err;
    const inode = st.inode;
    // O_DIRECT/O_SYNC callers asked for the data to reach the disk before the reply: write through, in order.
    if (fd.flags & (fsConstants.O_DIRECT | fsConstants.O_SYNC | fsConstants.O_DSYNC)) {
      await this.drain(inode);
      return this.child.write(ctx, fd, data, offset, xdata);
    }
    if (inode.gated > 0 || inode.pendingBytes + data.length > this.options["window-size"]) {
      // Writes pass the window one after another, in the order they came.
      const turn = inode.windowGate.then(() => this.waitForWindow(inode, data.length));
      inode.windowGate = turn;
      inode.gated++;
      try {
        await turn;
      } finally {
        inode.gated--;
      }
    }
    // The caller may reuse its buffer once we reply (FUSE does): keep a copy.
    let copy: Buffer;
    let pooled: Buffer | undefined;
    if (data.length > this.pool.size && data.length <= POOLED_WRITE_MAX) {
      let size = this.pool.size;
      while (size < data.length) size *= 2;
      this.pool.resize(size, this.poolKeep(size));
    }
    if (data.length > this.pool.size / 2 && data.length <= this.pool.size) {
      pooled = this.pool.take();
      pooled.set(data);
      copy = data.length === pooled.length ? pooled : pooled.subarray(0, data.length);
    } else {
      copy = Buffer.from(data);
    }
    const last = inode.queue[inode.queue.length - 1];
    if (last && last.fd === fd && last.offset + last.size === offset && last.size + copy.length <= this.options["aggregate-size"]) {
      last.chunks.push(copy);
      last.size += copy.length;
      if (pooled) (last.pooled ??= []).push(pooled);
    } else {
      inode.queue.push({ seq: this.nextSeq++, fd, ctx, offset, chunks: [copy], size: copy.length, sent: false, pooled: pooled && [pooled] });
    }
    inode.pendingBytes += copy.length;
    this.pump(inode);
    return data.length;
  }

  private async waitForWindow(inode: WbInode, size: number): Promise<void> {
    while (inode.pendingBytes > 0 && inode.pendingBytes + size > this.options["window-size"]) {
      await new Promise<void>((resolve) => inode.windowWaiters.push(resolve));
    }
  }

  /** Sends queued writes while there is room in flight and the head overlaps nothing in flight. */
  private pump(inode: WbInode): void {
    while (inode.queue.length && inode.inFlight.size < MAX_IN_FLIGHT) {
      const head = inode.queue[0]!;
      // A small write still growing waits for a slot to free up: meanwhile contiguous writes join it.
      if (head.size < this.options["aggregate-size"] && inode.queue.length === 1 && inode.inFlight.size > 0) return;
      let overlaps = false;
      for (const r of inode.inFlight) {
        if (head.offset < r.offset + r.size && r.offset < head.offset + head.size) overlaps = true;
      }
      if (overlaps) return;
      inode.queue.shift();
      inode.inFlight.add(head);
      head.sent = true;
      void this.send(inode, head);
    }
  }

  private async send(inode: WbInode, req: WbRequest): Promise<void> {
    const data = req.chunks.length === 1 ? req.chunks[0]! : Buffer.concat(req.chunks, req.size);
    req.chunks = [];
    // Merged chunks were copied into `data`: their pool buffers are free at once; a single one is
    // the data sent down, free once that write has settled (the child is then done with it).
    if (req.pooled && !req.pooled.some((b) => b.buffer === data.buffer)) this.givePooled(req);
    try {
      const n = await this.child.write(req.ctx, req.fd, data, req.offset);
      if (n !== data.length) throw new FopError("EIO", `short write ${n}/${data.length}`, { xlator: this.name, fop: "write" });
    } catch (e) {
      const err = FopError.from(e, { xlator: this.name, fop: "write" });
      const st = req.fd.get<WbFd>(this);
      this.log.warn({ msgid: "WB_WRITE_FAILED", path: req.fd.path, offset: req.offset, size: req.size, code: err.code },
        "background write failed; reported at the next write, fsync or flush");
      if (st) {
        st.error ??= err;
        st.syncError ??= err;
      } else {
        inode.orphanError ??= err;
      }
    } finally {
      this.givePooled(req);
      inode.inFlight.delete(req);
      inode.pendingBytes -= req.size;
      this.pump(inode);
      for (const w of inode.windowWaiters.splice(0)) w();
      const oldest = inode.oldestOutstanding();
      for (let i = inode.drainWaiters.length - 1; i >= 0; i--) {
        const w = inode.drainWaiters[i]!;
        if (w.upTo < oldest) {
          inode.drainWaiters.splice(i, 1);
          w.resolve();
        }
      }
      this.maybeForget(inode);
    }
  }

  private givePooled(req: WbRequest): void {
    if (!req.pooled) return;
    for (const b of req.pooled) this.pool.give(b);
    req.pooled = undefined;
  }

  /** Resolves when every write acknowledged before this call has been confirmed by the child. */
  private drain(inode: WbInode): Promise<void> {
    const upTo = this.nextSeq - 1;
    if (inode.oldestOutstanding() > upTo) return Promise.resolve();
    return new Promise((resolve) => inode.drainWaiters.push({ upTo, resolve }));
  }

  private async drainLoc(loc: Loc): Promise<void> {
    const inode = this.inodes.forLoc(loc);
    if (inode) await this.drain(inode);
  }

  private maybeForget(inode: WbInode): void {
    if (inode.fdCount === 0 && inode.idle && !inode.orphanError) this.inodes.delete(inode.key);
  }

  override async rchecksum(ctx: CallCtx, fd: Fd, offset: number, len: number, xdata?: Xdata): Promise<Buffer> {
    const st = fd.get<WbFd>(this);
    if (st) await this.drain(st.inode);
    return this.child.rchecksum(ctx, fd, offset, len, xdata);
  }

  override async read(ctx: CallCtx, fd: Fd, size: number, offset: number, xdata?: Xdata): Promise<Buffer> {
    const st = fd.get<WbFd>(this);
    if (st) await this.drain(st.inode);
    return this.child.read(ctx, fd, size, offset, xdata);
  }

  override async flush(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const st = fd.get<WbFd>(this);
    if (!st) return this.child.flush(ctx, fd, xdata);
    if (this.options["flush-behind"]) {
      // Errors of these writes surface on the next fsync/flush of the file (orphanError after release).
      const err = this.takeError(st, true);
      if (err) {
        await this.child.flush(ctx, fd, xdata);
        throw err;
      }
      void this.drain(st.inode).then(() => this.child.flush(ctx, fd, xdata)).catch((e) => {
        this.log.warn({ msgid: "WB_FLUSH_BEHIND_FAILED", path: fd.path, code: FopError.from(e).code }, "flush-behind failed");
      });
      return;
    }
    // Below, flush only releases the closing owner's fcntl locks and ends replication's write batch
    // of this fd: when this client never took a lock and nothing changed through this fd, the round
    // trip (a third of a small-file read: open, read, flush) has nothing to do.
    if (!(st.changed || this.locksUsed || xdata)) {
      await this.drain(st.inode);
      this.flushesSkipped++;
    } else if (this.locksUsed || st.inode.queue.length > 0) {
      // It may release a lock: another client must not get it before these writes have landed.
      // (Or some write is not even sent yet: the flush must not pass it.)
      await this.drain(st.inode);
      await this.child.flush(ctx, fd, xdata);
    } else {
      // No lock to release: the flush travels right behind the writes still in flight (the same
      // connection, in order) instead of a round trip after them; close still waits for both.
      const drained = this.drain(st.inode);
      try {
        await this.child.flush(ctx, fd, xdata);
      } finally {
        await drained;
      }
    }
    const err = this.takeError(st, true);
    if (err) throw err;
  }

  override lk(ctx: CallCtx, fd: Fd, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock> {
    if (cmd !== "getlk" && lock.type !== "un") this.locksUsed = true;
    return this.child.lk(ctx, fd, cmd, lock, xdata);
  }

  override async fsync(ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void> {
    const st = fd.get<WbFd>(this);
    if (!st) return this.child.fsync(ctx, fd, datasync, xdata);
    await this.drain(st.inode);
    const err = this.takeError(st, true);
    if (err) throw err;
    await this.child.fsync(ctx, fd, datasync, xdata);
  }

  override async release(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const st = fd.get<WbFd>(this);
    if (st) {
      await this.drain(st.inode);
      fd.ctx.delete(this);
      st.inode.fdCount--;
      // Never lost: an unreported error moves to the inode, reported by the next fsync/flush/write of any fd.
      const unreported = st.error ?? st.syncError;
      if (unreported) {
        st.inode.orphanError ??= unreported;
        this.log.warn({ msgid: "WB_ERROR_AT_RELEASE", path: fd.path, code: unreported.code }, "write error not reported before release");
      }
      this.maybeForget(st.inode);
    }
    return this.child.release(ctx, fd, xdata);
  }

  /**
   * Size as it will be once the pending writes land (they only extend: truncate drains first). The
   * pending end is taken both when the request goes down and when its reply comes back: a reply the
   * server made before a pending write landed is stale even if the write has landed by the time the
   * reply arrives (the inode is idle then).
   */
  private withPending(inode: WbInode | undefined, iatt: Iatt, endAtSend: number): Iatt {
    const end = Math.max(endAtSend, inode && !inode.idle ? inode.pendingEnd() : 0);
    return end > iatt.size ? { ...iatt, size: end } : iatt;
  }

  private pendingEndOf(inode: WbInode | undefined): number {
    return inode && !inode.idle ? inode.pendingEnd() : 0;
  }

  override async fstat(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    const inode = fd.get<WbFd>(this)?.inode;
    const endAtSend = this.pendingEndOf(inode);
    const iatt = await this.child.fstat(ctx, fd, xdata);
    return this.withPending(inode, iatt, endAtSend);
  }

  override async stat(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Iatt> {
    const endAtSend = this.pendingEndOf(this.inodes.forLoc(loc));
    const iatt = await this.child.stat(ctx, loc, xdata);
    return this.withPending(this.inodes.forLoc({ path: loc.path, gfid: loc.gfid ?? iatt.gfid }) ?? this.inodes.forLoc(loc), iatt, endAtSend);
  }

  override async lookup(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<LookupResult> {
    const endAtSend = this.pendingEndOf(this.inodes.forLoc(loc));
    const res = await this.child.lookup(ctx, loc, xdata);
    const inode = this.inodes.forLoc({ path: loc.path, gfid: loc.gfid ?? res.stat.gfid }) ?? this.inodes.forLoc(loc);
    const stat = this.withPending(inode, res.stat, endAtSend);
    return stat === res.stat ? res : { ...res, stat };
  }

  override async setattr(ctx: CallCtx, loc: Loc, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    await this.drainLoc(loc);
    return this.child.setattr(ctx, loc, attr, xdata);
  }

  override async fsetattr(ctx: CallCtx, fd: Fd, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    const st = fd.get<WbFd>(this);
    if (st) st.changed = true;
    if (st) await this.drain(st.inode);
    return this.child.fsetattr(ctx, fd, attr, xdata);
  }

  override async fallocate(ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number, xdata?: Xdata): Promise<void> {
    const st = fd.get<WbFd>(this);
    if (st) st.changed = true;
    if (st) await this.drain(st.inode);
    return this.child.fallocate(ctx, fd, mode, offset, len, xdata);
  }

  override async rename(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<void> {
    // A path-keyed inode would lose track of its pending writes under the new name.
    await this.drainLoc(from);
    await this.drainLoc(to);
    await this.child.rename(ctx, from, to, xdata);
    this.inodes.forgetPath(from.path);
    this.inodes.forgetPath(to.path);
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied: string[] = [];
    for (const k of ["aggregate-size", "window-size", "flush-behind"] as const) {
      if (options[k] !== undefined && options[k] !== this.options[k]) {
        (this.options as Record<string, unknown>)[k] = options[k];
        applied.push(k);
      }
    }
    if (applied.includes("window-size")) this.pool.keep = this.poolKeep(this.pool.size);
    for (const inode of this.inodes.values()) for (const w of inode.windowWaiters.splice(0)) w();
    return { applied, needsRestart: [] };
  }

  override dump(): Record<string, unknown> {
    const inodes: Record<string, unknown>[] = [];
    for (const [key, i] of this.inodes.entries()) {
      inodes.push({
        key, fds: i.fdCount, queued: i.queue.length, inFlight: i.inFlight.size, pendingBytes: i.pendingBytes,
        drainWaiters: i.drainWaiters.length, windowWaiters: i.windowWaiters.length, orphanError: i.orphanError?.code,
      });
    }
    const pool = { size: this.pool.size, free: this.pool.freeCount, outstanding: this.pool.outstanding, made: this.pool.made };
    return { options: { ...this.options }, locksUsed: this.locksUsed, flushesSkipped: this.flushesSkipped, pool, inodes };
  }
}

export default defineXlator<WriteBehindOptions>({
  type: "performance/write-behind",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new WriteBehind(init),
});

import { constants as fsc } from "node:fs";
import { FD_FOPS, type FopName } from "../../../core/fops";
import { defineXlator, Xlator, type ReconfigureResult, type XlatorEvent, type XlatorInit } from "../../../core/xlator";
import type { CallCtx, DirEntry, EntryRemoved, Fd, Flock, Iatt, Invalidation, LkCmd, Loc, LookupResult, SetattrArgs, Xdata } from "../../../core/types";
import { trimOldest } from "../../../core/lru";
import schema from "../../../../schema/xlators/performance/quick-read.json";

export interface QuickReadOptions {
  "cache-size": number;
  "max-file-size": number;
  timeout: number;
}

/** A file's whole content, and when it was known (kept at most `timeout`: the servers' interest lasts that long). */
interface Content {
  data: Buffer;
  at: number;
}

/** Names -> gfids kept (what opens are matched against); the oldest go first. */
const NAME_LIMIT = 65536;

/** What quick-read keeps per fd. */
interface QrFd {
  gfid: string | undefined;
  /** open-behind: this open has not reached the servers (it will when something but a read needs it). */
  deferred: { ctx: CallCtx; loc: Loc; flags: number; xdata?: Xdata } | undefined;
  opening: Promise<void> | undefined;
  /**
   * The writes since a create or truncate, from offset 0 without a gap, copied: the file's whole
   * content once they landed, if nothing else changed it meanwhile.
   */
  written: { chunks: Buffer[]; end: number } | undefined;
  /** A write not yet confirmed by a flush or fsync (write-behind reports errors there). */
  unflushed: boolean;
  /** When the last flush or fsync was sent: the servers' interest in the file counts from about then. */
  landedAt: number;
}

const childPath = (dir: string, name: string) => (dir === "/" ? `/${name}` : `${dir}/${name}`);
/** O_ACCMODE (Node does not export it). */
const ACCESS_MODE = fsc.O_RDONLY | fsc.O_WRONLY | fsc.O_RDWR;
const readOnly = (flags: number) => (flags & ACCESS_MODE) === fsc.O_RDONLY;

/** fd fops that need the open to have reached the servers (all but those served or answered here). */
const NEED_OPEN: FopName[] = [...FD_FOPS].filter((op) => !["read", "write", "flush", "release", "fsync", "releasedir", "readdir", "fsyncdir"].includes(op));

/**
 * performance/quick-read (with open-behind): the whole content of small files, by gfid, as written
 * (create or O_TRUNC, then writes from offset 0 that landed) or read (a read from 0 that reached the
 * end) through this client. A read-only open of such a file is answered here and its reads served
 * from memory: no round trip (GlusterFS's quick-read and open-behind). Correct only while others'
 * changes are reported: active while every server below delivers upcalls; a reported or local change
 * of a file drops its content, a lost connection drops everything.
 */
export class QuickRead extends Xlator {
  declare options: Record<string, unknown> & QuickReadOptions;
  /** Content by gfid, least recently used first. */
  private readonly contents = new Map<string, Content>();
  private cachedBytes = 0;
  private readonly gfidByPath = new Map<string, string>();
  /** fds whose writes are being kept, by gfid. */
  private readonly writers = new Map<string, Set<QrFd>>();
  /** open-behind: descriptors whose open has not reached the servers, by gfid (sent before the file loses a name). */
  private readonly deferredOpens = new Map<string, Set<Fd>>();
  /** Bumped by every change (local or reported): a read started before one does not fill. */
  private epoch = 0;
  private active = false;
  private readonly counters = { hits: 0, misses: 0, opensDeferred: 0, opensSentLate: 0, filledFromWrites: 0, filledFromReads: 0, dropped: 0 };

  constructor(init: XlatorInit<QuickReadOptions>) {
    super(init);
    for (const op of NEED_OPEN) {
      const down = (this.child[op] as (...a: unknown[]) => Promise<unknown>).bind(this.child);
      const own = (this as unknown as Record<string, unknown>)[op] as ((...a: unknown[]) => Promise<unknown>) | undefined;
      const next = own && own !== Xlator.prototype[op] ? own.bind(this) : down;
      (this as unknown as Record<string, unknown>)[op] = async (ctx: CallCtx, fd: Fd, ...rest: unknown[]) => {
        await this.ensureOpen(fd);
        return next(ctx, fd, ...rest);
      };
    }
  }

  private fdState(fd: Fd): QrFd {
    let s = fd.get<QrFd>(this);
    if (!s) fd.set(this, (s = { gfid: fd.gfid ?? this.gfidByPath.get(fd.path), deferred: undefined, opening: undefined, written: undefined, unflushed: false, landedAt: 0 }));
    return s;
  }

  private nameFile(path: string, gfid: string): void {
    this.gfidByPath.delete(path);
    this.gfidByPath.set(path, gfid);
    trimOldest(this.gfidByPath, NAME_LIMIT);
  }

  private forgetNames(path: string, subtree: boolean): void {
    this.gfidByPath.delete(path);
    if (!subtree) return;
    const prefix = `${path}/`;
    for (const p of this.gfidByPath.keys()) if (p.startsWith(prefix)) this.gfidByPath.delete(p);
  }

  /** A file's content changed (or may have): drop it, and stop keeping writes of it. */
  private changed(gfid: string | undefined, except?: QrFd): void {
    this.epoch++;
    if (gfid === undefined) return;
    const c = this.contents.get(gfid);
    if (c) {
      this.contents.delete(gfid);
      this.cachedBytes -= c.data.length;
      this.counters.dropped++;
    }
    for (const w of this.writers.get(gfid) ?? []) if (w !== except) w.written = undefined;
  }

  /** Keeps a file's content, known as of `at` (when the request that showed it was sent). */
  private store(gfid: string, data: Buffer, at: number): void {
    if (data.length > this.options["max-file-size"]) return;
    // A view of a larger buffer (the message it came in) would keep all of it: cache-size counts
    // what is kept (a 4 KiB file's view held its 8-16 KiB reply: 42 MB kept for 32 MB counted).
    if (data.buffer.byteLength > data.length + 1024) {
      const own = Buffer.allocUnsafeSlow(data.length);
      data.copy(own);
      data = own;
    }
    const old = this.contents.get(gfid);
    if (old) this.cachedBytes -= old.data.length;
    this.contents.delete(gfid);
    this.contents.set(gfid, { data, at });
    this.cachedBytes += data.length;
    for (const [g, c] of this.contents) {
      if (this.cachedBytes <= this.options["cache-size"]) break;
      this.contents.delete(g);
      this.cachedBytes -= c.data.length;
    }
  }

  /** A file's content while fresh (and marked recently used). */
  private contentOf(gfid: string | undefined): Buffer | undefined {
    if (!this.active || gfid === undefined) return undefined;
    const c = this.contents.get(gfid);
    if (!c) return undefined;
    this.contents.delete(gfid);
    if (performance.now() - c.at >= this.options.timeout * 1000) {
      this.cachedBytes -= c.data.length;
      return undefined;
    }
    this.contents.set(gfid, c);
    return c.data;
  }

  override invalidationInterest(): number {
    return Math.max(super.invalidationInterest(), this.options["cache-size"] > 0 ? this.options.timeout : 0);
  }

  private track(fd: Fd, s: QrFd): void {
    if (!this.active || s.gfid === undefined) return;
    s.written = { chunks: [], end: 0 };
    let set = this.writers.get(s.gfid);
    if (!set) this.writers.set(s.gfid, (set = new Set()));
    set.add(s);
  }

  private untrack(s: QrFd): void {
    if (s.gfid === undefined) return;
    const set = this.writers.get(s.gfid);
    set?.delete(s);
    if (set?.size === 0) this.writers.delete(s.gfid);
  }

  /** open-behind: sends a deferred open now (something other than a read needs the server's fd). */
  private async ensureOpen(fd: Fd): Promise<void> {
    const s = fd.get<QrFd>(this);
    if (!s?.deferred) return;
    if (!s.opening) {
      const d = s.deferred;
      this.counters.opensSentLate++;
      s.opening = this.child.open(d.ctx, { path: fd.path, gfid: d.loc.gfid }, d.flags, fd, d.xdata).then(
        () => {
          s.deferred = undefined;
          this.forgetDeferred(s.gfid, fd);
        },
        (err: unknown) => {
          s.opening = undefined;
          throw err;
        },
      );
    }
    await s.opening;
  }

  // ---- names ----

  override async lookup(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<LookupResult> {
    const r = await this.child.lookup(ctx, loc, xdata);
    this.nameFile(loc.path, r.stat.gfid);
    return r;
  }

  override async readdir(ctx: CallCtx, fd: Fd, offset: number, withStat: boolean, xdata?: Xdata): Promise<DirEntry[]> {
    const entries = await this.child.readdir(ctx, fd, offset, withStat, xdata);
    for (const e of entries) if (e.stat && e.name !== "." && e.name !== "..") this.nameFile(childPath(fd.path, e.name), e.stat.gfid);
    return entries;
  }

  private forgetDeferred(gfid: string | undefined, fd: Fd): void {
    if (gfid === undefined) return;
    const set = this.deferredOpens.get(gfid);
    set?.delete(fd);
    if (set?.size === 0) this.deferredOpens.delete(gfid);
  }

  /**
   * A file about to lose a name: its deferred opens go to the servers first, or an open descriptor
   * of an unlinked file would have nothing to open later (GlusterFS's open-behind does the same).
   */
  private async openDeferredOf(path: string, gfid?: string): Promise<void> {
    const set = this.deferredOpens.get(gfid ?? this.gfidByPath.get(path) ?? "");
    if (!set) return;
    await Promise.all([...set].map((fd) => this.ensureOpen(fd).catch(() => undefined)));
  }

  override async unlink(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
    await this.openDeferredOf(loc.path, loc.gfid);
    const gfid = loc.gfid ?? this.gfidByPath.get(loc.path);
    try {
      const removed = await this.child.unlink(ctx, loc, xdata);
      // Most often its last name: the content is no one's to read any more (another name reads it afresh).
      this.changed(gfid);
      return removed;
    } finally {
      this.forgetNames(loc.path, false);
    }
  }

  override async rmdir(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
    try {
      return await this.child.rmdir(ctx, loc, xdata);
    } finally {
      this.forgetNames(loc.path, true);
    }
  }

  override async rename(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<void> {
    const moved = from.gfid ?? this.gfidByPath.get(from.path);
    await this.openDeferredOf(to.path, to.gfid);
    let done = false;
    try {
      await this.child.rename(ctx, from, to, xdata);
      done = true;
    } finally {
      this.forgetNames(from.path, true);
      this.forgetNames(to.path, true);
      if (done && moved !== undefined) this.nameFile(to.path, moved);
    }
  }

  override async link(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<Iatt> {
    const iatt = await this.child.link(ctx, from, to, xdata);
    this.nameFile(to.path, iatt.gfid);
    return iatt;
  }

  override async mknod(ctx: CallCtx, loc: Loc, mode: number, rdev: number, xdata?: Xdata): Promise<Iatt> {
    const iatt = await this.child.mknod(ctx, loc, mode, rdev, xdata);
    this.nameFile(loc.path, iatt.gfid);
    return iatt;
  }

  /**
   * The file a name refers to, for a change through it. A name not seen here (md-cache answered its
   * lookups, or it was forgotten) is looked up when any content is kept: it may be another name of
   * a kept file (a hard link), whose content the change must drop.
   */
  private async gfidFor(ctx: CallCtx, loc: Loc): Promise<string | undefined> {
    const known = loc.gfid ?? this.gfidByPath.get(loc.path);
    if (known !== undefined || this.contents.size === 0) return known;
    try {
      const r = await this.child.lookup(ctx, { path: loc.path });
      this.nameFile(loc.path, r.stat.gfid);
      return r.stat.gfid;
    } catch {
      return undefined; // the change itself will fail the same way
    }
  }

  // ---- opens ----

  override async create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    const iatt = await this.child.create(ctx, loc, flags, mode, fd, xdata);
    this.nameFile(loc.path, iatt.gfid);
    const s = this.fdState(fd);
    s.gfid = iatt.gfid;
    this.changed(iatt.gfid);
    // Only a file empty now (new, truncated, or found empty) has the writes as its whole content
    // (another client's write after this reports itself, and stops the keeping).
    if (flags & (fsc.O_EXCL | fsc.O_TRUNC) || iatt.size === 0) this.track(fd, s);
    return iatt;
  }

  override async open(ctx: CallCtx, loc: Loc, flags: number, fd: Fd, xdata?: Xdata): Promise<void> {
    const reading = readOnly(flags) && !(flags & fsc.O_TRUNC);
    const gfid = reading ? loc.gfid ?? this.gfidByPath.get(loc.path) : await this.gfidFor(ctx, loc);
    if (reading && this.contentOf(gfid) !== undefined) {
      // The kernel checked permissions (default_permissions); nothing the servers would say is needed.
      const s = this.fdState(fd);
      s.gfid = gfid;
      s.deferred = { ctx, loc, flags, xdata };
      this.counters.opensDeferred++;
      if (gfid !== undefined) {
        let set = this.deferredOpens.get(gfid);
        if (!set) this.deferredOpens.set(gfid, (set = new Set()));
        set.add(fd);
      }
      return;
    }
    await this.child.open(ctx, loc, flags, fd, xdata);
    const s = this.fdState(fd);
    s.gfid ??= gfid;
    if (flags & fsc.O_TRUNC) {
      this.changed(s.gfid);
      if (!readOnly(flags)) this.track(fd, s);
    }
  }

  // ---- data ----

  override async read(ctx: CallCtx, fd: Fd, size: number, offset: number, xdata?: Xdata): Promise<Buffer> {
    const s = this.fdState(fd);
    const content = this.contentOf(s.gfid);
    if (content) {
      this.counters.hits++;
      return content.subarray(Math.min(offset, content.length), Math.min(offset + size, content.length));
    }
    this.counters.misses++;
    await this.ensureOpen(fd);
    const since = this.epoch;
    const sentAt = performance.now();
    const data = await this.child.read(ctx, fd, size, offset, xdata);
    // A read from 0 that came back short reached the end: that is the whole file.
    if (this.active && offset === 0 && data.length < size && s.gfid !== undefined && this.epoch === since && !this.writers.has(s.gfid)) {
      this.store(s.gfid, Buffer.from(data), sentAt);
      this.counters.filledFromReads++;
    }
    return data;
  }

  override async write(ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number> {
    const s = this.fdState(fd);
    this.changed(s.gfid, s);
    const w = s.written;
    if (w) {
      if (offset === w.end && w.end + data.length <= this.options["max-file-size"]) {
        w.chunks.push(Buffer.from(data)); // the caller's buffer is not ours to keep
        w.end += data.length;
      } else s.written = undefined;
    }
    s.unflushed = true;
    try {
      return await this.child.write(ctx, fd, data, offset, xdata);
    } catch (err) {
      s.written = undefined;
      throw err;
    }
  }

  override async flush(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const s = this.fdState(fd);
    if (s.deferred) return; // never reached the servers: nothing written, no locks
    await this.landed(s, () => this.child.flush(ctx, fd, xdata));
  }

  override async fsync(ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void> {
    const s = this.fdState(fd);
    if (s.deferred) return;
    await this.landed(s, () => this.child.fsync(ctx, fd, datasync, xdata));
  }

  /** Writes land at flush and fsync (write-behind reports their errors there). */
  private async landed(s: QrFd, op: () => Promise<void>): Promise<void> {
    const unflushed = s.unflushed;
    s.unflushed = false;
    s.landedAt = performance.now();
    try {
      await op();
    } catch (err) {
      s.written = undefined;
      if (unflushed) s.unflushed = true;
      throw err;
    }
  }

  override async release(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const s = this.fdState(fd);
    this.untrack(s);
    this.forgetDeferred(s.gfid, fd);
    if (s.deferred && !s.opening) return;
    if (s.opening) await s.opening.catch(() => undefined);
    if (s.written && !s.unflushed && s.gfid !== undefined && this.active) {
      this.store(s.gfid, s.written.chunks.length === 1 ? s.written.chunks[0]! : Buffer.concat(s.written.chunks, s.written.end), s.landedAt);
      this.counters.filledFromWrites++;
    }
    s.written = undefined;
    if (s.deferred) return;
    return this.child.release(ctx, fd, xdata);
  }

  // ---- other changes ----

  override async fsetattr(ctx: CallCtx, fd: Fd, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    const s = this.fdState(fd);
    if (attr.size !== undefined) this.changed(s.gfid);
    try {
      return await this.child.fsetattr(ctx, fd, attr, xdata);
    } finally {
      if (attr.size !== undefined) this.changed(s.gfid);
    }
  }

  override async setattr(ctx: CallCtx, loc: Loc, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    const gfid = attr.size !== undefined ? await this.gfidFor(ctx, loc) : undefined;
    if (attr.size !== undefined) this.changed(gfid);
    try {
      return await this.child.setattr(ctx, loc, attr, xdata);
    } finally {
      if (attr.size !== undefined) this.changed(gfid);
    }
  }

  override async fallocate(ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number, xdata?: Xdata): Promise<void> {
    const s = this.fdState(fd);
    this.changed(s.gfid);
    try {
      await this.child.fallocate(ctx, fd, mode, offset, len, xdata);
    } finally {
      this.changed(s.gfid);
    }
  }

  /** A granted lock is where another client's changes become visible: what was kept before it may be stale. */
  override async lk(ctx: CallCtx, fd: Fd, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock> {
    const r = await this.child.lk(ctx, fd, cmd, lock, xdata);
    if (cmd !== "getlk" && lock.type !== "un") this.changed(this.fdState(fd).gfid);
    return r;
  }

  override async flock(ctx: CallCtx, fd: Fd, op: "sh" | "ex" | "un", nonblock: boolean, xdata?: Xdata): Promise<void> {
    await this.child.flock(ctx, fd, op, nonblock, xdata);
    if (op !== "un") this.changed(this.fdState(fd).gfid);
  }

  /** Another client changed these: data and attribute changes drop content; renamed or removed names are forgotten. */
  override othersChanged(change: Invalidation, from: Xlator): void {
    if (change.all) this.clear();
    this.epoch++;
    for (const g of change.gfids) this.changed(g);
    for (const p of change.paths) this.changed(this.gfidByPath.get(p));
    // A name that went away leaves the file's data as it was (an fd open on it still reads it).
    for (const e of change.entries) this.forgetNames(e, true);
    super.othersChanged(change, from);
  }

  // ---- management ----

  /** A server went away or came back: anything may have changed meanwhile. */
  override notify(event: XlatorEvent, from: Xlator): void {
    this.clear();
    this.active = this.options["cache-size"] > 0 && this.invalidationsDelivered();
    super.notify(event, from);
  }

  private clear(): void {
    this.epoch++;
    this.contents.clear();
    this.cachedBytes = 0;
    this.gfidByPath.clear();
    for (const set of this.writers.values()) for (const w of set) w.written = undefined;
    this.writers.clear();
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied: string[] = [];
    for (const k of ["cache-size", "max-file-size", "timeout"] as const) {
      if (options[k] !== undefined && options[k] !== this.options[k]) {
        (this.options as Record<string, unknown>)[k] = options[k];
        applied.push(k);
      }
    }
    if (applied.length > 0) this.clear();
    this.active = this.options["cache-size"] > 0 && this.invalidationsDelivered();
    return { applied, needsRestart: [] };
  }

  override dump(): Record<string, unknown> {
    // heldBytes: the memory the kept contents hold (their buffers), against bytes, what they count
    const held = new Set<ArrayBufferLike>();
    for (const c of this.contents.values()) held.add(c.data.buffer);
    let heldBytes = 0;
    for (const b of held) heldBytes += b.byteLength;
    return { options: { ...this.options }, active: this.active, files: this.contents.size, bytes: this.cachedBytes, heldBytes, names: this.gfidByPath.size, ...this.counters };
  }
}

export default defineXlator<QuickReadOptions>({
  type: "performance/quick-read",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new QuickRead(init),
});

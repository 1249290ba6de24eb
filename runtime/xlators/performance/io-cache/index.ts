import { defineXlator, Xlator, type XlatorInit, type ReconfigureResult } from "../../../core/xlator";
import type { CallCtx, EntryRemoved, Fd, Iatt, Loc, LookupResult, SetattrArgs, Xdata } from "../../../core/types";
import schema from "../../../../schema/xlators/performance/io-cache.json";
import { InodeTable } from "../write-behind/inode-table";
import { readFromPages } from "../pages";

export interface IoCacheOptions {
  "cache-size": number;
  "cache-timeout": number;
  "page-size": number;
}

interface IocPage {
  inode: IocInode;
  index: number;
  promise: Promise<Buffer>;
  data: Buffer | undefined;
}

/** Cached pages of one inode and the attributes they were read under. */
class IocInode {
  readonly pages = new Map<number, IocPage>();
  mtimeMs: number | undefined;
  size: number | undefined;
  /** When mtime/size were last checked against the file (ms, monotonic). 0 = never. */
  validatedAt = 0;
  revalidation: Promise<void> | undefined;
  /** Bumped by every local change; a fill started under an older generation is thrown away. */
  generation = 0;
  constructor(readonly key: string) {}
}

/**
 * performance/io-cache: caches file data in pages, across opens, up to cache-size bytes (LRU).
 * Data older than cache-timeout is revalidated by mtime and size (an fstat) before it is served, so a
 * change made through another client shows within cache-timeout. Local writes, truncates and
 * unlinks drop the inode's pages; stats passing through also revalidate.
 */
export class IoCache extends Xlator {
  declare options: Record<string, unknown> & IoCacheOptions;
  private readonly inodes = new InodeTable((key) => new IocInode(key));
  /** Every cached page, least recently used first. */
  private readonly lru = new Set<IocPage>();
  private cachedBytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(init: XlatorInit<IoCacheOptions>) {
    super(init);
  }

  private now(): number {
    return performance.now();
  }

  private invalidate(inode: IocInode | undefined): void {
    if (!inode) return;
    inode.generation++;
    for (const p of inode.pages.values()) this.evictPage(p);
    inode.validatedAt = 0;
    inode.mtimeMs = undefined;
    inode.size = undefined;
  }

  private evictPage(p: IocPage): void {
    if (p.inode.pages.get(p.index) === p) p.inode.pages.delete(p.index);
    if (this.lru.delete(p) && p.data) this.cachedBytes -= p.data.length;
    if (p.inode.pages.size === 0 && !p.inode.revalidation) this.inodes.delete(p.inode.key);
  }

  private shrinkTo(limit: number): void {
    for (const p of this.lru) {
      if (this.cachedBytes <= limit) break;
      this.evictPage(p);
    }
  }

  /** Attributes seen for a cached inode: if the file changed, its pages are stale. */
  private observe(inode: IocInode | undefined, iatt: Iatt): void {
    if (!inode || inode.mtimeMs === undefined) return;
    if (inode.mtimeMs !== iatt.mtimeMs || inode.size !== iatt.size) this.invalidate(inode);
    else inode.validatedAt = this.now();
  }

  private revalidate(ctx: CallCtx, fd: Fd, inode: IocInode): Promise<void> {
    inode.revalidation ??= (async () => {
      try {
        const iatt = await this.child.fstat(ctx, fd);
        if (inode.mtimeMs !== iatt.mtimeMs || inode.size !== iatt.size) {
          const generation = inode.generation;
          this.invalidate(inode);
          // Pages read from now on belong to these attributes (unless a local write came meanwhile).
          if (inode.generation === generation + 1) {
            inode.mtimeMs = iatt.mtimeMs;
            inode.size = iatt.size;
          }
        }
        inode.validatedAt = this.now();
      } finally {
        inode.revalidation = undefined;
      }
    })();
    return inode.revalidation;
  }

  override async read(ctx: CallCtx, fd: Fd, size: number, offset: number, xdata?: Xdata): Promise<Buffer> {
    if (this.options["cache-size"] === 0 || size === 0 || xdata) return this.child.read(ctx, fd, size, offset, xdata);
    const inode = this.inodes.forFd(fd);
    if (inode.validatedAt === 0 || this.now() - inode.validatedAt >= this.options["cache-timeout"] * 1000) {
      await this.revalidate(ctx, fd, inode);
    }
    const ps = this.options["page-size"];
    const first = Math.floor(offset / ps);
    const last = Math.floor((offset + size - 1) / ps);
    const pages: IocPage[] = [];
    for (let i = first; i <= last; i++) {
      if (inode.size !== undefined && i * ps >= inode.size && i > first) break;
      pages.push(this.page(ctx, fd, inode, i));
    }
    return readFromPages(pages, first, ps, offset, size);
  }

  /** The cached page, or a fill of it from the child. */
  private page(ctx: CallCtx, fd: Fd, inode: IocInode, index: number): IocPage {
    const have = inode.pages.get(index);
    if (have) {
      this.hits++;
      if (have.data) {
        this.lru.delete(have);
        this.lru.add(have);
      }
      return have;
    }
    this.misses++;
    const ps = this.options["page-size"];
    const generation = inode.generation;
    const page: IocPage = { inode, index, promise: this.child.read(ctx, fd, ps, index * ps), data: undefined };
    inode.pages.set(index, page);
    page.promise.then(
      (data) => {
        if (inode.generation !== generation || inode.pages.get(index) !== page) {
          if (inode.pages.get(index) === page) inode.pages.delete(index);
          return;
        }
        page.data = data;
        this.lru.add(page);
        this.cachedBytes += data.length;
        this.shrinkTo(this.options["cache-size"]);
      },
      () => {
        if (inode.pages.get(index) === page) inode.pages.delete(index);
      },
    );
    return page;
  }

  /** Runs a local change with the inode's cache dropped before and after it. */
  private async changing<T>(inode: () => IocInode | undefined, op: () => Promise<T>): Promise<T> {
    this.invalidate(inode());
    try {
      return await op();
    } finally {
      this.invalidate(inode());
    }
  }

  private fdInode(fd: Fd): IocInode | undefined {
    return this.inodes.get(InodeTable.fdKey(fd));
  }

  override write(ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number> {
    return this.changing(() => this.fdInode(fd), () => this.child.write(ctx, fd, data, offset, xdata));
  }

  override fallocate(ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number, xdata?: Xdata): Promise<void> {
    return this.changing(() => this.fdInode(fd), () => this.child.fallocate(ctx, fd, mode, offset, len, xdata));
  }

  override fsetattr(ctx: CallCtx, fd: Fd, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    return this.changing(() => this.fdInode(fd), () => this.child.fsetattr(ctx, fd, attr, xdata));
  }

  override setattr(ctx: CallCtx, loc: Loc, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    return this.changing(() => this.inodes.forLoc(loc), () => this.child.setattr(ctx, loc, attr, xdata));
  }

  override async create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    // A new file under a name we cached: the old pages belong to another file.
    this.invalidate(this.inodes.forLoc(loc));
    this.inodes.forgetPath(loc.path);
    const iatt = await this.child.create(ctx, loc, flags, mode, fd, xdata);
    fd.gfid ??= iatt.gfid;
    return iatt;
  }

  override async unlink(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> {
    const removed = await this.child.unlink(ctx, loc, xdata);
    this.invalidate(this.inodes.forLoc(loc));
    this.inodes.forgetPath(loc.path);
    return removed;
  }

  override async rename(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<void> {
    await this.child.rename(ctx, from, to, xdata);
    this.invalidate(this.inodes.forLoc(from));
    this.invalidate(this.inodes.forLoc(to));
    this.inodes.forgetPath(from.path);
    this.inodes.forgetPath(to.path);
  }

  override async fstat(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    const iatt = await this.child.fstat(ctx, fd, xdata);
    this.observe(this.fdInode(fd), iatt);
    return iatt;
  }

  override async stat(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Iatt> {
    const iatt = await this.child.stat(ctx, loc, xdata);
    this.observe(this.inodes.get(iatt.gfid) ?? this.inodes.forLoc(loc), iatt);
    return iatt;
  }

  override async lookup(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<LookupResult> {
    const res = await this.child.lookup(ctx, loc, xdata);
    this.observe(this.inodes.get(res.stat.gfid) ?? this.inodes.forLoc(loc), res.stat);
    return res;
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied: string[] = [];
    const needsRestart: string[] = [];
    for (const k of ["cache-size", "cache-timeout"] as const) {
      if (options[k] !== undefined && options[k] !== this.options[k]) {
        (this.options as Record<string, unknown>)[k] = options[k];
        applied.push(k);
      }
    }
    if (options["page-size"] !== undefined && options["page-size"] !== this.options["page-size"]) needsRestart.push("page-size");
    this.shrinkTo(this.options["cache-size"]);
    return { applied, needsRestart };
  }

  override dump(): Record<string, unknown> {
    const inodes: Record<string, unknown>[] = [];
    for (const [key, i] of this.inodes.entries()) {
      inodes.push({ key, pages: i.pages.size, mtimeMs: i.mtimeMs, size: i.size, validatedAt: i.validatedAt });
    }
    return { options: { ...this.options }, cachedBytes: this.cachedBytes, pages: this.lru.size, hits: this.hits, misses: this.misses, inodes };
  }
}

export default defineXlator<IoCacheOptions>({
  type: "performance/io-cache",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new IoCache(init),
});

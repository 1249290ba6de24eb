import { constants as fsConstants } from "node:fs";
import { defineXlator, Xlator, type XlatorInit, type ReconfigureResult } from "../../../core/xlator";
import type { CallCtx, Fd, Iatt, Loc, SetattrArgs, Xdata } from "../../../core/types";
import schema from "../../../../schema/xlators/performance/read-ahead.json";
import { InodeTable } from "../write-behind/inode-table";
import { readFromPages } from "../pages";

/** The largest read below that one prefetch makes (a run of consecutive pages). */
const MAX_RUN_BYTES = 1 << 20;

export interface ReadAheadOptions {
  "page-size": number;
  "page-count": number;
}

interface RaPage {
  promise: Promise<Buffer>;
  data: Buffer | undefined;
}

/** Prefetched pages of one inode, shared by its fds on this client. */
class RaInode {
  readonly pages = new Map<number, RaPage>();
  /** Bumped by every local change; a prefetch started under an older generation is thrown away. */
  generation = 0;
  /** First page known to lie past the end of the file (a short page was read). */
  eofPage = Infinity;
  fdCount = 0;
  constructor(readonly key: string) {}
}

interface RaFd {
  inode: RaInode;
  /** Where the next read must start to count as sequential. */
  nextOffset: number;
  /**
   * Whether this fd has read anything yet. Its first read fetches only the pages it needs (a small
   * file read once, open + one read + close, costs one read below, not page-count of them past its
   * end); from the next sequential read on, page-count pages are fetched ahead. (Not a window that
   * ramps up read by read: the kernel's concurrent readahead requests reach us out of order, which
   * would keep resetting it.)
   */
  started: boolean;
  /** Prefetches issued through this fd (release waits for them: the fd must outlive its reads). */
  readonly inFlight: Set<Promise<unknown>>;
}

/**
 * performance/read-ahead: when a file is read sequentially, fetches page-count pages of page-size
 * ahead and serves reads from them. Any write, truncate or fallocate through this translator drops
 * the inode's pages for all its fds; a new open drops them too (close-to-open consistency).
 */
export class ReadAhead extends Xlator {
  declare options: Record<string, unknown> & ReadAheadOptions;
  private readonly inodes = new InodeTable((key) => new RaInode(key));

  constructor(init: XlatorInit<ReadAheadOptions>) {
    super(init);
  }

  private attach(fd: Fd): void {
    if ((fd.flags & 3) === fsConstants.O_WRONLY || fd.flags & fsConstants.O_DIRECT) return;
    const inode = this.inodes.forFd(fd);
    inode.fdCount++;
    this.invalidate(inode);
    fd.set(this, { inode, nextOffset: 0, started: false, inFlight: new Set() } satisfies RaFd);
  }

  private invalidate(inode: RaInode | undefined): void {
    if (!inode) return;
    inode.generation++;
    inode.pages.clear();
    inode.eofPage = Infinity;
  }

  private invalidateFd(fd: Fd): void {
    this.invalidate(fd.get<RaFd>(this)?.inode ?? this.inodes.get(InodeTable.fdKey(fd)));
  }

  override async create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    const iatt = await this.child.create(ctx, loc, flags, mode, fd, xdata);
    fd.gfid ??= iatt.gfid;
    this.attach(fd);
    return iatt;
  }

  override async open(ctx: CallCtx, loc: Loc, flags: number, fd: Fd, xdata?: Xdata): Promise<void> {
    await this.child.open(ctx, loc, flags, fd, xdata);
    this.attach(fd);
  }

  override async read(ctx: CallCtx, fd: Fd, size: number, offset: number, xdata?: Xdata): Promise<Buffer> {
    const st = fd.get<RaFd>(this);
    if (!st || size === 0 || xdata) return this.child.read(ctx, fd, size, offset, xdata);
    const inode = st.inode;
    const ps = this.options["page-size"];
    const sequential = offset === st.nextOffset;
    const ahead = st.started ? this.options["page-count"] : 0;
    st.started = true;
    st.nextOffset = offset + size;
    const first = Math.floor(offset / ps);
    const last = Math.floor((offset + size - 1) / ps);
    let cached = true;
    for (let i = first; i <= last && i < inode.eofPage; i++) if (!inode.pages.has(i)) cached = false;
    if (!cached && !sequential) return this.child.read(ctx, fd, size, offset, xdata);
    const count = this.options["page-count"];
    // Pages behind the reader are no longer needed; those ahead are fetched now.
    for (const i of inode.pages.keys()) if (i < first || i > last + count) inode.pages.delete(i);
    const end = Math.min(last + ahead, inode.eofPage - 1);
    let neededMissing = false;
    let aheadMissing = 0;
    for (let i = first; i <= end; i++) {
      if (inode.pages.has(i)) continue;
      if (i <= last) neededMissing = true;
      else aheadMissing++;
    }
    // The window ahead is topped up once a run's worth of it has been read, in runs of consecutive
    // pages read below at once: a 128 KiB kernel read costs one big read every few requests instead of
    // one per page (each read below is a round trip through the whole stack, on both ends).
    if (neededMissing || aheadMissing >= this.runPages()) this.prefetchRuns(ctx, st, fd, first, end);
    const pages: RaPage[] = [];
    for (let i = first; i <= last && i < inode.eofPage; i++) pages.push(inode.pages.get(i) ?? this.prefetchRuns(ctx, st, fd, i, i));
    return readFromPages(pages, first, ps, offset, size);
  }

  /**
   * Pages per read below: the whole window, at most MAX_RUN_BYTES. The kernel asks for 1 MiB at a
   * time (FUSE max_read): with the seed's 16 x 64 KiB, each of its reads is one run, answered with a
   * view of the run's buffer, while the next run is in flight. (Half-window runs made every kernel read
   * span two runs, joined by a copy: cold reads 510-620 MB/s against 570-1100 with whole-window runs,
   * measured side by side.)
   */
  private runPages(): number {
    return Math.max(1, Math.min(this.options["page-count"], Math.floor(MAX_RUN_BYTES / this.options["page-size"])));
  }

  /** Fetches the missing pages in [from, to] (runs of consecutive ones in one read below each); returns the page `from`. */
  private prefetchRuns(ctx: CallCtx, st: RaFd, fd: Fd, from: number, to: number): RaPage {
    const inode = st.inode;
    const maxRun = this.runPages();
    for (let i = from; i <= to; ) {
      if (inode.pages.has(i)) {
        i++;
        continue;
      }
      let n = 1;
      while (n < maxRun && i + n <= to && !inode.pages.has(i + n)) n++;
      this.prefetch(ctx, st, fd, i, n);
      i += n;
    }
    return inode.pages.get(from)!;
  }

  /** Reads pages [index, index + n) below in one read; each page is a view of its part of the result. */
  private prefetch(ctx: CallCtx, st: RaFd, fd: Fd, index: number, n: number): void {
    const inode = st.inode;
    const generation = inode.generation;
    const ps = this.options["page-size"];
    const run = this.child.read(ctx, fd, ps * n, index * ps);
    const settled: Promise<unknown>[] = [];
    for (let k = 0; k < n; k++) {
      const i = index + k;
      const page: RaPage = { promise: n === 1 ? run : run.then((data) => data.subarray(Math.min(k * ps, data.length), Math.min((k + 1) * ps, data.length))), data: undefined };
      inode.pages.set(i, page);
      settled.push(page.promise.then(
        (data) => {
          if (inode.generation !== generation) {
            if (inode.pages.get(i) === page) inode.pages.delete(i);
            return;
          }
          page.data = data;
          if (data.length < ps) inode.eofPage = Math.min(inode.eofPage, i + 1);
        },
        () => {
          // The reader that awaits this page gets the error; later readers fetch afresh.
          if (inode.pages.get(i) === page) inode.pages.delete(i);
        },
      ));
    }
    const all = Promise.all(settled);
    st.inFlight.add(all);
    void all.then(() => st.inFlight.delete(all));
  }

  override async write(ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number> {
    // Before and after: a prefetch racing with the write must not survive it.
    this.invalidateFd(fd);
    try {
      return await this.child.write(ctx, fd, data, offset, xdata);
    } finally {
      this.invalidateFd(fd);
    }
  }

  override async fsetattr(ctx: CallCtx, fd: Fd, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    if (attr.size === undefined) return this.child.fsetattr(ctx, fd, attr, xdata);
    this.invalidateFd(fd);
    try {
      return await this.child.fsetattr(ctx, fd, attr, xdata);
    } finally {
      this.invalidateFd(fd);
    }
  }

  override async setattr(ctx: CallCtx, loc: Loc, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> {
    if (attr.size === undefined) return this.child.setattr(ctx, loc, attr, xdata);
    this.invalidate(this.inodes.forLoc(loc));
    try {
      return await this.child.setattr(ctx, loc, attr, xdata);
    } finally {
      this.invalidate(this.inodes.forLoc(loc));
    }
  }

  override async fallocate(ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number, xdata?: Xdata): Promise<void> {
    this.invalidateFd(fd);
    try {
      return await this.child.fallocate(ctx, fd, mode, offset, len, xdata);
    } finally {
      this.invalidateFd(fd);
    }
  }

  override async release(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const st = fd.get<RaFd>(this);
    if (st) {
      await Promise.allSettled([...st.inFlight]);
      fd.ctx.delete(this);
      if (--st.inode.fdCount === 0) this.inodes.delete(st.inode.key);
    }
    return this.child.release(ctx, fd, xdata);
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied: string[] = [];
    for (const k of ["page-size", "page-count"] as const) {
      if (options[k] !== undefined && options[k] !== this.options[k]) {
        (this.options as Record<string, unknown>)[k] = options[k];
        applied.push(k);
      }
    }
    // Page numbers depend on page-size.
    if (applied.includes("page-size")) for (const inode of this.inodes.values()) this.invalidate(inode);
    return { applied, needsRestart: [] };
  }

  override dump(): Record<string, unknown> {
    const inodes: Record<string, unknown>[] = [];
    for (const [key, i] of this.inodes.entries()) {
      inodes.push({ key, fds: i.fdCount, pages: [...i.pages.keys()].sort((a, b) => a - b), eofPage: Number.isFinite(i.eofPage) ? i.eofPage : null });
    }
    return { options: { ...this.options }, inodes };
  }
}

export default defineXlator<ReadAheadOptions>({
  type: "performance/read-ahead",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new ReadAhead(init),
});

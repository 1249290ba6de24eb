import { constants as FS } from "node:fs";
import { Fd, type CallCtx, type DirEntry } from "../../core/types";
import type { Xlator } from "../../core/xlator";

/** Sibling directories listed ahead of a walk at most. */
const WINDOW = 4;
/** A directory listed ahead and not opened by the kernel within this time is closed again. */
const KEEP_MS = 2000;
/** A bigger listing is not kept ahead (its memory): the kernel's own opendir fetches it again. */
const MAX_ENTRIES = 8192;
/** Directories whose subdirectories are remembered (a depth-first walk goes back up to them). */
const REMEMBERED_LISTINGS = 16;

/** What may change a listing, counted by the bridge: a listing fetched before either moved is not served after. */
export interface ListingGuard {
  epoch: number;
  changes: number;
}

/** A directory opened and listed ahead of the kernel's opendir. */
export interface ListedAhead extends ListingGuard {
  fd: Fd;
  opened: Promise<void>;
  entries: Promise<DirEntry[]>;
}

interface Pending extends ListedAhead {
  uid: number;
  gid: number;
  timer: NodeJS.Timeout;
}

interface Subdirs {
  /** In listing order (find, du, cp -r go this way)... */
  names: { name: string; gfid: string }[];
  index: Map<string, number>;
  /** ...and in name order (ls -R sorts): positions into `names`. */
  sorted: number[];
  sortedIndex: Map<string, number>;
  /** The subdirectory the kernel opened last, and the order the walk is seen to follow. */
  last?: string;
  order?: "listing" | "sorted";
  /** When the listing was fetched: a walk that changes things as it goes (cp -r) is not read ahead. */
  guard: ListingGuard;
}

/**
 * Listings read ahead during a tree walk (Lustre's statahead, for directories): when the kernel opens
 * a directory that its parent's listing named, the next few sibling directories are opened and listed
 * in the background — next in the order the walk is seen to take: the listing's (find, du) or by name
 * (ls -R sorts); at the first descent, a few of each. A walk then finds them fetched when it gets
 * there: the servers list the next directories while the client and the kernel go through this one,
 * instead of every step waiting for the one before. Only a descent starts it (listing one directory
 * does not), at most WINDOW directories ahead, and only while nothing that may change a listing
 * happens (a walk that writes as it goes would find every listing fetched ahead stale). The handle
 * goes to the same user's opendir of the same directory (gfid); its listing is served if still good
 * (ListingGuard, checked by the bridge when the kernel reads it), else fetched again.
 */
export class ListingsAhead {
  private readonly subdirs = new Map<string, Subdirs>();
  private readonly pending = new Map<string, Pending>();
  readonly counters = { fetched: 0, used: 0, dropped: 0 };

  constructor(
    private readonly top: Xlator,
    private readonly guard: () => ListingGuard,
    private readonly localCtx: () => CallCtx,
  ) {}

  /** A directory's whole listing was fetched: its subdirectories are where a walk goes next. */
  listed(path: string, entries: DirEntry[]): void {
    const names: Subdirs["names"] = [];
    for (const e of entries) {
      if (e.stat && (e.stat.mode & FS.S_IFMT) === FS.S_IFDIR && e.name !== "." && e.name !== "..") names.push({ name: e.name, gfid: e.stat.gfid });
    }
    this.subdirs.delete(path);
    if (names.length === 0) return;
    const sorted = names.map((_, i) => i).sort((a, b) => (names[a]!.name < names[b]!.name ? -1 : 1));
    this.subdirs.set(path, {
      names, index: new Map(names.map((n, i) => [n.name, i])),
      sorted, sortedIndex: new Map(sorted.map((i, k) => [names[i]!.name, k])), guard: this.guard(),
    });
    if (this.subdirs.size > REMEMBERED_LISTINGS) this.subdirs.delete(this.subdirs.keys().next().value as string);
  }

  /**
   * The kernel opens directory `path` (for `ctx`'s user): the handle listed ahead for it, if there is
   * one still good; and, when its parent's listing named it, the next siblings are listed ahead now.
   */
  opening(path: string, gfid: string | undefined, ctx: CallCtx): ListedAhead | undefined {
    const mine = this.pending.get(path);
    let handed: ListedAhead | undefined;
    if (mine) {
      this.pending.delete(path);
      clearTimeout(mine.timer);
      if (mine.uid === ctx.uid && mine.gid === ctx.gid && mine.fd.gfid === gfid) {
        this.counters.used++;
        handed = mine;
      } else {
        void this.close(mine);
      }
    }
    this.readAhead(path, ctx);
    return handed;
  }

  private readAhead(path: string, ctx: CallCtx): void {
    const slash = path.lastIndexOf("/");
    const parent = slash <= 0 ? "/" : path.slice(0, slash);
    const name = path.slice(slash + 1);
    const s = this.subdirs.get(parent);
    const at = s?.index.get(name);
    if (!s || at === undefined) return;
    const atSorted = s.sortedIndex.get(name)!;
    // Which way the walk goes, from the sibling it opened before this one (unknown at the first).
    if (s.last !== undefined) {
      s.order = s.index.get(s.last) === at - 1 ? "listing" : s.sortedIndex.get(s.last) === atSorted - 1 ? "sorted" : undefined;
    }
    s.last = name;
    const now = this.guard();
    if (s.guard.epoch !== now.epoch || s.guard.changes !== now.changes) return;
    const byListing = s.names.slice(at + 1, at + 1 + WINDOW);
    const bySorted = s.sorted.slice(atSorted + 1, atSorted + 1 + WINDOW).map((i) => s.names[i]!);
    const next = s.order === "listing" ? byListing : s.order === "sorted" ? bySorted
      : [...new Set([...byListing.slice(0, WINDOW / 2), ...bySorted.slice(0, WINDOW / 2)])];
    const prefix = parent === "/" ? "/" : `${parent}/`;
    for (const n of next) {
      const p = prefix + n.name;
      if (!this.pending.has(p) && this.pending.size < 2 * WINDOW) this.start(p, n.gfid, ctx);
    }
  }

  private start(path: string, gfid: string, ctx: CallCtx): void {
    const fd = new Fd(path, FS.O_RDONLY | FS.O_DIRECTORY, true, gfid);
    const opened = this.top.opendir(ctx, { path, gfid }, fd);
    // (after the opendir's answer, not right behind it as the bridge's own prefetch: ahead of the
    // walk, the round trip costs nobody a wait, and a graph without protocol/client needs it)
    const entries = opened.then(() => this.top.readdir(ctx, fd, 0, true));
    const p: Pending = { fd, opened, entries, ...this.guard(), uid: ctx.uid, gid: ctx.gid, timer: setTimeout(() => this.expire(path, p), KEEP_MS) };
    p.timer.unref();
    this.pending.set(path, p);
    this.counters.fetched++;
    void entries.then((list) => {
      if (list.length > MAX_ENTRIES) this.expire(path, p);
    }, () => this.expire(path, p));
  }

  private expire(path: string, p: Pending): void {
    if (this.pending.get(path) !== p) return;
    this.pending.delete(path);
    void this.close(p);
  }

  private close(p: Pending): Promise<void> {
    clearTimeout(p.timer);
    this.counters.dropped++;
    return p.opened.then(() => this.top.releasedir(this.localCtx(), p.fd)).catch(() => undefined);
  }

  /** Closes every handle still held (unmount). */
  async closeAll(): Promise<void> {
    const all = [...this.pending.values()];
    this.pending.clear();
    await Promise.all(all.map((p) => this.close(p)));
  }

  dump(): Record<string, unknown> {
    return { ...this.counters, pending: this.pending.size, window: WINDOW };
  }
}

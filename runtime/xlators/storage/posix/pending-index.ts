import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { NAME_MAX } from "../../../core/limits";

export interface IndexEntry {
  gfid: string;
  path: string;
}

/**
 * The pending-heal index: one entry per gfid in `.glusterfs/indices/xattrop/`. Kept in memory too
 * (heal info and renames read it without touching the disk); each change is on disk before the fop
 * that caused it resolves.
 *
 * An entry is a hard link of one empty base file (as GlusterFS's index translator does), named
 * `<gfid>:<path, URI-encoded>`: every write transaction sets and clears an entry on each brick, so
 * this is on the hot path, and a link is one call, atomic, and allocates no inode (10 µs here, where a
 * symlink or a new file costs ~0.5 ms). A path changes by renaming the entry. A path too long for a
 * name is kept in a file `<gfid>` holding it, written aside and renamed over. Entries of earlier
 * versions (a symlink, or a file, named `<gfid>` holding the path) are read as they are.
 *
 * Removal reaches the disk late (after SWEEP_MS, or at stop()): an entry cleared in memory and set
 * again before the sweep costs no call at all (a directory's entry transactions, one per create in
 * it). An entry left on disk by a crash is only a hint: the heal crawl finds its counters zero and
 * drops it (runtime/heal/pending-index.ts, refreshIndexEntry).
 *
 * The calls are synchronous: microseconds on a directory the kernel has cached, cheaper than a
 * thread-pool round trip.
 */
/** ext4 allows 65,000 links per inode: a new base file is started well before. */
const LINKS_PER_BASE = 60_000;
/** How long a cleared entry may stay on disk (a few transactions on the same file reuse it meanwhile). */
const SWEEP_MS = 1000;

/** The entry's name for gfid + path, if it fits in a name. */
function linkName(gfid: string, path: string): string | undefined {
  const name = `${gfid}:${encodeURIComponent(path)}`;
  return Buffer.byteLength(name) <= NAME_MAX ? name : undefined;
}

export class PendingIndex {
  private readonly entries = new Map<string, string>();
  /** The name each entry has on disk (set, or cleared and not yet swept). */
  private readonly names = new Map<string, string>();
  /** Cleared entries still on disk, with the path they hold. */
  private readonly clearedOnDisk = new Map<string, string>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private tmpSeq = 0;
  private base: string;
  private baseLinks = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.base = `${dir}.base`;
    if (!existsSync(this.base)) writeFileSync(this.base, "");
    this.baseLinks = lstatSync(this.base).nlink;
    for (const name of readdirSync(dir)) {
      const file = `${dir}/${name}`;
      if (name.startsWith(".tmp-")) {
        unlinkSync(file);
        continue;
      }
      const colon = name.indexOf(":");
      let gfid = name;
      let path: string;
      if (colon > 0) {
        gfid = name.slice(0, colon);
        try {
          path = decodeURIComponent(name.slice(colon + 1));
        } catch {
          continue; // not ours
        }
      } else {
        path = lstatSync(file).isSymbolicLink() ? readlinkSync(file, "utf8") : readFileSync(file, "utf8");
      }
      const before = this.names.get(gfid);
      // two names for one gfid (a crash between making one and removing the other): either says pending
      if (before !== undefined) unlinkSync(`${dir}/${before}`);
      this.entries.set(gfid, path);
      this.names.set(gfid, name);
    }
  }

  get(gfid: string): string | undefined {
    return this.entries.get(gfid);
  }

  async set(gfid: string, path: string): Promise<void> {
    const had = this.entries.get(gfid);
    if (had === path) return;
    const cleared = this.clearedOnDisk.get(gfid);
    if (cleared !== undefined) {
      this.clearedOnDisk.delete(gfid);
      if (cleared === path) {
        this.entries.set(gfid, path);
        return;
      }
    }
    this.entries.set(gfid, path);
    try {
      this.write(gfid, path);
    } catch (err) {
      if (had === undefined) this.entries.delete(gfid);
      else this.entries.set(gfid, had);
      if (cleared !== undefined) this.clearedOnDisk.set(gfid, cleared);
      throw err;
    }
  }

  /** Puts gfid's entry on disk holding `path`, replacing the one it has (atomically: a crash leaves one or the other). */
  private write(gfid: string, path: string): void {
    const old = this.names.get(gfid);
    const name = linkName(gfid, path);
    if (name !== undefined) {
      if (old !== undefined) {
        if (old !== name) renameSync(`${this.dir}/${old}`, `${this.dir}/${name}`);
      } else {
        this.link(`${this.dir}/${name}`);
      }
      this.names.set(gfid, name);
      return;
    }
    // too long for a name: a file holding the path, written aside and renamed over
    const tmp = `${this.dir}/.tmp-${process.pid}-${this.tmpSeq++}`;
    writeFileSync(tmp, path);
    renameSync(tmp, `${this.dir}/${gfid}`);
    if (old !== undefined && old !== gfid) unlinkSync(`${this.dir}/${old}`);
    this.names.set(gfid, gfid);
  }

  private link(to: string): void {
    if (this.baseLinks >= LINKS_PER_BASE) this.newBase();
    try {
      linkSync(this.base, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EMLINK") throw err;
      this.newBase();
      linkSync(this.base, to);
    }
    this.baseLinks++;
  }

  /** Entries already made keep their base; new ones link to a fresh one. */
  private newBase(): void {
    const next = `${this.dir}.base.tmp`;
    writeFileSync(next, "");
    // the current base's links stay valid (they are the same inode); the name now points at a new one
    renameSync(next, this.base);
    this.baseLinks = 1;
  }

  async remove(gfid: string): Promise<void> {
    const path = this.entries.get(gfid);
    if (path === undefined) return;
    this.entries.delete(gfid);
    this.clearedOnDisk.set(gfid, path);
    this.sweepTimer ??= setTimeout(() => this.sweep(), SWEEP_MS).unref();
  }

  /** Removes from disk the entries cleared since the last sweep (and not set again). */
  sweep(): void {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const gfid of this.clearedOnDisk.keys()) {
      const name = this.names.get(gfid);
      this.names.delete(gfid);
      if (name === undefined) continue;
      try {
        unlinkSync(`${this.dir}/${name}`);
      } catch {
        // gone already, or left over: the crawl drops a left-over entry whose counters are zero
      }
    }
    this.clearedOnDisk.clear();
  }

  /** Entries cleared in memory but still on disk (statedump). */
  get clearedPending(): number {
    return this.clearedOnDisk.size;
  }

  /** A rename of `from` to `to`: entries at or under `from` move along. */
  async renamed(from: string, to: string): Promise<void> {
    const moves: Promise<void>[] = [];
    for (const [gfid, path] of this.entries) {
      if (path === from) moves.push(this.set(gfid, to));
      else if (path.startsWith(from + "/")) moves.push(this.set(gfid, to + path.slice(from.length)));
    }
    await Promise.all(moves);
  }

  list(): IndexEntry[] {
    return [...this.entries].map(([gfid, path]) => ({ gfid, path }));
  }

  get size(): number {
    return this.entries.size;
  }
}

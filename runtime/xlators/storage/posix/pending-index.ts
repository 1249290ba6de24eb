import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";

export interface IndexEntry {
  gfid: string;
  path: string;
}

/**
 * The pending-heal index: one entry per gfid in `.glusterfs/indices/xattrop/`, a symlink whose
 * target is the file's path (never followed). Kept in memory too (heal info and renames read it
 * without touching the disk); each change is on disk before the fop that caused it resolves.
 *
 * Why symlinks: every write transaction sets and clears an entry on each brick, so this is on the
 * hot path. A symlink is made in one call and is atomic (it exists with its whole target or not at
 * all); the former write-a-file-then-rename cost ~1 ms on ext4, whose rename over an existing file
 * forces the data out (auto_da_alloc). The calls are synchronous: a few microseconds on a directory
 * the kernel has cached, cheaper than a thread-pool round trip.
 */
/** A symlink's target must be shorter than PATH_MAX (4096) bytes; client paths may reach it. */
const SYMLINK_MAX = 4095;

export class PendingIndex {
  private readonly entries = new Map<string, string>();
  private tmpSeq = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) {
      if (name.startsWith(".tmp-")) {
        unlinkSync(`${dir}/${name}`);
        continue;
      }
      // (entries written by earlier versions are regular files holding the path)
      const file = `${dir}/${name}`;
      this.entries.set(name, lstatSync(file).isSymbolicLink() ? readlinkSync(file, "utf8") : readFileSync(file, "utf8"));
    }
  }

  get(gfid: string): string | undefined {
    return this.entries.get(gfid);
  }

  async set(gfid: string, path: string): Promise<void> {
    const had = this.entries.get(gfid);
    if (had === path) return;
    this.entries.set(gfid, path);
    const entry = `${this.dir}/${gfid}`;
    try {
      if (Buffer.byteLength(path) >= SYMLINK_MAX) {
        // too long for a symlink's target: a file holding the path, written aside and renamed over
        const tmp = `${this.dir}/.tmp-${process.pid}-${this.tmpSeq++}`;
        writeFileSync(tmp, path);
        renameSync(tmp, entry);
        return;
      }
      if (had === undefined) {
        try {
          symlinkSync(path, entry);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        }
      }
      // replacing an entry: make the new one aside and rename it over, so a crash leaves one or the other
      const tmp = `${this.dir}/.tmp-${process.pid}-${this.tmpSeq++}`;
      symlinkSync(path, tmp);
      renameSync(tmp, entry);
    } catch (err) {
      if (had === undefined) this.entries.delete(gfid);
      else this.entries.set(gfid, had);
      throw err;
    }
  }

  async remove(gfid: string): Promise<void> {
    if (!this.entries.delete(gfid)) return;
    try {
      unlinkSync(`${this.dir}/${gfid}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
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

import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { rename, unlink, writeFile } from "node:fs/promises";

export interface IndexEntry {
  gfid: string;
  path: string;
}

/**
 * The pending-heal index: one file per gfid in `.glusterfs/indices/xattrop/` holding the file's
 * path. Kept in memory too (heal info and renames read it without touching the disk); each change
 * is written through before the fop that caused it resolves.
 */
export class PendingIndex {
  private readonly entries = new Map<string, string>();
  private tmpSeq = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) {
      if (name.startsWith(".tmp-")) continue;
      this.entries.set(name, readFileSync(`${dir}/${name}`, "utf8"));
    }
  }

  get(gfid: string): string | undefined {
    return this.entries.get(gfid);
  }

  async set(gfid: string, path: string): Promise<void> {
    if (this.entries.get(gfid) === path) return;
    this.entries.set(gfid, path);
    // write-then-rename so a crash never leaves a half-written path
    const tmp = `${this.dir}/.tmp-${process.pid}-${this.tmpSeq++}`;
    await writeFile(tmp, path);
    await rename(tmp, `${this.dir}/${gfid}`);
  }

  async remove(gfid: string): Promise<void> {
    if (!this.entries.delete(gfid)) return;
    await unlink(`${this.dir}/${gfid}`).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
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

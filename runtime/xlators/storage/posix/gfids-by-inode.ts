import type { Stats } from "node:fs";
import { trimOldest } from "../../../core/lru";

/** How many inodes' gfids are kept (least recently used go first): ~100 bytes each. */
const KEPT = 65536;

/**
 * The gfids of inodes already read, so that a stat'ed entry's gfid costs no getxattr (nearly every fop
 * and every entry of a readdirplus reads one: two syscalls through the xattr binding, ~12 µs of the
 * event loop). Sound because a file's gfid never changes while the inode lives (it is set when the file
 * is made, or once for a file made behind our back, and clients cannot set it), and an inode number
 * used again belongs to a file with another birth time. Filesystems without birth times are not cached.
 */
export class GfidsByInode {
  private readonly gfids = new Map<string, { gfid: string; born: number }>();
  hits = 0;
  misses = 0;

  /** The gfid of the inode `st` describes, if known. */
  get(st: Stats): string | undefined {
    if (!(st.birthtimeMs > 0)) return undefined;
    const key = `${st.dev}:${st.ino}`;
    const known = this.gfids.get(key);
    if (known && known.born === st.birthtimeMs) {
      this.hits++;
      this.gfids.delete(key);
      this.gfids.set(key, known);
      return known.gfid;
    }
    this.misses++;
    return undefined;
  }

  /**
   * Remembers the gfid read from a path for the inode `before` described, if the path still names that
   * inode (`after`, a stat taken once the gfid was read): otherwise the read may have been of another
   * file renamed over it meanwhile.
   */
  set(before: Stats, after: Stats, gfid: string): void {
    if (!(before.birthtimeMs > 0) || after.ino !== before.ino || after.dev !== before.dev || after.birthtimeMs !== before.birthtimeMs) return;
    const key = `${before.dev}:${before.ino}`;
    this.gfids.delete(key);
    this.gfids.set(key, { gfid, born: before.birthtimeMs });
    trimOldest(this.gfids, KEPT);
  }

  get size(): number {
    return this.gfids.size;
  }
}

/**
 * Where a multiply-linked file was last seen, by gfid. Entry heal uses it to recreate a hard link on a
 * sink as a link to the inode already there instead of a second, separate copy. GlusterFS finds the
 * inode through its .glusterfs gfid handles; our bricks keep none, so AFR remembers the names it meets
 * (lookups, links, entry-heal listings). Bounded: the oldest hints go first.
 */
import { KeyedMutex } from "../../../core/keyed-mutex";
import { trimOldest } from "../../../core/lru";

export class LinkHints {
  private readonly paths = new Map<string, string>();
  /** Heals of names of one gfid, one at a time: two parallel heals would each create a copy. */
  readonly byGfid = new KeyedMutex();
  constructor(private readonly max = 10_000) {}

  note(gfid: string | undefined, path: string): void {
    if (!gfid) return;
    this.paths.delete(gfid);
    this.paths.set(gfid, path);
    trimOldest(this.paths, this.max);
  }

  get(gfid: string): string | undefined {
    return this.paths.get(gfid);
  }
}

import * as fs from "node:fs";
import type { FopActivity } from "./fop-activity";

/** Space the waiting files may hold, at most (a big file past it is freed by its unlink, as without this). */
const MAX_WAITING_BYTES = 64 << 20;
/**
 * How long without a fop before the waiting files are freed: far longer than the gaps inside a burst of
 * unlinks (well under a millisecond), short enough that the space comes back right after it — and that
 * the freeing is seen to start by anyone waiting for the machine to be quiet (the bench's 200 ms).
 */
const FREE_IDLE_MS = 50;

/**
 * Files whose last name a client removed, freed off the fop's path (precreated-inodes.ts's
 * counterpart). Freeing an inode is the dearest part of an unlink on ext4: a 4 KiB file's unlink(2)
 * took 100-110 µs here (7 µs for an empty one: its blocks are given back), 190 µs inside a brick
 * beside its replica's; a rename(2) into this directory takes 20-26 µs. So an unlink renames the
 * file here — its name is gone at once, as atomic as unlink(2) — and the brick unlinks it through the
 * thread pool, one at a time, once no fop has come for FREE_IDLE_MS (fop-activity.ts): during a burst
 * of unlinks the freeing would take the CPU the burst's own fops need (on this 2-vCPU machine, 2,000
 * unlinks through the seed's cluster: 1,445 -> 1,844 files/s, and 1,303 -> 1,616 with the sides
 * swapped, ahead in 8 of 8 rounds each, npm run bench:ab --workload unlink). Half the limit or half of
 * MAX_WAITING_BYTES waiting: it frees at once, busy or not. Only for an inode's last name: with
 * another name left, its link count must drop at once. At most `limit` files and MAX_WAITING_BYTES
 * wait; past either, or with 0, an unlink frees its file itself.
 * The space they hold is the clients' all the same: statfs counts it free (`held`), and a fop that
 * finds the disk full frees them all at once and goes again (storage/posix's guard).
 *
 * They live in `.glusterfs/unlink` (GlusterFS's directory for unlinked files still open; hidden from
 * clients). A crash leaves some here: they are freed after the next start.
 */
export class UnlinkedInodes {
  private readonly waiting: { path: string; bytes: number }[] = [];
  private waitingBytes = 0;
  private serial = 0;
  private readonly prefix = `${process.pid}.${Date.now().toString(36)}.`;
  private freeing = false;
  /** Set while the next free waits for the brick to be idle. */
  private timer: NodeJS.Timeout | undefined;
  /** Files freed in the background / unlinked in place (the queue was full, or the rename failed). */
  freed = 0;
  inPlace = 0;

  constructor(
    readonly dir: string,
    /** Files that may wait to be freed (the volfile's unlinked-inodes; 0: none). */
    public limit: number,
    private readonly activity: FopActivity,
    private readonly onError: (err: NodeJS.ErrnoException, path: string) => void,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of fs.readdirSync(dir)) this.waiting.push({ path: `${dir}/${name}`, bytes: 0 });
    this.freeNext();
  }

  /**
   * Removes the name `path` of an inode with `links` names taking `bytes` on disk: renamed here if it
   * is the last, else unlinked in place; throws as unlink(2).
   */
  unlink(path: string, links: number, bytes: number): void {
    if (links <= 1 && this.waiting.length < this.limit && this.waitingBytes + bytes <= MAX_WAITING_BYTES) {
      const aside = `${this.dir}/${this.prefix}${this.serial++}`;
      try {
        fs.renameSync(path, aside);
        this.waiting.push({ path: aside, bytes });
        this.waitingBytes += bytes;
        this.freeNext();
        return;
      } catch (err) {
        // ENOENT and the like are the unlink's own errors; anything else (ENOSPC for a new directory
        // block, EXDEV for a name on another filesystem below the brick) is left to unlink(2)
        if ((err as NodeJS.ErrnoException).code === "ENOENT") throw err;
      }
    }
    fs.unlinkSync(path);
    this.inPlace++;
  }

  /** Files waiting and the bytes they hold: free space for the clients (statfs). */
  get held(): { files: number; bytes: number } {
    return { files: this.waiting.length, bytes: this.waitingBytes };
  }

  /** Frees what is still waiting, here and now (the brick stops, or the disk is full); how many there were. */
  drain(): number {
    const all = this.waiting.splice(0);
    for (const { path } of all) this.unlinkQuietly(path);
    this.waitingBytes = 0;
    return all.length;
  }

  dump(): Record<string, number> {
    return { waiting: this.waiting.length, waitingBytes: this.waitingBytes, freed: this.freed, inPlace: this.inPlace };
  }

  private freeNext(): void {
    if (this.freeing || this.timer) return;
    const next = this.waiting[0];
    if (next === undefined) return;
    const pressing = this.waiting.length >= this.limit / 2 || this.waitingBytes >= MAX_WAITING_BYTES / 2;
    const wait = pressing ? 0 : this.activity.untilIdle(FREE_IDLE_MS);
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.freeNext();
      }, wait);
      // (a stopping brick frees what waits itself: drain)
      this.timer.unref();
      return;
    }
    this.freeing = true;
    fs.unlink(next.path, (err) => {
      this.freeing = false;
      // (drain() may have taken it meanwhile)
      if (this.waiting[0] === next) {
        this.waiting.shift();
        this.waitingBytes -= next.bytes;
      }
      if (!err) this.freed++;
      else if (err.code !== "ENOENT") this.onError(err, next.path);
      this.freeNext();
    });
  }

  private unlinkQuietly(path: string): void {
    try {
      fs.unlinkSync(path);
      this.freed++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.onError(err as NodeJS.ErrnoException, path);
    }
  }
}

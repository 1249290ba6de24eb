import * as fs from "node:fs";
import { constants as FS } from "node:fs";
import { IDLE_MS, type FopActivity } from "./fop-activity";

/** After a failure to make one (a full disk, say), the pool waits this long before trying again. */
const RETRY_MS = 5000;

/**
 * Empty files made ahead of time, for creates to take (Lustre's OSTs precreate objects the same way).
 * Making an inode is the dearest part of a create on some disks: ext4's allocator was measured here at
 * 0.2-0.9 ms of kernel time per inode in directories of a crowded block group (17 µs in a fresh one),
 * against ~7 µs for a link(2) and ~40 µs for everything else a brick does to a create. The brick makes them one at a time, off the event loop, only after IDLE_MS
 * without a fop, so the cost falls where nobody waits; a create takes one (posix.ts, createFromPool),
 * links it under its name — EEXIST if the name exists, as atomic as O_CREAT|O_EXCL — and unlinks the
 * pool's name. A burst bigger than the pool makes its inodes itself, as without one.
 *
 * They live in `.glusterfs/precreated` (hidden from clients, on the brick's filesystem: a link cannot
 * cross filesystems), mode 0, owned by the server. A crash between the link and the unlink leaves a
 * pool name with a second link: such names are dropped at start, the file keeps its client name.
 */
export class PrecreatedInodes {
  private readonly ready: string[] = [];
  private serial = 0;
  private readonly prefix = `${process.pid}.${Date.now().toString(36)}.`;
  private timer: NodeJS.Timeout | undefined;
  private making = false;
  private stopped = false;
  /** Creates that took a precreated inode / that found the pool empty; inodes made for the pool. */
  taken = 0;
  missed = 0;
  made = 0;

  constructor(
    readonly dir: string,
    private target: number,
    private readonly activity: FopActivity,
    private readonly onError: (err: NodeJS.ErrnoException) => void,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of fs.readdirSync(dir)) {
      const path = `${dir}/${name}`;
      const st = fs.lstatSync(path, { throwIfNoEntry: false });
      if (st?.isFile() && st.nlink === 1 && st.size === 0 && this.ready.length < target) this.ready.push(path);
      else fs.rmSync(path, { force: true });
    }
    this.schedule();
  }

  /** A precreated inode's path (the caller owns it now), or undefined when the pool is empty. */
  take(): string | undefined {
    const path = this.ready.pop();
    if (path === undefined) this.missed++;
    else this.taken++;
    this.schedule();
    return path;
  }

  setTarget(target: number): void {
    this.target = target;
    while (this.ready.length > target) fs.rmSync(this.ready.pop()!, { force: true });
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  dump(): Record<string, number> {
    return { ready: this.ready.length, target: this.target, taken: this.taken, missed: this.missed, made: this.made };
  }

  private schedule(delay = IDLE_MS): void {
    if (this.stopped || this.making || this.timer || this.ready.length >= this.target) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const wait = this.activity.untilIdle();
      if (wait > 0) return this.schedule(wait);
      this.makeOne();
    }, delay);
    this.timer.unref();
  }

  private makeNext(): void {
    if (this.stopped || this.making || this.timer || this.ready.length >= this.target) return;
    this.makeOne();
  }

  private makeOne(): void {
    this.making = true;
    const path = `${this.dir}/${this.prefix}${this.serial++}`;
    // through the thread pool: this is the slow call the pool exists to take off the fops' path
    fs.open(path, FS.O_CREAT | FS.O_EXCL | FS.O_WRONLY | FS.O_NOFOLLOW, 0, (err, fd) => {
      if (err) {
        this.making = false;
        this.onError(err);
        return this.schedule(RETRY_MS);
      }
      // (closing an fd nobody wrote through costs microseconds: no second trip through the pool)
      try {
        fs.closeSync(fd);
      } catch {
        // the inode is made; a failed close of an unwritten fd loses nothing
      }
      this.making = false;
      if (this.stopped) return;
      this.ready.push(path);
      this.made++;
      // the next at once while the brick stays idle (a timer would wait a millisecond per inode)
      setImmediate(() => {
        if (this.activity.untilIdle() === 0) this.makeNext();
        else this.schedule();
      });
    });
  }
}

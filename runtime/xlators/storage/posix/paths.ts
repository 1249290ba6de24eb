import { closeSync, constants as FS, openSync, readlinkSync } from "node:fs";
import { NAME_MAX, PATH_MAX } from "../../../core/limits";
import { FopError } from "../../../core/errors";

/** Where a client path lands on the brick. */
export interface Resolved {
  /** The entry's path on disk (its last component is never followed). */
  real: string;
  /** The parent directory's real path ("" for the root itself). */
  parentReal: string;
  /** The last component ("" for the root). */
  name: string;
  /** The client path, normalised ("/a/b"). */
  path: string;
  /** Unpins the parent directory; call once the fop is done with `real`. */
  release(): Promise<void>;
}

const noop = async () => undefined;

/** Parent directories kept open between fops (most fops of a burst land in a few directories). */
const KEPT_DIRS = 64;

/** An open parent directory: pinned while fops use it, kept open while in the cache. */
interface OpenDir {
  fd: number;
  /** The path it was opened by (the cache's key). */
  real: string;
  users: number;
}

export const INTERNAL_DIR = ".glusterfs";

/**
 * Confinement: turns a client path into a path inside the brick, or refuses it.
 * - not absolute, or containing NUL: EINVAL; a ".." component: EACCES; a component > 255 bytes: ENAMETOOLONG;
 * - a nested entry's parent directory is opened (symlinks on the way are followed as the kernel
 *   would) and pinned; where it really is (its /proc/self/fd link) must be inside the brick (else
 *   EACCES) and outside `.glusterfs/` (else ENOENT). The fop then uses `/proc/<pid>/fd/<n>/<name>`,
 *   which the kernel resolves from the pinned directory: like openat(2), so swapping a directory for
 *   a symlink after the check cannot redirect the fop (Node has no openat of its own);
 * - the last component is never followed: fops act on it with lstat / O_NOFOLLOW / l*xattr.
 * The last KEPT_DIRS parent directories reached without a symlink stay open, saving an open and a
 * close per fop: before each use, the /proc link of a kept one must still read as the path it was
 * opened by (a directory renamed or removed since, or one on the way, shows there), else it is
 * closed and the path opened again as above.
 */
export class BrickPaths {
  readonly internal: string;
  private readonly kept = new Map<string, OpenDir>();

  constructor(readonly root: string) {
    this.internal = `${root}/${INTERNAL_DIR}`;
  }

  /** Validates and normalises a client path into its components. */
  components(path: unknown): string[] {
    if (typeof path !== "string" || !path.startsWith("/")) throw new FopError("EINVAL", `path must be absolute: ${String(path)}`);
    if (path.includes("\0")) throw new FopError("EINVAL", "path contains NUL");
    if (Buffer.byteLength(path) > PATH_MAX) throw new FopError("ENAMETOOLONG", "path too long");
    const out: string[] = [];
    for (const c of path.split("/")) {
      if (c === "" || c === ".") continue;
      if (c === "..") throw new FopError("EACCES", `".." in path ${path}`);
      if (Buffer.byteLength(c) > NAME_MAX) throw new FopError("ENAMETOOLONG", `name too long in ${path}`);
      out.push(c);
    }
    if (out[0] === INTERNAL_DIR) throw new FopError("ENOENT", `no such file: ${path}`);
    return out;
  }

  async resolve(path: unknown): Promise<Resolved> {
    const comps = this.components(path);
    if (comps.length === 0) return { real: this.root, parentReal: "", name: "", path: "/", release: noop };
    const name = comps[comps.length - 1]!;
    const norm = "/" + comps.join("/");
    if (comps.length === 1) return { real: `${this.root}/${name}`, parentReal: this.root, name, path: norm, release: noop };
    const parent = this.pin(`${this.root}/${comps.slice(0, -1).join("/")}`, norm);
    // /proc/<pid> rather than /proc/self: the path also serves child processes (mknod, fallocate)
    const dir = `/proc/${process.pid}/fd/${parent.fd}`;
    let open = true;
    const release = async () => {
      if (!open) return;
      open = false;
      if (--parent.users === 0 && !this.isKept(parent)) closeSync(parent.fd);
    };
    return { real: `${dir}/${name}`, parentReal: dir, name, path: norm, release };
  }

  /** Opens (or finds kept open) the directory at `real`, checked as the class comment says. */
  private pin(real: string, clientPath: string): OpenDir {
    // Synchronous calls (as in storage/posix): microseconds each on cached directories, where a
    // round trip through the thread pool costs tens and nearly every fop resolves a path.
    const kept = this.kept.get(real);
    if (kept) {
      if (whereIs(kept.fd) === real) {
        kept.users++;
        this.kept.delete(real); // (most recently used last)
        this.kept.set(real, kept);
        return kept;
      }
      this.forget(kept);
    }
    const fd = openSync(real, FS.O_RDONLY | FS.O_DIRECTORY);
    let where: string | undefined;
    try {
      where = whereIs(fd);
      if (where === undefined || where.endsWith(" (deleted)")) throw new FopError("ENOENT", `no such file: ${clientPath}`);
      this.checkInside(where, clientPath);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const dir: OpenDir = { fd, real, users: 1 };
    if (where === real) {
      this.kept.set(real, dir);
      if (this.kept.size > KEPT_DIRS) this.forget(this.kept.values().next().value!);
    }
    return dir;
  }

  private isKept(dir: OpenDir): boolean {
    return this.kept.get(dir.real) === dir;
  }

  private forget(dir: OpenDir): void {
    if (this.isKept(dir)) this.kept.delete(dir.real);
    if (dir.users === 0) closeSync(dir.fd);
  }

  /** Closes the directories kept open (those still in use close when their fop is done). */
  close(): void {
    for (const dir of [...this.kept.values()]) this.forget(dir);
  }

  /** A real path must be the root or under it, and not the internal directory. */
  checkInside(real: string, clientPath: string): void {
    if (real !== this.root && !real.startsWith(this.root + "/")) {
      throw new FopError("EACCES", `${clientPath} leads outside the brick`);
    }
    if (real === this.internal || real.startsWith(this.internal + "/")) {
      throw new FopError("ENOENT", `no such file: ${clientPath}`);
    }
  }
}

/** Where an open fd's file is now (its /proc link), or undefined if that cannot be read. */
function whereIs(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

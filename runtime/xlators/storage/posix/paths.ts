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
 */
export class BrickPaths {
  readonly internal: string;

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
    // Synchronous calls (as in storage/posix): microseconds each on cached directories, where a
    // round trip through the thread pool costs tens and nearly every fop resolves a path.
    const parent = openSync(`${this.root}/${comps.slice(0, -1).join("/")}`, FS.O_RDONLY | FS.O_DIRECTORY);
    try {
      const where = readlinkSync(`/proc/self/fd/${parent}`);
      if (where.endsWith(" (deleted)")) throw new FopError("ENOENT", `no such file: ${norm}`);
      this.checkInside(where, norm);
    } catch (err) {
      closeSync(parent);
      throw err;
    }
    // /proc/<pid> rather than /proc/self: the path also serves child processes (mknod, fallocate)
    const dir = `/proc/${process.pid}/fd/${parent}`;
    let open = true;
    const release = async () => {
      if (!open) return;
      open = false;
      closeSync(parent);
    };
    return { real: `${dir}/${name}`, parentReal: dir, name, path: norm, release };
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

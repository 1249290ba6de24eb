import { realpath } from "node:fs/promises";
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
}

export const INTERNAL_DIR = ".glusterfs";
const NAME_MAX = 255;
const PATH_MAX = 4096;

/**
 * Confinement: turns a client path into a path inside the brick, or refuses it.
 * - not absolute, or containing NUL: EINVAL; a ".." component: EACCES; a component > 255 bytes: ENAMETOOLONG;
 * - the parent is resolved with realpath (symlinks inside the brick are followed like the kernel would)
 *   and must land inside the brick (else EACCES) and outside `.glusterfs/` (else ENOENT);
 * - the last component is never followed: fops act on it with lstat / O_NOFOLLOW / l*xattr.
 * A residual race remains (a directory swapped for a symlink between realpath and the syscall): Node
 * has no openat(); only clients' own renames inside the brick can cause it, and they see a
 * brick where such a symlink can only be created through us (see docs in index.ts).
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
    if (comps.length === 0) return { real: this.root, parentReal: "", name: "", path: "/" };
    const name = comps[comps.length - 1]!;
    const norm = "/" + comps.join("/");
    if (comps.length === 1) return { real: `${this.root}/${name}`, parentReal: this.root, name, path: norm };
    const parentReal = await realpath(`${this.root}/${comps.slice(0, -1).join("/")}`);
    this.checkInside(parentReal, norm);
    return { real: `${parentReal}/${name}`, parentReal, name, path: norm };
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

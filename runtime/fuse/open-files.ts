import { constants as fsConstants } from "node:fs";
import { FopError } from "../core/errors";
import type { Fd } from "../core/types";

/** The mount's open files and directories behind the small numeric handles the kernel holds (both engines). */
export class OpenFiles extends Map<number, Fd> {
  private nextHandle = 1;

  /** Keeps `fd` under a free handle (wrapping at 2^31) and returns it. */
  add(fd: Fd): number {
    while (this.has(this.nextHandle)) this.nextHandle = this.nextHandle >= 0x7fffffff ? 1 : this.nextHandle + 1;
    const h = this.nextHandle;
    this.nextHandle = h >= 0x7fffffff ? 1 : h + 1;
    this.set(h, fd);
    return h;
  }

  /** The Fd behind a handle the kernel sent; EBADF if there is none. */
  open(handle: number): Fd {
    const fd = this.get(handle);
    if (!fd) throw new FopError("EBADF", `no open file with handle ${handle}`, { xlator: "fuse" });
    return fd;
  }

  /**
   * An open descriptor of the file `gfid`, if any (a rare question: a linear search). A writable one
   * first: it certainly reached the servers (a read-only open may have been answered by
   * performance/quick-read alone, and cannot be made once the file's name is another file's).
   */
  ofFile(gfid: string): Fd | undefined {
    let readOnly: Fd | undefined;
    for (const fd of this.values()) {
      if (fd.gfid !== gfid || fd.isDir) continue;
      if ((fd.flags & 3) !== fsConstants.O_RDONLY) return fd;
      readOnly ??= fd;
    }
    return readOnly;
  }

  /** Open descriptors follow their file across a rename (translators use fd.path). */
  renamed(from: string, to: string): void {
    const prefix = from.endsWith("/") ? from : `${from}/`;
    for (const fd of this.values()) {
      if (fd.path === from) fd.path = to;
      else if (fd.path.startsWith(prefix)) fd.path = to + fd.path.slice(from.length);
    }
  }
}

// A minimal translator serving a plain directory, independent of storage/posix: it lets the FUSE
// bridge be tested on its own (and counts what reaches it). Not a product translator: no gfids, no
// confinement, no internal xattr rules.
import { getAttribute, listAttributes, removeAttribute, setAttribute } from "@napi-rs/xattr";
import { constants as C, type Stats } from "node:fs";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import type { CallCtx, DirEntry, Fd, Iatt, Loc, LookupResult, SetattrArgs, Statfs } from "../../runtime/core/types";
import { Xlator } from "../../runtime/core/xlator";

function iatt(st: Stats): Iatt {
  return {
    gfid: "", ino: st.ino, mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev, size: st.size,
    blocks: st.blocks, blksize: st.blksize, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs,
  };
}

async function wrap<T>(fop: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw FopError.from(err, { xlator: "dir", fop });
  }
}

export class DirXlator extends Xlator {
  /** Called before each read; tests use it to hold reads and observe concurrency. */
  beforeRead: (fd: Fd) => Promise<void> = async () => undefined;

  constructor(readonly root: string) {
    super({ name: "dir", type: "test/dir", options: {}, children: [], log: silentLogger(), graph: new Map() });
  }

  private p(loc: Loc | string): string {
    return join(this.root, typeof loc === "string" ? loc : loc.path);
  }
  private h(fd: Fd): fs.FileHandle {
    const h = fd.get<fs.FileHandle>(this);
    if (!h) throw new FopError("EBADF", "not open", { xlator: "dir" });
    return h;
  }

  override lookup(_c: CallCtx, loc: Loc): Promise<LookupResult> { return wrap("lookup", async () => ({ stat: iatt(await fs.lstat(this.p(loc))) })); }
  override stat(_c: CallCtx, loc: Loc) { return wrap("stat", async () => iatt(await fs.lstat(this.p(loc)))); }
  override fstat(_c: CallCtx, fd: Fd) { return wrap("fstat", async () => iatt(await this.h(fd).stat())); }
  override setattr(_c: CallCtx, loc: Loc, a: SetattrArgs) { return wrap("setattr", async () => {
    const p = this.p(loc);
    if (a.mode !== undefined) await fs.chmod(p, a.mode);
    if (a.uid !== undefined || a.gid !== undefined) await fs.lchown(p, a.uid ?? -1, a.gid ?? -1);
    if (a.size !== undefined) await fs.truncate(p, a.size);
    if (a.atimeMs !== undefined || a.mtimeMs !== undefined) {
      const st = await fs.lstat(p);
      await fs.lutimes(p, (a.atimeMs ?? st.atimeMs) / 1000, (a.mtimeMs ?? st.mtimeMs) / 1000);
    }
    return iatt(await fs.lstat(p));
  }); }
  override fsetattr(_c: CallCtx, fd: Fd, a: SetattrArgs) { return wrap("fsetattr", async () => {
    if (a.size !== undefined) await this.h(fd).truncate(a.size);
    return iatt(await this.h(fd).stat());
  }); }
  override access(_c: CallCtx, loc: Loc, mask: number) { return wrap("access", () => fs.access(this.p(loc), mask)); }
  override readlink(_c: CallCtx, loc: Loc) { return wrap("readlink", () => fs.readlink(this.p(loc))); }
  override mknod(): Promise<Iatt> { return Promise.reject(new FopError("EPERM", "mknod", { xlator: "dir" })); }
  override mkdir(_c: CallCtx, loc: Loc, mode: number) { return wrap("mkdir", async () => {
    await fs.mkdir(this.p(loc), { mode });
    return iatt(await fs.lstat(this.p(loc)));
  }); }
  override unlink(_c: CallCtx, loc: Loc) { return wrap("unlink", async () => void (await fs.unlink(this.p(loc)))); }
  override rmdir(_c: CallCtx, loc: Loc) { return wrap("rmdir", async () => void (await fs.rmdir(this.p(loc)))); }
  override symlink(_c: CallCtx, target: string, loc: Loc) { return wrap("symlink", async () => {
    await fs.symlink(target, this.p(loc));
    return iatt(await fs.lstat(this.p(loc)));
  }); }
  override rename(_c: CallCtx, from: Loc, to: Loc) { return wrap("rename", () => fs.rename(this.p(from), this.p(to))); }
  override link(_c: CallCtx, from: Loc, to: Loc) { return wrap("link", async () => {
    await fs.link(this.p(from), this.p(to));
    return iatt(await fs.lstat(this.p(to)));
  }); }
  override create(_c: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd) { return wrap("create", async () => {
    const h = await fs.open(this.p(loc), flags | C.O_CREAT, mode);
    fd.set(this, h);
    return iatt(await h.stat());
  }); }
  override open(_c: CallCtx, loc: Loc, flags: number, fd: Fd) { return wrap("open", async () => {
    fd.set(this, await fs.open(this.p(loc), flags & ~(C.O_CREAT | C.O_EXCL | C.O_TRUNC)));
  }); }
  override read(_c: CallCtx, fd: Fd, size: number, offset: number) { return wrap("read", async () => {
    await this.beforeRead(fd);
    const buf = Buffer.alloc(size);
    const { bytesRead } = await this.h(fd).read(buf, 0, size, offset);
    return buf.subarray(0, bytesRead);
  }); }
  override write(_c: CallCtx, fd: Fd, data: Buffer, offset: number) { return wrap("write", async () => {
    const { bytesWritten } = await this.h(fd).write(data, 0, data.length, offset);
    return bytesWritten;
  }); }
  override async flush(): Promise<void> { return undefined; }
  override release(_c: CallCtx, fd: Fd) { return wrap("release", () => this.h(fd).close()); }
  override fsync(_c: CallCtx, fd: Fd, datasync: boolean) {
    return wrap("fsync", () => (datasync ? this.h(fd).datasync() : this.h(fd).sync()));
  }
  override opendir(_c: CallCtx, loc: Loc) { return wrap("opendir", async () => {
    if (!(await fs.lstat(this.p(loc))).isDirectory()) throw new FopError("ENOTDIR", loc.path);
  }); }
  override readdir(_c: CallCtx, fd: Fd, offset: number, withStat: boolean) { return wrap("readdir", async () => {
    if (offset > 0) return [];
    const names = [".", "..", ...(await fs.readdir(this.p(fd.path)))];
    const out: DirEntry[] = [];
    for (const [i, name] of names.entries()) {
      out.push({ name, next: i + 1, stat: withStat ? iatt(await fs.lstat(join(this.p(fd.path), name))) : undefined });
    }
    return out;
  }); }
  override async releasedir(): Promise<void> { return undefined; }
  override async fsyncdir(): Promise<void> { return undefined; }
  override statfs(_c: CallCtx, loc: Loc) { return wrap("statfs", async (): Promise<Statfs> => {
    const s = await fs.statfs(this.p(loc));
    return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namemax: 255 };
  }); }
  override getxattr(_c: CallCtx, loc: Loc, name: string) { return wrap("getxattr", async () => {
    const v = await getAttribute(this.p(loc), name);
    if (v === null) throw new FopError("ENODATA", name);
    return v;
  }); }
  override setxattr(_c: CallCtx, loc: Loc, name: string, value: Buffer) {
    return wrap("setxattr", () => setAttribute(this.p(loc), name, value));
  }
  override listxattr(_c: CallCtx, loc: Loc) { return wrap("listxattr", () => listAttributes(this.p(loc))); }
  override removexattr(_c: CallCtx, loc: Loc, name: string) { return wrap("removexattr", () => removeAttribute(this.p(loc), name)); }
}

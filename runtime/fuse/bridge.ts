import type Fuse = require("fuse-native");
import { constants as fsConstants } from "node:fs";
import type { Logger } from "pino";
import { OpenFiles } from "./open-files";
import { errnoNumber, FopError } from "../core/errors";
import { Fd, type CallCtx, type Flock, type Iatt, type LkCmd, type SetattrArgs } from "../core/types";
import type { Xlator } from "../core/xlator";
import { loadFuseNative } from "./native";
import { DEFAULT_FUSE_OPTIONS, extraLibfuseOptions, FUSE_SUBTYPE, type FuseMountOptions } from "./options";
import { refusedXattr, visibleXattrs } from "./xattrs";

type FuseStat = Fuse.FuseStat;
type GlusterFuse = InstanceType<ReturnType<typeof defineGlusterFuse>>;

let GlusterFuseClass: ReturnType<typeof defineGlusterFuse> | undefined;

/** fuse-native (our patched build, runtime/fuse/native.ts) is loaded on the first mount. */
function glusterFuse(): ReturnType<typeof defineGlusterFuse> {
  return (GlusterFuseClass ??= defineGlusterFuse(loadFuseNative()));
}

/**
 * fuse-native with the libfuse options it has no setting for (big_writes, max_write, use_ino): its
 * option string comes from Fuse#_fuseOptions, so we extend that one method rather than smuggling the
 * options inside another value (test/integration/fuse-bridge.test.ts checks that they take effect).
 */
const defineGlusterFuse = (Base: typeof Fuse) => class GlusterFuse extends Base {
  constructor(mnt: string, private readonly opsTable: Fuse.FuseOps, opts: Fuse.FuseOpts, private readonly extra: string[]) {
    super(mnt, opsTable, opts);
  }
  override _fuseOptions(): string {
    const base = super._fuseOptions();
    return base ? `${base},${this.extra.join(",")}` : `-o${this.extra.join(",")}`;
  }

  // fuse-native's getxattr/listxattr fill the kernel's buffer without checking its size: a value
  // larger than the caller's buffer made libfuse send an oversized reply (the kernel answers EINVAL,
  // the caller sees EIO). getxattr(2) says ERANGE, so the caller can retry with a larger buffer.
  override _op_getxattr(signal: XattrSignal, path: string, name: string, valueBuf: Buffer, position: number): void {
    this.opsTable.getxattr!(path, name, position, (err, value) => {
      if (err) return signal(err, valueBuf.buffer);
      if (!value) return signal(-ENODATA, valueBuf.buffer);
      if (valueBuf.length === 0) return signal(value.length, valueBuf.buffer);
      if (value.length > valueBuf.length) return signal(-ERANGE, valueBuf.buffer);
      value.copy(valueBuf);
      return signal(value.length, valueBuf.buffer);
    });
  }

  override _op_listxattr(signal: XattrSignal, path: string, listBuf: Buffer): void {
    this.opsTable.listxattr!(path, (err, names) => {
      if (err || !names) return signal(err || -EIO, listBuf.buffer);
      const list = Buffer.from(names.map((n) => `${n}\0`).join(""));
      if (listBuf.length === 0) return signal(list.length, listBuf.buffer);
      if (list.length > listBuf.length) return signal(-ERANGE, listBuf.buffer);
      list.copy(listBuf);
      return signal(list.length, listBuf.buffer);
    });
  }
};

type XattrSignal = (result: number, buf: ArrayBufferLike) => void;
const ENODATA = errnoNumber("ENODATA");
const ERANGE = errnoNumber("ERANGE");
const EIO = errnoNumber("EIO");

/** What the bridge counts (statedump, and the big_writes test). */
export interface BridgeStats {
  ops: Record<string, number>;
  errors: Record<string, number>;
  largestWrite: number;
  largestRead: number;
  openFds: number;
}

/** fcntl lock commands and types as fuse-native reports them, and the graph's names for them. */
interface LockNames {
  cmds: Map<number, LkCmd>;
  types: Map<number, Flock["type"]>;
  typeNumbers: Record<Flock["type"], number>;
}

function lockNames(F: typeof Fuse): LockNames {
  return {
    cmds: new Map([[F.F_GETLK, "getlk"], [F.F_SETLK, "setlk"], [F.F_SETLKW, "setlkw"]]),
    types: new Map([[F.F_RDLCK, "rd"], [F.F_WRLCK, "wr"], [F.F_UNLCK, "un"]]),
    typeNumbers: { rd: F.F_RDLCK, wr: F.F_WRLCK, un: F.F_UNLCK },
  };
}

const UINT32_MAX = 0xffffffff;
/** chown(2) passes -1 (as an unsigned 32-bit number) for "leave unchanged". */
const ID_UNCHANGED = UINT32_MAX;

/**
 * Serves the FUSE mount from the top of a translator graph: every kernel request becomes one fop on
 * `top`, concurrently (libfuse runs a multi-threaded loop and fuse-native hands each request to the
 * event loop; nothing here serialises them). Open files and directories are kept as Fd objects
 * behind small numeric handles.
 */
export class FuseBridge {
  readonly options: FuseMountOptions;
  private fuse: GlusterFuse | undefined;
  /** The fuse-native instance from construction on (fuse only once mounted): where context() comes from. */
  private native: GlusterFuse | undefined;
  private readonly fds = new OpenFiles();
  /**
   * Lock owners that have asked this mount for an fcntl lock. libfuse follows every close (flush)
   * with an unlock of the whole file for the closing owner; for owners that never locked anything
   * it is answered here instead of costing a round trip to the servers. Grows with the number of
   * distinct locking processes (a few bytes each).
   */
  private readonly lockingOwners = new Set<string>();
  private lockNames: LockNames | undefined;
  private readonly stats: BridgeStats = { ops: {}, errors: {}, largestWrite: 0, largestRead: 0, openFds: 0 };

  constructor(
    private readonly top: Xlator,
    options: Partial<FuseMountOptions> & { mountpoint: string },
    private readonly log: Logger,
  ) {
    this.options = { ...DEFAULT_FUSE_OPTIONS, ...options };
  }

  /** Mounts; resolves once the kernel has sent FUSE_INIT (the mount is usable). */
  mount(): Promise<void> {
    const o = this.options;
    const GlusterFuse = glusterFuse();
    const fuse = new GlusterFuse(
      o.mountpoint,
      this.ops(),
      {
        fsname: o.fsname,
        subtype: FUSE_SUBTYPE,
        allowOther: o.allowOther,
        defaultPermissions: o.defaultPermissions,
        maxRead: o.maxRead,
        attrTimeoutDir: o.dirAttrTimeout,
        attrTimeoutSingleLink: o.singleLinkAttrTimeout,
        // fuse-native's default answers any fop slower than 15 s with ETIMEDOUT; timeouts belong to
        // the translators (protocol/client's transport-timeout), and blocking locks may wait long.
        timeout: false,
      },
      extraLibfuseOptions(o),
    );
    this.native = fuse;
    return new Promise((resolve, reject) => {
      fuse.mount((err) => {
        if (err) return reject(new FopError("EIO", `mount ${o.mountpoint}: ${err.message}`, { fop: "mount" }));
        this.fuse = fuse;
        resolve();
      });
    });
  }

  /** Unmounts (lazily: `fusermount -uz`) and releases every Fd still open. */
  async unmount(): Promise<void> {
    const fuse = this.fuse;
    this.fuse = undefined;
    if (fuse) {
      await new Promise<void>((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve())));
    }
    const ctx = this.ctx();
    for (const [h, fd] of this.fds) {
      this.fds.delete(h);
      await (fd.isDir ? this.top.releasedir(ctx, fd) : this.top.release(ctx, fd)).catch(() => undefined);
    }
  }

  get mounted(): boolean {
    return this.fuse !== undefined;
  }

  dump(): Record<string, unknown> {
    return {
      mountpoint: this.options.mountpoint,
      options: this.options,
      stats: { ...this.stats, openFds: this.fds.size },
      fds: [...this.fds].map(([h, fd]) => ({ handle: h, path: fd.path, dir: fd.isDir, flags: fd.flags })),
    };
  }

  statsSnapshot(): BridgeStats {
    return { ...this.stats, ops: { ...this.stats.ops }, errors: { ...this.stats.errors }, openFds: this.fds.size };
  }

  /**
   * Who is calling: the uid/gid/pid of the process behind the kernel request (patched fuse-native's
   * context(), valid while its handler runs: every handler here calls ctx() synchronously, before any
   * await). The kernel checks permissions (default_permissions); the graph uses uid/gid for the owner
   * of what the caller creates. Outside a request (unmount's releases): the mount process, as root.
   */
  private ctx(lkOwner?: string): CallCtx {
    const caller = this.native?.context();
    if (!caller) return { uid: 0, gid: 0, pid: process.pid, lkOwner: lkOwner ?? String(process.pid), client: "local" };
    return { uid: caller.uid, gid: caller.gid, pid: caller.pid, lkOwner: lkOwner ?? String(caller.pid), client: "local" };
  }

  /** Turns a rejected fop into -errno (unexpected failures are logged: they are bugs or I/O errors). */
  private errno(op: string, err: unknown): number {
    const e = FopError.from(err, { xlator: "fuse", fop: op });
    this.stats.errors[e.code] = (this.stats.errors[e.code] ?? 0) + 1;
    if (!(err instanceof FopError) || e.code === "EIO") {
      this.log.warn({ fop: op, code: e.code, err: e.message, xlator: e.xlator }, "fop failed");
    } else {
      this.log.debug({ fop: op, code: e.code, err: e.message, xlator: e.xlator }, "fop failed");
    }
    return -e.errno;
  }

  /** Runs one fop and answers the kernel: `done(result)` on success, `cb(-errno)` on failure. */
  private run<T>(op: string, cb: (err: number) => void, fop: () => Promise<T>, done: (v: T) => void): void {
    this.stats.ops[op] = (this.stats.ops[op] ?? 0) + 1;
    let p: Promise<T>;
    try {
      p = fop();
    } catch (err) {
      cb(this.errno(op, err));
      return;
    }
    p.then(done, (err) => cb(this.errno(op, err)));
  }

  private setattr(op: string, path: string, attr: SetattrArgs, cb: (err: number) => void): void {
    this.run(op, cb, () => this.top.setattr(this.ctx(), { path }, attr), () => cb(0));
  }

  private ops(): Fuse.FuseOps {
    const top = this.top;
    const ctx = () => this.ctx();
    return {
      // A kernel LOOKUP/GETATTR is GlusterFS's lookup fop: it is where replication notices a file
      // that needs healing, so it must reach the graph as lookup, not stat.
      getattr: (path, cb) => this.run("getattr", cb, () => top.lookup(ctx(), { path }), (r) => cb(0, toFuseStat(r.stat))),
      access: (path, mode, cb) => this.run("access", cb, () => top.access(ctx(), { path }, mode), () => cb(0)),
      statfs: (path, cb) => this.run("statfs", cb, () => top.statfs(ctx(), { path }), (s) => cb(0, {
        bsize: s.bsize, frsize: s.frsize, blocks: clamp32(s.blocks), bfree: clamp32(s.bfree), bavail: clamp32(s.bavail),
        files: clamp32(s.files), ffree: clamp32(s.ffree), favail: clamp32(s.ffree), fsid: 0, flag: 0, namemax: s.namemax,
      })),
      readlink: (path, cb) => this.run("readlink", cb, () => top.readlink(ctx(), { path }), (t) => cb(0, t)),
      mknod: (path, mode, dev, cb) => this.run("mknod", cb, () => top.mknod(ctx(), { path }, mode, dev), () => cb(0)),
      mkdir: (path, mode, cb) => this.run("mkdir", cb, () => top.mkdir(ctx(), { path }, mode & 0o7777), () => cb(0)),
      unlink: (path, cb) => this.run("unlink", cb, () => top.unlink(ctx(), { path }), () => cb(0)),
      rmdir: (path, cb) => this.run("rmdir", cb, () => top.rmdir(ctx(), { path }), () => cb(0)),
      symlink: (target, path, cb) => this.run("symlink", cb, () => top.symlink(ctx(), target, { path }), () => cb(0)),
      rename: (src, dest, cb) => this.run("rename", cb, () => top.rename(ctx(), { path: src }, { path: dest }), () => {
        this.fds.renamed(src, dest);
        cb(0);
      }),
      link: (src, dest, cb) => this.run("link", cb, () => top.link(ctx(), { path: src }, { path: dest }), () => cb(0)),
      chmod: (path, mode, cb) => this.setattr("chmod", path, { mode: mode & 0o7777 }, cb),
      chown: (path, uid, gid, cb) => {
        const attr: SetattrArgs = {};
        if (uid !== ID_UNCHANGED) attr.uid = uid;
        if (gid !== ID_UNCHANGED) attr.gid = gid;
        this.setattr("chown", path, attr, cb);
      },
      truncate: (path, size, cb) => this.setattr("truncate", path, { size }, cb),
      ftruncate: (_path, handle, size, cb) =>
        this.run("ftruncate", cb, () => top.fsetattr(ctx(), this.fds.open(handle), { size }), () => cb(0)),
      // A null time is one the caller leaves alone (touch -m, touch -a).
      utimens: (path, atime, mtime, cb) => {
        const attr: SetattrArgs = {};
        if (atime !== null) attr.atimeMs = atime;
        if (mtime !== null) attr.mtimeMs = mtime;
        this.setattr("utimens", path, attr, cb);
      },
      open: (path, flags, cb) => {
        const fd = new Fd(path, flags);
        this.run("open", cb, () => top.open(ctx(), { path }, flags, fd), () => cb(0, this.fds.add(fd)));
      },
      // fuse-native does not pass create's open flags; the kernel enforces the access mode per
      // descriptor, so the volume opens read-write.
      create: (path, mode, cb) => {
        const flags = fsConstants.O_RDWR | fsConstants.O_CREAT;
        const fd = new Fd(path, flags);
        this.run("create", cb, () => top.create(ctx(), { path }, flags, mode & 0o7777, fd), () => cb(0, this.fds.add(fd)));
      },
      read: (_path, handle, buf, len, pos, cb) =>
        this.run("read", cb, () => top.read(ctx(), this.fds.open(handle), len, pos), (data) => {
          const n = Math.min(data.length, len);
          data.copy(buf, 0, 0, n);
          if (n > this.stats.largestRead) this.stats.largestRead = n;
          cb(n);
        }),
      // The graph gets a view of the kernel's buffer, valid until we answer: a translator that keeps
      // write data past its reply copies it (write-behind does; protocol/client has sent it, or
      // destroyed the socket, by the time the fop settles). One 128 KiB copy less per write.
      write: (_path, handle, buf, len, pos, cb) => {
        if (len > this.stats.largestWrite) this.stats.largestWrite = len;
        const data = len === buf.length ? buf : buf.subarray(0, len);
        this.run("write", cb, () => top.write(ctx(), this.fds.open(handle), data, pos), (n) => cb(n));
      },
      flush: (_path, handle, cb) => this.run("flush", cb, () => top.flush(ctx(), this.fds.open(handle)), () => cb(0)),
      release: (_path, handle, cb) => {
        const fd = this.fds.get(handle);
        this.fds.delete(handle);
        if (!fd) return cb(0);
        this.run("release", cb, () => top.release(ctx(), fd), () => cb(0));
      },
      fsync: (_path, datasync, handle, cb) =>
        this.run("fsync", cb, () => top.fsync(ctx(), this.fds.open(handle), datasync !== 0), () => cb(0)),
      opendir: (path, flags, cb) => {
        const fd = new Fd(path, flags, true);
        this.run("opendir", cb, () => top.opendir(ctx(), { path }, fd), () => cb(0, this.fds.add(fd)));
      },
      // fuse-native's readdir gets neither the directory handle nor an offset and fills the whole
      // listing at once, so it reads the directory through a descriptor of its own.
      readdir: (path, cb) => this.run("readdir", cb, () => this.readWholeDir(path), ({ names, stats }) => cb(0, names, stats)),
      releasedir: (_path, handle, cb) => {
        const fd = this.fds.get(handle);
        this.fds.delete(handle);
        if (!fd) return cb(0);
        this.run("releasedir", cb, () => top.releasedir(ctx(), fd), () => cb(0));
      },
      fsyncdir: (_path, datasync, handle, cb) =>
        this.run("fsyncdir", cb, () => top.fsyncdir(ctx(), this.fds.open(handle), datasync !== 0), () => cb(0)),
      // fcntl locks go to the graph (features/posix-locks on the servers), owned by the kernel's lock
      // owner of the calling process, so that mounts on other clients see them.
      lock: (_path, handle, cmd, lock, cb) => this.lock(handle, cmd, lock, cb),
      // flock: the owner is the open file (the Fd), as features/posix-locks keys it.
      flock: (_path, handle, op, cb) => {
        const F = loadFuseNative();
        const base = op & ~F.LOCK_NB;
        const kind = base === F.LOCK_SH ? "sh" : base === F.LOCK_EX ? "ex" : base === F.LOCK_UN ? "un" : undefined;
        if (!kind) return cb(-errnoNumber("EINVAL"));
        this.run("flock", cb, () => top.flock(ctx(), this.fds.open(handle), kind, (op & F.LOCK_NB) !== 0), () => cb(0));
      },
      // Replication's and the server's own xattrs are neither visible nor changeable through the mount.
      setxattr: (path, name, value, _position, flags, cb) => this.run("setxattr", cb, () => {
        const refused = refusedXattr("setxattr", name, this.options.xattrs);
        if (refused) throw refused;
        return top.setxattr(ctx(), { path }, name, Buffer.from(value), flags);
      }, () => cb(0)),
      getxattr: (path, name, _position, cb) => this.run("getxattr", cb, () => {
        const refused = refusedXattr("getxattr", name, this.options.xattrs);
        if (refused) throw refused;
        return top.getxattr(ctx(), { path }, name);
      }, (v) => cb(0, v)),
      listxattr: (path, cb) =>
        this.run("listxattr", cb, () => top.listxattr(ctx(), { path }), (names) => cb(0, visibleXattrs(names, this.options.xattrs))),
      removexattr: (path, name, cb) => this.run("removexattr", cb, () => {
        const refused = refusedXattr("removexattr", name, this.options.xattrs);
        if (refused) throw refused;
        return top.removexattr(ctx(), { path }, name);
      }, () => cb(0)),
    };
  }

  private lock(handle: number, cmd: number, lock: Fuse.FuseLock, cb: (err: number, result?: Fuse.FuseLockResult) => void): void {
    const names = (this.lockNames ??= lockNames(loadFuseNative()));
    const lkCmd = names.cmds.get(cmd);
    const type = names.types.get(lock.type);
    if (!lkCmd || !type) return cb(-errnoNumber("EINVAL"));
    const owner = lock.owner.toString(16);
    if (type === "un" && lkCmd !== "getlk" && !this.lockingOwners.has(owner)) return cb(0);
    if (type !== "un" && lkCmd !== "getlk") this.lockingOwners.add(owner);
    const flock: Flock = { type, start: lock.start, len: lock.len, pid: lock.pid, owner };
    this.run("lk", cb, () => this.top.lk(this.ctx(owner), this.fds.open(handle), lkCmd, flock), (r) => {
      if (lkCmd !== "getlk") return cb(0);
      cb(0, { type: names.typeNumbers[r.type], start: r.start, len: r.len, pid: r.pid });
    });
  }

  private async readWholeDir(path: string): Promise<{ names: string[]; stats: FuseStat[] }> {
    const ctx = this.ctx();
    const fd = new Fd(path, fsConstants.O_RDONLY, true);
    await this.top.opendir(ctx, { path }, fd);
    const names: string[] = [];
    const stats: FuseStat[] = [];
    let allStats = true;
    try {
      for (let offset = 0; ;) {
        const batch = await this.top.readdir(ctx, fd, offset, true);
        if (batch.length === 0) break;
        for (const e of batch) {
          names.push(e.name);
          if (e.stat) stats.push(toFuseStat(e.stat));
          else allStats = false;
        }
        const last = batch[batch.length - 1]!.next;
        if (last === offset) break;
        offset = last;
      }
    } finally {
      await this.top.releasedir(ctx, fd).catch(() => undefined);
    }
    // fuse-native uses the stats (for d_type) only when there is one per name.
    return { names, stats: allStats ? stats : [] };
  }
}

function clamp32(n: number): number {
  return n > UINT32_MAX ? UINT32_MAX : n;
}

/**
 * fuse-native carries stats as 32-bit fields (64-bit for size, blocks and times in ms): inode numbers
 * wider than 32 bits are folded so that distinct files rarely collide.
 */
export function toFuseStat(s: Iatt): FuseStat {
  const ino = s.ino > UINT32_MAX ? (s.ino % UINT32_MAX) + 1 : s.ino;
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink, ino, rdev: s.rdev,
    blksize: s.blksize, blocks: s.blocks,
    atime: Math.floor(s.atimeMs), mtime: Math.floor(s.mtimeMs), ctime: Math.floor(s.ctimeMs),
  };
}

// The parts of fuse-native 2.2.6 the bridge uses (the package ships no types), as patched by
// patches/fuse-native/ (utimens times may be null, lock/flock, context()). Callback conventions
// are fuse-native's, not libfuse's: `cb(0 | -errno, ...)`, except read/write which take `cb(bytes | -errno)`
// and getxattr/listxattr which fill the kernel's buffer themselves.
declare module "fuse-native" {
  namespace Fuse {
    type Cb = (err: number) => void;
    type ValCb<T> = (err: number, value?: T) => void;
    export interface FuseStat {
      mode: number; uid: number; gid: number; size: number; dev?: number; nlink: number; ino: number;
      rdev: number; blksize: number; blocks: number; atime: number; mtime: number; ctime: number;
    }
    export interface FuseStatfs {
      bsize: number; frsize: number; blocks: number; bfree: number; bavail: number; files: number;
      ffree: number; favail: number; fsid: number; flag: number; namemax: number;
    }
    export interface FuseOps {
      init?(cb: Cb): void;
      getattr?(path: string, cb: ValCb<FuseStat>): void;
      fgetattr?(path: string, fd: number, cb: ValCb<FuseStat>): void;
      access?(path: string, mode: number, cb: Cb): void;
      statfs?(path: string, cb: ValCb<FuseStatfs>): void;
      readlink?(path: string, cb: ValCb<string>): void;
      mknod?(path: string, mode: number, dev: number, cb: Cb): void;
      mkdir?(path: string, mode: number, cb: Cb): void;
      unlink?(path: string, cb: Cb): void;
      rmdir?(path: string, cb: Cb): void;
      symlink?(target: string, path: string, cb: Cb): void;
      rename?(src: string, dest: string, cb: Cb): void;
      link?(src: string, dest: string, cb: Cb): void;
      chmod?(path: string, mode: number, cb: Cb): void;
      chown?(path: string, uid: number, gid: number, cb: Cb): void;
      truncate?(path: string, size: number, cb: Cb): void;
      ftruncate?(path: string, fd: number, size: number, cb: Cb): void;
      /** Times in ms since the epoch; null leaves that time unchanged (touch -m / touch -a). */
      utimens?(path: string, atime: number | null, mtime: number | null, cb: Cb): void;
      open?(path: string, flags: number, cb: ValCb<number>): void;
      create?(path: string, mode: number, cb: ValCb<number>): void;
      read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
      write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
      flush?(path: string, fd: number, cb: Cb): void;
      release?(path: string, fd: number, cb: Cb): void;
      fsync?(path: string, datasync: number, fd: number, cb: Cb): void;
      opendir?(path: string, flags: number, cb: ValCb<number>): void;
      readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
      releasedir?(path: string, fd: number, cb: Cb): void;
      fsyncdir?(path: string, datasync: number, fd: number, cb: Cb): void;
      setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
      getxattr?(path: string, name: string, position: number, cb: ValCb<Buffer | null>): void;
      listxattr?(path: string, cb: ValCb<string[]>): void;
      removexattr?(path: string, name: string, cb: Cb): void;
      /** fcntl locks: cmd is Fuse.F_GETLK / F_SETLK / F_SETLKW; getlk answers the conflicting lock (type F_UNLCK: none). */
      lock?(path: string, fd: number, cmd: number, lock: FuseLock, cb: ValCb<FuseLockResult>): void;
      /** flock(2): op is Fuse.LOCK_SH / LOCK_EX / LOCK_UN, | LOCK_NB for "don't wait". */
      flock?(path: string, fd: number, op: number, cb: Cb): void;
    }
    export interface FuseLock {
      /** Fuse.F_RDLCK / F_WRLCK / F_UNLCK */
      type: number;
      start: number;
      /** 0: to the end of the file. */
      len: number;
      pid: number;
      /** The kernel's lock owner (one per process's file table). */
      owner: bigint;
    }
    export type FuseLockResult = Pick<FuseLock, "type" | "start" | "len" | "pid">;
    /** The caller of the request being handled (fuse_get_context). */
    export interface FuseContext {
      uid: number;
      gid: number;
      pid: number;
    }
    export interface FuseOpts {
      displayFolder?: boolean; debug?: boolean; force?: boolean; mkdir?: boolean; allowOther?: boolean;
      allowRoot?: boolean; autoUnmount?: boolean; defaultPermissions?: boolean; maxRead?: number;
      fsname?: string; subtype?: string; kernelCache?: boolean; autoCache?: boolean; entryTimeout?: number;
      attrTimeout?: number; acAttrTimeout?: number; timeout?: number | false;
      /** patches/fuse-native/0005: attribute timeouts (s) for directories and single-link files. */
      attrTimeoutDir?: number; attrTimeoutSingleLink?: number;
    }
  }
  class Fuse {
    constructor(mnt: string, ops: Fuse.FuseOps, opts?: Fuse.FuseOpts);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    /** Who made the request being handled; valid only synchronously inside a handler, else null. */
    context(): Fuse.FuseContext | null;
    static readonly F_GETLK: number;
    static readonly F_SETLK: number;
    static readonly F_SETLKW: number;
    static readonly F_RDLCK: number;
    static readonly F_WRLCK: number;
    static readonly F_UNLCK: number;
    static readonly LOCK_SH: number;
    static readonly LOCK_EX: number;
    static readonly LOCK_NB: number;
    static readonly LOCK_UN: number;
    /** Internal: the `-o...` string handed to libfuse. */
    _fuseOptions(): string;
    /** Internal handlers (signal answers the kernel: result, then the buffer handed in). */
    _op_getxattr(signal: (result: number, buf: ArrayBufferLike) => void, path: string, name: string, valueBuf: Buffer, position: number): void;
    _op_listxattr(signal: (result: number, buf: ArrayBufferLike) => void, path: string, listBuf: Buffer): void;
  }
  export = Fuse;
}

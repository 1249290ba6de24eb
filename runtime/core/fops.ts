import type {
  CallCtx, DirEntry, EntrylkCmd, EntryRemoved, Fd, Flock, Iatt, LkCmd, Loc, LookupResult, SetattrArgs, Statfs, Xdata,
} from "./types";

/**
 * The one fop table shared by every translator: enough for a complete POSIX filesystem over FUSE,
 * plus the internal fops replication needs (inodelk, entrylk, xattrop).
 * Every fop is async and fails by rejecting with a FopError (an errno).
 */
export interface Fops {
  lookup(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<LookupResult>;
  stat(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Iatt>;
  fstat(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<Iatt>;
  setattr(ctx: CallCtx, loc: Loc, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt>;
  fsetattr(ctx: CallCtx, fd: Fd, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt>;
  /** mask: F_OK / R_OK | W_OK | X_OK */
  access(ctx: CallCtx, loc: Loc, mask: number, xdata?: Xdata): Promise<void>;
  readlink(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<string>;
  mknod(ctx: CallCtx, loc: Loc, mode: number, rdev: number, xdata?: Xdata): Promise<Iatt>;
  mkdir(ctx: CallCtx, loc: Loc, mode: number, xdata?: Xdata): Promise<Iatt>;
  unlink(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined>;
  rmdir(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined>;
  symlink(ctx: CallCtx, target: string, loc: Loc, xdata?: Xdata): Promise<Iatt>;
  rename(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<void>;
  link(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<Iatt>;
  /** Creates and opens; the caller made `fd` and it is now open. flags as open(2) (O_CREAT implied). */
  create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt>;
  open(ctx: CallCtx, loc: Loc, flags: number, fd: Fd, xdata?: Xdata): Promise<void>;
  read(ctx: CallCtx, fd: Fd, size: number, offset: number, xdata?: Xdata): Promise<Buffer>;
  /** Resolves to the number of bytes written (all of them, or it rejects). */
  write(ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number>;
  /** Every close(2) of a descriptor: releases the owner's locks; write-behind reports deferred errors here. */
  flush(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void>;
  /** The last close of the fd: frees it everywhere. Never rejects in practice (errors are logged). */
  release(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void>;
  fsync(ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void>;
  opendir(ctx: CallCtx, loc: Loc, fd: Fd, xdata?: Xdata): Promise<void>;
  /** Every entry after `offset` (0 = from the start) to the end of the listing, including "." and ".."; withStat = readdirplus. */
  readdir(ctx: CallCtx, fd: Fd, offset: number, withStat: boolean, xdata?: Xdata): Promise<DirEntry[]>;
  releasedir(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void>;
  fsyncdir(ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void>;
  statfs(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Statfs>;
  /** One xattr's value; ENODATA if absent. */
  getxattr(ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<Buffer>;
  /** flags: 0, XATTR_CREATE (1) or XATTR_REPLACE (2). */
  setxattr(ctx: CallCtx, loc: Loc, name: string, value: Buffer, flags: number, xdata?: Xdata): Promise<void>;
  listxattr(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<string[]>;
  removexattr(ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<void>;
  fallocate(ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number, xdata?: Xdata): Promise<void>;
  /** fcntl locks. getlk resolves to the conflicting lock, or one of type "un" when there is none. */
  lk(ctx: CallCtx, fd: Fd, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock>;
  /** flock(2): "sh"/"ex"/"un"; nonblock fails with EWOULDBLOCK (EAGAIN) instead of waiting. */
  flock(ctx: CallCtx, fd: Fd, op: "sh" | "ex" | "un", nonblock: boolean, xdata?: Xdata): Promise<void>;
  /** Internal byte-range lock in a named domain (replication's transaction lock). */
  inodelk(ctx: CallCtx, domain: string, loc: Loc, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock>;
  /** Internal lock on a name in a directory (basename null = the whole directory). */
  entrylk(ctx: CallCtx, domain: string, loc: Loc, basename: string | null, cmd: EntrylkCmd, type: "rd" | "wr", xdata?: Xdata): Promise<void>;
  /**
   * Atomic changes to xattrs holding big-endian int32 arrays ("add32": element-wise add; a missing
   * xattr counts as zeros). Resolves to the new values. Used for AFR's changelog.
   */
  xattrop(ctx: CallCtx, loc: Loc, op: "add32", xattrs: Record<string, Buffer>, xdata?: Xdata): Promise<Record<string, Buffer>>;
  /**
   * A checksum (sha256) of the file's bytes [offset, offset+len) — fewer if the file ends first — computed
   * where the data is: data heal compares blocks without moving them over the network.
   */
  rchecksum(ctx: CallCtx, fd: Fd, offset: number, len: number, xdata?: Xdata): Promise<Buffer>;
}

export type FopName = keyof Fops;

/** Every fop, in one list (used for pass-through defaults, the wire protocol and metrics). */
export const FOP_NAMES: readonly FopName[] = [
  "lookup", "stat", "fstat", "setattr", "fsetattr", "access", "readlink", "mknod", "mkdir", "unlink",
  "rmdir", "symlink", "rename", "link", "create", "open", "read", "write", "flush", "release", "fsync",
  "opendir", "readdir", "releasedir", "fsyncdir", "statfs", "getxattr", "setxattr", "listxattr",
  "removexattr", "fallocate", "lk", "flock", "inodelk", "entrylk", "xattrop", "rchecksum",
] as const;

/** Fops added after the first protocol version: a server that does not list them in its handshake lacks them. */
export const LATER_FOPS: ReadonlySet<FopName> = new Set<FopName>(["rchecksum"]);

/** Fops whose first argument after ctx is an Fd (protocol/client must map it to a remote fd). */
export const FD_FOPS: ReadonlySet<FopName> = new Set<FopName>([
  "fstat", "fsetattr", "read", "write", "flush", "release", "fsync", "readdir", "releasedir", "fsyncdir",
  "fallocate", "lk", "flock", "rchecksum",
]);

/**
 * The kernel's FUSE protocol (linux/fuse.h, protocol 7.31+): opcodes, flags and the layouts of the
 * structures the bridge reads and writes. Little-endian, 64-bit aligned, as the kernel lays them out.
 */

export const FUSE_KERNEL_VERSION = 7;
/** The minor version we speak; the kernel's own is used when it is lower (it must be >= 31: max_pages). */
export const FUSE_KERNEL_MINOR_VERSION = 38;
export const FUSE_MIN_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export enum Op {
  LOOKUP = 1, FORGET = 2, GETATTR = 3, SETATTR = 4, READLINK = 5, SYMLINK = 6, MKNOD = 8, MKDIR = 9,
  UNLINK = 10, RMDIR = 11, RENAME = 12, LINK = 13, OPEN = 14, READ = 15, WRITE = 16, STATFS = 17,
  RELEASE = 18, FSYNC = 20, SETXATTR = 21, GETXATTR = 22, LISTXATTR = 23, REMOVEXATTR = 24, FLUSH = 25,
  INIT = 26, OPENDIR = 27, READDIR = 28, RELEASEDIR = 29, FSYNCDIR = 30, GETLK = 31, SETLK = 32,
  SETLKW = 33, ACCESS = 34, CREATE = 35, INTERRUPT = 36, BMAP = 37, DESTROY = 38, IOCTL = 39, POLL = 40,
  NOTIFY_REPLY = 41, BATCH_FORGET = 42, FALLOCATE = 43, READDIRPLUS = 44, RENAME2 = 45, LSEEK = 46,
}

/** Names for statistics and logs (the names the libfuse engine counts under: fcntl/flock requests are "lk"). */
export const OP_NAMES: Record<number, string> = {
  1: "lookup", 2: "forget", 3: "getattr", 4: "setattr", 5: "readlink", 6: "symlink", 8: "mknod", 9: "mkdir",
  10: "unlink", 11: "rmdir", 12: "rename", 13: "link", 14: "open", 15: "read", 16: "write", 17: "statfs",
  18: "release", 20: "fsync", 21: "setxattr", 22: "getxattr", 23: "listxattr", 24: "removexattr", 25: "flush",
  26: "init", 27: "opendir", 28: "readdir", 29: "releasedir", 30: "fsyncdir", 31: "lk", 32: "lk",
  33: "lk", 34: "access", 35: "create", 36: "interrupt", 37: "bmap", 38: "destroy", 39: "ioctl", 40: "poll",
  41: "notify_reply", 42: "batch_forget", 43: "fallocate", 44: "readdirplus", 45: "rename2", 46: "lseek",
};

export enum InitFlag {
  ASYNC_READ = 1 << 0,
  POSIX_LOCKS = 1 << 1,
  ATOMIC_O_TRUNC = 1 << 3,
  BIG_WRITES = 1 << 5,
  FLOCK_LOCKS = 1 << 10,
  AUTO_INVAL_DATA = 1 << 12,
  DO_READDIRPLUS = 1 << 13,
  READDIRPLUS_AUTO = 1 << 14,
  ASYNC_DIO = 1 << 15,
  PARALLEL_DIROPS = 1 << 18,
  MAX_PAGES = 1 << 22,
}

export enum NotifyCode { INVAL_INODE = 2, INVAL_ENTRY = 3 }

export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;

export const FUSE_GETATTR_FH = 1 << 0;
export const FUSE_LK_FLOCK = 1 << 0;
export const FUSE_FSYNC_FDATASYNC = 1 << 0;

/** fcntl lock types as the kernel sends them. */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
/** The largest offset: a lock's end "to the end of the file". */
export const OFFSET_MAX = 0x7fffffffffffffffn;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
export const OPEN_OUT_SIZE = 16;
export const INIT_OUT_SIZE = 64;
export const STATFS_OUT_SIZE = 80;
export const DIRENT_HEADER_SIZE = 24;

/** Requests are at most max_write of data plus their headers (the kernel wants room for a page more). */
export const REQUEST_OVERHEAD = 4096;

/** One kernel request: its header, and its argument bytes (a view of the read buffer). */
export interface Request {
  opcode: number;
  /** The kernel's request id, as read (8 bytes): copied into the reply as is. */
  uniqueLo: number;
  uniqueHi: number;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** The argument bytes after the header. */
  arg: Buffer;
  /** KernelCaches.epoch when what the reply describes was fetched (bridge.ts, run). */
  epoch?: number;
}

export function u64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x100000000;
}

export function writeU64(buf: Buffer, n: number, off: number): void {
  const lo = n % 0x100000000;
  buf.writeUInt32LE(lo, off);
  buf.writeUInt32LE((n - lo) / 0x100000000, off + 4);
}

export function parseRequest(buf: Buffer, n: number): Request {
  const len = buf.readUInt32LE(0);
  const extlen = buf.readUInt16LE(36) * 8;
  return {
    opcode: buf.readUInt32LE(4),
    uniqueLo: buf.readUInt32LE(8),
    uniqueHi: buf.readUInt32LE(12),
    nodeid: u64(buf, 16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    arg: buf.subarray(IN_HEADER_SIZE, Math.min(len, n) - extlen),
  };
}

/** A NUL-terminated name at `off`, and where the next field starts. */
export function cString(buf: Buffer, off: number): [string, number] {
  let end = buf.indexOf(0, off);
  if (end < 0) end = buf.length;
  return [buf.toString("utf8", off, end), end + 1];
}

/** The reply header: length, -errno, the request's id. */
export function writeOutHeader(b: Buffer, req: Request, bodyLen: number, errno: number): void {
  b.writeUInt32LE(OUT_HEADER_SIZE + bodyLen, 0);
  b.writeInt32LE(errno === 0 ? 0 : -errno, 4);
  b.writeUInt32LE(req.uniqueLo, 8);
  b.writeUInt32LE(req.uniqueHi, 12);
}

/** A header alone (an error, or followed by a body buffer of bodyLen bytes in the same writev). */
export function outHeader(req: Request, bodyLen: number, errno = 0): Buffer {
  const h = Buffer.allocUnsafe(OUT_HEADER_SIZE);
  writeOutHeader(h, req, bodyLen, errno);
  return h;
}

/** A reply with its body: header and body in one buffer (small replies). */
export function replyBuffer(req: Request, bodyLen: number): Buffer {
  const b = Buffer.allocUnsafe(OUT_HEADER_SIZE + bodyLen);
  writeOutHeader(b, req, bodyLen, 0);
  return b;
}

/** A notification (unique 0, error = the notify code) with a body of bodyLen bytes. */
export function notifyBuffer(code: NotifyCode, bodyLen: number): Buffer {
  const b = Buffer.alloc(OUT_HEADER_SIZE + bodyLen);
  b.writeUInt32LE(OUT_HEADER_SIZE + bodyLen, 0);
  b.writeInt32LE(code, 4);
  return b;
}

/** Attributes as the kernel wants them (fuse_attr). Times come in milliseconds. */
export interface KernelAttr {
  ino: number;
  size: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

function writeTime(buf: Buffer, ms: number, secOff: number, nsecOff: number): void {
  const sec = Math.floor(ms / 1000);
  writeU64(buf, sec < 0 ? 0 : sec, secOff);
  buf.writeUInt32LE(Math.min(999_999_999, Math.max(0, Math.round((ms - sec * 1000) * 1e6))), nsecOff);
}

export function writeAttr(buf: Buffer, a: KernelAttr, off: number): void {
  writeU64(buf, a.ino, off);
  writeU64(buf, a.size, off + 8);
  writeU64(buf, a.blocks, off + 16);
  writeTime(buf, a.atimeMs, off + 24, off + 48);
  writeTime(buf, a.mtimeMs, off + 32, off + 52);
  writeTime(buf, a.ctimeMs, off + 40, off + 56);
  buf.writeUInt32LE(a.mode >>> 0, off + 60);
  buf.writeUInt32LE(a.nlink >>> 0, off + 64);
  buf.writeUInt32LE(a.uid >>> 0, off + 68);
  buf.writeUInt32LE(a.gid >>> 0, off + 72);
  buf.writeUInt32LE(a.rdev >>> 0, off + 76);
  buf.writeUInt32LE(a.blksize >>> 0, off + 80);
  buf.writeUInt32LE(0, off + 84);
}

/** A timeout in seconds as (seconds, nanoseconds). */
export function writeTimeout(buf: Buffer, seconds: number, secOff: number, nsecOff: number): void {
  const s = Math.floor(seconds);
  writeU64(buf, s, secOff);
  buf.writeUInt32LE(Math.round((seconds - s) * 1e9), nsecOff);
}

/** fuse_entry_out at `off`: node id, generation 0 (ids are never reused in a mount), timeouts, attributes. */
export function writeEntry(buf: Buffer, off: number, nodeid: number, entryTimeout: number, attrTimeout: number, a: KernelAttr): void {
  writeU64(buf, nodeid, off);
  writeU64(buf, 0, off + 8);
  writeTimeout(buf, entryTimeout, off + 16, off + 32);
  writeTimeout(buf, attrTimeout, off + 24, off + 36);
  writeAttr(buf, a, off + 40);
}

export function direntSize(nameLen: number, plus: boolean): number {
  const raw = (plus ? ENTRY_OUT_SIZE : 0) + DIRENT_HEADER_SIZE + nameLen;
  return (raw + 7) & ~7;
}

/** DT_* of a mode's file type (the kernel fills d_type from it). */
export function direntType(mode: number): number {
  return (mode >>> 12) & 0o17;
}

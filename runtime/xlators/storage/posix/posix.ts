import * as fs from "node:fs";
import { constants as FS, existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync, type Stats } from "node:fs";
import * as fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { promisify } from "node:util";
import { createHash, randomUUID } from "node:crypto";
import { FopError } from "../../../core/errors";
import type {
  CallCtx, DirEntry, EntryRemoved, Fd, Iatt, Loc, LookupResult, SetattrArgs, Statfs, Xdata,
} from "../../../core/types";
import { XDATA } from "../../../core/types";
import { Xlator, type ReconfigureResult, type XlatorInit } from "../../../core/xlator";
import { gfidFromBytes, gfidToBytes, newGfid, parseGfidReq, ROOT_GFID } from "./gfid";
import { toIatt } from "./iatt";
import { KeyedMutex } from "../../../core/keyed-mutex";
import { BrickPaths, INTERNAL_DIR, type Resolved } from "./paths";
import { openFlagNames } from "./open-flags";
import { GfidsByInode } from "./gfids-by-inode";
import { PendingIndex } from "./pending-index";
import { transientBuffer } from "../../../core/transient-buffers";
import { PrecreatedInodes } from "./precreated-inodes";
import { UnlinkedInodes } from "./unlinked-inodes";
import { FopActivity } from "./fop-activity";
import {
  AFR_PREFIX, GFID_XATTR, getXattrSync, hasXattr, isInternalXattr, listXattrsSync, removeXattrSync, setXattrSync,
} from "./xattrs";
import { fallocate, mknodSpecial, mksock } from "./tools";

export interface PosixOptions {
  directory: string;
  fsync: boolean;
  "brick-id"?: string;
  /** Absent: none (a volfile gets the schema's default). */
  "precreated-inodes"?: number;
  /** Absent: none, every unlink frees its file itself (a volfile gets the schema's default). */
  "unlinked-inodes"?: number;
  /** Absent: never started early (a volfile gets the schema's default). */
  "writeback-after"?: number;
}

/** Virtual xattrs of the root that report brick state (readable over the network). */
export const INDEX_XATTR = "trusted.gha.index";
export const BRICK_ID_XATTR = "trusted.gha.brick-id";
export const CHANGELOG_KEYS_XATTR = "trusted.gha.changelog-keys";
/** The largest range one rchecksum reads (heal blocks are far smaller). */
const RCHECKSUM_MAX = 16 << 20;

/** A directory's default ACL: a file made in it inherits it, which only the kernel's own create does. */
const DEFAULT_ACL_XATTR = "system.posix_acl_default";
/** A brick labelled by SELinux: new files get labels from policy, which only the kernel's own create does. */
const SELINUX_XATTR = "security.selinux";
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFSOCK = 0o140000;
const S_ISGID = 0o2000;
/** Flags a client may not pass to open: creation goes through create (gfid), O_DIRECT needs aligned buffers. */
/** Open fds listed by dump() (the count is always exact). */
const DUMP_FDS_MAX = 100;
const OPEN_STRIPPED = FS.O_CREAT | FS.O_EXCL | FS.O_DIRECT | FS.O_NOCTTY;
/** Linux O_PATH (node's fs.constants lacks it): a handle naming an inode without opening it for I/O. */
const O_PATH = 0o10000000;

/**
 * chmod(2) follows a symlink in the last component; this never does: it pins the entry with
 * O_PATH|O_NOFOLLOW and changes the pinned inode through its /proc link. Symlinks are left alone
 * (Linux cannot chmod them), so a file swapped for a symlink cannot redirect the change.
 */
function chmodNoFollow(real: string, mode: number): void {
  const h = fs.openSync(real, O_PATH | FS.O_NOFOLLOW);
  try {
    if (fs.fstatSync(h).isSymbolicLink()) return;
    fs.chmodSync(`/proc/self/fd/${h}`, mode);
  } finally {
    fs.closeSync(h);
  }
}

/*
 * Synchronous and asynchronous calls. Metadata calls (stat, xattrs, open, close, link, rename, ...)
 * are made synchronously: on a brick whose inodes the kernel has cached each takes a few
 * microseconds, while a round trip through libuv's thread pool costs tens (and more on a busy
 * machine), and a fop makes several of them (resolve the parent, lstat, read the gfid, ...): done
 * asynchronously they were most of a fop's latency. Calls that move data or may take long (read,
 * write, fsync, truncate, listing a directory) stay asynchronous, so they overlap each other and
 * the event loop keeps serving while they run.
 */
const readAsync = promisify(fs.read);
const writeAsync = promisify(fs.write);
/** Writes up to this size are made on the event loop (see write). */
const SYNC_WRITE_MAX = 65536;
const fsyncAsync = promisify(fs.fsync);
const fdatasyncAsync = promisify(fs.fdatasync);
const ftruncateAsync = promisify(fs.ftruncate);
const openAsync = promisify(fs.open);

/** The owner the kernel gives an entry made by `ctx` in `parent`: the caller, the directory's group if it is setgid. */
function ownerOfNew(ctx: CallCtx, parent: Stats): { uid: number; gid: number } {
  return { uid: ctx.uid ?? 0, gid: parent.mode & S_ISGID ? parent.gid : ctx.gid ?? 0 };
}

/**
 * Opens a file for a client: synchronously, unless it is something whose open(2) may wait (a FIFO
 * without its other end, a device): the synchronous try uses O_NONBLOCK, which returns at once for
 * those (and means nothing for regular files and directories); they are then opened again as asked,
 * off the event loop.
 */
async function openForClient(real: string, flags: number, mode?: number): Promise<{ handle: number; st: Stats }> {
  let handle: number | undefined;
  try {
    handle = fs.openSync(real, flags | FS.O_NONBLOCK, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENXIO") throw err; // ENXIO: a FIFO opened for writing, no reader yet
  }
  if (handle !== undefined) {
    let st: Stats;
    try {
      st = fs.fstatSync(handle);
    } catch (err) {
      fs.closeSync(handle);
      throw err;
    }
    if (st.isFile() || st.isDirectory() || flags & FS.O_NONBLOCK) return { handle, st };
    fs.closeSync(handle);
  }
  handle = await openAsync(real, flags, mode);
  try {
    return { handle, st: fs.fstatSync(handle) };
  } catch (err) {
    fs.closeSync(handle);
    throw err;
  }
}

/** Entries of a readdirplus stat'ed at once (through the thread pool, once the directory is found cold). */
const READDIRPLUS_PARALLEL = 64;
/**
 * A listing's lstats (with their gfids) taking longer than this waited for the disk, and the rest go
 * through the thread pool: being preempted for a few ms is no reason; an HDD's inode reads (~5 ms per
 * 16 inodes) are. (Exported for tests.)
 */
export const LISTING_DISK_WAIT = { baseMs: 2, perEntryMs: 0.05 };
/** Entries whose xattrs are read between two turns of the event loop. */
const READDIRPLUS_SLICE = 256;

/** Per-fd state in fd.ctx. */
/** A file's trusted.afr.* values as this brick last wrote them, and its inode (see Posix.knownMarks). */
interface KnownMarks {
  marks: Map<string, Buffer>;
  dev: number;
  ino: number;
}

interface PosixFd {
  /** The open file descriptor (closed by closeFd). */
  handle: number;
  gfid: string;
  isDir: boolean;
  /** readdir snapshot: names in order, "." and ".." first (taken at opendir and at offset 0). */
  entries?: string[];
  /** Bytes written through this fd since its data was last sent to disk (writeback-after). */
  unsyncedBytes?: number;
  /** The background datasync under way (writeback-after). */
  writeback?: Promise<void>;
  /** What a background datasync failed with: the kernel told that datasync alone, so this fd's next fsync reports it. */
  writebackError?: NodeJS.ErrnoException;
}

/** Fops that make nothing when they fail with ENOSPC, so they can go again once space is freed (guard). */
const AGAIN_WHEN_FREED = new Set(["write", "create", "mknod", "mkdir", "symlink", "link", "rename", "fallocate", "setxattr"]);

/**
 * storage/posix: the brick. Every fop of the table except the lock fops (features/posix-locks).
 *
 * Permissions: the server runs as root and, like GlusterFS's posix, does not enforce permission
 * bits on fops; the FUSE bridge is expected to mount with `default_permissions` (the kernel checks
 * modes against the attributes we return). ctx.uid/gid are honoured where the result is visible:
 * new files, directories, nodes and symlinks are owned by ctx.uid and ctx.gid (or the parent's
 * group when it has setgid, as the kernel does), and `access` checks the mode bits for ctx.uid/gid.
 */
export class Posix extends Xlator {
  declare options: Record<string, unknown> & PosixOptions;
  readonly paths: BrickPaths;
  readonly brickId: string;
  readonly index: PendingIndex;
  private readonly gfidLocks = new KeyedMutex();
  /**
   * The changelog counters of files made here with initial ones (XDATA.initialXattrs), while an fd of
   * the create is open and no xattrop has touched them: all the file's trusted.afr.* xattrs, so the
   * post-op riding on its close (XDATA.flushXattrop) is one write of each, with no read and no list.
   */
  private readonly knownMarks = new Map<string, KnownMarks>();
  private readonly gfidsByInode = new GfidsByInode();
  /** Writes in the thread pool now (big ones): while any is, small writes go there too (see write). */
  private pooledWrites = 0;
  /** Writes made on the event loop / in the thread pool, for the statedump. */
  private readonly writesMade = { onLoop: 0, inPool: 0 };
  /** Background datasyncs started (writeback-after). */
  private writebacks = 0;
  private readonly openFds = new Set<Fd>();
  private readonly internalHandle: Promise<FileHandle>;
  private precreated: PrecreatedInodes | undefined;
  private readonly unlinked: UnlinkedInodes;
  /** When the last fop came: the pools' background work waits for a quiet brick. */
  private readonly activity = new FopActivity();

  constructor(init: XlatorInit<PosixOptions>) {
    super(init);
    const dir = init.options.directory;
    if (typeof dir !== "string" || !dir.startsWith("/")) throw this.configError("directory must be an absolute path", "directory");
    try {
      mkdirSync(dir, { recursive: true, mode: 0o777 });
      if (!statSync(dir).isDirectory()) throw this.configError(`${dir} is not a directory`, "directory");
      const root = realpathSync(dir);
      this.paths = new BrickPaths(root);
      mkdirSync(`${root}/${INTERNAL_DIR}/tmp`, { recursive: true, mode: 0o700 });
      const existing = getXattrSync(root, GFID_XATTR);
      if (!existing || gfidFromBytes(existing) !== ROOT_GFID) setXattrSync(root, GFID_XATTR, gfidToBytes(ROOT_GFID));
      this.brickId = init.options["brick-id"] ?? this.storedBrickId(root);
      this.index = new PendingIndex(`${root}/${INTERNAL_DIR}/indices/xattrop`);
      this.dropCleanIndexEntries(root);
      this.precreated = this.precreatedInodes(init.options["precreated-inodes"] ?? 0);
      this.unlinked = new UnlinkedInodes(`${root}/${INTERNAL_DIR}/unlink`, init.options["unlinked-inodes"] ?? 0, this.activity, (err, path) => {
        this.log.warn({ msgid: "POSIX_UNLINK_FAILED", code: err.code }, `cannot free unlinked file ${path}: ${err.message}`);
      });
    } catch (err) {
      if (err instanceof Error && err.name === "ConfigError") throw err;
      throw this.configError(`cannot prepare brick ${dir}: ${(err as Error).message}`, "directory");
    }
    // Unix sockets are bound through this short /proc link (bind paths are limited to 107 bytes).
    this.internalHandle = fsp.open(`${this.paths.internal}/tmp`, FS.O_RDONLY | FS.O_DIRECTORY);
    this.internalHandle.catch(() => undefined);
  }

  /**
   * Entries found at start whose file has every trusted.afr.* counter at zero: cleared just before the
   * process stopped (removal reaches the disk up to a second late, pending-index.ts). Entries whose path
   * no longer names their file stay: the heal crawl sorts them out.
   */
  private dropCleanIndexEntries(root: string): void {
    for (const { gfid, path } of this.index.list()) {
      const real = path === "/" ? root : `${root}${path}`;
      try {
        const id = getXattrSync(real, GFID_XATTR);
        if (!id || gfidFromBytes(id) !== gfid) continue;
        if (!pendingOnDisk(real)) void this.index.remove(gfid);
      } catch {
        // gone or unreadable: left to the crawl
      }
    }
  }

  private precreatedInodes(target: number): PrecreatedInodes | undefined {
    if (target <= 0 || hasXattr(this.paths.root, SELINUX_XATTR)) return undefined;
    return new PrecreatedInodes(`${this.paths.internal}/precreated`, target, this.activity, (err) => {
      this.log.warn({ msgid: "POSIX_PRECREATE_FAILED", code: err.code }, `cannot make an inode ahead of time: ${err.message}`);
    });
  }

  private storedBrickId(root: string): string {
    const file = `${root}/${INTERNAL_DIR}/brick-id`;
    if (existsSync(file)) {
      const id = readFileSync(file, "utf8").trim();
      if (id) return id;
    }
    const id = randomUUID();
    writeFileSync(file, id + "\n");
    return id;
  }

  override async stop(): Promise<void> {
    this.precreated?.stop();
    this.unlinked.drain();
    this.index.sweep();
    for (const fd of [...this.openFds]) await this.closeFd(fd);
    this.paths.close();
    await (await this.internalHandle.catch(() => undefined))?.close().catch(() => undefined);
  }

  override isUp(): boolean {
    return true;
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied: string[] = [];
    const needsRestart: string[] = [];
    for (const k of Object.keys(options)) {
      if (JSON.stringify(options[k]) === JSON.stringify(this.options[k])) continue;
      if (k === "fsync") {
        this.options.fsync = options[k] as boolean;
        applied.push(k);
      } else if (k === "precreated-inodes") {
        const target = options[k] as number;
        this.options[k] = target;
        if (this.precreated && target > 0) this.precreated.setTarget(target);
        else {
          this.precreated?.setTarget(0);
          this.precreated?.stop();
          this.precreated = this.precreatedInodes(target);
        }
        applied.push(k);
      } else if (k === "unlinked-inodes") {
        this.options[k] = this.unlinked.limit = options[k] as number;
        applied.push(k);
      } else if (k === "writeback-after") {
        this.options[k] = options[k] as number;
        applied.push(k);
      } else needsRestart.push(k);
    }
    return { applied, needsRestart };
  }

  override dump(): Record<string, unknown> {
    return {
      directory: this.paths.root,
      brickId: this.brickId,
      openFds: this.openFds.size,
      // Which files are open (a statedump is for "who holds this file open?"), bounded for huge counts.
      openFdList: [...this.openFds].slice(0, DUMP_FDS_MAX).map((fd) => ({
        path: fd.path, flags: openFlagNames(fd.flags), gfid: fd.gfid, ...(fd.get<PosixFd>(this)?.isDir ? { dir: true } : {}),
      })),
      pendingIndex: this.index.size,
      fsync: this.options.fsync,
      gfidsByInode: { kept: this.gfidsByInode.size, hits: this.gfidsByInode.hits, misses: this.gfidsByInode.misses },
      precreatedInodes: this.precreated?.dump() ?? null,
      unlinkedInodes: this.unlinked.dump(),
      writes: { ...this.writesMade },
      writebacks: this.writebacks,
    };
  }

  // ---- helpers ----

  /**
   * Runs a fop body with a path resolver whose pinned parent directories are released at the end;
   * anything thrown becomes a FopError naming this brick, the fop and the client path.
   */
  private async guard<T>(fop: string, what: string, body: (resolve: (path: string) => Promise<Resolved>) => Promise<T>): Promise<T> {
    const held: Resolved[] = [];
    this.activity.busy();
    const resolve = async (path: string) => {
      const r = await this.paths.resolve(path);
      held.push(r);
      return r;
    };
    try {
      try {
        return await body(resolve);
      } catch (err) {
        // The disk is full, but unlinked files still hold space that is the clients' (statfs counts
        // it free): free them now and go again — for the fops that can: what failed with ENOSPC made
        // nothing (a write that got partly in writes the same bytes at the same place again). Not an
        // xattrop: its counters add up, and the first may have landed.
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC" || !AGAIN_WHEN_FREED.has(fop) || this.unlinked.drain() === 0) throw err;
        this.log.info({ msgid: "POSIX_DISK_FULL_FREED", fop }, "disk full: freed the unlinked files waiting, and tried again");
        return await body(resolve);
      }
    } catch (err) {
      const e = FopError.from(err);
      throw new FopError(e.code, `${fop} ${what}: ${e.code}`, { xlator: this.name, fop });
    } finally {
      for (const r of held) await r.release();
    }
  }

  private fail(code: string, fop: string, msg: string): FopError {
    return new FopError(code, msg, { xlator: this.name, fop });
  }

  /** The gfid of an entry on disk; one is assigned if the file was made behind our back. */
  /**
   * A fop that names its file by path and gfid changes only that file: when another client has since
   * put another file under the name, ESTALE (the kernel looks the name up again) — not a chmod,
   * truncate or xattr change of the other file.
   */
  private async sameFile(fop: string, loc: Loc, real: string): Promise<Stats | undefined> {
    if (!loc.gfid || real === this.paths.root) return undefined;
    const st = fs.lstatSync(real);
    if ((await this.gfidOf(real, st)) !== loc.gfid) throw this.fail("ESTALE", fop, `${loc.path} is now another file`);
    return st;
  }

  private async gfidOf(real: string, st: Stats): Promise<string> {
    if (real === this.paths.root) return ROOT_GFID;
    const known = this.gfidsByInode.get(st);
    if (known) return known;
    // Synchronous: the caller has just stat'ed the entry, so its inode is in the kernel's cache and
    // this is a few microseconds, less than a round trip through the thread pool (nearly every fop
    // comes here).
    const b = getXattrSync(real, GFID_XATTR);
    if (b && b.length === 16) {
      const gfid = gfidFromBytes(b);
      const after = fs.lstatSync(real, { throwIfNoEntry: false });
      if (after) this.gfidsByInode.set(st, after, gfid);
      return gfid;
    }
    return this.gfidLocks.run(`ino:${st.dev}:${st.ino}`, async () => {
      const again = getXattrSync(real, GFID_XATTR);
      if (again && again.length === 16) return gfidFromBytes(again);
      const gfid = newGfid();
      setXattrSync(real, GFID_XATTR, gfidToBytes(gfid));
      return gfid;
    });
  }

  private async statOf(real: string): Promise<Iatt> {
    const st = fs.lstatSync(real);
    return toIatt(st, await this.gfidOf(real, st));
  }

  private fdState(fd: Fd, fop: string): PosixFd {
    const s = fd.get<PosixFd>(this);
    if (!s) throw this.fail("EBADF", fop, `fd ${fd.id} is not open on ${this.name}`);
    return s;
  }

  /** A path naming the open file itself, immune to renames (the kernel's magic link); valid for child processes too. */
  private static procPath(h: FileHandle | number): string {
    return `/proc/${process.pid}/fd/${typeof h === "number" ? h : h.fd}`;
  }

  private async closeFd(fd: Fd): Promise<void> {
    const s = fd.get<PosixFd>(this);
    if (!s) return;
    fd.ctx.delete(this);
    this.openFds.delete(fd);
    this.knownMarks.delete(s.gfid);
    // (not under a datasync that has yet to start: the number could name another file by then)
    await s.writeback;
    fs.closeSync(s.handle);
  }

  /**
   * After creating an entry: set its gfid (removing the entry if that fails), give it to the
   * caller, and make its permission bits exact (the process umask must not apply).
   */
  private async finishCreate(ctx: CallCtx, r: Resolved, mode: number, xdata: Xdata | undefined, opts: { isLink?: boolean; initial?: [string, Buffer][] } = {}): Promise<Iatt> {
    let gfid: string;
    try {
      gfid = parseGfidReq(xdata?.[XDATA.gfidReq]) ?? newGfid();
      setXattrSync(r.real, GFID_XATTR, gfidToBytes(gfid));
      this.setInitialXattrs(r.real, opts.initial);
      // (the server makes entries as root: only another caller needs a chown)
      if ((ctx.uid ?? 0) !== 0 || (ctx.gid ?? 0) !== 0) {
        const owner = ownerOfNew(ctx, fs.statSync(r.parentReal));
        fs.lchownSync(r.real, owner.uid, owner.gid);
      }
    } catch (err) {
      try {
        fs.rmSync(r.real, { recursive: false, force: true });
      } catch {
        try {
          fs.rmdirSync(r.real);
        } catch {
          // nothing more to undo
        }
      }
      throw err;
    }
    let st = fs.lstatSync(r.real);
    if (!opts.isLink) {
      // a directory keeps the setgid bit it inherited from its parent, as on Linux
      const want = (mode & 0o7777) | (st.isDirectory() ? st.mode & S_ISGID : 0);
      if ((st.mode & 0o7777) !== want) {
        chmodNoFollow(r.real, want);
        st = fs.lstatSync(r.real);
      }
    }
    const made = toIatt(st, gfid);
    await this.indexInitial(gfid, r.path, opts.initial);
    made.postparent = await this.parentStat(r);
    return made;
  }

  /**
   * Changelog counters a create or flush carries in xdata (XDATA.initialXattrs, XDATA.flushXattrop),
   * checked: trusted.afr.* int32 arrays only (what an xattrop may change; never the gfid or the
   * brick's own).
   */
  private changelogXdata(fop: string, path: string, xdata: Xdata | undefined, key: string): [string, Buffer][] | undefined {
    const v = xdata?.[key];
    if (v === undefined) return undefined;
    if (v === null || typeof v !== "object" || Array.isArray(v) || Buffer.isBuffer(v)) {
      throw this.fail("EINVAL", fop, `${fop} ${path}: ${key}: expected values by xattr name`);
    }
    return Object.entries(v as Record<string, unknown>).map(([name, value]) => {
      if (!name.startsWith(AFR_PREFIX)) throw this.fail("EINVAL", fop, `${fop} ${path}: ${key}: ${name} is not a changelog counter`);
      if (!(value instanceof Uint8Array) || value.length % 4 !== 0) throw this.fail("EINVAL", fop, `${fop} ${path}: ${key}: ${name}: not an int32 array`);
      return [name, Buffer.from(value)];
    });
  }

  /**
   * A new file's initial xattrs, set at `real` (the precreated inode before it is linked under its
   * name, or the name just made): a replica's first changelog mark costs a call here, not an
   * xattrop's read-modify-write of a file looked up again.
   */
  private setInitialXattrs(real: string, initial: [string, Buffer][] | undefined): void {
    for (const [name, value] of initial ?? []) setXattrSync(real, name, value);
  }

  /** A new file marked pending goes in the pending-heal index before its create answers (before any write), as an xattrop's mark would. */
  private async indexInitial(gfid: string, path: string, initial: [string, Buffer][] | undefined): Promise<void> {
    if (initial?.some(([, value]) => nonZero(value))) await this.index.set(gfid, path);
  }

  /** The attributes of an entry's directory (the postparent of the fop that changed it). */
  private parentStat(r: Resolved): Promise<Iatt> {
    // (a pinned parent is /proc/<pid>/fd/<n>, a link: "/." names the directory itself)
    return this.statOf(r.parentReal === this.paths.root ? r.parentReal : `${r.parentReal}/.`);
  }

  /** An entry fop's target must not be the root itself. */
  private notRoot(r: Resolved, fop: string, code: string): void {
    if (r.name === "") throw this.fail(code, fop, `${fop} on the volume root`);
  }

  // ---- inode fops ----

  override async lookup(_ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<LookupResult> {
    return this.guard("lookup", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      const stat = await this.statOf(r.real);
      const want = xdata?.[XDATA.wantXattrs];
      if (!Array.isArray(want) || want.length === 0) return { stat };
      const xattrs: Record<string, Buffer> = {};
      // several names: one listxattr first (most are absent), then only those present
      const present = want.length > 1 ? listXattrsSync(r.real) : undefined;
      for (const name of want) {
        if (typeof name !== "string" || (present && !present.includes(name))) continue;
        const v = getXattrSync(r.real, name);
        if (v) xattrs[name] = v;
      }
      return { stat, xattrs };
    });
  }

  override async stat(_ctx: CallCtx, loc: Loc): Promise<Iatt> {
    return this.guard("stat", loc.path, async (resolve) => this.statOf((await resolve(loc.path)).real));
  }

  override async fstat(_ctx: CallCtx, fd: Fd): Promise<Iatt> {
    return this.guard("fstat", fd.path, async (resolve) => {
      const s = this.fdState(fd, "fstat");
      return toIatt(fs.fstatSync(s.handle), s.gfid);
    });
  }

  override async setattr(_ctx: CallCtx, loc: Loc, attr: SetattrArgs): Promise<Iatt> {
    return this.guard("setattr", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      let st = (await this.sameFile("setattr", loc, r.real)) ?? fs.lstatSync(r.real);
      const isLink = st.isSymbolicLink();
      if (attr.uid !== undefined || attr.gid !== undefined) fs.lchownSync(r.real, attr.uid ?? -1, attr.gid ?? -1);
      // Linux cannot chmod a symlink itself (GlusterFS ignores it too)
      if (attr.mode !== undefined && !isLink) chmodNoFollow(r.real, attr.mode & 0o7777);
      if (attr.size !== undefined) {
        if (isLink) throw this.fail("EINVAL", "setattr", `truncate of a symlink ${loc.path}`);
        if (st.isDirectory()) throw this.fail("EISDIR", "setattr", `truncate of a directory ${loc.path}`);
        const h = await fsp.open(r.real, FS.O_WRONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK);
        try {
          await h.truncate(attr.size);
        } finally {
          await h.close();
        }
      }
      if (attr.atimeMs !== undefined || attr.mtimeMs !== undefined) {
        fs.lutimesSync(r.real, (attr.atimeMs ?? st.atimeMs) / 1000, (attr.mtimeMs ?? st.mtimeMs) / 1000);
      }
      st = fs.lstatSync(r.real);
      return toIatt(st, await this.gfidOf(r.real, st));
    });
  }

  override async fsetattr(_ctx: CallCtx, fd: Fd, attr: SetattrArgs): Promise<Iatt> {
    return this.guard("fsetattr", fd.path, async (resolve) => {
      const s = this.fdState(fd, "fsetattr");
      let st = fs.fstatSync(s.handle);
      if (attr.uid !== undefined || attr.gid !== undefined) fs.fchownSync(s.handle, attr.uid ?? -1, attr.gid ?? -1);
      if (attr.mode !== undefined) fs.fchmodSync(s.handle, attr.mode & 0o7777);
      if (attr.size !== undefined) {
        if (s.isDir) throw this.fail("EISDIR", "fsetattr", `truncate of a directory ${fd.path}`);
        await ftruncateAsync(s.handle, attr.size);
      }
      if (attr.atimeMs !== undefined || attr.mtimeMs !== undefined) {
        fs.futimesSync(s.handle, (attr.atimeMs ?? st.atimeMs) / 1000, (attr.mtimeMs ?? st.mtimeMs) / 1000);
      }
      st = fs.fstatSync(s.handle);
      return toIatt(st, s.gfid);
    });
  }

  override async access(ctx: CallCtx, loc: Loc, mask: number): Promise<void> {
    return this.guard("access", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      const st = fs.lstatSync(r.real);
      const want = mask & 7;
      if (want === 0) return;
      const uid = ctx.uid ?? 0;
      if (uid === 0) {
        // root may do anything, except execute a file that nobody may execute
        if (want & FS.X_OK && !st.isDirectory() && (st.mode & 0o111) === 0) throw this.fail("EACCES", "access", loc.path);
        return;
      }
      const bits = uid === st.uid ? (st.mode >> 6) & 7 : ctx.gid === st.gid ? (st.mode >> 3) & 7 : st.mode & 7;
      if ((want & ~bits) !== 0) throw this.fail("EACCES", "access", loc.path);
    });
  }

  override async readlink(_ctx: CallCtx, loc: Loc): Promise<string> {
    return this.guard("readlink", loc.path, async (resolve) => fs.readlinkSync((await resolve(loc.path)).real));
  }

  override async statfs(_ctx: CallCtx, loc: Loc): Promise<Statfs> {
    return this.guard("statfs", loc.path, async (resolve) => {
      await resolve(loc.path);
      const s = await fsp.statfs(this.paths.root);
      // (unlinked files waiting to be freed: their space and inodes are as good as free, see guard)
      const held = this.unlinked.held;
      const blocks = Math.floor(held.bytes / s.bsize);
      return {
        bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: Math.min(s.blocks, s.bfree + blocks), bavail: Math.min(s.blocks, s.bavail + blocks),
        files: s.files, ffree: Math.min(s.files, s.ffree + held.files), namemax: 255,
      };
    });
  }

  // ---- entry fops ----

  override async mknod(ctx: CallCtx, loc: Loc, mode: number, rdev: number, xdata?: Xdata): Promise<Iatt> {
    return this.guard("mknod", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      this.notRoot(r, "mknod", "EEXIST");
      const kind = mode & S_IFMT;
      if (kind === S_IFREG || kind === 0) {
        fs.closeSync(fs.openSync(r.real, FS.O_CREAT | FS.O_EXCL | FS.O_WRONLY | FS.O_NOFOLLOW, mode & 0o7777));
      } else if (kind === S_IFIFO) await mknodSpecial(r.real, "p", mode, 0);
      else if (kind === S_IFCHR) await mknodSpecial(r.real, "c", mode, rdev);
      else if (kind === S_IFBLK) await mknodSpecial(r.real, "b", mode, rdev);
      else if (kind === S_IFSOCK) {
        const h = await this.internalHandle;
        await mksock(Posix.procPath(h), `${this.paths.internal}/tmp`, r.real);
      } else throw this.fail("EINVAL", "mknod", `bad file type in mode ${mode.toString(8)}`);
      return this.finishCreate(ctx, r, mode, xdata);
    });
  }

  override async mkdir(ctx: CallCtx, loc: Loc, mode: number, xdata?: Xdata): Promise<Iatt> {
    return this.guard("mkdir", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      this.notRoot(r, "mkdir", "EEXIST");
      fs.mkdirSync(r.real, mode & 0o7777);
      return this.finishCreate(ctx, r, mode, xdata);
    });
  }

  override async symlink(ctx: CallCtx, target: string, loc: Loc, xdata?: Xdata): Promise<Iatt> {
    return this.guard("symlink", loc.path, async (resolve) => {
      if (typeof target !== "string" || target === "" || target.includes("\0")) throw this.fail("EINVAL", "symlink", "bad target");
      if (Buffer.byteLength(target) >= 4096) throw this.fail("ENAMETOOLONG", "symlink", "target too long");
      const r = await resolve(loc.path);
      this.notRoot(r, "symlink", "EEXIST");
      // the target is stored as text and never followed by the brick, wherever it points
      fs.symlinkSync(target, r.real);
      return this.finishCreate(ctx, r, 0o777, xdata, { isLink: true });
    });
  }

  override async unlink(_ctx: CallCtx, loc: Loc): Promise<EntryRemoved> {
    return this.guard("unlink", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      this.notRoot(r, "unlink", "EISDIR");
      const st = fs.lstatSync(r.real);
      if (st.isDirectory()) throw this.fail("EISDIR", "unlink", loc.path);
      const gfid = await this.gfidOf(r.real, st);
      await this.gfidLocks.run(gfid, async () => {
        // (the last name: renamed aside, its inode freed off this path; unlinked-inodes.ts)
        this.unlinked.unlink(r.real, st.nlink, st.blocks * 512);
        // the last name of the inode went: its pending-heal entry goes with it
        if (st.nlink <= 1) await this.index.remove(gfid);
      });
      return { postparent: await this.parentStat(r) };
    });
  }

  override async rmdir(_ctx: CallCtx, loc: Loc): Promise<EntryRemoved> {
    return this.guard("rmdir", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      this.notRoot(r, "rmdir", "EBUSY");
      const st = fs.lstatSync(r.real);
      if (!st.isDirectory()) throw this.fail("ENOTDIR", "rmdir", loc.path);
      const gfid = await this.gfidOf(r.real, st);
      await this.gfidLocks.run(gfid, async () => {
        fs.rmdirSync(r.real);
        await this.index.remove(gfid);
      });
      return { postparent: await this.parentStat(r) };
    });
  }

  override async rename(_ctx: CallCtx, from: Loc, to: Loc): Promise<void> {
    return this.guard("rename", `${from.path} -> ${to.path}`, async (resolve) => {
      const a = await resolve(from.path);
      const b = await resolve(to.path);
      this.notRoot(a, "rename", "EBUSY");
      this.notRoot(b, "rename", "EBUSY");
      const srcSt = fs.lstatSync(a.real);
      const srcGfid = await this.gfidOf(a.real, srcSt);
      let victim: Stats | undefined;
      try {
        victim = fs.lstatSync(b.real);
      } catch {
        victim = undefined;
      }
      const victimGfid = victim ? getXattrSync(b.real, GFID_XATTR) : null;
      fs.renameSync(a.real, b.real);
      if (victim && victimGfid?.length === 16 && (victim.isDirectory() || victim.nlink <= 1)) {
        const vg = gfidFromBytes(victimGfid);
        if (vg !== srcGfid) await this.index.remove(vg);
      }
      if (srcSt.isDirectory()) await this.index.renamed(a.path, b.path);
      else if (this.index.get(srcGfid) === a.path) await this.index.set(srcGfid, b.path);
    });
  }

  override async link(_ctx: CallCtx, from: Loc, to: Loc): Promise<Iatt> {
    return this.guard("link", `${from.path} -> ${to.path}`, async (resolve) => {
      const a = await resolve(from.path);
      const b = await resolve(to.path);
      this.notRoot(a, "link", "EPERM");
      this.notRoot(b, "link", "EEXIST");
      await this.sameFile("link", from, a.real);
      fs.linkSync(a.real, b.real);
      return this.statOf(b.real);
    });
  }

  // ---- fd fops ----

  override async create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> {
    const initial = this.changelogXdata("create", loc.path, xdata, XDATA.initialXattrs);
    return this.guard("create", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      this.notRoot(r, "create", "EEXIST");
      const base = (flags & ~OPEN_STRIPPED & ~FS.O_TRUNC) | FS.O_NOFOLLOW;
      let handle: number;
      let stat: Iatt;
      try {
        const pooled = await this.createFromPool(ctx, r, base, mode, xdata, initial);
        if (pooled === "exists") throw Object.assign(new Error(`${loc.path} exists`), { code: "EEXIST" });
        if (pooled) {
          this.attach(fd, { handle: pooled.handle, gfid: pooled.stat.gfid, isDir: false });
          return pooled.stat;
        }
        // through the thread pool: making an inode can take a millisecond of kernel time (precreated-inodes.ts)
        handle = await openAsync(r.real, base | FS.O_CREAT | FS.O_EXCL, mode & 0o7777);
      } catch (err) {
        // create(2) without O_EXCL opens an existing file
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || flags & FS.O_EXCL) throw err;
        const opened = await openForClient(r.real, base | (flags & FS.O_TRUNC));
        handle = opened.handle;
        try {
          stat = toIatt(opened.st, await this.gfidOf(r.real, opened.st));
          // the file this replica's create made before (the same gfid asked for): its marks add up
          if (initial && stat.gfid === parseGfidReq(xdata?.[XDATA.gfidReq])) {
            await this.xattrop(ctx, { path: loc.path, gfid: stat.gfid }, "add32", Object.fromEntries(initial));
          }
        } catch (e) {
          fs.closeSync(handle);
          throw e;
        }
        this.attach(fd, { handle, gfid: stat.gfid, isDir: false });
        return stat;
      }
      try {
        stat = await this.finishCreate(ctx, r, mode, xdata, { initial });
        if (initial) {
          const st = fs.fstatSync(handle);
          this.knownMarks.set(stat.gfid, { marks: new Map(initial), dev: st.dev, ino: st.ino });
        }
      } catch (err) {
        fs.closeSync(handle);
        throw err;
      }
      this.attach(fd, { handle, gfid: stat.gfid, isDir: false });
      return stat;
    });
  }

  /**
   * create(2) with a precreated inode (precreated-inodes.ts), its gfid set before it has a name:
   * undefined when the pool is empty or the file must inherit the directory's default ACL (only the
   * kernel's create does that); "exists" when the name is taken (the caller then opens that file or
   * fails, as O_CREAT would).
   */
  private async createFromPool(ctx: CallCtx, r: Resolved, flags: number, mode: number, xdata: Xdata | undefined, initial: [string, Buffer][] | undefined): Promise<{ handle: number; stat: Iatt } | "exists" | undefined> {
    if (!this.precreated) return undefined;
    // (a pinned parent is /proc/<pid>/fd/<n>, a link: "/." names the directory itself)
    const parentDir = r.parentReal === this.paths.root ? r.parentReal : `${r.parentReal}/.`;
    if (hasXattr(parentDir, DEFAULT_ACL_XATTR)) return undefined;
    const gfid = parseGfidReq(xdata?.[XDATA.gfidReq]) ?? newGfid();
    const parent = fs.statSync(parentDir);
    const pooled = this.precreated.take();
    if (pooled === undefined) return undefined;
    let handle: number | undefined;
    try {
      handle = fs.openSync(pooled, flags | FS.O_NOFOLLOW);
      setXattrSync(pooled, GFID_XATTR, gfidToBytes(gfid));
      this.setInitialXattrs(pooled, initial);
      // chown before chmod, which chown would undo for set-id bits
      const owner = ownerOfNew(ctx, parent);
      fs.fchownSync(handle, owner.uid, owner.gid);
      fs.fchmodSync(handle, mode & 0o7777);
      const now = Date.now() / 1000;
      fs.futimesSync(handle, now, now);
      fs.linkSync(pooled, r.real);
    } catch (err) {
      if (handle !== undefined) fs.closeSync(handle);
      fs.rmSync(pooled, { force: true });
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return "exists";
      // (a directory on another filesystem inside the brick, say): the kernel's create decides
      return undefined;
    }
    try {
      fs.unlinkSync(pooled);
    } catch (err) {
      // the file keeps a second name in the pool until the brick starts again (which drops it)
      this.log.warn({ msgid: "POSIX_PRECREATED_UNLINK_FAILED", code: (err as NodeJS.ErrnoException).code }, `cannot unlink ${pooled}`);
    }
    try {
      const st = fs.fstatSync(handle);
      // the handle pins the inode whose gfid was just set: listings of the directory need not read it
      this.gfidsByInode.set(st, st, gfid);
      const stat = toIatt(st, gfid);
      await this.indexInitial(gfid, r.path, initial);
      stat.postparent = await this.parentStat(r);
      if (initial) this.knownMarks.set(gfid, { marks: new Map(initial), dev: st.dev, ino: st.ino });
      return { handle, stat };
    } catch (err) {
      fs.closeSync(handle);
      throw err;
    }
  }

  private attach(fd: Fd, s: PosixFd): void {
    fd.set(this, s);
    fd.gfid ??= s.gfid;
    this.openFds.add(fd);
  }

  override async open(_ctx: CallCtx, loc: Loc, flags: number, fd: Fd): Promise<void> {
    return this.guard("open", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      const { handle, st } = await openForClient(r.real, (flags & ~OPEN_STRIPPED) | FS.O_NOFOLLOW);
      try {
        const gfid = await this.gfidOf(r.real, st);
        // The caller opens a file it knows: if another client has since put another file under the
        // name, ESTALE (the kernel then looks the name up again) rather than the other file's data
        // read through what the caller cached of the first (its size).
        if (loc.gfid && loc.gfid !== gfid) throw this.fail("ESTALE", "open", `${loc.path} is now another file`);
        this.attach(fd, { handle, gfid, isDir: st.isDirectory() });
      } catch (err) {
        fs.closeSync(handle);
        throw err;
      }
    });
  }

  /** Up to `size` bytes of an open file from `offset` (fewer at its end): what read and rchecksum share. */
  private async readRange(fop: "read" | "rchecksum", fd: Fd, size: number, offset: number): Promise<Buffer> {
    const s = this.fdState(fd, fop);
    if (s.isDir) throw this.fail("EISDIR", fop, fd.path);
    if (!(size >= 0) || !(offset >= 0)) throw this.fail("EINVAL", fop, "negative size or offset");
    const buf = Buffer.allocUnsafe(size);
    if (size >= 65536) transientBuffer(size); // sent, then garbage
    let got = 0;
    while (got < size) {
      const { bytesRead } = await readAsync(s.handle, buf, got, size - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === size ? buf : buf.subarray(0, got);
  }

  override async read(_ctx: CallCtx, fd: Fd, size: number, offset: number): Promise<Buffer> {
    return this.guard("read", fd.path, () => this.readRange("read", fd, size, offset));
  }

  override async rchecksum(_ctx: CallCtx, fd: Fd, offset: number, len: number): Promise<Buffer> {
    return this.guard("rchecksum", fd.path, async () => {
      if (len > RCHECKSUM_MAX) throw this.fail("EINVAL", "rchecksum", `range of ${len} bytes exceeds ${RCHECKSUM_MAX}`);
      return createHash("sha256").update(await this.readRange("rchecksum", fd, len, offset)).digest();
    });
  }

  override async write(_ctx: CallCtx, fd: Fd, data: Buffer, offset: number): Promise<number> {
    return this.guard("write", fd.path, async (resolve) => {
      const s = this.fdState(fd, "write");
      if (s.isDir) throw this.fail("EISDIR", "write", fd.path);
      if (!(offset >= 0)) throw this.fail("EINVAL", "write", "negative offset");
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as Uint8Array);
      let done = 0;
      if (buf.length <= SYNC_WRITE_MAX && this.pooledWrites === 0) {
        // A small write goes into the page cache in microseconds, less than the two thread hand-offs
        // of the pool cost. Not while big writes stream in: the kernel may then make a writer wait
        // for writeback (dirty throttling), which must not be the event loop.
        this.writesMade.onLoop++;
        while (done < buf.length) {
          const n = fs.writeSync(s.handle, buf, done, buf.length - done, offset + done);
          if (n === 0) throw this.fail("EIO", "write", "short write");
          done += n;
        }
        this.written(fd, s, done);
        return done;
      }
      this.writesMade.inPool++;
      this.pooledWrites++;
      try {
        while (done < buf.length) {
          const { bytesWritten } = await writeAsync(s.handle, buf, done, buf.length - done, offset + done);
          if (bytesWritten === 0) throw this.fail("EIO", "write", "short write");
          done += bytesWritten;
        }
      } finally {
        this.pooledWrites--;
      }
      this.written(fd, s, done);
      return done;
    });
  }

  /**
   * Starts sending a file's data to disk, in the background, each time `writeback-after` bytes have
   * been written through the fd: the fsync that ends a big write (or the kernel's own writeback, half
   * a minute later) then has only the tail left to write, not the whole file at once while the writer
   * waits and the CPUs idle (databases' bytes_per_sync, *_flush_after). A 256 MiB write with fsync
   * through the seed's cluster: the machine's iowait ~1 ms per MiB -> 0.1, 300 -> 348 and 323 -> 359
   * MB/s, ahead in 12 of 12 rounds (npm run bench:ab --workload write with writeback-after 0 on one
   * side, then on the other).
   */
  private written(fd: Fd, s: PosixFd, bytes: number): void {
    const after = this.options["writeback-after"] ?? 0;
    if (after <= 0) return;
    s.unsyncedBytes = (s.unsyncedBytes ?? 0) + bytes;
    if (s.unsyncedBytes < after || s.writeback) return;
    s.unsyncedBytes = 0;
    this.writebacks++;
    s.writeback = new Promise<void>((settled) => {
      fs.fdatasync(s.handle, (err) => {
        if (err) {
          this.log.warn({ msgid: "POSIX_WRITEBACK_FAILED", path: fd.path, code: err.code }, "writing a file's data to disk in the background failed; its next fsync reports it, and replication is told");
          // Writes answered before may not be on disk: the next fsync fails, and whoever holds
          // other copies hears it now (cluster/afr blames this one), fsync or not.
          if (!s.writebackError) for (const p of this.parents) p.writesLost([{ gfid: s.gfid, path: fd.path }], this);
          s.writebackError ??= err;
        }
        s.writeback = undefined;
        settled();
      });
    });
  }

  override async flush(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> {
    const counters = this.changelogXdata("flush", fd.path, xdata, XDATA.flushXattrop);
    return this.guard("flush", fd.path, async (resolve) => {
      const s = this.fdState(fd, "flush");
      if (!counters) return;
      // The post-op goes to the fd's file, never to another one put under its name since (ESTALE,
      // which the close passes; ENOENT when the name is gone).
      const r = await resolve(fd.path);
      const st = fs.lstatSync(r.real);
      const known = this.knownMarks.get(s.gfid);
      const own = known ?? fs.fstatSync(s.handle);
      if (st.ino !== own.ino || st.dev !== own.dev) throw this.fail("ESTALE", "flush", `${fd.path} is now another file`);
      if (!known || !(await this.addKnownMarks(s.gfid, known, r, counters))) {
        await this.xattrop(ctx, { path: fd.path, gfid: s.gfid }, "add32", Object.fromEntries(counters));
      }
    });
  }

  /**
   * Adds `counters` to the known marks of a file made here (knownMarks), at `r`: one write per
   * counter and the index, as xattrop would leave them. False when an xattrop came first (it reads).
   */
  private async addKnownMarks(gfid: string, known: KnownMarks, r: Resolved, counters: [string, Buffer][]): Promise<boolean> {
    return this.gfidLocks.run(gfid, async () => {
      if (this.knownMarks.get(gfid) !== known) return false;
      for (const [name, delta] of counters) {
        const next = addInt32s(known.marks.get(name) ?? Buffer.alloc(delta.length), delta, name);
        setXattrSync(r.real, name, next);
        known.marks.set(name, next);
      }
      if ([...known.marks.values()].some(nonZero)) await this.index.set(gfid, r.path);
      else await this.index.remove(gfid);
      return true;
    });
  }

  override async release(_ctx: CallCtx, fd: Fd): Promise<void> {
    return this.guard("release", fd.path, async () => this.closeFd(fd));
  }

  override async fsync(_ctx: CallCtx, fd: Fd, datasync: boolean): Promise<void> {
    return this.guard("fsync", fd.path, async (resolve) => {
      const s = this.fdState(fd, "fsync");
      await s.writeback;
      const failed = s.writebackError;
      s.writebackError = undefined;
      if (failed) throw failed; // (the guard names the fop and the file, as for its own syscalls)
      if (!this.options.fsync) return;
      s.unsyncedBytes = 0;
      await (datasync ? fdatasyncAsync(s.handle) : fsyncAsync(s.handle));
    });
  }

  override async fallocate(_ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number): Promise<void> {
    return this.guard("fallocate", fd.path, async (resolve) => {
      const s = this.fdState(fd, "fallocate");
      if (s.isDir) throw this.fail("EISDIR", "fallocate", fd.path);
      if (!(offset >= 0) || !(len > 0)) throw this.fail("EINVAL", "fallocate", "bad offset or length");
      await fallocate(Posix.procPath(s.handle), mode, offset, len);
    });
  }

  // ---- directories ----

  override async opendir(_ctx: CallCtx, loc: Loc, fd: Fd): Promise<void> {
    return this.guard("opendir", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      const handle = fs.openSync(r.real, FS.O_RDONLY | FS.O_DIRECTORY | FS.O_NOFOLLOW);
      try {
        const gfid = r.real === this.paths.root ? ROOT_GFID : await this.gfidOf(r.real, fs.fstatSync(handle));
        // (listed by the first readdir, which starts at offset 0: listing here too read it twice)
        this.attach(fd, { handle, gfid, isDir: true });
      } catch (err) {
        fs.closeSync(handle);
        throw err;
      }
    });
  }

  private async listDir(s: PosixFd): Promise<string[]> {
    const names = await fsp.readdir(Posix.procPath(s.handle));
    const visible = s.gfid === ROOT_GFID ? names.filter((n) => n !== INTERNAL_DIR) : names;
    return [".", "..", ...visible];
  }

  override async readdir(_ctx: CallCtx, fd: Fd, offset: number, withStat: boolean, xdata?: Xdata): Promise<DirEntry[]> {
    return this.guard(withStat ? "readdirplus" : "readdir", fd.path, async (resolve) => {
      const s = this.fdState(fd, "readdir");
      if (!s.isDir) throw this.fail("ENOTDIR", "readdir", fd.path);
      if (offset === 0 || !s.entries) s.entries = await this.listDir(s);
      const names = s.entries;
      const out: DirEntry[] = [];
      for (let i = Math.max(0, offset); i < names.length; i++) out.push({ name: names[i]!, next: i + 1 });
      if (!withStat) return out;
      const dir = Posix.procPath(s.handle);
      // the root's ".." must not reveal the brick's parent
      const realOf = (e: DirEntry) => (e.name === ".." && s.gfid === ROOT_GFID ? this.paths.root : `${dir}/${e.name}`);
      const describe = async (e: DirEntry, real: string, st: Stats) => {
        e.stat = toIatt(st, e.name === ".." && s.gfid === ROOT_GFID ? ROOT_GFID : await this.gfidOf(real, st));
      };
      // The entries are lstat'ed on the event loop while their inodes are in the kernel's cache (a
      // microsecond or two each; a trip through the thread pool wakes a pool thread and then the
      // loop, which on a VM costs more than the call). Once the lstats wait for the disk (a cold
      // directory on a slow disk), the rest go through the pool, many at once, overlapping their reads.
      // The gfids are read after each lstat (the inode is cached by then).
      let cold = out.length;
      let spent = 0;
      for (let i = 0; i < out.length; i++) {
        const e = out[i]!;
        if (e.name === ".") {
          e.stat = toIatt(fs.fstatSync(s.handle), s.gfid);
          continue;
        }
        // (a huge directory must not hold the event loop: other requests get a turn now and then)
        if (i > 0 && i % READDIRPLUS_SLICE === 0) await new Promise((r) => setImmediate(r));
        const real = realOf(e);
        const started = performance.now();
        try {
          const st = fs.lstatSync(real, { throwIfNoEntry: false });
          if (st) await describe(e, real, st);
        } catch {
          // unreadable: listed without attributes
        }
        spent += performance.now() - started;
        if (spent > LISTING_DISK_WAIT.baseMs + LISTING_DISK_WAIT.perEntryMs * (i + 1)) {
          cold = i + 1;
          break;
        }
      }
      await mapLimit(out.slice(cold), READDIRPLUS_PARALLEL, async (e) => {
        const real = realOf(e);
        try {
          await describe(e, real, await fsp.lstat(real));
        } catch {
          // gone since the snapshot: listed without attributes
        }
      });
      // readdirplus with XDATA.wantXattrs (performance/md-cache): each entry's requested xattrs too,
      // so that listing a directory answers the kernel's per-file xattr probes in the same reply.
      const want = xdata?.[XDATA.wantXattrs];
      const wanted = Array.isArray(want) ? want.filter((n): n is string => typeof n === "string" && !isInternalXattr(n)) : [];
      if (wanted.length > 0) {
        for (let i = 0; i < out.length; i++) {
          // (a huge directory must not hold the event loop: other requests get a turn now and then)
          if (i > 0 && i % READDIRPLUS_SLICE === 0) await new Promise((r) => setImmediate(r));
          const e = out[i]!;
          // (symlinks: getXattr would follow them; such entries just carry no xattrs)
          if (!e.stat || e.name === ".." || (e.stat.mode & FS.S_IFMT) === FS.S_IFLNK) continue;
          const real = e.name === "." ? dir : `${dir}/${e.name}`;
          const xattrs: Record<string, Buffer> = {};
          try {
            // several names: one listxattr instead of a getxattr each (most files have none of them);
            // one name: asking for it is as cheap as listing (as lookup does)
            const present = wanted.length > 1 ? listXattrsSync(real) : undefined;
            for (const n of wanted) {
              if (present && !present.includes(n)) continue;
              const v = getXattrSync(real, n);
              if (v) xattrs[n] = v;
            }
          } catch {
            continue; // unreadable (or gone): no claim about its xattrs
          }
          e.xattrs = xattrs;
        }
      }
      return out;
    });
  }

  override async releasedir(_ctx: CallCtx, fd: Fd): Promise<void> {
    return this.guard("releasedir", fd.path, async () => this.closeFd(fd));
  }

  override async fsyncdir(_ctx: CallCtx, fd: Fd, datasync: boolean): Promise<void> {
    return this.guard("fsyncdir", fd.path, async (resolve) => {
      const s = this.fdState(fd, "fsyncdir");
      if (!this.options.fsync) return;
      await (datasync ? fdatasyncAsync(s.handle) : fsyncAsync(s.handle));
    });
  }

  // ---- xattrs ----

  override async getxattr(_ctx: CallCtx, loc: Loc, name: string): Promise<Buffer> {
    return this.guard("getxattr", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      if (r.name === "" && name === INDEX_XATTR) return Buffer.from(JSON.stringify(this.index.list()));
      if (r.name === "" && name === BRICK_ID_XATTR) return Buffer.from(this.brickId);
      // The changelog keys on the root: every replica this brick's set has known (see afr.ts guessBrickIds).
      if (r.name === "" && name === CHANGELOG_KEYS_XATTR) return Buffer.from(JSON.stringify(listXattrsSync(r.real).filter((n) => n.startsWith(AFR_PREFIX))));
      const v = getXattrSync(r.real, name);
      if (v) return v;
      fs.lstatSync(r.real); // ENOENT / ENOTDIR when the file is the missing part
      throw this.fail("ENODATA", "getxattr", `${loc.path}: no ${name}`);
    });
  }

  override async setxattr(_ctx: CallCtx, loc: Loc, name: string, value: Buffer, flags: number): Promise<void> {
    return this.guard("setxattr", loc.path, async (resolve) => {
      if (isInternalXattr(name)) throw this.fail("EPERM", "setxattr", `${name} is internal`);
      const r = await resolve(loc.path);
      await this.sameFile("setxattr", loc, r.real);
      if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
        // the binding has no flags argument: check first (a race with another setter is tolerated)
        const cur = getXattrSync(r.real, name);
        if (!cur) fs.lstatSync(r.real);
        if (cur && flags & XATTR_CREATE) throw this.fail("EEXIST", "setxattr", `${loc.path}: ${name} exists`);
        if (!cur && flags & XATTR_REPLACE) throw this.fail("ENODATA", "setxattr", `${loc.path}: no ${name}`);
      }
      setXattrSync(r.real, name, Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array));
    });
  }

  override async listxattr(_ctx: CallCtx, loc: Loc): Promise<string[]> {
    return this.guard("listxattr", loc.path, async (resolve) => {
      const r = await resolve(loc.path);
      return listXattrsSync(r.real).filter((n) => !isInternalXattr(n));
    });
  }

  override async removexattr(_ctx: CallCtx, loc: Loc, name: string): Promise<void> {
    return this.guard("removexattr", loc.path, async (resolve) => {
      if (isInternalXattr(name)) throw this.fail("EPERM", "removexattr", `${name} is internal`);
      const r = await resolve(loc.path);
      await this.sameFile("removexattr", loc, r.real);
      removeXattrSync(r.real, name);
    });
  }

  override async xattrop(_ctx: CallCtx, loc: Loc, op: "add32", xattrs: Record<string, Buffer>): Promise<Record<string, Buffer>> {
    return this.guard("xattrop", loc.path, async (resolve) => {
      if (op !== "add32") throw this.fail("EINVAL", "xattrop", `unknown op ${String(op)}`);
      for (const [name, delta] of Object.entries(xattrs)) {
        if (!(delta instanceof Uint8Array) || delta.length % 4 !== 0) throw this.fail("EINVAL", "xattrop", `${name}: not an int32 array`);
      }
      const r = await resolve(loc.path);
      const st = fs.lstatSync(r.real);
      const gfid = await this.gfidOf(r.real, st);
      return this.gfidLocks.run(gfid, async () => {
        const result: Record<string, Buffer> = {};
        this.knownMarks.delete(gfid);
        // Synchronous xattr calls (the file was just stat'ed; see gfidOf): every write transaction
        // makes two xattrops per brick, each a read-modify-write of a few counters.
        for (const [name, delta] of Object.entries(xattrs)) {
          const next = addInt32s(getXattrSync(r.real, name) ?? Buffer.alloc(delta.length), Buffer.from(delta), name);
          setXattrSync(r.real, name, next);
          result[name] = next;
        }
        if (Object.keys(xattrs).some((n) => n.startsWith(AFR_PREFIX))) await this.updateIndex(r, gfid, result);
        return result;
      });
    });
  }

  /** Index entry present iff any trusted.afr.* counter of the file is non-zero (called under the gfid lock). */
  private async updateIndex(r: Resolved, gfid: string, fresh: Record<string, Buffer>): Promise<void> {
    const pending = Object.entries(fresh).some(([n, v]) => n.startsWith(AFR_PREFIX) && nonZero(v)) || pendingOnDisk(r.real, fresh);
    if (pending) await this.index.set(gfid, r.path);
    else await this.index.remove(gfid);
  }

  // ---- locks belong to features/posix-locks ----

  override async lk(): Promise<never> {
    throw this.fail("ENOSYS", "lk", "locks are served by features/posix-locks");
  }
  override async flock(): Promise<never> {
    throw this.fail("ENOSYS", "flock", "locks are served by features/posix-locks");
  }
  override async inodelk(): Promise<never> {
    throw this.fail("ENOSYS", "inodelk", "locks are served by features/posix-locks");
  }
  override async entrylk(): Promise<never> {
    throw this.fail("ENOSYS", "entrylk", "locks are served by features/posix-locks");
  }
}

/** Maps with at most `limit` calls in flight, keeping order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

const nonZero = (b: Buffer | null | undefined): boolean => !!b && b.some((x) => x !== 0);

/** xattrop's add32: `cur` + `delta`, element-wise (int32, big-endian, wrapping). */
function addInt32s(cur: Buffer, delta: Buffer, name: string): Buffer {
  if (cur.length !== delta.length) throw new FopError("EINVAL", `${name}: ${cur.length} bytes stored, ${delta.length} given`, { fop: "xattrop" });
  const next = Buffer.alloc(delta.length);
  for (let i = 0; i < delta.length; i += 4) next.writeInt32BE((cur.readInt32BE(i) + delta.readInt32BE(i)) | 0, i);
  return next;
}

/** Whether a trusted.afr.* counter of the file on disk is non-zero (those named in `except` are not read). */
function pendingOnDisk(real: string, except: Record<string, unknown> = {}): boolean {
  return listXattrsSync(real).some((n) => n.startsWith(AFR_PREFIX) && !(n in except) && nonZero(getXattrSync(real, n)));
}

import { writeFileSync } from "node:fs";
import type { Logger } from "pino";
import { OpenFiles } from "../open-files";
import { errnoNumber, FopError } from "../../core/errors";
import { Fd, type CallCtx, type DirEntry, type Flock, type Iatt, type LkCmd, type Loc, type SetattrArgs } from "../../core/types";
import type { Xlator } from "../../core/xlator";
import type { BridgeStats } from "../bridge";
import { DEFAULT_FUSE_OPTIONS, FUSE_SUBTYPE, type FuseMountOptions } from "../options";
import { isMounted, lazyUnmount, mountDevice } from "../mounts";
import { refusedXattr, visibleXattrs } from "../xattrs";
import { FuseChannel } from "./channel";
import { InodeTable, type Inode } from "./inodes";
import { KernelCaches, listenForChanges } from "./kernel-caches";
import { ListingsAhead } from "./listings-ahead";
import {
  ATTR_OUT_SIZE, cString, direntSize, direntType, ENTRY_OUT_SIZE, F_RDLCK, F_UNLCK, F_WRLCK, FATTR_ATIME,
  FATTR_ATIME_NOW, FATTR_FH, FATTR_GID, FATTR_MODE, FATTR_MTIME, FATTR_MTIME_NOW, FATTR_SIZE, FATTR_UID,
  FUSE_FSYNC_FDATASYNC, FUSE_GETATTR_FH, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_LK_FLOCK,
  FUSE_MIN_MINOR_VERSION, INIT_OUT_SIZE, InitFlag, OFFSET_MAX, Op, OP_NAMES,
  OPEN_OUT_SIZE, outHeader, replyBuffer, REQUEST_OVERHEAD, STATFS_OUT_SIZE, u64, writeAttr, writeEntry, writeTimeout,
  writeOutHeader, writeU64, type Request,
} from "./protocol";

const errno = (code: string) => errnoNumber(code);
const ENOSYS = errno("ENOSYS");
const EINTR = errno("EINTR");
const ERANGE = errno("ERANGE");
const EPROTO = errno("EPROTO");
const ENOENT = errno("ENOENT");

/** The most pages one request may carry (the kernel's own ceiling: 1 MiB with 4 KiB pages). */
const MAX_PAGES = 256;
/**
 * Requests the kernel keeps in flight on its own (read-ahead, async I/O): libfuse's 12. Each may be a
 * 1 MiB read whose data the client holds until answered: 64 put the client 30 MB over its memory budget.
 */
const MAX_BACKGROUND = 12;
/** Requests that change nothing a listing shows (any other may: see prefetchListing). */
const READ_ONLY_OPS: ReadonlySet<number> = new Set([
  Op.LOOKUP, Op.GETATTR, Op.READLINK, Op.OPEN, Op.OPENDIR, Op.READ, Op.STATFS, Op.RELEASE, Op.RELEASEDIR,
  Op.GETXATTR, Op.LISTXATTR, Op.ACCESS, Op.READDIR, Op.READDIRPLUS, Op.FORGET, Op.BATCH_FORGET, Op.INTERRUPT, Op.GETLK,
]);

interface PendingRequest {
  op: number;
  /** Set when the kernel interrupted it and was answered EINTR: the real result is then undone, not sent. */
  interrupted: boolean;
  /** What to do with a result that arrives after an interrupt (undo a granted lock). */
  onLateSuccess?: () => void;
}

/** What the kernel was just told about a node: whether the file has other names (see Inode.multiLink), and its attributes. */
function noteGiven(inode: Inode, stat: Iatt): void {
  inode.multiLink = (stat.mode & 0o170000) !== 0o040000 && stat.nlink > 1;
  inode.attr = stat;
  inode.writtenTo = undefined;
}

/** The attributes the kernel has for a node: the last it was given, grown by its writes since. */
function attrKnown(inode: Inode): Iatt | undefined {
  const a = inode.attr;
  return a && inode.writtenTo !== undefined && inode.writtenTo > a.size ? { ...a, size: inode.writtenTo } : a;
}

/** A directory handle's last batch of entries: the kernel reads a page at a time, the graph answers in batches. */
interface DirListing {
  from: number;
  entries: DirEntry[];
  withStat: boolean;
  /** KernelCaches.epoch when the entries were fetched. */
  epoch: number;
}

/**
 * Serves the FUSE mount from the top of a translator graph by speaking the kernel's protocol on
 * /dev/fuse directly (no libfuse): every request is read, turned into one fop and answered on the
 * event loop. Compared with the fuse-native bridge (../bridge.ts) it has no thread handoffs, takes
 * requests of up to 1 MiB, answers READDIRPLUS (names with attributes: `ls -l` needs no request per
 * file), knows node ids (so it can tell the kernel to drop what it cached: on a lock grant, on a hard
 * link, and when another client changed a file), and lets an interrupted lock wait end.
 */
export class KernelFuseBridge {
  readonly options: FuseMountOptions;
  private channel: FuseChannel | undefined;
  private readonly inodes = new InodeTable();
  private readonly fds = new OpenFiles();
  private readonly dirListings = new WeakMap<Fd, DirListing>();
  /** A directory handle's listing asked for right behind its opendir, until its first pass uses it. */
  private readonly prefetchedListings = new WeakMap<Fd, { entries: Promise<DirEntry[]>; epoch: number; changes: number }>();
  /** Requests that may change something (any but the read-only ones): a listing fetched before one is not served after it. */
  private changeRequests = 0;
  private readonly pending = new Map<string, PendingRequest>();
  private readonly lockingOwners = new Set<string>();
  private initDone: (() => void) | undefined;
  private initFailed: ((err: Error) => void) | undefined;
  private readonly stats: BridgeStats = { ops: {}, errors: {}, largestWrite: 0, largestRead: 0, openFds: 0 };
  private maxWrite = 0;
  private readonly invalidationListener: Xlator;
  private readonly caches = new KernelCaches(this.inodes, () => this.channel);
  private readonly listingsAhead: ListingsAhead;

  constructor(
    private readonly top: Xlator,
    options: Partial<FuseMountOptions> & { mountpoint: string },
    private readonly log: Logger,
  ) {
    this.options = { ...DEFAULT_FUSE_OPTIONS, ...options };
    // What other clients change reaches the top of the graph as othersChanged(): the bridge listens
    // as the graph's parent, and drops what the kernel cached of it.
    this.invalidationListener = listenForChanges(top, (change) => this.caches.othersChanged(change));
    this.listingsAhead = new ListingsAhead(top, () => ({ epoch: this.caches.epoch, changes: this.changeRequests }), () => this.localCtx());
  }

  /** Mounts; resolves once the kernel's INIT is answered (the mount is usable). */
  async mount(): Promise<void> {
    const o = this.options;
    this.maxWrite = Math.min(o.maxWrite, MAX_PAGES * 4096);
    const channel = new FuseChannel(this.maxWrite + REQUEST_OVERHEAD,
      (req, buf) => this.dispatch(req, buf),
      (code) => this.log.info({ mountpoint: o.mountpoint, errno: code }, "FUSE connection ended"));
    channel.onSendError = (code) => this.log.warn({ errno: code }, "FUSE reply refused by the kernel");
    const initialised = new Promise<void>((resolve, reject) => {
      this.initDone = resolve;
      this.initFailed = reject;
    });
    await channel.mount({
      mountpoint: o.mountpoint, fsname: o.fsname, subtype: FUSE_SUBTYPE, allowOther: o.allowOther,
      defaultPermissions: o.defaultPermissions, maxRead: o.maxRead,
    });
    this.channel = channel;
    await initialised;
    this.raiseReadahead();
  }

  /**
   * The kernel reads ahead 128 KiB by default (the device's read_ahead_kb); sequential reads then go
   * out in 128 KiB requests. As root we let it read ahead as much as one request carries.
   */
  private raiseReadahead(): void {
    const kb = Math.floor(this.options.maxRead / 1024);
    try {
      const dev = mountDevice(this.options.mountpoint);
      if (!dev) throw new Error(`${this.options.mountpoint} not in /proc/self/mountinfo`);
      writeFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, `${kb}\n`);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "read-ahead left at the kernel's default");
    }
  }

  /** Unmounts (lazily: `umount -l`), closes the device and releases every Fd still open. */
  async unmount(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    if (channel) {
      if (isMounted(this.options.mountpoint)) await lazyUnmount(this.options.mountpoint).catch(() => undefined);
      channel.close();
    }
    await this.listingsAhead.closeAll();
    const ctx = this.localCtx();
    for (const [h, fd] of this.fds) {
      this.fds.delete(h);
      await (fd.isDir ? this.top.releasedir(ctx, fd) : this.top.release(ctx, fd)).catch(() => undefined);
    }
    const parents = this.top.parents;
    const i = parents.indexOf(this.invalidationListener);
    if (i >= 0) parents.splice(i, 1);
  }

  get mounted(): boolean {
    return this.channel !== undefined;
  }

  dump(): Record<string, unknown> {
    return {
      engine: "kernel",
      mountpoint: this.options.mountpoint,
      options: this.options,
      maxWrite: this.maxWrite,
      nodes: this.inodes.size,
      pending: this.pending.size,
      listingsAhead: this.listingsAhead.dump(),
      stats: { ...this.stats, openFds: this.fds.size },
      fds: [...this.fds].map(([h, fd]) => ({ handle: h, path: fd.path, dir: fd.isDir, flags: fd.flags })),
    };
  }

  statsSnapshot(): BridgeStats {
    return { ...this.stats, ops: { ...this.stats.ops }, errors: { ...this.stats.errors }, openFds: this.fds.size };
  }

  // ---------------------------------------------------------------------------------------------
  // Requests

  private dispatch(req: Request, buf: Buffer): boolean {
    const op = req.opcode;
    const name = OP_NAMES[op] ?? `op${op}`;
    this.stats.ops[name] = (this.stats.ops[name] ?? 0) + 1;
    // (an op we do not know is answered ENOSYS and changes nothing: the kernel's first STATX, say)
    if (!READ_ONLY_OPS.has(op) && OP_NAMES[op] !== undefined) this.changeRequests++;
    try {
      switch (op) {
        case Op.INIT: this.init(req); return false;
        case Op.FORGET: this.inodes.forget(req.nodeid, u64(req.arg, 0)); return false;
        case Op.BATCH_FORGET: this.batchForget(req); return false;
        case Op.INTERRUPT: this.interrupt(req); return false;
        case Op.LOOKUP: this.lookup(req); return false;
        case Op.GETATTR: this.getattr(req); return false;
        case Op.SETATTR: this.setattr(req); return false;
        case Op.READLINK: this.run(req, (ctx) => this.top.readlink(ctx, this.loc(req)), (t) => this.replyData(req, Buffer.from(t))); return false;
        case Op.SYMLINK: this.symlink(req); return false;
        case Op.MKNOD: this.mknod(req); return false;
        case Op.MKDIR: this.mkdir(req); return false;
        case Op.UNLINK: this.remove(req, false); return false;
        case Op.RMDIR: this.remove(req, true); return false;
        case Op.RENAME: this.rename(req, u64(req.arg, 0), 8); return false;
        case Op.RENAME2: this.reply(req, ENOSYS); return false; // the kernel falls back to RENAME; flags get EINVAL
        case Op.LINK: this.link(req); return false;
        case Op.OPEN: this.open(req, false); return false;
        case Op.OPENDIR: this.open(req, true); return false;
        case Op.READ: this.read(req); return false;
        case Op.WRITE: return this.write(req, buf);
        case Op.STATFS: this.statfs(req); return false;
        case Op.RELEASE: this.release(req, false); return false;
        case Op.RELEASEDIR: this.release(req, true); return false;
        case Op.FSYNC: case Op.FSYNCDIR: this.fsync(req); return false;
        case Op.FLUSH: this.flush(req); return false;
        case Op.SETXATTR: this.setxattr(req); return false;
        case Op.GETXATTR: this.getxattr(req); return false;
        case Op.LISTXATTR: this.listxattr(req); return false;
        case Op.REMOVEXATTR: this.removexattr(req); return false;
        case Op.ACCESS: this.run(req, (ctx) => this.top.access(ctx, this.loc(req), req.arg.readUInt32LE(0)), () => this.reply(req, 0)); return false;
        case Op.CREATE: this.create(req); return false;
        case Op.READDIR: this.readdir(req, false); return false;
        case Op.READDIRPLUS: this.readdir(req, true); return false;
        case Op.GETLK: case Op.SETLK: case Op.SETLKW: this.lk(req); return false;
        case Op.FALLOCATE: this.fallocate(req); return false;
        case Op.DESTROY: this.reply(req, 0); return false;
        default: this.reply(req, ENOSYS); return false;
      }
    } catch (err) {
      this.reply(req, this.errnoOf(name, err));
      return false;
    }
  }

  private init(req: Request): void {
    const major = req.arg.readUInt32LE(0);
    const minor = req.arg.readUInt32LE(4);
    const maxReadahead = req.arg.readUInt32LE(8);
    const kernelFlags = req.arg.readUInt32LE(12);
    if (major !== FUSE_KERNEL_VERSION || minor < FUSE_MIN_MINOR_VERSION) {
      this.reply(req, EPROTO);
      this.initFailed?.(new FopError("EPROTO", `kernel FUSE protocol ${major}.${minor} is older than 7.${FUSE_MIN_MINOR_VERSION}`, { xlator: "fuse" }));
      return;
    }
    const wanted = InitFlag.ASYNC_READ | InitFlag.POSIX_LOCKS | InitFlag.BIG_WRITES | InitFlag.FLOCK_LOCKS |
      InitFlag.AUTO_INVAL_DATA | InitFlag.DO_READDIRPLUS | InitFlag.ASYNC_DIO | InitFlag.PARALLEL_DIROPS | InitFlag.MAX_PAGES;
    const b = replyBuffer(req, INIT_OUT_SIZE);
    b.fill(0, 16);
    b.writeUInt32LE(FUSE_KERNEL_VERSION, 16);
    b.writeUInt32LE(Math.min(minor, FUSE_KERNEL_MINOR_VERSION), 20);
    b.writeUInt32LE(maxReadahead, 24);
    b.writeUInt32LE((wanted & kernelFlags) >>> 0, 28);
    b.writeUInt16LE(MAX_BACKGROUND, 32);
    b.writeUInt16LE(Math.floor((MAX_BACKGROUND * 3) / 4), 34); // congestion_threshold, as libfuse
    b.writeUInt32LE(this.maxWrite, 36);
    b.writeUInt32LE(1, 40); // time_gran: nanoseconds
    b.writeUInt16LE(Math.ceil(this.maxWrite / 4096), 44);
    this.send([b]);
    this.initDone?.();
  }

  private batchForget(req: Request): void {
    const count = req.arg.readUInt32LE(0);
    for (let i = 0, off = 8; i < count && off + 16 <= req.arg.length; i++, off += 16) {
      this.inodes.forget(u64(req.arg, off), u64(req.arg, off + 8));
    }
  }

  /** An interrupted lock wait is answered EINTR now; a grant that still comes is undone. */
  private interrupt(req: Request): void {
    const key = `${req.arg.readUInt32LE(0)}:${req.arg.readUInt32LE(4)}`;
    const p = this.pending.get(key);
    if (!p || p.interrupted || p.op !== Op.SETLKW) return;
    p.interrupted = true;
    const target: Request = { ...req, uniqueLo: req.arg.readUInt32LE(0), uniqueHi: req.arg.readUInt32LE(4) };
    this.reply(target, EINTR);
  }

  private lookup(req: Request): void {
    const parent = this.inodes.get(req.nodeid);
    const [name] = cString(req.arg, 0);
    const path = this.inodes.childPath(parent, name);
    this.run(req, (ctx) => this.top.lookup(ctx, { path }), (r) => this.replyEntry(req, parent, name, r.stat), (code) => {
      if (code !== ENOENT) return false;
      // A name that is gone is forgotten here too (another client removed it).
      this.inodes.removed(parent, name);
      // While the servers report others' changes (a create there drops it, FUSE_NOTIFY_INVAL_ENTRY),
      // the kernel may remember that the name is missing: node id 0 with a timeout. Apache's
      // .htaccess probes in every directory of every request, a shell's PATH search...
      if (this.options.entryTimeout <= 0 || !this.top.invalidationsDelivered()) return false;
      const b = replyBuffer(req, ENTRY_OUT_SIZE);
      b.fill(0, 16);
      writeTimeout(b, this.options.entryTimeout, 32, 48);
      this.send([b]);
      return true;
    });
  }

  private getattr(req: Request): void {
    const inode = this.inodes.get(req.nodeid);
    const flags = req.arg.readUInt32LE(0);
    const fd = flags & FUSE_GETATTR_FH ? this.fds.get(u64(req.arg, 8)) : undefined;
    // A kernel GETATTR is GlusterFS's lookup (where replication notices what needs healing); an open
    // file that lost its name answers from its descriptor.
    this.run(req, async (ctx) => {
      if (fd && !inode.attached) return this.top.fstat(ctx, fd);
      const { stat } = await this.top.lookup(ctx, this.inodeLoc(inode));
      if (inode.gfid === undefined || stat.gfid === inode.gfid) return stat;
      // The name is another file's now (another client renamed over it): these attributes are not
      // this inode's — its size would cut reads short. An open file answers from a descriptor (the
      // kernel's fstat comes without one); otherwise ESTALE, and the kernel looks the name up again.
      const open = fd ?? this.fds.ofFile(inode.gfid);
      if (open) {
        try {
          return await this.top.fstat(ctx, open);
        } catch (err) {
          // (an open the graph answered itself and cannot make now: the file is gone, its descriptor
          // reads what it read; the kernel keeps what it knew, as for an unlinked open file)
          const code = FopError.from(err).code;
          const known = attrKnown(inode);
          if (!known || (code !== "ESTALE" && code !== "ENOENT")) throw err;
          return known;
        }
      }
      throw new FopError("ESTALE", `${this.inodes.path(inode)} is now another file`, { xlator: "fuse", fop: "getattr" });
    }, (stat) => this.replyAttr(req, stat));
  }

  private setattr(req: Request): void {
    const a = req.arg;
    const inode = this.inodes.get(req.nodeid);
    const valid = a.readUInt32LE(0);
    const attr: SetattrArgs = {};
    if (valid & FATTR_MODE) attr.mode = a.readUInt32LE(68) & 0o7777;
    if (valid & FATTR_UID) attr.uid = a.readUInt32LE(76);
    if (valid & FATTR_GID) attr.gid = a.readUInt32LE(80);
    if (valid & FATTR_SIZE) attr.size = u64(a, 16);
    const now = Date.now();
    if (valid & FATTR_ATIME_NOW) attr.atimeMs = now;
    else if (valid & FATTR_ATIME) attr.atimeMs = u64(a, 32) * 1000 + a.readUInt32LE(56) / 1e6;
    if (valid & FATTR_MTIME_NOW) attr.mtimeMs = now;
    else if (valid & FATTR_MTIME) attr.mtimeMs = u64(a, 40) * 1000 + a.readUInt32LE(60) / 1e6;
    // (fchmod and futimes come without the handle: a file open here is changed through a descriptor
    // all the same, whatever its name now names; a truncate by name goes by name — the descriptor
    // may be read-only — and is ESTALE if the name is another file's, which the kernel looks up again)
    const byFd = valid & FATTR_FH ? this.fds.get(u64(a, 8)) : undefined;
    const fd = byFd ?? (attr.size === undefined && inode.gfid ? this.fds.ofFile(inode.gfid) : undefined);
    this.run(req, (ctx) => fd ? this.top.fsetattr(ctx, fd, attr) : this.top.setattr(ctx, this.inodeLoc(inode), attr),
      (stat) => {
        this.caches.dropOtherNames(stat.gfid, inode);
        this.replyAttr(req, stat);
      });
  }

  private symlink(req: Request): void {
    const parent = this.inodes.get(req.nodeid);
    const [name, next] = cString(req.arg, 0);
    const [target] = cString(req.arg, next);
    const path = this.inodes.childPath(parent, name);
    this.run(req, (ctx) => this.top.symlink(ctx, target, { path }), (stat) => this.replyEntry(req, parent, name, stat));
  }

  private mknod(req: Request): void {
    const parent = this.inodes.get(req.nodeid);
    const mode = req.arg.readUInt32LE(0);
    const rdev = req.arg.readUInt32LE(4);
    const [name] = cString(req.arg, 16);
    const path = this.inodes.childPath(parent, name);
    this.run(req, (ctx) => this.top.mknod(ctx, { path }, mode, rdev), (stat) => this.replyEntry(req, parent, name, stat));
  }

  private mkdir(req: Request): void {
    const parent = this.inodes.get(req.nodeid);
    const mode = req.arg.readUInt32LE(0);
    const [name] = cString(req.arg, 8);
    const path = this.inodes.childPath(parent, name);
    this.run(req, (ctx) => this.top.mkdir(ctx, { path }, mode & 0o7777), (stat) => this.replyEntry(req, parent, name, stat));
  }

  private remove(req: Request, dir: boolean): void {
    const parent = this.inodes.get(req.nodeid);
    const [name] = cString(req.arg, 0);
    const path = this.inodes.childPath(parent, name);
    this.run(req, (ctx) => dir ? this.top.rmdir(ctx, { path }) : this.top.unlink(ctx, { path }), () => {
      const gone = this.inodes.removed(parent, name);
      // The file's other names now have one link fewer.
      if (gone && !dir) this.caches.dropOtherNames(gone.gfid, gone);
      this.reply(req, 0);
    });
  }

  private rename(req: Request, newParentId: number, namesAt: number): void {
    const from = this.inodes.get(req.nodeid);
    const to = this.inodes.get(newParentId);
    const [oldName, next] = cString(req.arg, namesAt);
    const [newName] = cString(req.arg, next);
    const src = this.inodes.childPath(from, oldName);
    const dest = this.inodes.childPath(to, newName);
    this.run(req, (ctx) => this.top.rename(ctx, { path: src }, { path: dest }), () => {
      this.inodes.renamed(from, oldName, to, newName);
      this.fds.renamed(src, dest);
      this.reply(req, 0);
    });
  }

  private link(req: Request): void {
    const source = this.inodes.get(u64(req.arg, 0));
    const parent = this.inodes.get(req.nodeid);
    const [name] = cString(req.arg, 8);
    const src = this.inodes.path(source);
    const dest = this.inodes.childPath(parent, name);
    this.run(req, (ctx) => this.top.link(ctx, { ...this.inodeLoc(source), path: src }, { path: dest }), (stat) => {
      // The source's cached link count is now wrong (and every other name's).
      this.caches.dropFile(source, stat.gfid);
      this.replyEntry(req, parent, name, stat);
    });
  }

  private open(req: Request, dir: boolean): void {
    const inode = this.inodes.get(req.nodeid);
    const flags = req.arg.readUInt32LE(0);
    const path = this.inodes.path(inode);
    const fd = new Fd(path, flags, dir, inode.gfid);
    // With the gfid: a name another client pointed at another file is ESTALE, and the kernel looks it up again.
    const loc = this.inodeLoc(inode);
    this.run(req, async (ctx) => {
      if (!dir) {
        await this.top.open(ctx, loc, flags, fd);
        return fd;
      }
      const ahead = this.listingsAhead.opening(path, inode.gfid, ctx);
      if (ahead) {
        try {
          await ahead.opened;
          this.prefetchedListings.set(ahead.fd, ahead);
          return ahead.fd;
        } catch {
          // (opening it ahead failed: the kernel's own opendir says why, or succeeds now)
        }
      }
      const opened = this.top.opendir(ctx, loc, fd);
      this.prefetchListing(ctx, fd);
      await opened;
      return fd;
    }, (opened) => this.replyOpen(req, this.fds.add(opened)));
  }

  /**
   * Asks for a directory's listing right behind its opendir, without waiting for the opendir's reply
   * (the server runs it once the directory is open): a directory read through costs one round trip
   * instead of two (a tree walk opens one per directory). Used by the handle's first pass only if
   * nothing that may change a listing happened since, here or reported from elsewhere; a failure
   * (the opendir's, say) only means the pass asks itself.
   */
  private prefetchListing(ctx: CallCtx, fd: Fd): void {
    const entries = this.top.readdir(ctx, fd, 0, true);
    entries.catch(() => undefined);
    this.prefetchedListings.set(fd, { entries, epoch: this.caches.epoch, changes: this.changeRequests });
  }

  private create(req: Request): void {
    const parent = this.inodes.get(req.nodeid);
    const flags = req.arg.readUInt32LE(0);
    const mode = req.arg.readUInt32LE(4);
    const [name] = cString(req.arg, 16);
    const path = this.inodes.childPath(parent, name);
    const fd = new Fd(path, flags);
    this.run(req, (ctx) => this.top.create(ctx, { path }, flags, mode & 0o7777, fd), (stat) => {
      fd.gfid = stat.gfid;
      const b = replyBuffer(req, ENTRY_OUT_SIZE + OPEN_OUT_SIZE);
      this.putEntry(b, 16, this.inodes.remember(parent, name, stat.gfid), stat, this.invalidatedTimeout(req));
      writeU64(b, this.fds.add(fd), 16 + ENTRY_OUT_SIZE);
      b.writeUInt32LE(0, 16 + ENTRY_OUT_SIZE + 8);
      b.writeUInt32LE(0, 16 + ENTRY_OUT_SIZE + 12);
      this.send([b]);
    });
  }

  private read(req: Request): void {
    const a = req.arg;
    const fd = this.fds.open(u64(a, 0));
    const offset = u64(a, 8);
    const size = a.readUInt32LE(16);
    this.run(req, (ctx) => this.top.read(ctx, fd, size, offset), (data) => {
      const out = data.length > size ? data.subarray(0, size) : data;
      if (out.length > this.stats.largestRead) this.stats.largestRead = out.length;
      this.send([outHeader(req, out.length), out]);
    });
  }

  /**
   * The graph gets a view of the read buffer, valid until we answer (write-behind copies what it keeps;
   * protocol/client has sent it by the time the fop settles); the buffer is reused after the reply.
   */
  private write(req: Request, buf: Buffer): boolean {
    const a = req.arg;
    const fd = this.fds.open(u64(a, 0));
    const offset = u64(a, 8);
    const size = a.readUInt32LE(16);
    const data = a.subarray(40, 40 + size);
    if (size > this.stats.largestWrite) this.stats.largestWrite = size;
    this.run(req, (ctx) => this.top.write(ctx, fd, data, offset), (n) => {
      const inode = this.inodes.find(req.nodeid);
      if (inode) inode.writtenTo = Math.max(inode.writtenTo ?? 0, offset + n);
      // Other names of a hard-linked file have the old size and times cached.
      if (fd.gfid && this.inodes.nameCount(fd.gfid) > 1) this.caches.dropOtherNames(fd.gfid);
      const b = replyBuffer(req, 8);
      b.writeUInt32LE(n, 16);
      b.writeUInt32LE(0, 20);
      this.send([b]);
    }, undefined, () => this.channel?.giveBack(buf));
    return true;
  }

  private statfs(req: Request): void {
    this.run(req, (ctx) => this.top.statfs(ctx, { path: "/" }), (s) => {
      const b = replyBuffer(req, STATFS_OUT_SIZE);
      b.fill(0, 16);
      writeU64(b, s.blocks, 16);
      writeU64(b, s.bfree, 24);
      writeU64(b, s.bavail, 32);
      writeU64(b, s.files, 40);
      writeU64(b, s.ffree, 48);
      b.writeUInt32LE(s.bsize, 56);
      b.writeUInt32LE(s.namemax, 60);
      b.writeUInt32LE(s.frsize, 64);
      this.send([b]);
    });
  }

  private release(req: Request, dir: boolean): void {
    const handle = u64(req.arg, 0);
    const fd = this.fds.get(handle);
    this.fds.delete(handle);
    if (!fd) return this.reply(req, 0);
    this.run(req, (ctx) => dir ? this.top.releasedir(ctx, fd) : this.top.release(ctx, fd), () => this.reply(req, 0));
  }

  private fsync(req: Request): void {
    const fd = this.fds.open(u64(req.arg, 0));
    const datasync = (req.arg.readUInt32LE(8) & FUSE_FSYNC_FDATASYNC) !== 0;
    this.run(req, (ctx) => fd.isDir ? this.top.fsyncdir(ctx, fd, datasync) : this.top.fsync(ctx, fd, datasync), () => this.reply(req, 0));
  }

  /**
   * Every close(2): the graph's flush, and, for a lock owner that ever locked through this mount, the
   * release of its fcntl locks on the file (POSIX drops them at any close). Owners that never locked
   * cost no lock round trip.
   */
  private flush(req: Request): void {
    const fd = this.fds.open(u64(req.arg, 0));
    const owner = req.arg.readBigUInt64LE(16).toString(16);
    this.run(req, async (ctx) => {
      await this.top.flush(ctx, fd);
      if (this.lockingOwners.has(owner)) {
        this.stats.ops.lk = (this.stats.ops.lk ?? 0) + 1;
        await this.top.lk({ ...ctx, lkOwner: owner }, fd, "setlk", { type: "un", start: 0, len: 0, pid: ctx.pid, owner });
      }
    }, () => this.reply(req, 0));
  }

  private setxattr(req: Request): void {
    const size = req.arg.readUInt32LE(0);
    const flags = req.arg.readUInt32LE(4);
    const [name, next] = cString(req.arg, 8);
    const value = Buffer.from(req.arg.subarray(next, next + size));
    const inode = this.inodes.get(req.nodeid);
    this.run(req, (ctx) => {
      const refused = refusedXattr("setxattr", name, this.options.xattrs);
      if (refused) throw refused;
      return this.top.setxattr(ctx, this.inodeLoc(inode), name, value, flags);
    }, () => this.reply(req, 0));
  }

  private getxattr(req: Request): void {
    const size = req.arg.readUInt32LE(0);
    const [name] = cString(req.arg, 8);
    const inode = this.inodes.get(req.nodeid);
    this.run(req, (ctx) => {
      const refused = refusedXattr("getxattr", name, this.options.xattrs);
      if (refused) throw refused;
      return this.top.getxattr(ctx, this.inodeLoc(inode), name);
    }, (value) => this.replySized(req, size, value));
  }

  private listxattr(req: Request): void {
    const size = req.arg.readUInt32LE(0);
    const inode = this.inodes.get(req.nodeid);
    this.run(req, (ctx) => this.top.listxattr(ctx, this.inodeLoc(inode)), (names) => {
      const list = Buffer.from(visibleXattrs(names, this.options.xattrs).map((n) => `${n}\0`).join(""));
      this.replySized(req, size, list);
    });
  }

  private removexattr(req: Request): void {
    const [name] = cString(req.arg, 0);
    const inode = this.inodes.get(req.nodeid);
    this.run(req, (ctx) => {
      const refused = refusedXattr("removexattr", name, this.options.xattrs);
      if (refused) throw refused;
      return this.top.removexattr(ctx, this.inodeLoc(inode), name);
    }, () => this.reply(req, 0));
  }

  private fallocate(req: Request): void {
    const a = req.arg;
    const fd = this.fds.open(u64(a, 0));
    this.run(req, (ctx) => this.top.fallocate(ctx, fd, a.readUInt32LE(24), u64(a, 8), u64(a, 16)), () => this.reply(req, 0));
  }

  /** READDIR(PLUS): as many entries as fit in the kernel's buffer, from the handle's current batch. */
  private readdir(req: Request, plus: boolean): void {
    const a = req.arg;
    const fd = this.fds.open(u64(a, 0));
    const offset = u64(a, 8);
    const size = a.readUInt32LE(16);
    const dir = this.inodes.get(req.nodeid);
    this.run(req, (ctx) => this.entriesFrom(ctx, req, fd, offset), (entries) => {
      const b = Buffer.allocUnsafe(16 + size);
      const invalidated = this.invalidatedTimeout(req);
      let used = 0;
      for (const e of entries) {
        const nameLen = Buffer.byteLength(e.name);
        const rec = direntSize(nameLen, plus);
        if (used + rec > size) break;
        let off = 16 + used;
        const stat = e.stat;
        if (plus) {
          const dots = e.name === "." || e.name === "..";
          if (stat && !dots) {
            this.putEntry(b, off, this.inodes.remember(dir, e.name, stat.gfid), stat, invalidated);
          } else {
            b.fill(0, off, off + ENTRY_OUT_SIZE);
            if (stat) writeAttr(b, stat, off + 40);
          }
          off += ENTRY_OUT_SIZE;
        }
        writeU64(b, stat ? stat.ino : 0xffffffff, off);
        writeU64(b, e.next, off + 8);
        b.writeUInt32LE(nameLen, off + 16);
        b.writeUInt32LE(stat ? direntType(stat.mode) : 0, off + 20);
        b.write(e.name, off + 24, nameLen, "utf8");
        b.fill(0, off + 24 + nameLen, 16 + used + rec);
        used += rec;
      }
      writeOutHeader(b, req, used, 0);
      this.send([b.subarray(0, 16 + used)]);
    });
  }

  /** The entries after `offset`: from the batch the handle last fetched when it covers them, else a new batch. */
  private async entriesFrom(ctx: CallCtx, req: Request, fd: Fd, offset: number): Promise<DirEntry[]> {
    const listing = this.dirListings.get(fd);
    // offset 0 is a new pass (opendir, or rewinddir): it sees the directory as it is now
    if (listing && offset !== 0) {
      req.epoch = listing.epoch; // (what the entries say was fetched then)
      if (offset === listing.from) return listing.entries;
      const i = listing.entries.findIndex((e) => e.next === offset);
      // (past the batch's last entry: the end, as a batch runs to the end of the listing — the
      // kernel asks once more after every page that was not full)
      if (i >= 0) return listing.entries.slice(i + 1);
    }
    const prefetched = this.prefetchedListings.get(fd);
    if (prefetched && offset === 0) {
      this.prefetchedListings.delete(fd);
      if (prefetched.epoch === this.caches.epoch && prefetched.changes === this.changeRequests) {
        const entries = await prefetched.entries.catch(() => undefined);
        if (entries) {
          req.epoch = prefetched.epoch; // (an invalidation meanwhile shortens the reply's timeouts)
          this.dirListings.set(fd, { from: 0, entries, withStat: true, epoch: prefetched.epoch });
          this.listingsAhead.listed(fd.path, entries);
          return entries;
        }
      }
    }
    // Always with attributes: d_ino and d_type come from them, and READDIRPLUS is what the kernel asks for.
    const epoch = (req.epoch = this.caches.epoch);
    const entries = await this.top.readdir(ctx, fd, offset, true);
    this.dirListings.set(fd, { from: offset, entries, withStat: true, epoch });
    if (offset === 0) this.listingsAhead.listed(fd.path, entries);
    return entries;
  }

  private lk(req: Request): void {
    const a = req.arg;
    const fd = this.fds.open(u64(a, 0));
    const owner = a.readBigUInt64LE(8).toString(16);
    const start = u64(a, 16);
    const endBig = a.readBigUInt64LE(24);
    const kernelType = a.readUInt32LE(32);
    const pid = a.readUInt32LE(36);
    const lkFlags = a.readUInt32LE(40);
    const type = kernelType === F_RDLCK ? "rd" : kernelType === F_WRLCK ? "wr" : kernelType === F_UNLCK ? "un" : undefined;
    if (!type) return this.reply(req, errno("EINVAL"));
    const wait = req.opcode === Op.SETLKW;

    if (lkFlags & FUSE_LK_FLOCK) {
      // flock(2): the owner is the open file (the Fd), as features/posix-locks keys it.
      const kind = type === "rd" ? "sh" : type === "wr" ? "ex" : "un";
      const pending = this.track(req, () => {
        if (kind !== "un") void this.top.flock(this.localCtx(), fd, "un", true).catch(() => undefined);
      });
      this.run(req, (ctx) => this.top.flock(ctx, fd, kind, !wait), () => this.reply(req, 0), undefined, () => this.untrack(req), pending);
      return;
    }

    const len = endBig >= OFFSET_MAX ? 0 : Number(endBig - BigInt(start) + 1n);
    const cmd: LkCmd = req.opcode === Op.GETLK ? "getlk" : wait ? "setlkw" : "setlk";
    if (type === "un" && cmd !== "getlk" && !this.lockingOwners.has(owner)) return this.reply(req, 0);
    if (type !== "un" && cmd !== "getlk") this.lockingOwners.add(owner);
    const flock: Flock = { type, start, len, pid, owner };
    const inode = this.inodes.get(req.nodeid);
    const pending = this.track(req, () => {
      void this.top.lk({ ...this.localCtx(), lkOwner: owner }, fd, "setlk", { ...flock, type: "un" }).catch(() => undefined);
    });
    this.run(req, (ctx) => this.top.lk({ ...ctx, lkOwner: owner }, fd, cmd, flock), (r) => {
      if (cmd !== "getlk") {
        // What another client wrote under this lock must be read now: the kernel's cached size and
        // pages of the file are dropped before the grant is seen.
        if (type !== "un") this.caches.dropFile(inode);
        return this.reply(req, 0);
      }
      const b = replyBuffer(req, 24);
      writeU64(b, r.start, 16);
      b.writeBigUInt64LE(r.type === "un" ? 0n : r.len === 0 ? OFFSET_MAX : BigInt(r.start + r.len - 1), 24);
      b.writeUInt32LE(r.type === "rd" ? F_RDLCK : r.type === "wr" ? F_WRLCK : F_UNLCK, 32);
      b.writeUInt32LE(r.pid >>> 0, 36);
      this.send([b]);
    }, undefined, () => this.untrack(req), pending);
  }

  // ---------------------------------------------------------------------------------------------
  // Replies

  private send(bufs: Buffer[]): void {
    this.channel?.send(bufs);
  }

  private reply(req: Request, err: number): void {
    this.send([outHeader(req, 0, err)]);
  }

  private replyData(req: Request, data: Buffer): void {
    this.send([outHeader(req, data.length), data]);
  }

  /** getxattr/listxattr: size 0 asks how big; a value larger than the caller's buffer is ERANGE. */
  private replySized(req: Request, size: number, value: Buffer): void {
    if (size === 0) {
      const b = replyBuffer(req, 8);
      b.writeUInt32LE(value.length, 16);
      b.writeUInt32LE(0, 20);
      return this.send([b]);
    }
    if (value.length > size) return this.reply(req, ERANGE);
    this.replyData(req, value);
  }

  private replyEntry(req: Request, parent: Inode, name: string, stat: Iatt): void {
    const b = replyBuffer(req, ENTRY_OUT_SIZE);
    this.putEntry(b, 16, this.inodes.remember(parent, name, stat.gfid), stat, this.invalidatedTimeout(req));
    this.send([b]);
  }

  private replyAttr(req: Request, stat: Iatt): void {
    const b = replyBuffer(req, ATTR_OUT_SIZE);
    writeTimeout(b, this.attrTimeout(stat, this.invalidatedTimeout(req)), 16, 24);
    b.writeUInt32LE(0, 28);
    writeAttr(b, stat, 32);
    this.send([b]);
    // (the kernel holds the node while it waits for this reply, so it is known; never fail the reply for it)
    const inode = this.inodes.find(req.nodeid);
    if (inode) noteGiven(inode, stat);
  }

  private replyOpen(req: Request, handle: number): void {
    const b = replyBuffer(req, OPEN_OUT_SIZE);
    writeU64(b, handle, 16);
    b.writeUInt32LE(0, 24);
    b.writeUInt32LE(0, 28);
    this.send([b]);
  }

  /**
   * Directories and single-link files may have their own timeouts (see FuseMountOptions); while the
   * servers report others' changes (which drop what the kernel has), `invalidated` (invalidatedTimeout) if longer.
   */
  private attrTimeout(stat: Iatt, invalidated: number): number {
    const o = this.options;
    const own = (stat.mode & 0o170000) === 0o040000 && o.dirAttrTimeout > 0 ? o.dirAttrTimeout
      : stat.nlink <= 1 && o.singleLinkAttrTimeout > 0 ? o.singleLinkAttrTimeout : o.attrTimeout;
    return Math.max(own, invalidated);
  }

  /**
   * A name the kernel will hold, at `off` of a reply: its timeouts (a missing name keeps entryTimeout, see
   * lookup) and the link count the kernel now knows. `invalidated`: the reply's invalidatedTimeout.
   */
  private putEntry(b: Buffer, off: number, inode: Inode, stat: Iatt, invalidated: number): void {
    writeEntry(b, off, inode.id, Math.max(this.options.entryTimeout, invalidated), this.attrTimeout(stat, invalidated), stat);
    noteGiven(inode, stat);
  }

  /**
   * invalidatedTimeout while every server below reports others' changes and nothing was invalidated
   * since the reply's content was fetched (it may predate the change: the kernel would keep a stale
   * copy for a minute after being told to forget it), else 0.
   */
  private invalidatedTimeout(req: Request): number {
    const t = this.options.invalidatedTimeout ?? 0;
    return t > 0 && req.epoch === this.caches.epoch && this.top.invalidationsDelivered() ? t : 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing

  private ctx(req: Request): CallCtx {
    return { uid: req.uid, gid: req.gid, pid: req.pid, lkOwner: String(req.pid), client: "local" };
  }

  private localCtx(): CallCtx {
    return { uid: 0, gid: 0, pid: process.pid, lkOwner: String(process.pid), client: "local" };
  }

  private loc(req: Request): Loc {
    return this.inodeLoc(this.inodes.get(req.nodeid));
  }

  /** Where a fop on an inode goes: its path, and its gfid (a name since given to another file is then ESTALE, not that file). */
  private inodeLoc(inode: Inode): Loc {
    const path = this.inodes.path(inode);
    return inode.gfid ? { path, gfid: inode.gfid } : { path };
  }



  private track(req: Request, undo: () => void): PendingRequest {
    const p: PendingRequest = { op: req.opcode, interrupted: false, onLateSuccess: undo };
    this.pending.set(`${req.uniqueLo}:${req.uniqueHi}`, p);
    return p;
  }

  private untrack(req: Request): void {
    this.pending.delete(`${req.uniqueLo}:${req.uniqueHi}`);
  }

  /** Turns a rejected fop into an errno (unexpected failures are logged: they are bugs or I/O errors). */
  private errnoOf(op: string, err: unknown): number {
    const e = FopError.from(err, { xlator: "fuse", fop: op });
    this.stats.errors[e.code] = (this.stats.errors[e.code] ?? 0) + 1;
    if (!(err instanceof FopError) || e.code === "EIO") {
      this.log.warn({ fop: op, code: e.code, err: e.message, xlator: e.xlator }, "fop failed");
    } else {
      this.log.debug({ fop: op, code: e.code, err: e.message, xlator: e.xlator }, "fop failed");
    }
    return e.errno;
  }

  /**
   * Runs one fop and answers: `done(result)` on success, the errno on failure (unless `failed`,
   * which sees it first, answered itself: it returns true then). `settled` runs either way, after the answer. A request answered EINTR already (an
   * interrupted lock wait) sends nothing more; a success then is undone.
   */
  private run<T>(
    req: Request, fop: (ctx: CallCtx) => Promise<T>, done: (v: T) => void,
    failed?: (code: number) => boolean, settled?: () => void, pending?: PendingRequest,
  ): void {
    const name = OP_NAMES[req.opcode] ?? `op${req.opcode}`;
    let p: Promise<T>;
    req.epoch = this.caches.epoch;
    try {
      p = fop(this.ctx(req));
    } catch (err) {
      const code = this.errnoOf(name, err);
      if (!failed?.(code)) this.reply(req, code);
      settled?.();
      return;
    }
    p.then((v) => {
      if (pending?.interrupted) pending.onLateSuccess?.();
      else done(v);
    }, (err) => {
      const code = this.errnoOf(name, err);
      if (pending?.interrupted) return;
      if (!failed?.(code)) this.reply(req, code);
    }).catch((err: unknown) => {
      this.log.error({ fop: name, err: (err as Error).message }, "FUSE reply failed");
    }).finally(() => settled?.());
  }

}

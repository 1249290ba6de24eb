/**
 * The data that travels through the translator graph. Everything here is plain data (numbers,
 * strings, Buffers, plain objects) so protocol/client can send it over the wire unchanged —
 * except `Fd`, which each translator decorates with its own context.
 */

/** File attributes, as storage/posix reports them. Times are milliseconds since the epoch (fractional). */
export interface Iatt {
  /** The file's identity across replicas and renames: a UUID kept in the `trusted.gfid` xattr. */
  gfid: string;
  ino: number;
  mode: number; // type bits included (S_IFREG, S_IFDIR, ...)
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  blksize: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /**
   * Only on the answer of a fop that made this entry (create, mknod, mkdir, symlink): its directory's
   * attributes right after (GlusterFS's postparent). The kernel asks for a directory's attributes
   * after every change in it; a cache answers with these instead of a round trip to the bricks.
   */
  postparent?: Iatt;
}

/**
 * What unlink and rmdir answer: the directory's attributes right after, when the brick gave them
 * (GlusterFS's postparent; the fops that make an entry carry them in Iatt.postparent).
 */
export interface EntryRemoved {
  postparent?: Iatt;
}

/** Where a fop applies: a path inside the volume ("/" is the root), and the gfid when known. */
export interface Loc {
  path: string;
  gfid?: string;
}

/** Who is calling. Locks are owned by (client, lkOwner); permissions use uid/gid. */
export interface CallCtx {
  uid: number;
  gid: number;
  pid: number;
  /** The lock owner as the caller sees it (FUSE: the lock_owner of the request, or the pid). */
  lkOwner: string;
  /** Identity of the client connection (protocol/server sets this; local mounts use "local"). */
  client: string;
}

/** Out-of-band data that rides along with a fop (like GlusterFS's xdata dict). */
export type Xdata = Record<string, unknown>;

/** Known xdata keys. */
export const XDATA = {
  /** create/mkdir/mknod/symlink: the gfid the new file must get (AFR makes replicas agree). */
  gfidReq: "gfid-req",
  /** lookup: names of xattrs to return with the stat (AFR asks for its changelog). */
  wantXattrs: "want-xattrs",
  /**
   * create: xattrs (name -> value) the file gets before its name appears, only if this create makes
   * it (a replica's first changelog mark, features/posix-locks); a trusted.afr.* one that is not zero
   * puts the file in the pending-heal index first.
   */
  initialXattrs: "initial-xattrs",
  /**
   * flush: changelog counters to add to the fd's file as it is flushed (a replica's post-op riding on
   * the close, features/posix-locks), as xattrop would; the fd names the file.
   */
  flushXattrop: "flush-xattrop",
} as const;

/** Attributes that setattr may change; absent fields are left alone. */
export interface SetattrArgs {
  mode?: number; // permission bits only
  uid?: number;
  gid?: number;
  atimeMs?: number;
  mtimeMs?: number;
  size?: number; // truncate / extend
}

/**
 * What another client changed, as a server announces it (upcall): `gfids` and `paths` name files whose
 * attributes or xattrs changed, `entries` names created, removed or renamed (and anything under them).
 */
export interface Invalidation {
  gfids: string[];
  paths: string[];
  entries: string[];
  /** A name of a file not known by gfid went away: any file with several names may have one fewer. */
  links?: boolean;
  /** Anything may have changed (a replica came back or went away below a server): drop everything. */
  all?: boolean;
}

/**
 * A file whose copy on a brick lacks writes that brick had answered: its disk refused them after the
 * answer (a background writeback failed). `path` as the brick knew it, `gfid` to be sure of the file.
 */
export interface LostWrites {
  gfid: string;
  path: string;
}

export interface LookupResult {
  stat: Iatt;
  /** Requested xattrs that exist (see XDATA.wantXattrs). */
  xattrs?: Record<string, Buffer>;
}

export interface DirEntry {
  name: string;
  /** Offset to pass to the next readdir to continue after this entry. */
  next: number;
  /** Present for readdirplus. */
  stat?: Iatt;
  /** readdirplus with XDATA.wantXattrs: the requested xattrs the entry has (absent names: it has none). */
  xattrs?: Record<string, Buffer>;
}

export interface Statfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namemax: number;
}

/** A POSIX byte-range lock (fcntl). len 0 means "to end of file". */
export interface Flock {
  type: "rd" | "wr" | "un";
  start: number;
  len: number;
  pid: number;
  /** Lock owner; filled from CallCtx.lkOwner when empty. */
  owner?: string;
}

export type LkCmd = "getlk" | "setlk" | "setlkw";
export type EntrylkCmd = "lock" | "lock_nb" | "unlock";

/**
 * An open file or directory. The caller that opens creates the Fd and passes it down; each
 * translator keeps its own state in `ctx`, keyed by the translator itself (GlusterFS's fd_ctx).
 */
export class Fd {
  private static nextId = 1;
  readonly id = Fd.nextId++;
  readonly ctx = new Map<object, unknown>();
  constructor(
    /** The path it was opened by (kept current across renames by whoever renames). */
    public path: string,
    readonly flags: number,
    readonly isDir = false,
    public gfid?: string,
  ) {}
  get<T>(owner: object): T | undefined {
    return this.ctx.get(owner) as T | undefined;
  }
  set(owner: object, value: unknown): void {
    this.ctx.set(owner, value);
  }
}

/** The file an fd is open on, as a Loc: its path now, and its gfid when known. */
export function fdLoc(fd: Fd): Loc {
  return fd.gfid !== undefined ? { path: fd.path, gfid: fd.gfid } : { path: fd.path };
}

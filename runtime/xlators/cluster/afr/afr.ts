import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { FopError } from "../../../core/errors";
import { Xlator, type XlatorEvent, type XlatorInit, type ReconfigureResult } from "../../../core/xlator";
import type {
  CallCtx, DirEntry, EntrylkCmd, EntryRemoved, Fd, Flock, Iatt, LkCmd, Loc, LookupResult, LostWrites, SetattrArgs, Statfs, Xdata,
} from "../../../core/types";
import { BRICK_ID_XATTR, CHANGELOG_KEYS_XATTR, CHANGELOG_PREFIX, DIRTY_KEY } from "./changelog";
import * as inodeRead from "./inode-read";
import * as inodeWrite from "./inode-write";
import * as dirWrite from "./dir-write";
import * as locks from "./lock-fops";
import { HealScheduler } from "./heal-scheduler";
import { HealDaemon } from "./heal-daemon";
import { AfterWork } from "./after-work";
import { LinkHints } from "./link-hints";
import { finishAllEntryBatches } from "./entry-eager";
import { metrics } from "../../../core/metrics";
import { pendingPaths } from "../../../heal/pending-index";
import { LOCKS_FIRST_XATTR } from "../../features/posix-locks/locks-first";

export interface AfrOptions {
  "read-subvolume"?: string;
  "choose-local"?: boolean;
  "quorum-type": "none" | "auto" | "fixed";
  "quorum-count"?: number;
  "self-heal": boolean;
  "self-heal-daemon": boolean;
  "heal-timeout": number;
  "favorite-child-policy": "none" | "size" | "mtime" | "ctime" | "majority";
  "data-self-heal-algorithm": "auto" | "full" | "diff";
  "heal-block-size": number;
  "heal-parallel": number;
  "child-up-heal-delay": number;
  "eager-lock"?: boolean;
  "post-op-delay"?: number;
  "eager-lock-max-hold"?: number;
}

/** Per-fd state: on which children the fd is open, and which child reads go to. */
export interface AfrFdCtx {
  opened: boolean[];
  readChild: number;
  flags: number;
  /** A flush answered before its replicas answered (inode-write.ts, flush): the release waits for it. */
  flushing?: Promise<void>;
}

/**
 * cluster/afr: every change goes to all children inside a lock -> pre-op -> op -> post-op -> unlock
 * transaction; reads go to one good child; a returning child is healed (on lookup, and by the heal
 * daemon from the pending index). The fop families live beside this file, GlusterFS-style.
 */
export class Afr extends Xlator {
  declare options: AfrOptions & Record<string, unknown>;
  /** Each child's brick identity (changelog key, lock order); learned when the child is up. */
  readonly brickIds: (string | undefined)[];
  /** A down child's identity as the root's changelog keys tell it (until the child itself answers). */
  readonly guessedIds: (string | undefined)[];
  readonly heals: HealScheduler;
  readonly daemon: HealDaemon;
  /** Paths last seen in split-brain / with mismatching gfids (for dump and heal info). */
  readonly splitBrain = new Map<string, string[]>();
  readonly gfidMismatch = new Set<string>();
  /** Post-ops and unlocks still running after their fop was answered. */
  readonly after = new AfterWork();
  /**
   * Clients that took an fcntl or flock lock through this replica set: their flushes may release
   * one, and are answered only once every replica has (inode-write.ts, flush).
   */
  readonly clientsWithLocks = new Set<string>();
  /** Names of multiply-linked files, so entry heal can restore hard links as links. */
  readonly linkHints = new LinkHints();
  /** Children whose locks can ride on the fop that needs them (features/posix-locks/locks-first.ts). */
  readonly locksFirst: boolean[];
  private wasUp = false;
  private dropMetrics: (() => void) | undefined;

  constructor(init: XlatorInit<AfrOptions>) {
    super(init as XlatorInit<unknown>);
    this.brickIds = this.children.map(() => undefined);
    this.guessedIds = this.children.map(() => undefined);
    this.locksFirst = this.children.map(() => false);
    const remote = (x: Xlator): boolean => x.type === "protocol/client" || x.children.some(remote);
    this.localChildren = this.children.map((c) => !remote(c));
    this.heals = new HealScheduler(this);
    this.daemon = new HealDaemon(this);
    const rs = this.options["read-subvolume"];
    if (rs !== undefined && !this.children.some((c) => c.name === rs)) {
      throw this.configError(`read-subvolume "${rs}" is not one of the subvolumes`, "read-subvolume");
    }
    if (this.options["quorum-type"] === "fixed" && this.options["quorum-count"] === undefined) {
      throw this.configError("quorum-type fixed needs quorum-count", "quorum-count");
    }
    if ((this.options["quorum-count"] ?? 0) > this.children.length) {
      throw this.configError(`quorum-count exceeds the ${this.children.length} subvolumes`, "quorum-count");
    }
  }

  get logger(): Logger {
    return this.log;
  }

  // ---- children and identity ----

  childUp(i: number): boolean {
    const c = this.children[i];
    return c !== undefined && c.isUp();
  }

  upChildren(): number[] {
    return this.children.map((_, i) => i).filter((i) => this.childUp(i));
  }

  /** The changelog key this AFR writes when blaming child j. */
  blameKey(j: number): string {
    return CHANGELOG_PREFIX + (this.brickIds[j] ?? this.guessedIds[j] ?? this.children[j]!.name);
  }

  /** Every key that may hold blame of child j (id key, guessed id key, name key). */
  keysOf(j: number): string[] {
    const names = [this.brickIds[j], this.guessedIds[j], this.children[j]!.name].filter((n): n is string => n !== undefined);
    return [...new Set(names)].map((n) => CHANGELOG_PREFIX + n);
  }

  allChangelogKeys(): string[] {
    return [...this.children.flatMap((_, j) => this.keysOf(j)), DIRTY_KEY];
  }

  /** Child indices in the global lock order (brick identity), the same on every server. */
  lockOrder(indices: readonly number[]): number[] {
    const key = (i: number) => this.brickIds[i] ?? `~${this.children[i]!.name}`;
    return [...indices].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a - b));
  }

  async learnBrickId(i: number): Promise<string | undefined> {
    if (this.brickIds[i] !== undefined) return this.brickIds[i];
    try {
      const v = await this.children[i]!.getxattr(this.internalCtx(), { path: "/" }, BRICK_ID_XATTR);
      const id = v.toString("utf8").trim();
      if (id) this.brickIds[i] = id;
    } catch (err) {
      this.log.debug({ child: this.children[i]!.name, err: (err as Error).message }, "brick id not available");
    }
    return this.brickIds[i];
  }

  /** Asks a child (once per connection) whether its locks translator takes locks that ride on fops. */
  async learnLocksFirst(i: number): Promise<void> {
    try {
      const v = await this.children[i]!.getxattr(this.internalCtx(), { path: "/" }, LOCKS_FIRST_XATTR);
      this.locksFirst[i] = v.toString("utf8") === "1" && this.childUp(i);
    } catch {
      this.locksFirst[i] = false;
    }
  }

  async learnBrickIds(): Promise<void> {
    await Promise.all(this.upChildren().map((i) => Promise.all([this.learnBrickId(i), this.learnLocksFirst(i)])));
    await this.guessBrickIds();
  }

  /**
   * A child down since start has no known identity, and blame written under its volfile name would be
   * invisible to the other server (whose volfile calls that brick something else). But every replica
   * ever in the set has a changelog key on the root (entry transactions mark them all): with exactly
   * one child unknown, the one key that belongs to no known child is its identity.
   */
  async guessBrickIds(): Promise<void> {
    const unknown = this.children.map((_, j) => j).filter((j) => this.brickIds[j] === undefined);
    const up = this.upChildren();
    if (unknown.length !== 1 || up.length === 0) return;
    const known = new Set([...this.brickIds, ...this.children.map((c) => c.name)]);
    const candidates = new Set<string>();
    for (const i of up) {
      try {
        const raw = await this.children[i]!.getxattr(this.internalCtx(), { path: "/" }, CHANGELOG_KEYS_XATTR);
        for (const k of JSON.parse(raw.toString("utf8")) as string[]) {
          const id = k.slice(CHANGELOG_PREFIX.length);
          if (k.startsWith(CHANGELOG_PREFIX) && !known.has(id)) candidates.add(id);
        }
      } catch (err) {
        this.log.debug({ child: this.children[i]!.name, err: (err as Error).message }, "changelog keys not available");
      }
    }
    const j = unknown[0]!;
    // Several candidates (a brick was replaced before): no guess; the name key it is.
    if (candidates.size === 1) {
      this.guessedIds[j] = [...candidates][0];
      this.log.info({ child: this.children[j]!.name, brickId: this.guessedIds[j] }, "down child's brick id taken from the changelog keys");
    }
  }

  /** A context for AFR's own locks, changelog updates and heals: root, with a unique lock owner. */
  internalCtx(base?: CallCtx): CallCtx {
    return {
      uid: 0, gid: 0, pid: base?.pid ?? process.pid,
      lkOwner: `afr:${this.name}:${randomUUID()}`,
      client: base?.client ?? `afr:${this.name}`,
    };
  }

  /**
   * Which child reads of this gfid go to among `candidates`: read-subvolume; else, with choose-local,
   * a child on this machine; else (or among several local ones) a hash of the gfid.
   */
  pickReadChild(candidates: readonly number[], gfid: string | undefined): number {
    if (candidates.length === 0) throw new FopError("EIO", "no readable replica", { xlator: this.name, fop: "read" });
    const rs = this.options["read-subvolume"];
    if (rs !== undefined) {
      const pinned = candidates.find((i) => this.children[i]!.name === rs);
      if (pinned !== undefined) return pinned;
    }
    const local = this.options["choose-local"] !== false ? candidates.filter((i) => this.localChildren[i]) : [];
    const pool = local.length > 0 ? local : candidates;
    let h = 0;
    for (const ch of gfid ?? "") h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return pool[h % pool.length]!;
  }

  /** Children with no protocol/client below them: their bricks are on this machine. */
  readonly localChildren: boolean[];

  /** Quorum (afr_has_quorum): whether `count` children (including the first or not) allow writes. */
  hasQuorum(indices: readonly number[]): boolean {
    const n = this.children.length;
    switch (this.options["quorum-type"]) {
      case "none":
        return indices.length > 0;
      case "fixed":
        return indices.length >= (this.options["quorum-count"] ?? 1);
      case "auto":
        return indices.length * 2 > n || (indices.length * 2 === n && indices.includes(0));
    }
  }

  fdCtx(fd: Fd): AfrFdCtx | undefined {
    return fd.get<AfrFdCtx>(this);
  }

  err(code: string, fop: string, msg?: string): FopError {
    return new FopError(code, msg ?? code, { xlator: this.name, fop });
  }

  // ---- lifecycle and events ----

  override async start(): Promise<void> {
    await this.learnBrickIds();
    this.wasUp = this.isUp();
    this.daemon.start();
    // Scrape time: the heal backlog is the pending index of the reachable bricks.
    this.dropMetrics ??= metrics().addSource(async () => {
      const m = metrics();
      m.splitBrain.set({ volume: this.name }, this.splitBrain.size + this.gfidMismatch.size);
      if (this.upChildren().length > 0) m.healBacklog.set({ volume: this.name }, (await pendingPaths(this)).length);
    });
  }

  override async stop(): Promise<void> {
    this.daemon.stop();
    this.dropMetrics?.();
    this.dropMetrics = undefined;
    // Open entry batches are post-op'ed and unlocked, so a clean shutdown leaves no marks behind.
    await Promise.race([finishAllEntryBatches(this).then(() => this.after.drain()), new Promise((r) => setTimeout(r, 2000).unref())]);
    // Running heals get a moment to finish; one stuck on a dead peer must not hold up the shutdown.
    await Promise.race([this.heals.drain(), new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  override isUp(): boolean {
    return this.children.some((c) => c.isUp());
  }

  /** A client disconnected (protocol/server): its locks went with it (features/posix-locks). */
  releaseClient(client: string): number {
    return this.clientsWithLocks.delete(client) ? 1 : 0;
  }

  /** A replica's brick lost writes it had answered: taken here (the other copies have them), not passed up. */
  override writesLost(files: LostWrites[], from: Xlator): void {
    const i = this.children.indexOf(from);
    if (i < 0) return;
    inodeWrite.writesLost(this, i, files).catch((err: unknown) => {
      this.log.error({ msgid: "AFR_WRITES_LOST", child: from.name, paths: files.map((f) => f.path), err: (err as Error).message }, "could not record a replica's lost writes");
    });
  }

  override notify(event: XlatorEvent, from: Xlator): void {
    const i = this.children.indexOf(from);
    if (i >= 0) {
      const line = { msgid: event === "child-up" ? "AFR_CHILD_UP" : "AFR_CHILD_DOWN", child: from.name, event };
      if (event === "child-up") this.log.info(line, `afr child ${event}`);
      else this.log.warn(line, `afr child ${event}`);
      // What clients cached may no longer be what a read returns: a replica that came back may hold
      // other data (a split-brain to report, a heal to come), one that left may have held the only
      // good copy. The server tells its clients to drop their caches (protocol/server upcalls).
      for (const p of this.parents) p.othersChanged({ gfids: [], paths: [], entries: [], all: true }, this);
      if (event === "child-up") {
        this.daemon.childUp(i);
        void this.learnLocksFirst(i);
      } else {
        this.locksFirst[i] = false;
      }
    }
    const up = this.isUp();
    if (up !== this.wasUp) {
      this.wasUp = up;
      for (const p of this.parents) p.notify(up ? "child-up" : "child-down", this);
    }
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied: string[] = [];
    const needsRestart: string[] = [];
    for (const k of new Set([...Object.keys(options), ...Object.keys(this.options)])) {
      if (JSON.stringify(options[k]) === JSON.stringify(this.options[k])) continue;
      if (k === "read-subvolume") needsRestart.push(k);
      else applied.push(k);
    }
    // read-subvolume needs a restart: keep the running one rather than half-apply it.
    this.options = { ...(options as unknown as AfrOptions), "read-subvolume": this.options["read-subvolume"] };
    this.daemon.restartTimer();
    return { applied, needsRestart };
  }

  override dump(): Record<string, unknown> {
    return {
      children: this.children.map((c, i) => ({ name: c.name, up: c.isUp(), brickId: this.brickIds[i], guessedBrickId: this.guessedIds[i], local: this.localChildren[i], locksFirst: this.locksFirst[i] })),
      healing: this.heals.active(),
      afterWork: this.after.size,
      healed: this.heals.stats,
      lastIndexCrawl: this.daemon.lastCrawl ? { ...this.daemon.lastCrawl, at: new Date(this.daemon.lastCrawl.at).toISOString() } : null,
      splitBrain: Object.fromEntries(this.splitBrain),
      gfidMismatch: [...this.gfidMismatch],
    };
  }

  // ---- fops: inode-read ----
  override lookup(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<LookupResult> { return inodeRead.lookup(this, ctx, loc, xdata); }
  override stat(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Iatt> { return inodeRead.stat(this, ctx, loc, xdata); }
  override fstat(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<Iatt> { return inodeRead.fstat(this, ctx, fd, xdata); }
  override access(ctx: CallCtx, loc: Loc, mask: number, xdata?: Xdata): Promise<void> { return inodeRead.access(this, ctx, loc, mask, xdata); }
  override readlink(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<string> { return inodeRead.readlink(this, ctx, loc, xdata); }
  override open(ctx: CallCtx, loc: Loc, flags: number, fd: Fd, xdata?: Xdata): Promise<void> { return inodeRead.open(this, ctx, loc, flags, fd, xdata); }
  override read(ctx: CallCtx, fd: Fd, size: number, offset: number, xdata?: Xdata): Promise<Buffer> { return inodeRead.read(this, ctx, fd, size, offset, xdata); }
  override opendir(ctx: CallCtx, loc: Loc, fd: Fd, xdata?: Xdata): Promise<void> { return inodeRead.opendir(this, ctx, loc, fd, xdata); }
  override readdir(ctx: CallCtx, fd: Fd, offset: number, withStat: boolean, xdata?: Xdata): Promise<DirEntry[]> { return inodeRead.readdir(this, ctx, fd, offset, withStat, xdata); }
  override statfs(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<Statfs> { return inodeRead.statfs(this, ctx, loc, xdata); }
  override getxattr(ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<Buffer> { return inodeRead.getxattr(this, ctx, loc, name, xdata); }
  override listxattr(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<string[]> { return inodeRead.listxattr(this, ctx, loc, xdata); }

  // ---- fops: inode-write ----
  override write(ctx: CallCtx, fd: Fd, data: Buffer, offset: number, xdata?: Xdata): Promise<number> { return inodeWrite.write(this, ctx, fd, data, offset, xdata); }
  override setattr(ctx: CallCtx, loc: Loc, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> { return inodeWrite.setattr(this, ctx, loc, attr, xdata); }
  override fsetattr(ctx: CallCtx, fd: Fd, attr: SetattrArgs, xdata?: Xdata): Promise<Iatt> { return inodeWrite.fsetattr(this, ctx, fd, attr, xdata); }
  override setxattr(ctx: CallCtx, loc: Loc, name: string, value: Buffer, flags: number, xdata?: Xdata): Promise<void> { return inodeWrite.setxattr(this, ctx, loc, name, value, flags, xdata); }
  override removexattr(ctx: CallCtx, loc: Loc, name: string, xdata?: Xdata): Promise<void> { return inodeWrite.removexattr(this, ctx, loc, name, xdata); }
  override fallocate(ctx: CallCtx, fd: Fd, mode: number, offset: number, len: number, xdata?: Xdata): Promise<void> { return inodeWrite.fallocate(this, ctx, fd, mode, offset, len, xdata); }
  override flush(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> { return inodeWrite.flush(this, ctx, fd, xdata); }
  override fsync(ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void> { return inodeWrite.fsync(this, ctx, fd, datasync, xdata); }
  override release(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> { return inodeWrite.release(this, ctx, fd, xdata); }
  override releasedir(ctx: CallCtx, fd: Fd, xdata?: Xdata): Promise<void> { return inodeWrite.releasedir(this, ctx, fd, xdata); }
  override fsyncdir(ctx: CallCtx, fd: Fd, datasync: boolean, xdata?: Xdata): Promise<void> { return inodeWrite.fsyncdir(this, ctx, fd, datasync, xdata); }
  override xattrop(ctx: CallCtx, loc: Loc, op: "add32", xattrs: Record<string, Buffer>, xdata?: Xdata): Promise<Record<string, Buffer>> { return inodeWrite.xattrop(this, ctx, loc, op, xattrs, xdata); }

  // ---- fops: dir-write ----
  override create(ctx: CallCtx, loc: Loc, flags: number, mode: number, fd: Fd, xdata?: Xdata): Promise<Iatt> { return dirWrite.create(this, ctx, loc, flags, mode, fd, xdata); }
  override mknod(ctx: CallCtx, loc: Loc, mode: number, rdev: number, xdata?: Xdata): Promise<Iatt> { return dirWrite.mknod(this, ctx, loc, mode, rdev, xdata); }
  override mkdir(ctx: CallCtx, loc: Loc, mode: number, xdata?: Xdata): Promise<Iatt> { return dirWrite.mkdir(this, ctx, loc, mode, xdata); }
  override symlink(ctx: CallCtx, target: string, loc: Loc, xdata?: Xdata): Promise<Iatt> { return dirWrite.symlink(this, ctx, target, loc, xdata); }
  override link(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<Iatt> { return dirWrite.link(this, ctx, from, to, xdata); }
  override unlink(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> { return dirWrite.unlink(this, ctx, loc, xdata); }
  override rmdir(ctx: CallCtx, loc: Loc, xdata?: Xdata): Promise<EntryRemoved | undefined> { return dirWrite.rmdir(this, ctx, loc, xdata); }
  override rename(ctx: CallCtx, from: Loc, to: Loc, xdata?: Xdata): Promise<void> { return dirWrite.rename(this, ctx, from, to, xdata); }

  // ---- fops: locks (fcntl/flock go to every child; internal locks pass to all in lock order) ----
  override lk(ctx: CallCtx, fd: Fd, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock> { return locks.lk(this, ctx, fd, cmd, lock, xdata); }
  override flock(ctx: CallCtx, fd: Fd, op: "sh" | "ex" | "un", nonblock: boolean, xdata?: Xdata): Promise<void> { return locks.flock(this, ctx, fd, op, nonblock, xdata); }
  override inodelk(ctx: CallCtx, domain: string, loc: Loc, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock> { return locks.inodelk(this, ctx, domain, loc, cmd, lock, xdata); }
  override entrylk(ctx: CallCtx, domain: string, loc: Loc, basename: string | null, cmd: EntrylkCmd, type: "rd" | "wr", xdata?: Xdata): Promise<void> { return locks.entrylk(this, ctx, domain, loc, basename, cmd, type, xdata); }
}

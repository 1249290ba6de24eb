import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { FopError } from "../../../core/errors";
import { FOP_NAMES, type FopName } from "../../../core/fops";
import { Fd, type CallCtx, type Flock, type LostWrites, type Xdata } from "../../../core/types";
import type { Xlator } from "../../../core/xlator";
import { metrics } from "../../../core/metrics";
import { transientBuffer } from "../../../core/transient-buffers";
import {
  decodeClientMsg, FD_ARG, FrameDecoder, type Frame, FrameWriter, LOCK_ARG, NEW_FD_ARG, PROTOCOL_VERSION, ProtocolError,
  RELEASE_FOPS, authorize, authRulesFor, carriesFd, normalizeAddress,
  type ClientMsg, type HelloMsg, type RequestMsg, type ServerMsg, type WireNewFd,
} from "../../../protocol";
import { changeOf, InterestList, PendingUpcall, type Change } from "./upcall";
import { LOCKS_AFTER_XDATA, LOCKS_FIRST_XDATA } from "../../features/posix-locks/locks-first";

/** What a connection needs from its protocol/server. */
export interface ConnectionHost {
  readonly name: string;
  readonly log: import("pino").Logger;
  options: Record<string, unknown>;
  /** The volume a client may attach to (any of the graph but a protocol/server), or undefined. */
  resolveVolume(name: string): Xlator | undefined;
  /** Every translator of the graph that can drop a client's locks (features/posix-locks). */
  lockTranslators(): { releaseClient(client: string): unknown }[];
  forget(conn: ServerConnection): void;
  /** getxattr("/", SERVER_STATUS_XATTR) on any attached volume: this server's status as JSON (gluster-ha status). */
  serverStatus?(): Record<string, unknown>;
  /** Cache invalidation (upcall.ts): the number of the last change, announcing one, asking about one. */
  readonly changeNumber: number;
  publishChange(origin: ServerConnection, change: Change): void;
  addCachingClient(conn: ServerConnection): void;
  readonly hasCachingClients: boolean;
  changedSince(gfid: string, since: number): boolean;
}

/** Interest entries kept per connection that asked for upcalls (several times a client's md-cache lru-limit). */
const INTEREST_LIMIT = 65536;
/** Slack on the client's cache time: its entries count from its receipt of a reply, ours from our reply. */
const INTEREST_SLACK_MS = 5000;

/** Virtual xattr answered by protocol/server itself (never reaches the volume). */
export const SERVER_STATUS_XATTR = "trusted.gha.server-status";

/** Requests one connection may have running in the graph; more wait in its backlog. */
export const MAX_IN_FLIGHT = 256;
/** Bytes of received requests a connection may have waiting; beyond it the server stops reading that socket. */
export const BACKLOG_BYTES = 4 << 20;

const num = (v: unknown, dflt = 0): number => (typeof v === "number" && Number.isFinite(v) ? v : dflt);

/**
 * One client connection: handshake, then requests dispatched into the attached volume, replies in
 * any order. Owns the fds the client opened and, when it closes, releases them and the client's locks.
 */
export class ServerConnection {
  readonly address: string;
  readonly port: number;
  private readonly decoder: FrameDecoder;
  private readonly writer: FrameWriter;
  private volume: Xlator | undefined;
  private volumeName = "";
  /** The client understands lost-writes messages (it said so in its hello). */
  private hearsLostWrites = false;
  private readonly fds = new Map<number, Fd>();
  /**
   * Opens in progress, by the number the client gave the new fd: a fop on it that arrives meanwhile
   * (sent right behind the open, without waiting for its reply) waits for it, then runs or is EBADF.
   */
  private readonly opening = new Map<number, Promise<void>>();
  private inFlight = 0;
  /** Replies are not being drained by the client: reading is paused. */
  private pausedForDrain = false;
  /** MAX_IN_FLIGHT requests are running: received ones wait in the backlog. */
  private atLimit = false;
  /** The backlog reached BACKLOG_BYTES: reading is paused. */
  private pausedForBacklog = false;
  private readonly backlog: { msg: ClientMsg; bytes: number }[] = [];
  private backlogBytes = 0;
  private closed = false;
  private handshakeDeadline: NodeJS.Timeout | undefined;
  /** Set when the client asked for upcalls (and the server's cache-invalidation is on). */
  private interest: InterestList | undefined;
  private upcalls: PendingUpcall | undefined;
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(
    private readonly host: ConnectionHost,
    private readonly socket: Socket | TLSSocket,
    /** The identity of this connection (CallCtx.client for every fop it sends). */
    readonly id: string,
  ) {
    this.address = normalizeAddress(socket.remoteAddress ?? "?");
    this.port = socket.remotePort ?? 0;
    this.decoder = new FrameDecoder(num(host.options["max-frame-size"], 16 << 20));
    this.writer = new FrameWriter(socket);
    this.done = new Promise((r) => (this.finish = r));
    socket.setNoDelay(true);
    // The handshake must be complete within handshake-timeout: a one-shot deadline, not an idle timer,
    // so a client trickling bytes cannot hold the connection. After it, the client's own timeout applies.
    this.handshakeDeadline = setTimeout(
      () => this.drop("no handshake within handshake-timeout"),
      num(host.options["handshake-timeout"], 10) * 1000,
    );
    this.handshakeDeadline.unref();
    socket.on("timeout", () => this.drop("client silent for longer than its transport-timeout"));
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.host.log.debug({ client: this.id, err: err.message }, "socket error"));
    socket.on("close", () => void this.cleanup());
  }

  get attachedVolume(): string {
    return this.volumeName;
  }

  dump(): Record<string, unknown> {
    return {
      client: this.id, volume: this.volumeName, inFlight: this.inFlight, fds: this.fds.size,
      paused: this.pausedForDrain || this.pausedForBacklog, backlog: this.backlog.length,
      ...(this.interest ? { upcallInterest: this.interest.size } : {}),
    };
  }

  /** Another connection changed something: an upcall if this client may have cached it (always for `all`). */
  announce(change: Change): void {
    if (change.all || this.interest?.concerns(change)) this.upcalls?.add(change);
  }

  /** The attached brick lost answered writes of these files: tell the client (its replication blames the copies). */
  reportLostWrites(files: LostWrites[]): void {
    if (!this.hearsLostWrites || this.socket.destroyed) return;
    this.send({ t: "lost-writes", gfids: files.map((f) => f.gfid), paths: files.map((f) => f.path) });
  }

  close(): void {
    this.socket.destroy();
  }

  /** Logs why and drops this connection only. */
  drop(reason: string): void {
    if (this.socket.destroyed) return;
    this.host.log.warn({ msgid: "PS_CONNECTION_DROPPED", client: this.id, address: this.address, exportedVolume: this.volumeName || undefined }, `dropping connection: ${reason}`);
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    transientBuffer(chunk.length); // (the socket's: one per read, up to 64 KiB, held by the frames it carries)
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      return this.drop((err as Error).message);
    }
    for (const f of frames) {
      let msg: ClientMsg;
      try {
        msg = decodeClientMsg(f.meta, f.payload);
      } catch (err) {
        return this.drop((err as Error).message);
      }
      // Pings are answered even while requests wait, so a busy server is not mistaken for a dead one.
      if (msg.t === "ping" && this.volume) {
        this.send({ t: "pong", id: msg.id });
        continue;
      }
      const bytes = f.meta.length + (f.payload?.length ?? 0);
      this.backlog.push({ msg, bytes });
      this.backlogBytes += bytes;
    }
    this.drainBacklog();
  }

  /** Handles received messages while under the in-flight bound and the client drains its replies. */
  private drainBacklog(): void {
    while (this.backlog.length > 0 && !this.atLimit && !this.pausedForDrain && !this.socket.destroyed) {
      const { msg, bytes } = this.backlog.shift()!;
      this.backlogBytes -= bytes;
      this.handle(msg);
    }
    if (!this.pausedForBacklog && this.backlogBytes > BACKLOG_BYTES) {
      this.pausedForBacklog = true;
      this.socket.pause();
    } else if (this.pausedForBacklog && this.backlogBytes <= BACKLOG_BYTES / 2) {
      this.pausedForBacklog = false;
      if (!this.pausedForDrain) this.socket.resume();
    }
  }

  private handle(msg: ClientMsg): void {
    if (!this.volume) {
      if (msg.t !== "hello") return this.drop(`${msg.t === "req" ? `fop ${msg.op}` : msg.t} before the handshake`);
      return this.handshake(msg);
    }
    switch (msg.t) {
      case "hello":
        return this.drop("second handshake");
      case "ping":
        return this.send({ t: "pong", id: msg.id });
      case "req":
        return this.dispatch(msg);
    }
  }

  private handshake(msg: HelloMsg): void {
    const refuse = (code: string, message: string) => {
      this.host.log.warn({ msgid: "PS_AUTH_REFUSED", client: this.id, address: this.address, exportedVolume: msg.volume, code }, `handshake refused: ${message}`);
      this.send({ t: "hello-err", code, message });
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    };
    if (msg.version !== PROTOCOL_VERSION) {
      return refuse("EPROTO", `protocol version ${msg.version} is not supported (server speaks ${PROTOCOL_VERSION})`);
    }
    const volume = this.host.resolveVolume(msg.volume);
    if (!volume) return refuse("ENOENT", `no volume "${msg.volume}" on ${this.host.name}`);
    const decision = authorize(this.address, authRulesFor(this.host.options, msg.volume));
    if (!decision.ok) return refuse("EACCES", `access to volume "${msg.volume}" denied: ${decision.reason}`);
    clearTimeout(this.handshakeDeadline);
    this.volume = volume;
    this.volumeName = msg.volume;
    this.hearsLostWrites = msg.lostWrites === true;
    const timeout = Math.min(Math.max(num(msg.timeout, 42), 1), 3600);
    // The client pings at least every timeout/2; a client silent much longer is gone (its locks go with it).
    this.socket.setTimeout(timeout * 1500);
    metrics().connections.inc({ volume: msg.volume });
    const cacheSeconds = num(msg.upcalls);
    if (cacheSeconds > 0 && this.host.options["cache-invalidation"] !== false) {
      this.upcalls = new PendingUpcall((c) => {
        if (!this.socket.destroyed) {
          this.send({ t: "upcall", gfids: c.gfids, paths: c.paths, entries: c.entries, ...(c.links ? { links: true } : {}), ...(c.all ? { all: true } : {}) });
        }
      });
      this.interest = new InterestList(cacheSeconds * 1000 + INTEREST_SLACK_MS, INTEREST_LIMIT, (c) => this.upcalls!.add(c));
      this.host.addCachingClient(this);
    }
    this.host.log.info({ msgid: "PS_CLIENT_ATTACHED", client: this.id, address: this.address, exportedVolume: msg.volume, label: msg.label, upcalls: this.interest !== undefined }, "client attached");
    this.send({ t: "hello-ok", version: PROTOCOL_VERSION, client: this.id, fops: [...FOP_NAMES], ...(this.interest ? { upcalls: true } : {}) });
  }

  private send(msg: ServerMsg): void {
    let ok: boolean;
    try {
      ok = this.writer.send(msg);
    } catch (err) {
      if (err instanceof ProtocolError && msg.t === "rep") {
        ok = this.writer.send({ t: "rep", id: msg.id, err: { code: "EMSGSIZE", message: err.message } });
      } else throw err;
    }
    if (!ok && !this.pausedForDrain && !this.socket.destroyed) {
      // The client is not reading its replies: stop reading its requests until it catches up.
      this.pausedForDrain = true;
      this.socket.pause();
      this.socket.once("drain", () => {
        this.pausedForDrain = false;
        this.maybeResume();
      });
    }
  }

  private maybeResume(): void {
    if (this.pausedForDrain || this.socket.destroyed) return;
    this.drainBacklog();
    if (!this.pausedForDrain && !this.pausedForBacklog) this.socket.resume();
  }

  private dispatch(msg: RequestMsg): void {
    this.inFlight++;
    if (this.inFlight >= MAX_IN_FLIGHT) this.atLimit = true;
    this.run(msg).then(
      (ok) => {
        if (!msg.nr) this.send({ t: "rep", id: msg.id, ok });
      },
      (err) => {
        const e = FopError.from(err, { xlator: this.host.name, fop: msg.op });
        if (msg.nr) this.host.log.debug({ client: this.id, fop: msg.op, code: e.code }, "a fop sent without reply failed");
        else this.send({ t: "rep", id: msg.id, err: { code: e.code, message: e.message } });
      },
    ).finally(() => {
      this.inFlight--;
      if (this.atLimit && this.inFlight < MAX_IN_FLIGHT / 2) {
        this.atLimit = false;
        this.maybeResume();
      }
      // Something granted after the client left (a blocking lock, an open) must not outlive it.
      if (this.closed && this.inFlight === 0) this.releaseLocks();
    });
  }

  private async run(msg: RequestMsg): Promise<unknown> {
    const op: FopName = msg.op;
    const volume = this.volume!;
    if (op === "getxattr" && msg.args[2] === SERVER_STATUS_XATTR && this.host.serverStatus) {
      return Buffer.from(JSON.stringify(this.host.serverStatus()));
    }
    const args = msg.args.slice();
    args[0] = this.callCtx(args[0] as Record<string, unknown>);
    const lockIdx = LOCK_ARG[op];
    if (lockIdx !== undefined) args[lockIdx] = this.ownLock(args[lockIdx], msg.args[0] as Record<string, unknown>);
    const xdataIdx = args.length - 1;
    if (xdataIdx > 0) args[xdataIdx] = this.ownRidingLocks(args[xdataIdx], msg.args[0] as Record<string, unknown>);
    let fdNumber: number | undefined;
    if (carriesFd(op)) {
      fdNumber = args[FD_ARG] as number;
      const opening = this.opening.get(fdNumber);
      if (opening) await opening;
      const fd = typeof fdNumber === "number" ? this.fds.get(fdNumber) : undefined;
      if (!fd) throw new FopError("EBADF", `fd ${String(fdNumber)} is not open on this connection`, { xlator: this.host.name, fop: op });
      args[FD_ARG] = fd;
      // Forget it before winding down, so a disconnect during release does not release it twice.
      if (RELEASE_FOPS.has(op)) this.fds.delete(fdNumber);
    }
    const newIdx = NEW_FD_ARG[op];
    let newFd: { n: number; fd: Fd } | undefined;
    if (newIdx !== undefined) {
      const w = args[newIdx] as WireNewFd | undefined;
      if (!w || typeof w.n !== "number" || typeof w.path !== "string" || this.fds.has(w.n) || this.opening.has(w.n)) {
        throw new FopError("EBADF", `bad new fd for ${op}`, { xlator: this.host.name, fop: op });
      }
      newFd = { n: w.n, fd: new Fd(w.path, num(w.flags), op === "opendir" || w.isDir === true, w.gfid) };
      args[newIdx] = newFd.fd;
    }
    const fn = volume[op] as (...a: unknown[]) => Promise<unknown>;
    const arrived = this.host.changeNumber;
    this.interest?.noteRequest(op, args);
    let opened: () => void = () => undefined;
    if (newFd) this.opening.set(newFd.n, new Promise<void>((resolve) => (opened = resolve)));
    let result: unknown;
    try {
      result = await fn.apply(volume, args);
    } catch (err) {
      if (newFd) this.opening.delete(newFd.n);
      opened();
      this.publish(op, args, undefined); // a change that failed may have half happened
      throw err;
    }
    if (this.interest) {
      // The reply may describe a file as it was before another client changed it meanwhile: say so after it.
      const raced = this.interest.noteReply(op, args, result, (g) => this.host.changedSince(g, arrived));
      if (raced.length > 0) this.upcalls!.add({ gfids: raced, paths: [], entries: [] });
    }
    this.publish(op, args, result);
    if (newFd) {
      this.opening.delete(newFd.n);
      if (this.closed) await this.releaseFd(newFd.fd);
      else this.fds.set(newFd.n, newFd.fd);
      opened();
    }
    return result === undefined ? null : result;
  }

  /** Announces what a fop changed to the clients that cache (nothing to work out when none does). */
  private publish(op: FopName, args: unknown[], result: unknown): void {
    if (!this.host.hasCachingClients) return;
    const change = changeOf(op, args, result);
    if (change) this.host.publishChange(this, change);
  }

  /**
   * The server decides who the caller is: `client` is this connection. A lock owner the client
   * names is made unique per upstream client, so owners arriving through one peer link (server-side
   * replication funnels many clients through it) stay distinct.
   */
  private callCtx(wire: Record<string, unknown>): CallCtx {
    const upstream = typeof wire.client === "string" && wire.client !== "local" ? wire.client : "";
    const owner = String(wire.lkOwner ?? "");
    return {
      uid: num(wire.uid), gid: num(wire.gid), pid: num(wire.pid),
      lkOwner: upstream ? `${upstream}/${owner}` : owner,
      client: this.id,
    };
  }

  private ownLock(lock: unknown, wireCtx: Record<string, unknown>): unknown {
    const l = lock as Flock | undefined;
    const upstream = typeof wireCtx.client === "string" && wireCtx.client !== "local" ? wireCtx.client : "";
    if (!l || typeof l !== "object" || !upstream || typeof l.owner !== "string" || l.owner === "") return lock;
    return { ...l, owner: `${upstream}/${l.owner}` };
  }

  /** The same for owners named by locks riding on a fop (features/posix-locks/locks-first.ts). */
  private ownRidingLocks(xdata: unknown, wireCtx: Record<string, unknown>): unknown {
    if (!xdata || typeof xdata !== "object" || Buffer.isBuffer(xdata) || Array.isArray(xdata)) return xdata;
    const x = xdata as Xdata;
    if (x[LOCKS_FIRST_XDATA] === undefined && x[LOCKS_AFTER_XDATA] === undefined) return xdata;
    const own = (ls: unknown) => (Array.isArray(ls) ? ls.map((l) => this.ownLock(l, wireCtx)) : ls);
    const out: Xdata = { ...x };
    if (x[LOCKS_FIRST_XDATA] !== undefined) out[LOCKS_FIRST_XDATA] = own(x[LOCKS_FIRST_XDATA]);
    if (x[LOCKS_AFTER_XDATA] !== undefined) out[LOCKS_AFTER_XDATA] = own(x[LOCKS_AFTER_XDATA]);
    return out;
  }

  private cleanupCtx(): CallCtx {
    return { uid: 0, gid: 0, pid: 0, lkOwner: "", client: this.id };
  }

  private async releaseFd(fd: Fd): Promise<void> {
    try {
      if (fd.isDir) await this.volume!.releasedir(this.cleanupCtx(), fd);
      else await this.volume!.release(this.cleanupCtx(), fd);
    } catch (err) {
      this.host.log.warn({ client: this.id, path: fd.path, err: (err as Error).message }, "release on disconnect failed");
    }
  }

  private releaseLocks(): void {
    for (const locks of this.host.lockTranslators()) {
      try {
        void Promise.resolve(locks.releaseClient(this.id)).catch((err: unknown) =>
          this.host.log.warn({ client: this.id, err: (err as Error).message }, "releasing locks failed"));
      } catch (err) {
        this.host.log.warn({ client: this.id, err: (err as Error).message }, "releasing locks failed");
      }
    }
  }

  /** The client is gone: release every fd it had open and every lock it held. */
  private async cleanup(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeDeadline);
    if (this.decoder.pending > 0) {
      this.host.log.warn({ client: this.id, address: this.address }, `connection closed inside a truncated frame (${this.decoder.pending} bytes)`);
    }
    if (this.volume) {
      const fds = [...this.fds.values()];
      this.fds.clear();
      await Promise.all(fds.map((fd) => this.releaseFd(fd)));
      this.releaseLocks();
      metrics().connections.dec({ volume: this.volumeName });
      this.host.log.info({ msgid: "PS_CLIENT_DETACHED", client: this.id, address: this.address, exportedVolume: this.volumeName, fds: fds.length }, "client detached");
    }
    this.host.forget(this);
    this.finish();
  }
}

import { promises as dns } from "node:dns";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { isIP } from "node:net";
import { FopError } from "../../../core/errors";
import { FOP_NAMES, LATER_FOPS, type FopName } from "../../../core/fops";
import type { CallCtx, Fd } from "../../../core/types";
import { defineXlator, Xlator, type ReconfigureResult, type XlatorInit } from "../../../core/xlator";
import { FD_ARG, NEW_FD_ARG, RELEASE_FOPS, REOPEN_MASK, carriesFd, type WireNewFd } from "../../../protocol";
import schema from "../../../../schema/xlators/protocol/client.json";
import { ClientConnection, ConnectionLost, type ConnectOptions } from "./connection";
import { metrics } from "../../../core/metrics";

export interface ClientOptions {
  "transport-type": "tcp" | "tcp/client";
  "remote-host": string[];
  "remote-port": number;
  "remote-subvolume": string;
  "bind-address"?: string;
  "transport-timeout": number;
  "ping-interval"?: number;
  ssl: boolean;
  "ssl-cert"?: string;
  "ssl-key"?: string;
  "ssl-ca"?: string;
  "max-frame-size": number;
}

/** This translator's state in an Fd: its number on the server, and the connection it belongs to. */
interface RemoteFd {
  n: number;
  /** Connection generation the fd is open on; a stale one was not reopened (EBADF). */
  gen: number;
}

/**
 * Reconnect delays after every address failed, in seconds: Fibonacci steps (GlusterFS 1.3) up to 3 s,
 * modern GlusterFS's reconnect interval. Never longer: a server back from a partition takes no writes
 * (and its peer keeps marking heals) until its clients return, and one attempt every 3 s costs nothing.
 */
const BACKOFF = [0.5, 0.5, 1, 1.5, 2.5, 3];
const ROOT_CTX: CallCtx = { uid: 0, gid: 0, pid: 0, lkOwner: "", client: "reopen" };

/**
 * Fops that change nothing on the server: one lost with its connection is sent again on the next.
 * open only without O_CREAT/O_EXCL/O_TRUNC (checked in mayResend); flush only releases the owner's
 * locks, which the server already dropped with the connection (one with xdata is not resent).
 */
const RESENDABLE: ReadonlySet<FopName> = new Set<FopName>([
  "lookup", "stat", "fstat", "access", "readlink", "read", "readdir", "statfs", "getxattr", "listxattr",
  "open", "opendir", "flush",
]);
/** Auth/volume/version refusals: an operator must act, so fops do not wait for a reconnect. */
const REFUSALS: ReadonlySet<string> = new Set(["EACCES", "ENOENT", "EPROTO"]);
/** A fop lost with its connection gets at least this long to find the next one (a silent peer used up its time). */
const RESEND_GRACE_MS = 500;
/** Connections dying one after another under the same fop: give up after this many sends. */
const MAX_SENDS = 3;

interface Waiter {
  resolve(conn: ClientConnection): void;
  reject(err: FopError): void;
  timer: NodeJS.Timeout;
  op: FopName;
}

/**
 * protocol/client: one volume of a remote server's graph, over one connection at a time. Fails over
 * across the addresses of remote-host, reconnects in the background, reopens fds after a reconnect,
 * and tells its parents child-up / child-down.
 *
 * Between connections, fops wait for the next one (at most transport-timeout from the moment the
 * connection was lost), so a client mounted on a round-robin name rides over a server's death. Under
 * a cluster translator (cluster/afr) they fail at once with ENOTCONN instead: the cluster translator
 * has other copies and must not stall on a dead one.
 */
export class ProtocolClient extends Xlator {
  private conn: ClientConnection | undefined;
  private up = false;
  private generation = 0;
  private readonly openFds = new Set<Fd>();
  private nextFd = 1;
  private lastAddress: string | undefined;
  private lastFailure: FopError | undefined;
  private stopped = true;
  private wake: (() => void) | undefined;
  /** When the client last lost (or had not yet got) its connection. */
  private downSince = Date.now();
  /** Fops waiting for the next connection. */
  private readonly waiters = new Set<Waiter>();
  private loop: Promise<void> | undefined;
  private aborter = new AbortController();
  private readonly tlsMaterial: ConnectOptions["tls"];

  constructor(init: XlatorInit<ClientOptions>) {
    super(init);
    const o = init.options;
    if (o.ssl) {
      const read = (key: "ssl-cert" | "ssl-key" | "ssl-ca") => {
        if (!o[key]) throw this.configError(`ssl on needs ${key}`, key);
        try {
          return readFileSync(o[key]!);
        } catch (err) {
          throw this.configError(`cannot read ${o[key]}: ${(err as Error).message}`, key);
        }
      };
      this.tlsMaterial = { cert: read("ssl-cert"), key: read("ssl-key"), ca: read("ssl-ca") };
    }
  }

  private get timeout(): number {
    return Number(this.options["transport-timeout"] ?? 42);
  }

  private get pingInterval(): number {
    const p = this.options["ping-interval"];
    return Math.min(typeof p === "number" ? p : this.timeout / 3, this.timeout / 2);
  }

  override isUp(): boolean {
    return this.up;
  }

  /** Starts connecting; resolves once connected or once every address failed (at most transport-timeout, capped at 10 s). */
  override async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.downSince = Date.now();
    this.aborter = new AbortController();
    let firstRound!: () => void;
    const settled = new Promise<void>((r) => (firstRound = r));
    this.loop = this.run(firstRound);
    const cap = new Promise<void>((r) => setTimeout(r, Math.min(this.timeout, 10) * 1000).unref());
    await Promise.race([settled, cap]);
  }

  override async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.aborter.abort();
    this.conn?.abandon("client stopped");
    this.wake?.();
    this.failWaiters();
    await this.loop;
  }

  /** Whether fops wait for a reconnect: not under a cluster translator, which fails over by itself. */
  private get waitsForReconnect(): boolean {
    return !this.parents.some((p) => p.type.startsWith("cluster/"));
  }

  /** The addresses of remote-host, in the resolver's order (a round-robin name rotates them). */
  private async addresses(): Promise<string[]> {
    const out: string[] = [];
    for (const host of (this.options["remote-host"] as string[]) ?? []) {
      if (isIP(host)) out.push(host);
      else {
        try {
          for (const a of await dns.lookup(host, { all: true })) out.push(a.address);
        } catch (err) {
          this.log.warn({ host, err: (err as Error).message }, "cannot resolve remote-host");
        }
      }
    }
    return [...new Set(out)];
  }

  private sleep(seconds: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, seconds * 1000);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  /** The connect loop: try the addresses in turn (after the last one used), then back off. */
  private async run(firstRound: () => void): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const addrs = await this.addresses();
      const start = this.lastAddress ? (addrs.indexOf(this.lastAddress) + 1) % Math.max(addrs.length, 1) : 0;
      let connected = false;
      for (let k = 0; k < addrs.length && !this.stopped; k++) {
        const host = addrs[(start + k) % addrs.length]!;
        let conn: ClientConnection;
        try {
          conn = await ClientConnection.connect(this.connectOptions(host));
        } catch (err) {
          this.noteFailure(host, FopError.from(err));
          continue;
        }
        if (this.stopped) {
          conn.abandon("client stopped");
          break;
        }
        connected = true;
        this.lastAddress = host;
        const since = Date.now();
        conn.onLost = (reason) => this.detach(conn, reason);
        await this.attach(conn);
        firstRound();
        await conn.closed;
        // A connection that lived a while resets the backoff; one that dies at once does not.
        failures = Date.now() - since > 5000 ? 0 : failures + 1;
        break;
      }
      if (this.stopped) break;
      if (!connected) {
        if (addrs.length === 0) this.noteFailure("-", new FopError("EHOSTUNREACH", "remote-host resolves to no address"));
        firstRound();
        this.lastAddress = undefined;
        await this.sleep(BACKOFF[Math.min(failures++, BACKOFF.length - 1)]!);
      } else if (failures > 1) {
        await this.sleep(BACKOFF[Math.min(failures, BACKOFF.length - 1)]!);
      }
    }
    firstRound();
  }

  private connectOptions(host: string): ConnectOptions {
    return {
      host, port: Number(this.options["remote-port"] ?? 6996), volume: String(this.options["remote-subvolume"]),
      timeout: this.timeout, pingInterval: this.pingInterval, maxFrame: Number(this.options["max-frame-size"] ?? 16 << 20),
      tls: this.tlsMaterial, label: `${hostname()}:${process.pid}:${this.name}`, xlator: this.name,
      signal: this.aborter.signal,
      localAddress: typeof this.options["bind-address"] === "string" ? this.options["bind-address"] : undefined,
      upcalls: this.invalidationInterest(),
    };
  }

  override invalidationsDelivered(): boolean {
    return this.up && this.conn?.upcalls === true;
  }

  private noteFailure(host: string, err: FopError): void {
    const refused = err.code === "EACCES" || err.code === "ENOENT" || err.code === "EPROTO";
    const same = this.lastFailure?.message === err.message;
    this.lastFailure = err;
    // A refusal is an operator's problem: say it loudly once; connect errors are routine while a server is down.
    if (refused && !same) this.log.error({ msgid: "PC_REFUSED", address: host, code: err.code }, err.message);
    else if (!same) this.log.warn({ msgid: "PC_CONNECT_FAILED", address: host, code: err.code }, `cannot connect: ${err.message}`);
  }

  private async attach(conn: ClientConnection): Promise<void> {
    this.conn = conn;
    conn.onUpcall = (change) => {
      for (const p of this.parents) p.othersChanged(change, this);
    };
    conn.onLostWrites = (files) => {
      for (const p of this.parents) p.writesLost(files, this);
    };
    this.generation++;
    this.lastFailure = undefined;
    // Reopen what was open through the previous connection (by path and flags); failures leave those fds EBADF.
    for (const fd of this.openFds) {
      const state = fd.get<RemoteFd>(this);
      if (!state) continue;
      const wire: WireNewFd = { n: state.n, path: fd.path, flags: fd.flags & REOPEN_MASK, isDir: fd.isDir, gfid: fd.gfid };
      try {
        if (fd.isDir) await conn.request("opendir", [ROOT_CTX, { path: fd.path, gfid: fd.gfid }, wire]);
        else await conn.request("open", [ROOT_CTX, { path: fd.path, gfid: fd.gfid }, wire.flags, wire]);
        state.gen = this.generation;
      } catch (err) {
        this.log.warn({ msgid: "PC_REOPEN_FAILED", path: fd.path, code: (err as FopError).code }, "cannot reopen fd after reconnect");
      }
    }
    // Lost again while reopening: detach already ran; the run loop moves on.
    if (conn.isClosed || this.conn !== conn) return;
    this.up = true;
    metrics().connections.inc({ volume: this.name });
    if (this.generation > 1) metrics().reconnects.inc({ volume: this.name });
    this.log.info({ msgid: "PC_CONNECTED", address: conn.address, remoteVolume: this.options["remote-subvolume"], client: conn.clientId }, "connected");
    for (const p of this.parents) p.notify("child-up", this);
    // Queued fops run only now, after their fds were reopened.
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve(conn);
    }
  }

  private detach(conn: ClientConnection, reason: string): void {
    if (this.conn === conn) this.conn = undefined;
    const wasUp = this.up;
    this.up = false;
    if (wasUp) {
      this.downSince = Date.now();
      metrics().connections.dec({ volume: this.name });
    }
    this.lastFailure = new FopError("ENOTCONN", `${conn.address}: ${reason}`, { xlator: this.name });
    this.log.warn({ msgid: "PC_DISCONNECTED", address: conn.address, reason }, "disconnected");
    if (wasUp) for (const p of this.parents) p.notify("child-down", this);
  }

  /**
   * One fop: sent on the current connection, or on the next one if there is none yet (see the class
   * comment); one lost with its connection is sent again if it provably did not reach the server or
   * changes nothing there.
   */
  async call(op: FopName, args: unknown[]): Promise<unknown> {
    if (RELEASE_FOPS.has(op)) return this.releaseRemote(op, args);
    const issued = Date.now();
    for (let sends = 1; ; sends++) {
      const conn = this.liveConnection() ?? await this.nextConnection(op, issued, sends > 1);
      try {
        return await this.send(conn, op, args);
      } catch (err) {
        if (!(err instanceof ConnectionLost) || sends >= MAX_SENDS || !this.mayResend(op, args, err)) throw err;
        this.log.debug({ msgid: "PC_RESEND", fop: op, sent: err.sent }, "connection lost under a fop: sending it again on the next one");
      }
    }
  }

  private liveConnection(): ClientConnection | undefined {
    const c = this.conn;
    return this.up && c && !c.isClosed ? c : undefined;
  }

  private mayResend(op: FopName, args: unknown[], err: ConnectionLost): boolean {
    if (!err.sent) return true;
    if (!RESENDABLE.has(op)) return false;
    // (a flush with xdata may carry work that must not be done twice: a replicate volume's post-op)
    if (op === "flush") return args[2] === undefined;
    return op !== "open" || ((args[2] as number) & ~REOPEN_MASK) === 0;
  }

  /**
   * Waits for the next connection: until transport-timeout after the connection was lost (or after
   * the fop was issued, if earlier). Refusals, a stopped client and clients under a cluster
   * translator fail at once.
   */
  private nextConnection(op: FopName, issued: number, resend: boolean): Promise<ClientConnection> {
    const refused = this.lastFailure !== undefined && REFUSALS.has(this.lastFailure.code);
    if (this.stopped || refused || !this.waitsForReconnect) return Promise.reject(this.downError(op));
    const now = Date.now();
    let until = Math.min(issued, this.downSince) + this.timeout * 1000;
    if (resend) until = Math.max(until, now + RESEND_GRACE_MS);
    if (until <= now) return Promise.reject(this.downError(op));
    return new Promise<ClientConnection>((resolve, reject) => {
      const w: Waiter = {
        resolve, reject, op,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(this.downError(op));
        }, until - now),
      };
      this.waiters.add(w);
    });
  }

  private failWaiters(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(this.downError(w.op));
    }
  }

  /**
   * release/releasedir never wait: a server that lost the connection already released the fd, and
   * one that has it releases it without replying (nothing would be done with a reply: one message
   * and one wakeup less per file opened).
   */
  private async releaseRemote(op: FopName, args: unknown[]): Promise<unknown> {
    const fd = args[FD_ARG] as Fd | undefined;
    const state = fd?.get<RemoteFd>(this);
    if (fd) {
      this.openFds.delete(fd);
      fd.ctx.delete(this);
    }
    const conn = this.liveConnection();
    if (!state || !conn || state.gen !== this.generation) return undefined;
    const wire = args.slice();
    wire[FD_ARG] = state.n;
    conn.notify(op, wire);
    return undefined;
  }

  /** Sends one fop on `conn`: maps the fds in its arguments to their numbers on the server. */
  private async send(conn: ClientConnection, op: FopName, args: unknown[]): Promise<unknown> {
    const where = { xlator: this.name, fop: op };
    // A server of an earlier version would drop the connection on a fop it does not know.
    if (LATER_FOPS.has(op) && !conn.serverFops.has(op)) throw new FopError("ENOSYS", `${conn.address} does not serve ${op}`, where);
    const wire = args.slice();
    if (carriesFd(op)) {
      const fd = args[FD_ARG] as Fd;
      const state = fd?.get<RemoteFd>(this);
      if (!state) throw new FopError("EBADF", `fd not open through ${this.name}`, where);
      if (state.gen !== this.generation) throw new FopError("EBADF", `fd of ${fd.path} was lost with a previous connection`, where);
      wire[FD_ARG] = state.n;
    }
    const newIdx = NEW_FD_ARG[op];
    let newFd: { fd: Fd; n: number } | undefined;
    if (newIdx !== undefined) {
      const f = args[newIdx] as Fd;
      newFd = { fd: f, n: this.nextFd++ };
      wire[newIdx] = { n: newFd.n, path: f.path, flags: f.flags, isDir: f.isDir || op === "opendir", gfid: f.gfid } satisfies WireNewFd;
    }
    const gen = this.generation;
    // The fd is usable at once: a fop on it sent before the open's reply travels right behind it (the
    // server runs it once the open is done, or answers EBADF if the open failed).
    const remote: RemoteFd | undefined = newFd ? { n: newFd.n, gen } : undefined;
    if (newFd) newFd.fd.set(this, remote);
    let result: unknown;
    try {
      result = await conn.request(op, wire);
    } catch (err) {
      if (newFd && newFd.fd.get<RemoteFd>(this) === remote) newFd.fd.ctx.delete(this);
      throw err;
    }
    if (newFd) this.openFds.add(newFd.fd);
    return result;
  }

  private downError(op: FopName): FopError {
    const f = this.lastFailure;
    const code = f?.code === "EACCES" ? "EACCES" : "ENOTCONN";
    return new FopError(code, `${this.name} is not connected${f ? ` (${f.message})` : ""}`, { xlator: this.name, fop: op });
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const keys = new Set([...Object.keys(options), ...Object.keys(this.options)]);
    const changed = [...keys].filter((k) => JSON.stringify(options[k]) !== JSON.stringify(this.options[k]));
    const live = (k: string) => k === "transport-timeout" || k === "ping-interval";
    const applied = changed.filter(live);
    for (const k of applied) this.options[k] = options[k];
    this.conn?.setTiming(this.timeout, this.pingInterval);
    return { applied, needsRestart: changed.filter((k) => !live(k)) };
  }

  override dump(): Record<string, unknown> {
    return {
      up: this.up, address: this.conn?.address ?? null, client: this.conn?.clientId ?? null,
      transportTimeout: this.timeout, pingInterval: this.pingInterval,
      generation: this.generation, inFlight: this.conn?.inFlight ?? 0, waiting: this.waiters.size, openFds: this.openFds.size,
      waitsForReconnect: this.waitsForReconnect,
      lastFailure: this.lastFailure ? { code: this.lastFailure.code, message: this.lastFailure.message } : null,
    };
  }
}

// Every fop goes over the wire (this translator has no children).
for (const fop of FOP_NAMES) {
  (ProtocolClient.prototype as unknown as Record<string, unknown>)[fop] = function (this: ProtocolClient, ...args: unknown[]) {
    return this.call(fop, args);
  };
}

export default defineXlator<ClientOptions>({
  type: "protocol/client",
  schema,
  children: { min: 0, max: 0 },
  init: (init) => new ProtocolClient(init),
});

import * as net from "node:net";
import * as tls from "node:tls";
import { FopError } from "../../../core/errors";
import type { FopName } from "../../../core/fops";
import type { Invalidation, LostWrites } from "../../../core/types";
import {
  decodeServerMsg, FrameDecoder, type Frame, FrameWriter, PROTOCOL_VERSION, ProtocolError, type ServerMsg,
} from "../../../protocol";

export interface ConnectOptions {
  host: string;
  port: number;
  volume: string;
  /** Seconds: connect + handshake must finish within it, and a silent peer is abandoned after it. */
  timeout: number;
  /** Seconds between keepalive pings when nothing was heard. */
  pingInterval: number;
  maxFrame: number;
  /** TLS material (PEM contents); absent: plain TCP. */
  tls?: { cert: Buffer; key: Buffer; ca: Buffer };
  label: string;
  /** Local address to connect from (bind-address). */
  localAddress?: string;
  /** For errors: the protocol/client's volume name. */
  xlator: string;
  /** Aborts a connect/handshake in progress (the translator is stopping). */
  signal?: AbortSignal;
  /** Seconds something above caches what it is told: ask the server for upcalls (0: don't). */
  upcalls?: number;
}

/** The reused read buffer of a plain TCP connection. */
const READ_BUFFER_BYTES = 256 << 10;
/**
 * After a server's clean close with fops pending: how long a reset drawn by requests written after
 * that close takes to come back (a round trip, with room to spare on the networks this runs on).
 */
const RESET_WAIT_MS = 50;

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  op: FopName;
}

/**
 * ENOTCONN because the connection went away under a fop. `sent` says whether the request had been
 * written to the socket: one that was not provably never reached the server and may be re-sent
 * elsewhere; one that was may have been carried out.
 */
export class ConnectionLost extends FopError {
  constructor(readonly sent: boolean, message: string, where: { xlator: string; fop: string }) {
    super("ENOTCONN", message, where);
  }
}

/**
 * One handshaken connection to a server: many requests in flight (by id), replies in any order,
 * keepalive pings; a peer silent for `timeout` seconds is abandoned and everything pending fails
 * with ENOTCONN.
 */
export class ClientConnection {
  private readonly pending = new Map<number, Pending>();
  /** The fops the server listed in its handshake (LATER_FOPS it does not list are not sent). */
  serverFops: ReadonlySet<string> = new Set();
  private nextId = 1;
  private lastHeard = Date.now();
  private pingOutstanding = false;
  private watchdog: NodeJS.Timeout | undefined;
  private closeReason = "connection closed";
  /** The id of the request written last (-1: a ping was, or nothing provable). */
  private lastWritten = -1;
  /** The peer reset the connection (ECONNRESET/EPIPE) rather than closing it cleanly. */
  private resetByPeer = false;
  /** The server closed its end: nothing more is written, the socket is about to go. */
  private peerClosed = false;
  readonly closed: Promise<string>;
  private markClosed!: (reason: string) => void;
  /** The identity the server gave this connection. */
  clientId = "";
  /** The server sends upcalls about others' changes (it said so in its handshake). */
  upcalls = false;
  /** Called with each upcall (others changed these). */
  onUpcall: ((change: Invalidation) => void) | undefined;
  /** Called when the server's brick lost answered writes of these files (LostWritesMsg). */
  onLostWrites: ((files: LostWrites[]) => void) | undefined;
  /**
   * Called once, synchronously, when the connection is gone and before its pending fops fail, so the
   * owner marks itself down before any of them can look for a connection again.
   */
  onLost: ((reason: string) => void) | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly opts: ConnectOptions,
    private readonly decoder: FrameDecoder,
    private readonly writer: FrameWriter,
  ) {
    this.closed = new Promise((r) => (this.markClosed = r));
  }

  get address(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /** Destroyed (or closing): requests can no longer be written to it. */
  get isClosed(): boolean {
    return this.socket.destroyed || this.peerClosed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Connects, handshakes for `opts.volume`; rejects with a FopError (EACCES/ENOENT/EPROTO refused, ETIMEDOUT, ECONNREFUSED...). */
  static connect(opts: ConnectOptions): Promise<ClientConnection> {
    return new Promise((resolve, reject) => {
      const where = { xlator: opts.xlator, fop: "handshake" };
      // Plain TCP reads into one reused buffer (no allocation per chunk): the decoder copies each reply
      // once, into a buffer of the reply's size. TLS reads itself, so it delivers 'data' chunks.
      const tcp = net.connect({
        host: opts.host, port: opts.port, localAddress: opts.localAddress,
        // (a server's close must not close this end at once: see onPeerClosed)
        allowHalfOpen: !opts.tls,
        ...(opts.tls ? {} : { onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Buffer) => {
          deliver(buf.subarray(0, n), true);
          return true;
        } } }),
      });
      const socket = opts.tls
        ? tls.connect({
          socket: tcp, cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.ca,
          // The cluster's own CA vouches for its servers; their names/addresses are not in the certificates.
          checkServerIdentity: () => undefined,
        })
        : tcp;
      if (socket !== tcp) tcp.on("error", (err: NodeJS.ErrnoException) => fail(FopError.from(err, where)));
      const decoder = new FrameDecoder(opts.maxFrame);
      const writer = new FrameWriter(socket, opts.maxFrame);
      let settled = false;
      const fail = (err: FopError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        socket.destroy();
        tcp.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new FopError("ETIMEDOUT", `no handshake from ${opts.host}:${opts.port} within ${opts.timeout}s`, where)),
        opts.timeout * 1000,
      );
      const onAbort = () => fail(new FopError("ECANCELED", "connect cancelled", where));
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      socket.once(opts.tls ? "secureConnect" : "connect", () => {
        socket.setNoDelay(true);
        writer.send({
          t: "hello", version: PROTOCOL_VERSION, volume: opts.volume, timeout: opts.timeout, label: opts.label, lostWrites: true,
          ...(opts.upcalls ? { upcalls: opts.upcalls } : {}),
        });
      });
      socket.on("error", (err: NodeJS.ErrnoException) => fail(FopError.from(err, where)));
      const closedEarly = () => fail(new FopError("ECONNRESET", `${opts.host}:${opts.port} closed the connection during the handshake`, where));
      socket.on("close", closedEarly);
      socket.on("end", closedEarly);
      const onHandshakeData = (chunk: Buffer, transient: boolean) => {
        let msg: ServerMsg | undefined;
        try {
          const frames = decoder.push(chunk, transient);
          if (frames.length === 0) return;
          if (frames.length > 1) throw new ProtocolError("data after the handshake reply");
          msg = decodeServerMsg(frames[0]!.meta, frames[0]!.payload);
        } catch (err) {
          return fail(new FopError("EPROTO", `${opts.host}:${opts.port}: ${(err as Error).message}`, where));
        }
        if (msg.t === "hello-err") {
          return fail(new FopError(msg.code, `${opts.host}:${opts.port} refused: ${msg.message}`, where));
        }
        if (msg.t !== "hello-ok") return fail(new FopError("EPROTO", `${opts.host}:${opts.port}: expected a handshake reply`, where));
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        socket.removeAllListeners("close");
        socket.removeAllListeners("error");
        socket.removeListener("end", closedEarly); // (not all: the socket has its own)
        const conn = new ClientConnection(socket, opts, decoder, writer);
        conn.clientId = msg.client;
        conn.serverFops = new Set(Array.isArray(msg.fops) ? msg.fops : []);
        conn.upcalls = msg.upcalls === true && (opts.upcalls ?? 0) > 0;
        conn.attach();
        deliver = (c, transient) => conn.onData(c, transient);
        resolve(conn);
      };
      let deliver: (chunk: Buffer, transient: boolean) => void = onHandshakeData;
      if (opts.tls) socket.on("data", (chunk: Buffer) => deliver(chunk, false));
    });
  }

  private attach(): void {
    const s = this.socket;
    s.on("error", (err: NodeJS.ErrnoException) => {
      this.closeReason = err.message;
      if (isReset(err)) this.resetByPeer = true;
    });
    s.on("end", () => this.onPeerClosed());
    s.on("close", () => this.onClose());
    const tick = Math.min(250, this.opts.pingInterval * 1000);
    this.watchdog = setInterval(() => this.check(), tick);
    this.watchdog.unref();
  }

  /** Changes timing live (transport-timeout / ping-interval reconfigured). */
  setTiming(timeout: number, pingInterval: number): void {
    const shorter = timeout < this.opts.timeout || pingInterval < this.opts.pingInterval;
    this.opts.timeout = timeout;
    this.opts.pingInterval = pingInterval;
    // A shorter timeout counts from now: silence that was fine under the old one must not drop a
    // healthy peer at once. Ask it for a sign of life under the new rules.
    if (shorter) {
      this.lastHeard = Date.now();
      if (!this.pingOutstanding && !this.isClosed) {
        this.pingOutstanding = true;
        this.writer.send({ t: "ping", id: this.nextId++ });
        this.lastWritten = -1;
      }
    }
  }

  private check(): void {
    const now = Date.now();
    const silent = now - this.lastHeard;
    if (silent > this.opts.timeout * 1000) {
      return this.abandon(`no reply from ${this.address} within transport-timeout (${this.opts.timeout}s)`);
    }
    if (!this.pingOutstanding && !this.peerClosed && silent >= this.opts.pingInterval * 1000) {
      this.pingOutstanding = true;
      this.writer.send({ t: "ping", id: this.nextId++ });
      this.lastWritten = -1;
    }
  }

  private onData(chunk: Buffer, transient: boolean): void {
    this.lastHeard = Date.now();
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk, transient);
    } catch (err) {
      return this.abandon(`${this.address}: ${(err as Error).message}`);
    }
    for (const frame of frames) {
      let msg: ServerMsg;
      try {
        msg = decodeServerMsg(frame.meta, frame.payload);
      } catch (err) {
        return this.abandon(`${this.address}: ${(err as Error).message}`);
      }
      if (msg.t === "pong") {
        this.pingOutstanding = false;
      } else if (msg.t === "rep") {
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        if ("err" in msg) p.reject(new FopError(msg.err.code, msg.err.message, { xlator: this.opts.xlator, fop: p.op }));
        else p.resolve(msg.ok === null ? undefined : msg.ok);
      } else if (msg.t === "upcall") {
        if (this.upcalls) this.onUpcall?.({ gfids: msg.gfids, paths: msg.paths, entries: msg.entries, links: msg.links === true, all: msg.all === true });
      } else if (msg.t === "lost-writes") {
        this.onLostWrites?.(msg.gfids.map((gfid, i) => ({ gfid, path: msg.paths[i]! })));
      } else {
        return this.abandon(`${this.address}: unexpected ${msg.t}`);
      }
    }
  }

  request(op: FopName, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) {
        return reject(new ConnectionLost(false, `${this.address}: ${this.closeReason}`, { xlator: this.opts.xlator, fop: op }));
      }
      const id = this.nextId++;
      try {
        this.writer.send({ t: "req", id, op, args });
      } catch (err) {
        return reject(new FopError(err instanceof ProtocolError ? "EMSGSIZE" : "EIO", (err as Error).message, { xlator: this.opts.xlator, fop: op }));
      }
      this.lastWritten = id;
      this.pending.set(id, { resolve, reject, op });
    });
  }

  /** Sends a fop whose reply nobody waits for (see RequestMsg.nr); false if it could not be sent. */
  notify(op: FopName, args: unknown[]): boolean {
    if (this.isClosed) return false;
    const id = this.nextId++;
    try {
      this.writer.send({ t: "req", id, op, args, nr: true });
    } catch {
      return false;
    }
    // (it is the last request written: the reset rule of ConnectionLost counts it like any other)
    this.lastWritten = id;
    return true;
  }

  /** Gives up on the connection: pending fops fail with ENOTCONN. */
  abandon(reason: string): void {
    if (this.socket.destroyed) return;
    this.closeReason = reason;
    // Reset, not close: a plain close leaves unsent requests in the kernel's send queue, retransmitted
    // to the server once a partition heals — fops this side already failed would then be carried out.
    try {
      this.socket.resetAndDestroy();
    } catch {
      this.socket.destroy(); // TLS: no TCP handle of its own to reset
    }
  }

  /**
   * The server closed the connection (ours never half-close: it closed it, or its process died).
   * Requests written after that close — written before this process read it — reach a closed socket,
   * whose kernel answers with a reset; but a reset that comes after the close was read is reported
   * to no one. So with fops pending, wait a round trip, then write a ping: if it fails (EPIPE), the
   * reset came before it, and the reset rule (onClose) proves the last request unread, to be sent
   * again elsewhere. Without that, a fop written in this window counted as "maybe carried out".
   */
  private onPeerClosed(): void {
    if (this.socket.destroyed) return;
    this.peerClosed = true;
    this.closeReason = "the server closed the connection";
    if (this.pending.size === 0 || this.opts.tls) return void this.socket.destroy();
    const timer = setTimeout(() => {
      if (this.socket.destroyed) return;
      this.writer.sendWithResult({ t: "ping", id: this.nextId++ }, (err) => {
        if (err && isReset(err)) this.resetByPeer = true;
        this.socket.destroy();
      });
    }, RESET_WAIT_MS);
    timer.unref();
  }

  private onClose(): void {
    clearInterval(this.watchdog);
    const onLost = this.onLost;
    this.onLost = undefined;
    onLost?.(this.closeReason);
    const pending = [...this.pending];
    this.pending.clear();
    // Every pending request was written to the socket (request() refuses once it is destroyed), and
    // may have been carried out, with one exception. A TCP peer that closes with bytes it never read
    // (or that arrive after its close) answers with a reset; so after a reset, the last bytes written
    // never reached the server process, and the request they end was never carried out. (Not over
    // TLS, whose own records may follow ours.)
    const unread = this.resetByPeer && !this.opts.tls ? this.lastWritten : -1;
    for (const [id, p] of pending) {
      p.reject(new ConnectionLost(id !== unread, `${this.address}: ${this.closeReason}`, { xlator: this.opts.xlator, fop: p.op }));
    }
    this.markClosed(this.closeReason);
  }
}

/** The peer's kernel answered with a reset (to a read: ECONNRESET; to a write: EPIPE). */
function isReset(err: NodeJS.ErrnoException): boolean {
  return err.code === "ECONNRESET" || err.code === "EPIPE";
}

import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { ConfigError } from "../../../core/errors";
import { defineXlator, Xlator, type ReconfigureResult, type XlatorInit } from "../../../core/xlator";
import schema from "../../../../schema/xlators/protocol/server.json";
import { ServerConnection, type ConnectionHost } from "./connection";
import type { Change } from "./upcall";
import type { Invalidation, LostWrites } from "../../../core/types";
import { metrics } from "../../../core/metrics";
import { IoStats } from "../../debug/io-stats";
import { authorize, authRulesFor } from "../../../protocol";
import { trimOldest } from "../../../core/lru";

export interface ServerOptions {
  "transport-type": "tcp" | "tcp/server";
  "listen-port": number;
  "bind-address": string;
  ssl: boolean;
  "ssl-cert"?: string;
  "ssl-key"?: string;
  "ssl-ca"?: string;
  "max-frame-size": number;
  "handshake-timeout": number;
  [auth: `auth.ip.${string}.${"allow" | "reject"}`]: string[];
}

/** How long stop() waits for the connections' cleanup (fd releases down the graph). */
const STOP_WAIT_MS = 500;

const LIVE = (k: string) => k.startsWith("auth.ip.") || k === "max-frame-size" || k === "handshake-timeout" || k === "cache-invalidation";

/** Gfids changed recently, remembered to tell a client whose reply raced with a change (upcall.ts). */
const RECENT_CHANGES = 65536;

/**
 * protocol/server: exports the volumes of this graph over TCP (optionally TLS with client
 * certificates). A client may attach to any volume of the graph; auth.ip.<volume>.allow/reject decide.
 */
export class ProtocolServer extends Xlator implements ConnectionHost {
  private listener: net.Server | undefined;
  private readonly conns = new Set<ServerConnection>();
  /** The connections that asked for upcalls. */
  private readonly caching = new Set<ServerConnection>();
  /** Every accepted TCP socket, also those still in the TLS handshake (not yet a ServerConnection). */
  private readonly sockets = new Set<net.Socket>();
  private nextConn = 1;
  private readonly startedAt = Date.now();
  /** With metrics on: each exported volume behind an io-stats that counts what clients send it. */
  private readonly counted = new Map<string, Xlator>();
  /** Changes numbered in order; the last number of each recently changed gfid; what was forgotten. */
  private changeSeq = 0;
  private readonly recentChanges = new Map<string, number>();
  private forgottenUpTo = 0;

  constructor(init: XlatorInit<ServerOptions>) {
    super(init);
    const o = this.options;
    if (o.ssl === true && (!o["ssl-cert"] || !o["ssl-key"] || !o["ssl-ca"])) {
      throw this.configError("ssl on needs ssl-cert, ssl-key and ssl-ca", "ssl");
    }
  }

  resolveVolume(name: string): Xlator | undefined {
    const v = this.graph.get(name);
    if (!v || v.type === "protocol/server") return undefined;
    if (!metrics().isEnabled) return v;
    let counted = this.counted.get(name);
    if (!counted) {
      counted = new IoStats({ name: `${name}-io-stats`, type: "debug/io-stats", options: { "volume-label": name }, children: [v], log: this.log, graph: this.graph });
      this.counted.set(name, counted);
    }
    return counted;
  }

  /** What `gluster-ha status` asks for (getxattr "/" trusted.gha.server-status). */
  serverStatus(): Record<string, unknown> {
    const a = this.address();
    const replicate: Record<string, unknown>[] = [];
    const volumes: Record<string, unknown>[] = [];
    for (const [name, x] of this.graph) {
      if (x.type === "protocol/server") continue;
      volumes.push({ name, type: x.type, up: x.isUp() });
      if (x.type !== "cluster/afr") continue;
      const d = x.dump() as { splitBrain?: Record<string, unknown>; gfidMismatch?: unknown[]; healing?: unknown[]; healed?: unknown; children?: unknown };
      replicate.push({
        name, children: d.children, healing: d.healing?.length ?? 0, healed: d.healed,
        splitBrain: Object.keys(d.splitBrain ?? {}).length + (d.gfidMismatch?.length ?? 0),
      });
    }
    return {
      server: this.name, listening: a ? `${a.address}:${a.port}` : null, pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      clients: [...this.conns].map((c) => c.dump()), volumes, replicate,
    };
  }

  lockTranslators(): { releaseClient(client: string): unknown }[] {
    const out: { releaseClient(client: string): unknown }[] = [];
    for (const x of this.graph.values()) {
      const r = (x as unknown as { releaseClient?: unknown }).releaseClient;
      if (typeof r === "function") out.push(x as unknown as { releaseClient(client: string): unknown });
    }
    return out;
  }

  forget(conn: ServerConnection): void {
    this.conns.delete(conn);
    this.caching.delete(conn);
  }

  /** A connection asked for upcalls (it caches what it is told). */
  addCachingClient(conn: ServerConnection): void {
    this.caching.add(conn);
  }

  /** Whether any connection caches: without one, changes are neither numbered nor announced. */
  get hasCachingClients(): boolean {
    return this.caching.size > 0;
  }

  get changeNumber(): number {
    return this.changeSeq;
  }

  /** A connection's fop changed something: tell the other connections that asked and may have cached it. */
  publishChange(origin: ServerConnection, change: Change): void {
    const seq = ++this.changeSeq;
    for (const c of this.caching) if (c !== origin) c.announce(change);
    for (const g of change.gfids) {
      this.recentChanges.delete(g);
      this.recentChanges.set(g, seq);
    }
    trimOldest(this.recentChanges, RECENT_CHANGES, (_g, s) => (this.forgottenUpTo = s));
  }

  /** Below this server, something changed that no client made (a replica came or went): every client that caches hears it. */
  override othersChanged(change: Invalidation): void {
    for (const c of this.caching) c.announce(change);
  }

  /**
   * The brick exported as `from` lost answered writes (storage/posix): every client attached to it
   * hears it — the replicate volumes over it elsewhere (on clients, or on other servers) hold the other
   * copies. (A brick exported by name rather than as a subvolume is not heard here: the seed's servers
   * export theirs so, and their own replicate volume, which holds the brick as a child, takes it.)
   */
  override writesLost(files: LostWrites[], from: Xlator): void {
    this.log.warn({ msgid: "PS_LOST_WRITES_REPORTED", volume: from.name, paths: files.map((f) => f.path) }, "a brick lost answered writes: its clients are told");
    for (const c of this.conns) if (c.attachedVolume === from.name) c.reportLostWrites(files);
  }

  /** Whether the gfid changed after change number `since` (when not known any more: assume it did). */
  changedSince(gfid: string, since: number): boolean {
    // (nothing changed since: a listing's gfids need no look-up each)
    if (this.changeSeq <= since) return false;
    if (since < this.forgottenUpTo) return true;
    return (this.recentChanges.get(gfid) ?? 0) > since;
  }

  /** The address and port actually bound (listen-port 0 picks a free one). */
  address(): net.AddressInfo | undefined {
    const a = this.listener?.address();
    return a && typeof a === "object" ? a : undefined;
  }

  override async start(): Promise<void> {
    if (this.listener) return;
    const o = this.options;
    const onSocket = (socket: net.Socket) => {
      const id = `${this.name}#${this.nextConn++}@${socket.remoteAddress}:${socket.remotePort}`;
      this.conns.add(new ServerConnection(this, socket, id));
    };
    let listener: net.Server;
    if (o.ssl === true) {
      const read = (key: string) => {
        try {
          return readFileSync(String(o[key]));
        } catch (err) {
          throw this.configError(`cannot read ${String(o[key])}: ${(err as Error).message}`, key);
        }
      };
      listener = tls.createServer({
        cert: read("ssl-cert"), key: read("ssl-key"), ca: read("ssl-ca"), requestCert: true, rejectUnauthorized: true,
      }, onSocket);
      listener.on("tlsClientError", (err, socket) =>
        this.log.warn({ msgid: "PS_TLS_FAILED", address: socket.remoteAddress, err: err.message }, "TLS handshake with a client failed"));
    } else {
      listener = net.createServer(onSocket);
    }
    const host = String(o["bind-address"] ?? "0.0.0.0");
    const port = Number(o["listen-port"] ?? 6996);
    await new Promise<void>((resolve, reject) => {
      listener.once("error", (err: NodeJS.ErrnoException) =>
        reject(new ConfigError(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { volume: this.name, option: "listen-port" })));
      listener.listen({ host, port }, () => resolve());
    });
    listener.on("error", (err) => this.log.error({ err: err.message }, "listener error"));
    listener.on("connection", (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    this.listener = listener;
    this.log.info({ msgid: "PS_LISTENING", address: host, port: this.address()?.port, ssl: o.ssl === true }, "listening");
  }

  override async stop(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    // server.close() calls back only once every connection has ended: drop them first, not after.
    const closed = listener ? new Promise<void>((r) => listener.close(() => r())) : Promise.resolve();
    const conns = [...this.conns];
    for (const c of conns) c.close();
    for (const socket of this.sockets) socket.destroy();
    // Releasing the clients' fds goes down the graph; a child stuck on a silent peer must not hold up the stop.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), STOP_WAIT_MS)));
    const done = await Promise.race([Promise.all([closed, ...conns.map((c) => c.done)]), late]);
    clearTimeout(timer);
    if (done === "late") this.log.warn({ msgid: "PS_STOP_SLOW", connections: this.conns.size }, `connections not cleaned up within ${STOP_WAIT_MS} ms; stopping anyway`);
  }

  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const keys = new Set([...Object.keys(options), ...Object.keys(this.options)]);
    const changed = [...keys].filter((k) => JSON.stringify(options[k]) !== JSON.stringify(this.options[k]));
    const applied = changed.filter(LIVE);
    const needsRestart = changed.filter((k) => !LIVE(k));
    const next = { ...this.options };
    for (const k of applied) {
      if (options[k] === undefined) delete next[k];
      else next[k] = options[k];
    }
    this.options = next;
    // As GlusterFS: changed auth rules also apply to clients already attached; those now refused go.
    if (applied.some((k) => k.startsWith("auth.ip."))) {
      for (const c of this.conns) {
        if (!c.attachedVolume) continue;
        const decision = authorize(c.address, authRulesFor(this.options, c.attachedVolume));
        if (decision.ok) continue;
        this.log.warn({ msgid: "PS_AUTH_REFUSED", client: c.id, address: c.address, exportedVolume: c.attachedVolume, code: "EACCES" },
          `access revoked by reconfigure: ${decision.reason}`);
        c.close();
      }
    }
    return { applied, needsRestart };
  }

  override dump(): Record<string, unknown> {
    const a = this.address();
    return { listening: a ? `${a.address}:${a.port}` : null, connections: [...this.conns].map((c) => c.dump()) };
  }

  override isUp(): boolean {
    return this.listener !== undefined;
  }
}

export default defineXlator<ServerOptions>({
  type: "protocol/server",
  schema,
  children: { min: 1, max: 64 },
  init: (init) => new ProtocolServer(init),
});

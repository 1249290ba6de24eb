import { Packr, Unpackr } from "msgpackr";
import { FOP_NAMES, type FopName } from "../core/fops";

/**
 * The messages of the wire protocol (see docs/protocol.md). Every message is one msgpack map;
 * Buffers travel as msgpack `bin` (no base64) and decode as views of the received frame (no copy).
 */
export const PROTOCOL_VERSION = 1;

/** Client -> server, first message of a connection. */
export interface HelloMsg {
  t: "hello";
  version: number;
  /** The volume of the server's graph to attach to (remote-subvolume). */
  volume: string;
  /** Seconds after which the server may drop a connection it heard nothing from (the client pings well within it). */
  timeout?: number;
  /** Free-form label of the client (host/pid) for the server's logs. */
  label?: string;
  /**
   * Seconds the client caches what it is told (md-cache): the server sends it `upcall`s about changes
   * others make to what it looked at within that time. Absent: no upcalls (earlier clients).
   */
  upcalls?: number;
  /** The client understands `lost-writes` (earlier clients do not: they are never sent one). */
  lostWrites?: true;
}
/** Server -> client: the handshake succeeded; `client` is the identity the server gave this connection. */
/** `fops`: what the server serves (absent: the first version's set, without LATER_FOPS). */
/** `upcalls`: the server will send them (the client asked, and the server's cache-invalidation is on). */
export interface HelloOkMsg { t: "hello-ok"; version: number; client: string; fops?: string[]; upcalls?: boolean }
/** Server -> client: the handshake was refused (EACCES: auth, ENOENT: no such volume, EPROTO: version). */
export interface HelloErrMsg { t: "hello-err"; code: string; message: string }
/**
 * `pl`: the index of the argument that travels as the frame's raw payload (see framing.ts).
 * `nr`: the client wants no reply (a release: nothing it would do with one; a server that does not
 * know the flag replies anyway, and the client ignores a reply it does not wait for).
 */
export interface RequestMsg { t: "req"; id: number; op: FopName; args: unknown[]; pl?: number; nr?: true }
/** `pl: -1`: the result is the frame's raw payload. */
export interface ReplyOkMsg { t: "rep"; id: number; ok: unknown; pl?: number }
export interface ReplyErrMsg { t: "rep"; id: number; err: { code: string; message: string } }
export interface PingMsg { t: "ping"; id: number }
export interface PongMsg { t: "pong"; id: number }
/**
 * Server -> client, unasked: others changed these (GlusterFS's cache-invalidation upcall). `gfids` and
 * `paths`: files whose attributes or xattrs changed; `entries`: names created, removed or renamed;
 * `links`: a name of a file not known by gfid went away (files with several names may have one fewer);
 * `all`: anything may have changed (a replica below the server came back or went away).
 */
export interface UpcallMsg { t: "upcall"; gfids: string[]; paths: string[]; entries: string[]; links?: boolean; all?: boolean }

/**
 * Server -> client, unasked: the exported brick's copies of these files lack writes it had answered
 * (its disk refused them afterwards; storage/posix's writeback-after). `gfids[i]` is `paths[i]`'s.
 */
export interface LostWritesMsg { t: "lost-writes"; gfids: string[]; paths: string[] }

export type ClientMsg = HelloMsg | RequestMsg | PingMsg;
export type ServerMsg = HelloOkMsg | HelloErrMsg | ReplyOkMsg | ReplyErrMsg | PongMsg | UpcallMsg | LostWritesMsg;
export type Msg = ClientMsg | ServerMsg;

/** Anything wrong with the bytes on the wire: the connection that sent them is dropped. */
export class ProtocolError extends Error {
  readonly code = "EPROTO";
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

// Self-describing maps (no shared record structures), so either side can restart independently.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Encodes a message body (without the length prefix). */
export function encodeMsg(msg: Msg): Buffer {
  return packr.pack(msg);
}

const FOPS: ReadonlySet<string> = new Set(FOP_NAMES);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");
const isId = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

function unpack(body: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = unpackr.unpack(body);
  } catch (err) {
    throw new ProtocolError(`undecodable frame (${(err as Error).message})`);
  }
  if (!isObj(v) || typeof v.t !== "string") throw new ProtocolError("frame is not a message");
  return v;
}

/** Decodes and checks a frame a client sent; throws ProtocolError on anything malformed. */
export function decodeClientMsg(body: Buffer, payload?: Buffer): ClientMsg {
  const m = unpack(body);
  if (m.t !== "req" && payload) throw new ProtocolError(`unexpected payload on ${String(m.t)}`);
  switch (m.t) {
    case "hello":
      if (typeof m.version !== "number" || typeof m.volume !== "string") throw new ProtocolError("malformed hello");
      return m as unknown as HelloMsg;
    case "req":
      if (!isId(m.id)) throw new ProtocolError("request without a valid id");
      if (typeof m.op !== "string" || !FOPS.has(m.op)) throw new ProtocolError(`unknown op ${JSON.stringify(m.op)}`);
      if (!Array.isArray(m.args) || !isObj(m.args[0])) throw new ProtocolError(`malformed arguments for ${m.op}`);
      if (m.nr !== undefined && m.nr !== true) throw new ProtocolError(`malformed no-reply flag on ${m.op}`);
      if (payload || m.pl !== undefined) {
        if (!payload || typeof m.pl !== "number" || !Number.isInteger(m.pl) || m.pl < 1 || m.pl >= m.args.length) {
          throw new ProtocolError(`payload and its argument index disagree on ${m.op}`);
        }
        m.args[m.pl] = payload;
      }
      return m as unknown as RequestMsg;
    case "ping":
      if (!isId(m.id)) throw new ProtocolError("ping without a valid id");
      return m as unknown as PingMsg;
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(m.t)}`);
  }
}

/** Decodes and checks a frame a server sent; throws ProtocolError on anything malformed. */
export function decodeServerMsg(body: Buffer, payload?: Buffer): ServerMsg {
  const m = unpack(body);
  if (payload || m.pl !== undefined) {
    if (m.t !== "rep" || !payload || m.pl !== -1 || "err" in m) throw new ProtocolError("unexpected payload");
    m.ok = payload;
  }
  switch (m.t) {
    case "hello-ok":
      if (typeof m.client !== "string") throw new ProtocolError("malformed hello-ok");
      return m as unknown as HelloOkMsg;
    case "hello-err":
      if (typeof m.code !== "string") throw new ProtocolError("malformed hello-err");
      return { t: "hello-err", code: m.code, message: String(m.message ?? m.code) };
    case "rep":
      if (!isId(m.id)) throw new ProtocolError("reply without a valid id");
      if ("err" in m && (!isObj(m.err) || typeof m.err.code !== "string")) throw new ProtocolError("malformed error reply");
      return m as unknown as ReplyOkMsg | ReplyErrMsg;
    case "pong":
      if (!isId(m.id)) throw new ProtocolError("pong without a valid id");
      return m as unknown as PongMsg;
    case "upcall":
      for (const k of ["gfids", "paths", "entries"] as const) {
        const v = m[k];
        if (!isStrings(v)) throw new ProtocolError(`malformed upcall (${k})`);
      }
      return m as unknown as UpcallMsg;
    case "lost-writes":
      if (!isStrings(m.gfids) || !isStrings(m.paths) || m.gfids.length !== m.paths.length) throw new ProtocolError("malformed lost-writes");
      return m as unknown as LostWritesMsg;
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(m.t)}`);
  }
}

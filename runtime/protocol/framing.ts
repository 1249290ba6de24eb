import type { Duplex } from "node:stream";
import { encodeMsg, ProtocolError, type Msg } from "./codec";

/** The frame header: two big-endian uint32, the length of the msgpack part and of the raw payload. */
export const HEADER_BYTES = 8;
/** Buffers at least this big travel as the frame's raw payload instead of inside the msgpack part. */
export const PAYLOAD_MIN = 4096;

/** One received frame: the msgpack part and the raw payload (both views of the received bytes when possible). */
export interface Frame {
  meta: Buffer;
  payload: Buffer | undefined;
}

/**
 * Splits a byte stream into frames. A frame that lies inside one received chunk is returned as views
 * of it (no copy); only a frame spanning chunks is concatenated, once. A frame longer than `maxFrame`
 * (or with an empty msgpack part) throws ProtocolError before anything of it is buffered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private metaLen = -1;
  private payloadLen = 0;

  constructor(public maxFrame: number) {}

  /** Bytes received but not yet returned as a frame (a truncated frame at close). */
  get pending(): number {
    return this.buffered + (this.metaLen >= 0 ? HEADER_BYTES : 0);
  }

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.metaLen < 0) {
        if (this.buffered < HEADER_BYTES) break;
        const h = this.take(HEADER_BYTES);
        const metaLen = h.readUInt32BE(0);
        const payloadLen = h.readUInt32BE(4);
        if (metaLen === 0) throw new ProtocolError("frame without a message");
        if (metaLen + payloadLen > this.maxFrame) {
          throw new ProtocolError(`frame of ${metaLen + payloadLen} bytes exceeds the maximum of ${this.maxFrame}`);
        }
        this.metaLen = metaLen;
        this.payloadLen = payloadLen;
      }
      const len = this.metaLen + this.payloadLen;
      if (this.buffered < len) break;
      const body = this.take(len);
      frames.push({ meta: body.subarray(0, this.metaLen), payload: this.payloadLen > 0 ? body.subarray(this.metaLen) : undefined });
      this.metaLen = -1;
    }
    return frames;
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return out;
    }
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        parts.push(c);
        this.chunks.shift();
        left -= c.length;
      } else {
        parts.push(c.subarray(0, left));
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    return Buffer.concat(parts, n);
  }
}

/** Takes a big Buffer out of a request's arguments or a reply's result, to send it as the raw payload. */
function splitPayload(msg: Msg): [Msg, Buffer | undefined] {
  if (msg.t === "req") {
    const i = msg.args.findIndex((a) => Buffer.isBuffer(a) && a.length >= PAYLOAD_MIN);
    if (i < 0) return [msg, undefined];
    const args = msg.args.slice();
    args[i] = null;
    return [{ ...msg, args, pl: i }, msg.args[i] as Buffer];
  }
  if (msg.t === "rep" && "ok" in msg && Buffer.isBuffer(msg.ok) && msg.ok.length >= PAYLOAD_MIN) {
    return [{ t: "rep", id: msg.id, ok: null, pl: -1 }, msg.ok];
  }
  return [msg, undefined];
}

/** Encodes one frame as [header, msgpack] or [header, msgpack, payload]: the payload is never copied. */
export function encodeFrame(msg: Msg, maxFrame = Infinity): Buffer[] {
  const [rest, payload] = splitPayload(msg);
  const meta = encodeMsg(rest);
  const payloadLen = payload?.length ?? 0;
  if (meta.length + payloadLen > maxFrame) {
    throw new ProtocolError(`message of ${meta.length + payloadLen} bytes exceeds the maximum frame of ${maxFrame}`);
  }
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(meta.length, 0);
  header.writeUInt32BE(payloadLen, 4);
  return payload ? [header, meta, payload] : [header, meta];
}

/**
 * Writes frames to a socket. Frames produced in the same turn of the event loop leave in one
 * writev (cork until setImmediate), which matters with many small replies in flight.
 * `send` returns false when the socket's buffer is full: the caller should stop producing until 'drain'.
 */
export class FrameWriter {
  private corked = false;

  constructor(private readonly socket: Duplex, public maxFrame = Infinity) {}

  send(msg: Msg): boolean {
    const parts = encodeFrame(msg, this.maxFrame);
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return true;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      setImmediate(() => {
        this.corked = false;
        s.uncork();
      });
    }
    let ok = true;
    for (const p of parts) ok = s.write(p);
    return ok;
  }
}

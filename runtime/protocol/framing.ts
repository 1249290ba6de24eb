import type { Duplex } from "node:stream";
import { encodeMsg, ProtocolError, type Msg } from "./codec";

/** Bytes of the big-endian length that precedes every frame. */
export const HEADER_BYTES = 4;

/**
 * Splits a byte stream into frames (4-byte big-endian length + body). A body that lies inside one
 * received chunk is returned as a view of it (no copy); only a frame spanning chunks is concatenated.
 * A length above `maxFrame` (or zero) throws ProtocolError before anything of it is buffered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1;

  constructor(public maxFrame: number) {}

  /** Bytes received but not yet returned as a frame (a truncated frame at close). */
  get pending(): number {
    return this.buffered + (this.need >= 0 ? HEADER_BYTES : 0);
  }

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < HEADER_BYTES) break;
        const len = this.take(HEADER_BYTES).readUInt32BE(0);
        if (len === 0) throw new ProtocolError("empty frame");
        if (len > this.maxFrame) throw new ProtocolError(`frame of ${len} bytes exceeds the maximum of ${this.maxFrame}`);
        this.need = len;
      }
      if (this.buffered < this.need) break;
      frames.push(this.take(this.need));
      this.need = -1;
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

/** Encodes one frame as [header, body] (two buffers: the body is never copied to prepend the length). */
export function encodeFrame(msg: Msg, maxFrame = Infinity): [Buffer, Buffer] {
  const body = encodeMsg(msg);
  if (body.length > maxFrame) throw new ProtocolError(`message of ${body.length} bytes exceeds the maximum frame of ${maxFrame}`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  return [header, body];
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
    const [header, body] = encodeFrame(msg, this.maxFrame);
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return true;
    if (process.env.NOCORK) { s.write(header); return s.write(body); }
    if (!this.corked) {
      this.corked = true;
      s.cork();
      setImmediate(() => {
        this.corked = false;
        s.uncork();
      });
    }
    s.write(header);
    return s.write(body);
  }
}

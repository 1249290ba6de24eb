import type { Duplex } from "node:stream";
import { transientBuffer } from "../core/transient-buffers";
import { encodeMsg, ProtocolError, type Msg } from "./codec";

/** The frame header: two big-endian uint32, the length of the msgpack part and of the raw payload. */
export const HEADER_BYTES = 8;
/** Buffers at least this big travel as the frame's raw payload instead of inside the msgpack part. */
export const PAYLOAD_MIN = 4096;

/** Receive buffers at least this big are counted as transient (core/transient-buffers). */
const TRANSIENT_MIN = 65536;
/**
 * Frames up to this size get their receive buffer in one allocation when their first bytes arrive:
 * the largest write (1 MiB, FUSE's max_write) with its message. (At 1 MiB exactly, every such write
 * was received into 1 MiB, then copied into a buffer of its full size.)
 */
export const EAGER_BYTES = (1 << 20) + 65536;

/** One received frame: the msgpack part and the raw payload (both views of the received bytes when possible). */
export interface Frame {
  meta: Buffer;
  payload: Buffer | undefined;
}

/**
 * Splits a byte stream into frames. A frame that lies inside one received chunk is returned as views
 * of it (no copy). A frame spanning chunks gets its buffer allocated once, when its header has been
 * read, and each chunk's part is copied into it as it arrives (one copy, no list of chunks to join).
 * A frame longer than `maxFrame` (or with an empty msgpack part) throws ProtocolError before anything
 * of it is buffered.
 *
 * `push(chunk, transient = true)` is for a chunk in a buffer the caller reuses (a socket's `onread`
 * buffer): nothing returned or kept refers to it, so frames inside it are copied too.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerGot = 0;
  private metaLen = -1;
  private payloadLen = 0;
  /** The frame being filled across chunks, and how much of it has arrived. */
  private body: Buffer | undefined;
  private bodyGot = 0;

  constructor(public maxFrame: number) {}

  /** Bytes received but not yet returned as a frame (a truncated frame at close). */
  get pending(): number {
    return this.headerGot + this.bodyGot;
  }

  push(chunk: Buffer, transient = false): Frame[] {
    const frames: Frame[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.metaLen < 0) {
        const n = Math.min(HEADER_BYTES - this.headerGot, chunk.length - at);
        chunk.copy(this.header, this.headerGot, at, at + n);
        this.headerGot += n;
        at += n;
        if (this.headerGot < HEADER_BYTES) break;
        this.startFrame();
        continue;
      }
      const len = this.metaLen + this.payloadLen;
      if (!this.body && chunk.length - at >= len) {
        // The whole frame is in this chunk: a view of it, or a copy if the chunk's buffer is reused.
        const whole = chunk.subarray(at, at + len);
        frames.push(this.frame(transient ? Buffer.from(whole) : whole));
        at += len;
        continue;
      }
      const n = Math.min(len - this.bodyGot, chunk.length - at);
      this.reserve(len, this.bodyGot + n);
      chunk.copy(this.body!, this.bodyGot, at, at + n);
      this.bodyGot += n;
      at += n;
      if (this.bodyGot < len) break;
      frames.push(this.frame(this.body!));
    }
    return frames;
  }

  /**
   * Makes room for `need` bytes of a `len`-byte frame. Frames up to EAGER_BYTES get their whole buffer
   * at once; bigger ones grow with what has arrived (doubling), so a peer that sends a big header and
   * then little does not make us reserve maxFrame bytes.
   */
  private reserve(len: number, need: number): void {
    const have = this.body?.length ?? 0;
    if (need <= have) return;
    const size = len <= EAGER_BYTES ? len : Math.min(len, Math.max(need, have * 2, EAGER_BYTES));
    const grown = Buffer.allocUnsafe(size);
    if (size >= TRANSIENT_MIN) transientBuffer(size);
    this.body?.copy(grown, 0, 0, this.bodyGot);
    this.body = grown;
  }

  private startFrame(): void {
    const metaLen = this.header.readUInt32BE(0);
    const payloadLen = this.header.readUInt32BE(4);
    if (metaLen === 0) throw new ProtocolError("frame without a message");
    if (metaLen + payloadLen > this.maxFrame) {
      throw new ProtocolError(`frame of ${metaLen + payloadLen} bytes exceeds the maximum of ${this.maxFrame}`);
    }
    this.metaLen = metaLen;
    this.payloadLen = payloadLen;
  }

  private frame(body: Buffer): Frame {
    const f = { meta: body.subarray(0, this.metaLen), payload: this.payloadLen > 0 ? body.subarray(this.metaLen) : undefined };
    this.metaLen = -1;
    this.headerGot = 0;
    this.body = undefined;
    this.bodyGot = 0;
    return f;
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
 * Writes frames to a socket. The first frame of a turn of the event loop leaves at once (one writev):
 * it waits for nothing else the turn does — cluster/afr sends a replica's part of a fop and only then
 * does the local brick's synchronous part, so the two overlap. The frames that follow it in the same
 * turn leave together in one writev (cork until setImmediate), which matters with many small replies
 * in flight. `send` returns false when the socket's buffer is full: stop producing until 'drain'.
 */
export class FrameWriter {
  private corked = false;

  constructor(private readonly socket: Duplex, public maxFrame = Infinity) {}

  send(msg: Msg): boolean {
    const parts = encodeFrame(msg, this.maxFrame);
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return true;
    let ok = true;
    // (one writev for the frame's parts; a no-op uncork while the turn's cork holds)
    s.cork();
    for (const p of parts) ok = s.write(p);
    s.uncork();
    if (this.corked) return ok;
    this.corked = true;
    s.cork();
    setImmediate(() => {
      this.corked = false;
      s.uncork();
    });
    return ok;
  }

  /** Writes one frame; `done` hears whether the write itself failed (send() leaves that to 'error'). */
  sendWithResult(msg: Msg, done: (err: NodeJS.ErrnoException | null | undefined) => void): void {
    this.socket.write(Buffer.concat(encodeFrame(msg, this.maxFrame)), done);
  }
}

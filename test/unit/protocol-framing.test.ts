// FrameDecoder: a 1 MiB write spanning many reads is received into one buffer. FrameWriter: when frames leave. The first frame of a turn goes at once, as one write of its parts
// (cluster/afr sends a replica's part of a fop, then does the local brick's synchronous part: they
// overlap only if the frame has left); the rest of the turn's frames leave together after it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import { decodeClientMsg, FrameDecoder, FrameWriter } from "../../runtime/protocol";

/** A socket stand-in that records each write the stream hands down (one entry per write/writev). */
function recordingSocket(): { socket: Duplex; writes: Buffer[][] } {
  const writes: Buffer[][] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      writes.push([chunk]);
      cb();
    },
    writev(chunks: { chunk: Buffer }[], cb) {
      writes.push(chunks.map((c) => c.chunk));
      cb();
    },
  });
  return { socket, writes };
}

const CTX = { uid: 0, gid: 0, pid: 1, lkOwner: "o", client: "c" };
const req = (id: number, payload?: Buffer) => payload
  ? { t: "req" as const, id, op: "write" as const, args: [CTX, { n: 1 }, payload, 0] }
  : { t: "req" as const, id, op: "lookup" as const, args: [CTX, { path: `/f${id}` }] };

test("the first frame of a turn is written at once, header, message and payload in one write", () => {
  const { socket, writes } = recordingSocket();
  const w = new FrameWriter(socket);
  w.send(req(1, Buffer.alloc(8192, 7)));
  assert.equal(writes.length, 1, "written before the turn ends");
  assert.equal(writes[0]!.length, 3, "header, msgpack part and raw payload together");
  const frames = new FrameDecoder(1 << 20).push(Buffer.concat(writes[0]!));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.payload?.length, 8192);
});

test("the frames after it in the same turn leave together once the turn is over, in order", async () => {
  const { socket, writes } = recordingSocket();
  const w = new FrameWriter(socket);
  for (let id = 1; id <= 5; id++) w.send(req(id));
  assert.equal(writes.length, 1, "only the first has left");
  await new Promise((r) => setImmediate(r));
  assert.equal(writes.length, 2, "the other four in one writev");
  const decoder = new FrameDecoder(1 << 20);
  const ids = writes.flatMap((parts) => decoder.push(Buffer.concat(parts))).map((f) => (decodeClientMsg(f.meta, f.payload) as { id: number }).id);
  assert.deepEqual(ids, [1, 2, 3, 4, 5]);
  // the next turn's first frame leaves at once again
  w.send(req(6));
  assert.equal(writes.length, 3);
});

test("a 1 MiB write arriving in 64 KiB reads is received into one buffer of its size, allocated once", (t) => {
  const { socket, writes } = recordingSocket();
  new FrameWriter(socket).send(req(1, Buffer.alloc(1 << 20, 9)));
  const bytes = Buffer.concat(writes[0]!);
  const big: number[] = [];
  const allocUnsafe = Buffer.allocUnsafe;
  t.mock.method(Buffer, "allocUnsafe", (n: number) => {
    if (n >= 1 << 20) big.push(n);
    return allocUnsafe.call(Buffer, n);
  });
  const decoder = new FrameDecoder(64 << 20);
  const frames = [];
  for (let at = 0; at < bytes.length; at += 65536) frames.push(...decoder.push(bytes.subarray(at, at + 65536)));
  assert.equal(frames.length, 1);
  assert.deepEqual(frames[0]!.payload, Buffer.alloc(1 << 20, 9));
  assert.deepEqual(big, [bytes.length - 8], "one allocation, of the frame's size");
});

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  EAGER_BYTES, FrameDecoder, ProtocolError, decodeClientMsg, type Frame, decodeServerMsg, encodeFrame, encodeMsg, PROTOCOL_VERSION,
} from "../../runtime/protocol";

const frameOf = (msg: Parameters<typeof encodeFrame>[0]) => Buffer.concat(encodeFrame(msg));

test("a big Buffer travels as the raw payload: not copied when sent, a view of the frame when received", () => {
  const data = Buffer.alloc(128 * 1024, 0xab);
  const parts = encodeFrame({ t: "req", id: 7, op: "write", args: [{ uid: 0 }, 3, data, 4096, undefined] });
  assert.equal(parts.length, 3);
  assert.equal(parts[2], data, "the caller's Buffer itself is written (no copy)");
  assert.ok(parts[1]!.length < 100);
  const wire = Buffer.concat(parts);
  const [f] = new FrameDecoder(1 << 20).push(wire);
  const m = decodeClientMsg(f!.meta, f!.payload);
  assert.equal(m.t, "req");
  if (m.t !== "req") return;
  const got = m.args[2] as Buffer;
  assert.ok(Buffer.isBuffer(got) && got.equals(data));
  assert.equal(got.buffer, wire.buffer, "the received Buffer is a view of the frame");
  assert.equal(m.args[3], 4096);
  const rep = new FrameDecoder(1 << 20).push(Buffer.concat(encodeFrame({ t: "rep", id: 7, ok: data })))[0]!;
  assert.ok((decodeServerMsg(rep.meta, rep.payload) as { ok: Buffer }).ok.equals(data));
});

test("small Buffers stay inside the msgpack part as binary (no base64)", () => {
  const small = Buffer.alloc(1000, 3);
  const body = encodeMsg({ t: "req", id: 1, op: "setxattr", args: [{}, { path: "/" }, "user.a", small, 0] });
  assert.ok(body.length < 1100);
  const m = decodeClientMsg(body) as { args: unknown[] };
  assert.ok(Buffer.isBuffer(m.args[3]) && (m.args[3] as Buffer).equals(small));
});

test("a payload that does not match its index is a protocol error", () => {
  const meta = encodeMsg({ t: "req", id: 1, op: "write", args: [{}, 1, null, 0], pl: 9 });
  assert.throws(() => decodeClientMsg(meta, Buffer.alloc(5000)), ProtocolError);
  assert.throws(() => decodeClientMsg(encodeMsg({ t: "ping", id: 1 }), Buffer.alloc(5000)), ProtocolError);
  assert.throws(() => decodeServerMsg(encodeMsg({ t: "rep", id: 1, ok: null, pl: -1 })), ProtocolError);
});

test("frames split at every byte boundary decode to the same messages", () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }), (cuts) => {
    const msgs = [
      { t: "hello", version: PROTOCOL_VERSION, volume: "gfs" },
      { t: "req", id: 1, op: "stat", args: [{ uid: 1 }, { path: "/a" }] },
      { t: "ping", id: 2 },
      { t: "req", id: 3, op: "write", args: [{}, 1, Buffer.alloc(300, 1), 0] },
      { t: "req", id: 4, op: "write", args: [{}, 1, Buffer.alloc(9000, 2), 0] },
    ] as const;
    const stream = Buffer.concat(msgs.map((m) => frameOf(m as never)));
    const dec = new FrameDecoder(1 << 20);
    const out: Frame[] = [];
    let pos = 0;
    for (const c of cuts) {
      if (pos >= stream.length) break;
      out.push(...dec.push(stream.subarray(pos, pos + c)));
      pos += c;
    }
    if (pos < stream.length) out.push(...dec.push(stream.subarray(pos)));
    assert.equal(out.length, msgs.length);
    assert.deepEqual(out.map((f) => decodeClientMsg(f.meta, f.payload).t), msgs.map((m) => m.t));
    assert.equal(dec.pending, 0);
  }));
});

test("a frame inside one chunk is returned as a view; one spanning chunks is joined", () => {
  const f = frameOf({ t: "ping", id: 1 });
  const two = Buffer.concat([f, f]);
  const dec = new FrameDecoder(1024);
  const frames = dec.push(two);
  assert.equal(frames.length, 2);
  assert.equal(frames[0]!.meta.buffer, two.buffer);
  const dec2 = new FrameDecoder(1024);
  assert.equal(dec2.push(f.subarray(0, 10)).length, 0);
  assert.equal(dec2.pending, 10);
  assert.equal(dec2.push(f.subarray(6)).length, 1);
});

test("a length above the maximum frame size is refused before buffering (EPROTO)", () => {
  const dec = new FrameDecoder(65536);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(100, 0);
  header.writeUInt32BE(0xfffffff0, 4);
  assert.throws(() => dec.push(header), (e: unknown) => e instanceof ProtocolError && e.code === "EPROTO");
  const zero = Buffer.alloc(8);
  assert.throws(() => new FrameDecoder(100).push(zero), ProtocolError);
});

test("the sender refuses a message larger than the maximum frame", () => {
  assert.throws(() => encodeFrame({ t: "req", id: 1, op: "write", args: [{}, 1, Buffer.alloc(70000), 0] }, 65536), ProtocolError);
});

test("garbage, unknown ops and malformed messages are protocol errors", () => {
  const bad = [
    Buffer.from([0xc1]), // never-used msgpack byte
    encodeMsg({ t: "req", id: 1, op: "format-disk", args: [{}] } as never),
    encodeMsg({ t: "req", id: -1, op: "stat", args: [{}] } as never),
    encodeMsg({ t: "req", id: 1, op: "stat", args: "nope" } as never),
    encodeMsg({ t: "req", id: 1, op: "stat", args: [] } as never),
    encodeMsg({ t: "req", id: 1, op: "release", args: [{}], nr: 1 } as never), // the no-reply flag is true or absent
    encodeMsg({ t: "hello", version: "1" } as never),
    encodeMsg({ t: "what" } as never),
    Buffer.from([0x93, 1, 2, 3]), // an array, not a message
    Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), // an array claiming 4 G elements
  ];
  for (const b of bad) assert.throws(() => decodeClientMsg(b), ProtocolError, b.toString("hex"));
  assert.throws(() => decodeServerMsg(encodeMsg({ t: "rep", id: 1, err: "x" } as never)), ProtocolError);
  assert.throws(() => decodeServerMsg(encodeMsg({ t: "req", id: 1, op: "stat", args: [{}] })), ProtocolError);
  // lost-writes: a gfid for each path
  assert.deepEqual(decodeServerMsg(encodeMsg({ t: "lost-writes", gfids: ["g"], paths: ["/f"] })), { t: "lost-writes", gfids: ["g"], paths: ["/f"] });
  for (const m of [{ t: "lost-writes", gfids: ["g"], paths: [] }, { t: "lost-writes", gfids: [1], paths: ["/f"] }, { t: "lost-writes", gfids: ["g"] }]) {
    assert.throws(() => decodeServerMsg(encodeMsg(m as never)), ProtocolError, JSON.stringify(m));
  }
});

test("an error reply carries its errno code back", () => {
  const m = decodeServerMsg(encodeMsg({ t: "rep", id: 9, err: { code: "ENOENT", message: "no such file" } }));
  assert.deepEqual(m, { t: "rep", id: 9, err: { code: "ENOENT", message: "no such file" } });
});

test("frames from a reused read buffer (transient chunks) stay intact after the buffer is overwritten", () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 30 }), (cuts) => {
    const sizes = [0, 300, 9000, 131072];
    const msgs = sizes.map((n, id) => ({ t: "rep" as const, id, ok: n === 0 ? "small" : Buffer.alloc(n, id + 1) }));
    const stream = Buffer.concat(msgs.map((m) => Buffer.concat(encodeFrame(m))));
    const reused = Buffer.alloc(65536);
    const dec = new FrameDecoder(1 << 20);
    const out: Frame[] = [];
    let pos = 0;
    for (let k = 0; pos < stream.length; k++) {
      const n = Math.min(cuts[k % cuts.length]!, stream.length - pos, reused.length);
      stream.copy(reused, 0, pos, pos + n);
      out.push(...dec.push(reused.subarray(0, n), true));
      reused.fill(0xee);
      pos += n;
    }
    assert.equal(out.length, msgs.length);
    out.forEach((f, i) => assert.deepEqual((decodeServerMsg(f.meta, f.payload) as { ok: unknown }).ok, msgs[i]!.ok));
    assert.equal(dec.pending, 0);
  }));
});

test("a big frame's buffer grows with what arrives, not with what its header announces", () => {
  const dec = new FrameDecoder(16 << 20);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(10, 0);
  header.writeUInt32BE(15 << 20, 4);
  assert.deepEqual(dec.push(Buffer.concat([header, Buffer.alloc(100)])), []);
  assert.equal(dec.pending, 108);
  // (at most what a 1 MiB write and its message take, which any frame may get at once)
  assert.ok(((dec as unknown as { body: Buffer }).body.length) <= EAGER_BYTES, "no 15 MiB reserved for 100 bytes");
});

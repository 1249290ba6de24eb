// Bad input on the wire drops only the connection that sent it; the server process keeps serving a
// well-behaved client throughout. Real server process on 127.0.0.2:24140.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { FopError } from "../../runtime/core/errors";
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import type { CallCtx } from "../../runtime/core/types";
import { decodeServerMsg, encodeFrame, PROTOCOL_VERSION } from "../../runtime/protocol";
import { ProtocolClient } from "../../runtime/xlators/protocol/client";
import { clientVolfile, startBrickServer, stopAllServers, type ServerProc } from "../helpers/servers";

const HOST = "127.0.0.2";
const PORT = 24140;
const CTX: CallCtx = { uid: 0, gid: 0, pid: process.pid, lkOwner: "t", client: "local" };
let server: ServerProc;
let healthy: Graph;

before(async () => {
  server = await startBrickServer({ host: HOST, port: PORT, allow: { locks: "127.0.0.*" }, serverOptions: ["handshake-timeout 1"] });
  healthy = Graph.fromText(clientVolfile({ hosts: HOST, port: PORT }), "client.vol", { log: silentLogger() });
  await healthy.start();
});
after(async () => {
  await healthy?.stop();
  await stopAllServers();
});

const frame = (msg: Parameters<typeof encodeFrame>[0]) => Buffer.concat(encodeFrame(msg));
const hello = frame({ t: "hello", version: PROTOCOL_VERSION, volume: "locks" });

/** Sends `bytes` (after an optional handshake) and resolves with how long the server took to close the socket. */
function sendAndAwaitClose(bytes: Buffer[], opts: { handshake?: boolean; end?: boolean } = {}): Promise<{ ms: number; replies: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port: PORT });
    let t0 = Date.now();
    let replies = 0;
    const guard = setTimeout(() => {
      s.destroy();
      reject(new Error("server did not drop the connection"));
    }, 8000);
    s.on("data", () => replies++);
    s.on("error", () => undefined);
    s.on("close", () => {
      clearTimeout(guard);
      resolve({ ms: Date.now() - t0, replies });
    });
    s.on("connect", async () => {
      if (opts.handshake) {
        s.write(hello);
        await new Promise((r) => s.once("data", r));
        replies = 0;
      }
      t0 = Date.now();
      for (const b of bytes) s.write(b);
      if (opts.end) s.end();
    });
  });
}

async function assertServerStillServes(): Promise<void> {
  assert.ok(server.alive(), "server process alive");
  const st = await healthy.top.stat(CTX, { path: "/" });
  assert.equal(st.mode & 0o170000, 0o040000);
}

const header = (meta: number, payload = 0) => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(meta >>> 0, 0);
  b.writeUInt32BE(payload >>> 0, 4);
  return b;
};

test("garbage bytes drop that connection only", async () => {
  const r = await sendAndAwaitClose([header(5), Buffer.from([0xc1, 0xc1, 0xc1, 0xc1, 0xc1])]);
  assert.equal(r.replies, 0);
  await assertServerStillServes();
  assert.match(server.log(), /dropping connection: undecodable frame/);
});

test("an absurd frame size is refused at once, before its body arrives", async () => {
  const r = await sendAndAwaitClose([header(16, 0xfffffff0)], { handshake: true });
  assert.ok(r.ms < 1000, `closed after ${r.ms} ms`);
  await assertServerStillServes();
  assert.match(server.log(), /exceeds the maximum/);
});

test("a truncated frame followed by close is logged and the server keeps going", async () => {
  const f = frame({ t: "req", id: 1, op: "stat", args: [CTX, { path: "/" }] });
  await sendAndAwaitClose([f.subarray(0, f.length - 3)], { handshake: true, end: true });
  await assertServerStillServes();
  assert.match(server.log(), /truncated frame/);
});

test("an unknown op drops the connection", async () => {
  const r = await sendAndAwaitClose([frame({ t: "req", id: 1, op: "format-disk", args: [CTX] } as never)], { handshake: true });
  assert.equal(r.replies, 0);
  await assertServerStillServes();
  assert.match(server.log(), /unknown op/);
});

test("a fop before the handshake drops the connection without running it", async () => {
  const r = await sendAndAwaitClose([frame({ t: "req", id: 1, op: "mkdir", args: [CTX, { path: "/sneaky" }, 0o755] })]);
  assert.equal(r.replies, 0);
  await assertServerStillServes();
  const code = await healthy.top.stat(CTX, { path: "/sneaky" }).then(() => "OK", (e: FopError) => e.code);
  assert.equal(code, "ENOENT");
  assert.match(server.log(), /fop mkdir before the handshake/);
});

test("a handshake for a volume that does not exist is answered ENOENT and dropped", async () => {
  const data = await new Promise<Buffer>((resolve) => {
    const s = net.connect({ host: HOST, port: PORT }, () => s.write(frame({ t: "hello", version: PROTOCOL_VERSION, volume: "nope" })));
    const chunks: Buffer[] = [];
    s.on("data", (d) => chunks.push(d));
    s.on("error", () => undefined);
    s.on("close", () => resolve(Buffer.concat(chunks)));
  });
  const got = { body: decodeServerMsg(data.subarray(8)) };
  assert.equal(got.body.t, "hello-err");
  assert.equal((got.body as { code: string }).code, "ENOENT");
  await assertServerStillServes();
});

test("a client that connects and sends nothing is dropped after handshake-timeout", async () => {
  const r = await sendAndAwaitClose([]);
  assert.ok(r.ms >= 900 && r.ms < 3000, `dropped after ${r.ms} ms (handshake-timeout 1 s)`);
  await assertServerStillServes();
  assert.match(server.log(), /no handshake within handshake-timeout/);
});

test("a second handshake and a protocol version mismatch are refused", async () => {
  await sendAndAwaitClose([hello], { handshake: true });
  const r = await sendAndAwaitClose([frame({ t: "hello", version: 999, volume: "locks" })]);
  assert.equal(r.replies, 1, "a hello-err");
  await assertServerStillServes();
  assert.match(server.log(), /second handshake/);
  assert.match(server.log(), /protocol version 999/);
});

test("a fop on an fd number that was never opened answers EBADF and keeps the connection", async () => {
  assert.ok(healthy.top instanceof ProtocolClient);
  const code = await (healthy.top as InstanceType<typeof ProtocolClient>)
    .call("fstat", [CTX, { get: () => ({ n: 4242, gen: 1 }) }]).then(() => "OK", (e: FopError) => e.code);
  assert.equal(code, "EBADF");
  await assertServerStillServes();
});

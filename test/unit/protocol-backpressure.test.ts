// Back-pressure and request bounds of protocol/server over real TCP (server in this process, a raw
// socket as the misbehaving client): a client that never reads its replies cannot make the server
// buffer without bound. Port 24170.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { silentLogger } from "../../runtime/core/log";
import type { Iatt } from "../../runtime/core/types";
import { Xlator } from "../../runtime/core/xlator";
import { decodeServerMsg, encodeFrame, FrameDecoder, PROTOCOL_VERSION } from "../../runtime/protocol";
import { ProtocolServer } from "../../runtime/xlators/protocol/server";
import { MAX_IN_FLIGHT } from "../../runtime/xlators/protocol/server/connection";
import { waitFor } from "../helpers/cluster";

const STAT: Iatt = { gfid: "00000000-0000-0000-0000-000000000001", ino: 1, mode: 0o40755, nlink: 2, uid: 0, gid: 0, rdev: 0, size: 4096, blocks: 8, blksize: 4096, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 };

/** A volume whose getxattr returns 64 KiB (fat replies) and whose fops can be held back. */
class FakeVolume extends Xlator {
  started = 0;
  hold: Promise<void> | undefined;
  override async stat(): Promise<Iatt> {
    this.started++;
    if (this.hold) await this.hold;
    return STAT;
  }
  override async access(): Promise<void> {
    this.started++;
  }
  override async getxattr(): Promise<Buffer> {
    this.started++;
    return Buffer.alloc(65536, 1);
  }
}

const graph = new Map<string, Xlator>();
const volume = new FakeVolume({ name: "vol", type: "test/fake", options: {}, children: [], log: silentLogger(), graph });
graph.set("vol", volume);
const server = new ProtocolServer({
  name: "server", type: "protocol/server", children: [volume], log: silentLogger(), graph,
  options: { "bind-address": "127.0.0.2", "listen-port": 24170, "auth.ip.vol.allow": ["*"], "max-frame-size": 1 << 24, "handshake-timeout": 10 } as never,
});
after(() => server.stop());

const frame = (m: Parameters<typeof encodeFrame>[0]) => Buffer.concat(encodeFrame(m));
const CTX = { uid: 0, gid: 0, pid: 1, lkOwner: "x", client: "local" };

async function attach(): Promise<net.Socket> {
  await server.start();
  const s = net.connect({ host: "127.0.0.2", port: 24170 });
  await new Promise((r) => s.once("connect", r));
  s.write(frame({ t: "hello", version: PROTOCOL_VERSION, volume: "vol" }));
  await new Promise((r) => s.once("data", r));
  s.pause();
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a client that does not read its replies stops being read: the server's buffered replies stay bounded", async () => {
  const s = await attach();
  const req = (id: number) => frame({ t: "req", id, op: "getxattr", args: [CTX, { path: "/" }, "user.x"] });
  // 4000 requests asking for 64 KiB each: 256 MiB of replies if the server kept reading.
  let id = 0;
  for (; id < 4000; id++) if (!s.write(req(id))) break;
  for (; id < 4000; id++) s.write(req(id));
  const conn = () => (server.dump().connections as { paused: boolean; inFlight: number }[])[0];
  await waitFor("the server to stop reading the client", () => conn()?.paused, 10000);
  assert.equal(conn()!.paused, true);
  assert.ok(volume.started < 1000, `server ran ${volume.started} of 4000 requests for a client that reads nothing`);
  s.destroy();
});

test("in-flight requests per connection are bounded", async () => {
  volume.started = 0;
  let release!: () => void;
  volume.hold = new Promise((r) => (release = r));
  const s = await attach();
  const decoder = new FrameDecoder(1 << 24);
  const got: string[] = [];
  s.on("data", (d: Buffer) => {
    for (const f of decoder.push(d)) got.push(decodeServerMsg(f.meta, f.payload).t);
  });
  s.resume();
  for (let id = 0; id < MAX_IN_FLIGHT * 3; id++) s.write(frame({ t: "req", id, op: "stat", args: [CTX, { path: "/" }] }));
  await waitFor(`${MAX_IN_FLIGHT} requests wound into the graph`, () => volume.started >= MAX_IN_FLIGHT, 10000, 10);
  await sleep(300); // (and no more follow while all are blocked)
  assert.equal(volume.started, MAX_IN_FLIGHT, "requests wound into the graph while all are blocked");
  // A busy connection still answers keepalives (else the client would declare it dead).
  s.write(frame({ t: "ping", id: 99999 }));
  await waitFor("the pong", () => got.length > 0, 10000, 10);
  assert.deepEqual(got, ["pong"]);
  release();
  volume.hold = undefined;
  await waitFor("every request answered", () => got.filter((t) => t === "rep").length === MAX_IN_FLIGHT * 3, 10000);
  assert.equal(volume.started, MAX_IN_FLIGHT * 3, "the rest ran once the first ones finished");
  assert.equal(got.filter((t) => t === "rep").length, MAX_IN_FLIGHT * 3);
  s.destroy();
});

test("a request flagged no-reply runs and gets no reply (a release: one message less per file)", async () => {
  const s = await attach();
  s.resume();
  const replies: number[] = [];
  const dec = new FrameDecoder(1 << 24);
  s.on("data", (chunk: Buffer) => {
    for (const f of dec.push(chunk)) {
      const m = decodeServerMsg(f.meta, f.payload);
      if (m.t === "rep") replies.push(m.id);
    }
  });
  const before = volume.started;
  s.write(frame({ t: "req", id: 900, op: "access", args: [CTX, { path: "/" }, 0], nr: true }));
  s.write(frame({ t: "req", id: 901, op: "access", args: [CTX, { path: "/" }, 0] }));
  await waitFor("the reply to 901", () => replies.includes(901), 10000, 10);
  await sleep(50); // (a reply to 900 would have come first: same connection, sent before)
  assert.equal(volume.started - before, 2, "both ran");
  assert.deepEqual(replies, [901], "only the request that wanted a reply got one");
  s.destroy();
});

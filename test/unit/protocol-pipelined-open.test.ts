// A fop sent on an fd right behind the open that makes it, without waiting for the open's reply
// (the kernel bridge lists a directory that way: opendir and its first readdir in one round trip),
// over real TCP (server and client in this process, port 24185): the server runs it once the open
// is done; if the open fails, it is EBADF and nothing else happens.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Graph } from "../../runtime/core/graph";
import { FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx, type DirEntry, type Loc } from "../../runtime/core/types";
import { Xlator } from "../../runtime/core/xlator";
import { ProtocolServer } from "../../runtime/xlators/protocol/server";
import { waitFor } from "../helpers/cluster";
import { clientVolfile } from "../helpers/servers";

const PORT = 24185;
const CTX: CallCtx = { uid: 0, gid: 0, pid: process.pid, lkOwner: "t", client: "local" };

/** A volume whose opendir waits for the test, and which records the order fops ran in. */
class GatedVolume extends Xlator {
  readonly ran: string[] = [];
  gate: Promise<void> = Promise.resolve();
  override async opendir(_ctx: CallCtx, loc: Loc): Promise<void> {
    this.ran.push(`opendir ${loc.path} start`);
    await this.gate;
    if (loc.path === "/missing") {
      this.ran.push("opendir /missing failed");
      throw new FopError("ENOENT", "no such directory", { xlator: this.name, fop: "opendir" });
    }
    this.ran.push(`opendir ${loc.path} done`);
  }
  override async readdir(_ctx: CallCtx, fd: Fd): Promise<DirEntry[]> {
    this.ran.push(`readdir ${fd.path}`);
    return [{ name: ".", next: 1 }, { name: "..", next: 2 }, { name: "a", next: 3 }];
  }
  override async releasedir(): Promise<void> {}
}

const graph = new Map<string, Xlator>();
const volume = new GatedVolume({ name: "vol", type: "test/gated", options: {}, children: [], log: silentLogger(), graph });
graph.set("vol", volume);
const server = new ProtocolServer({
  name: "server", type: "protocol/server", children: [volume], log: silentLogger(), graph,
  options: { "bind-address": "127.0.0.2", "listen-port": PORT, "auth.ip.vol.allow": ["*"], "max-frame-size": 1 << 24, "handshake-timeout": 10 } as never,
});
const client = Graph.fromText(clientVolfile({ hosts: "127.0.0.2", port: PORT, volume: "vol" }), "client.vol", { log: silentLogger() });
after(async () => {
  await client.stop();
  await server.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a readdir sent right behind its opendir runs on the server once the opendir is done", async () => {
  await server.start();
  await client.start();
  let open!: () => void;
  volume.gate = new Promise((r) => (open = r));
  volume.ran.length = 0;
  const fd = new Fd("/d", 0, true);
  const opened = client.top.opendir(CTX, { path: "/d" }, fd);
  const listed = client.top.readdir(CTX, fd, 0, false);
  // Both requests at the server (the opendir running, the readdir in flight behind it): the readdir must wait.
  const inFlight = () => (server.dump().connections as { inFlight: number }[]).reduce((n, c) => n + c.inFlight, 0);
  await waitFor("the opendir and the readdir at the server", () => volume.ran.length === 1 && inFlight() === 2, 10000, 10);
  await sleep(100); // (and a moment more: the readdir still has not run)
  assert.deepEqual(volume.ran, ["opendir /d start"]);
  assert.equal(inFlight(), 2);
  open();
  await opened;
  assert.deepEqual((await listed).map((e) => e.name), [".", "..", "a"]);
  assert.deepEqual(volume.ran, ["opendir /d start", "opendir /d done", "readdir /d"]);
  await client.top.releasedir(CTX, fd);
});

test("when the opendir fails, the readdir behind it is EBADF and does not run; the fd is not left open on the client", async () => {
  volume.gate = Promise.resolve();
  volume.ran.length = 0;
  const fd = new Fd("/missing", 0, true);
  const opened = client.top.opendir(CTX, { path: "/missing" }, fd);
  const listed = client.top.readdir(CTX, fd, 0, false);
  await assert.rejects(opened, { code: "ENOENT" });
  await assert.rejects(listed, { code: "EBADF" });
  assert.deepEqual(volume.ran, ["opendir /missing start", "opendir /missing failed"]);
  // the client forgot the fd: a later fop on it fails here, without reaching the server
  await assert.rejects(client.top.readdir(CTX, fd, 0, false), { code: "EBADF" });
  assert.deepEqual(volume.ran, ["opendir /missing start", "opendir /missing failed"]);
});

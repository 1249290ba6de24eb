// protocol/server stops promptly with clients connected: in-process stop() and glusterfsd on SIGTERM
// (a FUSE mount and the peer server's AFR link attached). Ports 24170-24179.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { brickVolfile, clientVolfile, stopAllServers, tempDir } from "../helpers/servers";
import { startSeedCluster, waitUntil } from "./afr-seed-cluster";
import { join } from "node:path";

const CTX: CallCtx = { uid: 0, gid: 0, pid: process.pid, lkOwner: "t", client: "local" };
after(stopAllServers);

test("stop() of an in-process server with a connected client (an open fd, a blocked lock) returns at once", async (t) => {
  const server = Graph.fromText(brickVolfile({ host: "127.0.0.2", port: 24170, brick: join(tempDir(), "brick") }), "server.vol", { log: silentLogger() });
  await server.start();
  t.after(() => server.stop());
  const client = Graph.fromText(clientVolfile({ hosts: "127.0.0.2", port: 24170 }), "client.vol", { log: silentLogger() });
  await client.start();
  t.after(() => client.stop());
  const other = Graph.fromText(clientVolfile({ hosts: "127.0.0.2", port: 24170 }), "other.vol", { log: silentLogger() });
  await other.start();
  t.after(() => other.stop());
  const fd = new Fd("/f", 0o2 | 0o100);
  await client.top.create(CTX, { path: "/f" }, fd.flags, 0o644, fd);
  await client.top.lk(CTX, fd, "setlk", { type: "wr", start: 0, len: 0, pid: 1 });
  const fd2 = new Fd("/f", 0o2);
  await other.top.open({ ...CTX, lkOwner: "other" }, { path: "/f" }, fd2.flags, fd2);
  const blocked = other.top.lk({ ...CTX, lkOwner: "other" }, fd2, "setlkw", { type: "wr", start: 0, len: 0, pid: 2 }).catch(() => "failed");

  const t0 = Date.now();
  await server.stop();
  const ms = Date.now() - t0;
  t.diagnostic(`stop() took ${ms} ms`);
  assert.ok(ms < 1000, `stop() took ${ms} ms`);
  await waitUntil(() => !client.top.isUp() && !other.top.isUp(), 2000);
  assert.equal(client.top.isUp(), false, "the client saw the disconnect");
  assert.equal(await blocked, "failed");
});

test("glusterfsd exits within 1 s of SIGTERM with a FUSE mount and the peer's AFR link attached; both see it go", async (t) => {
  const c = await startSeedCluster({ port: 24171, clientHosts: "127.0.0.2" });
  t.after(() => c.close());
  const node1 = c.nodes[0]!;
  // Attached: the mount (through the FUSE client) and node2's AFR link to node1.
  assert.ok(await waitUntil(() => /"msgid":"PS_CLIENT_ATTACHED".*"exportedVolume":"gfs-ds-locks"/.test(node1.log()), 5000), "node2's AFR link attached");
  assert.match(node1.log(), /"msgid":"PS_CLIENT_ATTACHED".*"exportedVolume":"gfs"/);
  const exited = new Promise<number>((r) => node1.child.once("exit", () => r(Date.now())));
  const t0 = Date.now();
  node1.child.kill("SIGTERM");
  const ms = (await exited) - t0;
  t.diagnostic(`glusterfsd exited ${ms} ms after SIGTERM`);
  assert.ok(ms < 1000, `exited after ${ms} ms`);
  assert.equal(node1.child.exitCode, 0);
  assert.ok(await waitUntil(async () => /"msgid":"PC_DISCONNECTED"/.test(await c.mount.log()), 3000), "the mount saw the disconnect");
  assert.ok(await waitUntil(() => /"msgid":"AFR_CHILD_DOWN".*gfs-node1-ds|gfs-node1-ds.*"msgid":"AFR_CHILD_DOWN"/.test(c.nodes[1]!.log()), 3000), "node2's AFR saw node1 go");
});

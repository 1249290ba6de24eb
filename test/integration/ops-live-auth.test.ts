// SIGHUP applies auth lists live, also to clients already attached (as GlusterFS): revoking an
// address drops its connection and refuses its reconnects; allowing it again lets it back in.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { brickVolfile, startBrickServer, stopAllServers } from "../helpers/servers";
import { REPO } from "../helpers/mount";
import { waitUntil } from "./afr-seed-cluster";

const PORT = 24620;
const CTX = { uid: 0, gid: 0, pid: process.pid, lkOwner: "t", client: "local" };
let client: Graph | undefined;
after(async () => {
  await client?.stop();
  await stopAllServers();
});

test("SIGHUP with a narrower auth.ip allow list drops an attached client; widening it lets the client back", async () => {
  const server = await startBrickServer({ host: "127.0.0.2", port: PORT, allow: { locks: "127.0.0.1" } });
  const volPath = join(dirname(server.logFile), "server.vol");
  client = Graph.fromText([
    "volume c", "  type protocol/client", "  option remote-host 127.0.0.2", `  option remote-port ${PORT}`,
    "  option remote-subvolume locks", "  option transport-timeout 5", "end-volume", "",
  ].join("\n"), "client.vol", { log: silentLogger() });
  await client.start();
  await client.top.stat(CTX, { path: "/" });

  const lines = () => readFileSync(server.logFile, "utf8").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
  writeFileSync(volPath, brickVolfile({ host: "127.0.0.2", port: PORT, brick: server.brick, allow: { locks: "127.0.0.9" } }));
  server.child.kill("SIGHUP");
  assert.ok(await waitUntil(() => lines().some((l) => l.msgid === "VOLFILE_RELOADED"), 5000));
  const reload = lines().find((l) => l.msgid === "VOLFILE_RELOADED")!;
  assert.deepEqual(reload.applied, ["server:auth.ip.locks.allow"]);
  assert.deepEqual(reload.needsRestart, []);
  assert.ok(await waitUntil(() => lines().some((l) => l.msgid === "PS_AUTH_REFUSED"), 5000), "the attached client was dropped");
  assert.ok(await waitUntil(async () => {
    try {
      await client!.top.stat(CTX, { path: "/" });
      return false;
    } catch (err) {
      return (err as { code?: string }).code === "EACCES";
    }
  }, 10_000), "the client's reconnects are refused with EACCES");
  const st = spawnSync(process.execPath, [join(REPO, "dist/bin/gluster-ha.js"), "status", "--server", `127.0.0.2:${PORT}/locks`, "--json"], { encoding: "utf8" });
  assert.equal(st.status, 1);
  assert.match(st.stdout, /EACCES/);

  writeFileSync(volPath, brickVolfile({ host: "127.0.0.2", port: PORT, brick: server.brick, allow: { locks: "127.0.0.1" } }));
  server.child.kill("SIGHUP");
  assert.ok(await waitUntil(async () => {
    try {
      await client!.top.stat(CTX, { path: "/" });
      return true;
    } catch {
      return false;
    }
  }, 15_000), "allowed again: the client reconnects by itself");
  assert.ok(server.alive());
});

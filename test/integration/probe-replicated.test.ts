// gluster-ha probe --replicated: how the Pulumi component waits, before mounting, until each node's
// server-side replicate volume has its peer link up (not only until the node answers a handshake).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { nodeAddress, seedServerVolfile } from "../helpers/cluster";
import { REPO, startServer, stopAllServers, tempDir } from "../helpers/servers";

after(stopAllServers);
// Our port range is 24400-24499 (the local example's); this test uses 24430.
const port = 24430;

function probe(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "runtime/cli/gluster-ha.ts"), "probe", ...args], { cwd: REPO });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((r) => child.on("exit", (code) => r({ code, stdout, stderr })));
}

const startNode = (n: 1 | 2) => {
  const dir = tempDir(`gha-probe-repl-n${n}-`);
  const brick = join(dir, "brick");
  return startServer(seedServerVolfile(n, { brick, port }), nodeAddress(n), port, brick, dir);
};

test("probe --replicated fails while the peer is missing and succeeds once both nodes link up", async () => {
  await startNode(1);
  const node1 = `${nodeAddress(1)}:${port}`;
  // node1 answers the handshake, but its replicate volume has no link to node2.
  assert.equal((await probe([node1, "gfs", "--timeout", "5"])).code, 0);
  const alone = await probe([node1, "gfs", "--replicated", "--timeout", "1"]);
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /ENOTCONN: replica children down: gfs-ds-afr\/\S+/);

  const waiting = probe([node1, "gfs", "--replicated", "--timeout", "30"]);
  await sleep(1500); // node1 is now in its reconnect backoff towards node2
  await startNode(2);
  const linked = await waiting;
  assert.equal(linked.code, 0, linked.stderr);
  assert.match(linked.stdout, /serves gfs, all replicas up/);
  const node2 = await probe([`${nodeAddress(2)}:${port}`, "gfs", "--replicated", "--timeout", "30"]);
  assert.equal(node2.code, 0, node2.stderr);
});

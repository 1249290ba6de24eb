// The seed's failover procedure (ha-two-node-glusterfs-centos.txt), automated: two glusterfsd from the
// seed's server volfiles, the seed's client volfile mounted over FUSE, node1 killed and brought back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileEquals, startSeedCluster, waitUntil } from "./afr-seed-cluster";

const PORT = 24210;

test("seed procedure: a write while node1 is down reaches node1 automatically when it returns", async (t) => {
  // The round-robin name answers node1 first: the client is connected to the node that gets killed
  // and must fail over to node2 without the write noticing.
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.2,127.0.0.3" });
  t.after(() => c.close());
  const mnt = c.mount.mountpoint;

  // 1. touch file.txt on the mount: it appears in both bricks.
  writeFileSync(join(mnt, "file.txt"), "");
  assert.ok(existsSync(join(c.bricks[0], "file.txt")) && existsSync(join(c.bricks[1], "file.txt")), "file.txt in both bricks");

  // 2. kill node1's glusterfsd; the write succeeds promptly.
  await c.kill(1);
  const t0 = Date.now();
  writeFileSync(join(mnt, "test.txt"), "testing failure\n");
  const took = Date.now() - t0;
  assert.ok(took < 3000, `write took ${took} ms`);

  // 3. test.txt is on node2's brick only, and node2 blames node1.
  assert.equal(existsSync(join(c.bricks[0], "test.txt")), false);
  assert.equal(readFileSync(join(c.bricks[1], "test.txt"), "utf8"), "testing failure\n");
  assert.ok(c.blame(2, 1, "test.txt")[0]! > 0, "node2 blames node1 for test.txt's data");
  assert.ok(c.blame(2, 1, ".")[2]! > 0, "node2 blames node1 for the root's entries");

  // 4. start node1: test.txt reaches node1's brick byte-identical, without any client access.
  await c.start(1);
  const back = Date.now();
  // Healed = same bytes and the blame cleared (the heal copies the data first, then clears the changelog).
  const healed = () => fileEquals(join(c.bricks[0], "test.txt"), join(c.bricks[1], "test.txt")) && c.blame(2, 1, "test.txt").every((n) => n === 0);
  assert.ok(await waitUntil(healed, 10_000), "healed automatically");
  const healMs = Date.now() - back;
  t.diagnostic(`healed ${healMs} ms after node1 listened`);
  // node2 tries node1 again every 3 s at most (protocol/client's backoff): where node1's return falls in
  // that interval decides the first 0-3 s; the heal itself must follow at once.
  assert.ok(healMs < 5000, `healed in ${healMs} ms`);
  assert.deepEqual(c.blame(2, 1, "test.txt"), [0, 0, 0]);
  const info = c.cli(["heal", "info", "-f", c.volfiles[1], "--wait-empty", "--timeout", "10", "--json"]);
  assert.equal(info.status, 0, info.stdout + info.stderr);
  assert.equal(readFileSync(join(mnt, "test.txt"), "utf8"), "testing failure\n");
});

test("seed procedure with the heal daemon off: ls -lR on the mount heals node1", async (t) => {
  const c = await startSeedCluster({ port: PORT, afrOptions: ["self-heal-daemon off"], clientHosts: "127.0.0.2,127.0.0.3" });
  t.after(() => c.close());
  const mnt = c.mount.mountpoint;
  writeFileSync(join(mnt, "file.txt"), "");
  await c.kill(1);
  writeFileSync(join(mnt, "test.txt"), "testing failure\n");
  assert.equal(existsSync(join(c.bricks[0], "test.txt")), false);
  await c.start(1);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(existsSync(join(c.bricks[0], "test.txt")), false, "no heal without the daemon or an access");
  const pending = c.cli(["heal", "info", "-f", c.volfiles[1]]);
  assert.match(pending.stdout, /\/test\.txt/);
  // The seed's way: ls -lR on the mount (repeated until node2 has reconnected to node1).
  const healed = await waitUntil(() => {
    execFileSync("ls", ["-lR", mnt], { stdio: "ignore" });
    return fileEquals(join(c.bricks[0], "test.txt"), join(c.bricks[1], "test.txt")) && c.blame(2, 1, "test.txt").every((n) => n === 0);
  }, 15000, 300);
  assert.ok(healed, "ls -lR healed test.txt");
  assert.deepEqual(c.blame(2, 1, "test.txt"), [0, 0, 0]);
});

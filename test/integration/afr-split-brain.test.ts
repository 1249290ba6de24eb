// Split-brain through real processes: each node takes a different write while the other is down
// (heal daemon and lookup heal off, so nothing repairs in between). Reads then fail with EIO, heal info
// lists the file as split-brain, and `gluster-ha heal split-brain FILE --source NODE` resolves it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startSeedCluster, waitUntil } from "./afr-seed-cluster";

const PORT = 24270;

function writeRetrying(path: string, data: string): Promise<boolean> {
  // While the client moves to the surviving server a write may be refused (ENOTCONN): retry.
  return waitUntil(() => {
    try {
      writeFileSync(path, data);
      return true;
    } catch {
      return false;
    }
  }, 15000, 200);
}

test("split-brain: EIO on read, listed by heal info, resolved from the CLI", async (t) => {
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3,127.0.0.2", afrOptions: ["self-heal-daemon off", "self-heal off"] });
  t.after(() => c.close());
  const f = join(c.mount.mountpoint, "sb.txt");
  writeFileSync(f, "base\n");
  // The create's entry batch is post-op'ed after a short idle time (delayed post-op): let it finish,
  // or node1 is killed with the root still marked and heal info (no heal runs here) never empties.
  const rootClean = () => ([1, 2] as const).every((h) => ([1, 2] as const).every((b) => c.blame(h, b, ".")[2] === 0));
  assert.ok(await waitUntil(rootClean, 5000), "root entry marks cleared");
  await c.kill(1);
  assert.ok(await writeRetrying(f, "written on node2\n"));
  await c.start(1);
  await c.kill(2);
  assert.ok(await writeRetrying(f, "written on node1 while node2 was down\n"));
  await c.start(2);
  assert.ok(c.blame(1, 2, "sb.txt")[0]! > 0 && c.blame(2, 1, "sb.txt")[0]! > 0, "each blames the other");

  const info = c.cli(["heal", "info", "-f", c.volfiles[0], "--json"]);
  assert.equal(info.status, 0, info.stderr);
  const bricks = JSON.parse(info.stdout).bricks as { entries: { path: string; status: string }[] }[];
  assert.ok(bricks.some((b) => b.entries.some((e) => e.path === "/sb.txt" && e.status === "split-brain")), info.stdout);
  assert.equal(c.cli(["heal", "info", "-f", c.volfiles[0], "--wait-empty", "--timeout", "1"]).status, 1);

  assert.ok(await waitUntil(() => {
    try {
      readFileSync(f);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EIO";
    }
  }, 10000, 200), "reading a file in split-brain fails with EIO");

  const r = c.cli(["heal", "split-brain", "/sb.txt", "--source", "127.0.0.3", "-f", c.volfiles[0]]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(readFileSync(join(c.bricks[0], "sb.txt"), "utf8"), "written on node2\n");
  assert.equal(readFileSync(f, "utf8"), "written on node2\n");
  assert.equal(c.cli(["heal", "info", "-f", c.volfiles[0], "--wait-empty", "--timeout", "10"]).status, 0);
});

// The seed's HA promise through a real FUSE mount: the client mounted on both servers' addresses
// (node1 first, as a round-robin name may answer), an application looping stat + write + read, and
// node1 killed with SIGKILL under it. Seed cluster (glusterfsd processes, AFR between them, glusterfs
// client) on 127.0.0.2 / 127.0.0.3, port 24150.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startSeedCluster } from "./afr-seed-cluster";
import { spawnHelper, waitForLine, type FsLoopReport } from "../helpers/servers";

const PORT = 24150;

/** Runs the fs-loop helper on `dir` until `during()` is done, then returns its report. */
async function loopWhile(dir: string, during: () => Promise<void>): Promise<FsLoopReport> {
  const loop = spawnHelper(["fs-loop", dir], [], { stdin: true });
  await waitForLine(loop, /^looping$/);
  const report = waitForLine(loop, /^\{/, 60_000);
  await during();
  loop.stdin!.end();
  return JSON.parse(await report) as FsLoopReport;
}

test("killing the connected server under a stat+write+read loop on the mount: reads never fail, the stall is bounded", async (t) => {
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.2,127.0.0.3" });
  t.after(() => c.close());
  let killedAt = 0;
  let killReturned = 0;
  const report = await loopWhile(c.mount.mountpoint, async () => {
    await new Promise((r) => setTimeout(r, 1000));
    killedAt = Date.now();
    await c.kill(1);
    killReturned = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
  });
  t.diagnostic(`${report.iterations} iterations; worst syscall ${report.worstMs} ms (${report.worstOp}); failures ${JSON.stringify(report.failures.map((f) => ({ ...f, at: f.at - killedAt })))}`);
  assert.ok(report.iterations > 50, `the loop ran (${report.iterations} iterations)`);
  // stat and read are resent on node2 when node1 dies under them; fops issued meanwhile wait for node2.
  assert.deepEqual(report.failures.filter((f) => f.op === "stat" || (f.op === "read" && f.code !== "MISMATCH")), []);
  // A write node1 was carrying out when it died may or may not have happened: it fails (ENOTCONN) rather
  // than being done twice. Only that one write, at the kill; a read of the same iteration then sees old bytes.
  const writes = report.failures.filter((f) => f.op === "write");
  assert.ok(writes.length <= 1, `writes failed: ${JSON.stringify(writes)}`);
  for (const w of writes) {
    assert.equal(w.code, "ENOTCONN");
    assert.ok(w.at >= killedAt && w.at <= killReturned + 500, `the failed write ended ${w.at - killedAt} ms after the kill`);
  }
  assert.ok(report.failures.length <= writes.length * 2, JSON.stringify(report.failures));
  // The client's transport-timeout is 10 s; a killed server is noticed at once, so failover takes far less.
  assert.ok(report.worstMs < 2000, `worst stall ${report.worstMs} ms`);
  assert.match(await c.mount.log(), /"msgid":"PC_DISCONNECTED"/);
  assert.match(readFileSync(`${c.bricks[1]}/loop-0.txt`, "utf8"), /^iteration \d+\n/);
});

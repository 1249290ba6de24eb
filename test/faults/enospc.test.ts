// Disk full on one brick (node2's brick is an 8 MiB tmpfs): writes either succeed (kept on the other
// brick, blamed for heal) or fail with ENOSPC — never another error, never acknowledged-then-lost; the
// other brick stays consistent; heal completes once the tmpfs is grown. 127.0.0.2/127.0.0.3:24540.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { AckLedger, runWriter, verify } from "../helpers/checksum-writer";
import { FaultCluster, tmpfsBrick } from "../helpers/cluster";
import { stopAllServers } from "../helpers/servers";
import { record } from "./report";
import { finishScenario } from "./scenario";

const run = promisify(execFile);
const PORT = 24540;
const FILE = "enospc.test.ts";
let c: FaultCluster;
let small: Awaited<ReturnType<typeof tmpfsBrick>>;

before(async () => {
  small = await tmpfsBrick("8m");
  c = await FaultCluster.start({ port: PORT, clientTimeout: 3, peerTimeout: 2, bricks: [undefined, small.dir] });
});
after(async () => {
  await c?.close();
  await small?.unmount();
  await stopAllServers();
});

test("disk full on one brick: ENOSPC or success only, the other brick consistent, heal once space returns", async (t) => {
  const m = c.mounts[0]!;
  const ledger = new AckLedger();
  // 24 MiB into a replica whose second brick holds 8 MiB; give up on a file after 5 s of ENOSPC.
  const files = 12;
  for (let i = 0; i < files; i++) {
    await runWriter(ledger, { root: m.mountpoint, prefix: `full/${i}`, files: 1, fileSize: 2 << 20, chunk: 256 << 10, stallLimitMs: 2000 }).catch((err: Error) => {
      t.diagnostic(`file ${i}: ${err.message}`);
    });
  }
  const codes = Object.keys(ledger.stats.errors);
  t.diagnostic(`acknowledged ${(ledger.totalAcked() / (1 << 20)).toFixed(1)} MiB of ${files * 2} MiB; errors: ${JSON.stringify(ledger.stats.errors)}`);
  assert.deepEqual(codes.filter((code) => code !== "ENOSPC"), [], "the only error a full brick may cause is ENOSPC");
  assert.ok(ledger.totalAcked() > 8 << 20 || codes.includes("ENOSPC"), "either the healthy brick took the writes, or ENOSPC was reported");

  // The healthy brick and the mount hold every acknowledged byte right now.
  const now = await verify(ledger, { label: "mount", root: m.mountpoint }, [{ label: "brick1", root: c.bricks[0] }]);
  assert.deepEqual(now.problems, [], "acknowledged data intact on brick1 and through the mount while brick2 is full");

  // Space returns: grow the tmpfs; the heal daemon (or a full heal) catches brick2 up.
  await run("mount", ["-o", "remount,size=128m", small.dir]);
  const full = await c.cli(["heal", "full", "-f", c.volfiles[0], "--json"], 120_000);
  t.diagnostic(`heal full: ${full.stdout.trim()} ${full.stderr.trim()}`);
  record({ file: FILE, badInputs: 0 });
  await finishScenario(t, c, [ledger], { file: FILE, healTimeoutMs: 60_000 });
});

test("with the only running brick full, writes fail with ENOSPC (not another errno) and acknowledged data stays", async (t) => {
  const m = c.mounts[0]!;
  // Node2 (the tmpfs brick) alone, with 2 MiB left on it.
  await c.killNode(1);
  const { stdout } = await run("df", ["-k", "--output=used", small.dir]);
  const usedKiB = Number(stdout.trim().split("\n").pop());
  await run("mount", ["-o", `remount,size=${usedKiB + 2048}k`, small.dir]);
  const ledger = new AckLedger();
  await runWriter(ledger, { root: m.mountpoint, prefix: "alone-full", files: 1, fileSize: 8 << 20, chunk: 256 << 10, stallLimitMs: 1500 }).catch((err: Error) => t.diagnostic(err.message));
  t.diagnostic(`acknowledged ${(ledger.totalAcked() / (1 << 20)).toFixed(2)} MiB of 8; errors ${JSON.stringify(ledger.stats.errors)}`);
  assert.ok(ledger.totalAcked() < 8 << 20, "the write did not fit");
  assert.deepEqual(Object.keys(ledger.stats.errors), ["ENOSPC"], "a full brick reports ENOSPC");
  const now = await verify(ledger, { label: "mount", root: m.mountpoint }, [{ label: "brick2", root: c.bricks[1] }]);
  assert.deepEqual(now.problems, [], "acknowledged bytes intact on the full brick");
  await run("mount", ["-o", "remount,size=128m", small.dir]);
  await c.startNode(1);
  await finishScenario(t, c, [ledger], { file: FILE, healTimeoutMs: 60_000 });
});

// Self-heal under load and interruption: one big file, many small files, and servers restarted while
// a heal runs. Sizes: CI 256 MiB / 2,000 files; FAULTS_LONG=1: 1 GiB / 10,000 files.
// Seed topology on 127.0.0.2/127.0.0.3:24520.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { AckLedger, runWriter } from "../helpers/checksum-writer";
import { FaultCluster, waitFor } from "../helpers/cluster";
import { stopAllServers } from "../helpers/servers";
import { LONG, record } from "./report";
import { finishScenario } from "./scenario";

const PORT = 24520;
const FILE = "heal.test.ts";
const BIG = LONG ? 1 << 30 : 256 << 20;
const SMALL_FILES = LONG ? 10_000 : 2_000;
let c: FaultCluster;

before(async () => {
  c = await FaultCluster.start({ port: PORT, clientTimeout: 3, peerTimeout: 2 });
});
after(async () => {
  await c?.close();
  await stopAllServers();
});

const sizeOn = (n: 1 | 2, rel: string) => {
  try {
    return statSync(c.brickPath(n, rel)).size;
  } catch {
    return -1;
  }
};

test(`heal of one ${BIG >> 20} MiB file written while node2 was down`, async (t) => {
  await c.killNode(2);
  const ledger = new AckLedger();
  await runWriter(ledger, { root: c.mounts[0]!.mountpoint, prefix: "big", files: 1, fileSize: BIG, chunk: 1 << 20, fsyncEvery: 16 });
  assert.equal(sizeOn(2, "big/f00000"), -1, "node2 has not seen the file");
  const t0 = Date.now();
  await c.startNode(2);
  await c.waitHealed(LONG ? 600_000 : 180_000);
  const secs = (Date.now() - t0) / 1000;
  t.diagnostic(`healed ${BIG >> 20} MiB in ${secs.toFixed(1)} s (${(BIG / (1 << 20) / secs).toFixed(0)} MiB/s)`);
  record({ file: FILE, note: `big-file heal ${BIG >> 20} MiB in ${secs.toFixed(1)} s` });
  await finishScenario(t, c, [ledger], { file: FILE });
});

test(`heal of ${SMALL_FILES} small files written while node1 was down`, async (t) => {
  await c.killNode(1);
  const ledger = new AckLedger();
  // Several writers in parallel directories, as several clients would.
  const per = SMALL_FILES / 4;
  await Promise.all([0, 1, 2, 3].map((i) => runWriter(ledger, { root: c.mounts[0]!.mountpoint, prefix: `many/d${i}`, files: per, fileSize: 2048, chunk: 2048 })));
  const t0 = Date.now();
  await c.startNode(1);
  await c.waitHealed(LONG ? 900_000 : 240_000);
  const secs = (Date.now() - t0) / 1000;
  t.diagnostic(`healed ${SMALL_FILES} files in ${secs.toFixed(1)} s (${(SMALL_FILES / secs).toFixed(0)} files/s)`);
  record({ file: FILE, note: `small-files heal ${SMALL_FILES} in ${secs.toFixed(1)} s` });
  await finishScenario(t, c, [ledger], { file: FILE, healTimeoutMs: 120_000 });
});

for (const victim of ["target", "source"] as const) {
  test(`restart of the heal ${victim} in the middle of a heal: the heal completes and nothing is lost`, async (t) => {
    const down = 2;
    const up = 1;
    await c.killNode(down);
    const ledger = new AckLedger();
    await runWriter(ledger, { root: c.mounts[0]!.mountpoint, prefix: `interrupted-${victim}`, files: 2, fileSize: 96 << 20, chunk: 1 << 20, fsyncEvery: 16 });
    await runWriter(ledger, { root: c.mounts[0]!.mountpoint, prefix: `interrupted-${victim}/small`, files: 200, fileSize: 4096, chunk: 4096 });
    await c.startNode(down);
    const rel = `interrupted-${victim}/f00000`;
    await waitFor("the heal under way", () => sizeOn(down, rel) > 0 || sizeOn(down, `interrupted-${victim}/f00001`) > 0, 60_000, 10);
    const midway = Math.max(sizeOn(down, rel), sizeOn(down, `interrupted-${victim}/f00001`));
    t.diagnostic(`restarting node${victim === "target" ? down : up} with ${midway >> 20} MiB healed of the first file`);
    await c.restartNode(victim === "target" ? down : up);
    await finishScenario(t, c, [ledger], { file: FILE, healTimeoutMs: 180_000 });
  });
}

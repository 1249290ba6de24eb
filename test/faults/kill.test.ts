// kill -9 of servers and of the client mount process under checksummed writers: nothing acknowledged
// is lost. Seed topology on 127.0.0.2/127.0.0.3:24500.
import { after, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { AckLedger, runWriter } from "../helpers/checksum-writer";
import { FaultCluster, waitFor } from "../helpers/cluster";
import { stopAllServers } from "../helpers/servers";
import { LONG } from "./report";
import { finishScenario } from "./scenario";

const PORT = 24500;
const FILE = "kill.test.ts";
let c: FaultCluster;

/** A fresh cluster per scenario (a failure cannot leak into the next); the client starts on node1. */
async function freshCluster(t: TestContext): Promise<void> {
  c = await FaultCluster.start({ port: PORT, clientTimeout: 3, peerTimeout: 2 });
  t.after(() => c.close());
}
after(() => stopAllServers());

const large = { files: LONG ? 8 : 3, fileSize: (LONG ? 64 : 12) << 20, chunk: 1 << 20 };
const small = { files: LONG ? 2000 : 300, fileSize: 4096, chunk: 4096 };

// node1 is the server the client is connected to; node2 its peer.
const role = (n: 1 | 2) => (n === 1 ? "the client's server" : "the peer server");
for (const n of [1, 2] as const) {
  test(`kill -9 of ${role(n)} in the middle of large writes loses nothing acknowledged`, async (t) => {
    await freshCluster(t);
    const ledger = new AckLedger();
    const writer = runWriter(ledger, { root: c.mounts[0]!.mountpoint, prefix: `large-n${n}`, ...large });
    await waitFor("4 MiB acknowledged", () => ledger.totalAcked() >= 4 << 20, 60_000);
    await c.killNode(n);
    await waitFor("8 more MiB acknowledged with a node down", () => ledger.totalAcked() >= 12 << 20, 60_000);
    await c.startNode(n);
    await writer;
    await finishScenario(t, c, [ledger], { file: FILE });
  });

  test(`kill -9 of ${role(n)} in the middle of small writes loses nothing acknowledged`, async (t) => {
    await freshCluster(t);
    const ledger = new AckLedger();
    const writer = runWriter(ledger, { root: c.mounts[0]!.mountpoint, prefix: `small-n${n}`, ...small });
    await waitFor("50 small files acknowledged", () => ledger.files.size >= 50, 60_000);
    await c.killNode(n);
    await waitFor("100 more small files", () => ledger.files.size >= 150, 60_000);
    await c.startNode(n);
    await writer;
    await finishScenario(t, c, [ledger], { file: FILE });
  });
}

// The writer keeps its directory's entry batch open, so "/turns" is in the index almost all the time:
// heal info reports it "possibly undergoing heal" (locked, nobody accused), which is not a heal to wait for.
test("both servers killed in turn under a running writer lose nothing acknowledged", async (t) => {
  await freshCluster(t);
  const ledger = new AckLedger();
  const ac = new AbortController();
  const writer = runWriter(ledger, { root: c.mounts[0]!.mountpoint, prefix: "turns", files: 100_000, fileSize: 64 << 10, chunk: 16 << 10, signal: ac.signal });
  try {
    for (const n of [1, 2] as const) {
      const before = ledger.totalAcked();
      await c.killNode(n);
      await waitFor(`writes carry on with node${n} down`, () => ledger.totalAcked() >= before + (2 << 20), 30_000);
      await c.startNode(n);
      // The returning node must be whole before its peer goes: with two replicas and no quorum, killing
      // the only up-to-date node earlier would leave nothing to read the newest data from.
      await c.waitHealed(60_000, () => [...ledger.busy]);
      const healedAt = ledger.totalAcked();
      await waitFor("writes carry on with both nodes up", () => ledger.totalAcked() >= healedAt + (1 << 20), 30_000);
    }
  } finally {
    ac.abort();
    await writer;
  }
  t.diagnostic(`entries the heal daemon left for a lookup to heal: ${[...c.lookupHealed].join(", ") || "none"}`);
  await finishScenario(t, c, [ledger], { file: FILE });
});

test("kill -9 of the client mount process: the stale mount is handled and the next mount recovers", async (t) => {
  await freshCluster(t);
  const m = c.mounts[0]!;
  const ledger = new AckLedger();
  const writer = runWriter(ledger, { root: m.mountpoint, prefix: "client-kill", files: 100_000, fileSize: 256 << 10, chunk: 64 << 10, stallLimitMs: 3000 });
  await waitFor("2 MiB acknowledged", () => ledger.totalAcked() >= 2 << 20, 30_000);
  await c.killMount(m);
  // The writer now fails (ENOTCONN on the dead mount) and gives up after its stall limit.
  await assert.rejects(writer, /stalled/);
  const code = await readdir(m.mountpoint).then(() => "OK", (e: NodeJS.ErrnoException) => e.code);
  assert.equal(code, "ENOTCONN", "the dead mount answers ENOTCONN");
  // Remount on the same mountpoint: the CLI clears the stale mount first.
  const again = await c.mount({ dir: m.dir });
  assert.ok((await readdir(join(again.mountpoint, "client-kill"))).length > 0);
  await finishScenario(t, c, [ledger], { file: FILE, mount: again });
});

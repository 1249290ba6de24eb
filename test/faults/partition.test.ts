// Network partitions with iptables DROP (rules tagged and always removed, also on failure): a silent node
// stalls the client no longer than transport-timeout + 1 s; a partition between the servers never leaves
// silently divergent data. Seed topology on 127.0.0.2/127.0.0.3:24510.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile, open } from "node:fs/promises";
import { join } from "node:path";
import { AckLedger, runWriter, verify } from "../helpers/checksum-writer";
import { FaultCluster, nodeAddress, waitFor, type ClusterMount } from "../helpers/cluster";
import { anyFaultRules, isolateNode, leftoverRules, removeAll, splitServers } from "../helpers/iptables";
import { stopAllServers } from "../helpers/servers";
import { record } from "./report";
import { finishScenario } from "./scenario";

const PORT = 24510;
const FILE = "partition.test.ts";
const CLIENT_TIMEOUT = 3;
let c: FaultCluster;

before(async () => {
  assert.deepEqual(anyFaultRules(), [], "no fault rules left by an earlier run");
  c = await FaultCluster.start({ port: PORT, clientTimeout: CLIENT_TIMEOUT, peerTimeout: 2 });
});
after(async () => {
  removeAll();
  await c?.close();
  await stopAllServers();
});

/** Watches a ledger and returns the longest time between two acknowledgements while it ran. */
function gapWatcher(ledger: AckLedger): { stop(): number } {
  let last = ledger.totalAcked();
  let lastAt = Date.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = ledger.totalAcked();
    if (now !== last) {
      maxGap = Math.max(maxGap, Date.now() - lastAt);
      last = now;
      lastAt = Date.now();
    }
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return maxGap;
    },
  };
}

test("a partitioned node stalls the client at most transport-timeout + 1 s; heal follows the partition", async (t) => {
  const m = c.mounts[0]!;
  const ledger = new AckLedger();
  const ac = new AbortController();
  const writer = runWriter(ledger, { root: m.mountpoint, prefix: "isolated", files: 100_000, fileSize: 32 << 10, chunk: 8 << 10, signal: ac.signal });
  let gap = 0;
  try {
    await waitFor("writer started", () => ledger.files.size >= 5, 20_000);
    const victim = (await c.connectedNode(m)) ?? 1;
    t.diagnostic(`client connected to node${victim}; isolating it`);
    const watch = gapWatcher(ledger);
    const cut = isolateNode(nodeAddress(victim), PORT);
    try {
      const at = ledger.totalAcked();
      await waitFor("writes carry on during the partition", () => ledger.totalAcked() >= at + (1 << 20), 30_000);
      assert.notEqual(await c.connectedNode(m), victim, "the client moved to the other node");
    } finally {
      cut.heal();
      gap = watch.stop();
    }
    const at = ledger.totalAcked();
    await waitFor("writes after the partition", () => ledger.totalAcked() >= at + (512 << 10), 30_000);
  } finally {
    ac.abort();
    await writer;
  }
  t.diagnostic(`longest gap between acknowledged writes: ${gap} ms (transport-timeout ${CLIENT_TIMEOUT} s)`);
  assert.ok(gap <= CLIENT_TIMEOUT * 1000 + 1000, `the client stalled ${gap} ms`);
  await finishScenario(t, c, [ledger], { file: FILE, healTimeoutMs: 60_000 });
});

function rootChangelogs(): string {
  return [1, 2].map((n) => {
    try {
      const x = execFileSync("getfattr", ["-d", "-m", "trusted.afr", "-e", "hex", c.brickPath(n as 1 | 2, ".")], { encoding: "utf8" });
      return `brick${n}: ${x.trim().split("\n").slice(1).join(" ")}`;
    } catch (e) {
      return `brick${n}: ${(e as Error).message}`;
    }
  }).join(" | ");
}

async function writeSync(m: ClusterMount, rel: string, data: string): Promise<string> {
  try {
    const fh = await open(join(m.mountpoint, rel), "w");
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return "OK";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

test("a partition between the servers with clients on both sides: quorum refuses, or split-brain is reported and reads give EIO", async (t) => {
  const a = await c.mount({ hosts: nodeAddress(1) });
  const b = await c.mount({ hosts: nodeAddress(2) });
  await writeFile(join(a.mountpoint, "contested"), "before\n");
  const la = new AckLedger();
  const lb = new AckLedger();
  const cut = splitServers(nodeAddress(1), nodeAddress(2), PORT);
  let results: string[];
  try {
    // Each side writes its own files and the same file, while the servers cannot see each other.
    const [ra, rb] = await Promise.all([writeSync(a, "contested", "written through node1\n"), writeSync(b, "contested", "written through node2\n")]);
    results = [ra, rb];
    await Promise.all([
      runWriter(la, { root: a.mountpoint, prefix: "side-a", files: 20, fileSize: 16 << 10, chunk: 16 << 10 }),
      runWriter(lb, { root: b.mountpoint, prefix: "side-b", files: 20, fileSize: 16 << 10, chunk: 16 << 10 }),
    ]);
    // Both nodes answer this host, but neither reaches the other: status says so (exit 3).
    await waitFor("status shows each node reaching only itself", async () => {
      const { nodes } = await c.statusJson();
      return nodes.length === 2 && nodes.every((n) => n.replicas?.up === 1 && n.replicas.total === 2 && n.replicas.down.length === 1);
    }, 10_000, 250);
    assert.equal((await c.cli(["status", "-f", c.volfiles[0]])).status, 3, "exit 3: every node up, the servers cut off from each other");
  } finally {
    t.diagnostic(`root changelogs at the end of the partition: ${rootChangelogs()}`);
    cut.heal();
  }
  t.diagnostic(`writes to the contested file during the partition: node1 side ${results[0]}, node2 side ${results[1]}`);
  await waitFor("both bricks connected again", async () => (await c.healInfo()).bricks.every((x) => x.status === "Connected"), 30_000, 250);

  const bricks = await Promise.all([1, 2].map((n) => readFile(c.brickPath(n as 1 | 2, "contested"), "utf8")));
  const readThrough = (m: ClusterMount) => readFile(join(m.mountpoint, "contested"), "utf8").then((s) => s, (e: NodeJS.ErrnoException) => e.code!);
  // Each server notices its peer is back on its own reconnect schedule (every 3 s at most): the reads
  // below are only asked to see both copies once each server reaches the other.
  const healedAt = Date.now();
  await waitFor("each server reaches its peer again", async () => {
    const { nodes } = await c.statusJson();
    return nodes.length === 2 && nodes.every((n) => n.replicas !== undefined && n.replicas.up === n.replicas.total);
  }, 30_000, 250);
  const reachedAt = Date.now();
  assert.equal((await c.cli(["status", "-f", c.volfiles[0]])).status, 0, "exit 0 again");
  let readA = "";
  let readB = "";
  const reads: string[] = [];
  await waitFor("reads through both servers give EIO", async () => {
    [readA, readB] = await Promise.all([readThrough(a), readThrough(b)]);
    reads.push(`${Date.now() - reachedAt} ms: ${readA === "EIO" ? "EIO" : "data"}/${readB === "EIO" ? "EIO" : "data"}`);
    return readA === "EIO" && readB === "EIO";
  }, 15_000, 250).catch(() => undefined);
  t.diagnostic(`the servers reached each other ${reachedAt - healedAt} ms after the partition ended; reads via node1/node2 since: ${reads.slice(-6).join(", ")}`);
  const info = await c.healInfo();
  const splitBrain = info.bricks.some((x) => x.entries.some((e) => e.path === "/contested" && (e.status === "split-brain" || e.status === "gfid-mismatch")));
  t.diagnostic(`after the partition: bricks ${JSON.stringify(bricks)}, read via node1 ${JSON.stringify(readA)}, via node2 ${JSON.stringify(readB)}, split-brain reported: ${splitBrain}`);
  // Before anything is resolved: each side's acknowledged files are visible through both mounts.
  const early = await Promise.all([la, lb].flatMap((l) => [a, b].map((m) => verify(l, { label: `mount via ${m.hosts}`, root: m.mountpoint }, []))));
  const earlyProblems = early.flatMap((r) => r.problems);
  const sideB = () => [1, 2].map((n) => `brick${n}:${existsSync(c.brickPath(n as 1 | 2, "side-b/f00000")) ? "has" : "lacks"} side-b/f00000`).join(" ");
  t.diagnostic(`before resolving: ${sideB()}`);
  t.diagnostic(`right after the partition: ${earlyProblems.length} problems ${earlyProblems.slice(0, 4).join("; ")}`);
  if (results[0] === "OK" && results[1] === "OK") {
    // Both sides acknowledged a different content: only a reported split-brain is acceptable.
    assert.ok(splitBrain, "heal info reports /contested in split-brain");
    assert.deepEqual([readA, readB], ["EIO", "EIO"], "reading a file in split-brain fails with EIO through either server");
    const resolved = await c.cli(["heal", "split-brain", "/contested", "--source", nodeAddress(1), "-f", c.volfiles[0]]);
    assert.equal(resolved.status, 0, resolved.stderr);
    const afterResolve = await verify(lb, { label: "mount a", root: a.mountpoint }, []);
    t.diagnostic(`after resolving: ${sideB()}`);
    t.diagnostic(`after resolving /contested from node1: ${afterResolve.problems.length} problems with node2's files ${afterResolve.problems.slice(0, 3).join("; ")}`);
    await waitFor("/contested readable after resolution", async () => (await readFile(join(a.mountpoint, "contested"), "utf8")) === "written through node1\n", 20_000, 250);
  } else {
    // Quorum refused one side: the survivor's content wins everywhere once healed.
    const winner = results[0] === "OK" ? "written through node1\n" : "written through node2\n";
    assert.ok(results.includes("OK"), `at least one side may write (got ${results})`);
    await c.waitHealed(30_000);
    assert.equal(await readFile(c.brickPath(1, "contested"), "utf8"), winner);
    assert.equal(await readFile(c.brickPath(2, "contested"), "utf8"), winner);
  }
  assert.deepEqual(earlyProblems, [], "both sides' acknowledged files survive the end of the partition");
  await finishScenario(t, c, [la, lb], { file: FILE, mount: a, extraOps: 2 });
});

test("iptables -S is clean after the partitions", () => {
  removeAll();
  assert.deepEqual(leftoverRules(), []);
  record({ file: FILE, note: "iptables clean" });
});

// What every fault scenario ends with: heal complete, every acknowledged byte checked on both bricks and
// through the mount, counters recorded for the summary, and the assertions (lost 0, divergent 0, crashes 0).
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { verify, type AckLedger } from "../helpers/checksum-writer";
import type { ClusterMount, FaultCluster } from "../helpers/cluster";
import { record } from "./report";

export async function finishScenario(
  t: TestContext,
  c: FaultCluster,
  ledgers: AckLedger[],
  o: { mount?: ClusterMount; healTimeoutMs?: number; file: string; extraOps?: number } ,
): Promise<void> {
  await c.waitHealed(o.healTimeoutMs ?? 60_000, () => []).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await changelogs(c)}\n${c.events()}`);
  });
  const mount = o.mount ?? c.mounts.find((m) => m.child.exitCode === null && m.child.signalCode === null);
  let files = 0;
  let bytes = 0;
  const lost: string[] = [];
  const problems: string[] = [];
  let ops = o.extraOps ?? 0;
  for (const l of ledgers) {
    const r = await verify(l, mount ? { label: "mount", root: mount.mountpoint } : undefined, [
      { label: "brick1", root: c.bricks[0] },
      { label: "brick2", root: c.bricks[1] },
    ]);
    files += r.files;
    bytes += r.bytesVerified;
    lost.push(...r.lost, ...r.divergent);
    problems.push(...r.problems);
    ops += l.stats.operations;
  }
  const crashes = c.crashes();
  if (c.lookupHealed.size) record({ file: o.file, note: `${t.name}: ${c.lookupHealed.size} entries healed only after a lookup through the mount (${[...c.lookupHealed].slice(0, 3).join(", ")})` });
  record({ file: o.file, scenario: t.name, scenarios: 1, operations: ops, bytesVerified: bytes, crashes: crashes.length, dataLost: lost.length });
  const errors = ledgers.map((l) => JSON.stringify(l.stats.errors)).join(" ");
  t.diagnostic(`${files} files, ${(bytes / (1 << 20)).toFixed(1)} MiB verified, ${ops} ops, errors seen by writers: ${errors}, short writes ${ledgers.reduce((n, l) => n + l.stats.shortWrites, 0)}, max stall ${Math.max(...ledgers.map((l) => l.stats.maxStallMs))} ms`);
  assert.deepEqual(crashes, [], "no server or mount crashed");
  assert.deepEqual(problems.slice(0, 20), [], `acknowledged data lost or divergent in ${lost.length} files\n${c.events()}`);
  assert.ok(files > 0, "the scenario wrote something");
}

/** The sizes and AFR counters of every entry still pending heal, on both bricks (for failure messages). */
async function changelogs(c: FaultCluster): Promise<string> {
  try {
    const info = await c.healInfo();
    return c.changelogs(info.bricks.flatMap((b) => b.entries.map((e) => e.path)));
  } catch (e) {
    return `(heal info failed: ${(e as Error).message})`;
  }
}

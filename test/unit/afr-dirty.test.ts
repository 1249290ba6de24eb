// The dirty counter (changelog.ts DIRTY_KEY): a data batch's pre-op in one short key, read as the v1
// "+1 for every replica" so direction, heal and heal info judge exactly as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { constants as fsc } from "node:fs";
import { Fd } from "../../runtime/core/types";
import { DIRTY_KEY, decodeCounters, delta, encodeCounters, findDirection, pendingMatrix } from "../../runtime/xlators/cluster/afr/changelog";
import { inspect } from "../../runtime/xlators/cluster/afr/inspect";
import { clearPending } from "../../runtime/xlators/cluster/afr/self-heal-common";
import { ROOT, replicaSet, waitFor, writeFile, type ReplicaSet } from "./afr-harness";

async function xattrsOf(rs: ReplicaSet, brick: number, path: string): Promise<Record<string, number[]>> {
  const keys = [...rs.afr.allChangelogKeys()];
  const r = await rs.bricks[brick]!.lookup(ROOT, { path }, { "want-xattrs": keys });
  return Object.fromEntries(keys.map((k) => [k, decodeCounters(r.xattrs?.[k])]));
}

test("the dirty counter counts as a mark of every replica in the pending matrix", () => {
  const keysOf = (j: number) => [`trusted.afr.b${j}`];
  const rows = new Map<number, Record<string, Buffer>>([
    [0, { [DIRTY_KEY]: encodeCounters([1, 0, 0]) }],
    [1, { [DIRTY_KEY]: encodeCounters([1, 0, 0]), "trusted.afr.b0": encodeCounters([2, 0, 0]) }],
  ]);
  const m = pendingMatrix(rows, keysOf, 2, "data");
  assert.deepEqual(m.get(0), [1, 1]);
  assert.deepEqual(m.get(1), [3, 1]);
  // both self-accusing; replica 1 blames replica 0 beyond its own mark: replica 1 is the source
  assert.deepEqual(findDirection(m).sources, [1]);
  assert.deepEqual(pendingMatrix(rows, keysOf, 2, "metadata").get(1), [0, 0]);
});

test("a data batch marks only the dirty counter, and its post-op leaves the file clean", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 5 });
  t.after(() => rs.close());
  await writeFile(rs.afr, "/f", "");
  const fd = new Fd("/f", fsc.O_RDWR);
  await rs.afr.open(ROOT, { path: "/f" }, fsc.O_RDWR, fd);
  await rs.afr.write(ROOT, fd, Buffer.from("abc"), 0);
  for (const b of [0, 1]) {
    const x = await xattrsOf(rs, b, "/f");
    assert.deepEqual(x[DIRTY_KEY], [1, 0, 0], "the batch's pre-op is on disk as dirty");
    for (const j of [0, 1]) assert.deepEqual(x[rs.afr.blameKey(j)], [0, 0, 0], "no per-replica key written");
  }
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
  assert.ok(await waitFor(async () => {
    for (const b of [0, 1]) if (Object.values(await xattrsOf(rs, b, "/f")).some((c) => c.some((v) => v !== 0))) return false;
    return true;
  }), "post-op cleared the dirty mark");
});

test("a file left dirty by a dead batch is healed and cleared; blame of a replica away stays on its key", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/f", "same");
  // a batch that died after its pre-op on both replicas
  for (const b of [0, 1]) await rs.bricks[b]!.xattrop(ROOT, { path: "/f" }, "add32", { [DIRTY_KEY]: delta("data", 1) });
  await rs.afr.heals.healNow("/f");
  for (const b of [0, 1]) assert.deepEqual((await xattrsOf(rs, b, "/f"))[DIRTY_KEY], [0, 0, 0]);
  // dirty on brick1 while brick0 is away: clearing it keeps brick1's blame of brick0
  await rs.bricks[1]!.xattrop(ROOT, { path: "/f" }, "add32", { [DIRTY_KEY]: delta("data", 1) });
  rs.switches[0]!.setDown(true);
  const insp = await inspect(rs.afr, { path: "/f" });
  await clearPending(rs.afr, rs.afr.internalCtx(), insp, "data");
  const x = await xattrsOf(rs, 1, "/f");
  assert.deepEqual(x[DIRTY_KEY], [0, 0, 0]);
  assert.deepEqual(x[rs.afr.blameKey(0)], [1, 0, 0], "brick0, away, is still blamed");
  assert.deepEqual(x[rs.afr.blameKey(1)], [0, 0, 0]);
});

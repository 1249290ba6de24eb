// Locks riding on fops (features/posix-locks/locks-first.ts) in a server-side replica: the remote
// brick's name lock travels inside the entry fop, its data lock inside the pre-op, and ops still
// run under every replica's lock, in one order on both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { constants as fsc } from "node:fs";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { decodeCounters } from "../../runtime/xlators/cluster/afr/changelog";
import { FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import { Afr } from "../../runtime/xlators/cluster/afr";
import { AFR_DEFAULTS, ROOT, readFile, replicaSet, waitFor, writeFile, type ReplicaSet } from "./afr-harness";

/** Makes the child last in lock order "remote" (as protocol/client would be) and riding-capable. */
function serverSide(rs: ReplicaSet): number {
  const order = rs.afr.lockOrder([0, 1]);
  const remote = order[1]!;
  (rs.afr.localChildren as boolean[])[remote] = false;
  rs.afr.locksFirst[remote] = true;
  return remote;
}

function countFops(rs: ReplicaSet, i: number, fops: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const sw = rs.switches[i] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const fop of fops) {
    const orig = sw[fop]!.bind(sw);
    sw[fop] = (...args: unknown[]) => {
      // (entrylk of a name; the whole-directory ones are the entry batch's lock)
      const cmd = fop === "entrylk" ? `:${String(args[4])}${args[3] === null ? ":dir" : ""}` : fop === "inodelk" ? `:${(args[4] as { type: string }).type}` : "";
      counts.set(fop + cmd, (counts.get(fop + cmd) ?? 0) + 1);
      return orig(...args);
    };
  }
  return counts;
}

async function gfidOn(rs: ReplicaSet, brick: number, path: string): Promise<string> {
  return (await rs.bricks[brick]!.lookup(ROOT, { path })).stat.gfid;
}

async function clean(rs: ReplicaSet, path: string): Promise<boolean> {
  for (const b of [0, 1]) {
    for (const j of [0, 1]) {
      const key = `trusted.afr.${rs.afr.brickIds[j]}`;
      const r = await rs.bricks[b]!.lookup(ROOT, { path }, { "want-xattrs": [key] });
      if (decodeCounters(r.xattrs?.[key]).some((v) => v !== 0)) return false;
    }
  }
  return true;
}

test("creates and unlinks send no lock request of their own to the remote brick, and leave identical replicas", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.05 });
  t.after(() => rs.close());
  const remote = serverSide(rs);
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  const counts = countFops(rs, remote, ["entrylk", "inodelk", "xattrop", "create", "unlink", "flush"]);
  for (let i = 0; i < 10; i++) await writeFile(rs.afr, `/d/f${i}`, `content ${i}`);
  // per file one xattrop (the write batch's pre-op, the lock riding on it); its post-op and unlock
  // rode on the close's flush; the rest is the directory's entry batch (pre-op, post-op)
  assert.equal(counts.get("flush"), 10);
  assert.ok((counts.get("xattrop") ?? 0) <= 12, `${counts.get("xattrop")} xattrops on the remote brick for 10 files`);
  for (let i = 0; i < 10; i++) {
    assert.equal(await gfidOn(rs, 0, `/d/f${i}`), await gfidOn(rs, 1, `/d/f${i}`));
    assert.equal((await readFile(rs.afr, `/d/f${i}`)).toString(), `content ${i}`);
  }
  assert.equal(counts.get("entrylk:lock_nb") ?? 0, 0, "name locks rode on the creates");
  assert.equal(counts.get("inodelk:wr") ?? 0, 0, "data locks rode on the pre-ops");
  assert.equal(counts.get("create"), 10);
  assert.ok(await waitFor(async () => (await clean(rs, "/d")) && (await clean(rs, "/d/f9"))), "post-ops cleared every mark");
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(counts.get("entrylk:unlock") ?? 0, 0, "name locks went with the creates");
  assert.equal(counts.get("inodelk:un") ?? 0, 0, "data locks went with the post-ops");
  assert.equal(counts.get("entrylk:unlock:dir") ?? 0, 0, "the batch lock went with the directory's post-op");
  for (let i = 0; i < 10; i++) await rs.afr.unlink(ROOT, { path: `/d/f${i}` });
  assert.equal(counts.get("entrylk:lock_nb") ?? 0, 0, "name locks rode on the unlinks");
  for (const b of [0, 1]) await assert.rejects(rs.bricks[b]!.lookup(ROOT, { path: "/d/f3" }), { code: "ENOENT" });
  // every lock taken was released again: another owner gets them at once
  const other: CallCtx = { ...ROOT, lkOwner: "someone-else", client: "other" };
  assert.ok(await waitFor(async () => {
    try {
      await rs.switches[remote]!.entrylk(other, rs.afr.name, { path: "/d" }, "f3", "lock_nb", "wr");
      await rs.switches[remote]!.entrylk(other, rs.afr.name, { path: "/d" }, "f3", "unlock", "wr");
      return true;
    } catch {
      return false;
    }
  }));
});

test("a create whose remote name lock is held waits for it, and runs on both replicas after it", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.05 });
  t.after(() => rs.close());
  const remote = serverSide(rs);
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  // another server holds a name: the entry batch of /d (opened by this write) locks names one by one
  const other: CallCtx = { ...ROOT, lkOwner: "other-server", client: "other" };
  await rs.switches[remote]!.entrylk(other, rs.afr.name, { path: "/d" }, "x", "lock_nb", "wr");
  await writeFile(rs.afr, "/d/warm", "x");
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd = new Fd("/d/x", flags);
  let done = false;
  const creating = rs.afr.create(ROOT, { path: "/d/x" }, flags, 0o644, fd).then((st) => {
    done = true;
    return st;
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(done, false, "the create waits for the remote name lock");
  await assert.rejects(rs.bricks[remote]!.lookup(ROOT, { path: "/d/x" }), { code: "ENOENT" }, "nothing ran on the remote brick");
  await rs.switches[remote]!.entrylk(other, rs.afr.name, { path: "/d" }, "x", "unlock", "wr");
  const st = await creating;
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
  assert.equal(await gfidOn(rs, 0, "/d/x"), st.gfid);
  assert.equal(await gfidOn(rs, 1, "/d/x"), st.gfid);
  assert.ok(await waitFor(() => clean(rs, "/d")), "no replica blamed");
});

test("both servers' replicas at once on the same names (one rides its remote brick's locks, the other, whose remote brick is first in lock order, locks the usual way): no deadlock, one file per name, the same on both bricks", { timeout: 60000 }, async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.05 });
  const other = new Afr({ name: rs.afr.name, type: "cluster/afr", options: { ...AFR_DEFAULTS, "post-op-delay": 0.05 }, children: rs.switches, log: silentLogger(), graph: new Map() });
  await other.start();
  t.after(async () => {
    await other.stop();
    await rs.close();
  });
  const order = rs.afr.lockOrder([0, 1]);
  assert.deepEqual(other.lockOrder([0, 1]), order, "both agree on the lock order");
  const sides = [{ afr: rs.afr, remote: order[1]!, ctx: { ...ROOT, client: "node1" } }, { afr: other, remote: order[0]!, ctx: { ...ROOT, client: "node2" } }];
  for (const s of sides) {
    (s.afr.localChildren as boolean[])[s.remote] = false;
    s.afr.locksFirst[s.remote] = true;
  }
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  for (let k = 0; k < 40; k++) {
    const path = `/d/f${k}`;
    const won = (await Promise.all(sides.map(async ({ afr, ctx }) => {
      const fd = new Fd(path, flags);
      try {
        const st = await afr.create(ctx, { path }, flags, 0o644, fd);
        await afr.flush(ctx, fd);
        await afr.release(ctx, fd);
        return st.gfid;
      } catch (err) {
        if (FopError.from(err).code === "EEXIST") return undefined;
        throw err;
      }
    }))).filter((g) => g !== undefined);
    assert.equal(won.length, 1, `${path}: one create made it, the other found it`);
    assert.equal(await gfidOn(rs, 0, path), won[0]);
    assert.equal(await gfidOn(rs, 1, path), won[0]);
  }
  for (let k = 0; k < 40; k++) {
    const path = `/d/f${k}`;
    const res = await Promise.allSettled(sides.map(({ afr, ctx }) => afr.unlink(ctx, { path })));
    assert.equal(res.filter((r) => r.status === "fulfilled").length, 1, `${path}: one unlink removed it`);
    const lost = res.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.equal(FopError.from(lost.reason).code, "ENOENT");
    for (const b of [0, 1]) await assert.rejects(rs.bricks[b]!.lookup(ROOT, { path }), { code: "ENOENT" });
  }
  assert.ok(await waitFor(() => clean(rs, "/d")), "no replica blamed");
});

test("without riding support on the remote brick, locks go as requests of their own", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.05 });
  t.after(() => rs.close());
  const remote = serverSide(rs);
  rs.afr.locksFirst[remote] = false;
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  // another server holds a name in /d: its batch locks names one by one
  await rs.switches[remote]!.entrylk({ ...ROOT, lkOwner: "other-server", client: "other" }, rs.afr.name, { path: "/d" }, "busy", "lock_nb", "wr");
  const counts = countFops(rs, remote, ["entrylk"]);
  await writeFile(rs.afr, "/d/f", "abc");
  assert.equal(counts.get("entrylk:lock_nb"), 1);
  assert.equal((await readFile(rs.afr, "/d/f")).toString(), "abc");
});

test("open goes out with its lookup: a file on one replica only is opened there alone", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/both", "abc");
  // A name only brick1 has (as if made behind AFR's back): readable from there, opened there only.
  const fd0 = new Fd("/only1", fsc.O_RDWR);
  await rs.bricks[1]!.create(ROOT, { path: "/only1" }, fsc.O_RDWR | fsc.O_EXCL, 0o644, fd0);
  await rs.bricks[1]!.write(ROOT, fd0, Buffer.from("xyz"), 0);
  await rs.bricks[1]!.release(ROOT, fd0);
  const fd = new Fd("/only1", fsc.O_RDONLY);
  await rs.afr.open(ROOT, { path: "/only1" }, fsc.O_RDONLY, fd);
  assert.deepEqual(rs.afr.fdCtx(fd)?.opened, [false, true]);
  assert.equal((await rs.afr.read(ROOT, fd, 10, 0)).toString(), "xyz");
  await rs.afr.release(ROOT, fd);
  // A missing file: ENOENT, and nothing stays open anywhere.
  const fd2 = new Fd("/none", fsc.O_RDONLY);
  await assert.rejects(rs.afr.open(ROOT, { path: "/none" }, fsc.O_RDONLY, fd2), { code: "ENOENT" });
  const dump = (b: number) => (rs.bricks[b]!.dump() as { openFds: number }).openFds;
  assert.equal(dump(0) + dump(1), 0);
});

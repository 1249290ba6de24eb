// Entry batches (delayed post-op of entry fops on a directory), background unlock/post-op and the
// one-round-trip lookup: fewer changelog updates, and the marks on disk still tell the truth.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { constants as fsc } from "node:fs";
import { FopError } from "../../runtime/core/errors";
import { Fd } from "../../runtime/core/types";
import { decodeCounters } from "../../runtime/xlators/cluster/afr/changelog";
import { silentLogger } from "../../runtime/core/log";
import { Afr } from "../../runtime/xlators/cluster/afr";
import { AFR_DEFAULTS, ROOT, readFile, replicaSet, waitFor, type ReplicaSet } from "./afr-harness";

async function opened(rs: ReplicaSet, brick: number, path: string): Promise<Fd> {
  const fd = new Fd(path, 0, true);
  await rs.bricks[brick]!.opendir(ROOT, { path }, fd);
  return fd;
}

async function changelogOf(rs: ReplicaSet, brick: number, path: string, blamed: number): Promise<number[]> {
  const key = `trusted.afr.${rs.afr.brickIds[blamed]}`;
  const r = await rs.bricks[brick]!.lookup(ROOT, { path }, { "want-xattrs": [key] });
  return decodeCounters(r.xattrs?.[key]);
}

/** Counts the fops each switch (child of AFR) passes down, by name and path. */
function countFops(rs: ReplicaSet, fops: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  rs.switches.forEach((sw, i) => {
    for (const fop of fops) {
      const x = sw as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
      const orig = x[fop]!.bind(sw);
      x[fop] = (...args: unknown[]) => {
        const key = `${i}:${fop}:${(args[1] as { path?: string })?.path}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        return orig(...args);
      };
    }
  });
  return counts;
}

async function create(rs: ReplicaSet, path: string): Promise<void> {
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd = new Fd(path, flags);
  await rs.afr.create(ROOT, { path }, flags, 0o644, fd);
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
}

async function allClear(rs: ReplicaSet, path: string): Promise<boolean> {
  for (const b of [0, 1]) for (const j of [0, 1]) if ((await changelogOf(rs, b, path, j)).some((v) => v !== 0)) return false;
  return true;
}

test("a burst of creates in one directory marks the directory once and clears it after post-op-delay", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 1, "eager-lock-max-hold": 30 });
  t.after(() => rs.close());
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  const counts = countFops(rs, ["xattrop"]);
  for (let i = 0; i < 20; i++) await create(rs, `/d/f${i}`);
  assert.deepEqual(await changelogOf(rs, 1, "/d", 0), [0, 0, 1], "the open batch's pre-op is on disk");
  assert.ok(await waitFor(() => allClear(rs, "/d"), 3000), "post-op clears the directory");
  assert.equal(counts.get("0:xattrop:/d"), 2, "one pre-op and one post-op on brick0");
  assert.equal(counts.get("1:xattrop:/d"), 2, "one pre-op and one post-op on brick1");
  const index = JSON.parse((await rs.bricks[1]!.getxattr(ROOT, { path: "/" }, "trusted.gha.index")).toString()) as unknown[];
  assert.deepEqual(index, []);
});

test("while no other server works in a directory, its batch locks it whole: creates and unlinks take no name lock, and the lock goes with the post-op", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.05 });
  t.after(() => rs.close());
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  const locks = new Map<string, number>();
  rs.switches.forEach((sw, i) => {
    const orig = sw.entrylk.bind(sw);
    sw.entrylk = (ctx, domain, loc, basename, cmd, type) => {
      if (domain === rs.afr.name) {
        const key = `${i}:${cmd}:${basename === null ? "whole" : "name"}`;
        locks.set(key, (locks.get(key) ?? 0) + 1);
      }
      return orig(ctx, domain, loc, basename, cmd, type);
    };
  });
  for (let i = 0; i < 10; i++) await create(rs, `/d/f${i}`);
  for (let i = 0; i < 10; i += 2) await rs.afr.unlink(ROOT, { path: `/d/f${i}` });
  await rs.afr.rename(ROOT, { path: "/d/f1" }, { path: "/d/g1" });
  for (const b of [0, 1]) {
    const fd = await opened(rs, b, "/d");
    assert.deepEqual((await rs.bricks[b]!.readdir(ROOT, fd, 0, false)).map((e) => e.name).filter((n) => !n.startsWith(".")).sort(), ["f3", "f5", "f7", "f9", "g1"]);
    await rs.bricks[b]!.releasedir(ROOT, fd);
  }
  assert.equal(locks.get("0:lock_nb:whole"), 1, JSON.stringify([...locks]));
  assert.equal(locks.get("1:lock_nb:whole"), 1, JSON.stringify([...locks]));
  assert.equal([...locks.keys()].filter((k) => k.endsWith(":name")).length, 0, `no name locks: ${JSON.stringify([...locks])}`);
  assert.ok(await waitFor(() => allClear(rs, "/d"), 3000), "post-op cleared the directory");
  // released with the post-op (not a request of its own): another owner locks a name at once
  assert.equal(locks.get("0:unlock:whole") ?? 0, 0);
  const other = { ...ROOT, lkOwner: "other-server", client: "other" };
  assert.ok(await waitFor(async () => {
    try {
      for (const sw of rs.switches) await sw.entrylk(other, rs.afr.name, { path: "/d" }, "f3", "lock_nb", "wr");
      return true;
    } catch {
      return false;
    }
  }, 3000), "the whole lock was released");
  for (const sw of rs.switches) await sw.entrylk(other, rs.afr.name, { path: "/d" }, "f3", "unlock", "wr");
});

test("another server's create in a directory locked whole waits for that batch to end, not for its creates to stop", { timeout: 30000 }, async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.05, "eager-lock-max-hold": 0.3 });
  const other = new Afr({ name: rs.afr.name, type: "cluster/afr", options: { ...AFR_DEFAULTS, "post-op-delay": 0.05 }, children: rs.switches, log: silentLogger(), graph: new Map() });
  await other.start();
  t.after(async () => {
    await other.stop();
    await rs.close();
  });
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  let stop = false;
  let made = 0;
  const stream = (async () => {
    const until = Date.now() + 20000;
    while (!stop && Date.now() < until) await create(rs, `/d/s${made++}`);
  })();
  await waitFor(() => made > 20, 5000);
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd = new Fd("/d/theirs", flags);
  const node2 = { ...ROOT, client: "node2" };
  const st = await other.create(node2, { path: "/d/theirs" }, flags, 0o644, fd);
  await other.flush(node2, fd);
  await other.release(node2, fd);
  const madeMeanwhile = made;
  await waitFor(() => made > madeMeanwhile + 10, 5000);
  stop = true;
  await stream;
  assert.ok(made > madeMeanwhile, "this server's creates went on after the other's");
  for (const b of [0, 1]) assert.equal((await rs.bricks[b]!.lookup(ROOT, { path: "/d/theirs" })).stat.gfid, st.gfid);
  for (let i = 0; i < made; i++) {
    const g0 = (await rs.bricks[0]!.lookup(ROOT, { path: `/d/s${i}` })).stat.gfid;
    assert.equal((await rs.bricks[1]!.lookup(ROOT, { path: `/d/s${i}` })).stat.gfid, g0, `/d/s${i}`);
  }
  assert.ok(await waitFor(() => allClear(rs, "/d"), 3000), "no replica blamed");
});

test("a directory that gets a fop again soon after its batch ended idle keeps its next batch open longer (up to eager-lock-max-hold), so files spread over many directories are not marked one by one", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.05, "eager-lock-max-hold": 0.4 });
  t.after(() => rs.close());
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  await rs.afr.mkdir(ROOT, { path: "/once" }, 0o755);
  const counts = countFops(rs, ["xattrop"]);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // How long a batch held its directory idle: from the replicas' answer to its last create (it goes
  // idle after that) to its post-op being sent. Measured, not slept for: a loaded machine is slow.
  const answered = new Map<string, number>();
  const xattropSent: { path: string; at: number }[] = [];
  for (const sw of rs.switches) {
    const passCreate = sw.create.bind(sw);
    sw.create = async (ctx, loc, flags, mode, fd, xdata) => {
      try {
        return await passCreate(ctx, loc, flags, mode, fd, xdata);
      } finally {
        answered.set(loc.path, Date.now()); // the later replica's answer stays
      }
    };
    const passXattrop = sw.xattrop.bind(sw);
    sw.xattrop = (ctx, loc, op, xattrs, xdata) => {
      xattropSent.push({ path: loc.path, at: Date.now() });
      return passXattrop(ctx, loc, op, xattrs, xdata);
    };
  }
  const idleHold = async (file: string, dir: string): Promise<number> => {
    const from = answered.get(file)!;
    let postOp: { at: number } | undefined;
    assert.ok(await waitFor(() => (postOp = xattropSent.find((x) => x.path === dir && x.at >= from)) !== undefined, 3000), `the post-op of ${dir} after ${file}`);
    return postOp!.at - from;
  };
  // one create every 120 ms (post-op-delay is 50 ms): 10 batches without learning, 2-3 with it
  // (the first ends idle, the next waits 100 ms, the third 200 ms: longer than the gaps)
  for (let i = 0; i < 10; i++) {
    await create(rs, `/d/f${i}`);
    await sleep(120);
  }
  const preAndPostOps = counts.get("0:xattrop:/d") ?? 0;
  assert.ok(preAndPostOps <= 8, `pre-ops and post-ops of /d on brick0: ${preAndPostOps} (20 if every create had a batch of its own)`);
  assert.ok(await waitFor(() => allClear(rs, "/d"), 3000), "the last batch still ends, and clears the directory");
  // a directory seen once keeps post-op-delay (50 ms): a hold learned from /d would be up to 400 ms
  // (the measure is never below the hold; the margin is for a loaded machine's late timers)
  await create(rs, "/once/f");
  const onceHold = await idleHold("/once/f", "/once");
  assert.ok(onceHold < 300, `/once held ${onceHold} ms idle`);
  assert.ok(await waitFor(() => allClear(rs, "/once"), 3000), "the post-op of /once is on disk");
  assert.equal(counts.get("0:xattrop:/once"), 2, "pre-op and post-op of /once done");
  // the learned time is bounded (by eager-lock-max-hold, 400 ms; 300 ms margin as above)
  const before = counts.get("0:xattrop:/d") ?? 0;
  await create(rs, "/d/late");
  const lateHold = await idleHold("/d/late", "/d");
  assert.ok(lateHold < 700, `/d held ${lateHold} ms idle after /d/late`);
  assert.ok(await waitFor(() => counts.get("0:xattrop:/d") === before + 2, 3000), `the batch of /d/late ended within eager-lock-max-hold: ${counts.get("0:xattrop:/d")} xattrops, ${before} before`);
  for (const b of [0, 1]) for (let i = 0; i < 10; i++) await rs.bricks[b]!.lookup(ROOT, { path: `/d/f${i}` });
});

test("an entry op that fails on one replica inside a batch blames it before it is answered", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 5 });
  t.after(() => rs.close());
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  await create(rs, "/d/first"); // opens the batch (held 5 s idle)
  // A name only brick0 has: the create fails there (EEXIST) and succeeds on brick1.
  const fd = new Fd("/d/x", fsc.O_RDWR | fsc.O_CREAT);
  await rs.bricks[0]!.create(ROOT, { path: "/d/x" }, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o644, fd);
  await rs.bricks[0]!.release(ROOT, fd);
  await create(rs, "/d/x");
  assert.deepEqual(await changelogOf(rs, 1, "/d", 0), [0, 0, 1], "brick1 blames brick0 at once");
  assert.deepEqual(await changelogOf(rs, 1, "/d", 1), [0, 0, 0], "brick1 does not accuse itself");
});

test("an entry heal waits for an open batch and never drives its counters negative", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.2 });
  t.after(() => rs.close());
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  await create(rs, "/d/a");
  const heal = rs.afr.heals.healNow("/d");
  await create(rs, "/d/b");
  await heal;
  assert.ok(await waitFor(() => allClear(rs, "/d"), 3000), "counters back to zero, not below");
  for (const b of [0, 1]) {
    const names = (await Promise.all(["/d/a", "/d/b"].map((p) => rs.bricks[b]!.lookup(ROOT, { path: p })))).map((r) => r.stat.gfid);
    assert.equal(names.length, 2);
  }
});

test("lookup with want-xattrs asks each replica once", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await create(rs, "/f");
  await rs.afr.setxattr(ROOT, { path: "/f" }, "user.colour", Buffer.from("blue"), 0);
  const counts = countFops(rs, ["lookup"]);
  const r = await rs.afr.lookup(ROOT, { path: "/f" }, { "want-xattrs": ["user.colour"] });
  assert.equal(r.xattrs?.["user.colour"]?.toString(), "blue");
  assert.deepEqual(Object.keys(r.xattrs ?? {}), ["user.colour"], "only what was asked");
  assert.equal(counts.get("0:lookup:/f"), 1);
  assert.equal(counts.get("1:lookup:/f"), 1);
});

test("a chmod answered before its post-op leaves no marks behind, and the next one waits for its unlock", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await create(rs, "/m");
  await Promise.all([0o600, 0o640, 0o644, 0o604].map((mode) => rs.afr.setattr(ROOT, { path: "/m" }, { mode })));
  await rs.afr.after.drain();
  assert.ok(await allClear(rs, "/m"), "no marks left");
  const modes = await Promise.all(rs.bricks.map((b) => b.lookup(ROOT, { path: "/m" })));
  assert.equal(modes[0]!.stat.mode & 0o777, modes[1]!.stat.mode & 0o777, "replicas agree on the mode");
});

async function dirtyOf(rs: ReplicaSet, brick: number, path: string): Promise<number[]> {
  const r = await rs.bricks[brick]!.lookup(ROOT, { path }, { "want-xattrs": ["trusted.afr.dirty"] });
  return decodeCounters(r.xattrs?.["trusted.afr.dirty"]);
}

test("a file created for writing is born locked and marked on every replica: its batch sends no lock request and no pre-op, and its close clears the mark", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 5 });
  t.after(() => rs.close());
  assert.deepEqual(rs.afr.locksFirst, [true, true], "both bricks take riding locks");
  const counts = countFops(rs, ["inodelk", "xattrop"]);
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd = new Fd("/f", flags);
  const st = await rs.afr.create(ROOT, { path: "/f" }, flags, 0o644, fd);
  assert.equal(await rs.afr.write(ROOT, fd, Buffer.from("born"), 0), 4);
  for (const b of [0, 1]) {
    assert.deepEqual(await dirtyOf(rs, b, "/f"), [1, 0, 0], `brick${b}: marked dirty (data) while the batch is open`);
    await assert.rejects(rs.bricks[b]!.parents[0]!.inodelk({ ...ROOT, lkOwner: "other" }, rs.afr.name, { path: "/f", gfid: st.gfid }, "setlk", { type: "wr", start: 0, len: 0, pid: 1 }),
      (e: FopError) => e.code === "EAGAIN", `brick${b}: the batch holds the file's data lock`);
  }
  assert.deepEqual([...counts.keys()].filter((k) => k.endsWith(":/f")), [], "no inodelk and no xattrop of the file before its close");
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
  assert.ok(await waitFor(async () => (await dirtyOf(rs, 0, "/f"))[0] === 0 && (await dirtyOf(rs, 1, "/f"))[0] === 0, 3000), "the close took the marks back");
  assert.ok(await waitFor(() => allClear(rs, "/f"), 3000), "no replica blamed");
  for (const b of [0, 1]) {
    await rs.bricks[b]!.parents[0]!.inodelk({ ...ROOT, lkOwner: "other" }, rs.afr.name, { path: "/f", gfid: st.gfid }, "setlk", { type: "wr", start: 0, len: 0, pid: 1 });
    await rs.bricks[b]!.parents[0]!.inodelk({ ...ROOT, lkOwner: "other" }, rs.afr.name, { path: "/f", gfid: st.gfid }, "setlk", { type: "un", start: 0, len: 0, pid: 1 });
    assert.equal((await readFile(rs.bricks[b]!, "/f")).toString(), "born", `brick${b}: the data`);
  }
});

test("a create whose new gfid is already locked on one replica still makes the file everywhere; its batch then locks the usual way", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 0.05 });
  t.after(() => rs.close());
  const gfid = randomUUID();
  const other = { ...ROOT, lkOwner: "other", client: "node2" };
  const locks1 = rs.bricks[1]!.parents[0]!;
  await locks1.inodelk(other, rs.afr.name, { path: "/g", gfid }, "setlk", { type: "wr", start: 0, len: 0, pid: 1 });
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd = new Fd("/g", flags);
  const st = await rs.afr.create(ROOT, { path: "/g" }, flags, 0o644, fd, { "gfid-req": gfid });
  assert.equal(st.gfid, gfid);
  for (const b of [0, 1]) assert.equal((await rs.bricks[b]!.lookup(ROOT, { path: "/g" })).stat.gfid, gfid, `brick${b} has the file`);
  let written = false;
  const write = rs.afr.write(ROOT, fd, Buffer.from("waited"), 0).then((n) => (written = n === 6));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(written, false, "the write waits for the other owner's lock");
  await locks1.inodelk(other, rs.afr.name, { path: "/g", gfid }, "setlk", { type: "un", start: 0, len: 0, pid: 1 });
  await write;
  assert.ok(written);
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
  assert.ok(await waitFor(() => allClear(rs, "/g"), 3000), "no replica blamed");
  for (const b of [0, 1]) {
    assert.deepEqual(await dirtyOf(rs, b, "/g"), [0, 0, 0], `brick${b}: no mark left`);
    assert.equal((await readFile(rs.bricks[b]!, "/g")).toString(), "waited");
  }
});

test("a close that arrives while a write is still on its way to a replica ends the batch once that write is answered", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 5 });
  t.after(() => rs.close());
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd = new Fd("/slow", flags);
  await rs.afr.create(ROOT, { path: "/slow" }, flags, 0o644, fd);
  const held = hold(rs, 1, "write");
  const written = rs.afr.write(ROOT, fd, Buffer.from("in flight"), 0);
  await held.reached; // (the close comes after the write went out, as a client's write-behind sends them)
  const closed = rs.afr.flush(ROOT, fd);
  assert.equal(await settlesWithin(closed, 200), false, "the close waits for the write");
  assert.deepEqual(await dirtyOf(rs, 1, "/slow"), [1, 0, 0], "the batch is still open");
  held.let();
  assert.equal(await written, 9);
  await closed;
  // (the release goes once the close's post-op is on every replica: a clean close is answered before)
  await rs.afr.release(ROOT, fd);
  for (const b of [0, 1]) {
    assert.deepEqual(await dirtyOf(rs, b, "/slow"), [0, 0, 0], `brick${b}: the close took the mark back`);
    assert.equal((await readFile(rs.bricks[b]!, "/slow")).toString(), "in flight", `brick${b}: the data`);
  }
  assert.ok(await allClear(rs, "/slow"), "no replica blamed");
});

/** Holds replica `brick`'s `fop`s until `let()` is called; `reached` resolves at the first. */
function hold(rs: ReplicaSet, brick: number, fop: "write" | "flush"): { reached: Promise<void>; let: () => void } {
  const sw = rs.switches[brick]! as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const passOn = sw[fop]!.bind(sw);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reachedNow!: () => void;
  const reached = new Promise<void>((r) => (reachedNow = r));
  sw[fop] = async (...args: unknown[]) => {
    reachedNow();
    await gate;
    return passOn(...args);
  };
  return { reached, let: open };
}

/** Whether `p` settles within `ms` (answered as soon as it does). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function createWritten(rs: ReplicaSet, path: string, data: string): Promise<Fd> {
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd = new Fd(path, flags);
  await rs.afr.create(ROOT, { path }, flags, 0o644, fd);
  assert.equal(await rs.afr.write(ROOT, fd, Buffer.from(data), 0), data.length);
  return fd;
}

test("a clean close (every write took everywhere, no lock ever taken) is answered before the replicas' flushes return; the release waits for them, and the marks go", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 5 });
  t.after(() => rs.close());
  const fd = await createWritten(rs, "/early", "written");
  const held = hold(rs, 1, "flush");
  const closed = rs.afr.flush(ROOT, fd);
  await held.reached;
  // (replica 1's flush is held until let: however long the wait, an answer now is an early one)
  assert.ok(await settlesWithin(closed, 5000), "the close is answered while replica 1's flush is held");
  for (const b of [0, 1]) assert.equal((await readFile(rs.bricks[b]!, "/early")).toString(), "written", `brick${b}: the data is there when close returns`);
  const released = rs.afr.release(ROOT, fd);
  assert.equal(await settlesWithin(released, 200), false, "the release waits for the close's flushes");
  assert.deepEqual(await dirtyOf(rs, 1, "/early"), [1, 0, 0], "replica 1's mark goes with its flush, not before");
  held.let();
  await released;
  for (const b of [0, 1]) assert.deepEqual(await dirtyOf(rs, b, "/early"), [0, 0, 0], `brick${b}: the close took the mark back`);
  assert.ok(await allClear(rs, "/early"), "no replica blamed");
});

test("a client that took a lock has its close answered only once every replica's flush has returned (the flush may release the lock)", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 5 });
  t.after(() => rs.close());
  const locker = await createWritten(rs, "/locked", "x");
  await rs.afr.lk(ROOT, locker, "setlk", { type: "wr", start: 0, len: 1, pid: 1 });
  await rs.afr.flush(ROOT, locker);
  await rs.afr.release(ROOT, locker);
  const fd = await createWritten(rs, "/other", "y");
  const held = hold(rs, 1, "flush");
  const closed = rs.afr.flush(ROOT, fd);
  await held.reached;
  assert.equal(await settlesWithin(closed, 200), false, "the close waits for replica 1's flush");
  held.let();
  await closed;
  // another client's flushes are still answered early: the lock was this client's
  const other = { ...ROOT, client: "another", lkOwner: "another" };
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd2 = new Fd("/theirs", flags);
  await rs.afr.create(other, { path: "/theirs" }, flags, 0o644, fd2);
  await rs.afr.write(other, fd2, Buffer.from("z"), 0);
  const held2 = hold(rs, 1, "flush");
  const closed2 = rs.afr.flush(other, fd2);
  await held2.reached;
  assert.ok(await settlesWithin(closed2, 5000), "a client without locks is answered early"); // (held2 is not let yet)
  held2.let();
  await rs.afr.release(other, fd2);
  await rs.afr.release(ROOT, fd);
  // a client that disconnected lost its locks (protocol/server tells every translator): answered early again
  rs.afr.releaseClient(ROOT.client);
  const fd3 = await createWritten(rs, "/after", "w");
  const held3 = hold(rs, 1, "flush");
  const closed3 = rs.afr.flush(ROOT, fd3);
  await held3.reached;
  assert.ok(await settlesWithin(closed3, 5000), "its close is answered early again"); // (held3 is not let yet)
  held3.let();
  await rs.afr.release(ROOT, fd3);
});

test("a close after a write that failed on one replica waits until the blame is on disk", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 5 });
  t.after(() => rs.close());
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
  const fd = new Fd("/failed", flags);
  await rs.afr.create(ROOT, { path: "/failed" }, flags, 0o644, fd);
  const sw = rs.switches[1]!;
  const write = sw.write.bind(sw);
  sw.write = async () => {
    throw new FopError("EIO", "disk error", { xlator: sw.name, fop: "write" });
  };
  assert.equal(await rs.afr.write(ROOT, fd, Buffer.from("half"), 0), 4, "the write took on replica 0");
  sw.write = write;
  const held = hold(rs, 0, "flush");
  const closed = rs.afr.flush(ROOT, fd);
  await held.reached;
  assert.equal(await settlesWithin(closed, 200), false, "the close waits for the post-op blaming replica 1");
  held.let();
  await closed;
  assert.ok((await changelogOf(rs, 0, "/failed", 1))[0]! > 0, "replica 0 blames replica 1 for the data when close returns");
  await rs.afr.release(ROOT, fd);
});

test("a write to the file opened again right after an early-answered close takes its lock after that close's unlock, and keeps it", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 5 });
  t.after(() => rs.close());
  const fd = await createWritten(rs, "/again", "one");
  const held = hold(rs, 1, "flush");
  const closed = rs.afr.flush(ROOT, fd);
  await held.reached;
  await closed;
  const released = rs.afr.release(ROOT, fd);
  const fd2 = new Fd("/again", fsc.O_RDWR);
  await rs.afr.open(ROOT, { path: "/again" }, fsc.O_RDWR, fd2);
  const wrote = rs.afr.write(ROOT, fd2, Buffer.from("two"), 3);
  assert.equal(await settlesWithin(wrote, 200), false, "the new batch waits for the close's unlock");
  held.let();
  assert.equal(await wrote, 3);
  await released;
  const st = await rs.afr.fstat(ROOT, fd2);
  const other = { ...ROOT, lkOwner: "other" };
  for (const b of [0, 1]) {
    await assert.rejects(rs.bricks[b]!.parents[0]!.inodelk(other, rs.afr.name, { path: "/again", gfid: st.gfid }, "setlk", { type: "wr", start: 0, len: 0, pid: 1 }),
      (e: FopError) => e.code === "EAGAIN", `brick${b}: the new batch still holds the file's data lock`);
  }
  await rs.afr.flush(ROOT, fd2);
  await rs.afr.release(ROOT, fd2);
  for (const b of [0, 1]) assert.equal((await readFile(rs.bricks[b]!, "/again")).toString(), "onetwo", `brick${b}: both writes`);
  assert.ok(await waitFor(() => allClear(rs, "/again"), 3000), "no replica blamed");
});

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, constants as FS } from "node:fs";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { errnoNumber, FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx, type Flock, type Xdata } from "../../runtime/core/types";
import { CHANGELOG_XDATA, LOCKS_AFTER_XDATA, LOCKS_FIRST_XATTR, LOCKS_FIRST_XDATA } from "../../runtime/xlators/features/posix-locks/locks-first";
import { Posix } from "../../runtime/xlators/storage/posix";
import locksDef, { PosixLocks } from "../../runtime/xlators/features/posix-locks";
import { Graph } from "../../runtime/core/graph";
import { waitFor } from "../helpers/cluster";

const who = (client: string, lkOwner: string, pid = 1): CallCtx => ({ uid: 0, gid: 0, pid, lkOwner, client });
const A = who("c1", "A");
const B = who("c1", "B");
const C = who("c2", "C");
const D = who("c2", "D");

function stack(t: TestContext): { locks: PosixLocks; posix: Posix } {
  const base = mkdtempSync(join(tmpdir(), "gha-locks-"));
  const posix = new Posix({ name: "brick", type: "storage/posix", options: { directory: join(base, "brick"), fsync: true }, children: [], log: silentLogger(), graph: new Map() });
  const locks = new PosixLocks({ name: "locks", type: "features/posix-locks", options: { mandatory: false, "mandatory-locks": false }, children: [posix], log: silentLogger(), graph: new Map() });
  t.after(async () => {
    await locks.stop();
    await posix.stop();
    rmSync(base, { recursive: true, force: true });
  });
  return { locks, posix };
}

async function openFile(locks: PosixLocks, ctx: CallCtx, path: string): Promise<Fd> {
  const fd = new Fd(path, FS.O_RDWR);
  try {
    await locks.create(ctx, { path }, FS.O_RDWR | FS.O_EXCL, 0o644, fd);
  } catch {
    await locks.open(ctx, { path }, FS.O_RDWR, fd);
  }
  return fd;
}

/** A pause before checking that something did NOT happen (what should happen is polled for with `until`). */
const settle = () => sleep(25);

/** Polls `cond` (a loaded machine can take a while: every lock request looks its inode up through the brick first). */
const until = (what: string, cond: () => boolean) => waitFor(what, cond, 10_000, 5);

/** How many lock requests are queued in the translator, over every kind of lock (from its dump). */
function queued(locks: PosixLocks): number {
  let n = 0;
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== "object") return;
    const w = (v as { waiting?: unknown }).waiting;
    if (Array.isArray(w)) n += w.length;
    else for (const x of Object.values(v)) walk(x);
  };
  walk(locks.dump());
  return n;
}

/** Waits until `n` requests are queued, or stops early if something settled (the caller's check then fails). */
const untilQueued = (locks: PosixLocks, n: number, order: string[]) =>
  until(`${n} queued lock requests`, () => queued(locks) >= n || order.length > 0);

const lk = (type: Flock["type"], start: number, len: number, owner?: string): Flock => ({ type, start, len, pid: 1, owner });

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof FopError && e.errno === errnoNumber(code));
}

/** Records when a pending promise settles, to assert on wake-up order. */
function track<T>(p: Promise<T>, label: string, log: string[]): { settled: () => boolean; error: () => unknown } {
  let done = false;
  let err: unknown;
  p.then(
    () => {
      done = true;
      log.push(label);
    },
    (e) => {
      done = true;
      err = e;
      log.push(`${label}!`);
    },
  );
  return { settled: () => done, error: () => err };
}

test("the translator needs exactly one child", () => {
  assert.deepEqual(locksDef.children, { min: 1, max: 1 });
  assert.throws(() => new PosixLocks({ name: "l", type: "features/posix-locks", options: { mandatory: false, "mandatory-locks": false }, children: [], log: silentLogger(), graph: new Map() }));
});

test("fcntl: a write lock excludes other owners, read locks share, getlk reports the holder", async (t) => {
  const { locks } = stack(t);
  const fa = await openFile(locks, A, "/f");
  const fc = await openFile(locks, C, "/f");
  await locks.lk(A, fa, "setlk", lk("wr", 0, 100));
  await rejectsWith(locks.lk(C, fc, "setlk", lk("rd", 50, 10)), "EAGAIN");
  await rejectsWith(locks.lk(B, fa, "setlk", lk("wr", 99, 1)), "EAGAIN"); // same client, other lk-owner
  await locks.lk(C, fc, "setlk", lk("wr", 100, 10)); // adjacent, not overlapping
  const holder = await locks.lk(C, fc, "getlk", lk("wr", 10, 1));
  assert.deepEqual({ type: holder.type, start: holder.start, len: holder.len, owner: holder.owner }, { type: "wr", start: 0, len: 100, owner: "A" });
  assert.equal((await locks.lk(A, fa, "getlk", lk("wr", 10, 1))).type, "un", "own locks never conflict");
  await locks.lk(A, fa, "setlk", lk("un", 0, 0));
  await locks.lk(C, fc, "setlk", lk("rd", 0, 50));
  await locks.lk(D, fc, "setlk", lk("rd", 0, 50));
  await rejectsWith(locks.lk(A, fa, "setlk", lk("wr", 49, 1)), "EAGAIN");
  // an explicit owner in the lock overrides ctx.lkOwner
  await locks.lk(A, fa, "setlk", lk("wr", 500, 1, "D"));
  assert.equal((await locks.lk(C, fc, "getlk", lk("wr", 500, 1))).owner, "D");
  await rejectsWith(locks.lk(A, fa, "setlk", lk("wr", -1, 1)), "EINVAL");
});

test("fcntl: ranges of one owner split on unlock and type change, and merge when adjacent", async (t) => {
  const { locks } = stack(t);
  const fa = await openFile(locks, A, "/f");
  const fc = await openFile(locks, C, "/f");
  const ranges = () => {
    const d = locks.dump().fcntl as Record<string, { granted: { type: string; start: number; end: number | string }[] }>;
    const all = Object.values(d).flatMap((x) => x.granted);
    return all.map((l) => `${l.type}:${l.start}-${l.end}`).sort();
  };
  await locks.lk(A, fa, "setlk", lk("wr", 0, 0)); // whole file
  await locks.lk(A, fa, "setlk", lk("un", 10, 10));
  assert.deepEqual(ranges(), ["wr:0-9", "wr:20-eof"]);
  await locks.lk(C, fc, "setlk", lk("wr", 12, 3)); // the hole is free for others
  await locks.lk(C, fc, "setlk", lk("un", 12, 3));
  await locks.lk(A, fa, "setlk", lk("wr", 10, 10)); // fills the hole: one lock again
  assert.deepEqual(ranges(), ["wr:0-eof"]);
  await locks.lk(A, fa, "setlk", lk("rd", 5, 5)); // downgrade a middle piece
  assert.deepEqual(ranges(), ["rd:5-9", "wr:0-4", "wr:10-eof"]);
  await locks.lk(C, fc, "setlk", lk("rd", 6, 2)); // readers may share the downgraded piece
  await rejectsWith(locks.lk(C, fc, "setlk", lk("rd", 4, 2)), "EAGAIN");
  await locks.lk(C, fc, "setlk", lk("un", 0, 0));
  await locks.lk(A, fa, "setlk", lk("wr", 5, 5)); // upgrade back: merges with both neighbours
  assert.deepEqual(ranges(), ["wr:0-eof"]);
});

test("fcntl: blocked setlkw waiters are granted in order as conflicting locks go", async (t) => {
  const { locks } = stack(t);
  const fa = await openFile(locks, A, "/f");
  const fb = await openFile(locks, B, "/f");
  const fc = await openFile(locks, C, "/f");
  const fd2 = await openFile(locks, D, "/f");
  const order: string[] = [];
  await locks.lk(A, fa, "setlk", lk("wr", 0, 0));
  // one at a time: each looks its inode up first, so sent together they could arrive in any order
  const b = track(locks.lk(B, fb, "setlkw", lk("wr", 0, 10)), "B", order);
  await untilQueued(locks, 1, order);
  const c = track(locks.lk(C, fc, "setlkw", lk("wr", 5, 10)), "C", order);
  await untilQueued(locks, 2, order);
  const d = track(locks.lk(D, fd2, "setlkw", lk("rd", 100, 1)), "D", order);
  await untilQueued(locks, 3, order);
  assert.deepEqual(order, []);
  const waiting = Object.values(locks.dump().fcntl as Record<string, { waiting: unknown[] }>)[0]!.waiting;
  assert.equal(waiting.length, 3);
  await locks.lk(A, fa, "setlk", lk("un", 0, 0));
  await until("two grants", () => order.length >= 2);
  await settle(); // C must not follow
  assert.deepEqual(order, ["B", "D"], "B first (it arrived first), C still blocked by B, D free");
  assert.ok(!c.settled());
  await locks.lk(B, fb, "setlk", lk("un", 0, 0));
  await until("C's grant", () => order.length >= 3);
  assert.deepEqual(order, ["B", "D", "C"]);
  assert.ok(b.settled() && d.settled());
});

test("fcntl: flush drops that owner's locks on the file and wakes waiters; other owners keep theirs", async (t) => {
  const { locks } = stack(t);
  const fa = await openFile(locks, A, "/f");
  const fc = await openFile(locks, C, "/f");
  await locks.lk(A, fa, "setlk", lk("wr", 0, 10));
  await locks.lk(B, fa, "setlk", lk("wr", 20, 10));
  const order: string[] = [];
  track(locks.lk(C, fc, "setlkw", lk("wr", 0, 5)), "C", order);
  await untilQueued(locks, 1, order);
  assert.deepEqual(order, [], "A's lock holds C back until the flush");
  await locks.flush(A, fa);
  await until("C's grant", () => order.length > 0);
  assert.deepEqual(order, ["C"]);
  await rejectsWith(locks.lk(D, fc, "setlk", lk("wr", 25, 1)), "EAGAIN"); // B's lock survives A's close
});

test("flock: shared locks coexist, exclusive waits, nonblock is EWOULDBLOCK, release frees", async (t) => {
  const { locks } = stack(t);
  const f1 = await openFile(locks, A, "/f");
  const f2 = await openFile(locks, A, "/f");
  const f3 = await openFile(locks, C, "/f");
  await locks.flock(A, f1, "sh", true);
  await locks.flock(A, f2, "sh", true);
  // flock owners are fds, not processes: the same caller on another fd conflicts
  await rejectsWith(locks.flock(A, f3, "ex", true), "EWOULDBLOCK");
  const order: string[] = [];
  const ex = track(locks.flock(C, f3, "ex", false), "ex", order);
  await untilQueued(locks, 1, order);
  await locks.flock(A, f1, "un", false);
  await settle();
  assert.ok(!ex.settled(), "f2 still holds a shared lock");
  await locks.release(A, f2);
  await until("the exclusive grant", () => order.length > 0);
  assert.deepEqual(order, ["ex"]);
  await rejectsWith(locks.flock(A, f1, "sh", true), "EWOULDBLOCK");
  await locks.flock(C, f3, "sh", true); // conversion by the holder
  await locks.flock(A, f1, "sh", true);
  await locks.release(C, f3);
  await locks.release(A, f1);
  assert.deepEqual(locks.dump().flock, {});
});

test("flock is independent of fcntl locks", async (t) => {
  const { locks } = stack(t);
  const fa = await openFile(locks, A, "/f");
  const fc = await openFile(locks, C, "/f");
  await locks.flock(A, fa, "ex", true);
  await locks.lk(C, fc, "setlk", lk("wr", 0, 0));
});

test("inodelk: domains are separate tables; same domain conflicts; unlock wakes the waiter", async (t) => {
  const { locks } = stack(t);
  await openFile(locks, A, "/f");
  await locks.inodelk(A, "vol-replicate-0", { path: "/f" }, "setlk", lk("wr", 0, 0));
  await locks.inodelk(C, "vol-replicate-0:self-heal", { path: "/f" }, "setlk", lk("wr", 0, 0));
  await rejectsWith(locks.inodelk(C, "vol-replicate-0", { path: "/f" }, "setlk", lk("wr", 0, 1)), "EAGAIN");
  const order: string[] = [];
  track(locks.inodelk(C, "vol-replicate-0", { path: "/f" }, "setlkw", lk("wr", 0, 1)), "C", order);
  await untilQueued(locks, 1, order);
  assert.deepEqual(order, []);
  await locks.inodelk(A, "vol-replicate-0", { path: "/f" }, "setlk", lk("un", 0, 0));
  await until("C's grant", () => order.length > 0);
  assert.deepEqual(order, ["C"]);
  const dump = locks.dump().inodelk as Record<string, Record<string, { granted: { client: string }[] }>>;
  assert.deepEqual(Object.keys(dump).sort(), ["vol-replicate-0", "vol-replicate-0:self-heal"]);
});

test("inodelk: a newcomer queues behind a conflicting waiter (no starvation)", async (t) => {
  const { locks } = stack(t);
  await openFile(locks, A, "/f");
  const loc = { path: "/f" };
  await locks.inodelk(A, "d", loc, "setlk", lk("rd", 0, 0));
  const order: string[] = [];
  track(locks.inodelk(C, "d", loc, "setlkw", lk("wr", 0, 0)), "writer", order);
  await untilQueued(locks, 1, order);
  assert.deepEqual(order, []);
  // a reader would fit next to A's read lock, but the queued writer goes first
  await rejectsWith(locks.inodelk(D, "d", loc, "setlk", lk("rd", 0, 0)), "EAGAIN");
  track(locks.inodelk(D, "d", loc, "setlkw", lk("rd", 0, 0)), "reader", order);
  await untilQueued(locks, 2, order);
  // A already holds a lock here, so it is not held back
  await locks.inodelk(A, "d", loc, "setlk", lk("rd", 10, 1));
  await locks.inodelk(A, "d", loc, "setlk", lk("un", 0, 0));
  await until("the writer's grant", () => order.length > 0);
  await settle(); // the reader must not follow
  assert.deepEqual(order, ["writer"]);
  await locks.inodelk(C, "d", loc, "setlk", lk("un", 0, 0));
  await until("the reader's grant", () => order.length >= 2);
  assert.deepEqual(order, ["writer", "reader"]);
});

test("inodelk keys on the inode: two hard links share one lock", async (t) => {
  const { locks } = stack(t);
  await openFile(locks, A, "/f");
  await locks.link(A, { path: "/f" }, { path: "/g" });
  await locks.inodelk(A, "d", { path: "/f" }, "setlk", lk("wr", 0, 0));
  await rejectsWith(locks.inodelk(C, "d", { path: "/g" }, "setlk", lk("wr", 0, 0)), "EAGAIN");
  const gfid = (await locks.stat(A, { path: "/g" })).gfid;
  await rejectsWith(locks.inodelk(C, "d", { path: "/elsewhere", gfid }, "setlk", lk("wr", 0, 0)), "EAGAIN");
  await rejectsWith(locks.inodelk(C, "d", { path: "/missing" }, "setlk", lk("wr", 0, 0)), "ENOENT");
});

test("entrylk: names conflict with the same name and with a whole-directory lock; readers share", async (t) => {
  const { locks } = stack(t);
  await locks.mkdir(A, { path: "/d" }, 0o755);
  const dir = { path: "/d" };
  await locks.entrylk(A, "dom", dir, "x", "lock_nb", "wr");
  await locks.entrylk(C, "dom", dir, "y", "lock_nb", "wr"); // another name
  await locks.entrylk(C, "other", dir, "x", "lock_nb", "wr"); // another domain
  await rejectsWith(locks.entrylk(C, "dom", dir, "x", "lock_nb", "wr"), "EAGAIN");
  await rejectsWith(locks.entrylk(D, "dom", dir, null, "lock_nb", "wr"), "EAGAIN");
  const order: string[] = [];
  track(locks.entrylk(D, "dom", dir, null, "lock", "wr"), "whole-dir", order);
  await untilQueued(locks, 1, order);
  await locks.entrylk(A, "dom", dir, "x", "unlock", "wr");
  await settle();
  assert.deepEqual(order, [], "C still holds y");
  await locks.entrylk(C, "dom", dir, "y", "unlock", "wr");
  await until("the whole-directory grant", () => order.length > 0);
  assert.deepEqual(order, ["whole-dir"]);
  await rejectsWith(locks.entrylk(A, "dom", dir, "z", "lock_nb", "wr"), "EAGAIN");
  await locks.entrylk(D, "dom", dir, null, "unlock", "wr");
  await locks.entrylk(A, "dom", dir, "z", "lock_nb", "rd");
  await locks.entrylk(C, "dom", dir, "z", "lock_nb", "rd");
  await locks.entrylk(C, "dom", dir, null, "lock_nb", "rd");
});

test("releaseClient drops every kind of lock of that client and wakes the others' waiters", async (t) => {
  const { locks } = stack(t);
  const fa = await openFile(locks, A, "/f");
  const fc = await openFile(locks, C, "/f");
  await locks.mkdir(A, { path: "/d" }, 0o755);
  await locks.lk(A, fa, "setlk", lk("wr", 0, 0));
  await locks.flock(A, fa, "ex", true);
  await locks.inodelk(B, "dom", { path: "/f" }, "setlk", lk("wr", 0, 0)); // B is also client c1
  await locks.entrylk(A, "dom", { path: "/d" }, "n", "lock", "wr");
  const order: string[] = [];
  track(locks.lk(C, fc, "setlkw", lk("rd", 0, 1)), "lk", order);
  track(locks.flock(C, fc, "sh", false), "flock", order);
  track(locks.inodelk(C, "dom", { path: "/f" }, "setlkw", lk("wr", 0, 0)), "inodelk", order);
  track(locks.entrylk(C, "dom", { path: "/d" }, null, "lock", "wr"), "entrylk", order);
  // and c1 waits behind c2 somewhere: that waiter must be cancelled, not granted
  await locks.inodelk(D, "dom2", { path: "/f" }, "setlk", lk("wr", 0, 0));
  const stale = track(locks.inodelk(A, "dom2", { path: "/f" }, "setlkw", lk("wr", 0, 0)), "c1-waiter", order);
  await untilQueued(locks, 5, order);
  assert.deepEqual(order, []);
  const dropped = locks.releaseClient("c1");
  assert.equal(dropped, 5, "4 held locks and the waiter");
  await until("the 4 grants and the cancellation", () => order.length >= 5);
  await settle(); // nothing more
  assert.deepEqual(order.slice().sort(), ["c1-waiter!", "entrylk", "flock", "inodelk", "lk"]);
  assert.equal((stale.error() as FopError).code, "ENOTCONN");
  assert.equal(locks.releaseClient("c1"), 0);
});

test("dump lists held and waiting locks per inode with their owners", async (t) => {
  const { locks } = stack(t);
  const fa = await openFile(locks, A, "/f");
  const fc = await openFile(locks, C, "/f");
  await locks.lk(A, fa, "setlk", lk("wr", 0, 10));
  void locks.lk(C, fc, "setlkw", lk("wr", 5, 1)).catch(() => undefined);
  await until("C's request to queue", () => queued(locks) >= 1);
  const d = locks.dump().fcntl as Record<string, { granted: Record<string, unknown>[]; waiting: Record<string, unknown>[] }>;
  const [gfid, table] = Object.entries(d)[0]!;
  assert.equal(gfid, fa.gfid);
  assert.deepEqual(table.granted, [{ client: "c1", owner: "A", type: "wr", start: 0, end: 9, pid: 1 }]);
  assert.deepEqual(table.waiting, [{ client: "c2", owner: "C", type: "wr", start: 5, end: 5, pid: 1 }]);
});

test("a seed-shaped volfile builds posix under posix-locks and serves fops and locks", async (t) => {
  const base = mkdtempSync(join(tmpdir(), "gha-locks-graph-"));
  const text = [
    "volume gfs-ds", "type storage/posix", `option directory ${join(base, "ha")}`, "end-volume",
    "volume gfs-ds-locks", "type features/locks", "subvolumes gfs-ds", "end-volume",
  ].join("\n");
  const g = Graph.fromText(text, "server.vol", { log: silentLogger() });
  t.after(async () => {
    await g.stop();
    rmSync(base, { recursive: true, force: true });
  });
  await g.start();
  assert.ok(g.top instanceof PosixLocks);
  const fd = new Fd("/x", FS.O_RDWR);
  await g.top.create(A, { path: "/x" }, FS.O_RDWR, 0o644, fd);
  await g.top.lk(A, fd, "setlk", lk("wr", 0, 0));
  await rejectsWith(g.top.lk(C, fd, "setlk", lk("rd", 0, 1)), "EAGAIN");
  assert.equal(await g.top.write(A, fd, Buffer.from("abc"), 0), 3);
  await g.top.flush(A, fd);
  await g.top.release(A, fd);
  const dump = g.dump() as Record<string, Record<string, unknown>>;
  assert.equal(dump["gfs-ds"]?.openFds, 0);
  assert.deepEqual(dump["gfs-ds-locks"]?.fcntl, {});
  // a brick without a directory option is a config error naming the file
  assert.throws(() => Graph.fromText("volume b\ntype storage/posix\nend-volume\n", "bad.vol", { log: silentLogger() }), /bad\.vol:\d+/);
});

test("locks riding on a fop: taken before it runs, kept if it succeeds, never taken when contended, dropped when it fails", async (t) => {
  const { locks } = stack(t);
  const dir = { path: "/" };
  assert.equal((await locks.getxattr(A, dir, LOCKS_FIRST_XATTR)).toString(), "1", "the brick says it understands them");
  const ride = (basename: string): Xdata => ({ [LOCKS_FIRST_XDATA]: [{ kind: "entry", domain: "dom", loc: dir, basename, type: "wr" }] });
  // succeeds: the name lock is held by the fop's owner afterwards
  const fd = new Fd("/x", FS.O_RDWR);
  await locks.create(A, { path: "/x" }, FS.O_RDWR | FS.O_EXCL, 0o644, fd, ride("x"));
  await locks.release(A, fd);
  await rejectsWith(locks.entrylk(C, "dom", dir, "x", "lock_nb", "wr"), "EAGAIN");
  await locks.entrylk(A, "dom", dir, "x", "unlock", "wr");
  await locks.entrylk(C, "dom", dir, "x", "lock_nb", "wr");
  // contended: EAGAIN, and the fop did not run
  const fd2 = new Fd("/x", FS.O_RDWR);
  await rejectsWith(locks.unlink(A, { path: "/x" }, ride("x")), "EAGAIN");
  await locks.open(A, { path: "/x" }, FS.O_RDONLY, fd2);
  await locks.release(A, fd2);
  await locks.entrylk(C, "dom", dir, "x", "unlock", "wr");
  // fails (EEXIST): the lock it took is gone again
  const fd3 = new Fd("/x", FS.O_RDWR);
  await rejectsWith(locks.create(A, { path: "/x" }, FS.O_RDWR | FS.O_EXCL, 0o644, fd3, ride("x")), "EEXIST");
  await locks.entrylk(C, "dom", dir, "x", "lock_nb", "wr");
  await locks.entrylk(C, "dom", dir, "x", "unlock", "wr");
  // an inode lock riding on an xattrop (AFR's pre-op)
  const gfid = (await locks.lookup(A, { path: "/x" })).stat.gfid;
  const inodeRide: Xdata = { [LOCKS_FIRST_XDATA]: [{ kind: "inode", domain: "afr", loc: { path: "/x", gfid }, start: 0, len: 0 }] };
  await locks.xattrop(A, { path: "/x" }, "add32", { "trusted.afr.b1": Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]) }, inodeRide);
  await rejectsWith(locks.inodelk(C, "afr", { path: "/x" }, "setlk", lk("wr", 0, 0)), "EAGAIN");
  await rejectsWith(locks.xattrop(C, { path: "/x" }, "add32", { "trusted.afr.b1": Buffer.alloc(12) }, inodeRide), "EAGAIN");
  await locks.inodelk(A, "afr", { path: "/x" }, "setlk", lk("un", 0, 0));
  await locks.inodelk(C, "afr", { path: "/x" }, "setlk", lk("wr", 0, 0));
  // all or none: the second lock is contended, so the first is not kept either
  const both: Xdata = { [LOCKS_FIRST_XDATA]: [
    { kind: "entry", domain: "dom", loc: dir, basename: "y", type: "wr" },
    { kind: "inode", domain: "afr", loc: { path: "/x", gfid }, start: 0, len: 0 },
  ] };
  await rejectsWith(locks.xattrop(A, { path: "/x" }, "add32", { "trusted.afr.b1": Buffer.alloc(12) }, both), "EAGAIN");
  await locks.entrylk(D, "dom", dir, "y", "lock_nb", "wr");
});

test("a flush carries a replicate volume's post-op and unlock: counters added, the batch owner's lock released, the closer's fcntl locks dropped", async (t) => {
  const { locks, posix } = stack(t);
  const fd = await openFile(locks, A, "/f");
  const gfid = (await locks.lookup(A, { path: "/f" })).stat.gfid;
  const key = "trusted.afr.dirty";
  const one = Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const minusOne = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
  // the batch (owner "batch" of client c1) locked and marked the file; the closer (A) holds an fcntl lock
  const batch = who("c1", "batch");
  await locks.xattrop(batch, { path: "/f", gfid }, "add32", { [key]: one },
    { [LOCKS_FIRST_XDATA]: [{ kind: "inode", domain: "afr", loc: { path: "/f", gfid }, start: 0, len: 0 }] });
  await locks.lk(A, fd, "setlk", lk("wr", 0, 10));
  await rejectsWith(locks.inodelk(C, "afr", { path: "/f" }, "setlk", lk("wr", 0, 0)), "EAGAIN");
  const riding: Xdata = {
    [CHANGELOG_XDATA]: { [key]: minusOne },
    [LOCKS_AFTER_XDATA]: [{ kind: "inode", domain: "afr", loc: { path: "/f", gfid }, start: 0, len: 0, owner: "batch" }],
  };
  await locks.flush(A, fd, riding);
  const after = await posix.xattrop(A, { path: "/f" }, "add32", { [key]: Buffer.alloc(12) });
  assert.deepEqual(after[key], Buffer.alloc(12), "the post-op took the mark back");
  await locks.inodelk(C, "afr", { path: "/f" }, "setlk", lk("wr", 0, 0)); // the batch's lock is gone
  await locks.inodelk(C, "afr", { path: "/f" }, "setlk", lk("un", 0, 0));
  assert.equal((await locks.lk(C, fd, "getlk", lk("wr", 0, 10))).type, "un", "the closer's fcntl lock went with the flush");
  // a malformed changelog is refused, naming the key
  await assert.rejects(locks.flush(A, fd, { [CHANGELOG_XDATA]: "x" }), (e: FopError) => e.code === "EINVAL" && e.message.includes(CHANGELOG_XDATA));
  // a file unlinked while open: its close still succeeds
  await locks.unlink(A, { path: "/f" });
  await locks.flush(A, fd, { [CHANGELOG_XDATA]: { [key]: minusOne } });
  await locks.release(A, fd);
});

test("a create carries a replicate volume's pre-op and lock: the file it makes is born marked and locked; a name already taken gets neither", async (t) => {
  const { locks, posix } = stack(t);
  const key = "trusted.afr.dirty";
  const one = Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const counters = async (path: string) => (await posix.xattrop(A, { path }, "add32", { [key]: Buffer.alloc(12) }))[key];
  const riding = (path: string, gfid: string): Xdata => ({
    "gfid-req": gfid,
    [LOCKS_FIRST_XDATA]: [{ kind: "inode", domain: "afr", loc: { path, gfid }, start: 0, len: 0, owner: "batch" }],
    [CHANGELOG_XDATA]: { [key]: one },
  });
  const gfid = randomUUID();
  const fd = new Fd("/new", FS.O_RDWR);
  const made = await locks.create(A, { path: "/new" }, FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, 0o644, fd, riding("/new", gfid));
  assert.equal(made.gfid, gfid);
  assert.deepEqual(await counters("/new"), one, "born marked");
  await rejectsWith(locks.inodelk(C, "afr", { path: "/new" }, "setlk", lk("wr", 0, 0)), "EAGAIN");
  await locks.inodelk(who("c1", "batch"), "afr", { path: "/new", gfid }, "setlk", lk("un", 0, 0));
  await locks.inodelk(C, "afr", { path: "/new" }, "setlk", lk("wr", 0, 0)); // the batch's lock was the one
  await locks.inodelk(C, "afr", { path: "/new" }, "setlk", lk("un", 0, 0));
  await locks.release(A, fd);
  // a create without O_EXCL of a taken name opens that file: no counters for it
  const fd2 = new Fd("/new", FS.O_RDWR);
  const other = randomUUID();
  const opened = await locks.create(A, { path: "/new" }, FS.O_RDWR | FS.O_CREAT, 0o644, fd2, riding("/new", other));
  assert.equal(opened.gfid, gfid, "the file that was there");
  assert.deepEqual(await counters("/new"), one, "nothing added to it");
  await locks.inodelk(who("c1", "batch"), "afr", { path: "/new", gfid: other }, "setlk", lk("un", 0, 0));
  await locks.release(A, fd2);
  // a held lock under the asked gfid: the create does not run (EAGAIN), nothing is made
  const third = randomUUID();
  await locks.inodelk(C, "afr", { path: "/third", gfid: third }, "setlk", lk("wr", 0, 0));
  await rejectsWith(locks.create(A, { path: "/third" }, FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, 0o644, new Fd("/third", FS.O_RDWR), riding("/third", third)), "EAGAIN");
  await rejectsWith(locks.lookup(A, { path: "/third" }), "ENOENT");
  // malformed counters are refused before anything is made
  await assert.rejects(locks.create(A, { path: "/bad" }, FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, 0o644, new Fd("/bad", FS.O_RDWR), { [CHANGELOG_XDATA]: 7 }),
    (e: FopError) => e.code === "EINVAL" && e.message.includes(CHANGELOG_XDATA));
  await rejectsWith(locks.lookup(A, { path: "/bad" }), "ENOENT");
});

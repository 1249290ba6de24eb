import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, constants as FS } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errnoNumber, FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import { Fd, XDATA, type CallCtx, type Xdata } from "../../runtime/core/types";
import { INDEX_XATTR, Posix } from "../../runtime/xlators/storage/posix";
import { newGfid } from "../../runtime/xlators/storage/posix/gfid";

const ctx: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };

function newPosix(directory: string, precreated = 0): Posix {
  return new Posix({ name: "brick", type: "storage/posix", options: { directory, fsync: true, "precreated-inodes": precreated }, children: [], log: silentLogger(), graph: new Map() });
}

function brick(t: TestContext, precreated = 0): { px: Posix; dir: string } {
  const base = mkdtempSync(join(tmpdir(), "gha-xattrop-"));
  const dir = join(base, "brick");
  const px = newPosix(dir, precreated);
  t.after(async () => {
    await px.stop();
    rmSync(base, { recursive: true, force: true });
  });
  return { px, dir };
}

const int32s = (...v: number[]) => {
  const b = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => b.writeInt32BE(x, i * 4));
  return b;
};
const values = (b: Buffer) => Array.from({ length: b.length / 4 }, (_, i) => b.readInt32BE(i * 4));

async function touch(px: Posix, path: string): Promise<string> {
  const fd = new Fd(path, FS.O_RDWR);
  const st = await px.create(ctx, { path }, FS.O_RDWR, 0o644, fd);
  await px.release(ctx, fd);
  return st.gfid;
}

async function index(px: Posix): Promise<{ gfid: string; path: string }[]> {
  const list = JSON.parse((await px.getxattr(ctx, { path: "/" }, INDEX_XATTR)).toString()) as { gfid: string; path: string }[];
  return list.sort((a, b) => a.path.localeCompare(b.path));
}

test("add32 adds element-wise, treats missing as zeros and resolves to the new values", async (t) => {
  const { px } = brick(t);
  await touch(px, "/f");
  const r1 = await px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.b1": int32s(1, 0, 2), "trusted.afr.b2": int32s(0, 0, 0) });
  assert.deepEqual(values(r1["trusted.afr.b1"]!), [1, 0, 2]);
  assert.deepEqual(values(r1["trusted.afr.b2"]!), [0, 0, 0]);
  const r2 = await px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.b1": int32s(-1, 5, -2) });
  assert.deepEqual(values(r2["trusted.afr.b1"]!), [0, 5, 0]);
  assert.deepEqual(values(await px.getxattr(ctx, { path: "/f" }, "trusted.afr.b1")), [0, 5, 0]);
  await assert.rejects(px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.b1": int32s(1) }), (e: FopError) => e.code === "EINVAL");
  await assert.rejects(px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.b1": Buffer.alloc(3) }), (e: FopError) => e.code === "EINVAL");
  await assert.rejects(px.xattrop(ctx, { path: "/f" }, "mul" as "add32", {}), (e: FopError) => e.code === "EINVAL");
  await assert.rejects(px.xattrop(ctx, { path: "/none" }, "add32", { "trusted.afr.b1": int32s(1) }), (e: FopError) => e.errno === errnoNumber("ENOENT"));
});

test("concurrent add32 on one file loses no update", async (t) => {
  const { px } = brick(t);
  await touch(px, "/hot");
  await px.link(ctx, { path: "/hot" }, { path: "/hot-alias" }); // same inode through two names
  const n = 200;
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      px.xattrop(ctx, { path: i % 2 ? "/hot" : "/hot-alias" }, "add32", { "trusted.afr.b1": int32s(1, 0, 0), "trusted.afr.dirty": int32s(0, 1, 0) }),
    ),
  );
  assert.deepEqual(values(await px.getxattr(ctx, { path: "/hot" }, "trusted.afr.b1")), [n, 0, 0]);
  assert.deepEqual(values(await px.getxattr(ctx, { path: "/hot" }, "trusted.afr.dirty")), [0, n, 0]);
  // and back down concurrently: the index entry must end up gone
  await Promise.all(
    Array.from({ length: n }, () => px.xattrop(ctx, { path: "/hot" }, "add32", { "trusted.afr.b1": int32s(-1, 0, 0), "trusted.afr.dirty": int32s(0, -1, 0) })),
  );
  assert.deepEqual(values(await px.getxattr(ctx, { path: "/hot" }, "trusted.afr.b1")), [0, 0, 0]);
  assert.deepEqual(await index(px), []);
});

test("the pending-heal index follows the afr counters, on disk and through getxattr", async (t) => {
  const { px, dir } = brick(t);
  const gfid = await touch(px, "/f");
  const idxDir = join(dir, ".glusterfs/indices/xattrop");
  await px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.b1": int32s(0, 1, 0) });
  assert.deepEqual(await index(px), [{ gfid, path: "/f" }]);
  // a hard link of the index's base file, named by the gfid and the path
  assert.deepEqual(readdirSync(idxDir), [`${gfid}:%2Ff`]);
  assert.equal(lstatSync(join(idxDir, `${gfid}:%2Ff`)).ino, lstatSync(`${idxDir}.base`).ino);
  // another counter non-zero keeps the entry while the first returns to zero
  await px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.dirty": int32s(1, 0, 0) });
  await px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.b1": int32s(0, -1, 0) });
  assert.deepEqual(await index(px), [{ gfid, path: "/f" }]);
  await px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.dirty": int32s(-1, 0, 0) });
  assert.deepEqual(await index(px), []);
  assert.deepEqual(readdirSync(idxDir), [`${gfid}:%2Ff`], "cleared on disk by the next sweep");
  sweep(px);
  assert.deepEqual(readdirSync(idxDir), []);
  // non-afr xattrs never touch the index
  await px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.glusterfs.quota": int32s(7) });
  assert.deepEqual(await index(px), []);
});

/** Inodes ready in the brick's precreated pool (0 without one). */
const poolReady = (px: Posix) => (px.dump().precreatedInodes as { ready: number } | undefined)?.ready ?? 0;

/** Waits (up to 5 s) for the pool to hold `want` (it fills while the brick is idle); resolves to what it holds. */
async function poolFilled(px: Posix, want: number): Promise<number> {
  for (let i = 0; i < 250 && poolReady(px) < want; i++) await new Promise((r) => setTimeout(r, 20));
  return poolReady(px);
}

for (const precreated of [0, 4]) {
  test(`a create's initial changelog counters are on the new file and in the index when it answers (${precreated ? "a precreated inode" : "the kernel's create"})`, async (t) => {
    const { px } = brick(t, precreated);
    assert.equal(await poolFilled(px, precreated), precreated);
    const create = (path: string, flags: number, xdata: Xdata) => px.create(ctx, { path }, flags, 0o644, new Fd(path, flags), xdata);
    const gfid = newGfid();
    const made = await create("/f", FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, { [XDATA.gfidReq]: gfid, [XDATA.initialXattrs]: { "trusted.afr.dirty": int32s(1, 0, 0) } });
    assert.equal(made.gfid, gfid);
    assert.deepEqual(values(await px.getxattr(ctx, { path: "/f" }, "trusted.afr.dirty")), [1, 0, 0]);
    assert.deepEqual(await index(px), [{ gfid, path: "/f" }]);
    if (precreated) assert.equal(poolReady(px) < precreated || (px.dump().precreatedInodes as { taken: number }).taken > 0, true, "the create took a precreated inode");
    // the same create again (without O_EXCL) opens the file it made: its counters add up
    await create("/f", FS.O_RDWR | FS.O_CREAT, { [XDATA.gfidReq]: gfid, [XDATA.initialXattrs]: { "trusted.afr.dirty": int32s(1, 0, 0) } });
    assert.deepEqual(values(await px.getxattr(ctx, { path: "/f" }, "trusted.afr.dirty")), [2, 0, 0]);
    // another create of a name taken by another file gives that file nothing
    await create("/f", FS.O_RDWR | FS.O_CREAT, { [XDATA.gfidReq]: newGfid(), [XDATA.initialXattrs]: { "trusted.afr.dirty": int32s(1, 0, 0) } });
    assert.deepEqual(values(await px.getxattr(ctx, { path: "/f" }, "trusted.afr.dirty")), [2, 0, 0]);
    // zero counters set the xattr but keep the file out of the index
    const g2 = newGfid();
    await create("/g", FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, { [XDATA.gfidReq]: g2, [XDATA.initialXattrs]: { "trusted.afr.dirty": int32s(0, 0, 0) } });
    assert.deepEqual(values(await px.getxattr(ctx, { path: "/g" }, "trusted.afr.dirty")), [0, 0, 0]);
    assert.deepEqual((await index(px)).map((e) => e.path), ["/f"]);
    // only changelog counters, as int32 arrays: anything else is refused before a file is made
    for (const [initial, says] of [
      [{ "trusted.gfid": Buffer.alloc(16) }, /trusted\.gfid is not a changelog counter/],
      [{ "user.x": Buffer.from("1") }, /user\.x is not a changelog counter/],
      [{ "trusted.afr.dirty": Buffer.alloc(3) }, /trusted\.afr\.dirty: not an int32 array/],
      [[1, 2], /expected values by xattr name/],
    ] as const) {
      await assert.rejects(create("/bad", FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, { [XDATA.initialXattrs]: initial as unknown as Xdata[string] }),
        (e: FopError) => e.code === "EINVAL" && says.test(e.message), JSON.stringify(initial));
      assert.equal(existsSync(join(px.options.directory as string, "bad")), false);
    }
  });
}

test("a flush's changelog counters: added to the file the fd names, as xattrop would (known marks of a file made here, or read)", async (t) => {
  const { px, dir } = brick(t, 4);
  await poolFilled(px, 4);
  const dirty = (v: number) => ({ "trusted.afr.dirty": int32s(v, 0, 0) });
  const make = async (path: string) => {
    const fd = new Fd(path, FS.O_RDWR);
    const gfid = newGfid();
    await px.create(ctx, { path }, FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, 0o644, fd, { [XDATA.gfidReq]: gfid, [XDATA.initialXattrs]: dirty(1) });
    return { fd, gfid };
  };
  const marks = async (path: string) => values(await px.getxattr(ctx, { path }, "trusted.afr.dirty"));
  // the batch's post-op: the mark back to zero, the index entry gone; a blame for a replica keeps it
  const a = await make("/a");
  await px.flush(ctx, a.fd, { [XDATA.flushXattrop]: dirty(-1) });
  assert.deepEqual(await marks("/a"), [0, 0, 0]);
  assert.deepEqual(await index(px), []);
  await px.flush(ctx, a.fd, { [XDATA.flushXattrop]: { "trusted.afr.b2": int32s(1, 0, 0) } });
  assert.deepEqual(values(await px.getxattr(ctx, { path: "/a" }, "trusted.afr.b2")), [1, 0, 0]);
  assert.deepEqual(await index(px), [{ gfid: a.gfid, path: "/a" }]);
  // another change of the counters (an xattrop: heal, another batch) is read back, not overwritten
  const b = await make("/b");
  await px.xattrop(ctx, { path: "/b" }, "add32", dirty(5));
  await px.flush(ctx, b.fd, { [XDATA.flushXattrop]: dirty(-1) });
  assert.deepEqual(await marks("/b"), [5, 0, 0]);
  // renamed while open: the counters follow the name the fd has (the path it was told of), here gone
  const c = await make("/c");
  await px.rename(ctx, { path: "/c" }, { path: "/c2" });
  await assert.rejects(px.flush(ctx, c.fd, { [XDATA.flushXattrop]: dirty(-1) }), (e: FopError) => e.code === "ENOENT");
  assert.deepEqual(await marks("/c2"), [1, 0, 0], "the file's marks are left for the heal to find");
  // another file put under the name: neither file's counters change (ESTALE, which features/posix-locks lets the close pass)
  const d = await make("/d");
  await px.rename(ctx, { path: "/d" }, { path: "/d-old" });
  await make("/d");
  await assert.rejects(px.flush(ctx, d.fd, { [XDATA.flushXattrop]: dirty(-1) }), (e: FopError) => e.code === "ESTALE");
  assert.deepEqual(await marks("/d-old"), [1, 0, 0]);
  assert.deepEqual(await marks("/d"), [1, 0, 0], "the other file's marks are its own");
  // a released fd's file is no longer known: a later open's flush reads the marks (two fds of one file)
  const e = await make("/e");
  const again = new Fd("/e", FS.O_RDWR);
  await px.open(ctx, { path: "/e" }, FS.O_RDWR, again);
  await px.release(ctx, e.fd);
  await px.xattrop(ctx, { path: "/e" }, "add32", dirty(2)); // (3 now)
  await px.flush(ctx, again, { [XDATA.flushXattrop]: dirty(-1) });
  assert.deepEqual(await marks("/e"), [2, 0, 0]);
  // bad counters are refused before anything changes
  await assert.rejects(px.flush(ctx, again, { [XDATA.flushXattrop]: { "user.x": int32s(1) } }), (e: FopError) => e.code === "EINVAL" && /user\.x is not a changelog counter/.test(e.message));
  assert.deepEqual(await marks("/e"), [2, 0, 0]);
  assert.ok(existsSync(dir));
});

/** Runs the pending index's sweep now (cleared entries leave the disk up to a second late). */
function sweep(px: Posix): void {
  (px as unknown as { index: { sweep(): void } }).index.sweep();
}

test("an entry cleared and set again before the sweep is not remade on disk; one left by a crash is dropped at the next start", async (t) => {
  const { px, dir } = brick(t);
  const gfid = await touch(px, "/d");
  const entry = join(dir, ".glusterfs/indices/xattrop", `${gfid}:%2Fd`);
  await px.xattrop(ctx, { path: "/d" }, "add32", { "trusted.afr.b1": int32s(0, 0, 1) });
  const made = lstatSync(entry).ctimeMs; // a link made or removed changes the shared inode's ctime
  for (let i = 0; i < 5; i++) {
    await px.xattrop(ctx, { path: "/d" }, "add32", { "trusted.afr.b1": int32s(0, 0, -1) });
    assert.deepEqual(await index(px), []);
    assert.equal(lstatSync(entry).nlink, 2, "cleared in memory, still on disk (base + entry)");
    await px.xattrop(ctx, { path: "/d" }, "add32", { "trusted.afr.b1": int32s(0, 0, 1) });
    assert.deepEqual(await index(px), [{ gfid, path: "/d" }]);
  }
  assert.equal(lstatSync(entry).ctimeMs, made, "the same entry all along: no link made or removed again");
  // cleared, then the process dies before the sweep: the entry is still on disk, and the next
  // process drops it at start (the file's counters are all zero)
  await px.xattrop(ctx, { path: "/d" }, "add32", { "trusted.afr.b1": int32s(0, 0, -1) });
  const crashed = newPosix(dir); // a new process on the same brick (the old one never swept)
  t.after(() => crashed.stop());
  assert.ok(existsSync(entry));
  assert.deepEqual(await index(crashed), []);
  sweep(crashed);
  assert.ok(!existsSync(entry));
});

test("the index survives a restart of the brick", async (t) => {
  const { px, dir } = brick(t);
  const gfid = await touch(px, "/keep");
  await px.xattrop(ctx, { path: "/keep" }, "add32", { "trusted.afr.b2": int32s(1, 0, 0) });
  await px.stop();
  const again = newPosix(dir);
  t.after(() => again.stop());
  assert.deepEqual(await index(again), [{ gfid, path: "/keep" }]);
});

test("index entries of the earlier file format, and paths too long for a symlink, survive a restart", async (t) => {
  const { px, dir } = brick(t);
  const idxDir = join(dir, ".glusterfs/indices/xattrop");
  // a path of 4095 bytes and more cannot be a symlink's target: stored as a file holding the path
  let long = "";
  while (long.length < 4000) long += "/" + "d".repeat(200);
  let at = "";
  for (const c of long.slice(1).split("/")) {
    at += "/" + c;
    await px.mkdir(ctx, { path: at }, 0o755);
  }
  const longFile = `${long}/${"f".repeat(4095 - long.length - 1)}x`;
  assert.ok(Buffer.byteLength(longFile) >= 4095);
  const longGfid = await touch(px, longFile);
  await px.xattrop(ctx, { path: longFile }, "add32", { "trusted.afr.b1": int32s(1, 0, 0) });
  assert.equal(readFileSync(join(idxDir, longGfid), "utf8"), longFile);
  // entries as earlier versions wrote them: a regular file, or a symlink, holding the path
  mkdirSync(idxDir, { recursive: true });
  writeFileSync(join(idxDir, "00000000-0000-0000-0000-0000000000aa"), "/old");
  symlinkSync("/older", join(idxDir, "00000000-0000-0000-0000-0000000000bb"));
  await px.stop();
  const again = newPosix(dir);
  t.after(() => again.stop());
  assert.deepEqual(await index(again), [
    { gfid: "00000000-0000-0000-0000-0000000000aa", path: "/old" },
    { gfid: "00000000-0000-0000-0000-0000000000bb", path: "/older" },
    { gfid: longGfid, path: longFile },
  ].sort((a, b) => a.path.localeCompare(b.path)));
  // and it clears like any other
  await again.xattrop(ctx, { path: longFile }, "add32", { "trusted.afr.b1": int32s(-1, 0, 0) });
  sweep(again);
  assert.ok(!existsSync(join(idxDir, longGfid)));
  // (the tree is deeper than rmSync can name: removed through the brick, bottom up)
  await again.unlink(ctx, { path: longFile });
  for (let d = long; d !== ""; d = d.slice(0, d.lastIndexOf("/"))) await again.rmdir(ctx, { path: d });
});

test("unlink of the last name removes the index entry; unlink of another hard link keeps it", async (t) => {
  const { px, dir } = brick(t);
  const gfid = await touch(px, "/a");
  await px.link(ctx, { path: "/a" }, { path: "/b" });
  await px.xattrop(ctx, { path: "/a" }, "add32", { "trusted.afr.b1": int32s(1, 0, 0) });
  await px.unlink(ctx, { path: "/b" });
  assert.deepEqual(await index(px), [{ gfid, path: "/a" }]);
  await px.unlink(ctx, { path: "/a" });
  assert.deepEqual(await index(px), []);
  sweep(px);
  assert.ok(!existsSync(join(dir, ".glusterfs/indices/xattrop", gfid)));
  // directories too
  await px.mkdir(ctx, { path: "/d" }, 0o755);
  await px.xattrop(ctx, { path: "/d" }, "add32", { "trusted.afr.b1": int32s(0, 0, 1) });
  assert.equal((await index(px)).length, 1);
  await px.rmdir(ctx, { path: "/d" });
  assert.deepEqual(await index(px), []);
});

test("rename updates the indexed path of the file and of everything under a renamed directory", async (t) => {
  const { px } = brick(t);
  await px.mkdir(ctx, { path: "/d" }, 0o755);
  await px.mkdir(ctx, { path: "/d/e" }, 0o755);
  const g1 = await touch(px, "/d/e/f");
  const g2 = await touch(px, "/top");
  const g3 = await touch(px, "/dx"); // shares a prefix with /d but is not under it
  for (const p of ["/d/e/f", "/top", "/dx"]) await px.xattrop(ctx, { path: p }, "add32", { "trusted.afr.b1": int32s(1, 0, 0) });
  await px.rename(ctx, { path: "/d" }, { path: "/moved" });
  await px.rename(ctx, { path: "/top" }, { path: "/moved/top2" });
  assert.deepEqual(await index(px), [
    { gfid: g3, path: "/dx" },
    { gfid: g1, path: "/moved/e/f" },
    { gfid: g2, path: "/moved/top2" },
  ]);
  // renaming over an indexed file drops the victim's entry
  const victim = await touch(px, "/victim");
  await px.xattrop(ctx, { path: "/victim" }, "add32", { "trusted.afr.b1": int32s(1, 0, 0) });
  await px.rename(ctx, { path: "/dx" }, { path: "/victim" });
  const after = await index(px);
  assert.ok(!after.some((e) => e.gfid === victim));
  assert.deepEqual(after.find((e) => e.gfid === g3), { gfid: g3, path: "/victim" });
});

test("open with a gfid the name no longer has (another file put there) is ESTALE; with its own gfid it opens", async (t) => {
  const { px } = brick(t);
  const first = await touch(px, "/n");
  await px.unlink(ctx, { path: "/n" });
  const second = await touch(px, "/n");
  assert.notEqual(first, second);
  await assert.rejects(px.open(ctx, { path: "/n", gfid: first }, FS.O_RDONLY, new Fd("/n", FS.O_RDONLY)), (e: FopError) => e.code === "ESTALE");
  const fd = new Fd("/n", FS.O_RDONLY);
  await px.open(ctx, { path: "/n", gfid: second }, FS.O_RDONLY, fd);
  await px.release(ctx, fd);
});

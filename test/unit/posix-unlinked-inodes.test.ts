// storage/posix's unlinked inodes (unlinked-inodes.ts): an unlink of a file's last name renames it into
// .glusterfs/unlink and the brick frees it in the background. What must hold: the name is gone when the
// unlink answers (lookup ENOENT, the parent's listing), the file is freed soon after without anyone
// asking, an inode with another name loses its link at once, an open file stays readable, errors are
// unlink(2)'s own, at most `unlinked-inodes` wait (0: none), and leftovers of a crash are freed at start.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync, constants as FS } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { statfsSync } from "node:fs";
import { silentLogger } from "../../runtime/core/log";
import { tmpfsBrick } from "../helpers/cluster";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { Posix } from "../../runtime/xlators/storage/posix";

const ctx: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };

interface UnlinkedDump { waiting: number; waitingBytes: number; freed: number; inPlace: number }

function brick(t: { after: (fn: () => Promise<void>) => void }, limit: number | undefined, on?: string) {
  const base = mkdtempSync(join(on ?? tmpdir(), "gha-unlinked-"));
  const dir = join(base, "brick");
  const options = { directory: dir, fsync: false, ...(limit === undefined ? {} : { "unlinked-inodes": limit }) };
  const make = () => new Posix({ name: "brick", type: "storage/posix", options, children: [], log: silentLogger(), graph: new Map() });
  const open: Posix[] = [make()];
  t.after(async () => {
    for (const p of open) await p.stop();
    rmSync(base, { recursive: true, force: true });
  });
  const px = () => open[open.length - 1]!;
  const unlinkedDir = join(dir, ".glusterfs", "unlink");
  const state = () => px().dump().unlinkedInodes as UnlinkedDump;
  const waitFreed = async (n: number) => {
    for (let i = 0; i < 250 && (state().freed < n || readdirSync(unlinkedDir).length > 0); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(state().freed, n, "freed in the background");
    assert.deepEqual(readdirSync(unlinkedDir), [], "nothing left waiting");
  };
  const file = async (path: string, content = "x".repeat(4096)) => {
    const fd = new Fd(path, FS.O_CREAT | FS.O_WRONLY);
    await px().create(ctx, { path }, FS.O_CREAT | FS.O_WRONLY, 0o644, fd);
    await px().write(ctx, fd, Buffer.from(content), 0);
    await px().release(ctx, fd);
  };
  const restart = async () => {
    await px().stop();
    open.push(make());
  };
  return { dir, px, unlinkedDir, state, waitFreed, file, restart };
}

test("an unlinked file's name is gone at once and its inode is freed in the background, unasked", async (t) => {
  const b = brick(t, 256);
  for (let i = 0; i < 20; i++) await b.file(`/f${i}`);
  const inodes = Array.from({ length: 20 }, (_, i) => lstatSync(join(b.dir, `f${i}`)).ino);
  for (let i = 0; i < 20; i++) {
    const removed = await b.px().unlink(ctx, { path: `/f${i}` });
    assert.ok(removed.postparent, "the parent's attributes after the unlink");
    await assert.rejects(b.px().lookup(ctx, { path: `/f${i}` }), { code: "ENOENT" });
  }
  assert.deepEqual(readdirSync(b.dir).filter((n) => n !== ".glusterfs"), [], "no name left in the directory");
  assert.equal(b.state().inPlace, 0);
  await b.waitFreed(20);
  // the inodes are gone from the filesystem: none of them is still linked anywhere in the brick
  const still = new Set<number>();
  const walk = (d: string) => { for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : still.add(lstatSync(join(d, e.name)).ino); };
  walk(b.dir);
  assert.deepEqual(inodes.filter((ino) => still.has(ino)), []);
});

test("a hard-linked file loses the unlinked name's link at once; the other name keeps the data", async (t) => {
  const b = brick(t, 256);
  await b.file("/a", "shared");
  await b.px().link(ctx, { path: "/a" }, { path: "/b" });
  await b.px().unlink(ctx, { path: "/a" });
  const st = await b.px().lookup(ctx, { path: "/b" });
  assert.equal(st.stat.nlink, 1, "one link left, at once");
  assert.equal(readFileSync(join(b.dir, "b"), "utf8"), "shared");
  assert.equal(b.state().inPlace, 1, "unlinked in place");
  assert.deepEqual(readdirSync(b.unlinkedDir), []);
  await b.px().unlink(ctx, { path: "/b" });
  await b.waitFreed(1);
});

test("a file open when it is unlinked stays readable through its fd until released", async (t) => {
  const b = brick(t, 256);
  await b.file("/open", "still here");
  const fd = new Fd("/open", FS.O_RDONLY);
  await b.px().open(ctx, { path: "/open" }, FS.O_RDONLY, fd);
  await b.px().unlink(ctx, { path: "/open" });
  await b.waitFreed(1); // (the name in .glusterfs/unlink is freed; the open inode lives on)
  assert.equal((await b.px().read(ctx, fd, 100, 0)).toString(), "still here");
  await b.px().release(ctx, fd);
});

test("unlink's own errors: ENOENT for a missing name, EISDIR for a directory; nothing is renamed aside", async (t) => {
  const b = brick(t, 256);
  await assert.rejects(b.px().unlink(ctx, { path: "/missing" }), { code: "ENOENT" });
  await b.px().mkdir(ctx, { path: "/d" }, 0o755);
  await assert.rejects(b.px().unlink(ctx, { path: "/d" }), { code: "EISDIR" });
  assert.deepEqual(readdirSync(b.unlinkedDir), []);
  assert.ok(lstatSync(join(b.dir, "d")).isDirectory());
});

test("unlinked-inodes 0 (and a brick made without the option) unlinks in place; reconfigure turns it on live", async (t) => {
  for (const limit of [0, undefined]) {
    const b = brick(t, limit);
    await b.file("/f");
    await b.px().unlink(ctx, { path: "/f" });
    assert.deepEqual(b.state(), { waiting: 0, waitingBytes: 0, freed: 0, inPlace: 1 });
    assert.deepEqual(readdirSync(b.unlinkedDir), []);
    assert.deepEqual(b.px().reconfigure({ "unlinked-inodes": 8 }), { applied: ["unlinked-inodes"], needsRestart: [] });
    await b.file("/g");
    await b.px().unlink(ctx, { path: "/g" });
    await b.waitFreed(1);
    assert.equal(b.state().inPlace, 1);
  }
});

test("at most unlinked-inodes files wait: past the limit an unlink frees its file itself", async (t) => {
  const b = brick(t, 2);
  for (let i = 0; i < 6; i++) await b.file(`/f${i}`);
  // six unlinks in one turn: the background frees one at a time through the thread pool, so the first
  // two wait and the rest find the queue full
  await Promise.all(Array.from({ length: 6 }, (_, i) => b.px().unlink(ctx, { path: `/f${i}` })));
  assert.equal(b.state().inPlace, 4);
  await b.waitFreed(2);
  assert.deepEqual(readdirSync(b.dir).filter((n) => n !== ".glusterfs"), []);
});

test("at most 64 MiB wait: a bigger file is freed by its unlink", async (t) => {
  const b = brick(t, 256);
  for (const [name, mib] of [["small", 1], ["big", 65]] as const) {
    const fd = openSync(join(b.dir, name), "w");
    for (let i = 0; i < mib; i++) writeSync(fd, Buffer.alloc(1 << 20, 1));
    closeSync(fd);
  }
  await Promise.all([b.px().unlink(ctx, { path: "/small" }), b.px().unlink(ctx, { path: "/big" })]);
  assert.equal(b.state().inPlace, 1, "the 65 MiB file in place");
  assert.equal(b.state().waiting, 1);
  assert.ok(b.state().waitingBytes >= 1 << 20, `the 1 MiB file waits (${b.state().waitingBytes} bytes)`);
  await b.waitFreed(1);
  assert.equal(b.state().waitingBytes, 0);
});

test("files a crash left in .glusterfs/unlink are freed after the next start; a stopping brick frees what waits", async (t) => {
  const b = brick(t, 256);
  await b.file("/f");
  // as a crash would leave them: renamed aside, never freed
  for (let i = 0; i < 3; i++) writeFileSync(join(b.unlinkedDir, `crashed.${i}`), "x".repeat(4096));
  await b.restart();
  await b.waitFreed(3);
  // a stop frees at once what still waits (nothing is left behind for the next start)
  const fd = openSync(join(b.dir, "big"), "w");
  writeSync(fd, Buffer.alloc(1 << 20));
  closeSync(fd);
  await b.px().unlink(ctx, { path: "/big" });
  await b.px().unlink(ctx, { path: "/f" });
  await b.px().stop();
  assert.deepEqual(readdirSync(b.unlinkedDir), []);
  await b.restart(); // (for t.after's stop of the last one)
});

/**
 * Keeps the brick busy until `stop`: its background work must wait meanwhile. A fop counts when it
 * arrives, so each lookup goes as the last one is answered, one event-loop turn later (a lookup may
 * not touch the thread pool at all): no gap near FREE_IDLE_MS (50 ms), which a timer-paced loop on a
 * loaded machine can leave.
 */
function keepBusy(b: ReturnType<typeof brick>): { stop: () => Promise<void> } {
  let going = true;
  const loop = (async () => {
    while (going) {
      await b.px().lookup(ctx, { path: "/" });
      await new Promise((r) => setImmediate(r));
    }
  })();
  return { stop: async () => {
    going = false;
    await loop;
  } };
}

async function busyFor(b: ReturnType<typeof brick>, ms: number): Promise<void> {
  const busy = keepBusy(b);
  await new Promise((r) => setTimeout(r, ms));
  await busy.stop();
}

test("while fops keep coming the unlinked files wait; they are freed once the brick has been idle", async (t) => {
  const b = brick(t, 256);
  for (let i = 0; i < 10; i++) await b.file(`/f${i}`);
  for (let i = 0; i < 10; i++) await b.px().unlink(ctx, { path: `/f${i}` });
  await busyFor(b, 700);
  assert.deepEqual({ ...b.state(), waitingBytes: 0 }, { waiting: 10, waitingBytes: 0, freed: 0, inPlace: 0 }, "nothing freed while busy");
  assert.equal(readdirSync(b.unlinkedDir).length, 10);
  await b.waitFreed(10);
});

test("half the limit waiting: freed at once, busy or not, down to under half", async (t) => {
  const b = brick(t, 8);
  for (let i = 0; i < 6; i++) await b.file(`/f${i}`);
  for (let i = 0; i < 6; i++) await b.px().unlink(ctx, { path: `/f${i}` });
  const busy = keepBusy(b);
  try {
    // the frees go one at a time through the thread pool: polled for (a loaded machine is slow)
    for (const end = Date.now() + 5000; b.state().freed < 3 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    // and then stop while the brick stays busy
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(b.state().inPlace, 0);
    assert.equal(b.state().waiting, 3, "the brick freed while busy until fewer than 4 (half of 8) waited");
    assert.equal(b.state().freed, 3);
  } finally {
    await busy.stop();
  }
  await b.waitFreed(6);
});

test("the space unlinked files hold counts as free, and a fop that finds the disk full frees them and goes on", async (t) => {
  const fs = await tmpfsBrick("4m");
  t.after(() => fs.unmount());
  const b = brick(t, 256, fs.dir);
  const data = Buffer.alloc(3 << 20, 7);
  const write = async (path: string) => {
    const fd = new Fd(path, FS.O_CREAT | FS.O_WRONLY);
    await b.px().create(ctx, { path }, FS.O_CREAT | FS.O_WRONLY, 0o644, fd);
    try {
      return await b.px().write(ctx, fd, data, 0);
    } finally {
      await b.px().release(ctx, fd);
    }
  };
  assert.equal(await write("/old"), data.length);
  const full = await b.px().statfs(ctx, { path: "/" });
  await b.px().unlink(ctx, { path: "/old" });
  const raw = statfsSync(fs.dir);
  const after = await b.px().statfs(ctx, { path: "/" });
  assert.equal(b.state().waiting, 1, "the old file waits to be freed");
  assert.ok(raw.bfree <= full.bfree + 2, `the disk itself has not got the space back yet (${raw.bfree} vs ${full.bfree} free blocks)`);
  assert.ok(after.bfree - full.bfree >= (3 << 20) / after.bsize, `statfs counts it free: ${full.bfree} -> ${after.bfree} blocks`);
  // 3 MiB more fit only once the old file's blocks are given back: this write gets them at once
  assert.equal(await write("/new"), data.length);
  assert.deepEqual(readFileSync(join(b.dir, "new")), data);
  assert.equal(b.state().waiting, 0);
  assert.equal(b.state().freed, 1);
  // a disk full with nothing waiting is the fop's own ENOSPC
  await assert.rejects(write("/more"), { code: "ENOSPC" });
});

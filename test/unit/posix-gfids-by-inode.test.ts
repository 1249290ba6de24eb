// storage/posix keeps the gfids it read by inode (gfids-by-inode.ts): a stat'ed entry's gfid costs no
// getxattr. What must hold: a file that took a freed inode number is never given the old file's gfid,
// and a gfid read while the path changed hands is not kept.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync, constants as FS } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { Posix } from "../../runtime/xlators/storage/posix";
import { GfidsByInode } from "../../runtime/xlators/storage/posix/gfids-by-inode";

const ctx: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };
/** Whether files made here have birth times (ext4 does; without them nothing is kept, and that is tested). */
function birthTimesHere(): boolean {
  const dir = mkdtempSync(join(tmpdir(), "gha-btime-"));
  try {
    writeFileSync(join(dir, "f"), "");
    return statSync(join(dir, "f")).birthtimeMs > 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const birthTimes = birthTimesHere();

test("a lookup answers the gfid from memory the second time; a file on a reused inode number gets its own", async (t) => {
  const base = mkdtempSync(join(tmpdir(), "gha-gfids-"));
  const px = new Posix({ name: "brick", type: "storage/posix", options: { directory: join(base, "brick"), fsync: false }, children: [], log: silentLogger(), graph: new Map() });
  t.after(async () => {
    await px.stop();
    rmSync(base, { recursive: true, force: true });
  });
  const make = async (path: string) => {
    const fd = new Fd(path, FS.O_RDWR);
    const iatt = await px.create(ctx, { path }, FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, 0o644, fd);
    await px.release(ctx, fd);
    return iatt;
  };
  const hits = () => (px.dump().gfidsByInode as { hits: number }).hits;
  const first = await make("/f");
  assert.equal((await px.lookup(ctx, { path: "/f" })).stat.gfid, first.gfid);
  const before = hits();
  assert.equal((await px.lookup(ctx, { path: "/f" })).stat.gfid, first.gfid);
  if (birthTimes) assert.ok(hits() > before, "answered from memory");
  else assert.equal(hits(), before, "no birth times: always read");
  // Free the inode and make files until one takes its number: each must have its own gfid.
  const ino = lstatSync(join(base, "brick", "f")).ino;
  await px.unlink(ctx, { path: "/f" });
  let reused = false;
  for (let i = 0; i < 50 && !reused; i++) {
    const made = await make(`/g${i}`);
    assert.notEqual(made.gfid, first.gfid);
    const looked = (await px.lookup(ctx, { path: `/g${i}` })).stat;
    assert.equal(looked.gfid, made.gfid, `g${i}`);
    reused = looked.ino === ino;
  }
  assert.ok(reused, "the freed inode number was used again (else this test proves nothing)");
});

test("a gfid is kept only if the path still names the inode it was read for, and only with birth times", () => {
  const dir = mkdtempSync(join(tmpdir(), "gha-gfids-"));
  try {
    writeFileSync(join(dir, "a"), "a");
    writeFileSync(join(dir, "b"), "b");
    const a = lstatSync(join(dir, "a"));
    const b = lstatSync(join(dir, "b"));
    const cache = new GfidsByInode();
    cache.set(a, b, "read-from-b"); // the path changed hands between the stat and the read
    assert.equal(cache.get(a), undefined);
    cache.set(a, lstatSync(join(dir, "a")), "gfid-a");
    if (a.birthtimeMs > 0) assert.equal(cache.get(lstatSync(join(dir, "a"))), "gfid-a");
    renameSync(join(dir, "b"), join(dir, "a")); // another file under the name: another inode
    assert.equal(cache.get(lstatSync(join(dir, "a"))), undefined);
    const noBirth = Object.assign(Object.create(Object.getPrototypeOf(a)), a, { birthtimeMs: 0 });
    cache.set(noBirth, noBirth, "x");
    assert.equal(cache.get(noBirth), undefined, "no birth time: nothing kept");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

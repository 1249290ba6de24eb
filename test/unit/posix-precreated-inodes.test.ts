// storage/posix's precreated inodes (precreated-inodes.ts): empty files made while the brick is idle,
// which creates take and link under their names. What must hold: a file made from the pool is
// indistinguishable from one the kernel made for the caller (owner, setgid group, exact mode, fresh
// times, its gfid, one link), O_EXCL still fails on a taken name and a create without it opens the
// existing file, a directory's default ACL is still inherited, and leftovers of a crash are dropped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, constants as FS } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../runtime/core/log";
import { Fd, XDATA, type CallCtx } from "../../runtime/core/types";
import { Posix } from "../../runtime/xlators/storage/posix";
import { GFID_XATTR, getXattrSync, hasXattr, setXattrSync } from "../../runtime/xlators/storage/posix/xattrs";
import { gfidFromBytes, newGfid } from "../../runtime/xlators/storage/posix/gfid";

const root: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };
const user: CallCtx = { uid: 1234, gid: 5678, pid: 1, lkOwner: "1", client: "local" };

interface PoolDump { ready: number; target: number; taken: number; missed: number; made: number }

function brick(t: { after: (fn: () => Promise<void>) => void }, target: number) {
  const base = mkdtempSync(join(tmpdir(), "gha-precreated-"));
  const dir = join(base, "brick");
  const make = () => new Posix({ name: "brick", type: "storage/posix", options: { directory: dir, fsync: false, "precreated-inodes": target }, children: [], log: silentLogger(), graph: new Map() });
  const px = make();
  const open: Posix[] = [px];
  t.after(async () => {
    for (const p of open) await p.stop();
    rmSync(base, { recursive: true, force: true });
  });
  const pool = (p = px) => p.dump().precreatedInodes as PoolDump;
  const poolDir = join(dir, ".glusterfs", "precreated");
  const filled = async (p = px, want = target) => {
    for (let i = 0; i < 500 && pool(p).ready < want; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool(p).ready, want, "the pool filled while the brick was idle");
  };
  const restart = async () => {
    await open[open.length - 1]!.stop();
    const p = make();
    open.push(p);
    return p;
  };
  return { dir, px, pool, poolDir, filled, restart };
}

async function create(px: Posix, ctx: CallCtx, path: string, flags: number, mode: number, gfid?: string) {
  const fd = new Fd(path, flags);
  const iatt = await px.create(ctx, { path }, flags, mode, fd, gfid ? { [XDATA.gfidReq]: gfid } : undefined);
  return { fd, iatt };
}

test("a create takes a precreated inode: the caller's owner, exact mode, fresh times, the asked gfid, one link", async (t) => {
  const b = brick(t, 8);
  await b.filled();
  const pooled = new Map(readdirSync(b.poolDir).map((n) => [lstatSync(join(b.poolDir, n)).ino, n]));
  assert.equal(pooled.size, 8);
  await new Promise((r) => setTimeout(r, 1100)); // so a time kept from the pool would show
  const gfid = newGfid();
  const before = Date.now();
  const { fd, iatt } = await create(b.px, user, "/f", FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o640, gfid);
  const st = lstatSync(join(b.dir, "f"));
  assert.ok(pooled.has(st.ino), "the file is one of the pool's inodes");
  assert.equal(b.pool().taken, 1);
  assert.equal(readdirSync(b.poolDir).length, 7, "its pool name is gone");
  assert.equal(st.nlink, 1);
  assert.equal(st.uid, 1234);
  assert.equal(st.gid, 5678);
  assert.equal(st.mode & 0o7777, 0o640);
  assert.ok(st.mtimeMs >= before - 1000 && st.atimeMs >= before - 1000, `times are the create's, not the pool's (mtime ${st.mtimeMs}, create at ${before})`);
  assert.equal(gfidFromBytes(getXattrSync(join(b.dir, "f"), GFID_XATTR)!), gfid);
  assert.equal(iatt.gfid, gfid);
  assert.equal(iatt.ino, st.ino);
  assert.ok(iatt.postparent, "the parent's attributes come back");
  // the fd is the new file, opened as asked
  await b.px.write(root, fd, Buffer.from("hello"), 0);
  await b.px.release(root, fd);
  assert.equal(readFileSync(join(b.dir, "f"), "utf8"), "hello");
});

test("O_EXCL on a taken name is EEXIST and costs no file; without it the existing file is opened", async (t) => {
  const b = brick(t, 4);
  await b.filled();
  writeFileSync(join(b.dir, "old"), "kept");
  await assert.rejects(create(b.px, root, "/old", FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, 0o644), { code: "EEXIST" });
  assert.equal(readFileSync(join(b.dir, "old"), "utf8"), "kept");
  assert.deepEqual(readdirSync(b.dir).sort(), [".glusterfs", "old"]);
  const { fd } = await create(b.px, root, "/old", FS.O_RDWR | FS.O_CREAT, 0o600);
  assert.equal((await b.px.read(root, fd, 4, 0)).toString(), "kept");
  await b.px.release(root, fd);
  assert.equal(lstatSync(join(b.dir, "old")).nlink, 1);
});

test("a setgid directory gives its group; a directory with a default ACL still passes it on", async (t) => {
  const b = brick(t, 4);
  await b.filled();
  mkdirSync(join(b.dir, "shared"));
  chownSync(join(b.dir, "shared"), 0, 4242);
  chmodSync(join(b.dir, "shared"), 0o2775);
  const { fd } = await create(b.px, user, "/shared/f", FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o664);
  await b.px.release(root, fd);
  const st = lstatSync(join(b.dir, "shared", "f"));
  assert.equal(st.uid, 1234);
  assert.equal(st.gid, 4242, "the setgid directory's group");
  assert.equal(b.pool().taken, 1);
  // default ACL: user:1000:rw-, mask rw- (POSIX ACL xattr, version 2: tag u16, perm u16, id u32)
  mkdirSync(join(b.dir, "acl"));
  const entry = (tag: number, perm: number, id = 0xffffffff) => {
    const e = Buffer.alloc(8);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(perm, 2);
    e.writeUInt32LE(id, 4);
    return e;
  };
  const header = Buffer.alloc(4);
  header.writeUInt32LE(2, 0);
  setXattrSync(join(b.dir, "acl"), "system.posix_acl_default", Buffer.concat([
    header, entry(0x01, 6), entry(0x02, 6, 1000), entry(0x04, 4), entry(0x10, 6), entry(0x20, 4),
  ]));
  const made = await create(b.px, root, "/acl/f", FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644);
  await b.px.release(root, made.fd);
  assert.ok(getXattrSync(join(b.dir, "acl", "f"), "system.posix_acl_access"), "the new file inherited the default ACL");
  assert.equal(b.pool().taken, 1, "made by the kernel's create, not from the pool");
});

test("a pool name left with a second link (a crash between link and unlink) is dropped at start; a resized pool follows", async (t) => {
  const b = brick(t, 3);
  await b.filled();
  const [name] = readdirSync(b.poolDir);
  linkSync(join(b.poolDir, name!), join(b.dir, "victim"));
  writeFileSync(join(b.poolDir, "not-empty"), "x");
  const px = await b.restart();
  assert.ok(!readdirSync(b.poolDir).includes(name!), "the doubly linked pool name is gone");
  assert.ok(!readdirSync(b.poolDir).includes("not-empty"), "a pool file with data is not a pool file");
  assert.equal(lstatSync(join(b.dir, "victim")).nlink, 1, "the client's name keeps the file");
  await b.filled(px, 3);
  assert.deepEqual(px.reconfigure({ "precreated-inodes": 1 }).applied, ["precreated-inodes"]);
  assert.equal(readdirSync(b.poolDir).length, 1, "shrunk on disk");
  px.reconfigure({ "precreated-inodes": 0 });
  assert.equal(readdirSync(b.poolDir).length, 0);
  assert.equal(px.dump().precreatedInodes, null);
  const { fd } = await create(px, root, "/g", FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o600);
  await px.release(root, fd);
  assert.equal(lstatSync(join(b.dir, "g")).mode & 0o7777, 0o600, "without a pool the kernel makes it");
});

test("the pool waits while fops keep coming, even tens of ms apart (a listing's readdirs), and refills once they stop", async (t) => {
  const b = brick(t, 3);
  await b.filled();
  for (const n of ["a", "b", "c"]) await b.px.release(root, (await create(b.px, root, `/${n}`, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644)).fd);
  assert.equal(b.pool().ready, 0, "the creates took the whole pool");
  const made = b.pool().made;
  // a fop every 60 ms for a second: gaps a burst of reads has, too short to count as idle
  for (let i = 0; i < 17; i++) {
    await new Promise((r) => setTimeout(r, 60));
    await b.px.stat(root, { path: "/" });
  }
  assert.equal(b.pool().made, made, "no inode made while the brick was serving");
  await b.filled();
  assert.equal(b.pool().made, made + 3, "made once the fops stopped");
});

test("hasXattr (the default-ACL check): present, absent, and a namespace the filesystem does not have", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gha-hasxattr-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, "f");
  writeFileSync(f, "");
  setXattrSync(f, "user.x", Buffer.from("1"));
  assert.equal(hasXattr(f, "user.x"), true);
  assert.equal(hasXattr(f, "user.y"), false);
  assert.equal(hasXattr(f, "system.no-such-namespace"), false, "EOPNOTSUPP (node names errno 95 ENOTSUP) is 'none'");
});

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, constants as FS } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as xattr from "@napi-rs/xattr";
import { errnoNumber, FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { Posix, ROOT_GFID, BRICK_ID_XATTR, LISTING_DISK_WAIT, type PosixOptions } from "../../runtime/xlators/storage/posix";
import posixDef from "../../runtime/xlators/storage/posix";

const ctx: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const GiB = 1024 ** 3;

function newPosix(directory: string, extra: Partial<PosixOptions> = {}): Posix {
  return new Posix({ name: "brick", type: "storage/posix", options: { directory, fsync: true, ...extra }, children: [], log: silentLogger(), graph: new Map() });
}

function brick(t: TestContext, extra: Partial<PosixOptions> = {}): { px: Posix; dir: string; base: string } {
  const base = mkdtempSync(join(tmpdir(), "gha-posix-"));
  const dir = join(base, "brick");
  const px = newPosix(dir, extra);
  t.after(async () => {
    await px.stop();
    rmSync(base, { recursive: true, force: true });
  });
  return { px, dir, base };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FopError, `expected FopError, got ${String(e)}`);
    // compare numbers: aliases (EOPNOTSUPP/ENOTSUP, EWOULDBLOCK/EAGAIN) are the same errno
    assert.equal(e.errno, errnoNumber(code), `expected ${code}, got ${e.code}`);
    return true;
  });
}

async function createFile(px: Posix, path: string, data = "", xdata?: Record<string, unknown>): Promise<Fd> {
  const fd = new Fd(path, FS.O_RDWR);
  await px.create(ctx, { path }, FS.O_RDWR, 0o644, fd, xdata);
  if (data) await px.write(ctx, fd, Buffer.from(data), 0);
  return fd;
}

async function writeClose(px: Posix, path: string, data: string): Promise<void> {
  const fd = await createFile(px, path, data);
  await px.release(ctx, fd);
}

test("the brick directory is created, the root has the fixed gfid and the brick keeps a stable id", async (t) => {
  const { px, dir } = brick(t);
  assert.ok(statSync(dir).isDirectory());
  const root = await px.lookup(ctx, { path: "/" });
  assert.equal(root.stat.gfid, ROOT_GFID);
  assert.deepEqual(xattr.getAttributeSync(dir, "trusted.gfid"), Buffer.from("00000000000000000000000000000001", "hex"));
  const id = (await px.getxattr(ctx, { path: "/" }, BRICK_ID_XATTR)).toString();
  assert.match(id, UUID_RE);
  assert.equal(readFileSync(join(dir, ".glusterfs/brick-id"), "utf8").trim(), id);
  const again = newPosix(dir);
  assert.equal(again.brickId, id);
  await again.stop();
  const named = newPosix(dir, { "brick-id": "b-fixed" });
  assert.equal((await named.getxattr(ctx, { path: "/" }, BRICK_ID_XATTR)).toString(), "b-fixed");
  await named.stop();
});

test("the definition takes no children and refuses a relative directory", () => {
  assert.deepEqual(posixDef.children, { min: 0, max: 0 });
  assert.throws(() => newPosix("relative/dir"), (e: Error) => e.name === "ConfigError");
});

test("create gives the requested gfid, write/read round-trip, fstat and stat agree", async (t) => {
  const { px, dir } = brick(t);
  const gfid = "7c1f4a5e-1b2c-4d3e-8f90-0123456789ab";
  const fd = new Fd("/f", FS.O_RDWR);
  const iatt = await px.create(ctx, { path: "/f" }, FS.O_RDWR, 0o640, fd, { "gfid-req": gfid });
  assert.equal(iatt.gfid, gfid);
  assert.equal(iatt.mode & 0o7777, 0o640);
  assert.equal(iatt.mode & 0o170000, 0o100000);
  assert.equal(fd.gfid, gfid);
  assert.equal(await px.write(ctx, fd, Buffer.from("hello world"), 0), 11);
  assert.equal((await px.read(ctx, fd, 5, 6)).toString(), "world");
  assert.equal((await px.read(ctx, fd, 100, 0)).toString(), "hello world");
  assert.equal((await px.read(ctx, fd, 10, 100)).length, 0);
  const f = await px.fstat(ctx, fd);
  assert.equal(f.size, 11);
  assert.equal(f.gfid, gfid);
  const s = await px.stat(ctx, { path: "/f" });
  assert.equal(s.ino, f.ino);
  assert.equal(s.gfid, gfid);
  await px.flush(ctx, fd);
  await px.fsync(ctx, fd, false);
  await px.fsync(ctx, fd, true);
  await px.release(ctx, fd);
  assert.equal(readFileSync(join(dir, "f"), "utf8"), "hello world");
  await rejectsWith(px.read(ctx, fd, 1, 0), "EBADF");
  assert.equal(px.dump().openFds, 0);
});

test("create accepts a 16-byte gfid-req and refuses a malformed one", async (t) => {
  const { px } = brick(t);
  const raw = Buffer.from("0123456789abcdef0123456789abcdef", "hex");
  const fd = new Fd("/g", FS.O_RDWR);
  const st = await px.create(ctx, { path: "/g" }, FS.O_RDWR, 0o644, fd, { "gfid-req": raw });
  assert.equal(st.gfid, "01234567-89ab-cdef-0123-456789abcdef");
  await px.release(ctx, fd);
  await rejectsWith(px.mkdir(ctx, { path: "/d" }, 0o755, { "gfid-req": "nope" }), "EINVAL");
  await rejectsWith(px.lookup(ctx, { path: "/d" }), "ENOENT");
});

test("create with O_EXCL on an existing file is EEXIST, without O_EXCL it opens and keeps the gfid", async (t) => {
  const { px } = brick(t);
  await writeClose(px, "/a", "data");
  const before = (await px.stat(ctx, { path: "/a" })).gfid;
  await rejectsWith(px.create(ctx, { path: "/a" }, FS.O_RDWR | FS.O_EXCL, 0o644, new Fd("/a", 0)), "EEXIST");
  const fd = new Fd("/a", FS.O_RDWR);
  const st = await px.create(ctx, { path: "/a" }, FS.O_RDWR | FS.O_TRUNC, 0o644, fd);
  assert.equal(st.gfid, before);
  assert.equal(st.size, 0);
  await px.release(ctx, fd);
});

test("files made behind the brick's back get a gfid on lookup, and keep it", async (t) => {
  const { px, dir } = brick(t);
  writeFileSync(join(dir, "stray"), "x");
  const first = await px.lookup(ctx, { path: "/stray" });
  assert.match(first.stat.gfid, UUID_RE);
  assert.equal(xattr.getAttributeSync(join(dir, "stray"), "trusted.gfid")?.length, 16);
  const again = await Promise.all([1, 2, 3].map(() => px.lookup(ctx, { path: "/stray" })));
  for (const r of again) assert.equal(r.stat.gfid, first.stat.gfid);
});

test("lookup returns the wanted xattrs that exist and omits the rest", async (t) => {
  const { px } = brick(t);
  await writeClose(px, "/f", "x");
  await px.setxattr(ctx, { path: "/f" }, "user.color", Buffer.from("blue"), 0);
  const r = await px.lookup(ctx, { path: "/f" }, { "want-xattrs": ["user.color", "trusted.afr.b2", "trusted.gfid"] });
  assert.deepEqual(Object.keys(r.xattrs ?? {}).sort(), ["trusted.gfid", "user.color"]);
  assert.equal(r.xattrs?.["user.color"]?.toString(), "blue");
  await rejectsWith(px.lookup(ctx, { path: "/missing" }), "ENOENT");
  await rejectsWith(px.lookup(ctx, { path: "/f/under-a-file" }), "ENOTDIR");
});

test("readdirplus returns each entry's wanted xattrs, one name or several", async (t) => {
  const { px } = brick(t);
  await writeClose(px, "/a", "x");
  await writeClose(px, "/b", "x");
  await px.setxattr(ctx, { path: "/a" }, "user.color", Buffer.from("blue"), 0);
  await px.setxattr(ctx, { path: "/b" }, "user.size", Buffer.from("big"), 0);
  const fd = new Fd("/", FS.O_RDONLY);
  await px.opendir(ctx, { path: "/" }, fd);
  t.after(() => px.releasedir(ctx, fd));
  const xattrsOf = async (want: string[]) => Object.fromEntries((await px.readdir(ctx, fd, 0, true, { "want-xattrs": want }))
    .filter((e) => e.name === "a" || e.name === "b")
    .map((e) => [e.name, Object.fromEntries(Object.entries(e.xattrs ?? {}).map(([k, v]) => [k, v.toString()]))]));
  assert.deepEqual(await xattrsOf(["user.color"]), { a: { "user.color": "blue" }, b: {} });
  assert.deepEqual(await xattrsOf(["user.color", "user.size", "trusted.gfid"]), { a: { "user.color": "blue" }, b: { "user.size": "big" } });
});

test("mkdir, rmdir and their errno cases", async (t) => {
  const { px } = brick(t);
  const d = await px.mkdir(ctx, { path: "/d" }, 0o750);
  assert.equal(d.mode & 0o7777, 0o750);
  assert.ok((d.mode & 0o170000) === 0o040000);
  assert.match(d.gfid, UUID_RE);
  await rejectsWith(px.mkdir(ctx, { path: "/d" }, 0o755), "EEXIST");
  await rejectsWith(px.mkdir(ctx, { path: "/" }, 0o755), "EEXIST");
  await rejectsWith(px.mkdir(ctx, { path: "/nope/x" }, 0o755), "ENOENT");
  await writeClose(px, "/d/f", "x");
  await rejectsWith(px.mkdir(ctx, { path: "/d/f/x" }, 0o755), "ENOTDIR");
  await rejectsWith(px.rmdir(ctx, { path: "/d" }), "ENOTEMPTY");
  await rejectsWith(px.rmdir(ctx, { path: "/d/f" }), "ENOTDIR");
  await rejectsWith(px.unlink(ctx, { path: "/d" }), "EISDIR");
  await rejectsWith(px.rmdir(ctx, { path: "/" }), "EBUSY");
  await rejectsWith(px.unlink(ctx, { path: "/" }), "EISDIR");
  await px.unlink(ctx, { path: "/d/f" });
  await rejectsWith(px.unlink(ctx, { path: "/d/f" }), "ENOENT");
  await px.rmdir(ctx, { path: "/d" });
  await rejectsWith(px.rmdir(ctx, { path: "/d" }), "ENOENT");
});

test("a directory inherits the setgid bit of its parent", async (t) => {
  const { px } = brick(t);
  await px.mkdir(ctx, { path: "/s" }, 0o2775);
  const child = await px.mkdir(ctx, { path: "/s/c" }, 0o755);
  assert.equal(child.mode & 0o7777, 0o2755);
});

test("names longer than 255 bytes are ENAMETOOLONG", async (t) => {
  const { px } = brick(t);
  const long = "/" + "n".repeat(256);
  await rejectsWith(px.create(ctx, { path: long }, FS.O_RDWR, 0o644, new Fd(long, 0)), "ENAMETOOLONG");
  await rejectsWith(px.mkdir(ctx, { path: long }, 0o755), "ENAMETOOLONG");
  await rejectsWith(px.lookup(ctx, { path: long }), "ENAMETOOLONG");
  await rejectsWith(px.lookup(ctx, { path: long + "/x" }), "ENAMETOOLONG");
  const ok = "/" + "n".repeat(255);
  await px.mkdir(ctx, { path: ok }, 0o755);
  // multi-byte: 128 two-byte characters is 256 bytes
  await rejectsWith(px.mkdir(ctx, { path: "/" + "é".repeat(128) }, 0o755), "ENAMETOOLONG");
});

test("rename moves files, replaces files and empty directories, keeps gfids, and reports conflicts", async (t) => {
  const { px, dir } = brick(t);
  await writeClose(px, "/a", "A");
  await writeClose(px, "/b", "B");
  const ga = (await px.stat(ctx, { path: "/a" })).gfid;
  await px.rename(ctx, { path: "/a" }, { path: "/b" });
  assert.equal(readFileSync(join(dir, "b"), "utf8"), "A");
  assert.equal((await px.stat(ctx, { path: "/b" })).gfid, ga);
  await rejectsWith(px.stat(ctx, { path: "/a" }), "ENOENT");

  await px.mkdir(ctx, { path: "/d1" }, 0o755);
  await px.mkdir(ctx, { path: "/d2" }, 0o755);
  await writeClose(px, "/d1/inner", "i");
  const g1 = (await px.stat(ctx, { path: "/d1" })).gfid;
  await px.rename(ctx, { path: "/d1" }, { path: "/d2" }); // over an empty directory
  assert.equal((await px.stat(ctx, { path: "/d2" })).gfid, g1);
  assert.equal(readFileSync(join(dir, "d2/inner"), "utf8"), "i");

  await px.mkdir(ctx, { path: "/full" }, 0o755);
  await writeClose(px, "/full/x", "x");
  await px.mkdir(ctx, { path: "/empty" }, 0o755);
  await rejectsWith(px.rename(ctx, { path: "/empty" }, { path: "/full" }), "ENOTEMPTY");
  await rejectsWith(px.rename(ctx, { path: "/empty" }, { path: "/b" }), "ENOTDIR");
  await rejectsWith(px.rename(ctx, { path: "/b" }, { path: "/empty" }), "EISDIR");
  await rejectsWith(px.rename(ctx, { path: "/missing" }, { path: "/z" }), "ENOENT");
  await rejectsWith(px.rename(ctx, { path: "/empty" }, { path: "/empty/sub" }), "EINVAL");
  await rejectsWith(px.rename(ctx, { path: "/" }, { path: "/r" }), "EBUSY");
  await rejectsWith(px.rename(ctx, { path: "/b" }, { path: "/" }), "EBUSY");
});

test("rename and link across a mount point inside the brick are EXDEV", async (t) => {
  const { px, dir } = brick(t);
  mkdirSync(join(dir, "mnt"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", join(dir, "mnt")]);
  try {
    await writeClose(px, "/f", "x");
    await rejectsWith(px.rename(ctx, { path: "/f" }, { path: "/mnt/f" }), "EXDEV");
    await rejectsWith(px.link(ctx, { path: "/f" }, { path: "/mnt/f" }), "EXDEV");
  } finally {
    execFileSync("umount", ["-l", join(dir, "mnt")]);
  }
});

test("hard links share the inode and the gfid; directories cannot be linked", async (t) => {
  const { px } = brick(t);
  await writeClose(px, "/orig", "shared");
  const a = await px.stat(ctx, { path: "/orig" });
  const l = await px.link(ctx, { path: "/orig" }, { path: "/alias" });
  assert.equal(l.gfid, a.gfid);
  assert.equal(l.ino, a.ino);
  assert.equal(l.nlink, 2);
  await rejectsWith(px.link(ctx, { path: "/orig" }, { path: "/alias" }), "EEXIST");
  await px.mkdir(ctx, { path: "/d" }, 0o755);
  await rejectsWith(px.link(ctx, { path: "/d" }, { path: "/d2" }), "EPERM");
  await px.unlink(ctx, { path: "/orig" });
  const left = await px.stat(ctx, { path: "/alias" });
  assert.equal(left.nlink, 1);
  assert.equal(left.gfid, a.gfid);
});

test("symlinks: readlink, lstat semantics, their own gfid, setattr on the link itself", async (t) => {
  const { px, dir } = brick(t);
  await writeClose(px, "/target", "t");
  const s = await px.symlink(ctx, "target", { path: "/ln" }, { "gfid-req": "11111111-2222-4333-8444-555555555555" });
  assert.equal(s.mode & 0o170000, 0o120000);
  assert.equal(s.gfid, "11111111-2222-4333-8444-555555555555");
  assert.equal(await px.readlink(ctx, { path: "/ln" }), "target");
  await rejectsWith(px.readlink(ctx, { path: "/target" }), "EINVAL");
  await rejectsWith(px.symlink(ctx, "x", { path: "/ln" }), "EEXIST");
  const targetBefore = statSync(join(dir, "target"));
  await px.setattr(ctx, { path: "/ln" }, { uid: 4242, gid: 4343, atimeMs: 1_000_000, mtimeMs: 2_000_000, mode: 0o600 });
  const ln = lstatSync(join(dir, "ln"));
  assert.equal(ln.uid, 4242);
  assert.equal(ln.mtimeMs, 2_000_000);
  const targetAfter = statSync(join(dir, "target"));
  assert.equal(targetAfter.uid, targetBefore.uid);
  assert.equal(targetAfter.mode, targetBefore.mode);
  assert.equal(targetAfter.mtimeMs, targetBefore.mtimeMs);
  await rejectsWith(px.open(ctx, { path: "/ln" }, FS.O_RDONLY, new Fd("/ln", 0)), "ELOOP");
  await rejectsWith(px.setattr(ctx, { path: "/ln" }, { size: 0 }), "EINVAL");
  // a dangling symlink is still an entry
  await px.symlink(ctx, "/nowhere/at/all", { path: "/dangling" });
  assert.equal((await px.lookup(ctx, { path: "/dangling" })).stat.mode & 0o170000, 0o120000);
});

test("setattr and fsetattr change mode, owner, size and times", async (t) => {
  const { px, dir } = brick(t);
  await writeClose(px, "/f", "0123456789");
  let st = await px.setattr(ctx, { path: "/f" }, { mode: 0o4711 });
  assert.equal(st.mode & 0o7777, 0o4711);
  st = await px.setattr(ctx, { path: "/f" }, { uid: 1001, gid: 1002 });
  assert.equal(st.uid, 1001);
  assert.equal(st.gid, 1002);
  st = await px.setattr(ctx, { path: "/f" }, { size: 4 });
  assert.equal(st.size, 4);
  assert.equal(readFileSync(join(dir, "f"), "utf8"), "0123");
  st = await px.setattr(ctx, { path: "/f" }, { mtimeMs: 1_500_000_000_123 });
  assert.equal(Math.round(st.mtimeMs), 1_500_000_000_123);
  await rejectsWith(px.setattr(ctx, { path: "/none" }, { mode: 0o600 }), "ENOENT");
  await px.mkdir(ctx, { path: "/d" }, 0o755);
  await rejectsWith(px.setattr(ctx, { path: "/d" }, { size: 0 }), "EISDIR");

  const fd = new Fd("/f", FS.O_RDWR);
  await px.open(ctx, { path: "/f" }, FS.O_RDWR, fd);
  st = await px.fsetattr(ctx, fd, { size: 1 * GiB, mode: 0o600, uid: 7, gid: 8, atimeMs: 5000, mtimeMs: 6000 });
  assert.equal(st.size, GiB);
  assert.equal(st.mode & 0o7777, 0o600);
  assert.equal(st.uid, 7);
  assert.equal(st.mtimeMs, 6000);
  assert.equal(st.atimeMs, 5000);
  await px.release(ctx, fd);
});

test("new entries belong to the caller's uid and gid", async (t) => {
  const { px, dir } = brick(t);
  const user: CallCtx = { ...ctx, uid: 1234, gid: 5678 };
  const fd = new Fd("/mine", FS.O_RDWR);
  const st = await px.create(user, { path: "/mine" }, FS.O_RDWR, 0o600, fd);
  await px.release(ctx, fd);
  assert.equal(st.uid, 1234);
  assert.equal(st.gid, 5678);
  assert.equal((await px.mkdir(user, { path: "/dir" }, 0o700)).uid, 1234);
  assert.equal((await px.symlink(user, "x", { path: "/sl" })).uid, 1234);
  assert.equal(lstatSync(join(dir, "sl")).gid, 5678);
  assert.equal((await px.mknod(user, { path: "/node" }, 0o100644, 0)).gid, 5678);
});

test("access checks mode bits for the caller", async (t) => {
  const { px } = brick(t);
  await writeClose(px, "/f", "x");
  await px.setattr(ctx, { path: "/f" }, { mode: 0o640, uid: 100, gid: 200 });
  await px.access(ctx, { path: "/f" }, FS.R_OK | FS.W_OK);
  await rejectsWith(px.access(ctx, { path: "/f" }, FS.X_OK), "EACCES");
  await px.access({ ...ctx, uid: 100, gid: 1 }, { path: "/f" }, FS.R_OK | FS.W_OK);
  await px.access({ ...ctx, uid: 300, gid: 200 }, { path: "/f" }, FS.R_OK);
  await rejectsWith(px.access({ ...ctx, uid: 300, gid: 200 }, { path: "/f" }, FS.W_OK), "EACCES");
  await rejectsWith(px.access({ ...ctx, uid: 300, gid: 300 }, { path: "/f" }, FS.R_OK), "EACCES");
  await rejectsWith(px.access(ctx, { path: "/none" }, FS.F_OK), "ENOENT");
});

test("sparse files and offsets beyond 4 GiB", async (t) => {
  const { px } = brick(t);
  const fd = await createFile(px, "/sparse");
  const off = 5 * GiB + 123;
  assert.equal(await px.write(ctx, fd, Buffer.from("tail"), off), 4);
  const st = await px.fstat(ctx, fd);
  assert.equal(st.size, off + 4);
  assert.ok(st.blocks * 512 < 1024 * 1024, `sparse file uses ${st.blocks} blocks`);
  assert.equal((await px.read(ctx, fd, 4, off)).toString(), "tail");
  const hole = await px.read(ctx, fd, 4096, 4 * GiB);
  assert.equal(hole.length, 4096);
  assert.ok(hole.every((b) => b === 0));
  await px.release(ctx, fd);
});

test("readdir lists with stable offsets, hides .glusterfs at the root, readdirplus carries gfids", async (t) => {
  const { px } = brick(t);
  const names = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(2, "0")}`);
  for (const n of names) await writeClose(px, `/${n}`, n);
  await px.mkdir(ctx, { path: "/sub" }, 0o755);
  const fd = new Fd("/", 0, true);
  await px.opendir(ctx, { path: "/" }, fd);
  const first = await px.readdir(ctx, fd, 0, false);
  const all = first.map((e) => e.name);
  assert.deepEqual(all.slice(0, 2), [".", ".."]);
  assert.ok(!all.includes(".glusterfs"));
  assert.deepEqual(all.slice(2).sort(), [...names, "sub"].sort());
  // continue from the middle: exactly the rest, even after the directory changed
  await writeClose(px, "/late", "x");
  const mid = first[10]!.next;
  const rest = await px.readdir(ctx, fd, mid, false);
  assert.deepEqual(rest.map((e) => e.name), all.slice(mid));
  assert.equal((await px.readdir(ctx, fd, first[first.length - 1]!.next, false)).length, 0);
  // offset 0 rewinds and takes a new snapshot
  assert.ok((await px.readdir(ctx, fd, 0, false)).some((e) => e.name === "late"));
  const plus = await px.readdir(ctx, fd, 0, true);
  for (const e of plus) {
    assert.ok(e.stat, `no stat for ${e.name}`);
    assert.match(e.stat.gfid, UUID_RE);
  }
  assert.equal(plus.find((e) => e.name === ".")?.stat?.gfid, ROOT_GFID);
  assert.equal(plus.find((e) => e.name === "..")?.stat?.gfid, ROOT_GFID);
  assert.equal(plus.find((e) => e.name === "f07")?.stat?.gfid, (await px.stat(ctx, { path: "/f07" })).gfid);
  await px.fsyncdir(ctx, fd, false);
  await px.releasedir(ctx, fd);

  const sub = new Fd("/sub", 0, true);
  await px.opendir(ctx, { path: "/sub" }, sub);
  const subPlus = await px.readdir(ctx, sub, 0, true);
  assert.deepEqual(subPlus.map((e) => e.name), [".", ".."]);
  assert.equal(subPlus[1]!.stat?.gfid, ROOT_GFID);
  await px.releasedir(ctx, sub);
  await rejectsWith(px.opendir(ctx, { path: "/f01" }, new Fd("/f01", 0, true)), "ENOTDIR");
  await rejectsWith(px.opendir(ctx, { path: "/none" }, new Fd("/none", 0, true)), "ENOENT");
});

test("readdirplus lstats a cached directory's entries on the event loop, a slow one's through the thread pool, with the same result", async (t) => {
  const { px } = brick(t);
  await px.mkdir(ctx, { path: "/d" }, 0o755);
  for (let i = 0; i < 40; i++) await writeClose(px, `/d/f${i}`, "x".repeat(i));
  await px.symlink(ctx, "f1", { path: "/d/link" });
  // thread-pool requests made while a listing runs (async fs calls create one resource each)
  const listed = async () => {
    let poolRequests = 0;
    const hook = createHook({ init: (_id, type) => { if (type === "FSREQPROMISE" || type === "FSREQCALLBACK") poolRequests++; } }).enable();
    try {
      const fd = new Fd("/d", 0, true);
      await px.opendir(ctx, { path: "/d" }, fd);
      const entries = await px.readdir(ctx, fd, 0, true);
      await px.releasedir(ctx, fd);
      return { poolRequests, entries: entries.map((e) => ({ name: e.name, gfid: e.stat?.gfid, size: e.stat?.size, mode: e.stat?.mode })).sort((a, b) => (a.name < b.name ? -1 : 1)) };
    } finally {
      hook.disable();
    }
  };
  const saved = { ...LISTING_DISK_WAIT };
  t.after(() => Object.assign(LISTING_DISK_WAIT, saved));
  // no lstat "waits for the disk" (on a busy machine even cached ones can exceed the default budget)
  Object.assign(LISTING_DISK_WAIT, { baseMs: 1e9, perEntryMs: 0 });
  const cached = await listed();
  assert.equal(cached.entries.length, 43); // 40 files, a symlink, "." and ".."
  assert.ok(cached.entries.every((e) => e.gfid !== undefined), "every entry has its attributes");
  assert.equal(cached.entries.find((e) => e.name === "f7")?.size, 7);
  assert.equal(cached.entries.find((e) => e.name === "f7")?.gfid, (await px.stat(ctx, { path: "/d/f7" })).gfid);
  assert.ok(cached.poolRequests <= 2, `the directory read only, not ${cached.poolRequests} requests`);
  // every lstat "waited for the disk": the rest of the listing goes through the pool
  Object.assign(LISTING_DISK_WAIT, { baseMs: -1, perEntryMs: 0 });
  const slow = await listed();
  assert.ok(slow.poolRequests >= 40, `only ${slow.poolRequests} pool requests`);
  assert.deepEqual(slow.entries, cached.entries);
});

test("statfs reports the brick's filesystem", async (t) => {
  const { px } = brick(t);
  const s = await px.statfs(ctx, { path: "/" });
  assert.ok(s.blocks > 0 && s.bsize > 0 && s.bfree <= s.blocks && s.namemax === 255);
});

test("xattrs: set, get, list, remove, create/replace flags, symlinks get their own", async (t) => {
  const { px, dir } = brick(t);
  await writeClose(px, "/f", "x");
  await px.setxattr(ctx, { path: "/f" }, "user.a", Buffer.from("1"), 0);
  await px.setxattr(ctx, { path: "/f" }, "trusted.mine", Buffer.from([0, 1, 2]), 0);
  assert.deepEqual(await px.getxattr(ctx, { path: "/f" }, "trusted.mine"), Buffer.from([0, 1, 2]));
  assert.deepEqual((await px.listxattr(ctx, { path: "/f" })).sort(), ["trusted.mine", "user.a"]);
  await rejectsWith(px.setxattr(ctx, { path: "/f" }, "user.a", Buffer.from("2"), 1), "EEXIST");
  await rejectsWith(px.setxattr(ctx, { path: "/f" }, "user.b", Buffer.from("2"), 2), "ENODATA");
  await px.setxattr(ctx, { path: "/f" }, "user.a", Buffer.from("3"), 2);
  assert.equal((await px.getxattr(ctx, { path: "/f" }, "user.a")).toString(), "3");
  await px.removexattr(ctx, { path: "/f" }, "user.a");
  await rejectsWith(px.getxattr(ctx, { path: "/f" }, "user.a"), "ENODATA");
  await rejectsWith(px.removexattr(ctx, { path: "/f" }, "user.a"), "ENODATA");
  await rejectsWith(px.getxattr(ctx, { path: "/none" }, "user.a"), "ENOENT");
  await rejectsWith(px.listxattr(ctx, { path: "/none" }), "ENOENT");
  await rejectsWith(px.setxattr(ctx, { path: "/f" }, "bogus.ns", Buffer.from("1"), 0), "EOPNOTSUPP");

  await px.symlink(ctx, "f", { path: "/ln" });
  // user.* is not allowed on symlinks by Linux; the target must not receive it instead
  await rejectsWith(px.setxattr(ctx, { path: "/ln" }, "user.via-link", Buffer.from("1"), 0), "EPERM");
  assert.equal(xattr.getAttributeSync(join(dir, "f"), "user.via-link"), null);
  await px.setxattr(ctx, { path: "/ln" }, "trusted.on-link", Buffer.from("L"), 0);
  assert.equal(xattr.getAttributeSync(join(dir, "f"), "trusted.on-link"), null);
  assert.ok((await px.listxattr(ctx, { path: "/ln" })).includes("trusted.on-link"));
  assert.ok(!(await px.listxattr(ctx, { path: "/f" })).includes("trusted.on-link"));
  await rejectsWith(px.getxattr(ctx, { path: "/ln" }, "trusted.mine"), "ENODATA");
});

test("internal xattrs cannot be set or removed by clients, are hidden from listxattr, but readable", async (t) => {
  const { px } = brick(t);
  await writeClose(px, "/f", "x");
  const gfid = (await px.stat(ctx, { path: "/f" })).gfid;
  for (const name of ["trusted.gfid", "trusted.afr.dirty", "trusted.afr.brick-2", "trusted.glusterfs.volume-id", "trusted.gha.index"]) {
    await rejectsWith(px.setxattr(ctx, { path: "/f" }, name, Buffer.alloc(16), 0), "EPERM");
    await rejectsWith(px.removexattr(ctx, { path: "/f" }, name), "EPERM");
  }
  assert.equal((await px.stat(ctx, { path: "/f" })).gfid, gfid);
  await px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.brick-2": Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]) });
  assert.deepEqual(await px.listxattr(ctx, { path: "/f" }), []);
  assert.equal((await px.getxattr(ctx, { path: "/f" }, "trusted.gfid")).length, 16);
  assert.equal((await px.getxattr(ctx, { path: "/f" }, "trusted.afr.brick-2")).readInt32BE(0), 1);
});

test("fallocate allocates, keeps size on request, punches holes, refuses unknown modes", async (t) => {
  const { px, dir } = brick(t);
  const fd = await createFile(px, "/fa", "abcdefgh");
  await px.fallocate(ctx, fd, 0, 0, 1 << 20);
  let st = await px.fstat(ctx, fd);
  assert.equal(st.size, 1 << 20);
  assert.ok(st.blocks * 512 >= 1 << 20, "blocks are allocated");
  await px.fallocate(ctx, fd, 1, 1 << 20, 1 << 20); // KEEP_SIZE
  st = await px.fstat(ctx, fd);
  assert.equal(st.size, 1 << 20);
  assert.ok(st.blocks * 512 >= 2 << 20);
  await px.fallocate(ctx, fd, 3, 2, 4); // PUNCH_HOLE | KEEP_SIZE
  assert.deepEqual([...readFileSync(join(dir, "fa")).subarray(0, 8)], [97, 98, 0, 0, 0, 0, 103, 104]);
  await rejectsWith(px.fallocate(ctx, fd, 0x8, 0, 4096), "EOPNOTSUPP");
  await rejectsWith(px.fallocate(ctx, fd, 0, -1, 10), "EINVAL");
  await px.release(ctx, fd);
});

test("mknod makes regular files, fifos, sockets and device nodes with gfids", async (t) => {
  const { px, dir } = brick(t);
  const reg = await px.mknod(ctx, { path: "/reg" }, 0o100640, 0);
  assert.equal(reg.mode, 0o100640);
  const fifo = await px.mknod(ctx, { path: "/fifo" }, 0o010600, 0, { "gfid-req": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" });
  assert.equal(fifo.mode, 0o010600);
  assert.equal(fifo.gfid, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
  assert.ok(lstatSync(join(dir, "fifo")).isFIFO());
  const sock = await px.mknod(ctx, { path: "/sock" }, 0o140755, 0);
  assert.ok(lstatSync(join(dir, "sock")).isSocket());
  assert.equal(sock.mode & 0o7777, 0o755);
  const rdev = (1 << 8) | 3; // 1:3, /dev/null
  const chr = await px.mknod(ctx, { path: "/null" }, 0o020666, rdev);
  assert.ok(lstatSync(join(dir, "null")).isCharacterDevice());
  assert.equal(chr.rdev, rdev);
  await rejectsWith(px.mknod(ctx, { path: "/fifo" }, 0o010600, 0), "EEXIST");
  await rejectsWith(px.mknod(ctx, { path: "/sock" }, 0o140600, 0), "EEXIST");
  await rejectsWith(px.mknod(ctx, { path: "/reg" }, 0o100600, 0), "EEXIST");
  await rejectsWith(px.mknod(ctx, { path: "/nodir/x" }, 0o010600, 0), "ENOENT");
  assert.deepEqual((await import("node:fs")).readdirSync(join(dir, ".glusterfs/tmp")), []);
});

test("a full disk answers ENOSPC", async (t) => {
  const base = mkdtempSync(join(tmpdir(), "gha-posix-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", base]);
  const px = newPosix(join(base, "brick"));
  t.after(async () => {
    await px.stop();
    execFileSync("umount", ["-l", base]);
    rmSync(base, { recursive: true, force: true });
  });
  const fd = await createFile(px, "/big");
  await rejectsWith(px.write(ctx, fd, Buffer.alloc(1 << 20, 1), 0), "ENOSPC");
  await rejectsWith(px.fallocate(ctx, fd, 0, 0, 1 << 20), "ENOSPC");
  await px.release(ctx, fd);
});

test("errors name the errno, the translator and the fop, never the brick path", async (t) => {
  const { px, dir } = brick(t);
  await assert.rejects(px.stat(ctx, { path: "/missing" }), (e: unknown) => {
    assert.ok(e instanceof FopError);
    assert.equal(e.code, "ENOENT");
    assert.equal(e.errno, 2);
    assert.equal(e.xlator, "brick");
    assert.equal(e.fop, "stat");
    assert.ok(!e.message.includes(dir));
    return true;
  });
  await rejectsWith(px.lk(), "ENOSYS");
});

test("reconfigure applies fsync live and dump reports the brick", async (t) => {
  const { px, dir } = brick(t);
  assert.deepEqual(px.reconfigure({ directory: dir, fsync: false }), { applied: ["fsync"], needsRestart: [] });
  assert.equal(px.dump().fsync, false);
  assert.deepEqual(px.reconfigure({ directory: "/elsewhere", fsync: false }).needsRestart, ["directory"]);
  const fd = await createFile(px, "/x");
  assert.equal(px.dump().openFds, 1);
  assert.equal(px.dump().directory, dir);
  await px.release(ctx, fd);
  assert.equal(px.dump().openFds, 0);
});

test("dump lists the open fds with path and flags, at most 100 of them", async (t) => {
  const { px } = brick(t);
  const first = await createFile(px, "/held");
  const listed = () => px.dump().openFdList as { path: string; flags: string; gfid?: string }[];
  assert.deepEqual(listed().map((f) => [f.path, f.flags]), [["/held", "O_RDWR"]]);
  assert.equal(listed()[0]!.gfid, first.gfid);
  const many: Fd[] = [];
  for (let i = 0; i < 120; i++) many.push(await createFile(px, `/f${i}`));
  assert.equal(px.dump().openFds, 121);
  assert.equal(listed().length, 100);
  for (const fd of [first, ...many]) await px.release(ctx, fd);
  assert.deepEqual(listed(), []);
});


test("small writes are made on the event loop, big ones in the thread pool, and small ones too while a big one is there; every byte lands", async (t) => {
  const { px, dir } = brick(t);
  const writes = () => px.dump().writes as { onLoop: number; inPool: number };
  const fd = await createFile(px, "/w");
  const small = Buffer.alloc(4096, "s");
  const big = Buffer.alloc(4 * 1024 * 1024, "b");
  assert.equal(await px.write(ctx, fd, small, 0), 4096);
  assert.deepEqual(writes(), { onLoop: 1, inPool: 0 });
  const streaming = px.write(ctx, fd, big, 4096);
  const during = px.write(ctx, fd, small, 4096 + big.length);
  assert.equal(await streaming, big.length);
  assert.equal(await during, 4096);
  assert.deepEqual(writes(), { onLoop: 1, inPool: 2 }, "the small write went behind the big one, to the pool");
  assert.equal(await px.write(ctx, fd, small, 0), 4096);
  assert.deepEqual(writes(), { onLoop: 2, inPool: 2 });
  await px.release(ctx, fd);
  const onDisk = readFileSync(join(dir, "w"));
  assert.equal(onDisk.length, 4096 + big.length + 4096);
  assert.ok(onDisk.subarray(0, 4096).equals(small) && onDisk.subarray(4096, 4096 + big.length).equals(big) && onDisk.subarray(-4096).equals(small));
});

test("a change that names its file by path and gfid is ESTALE when the name is another file's now, and changes nothing", async (t) => {
  const { px, dir } = brick(t);
  await writeClose(px, "/old", "old");
  const oldGfid = (await px.lookup(ctx, { path: "/old" })).stat.gfid;
  await writeClose(px, "/new", "a newer file");
  await px.rename(ctx, { path: "/new" }, { path: "/old" }); // another client's rename over the name
  const stale = { path: "/old", gfid: oldGfid };
  await rejectsWith(px.setattr(ctx, stale, { mode: 0o600, size: 0 }), "ESTALE");
  await rejectsWith(px.setxattr(ctx, stale, "user.k", Buffer.from("v"), 0), "ESTALE");
  await rejectsWith(px.link(ctx, stale, { path: "/l" }), "ESTALE");
  assert.equal(readFileSync(join(dir, "old"), "utf8"), "a newer file", "not truncated");
  assert.equal(statSync(join(dir, "old")).mode & 0o777, 0o644, "not chmod'ed");
  assert.ok(!existsSync(join(dir, "l")));
  // the file's own gfid (or none) still works
  const now = (await px.lookup(ctx, { path: "/old" })).stat.gfid;
  assert.equal((await px.setattr(ctx, { path: "/old", gfid: now }, { mode: 0o640 })).mode & 0o777, 0o640);
  await px.setxattr(ctx, { path: "/old" }, "user.k", Buffer.from("v"), 0);
});

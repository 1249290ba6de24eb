import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, constants as FS } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as xattr from "@napi-rs/xattr";
import { errnoNumber, FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { Posix } from "../../runtime/xlators/storage/posix";

const ctx: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };

interface Scene {
  px: Posix;
  base: string;
  brick: string;
  outside: string;
}

/**
 * base/
 *   outside/secret (with an xattr), outside/dir/
 *   brick/evil -> base/outside (absolute), brick/evilrel -> ../outside, brick/evilfile -> outside/secret,
 *   brick/tohidden -> .glusterfs, brick/sub/inner, brick/inlink -> sub
 */
function scene(t: TestContext): Scene {
  const base = mkdtempSync(join(tmpdir(), "gha-confine-"));
  const outside = join(base, "outside");
  const brick = join(base, "brick");
  mkdirSync(join(outside, "dir"), { recursive: true });
  writeFileSync(join(outside, "secret"), "do not touch");
  xattr.setAttributeSync(join(outside, "secret"), "user.keep", "as-is");
  const px = new Posix({ name: "brick", type: "storage/posix", options: { directory: brick, fsync: true }, children: [], log: silentLogger(), graph: new Map() });
  symlinkSync(outside, join(brick, "evil"));
  symlinkSync("../outside", join(brick, "evilrel"));
  symlinkSync(join(outside, "secret"), join(brick, "evilfile"));
  symlinkSync(".glusterfs", join(brick, "tohidden"));
  mkdirSync(join(brick, "sub"));
  writeFileSync(join(brick, "sub", "inner"), "inner");
  symlinkSync("sub", join(brick, "inlink"));
  t.after(async () => {
    await px.stop();
    rmSync(base, { recursive: true, force: true });
  });
  return { px, base, brick, outside };
}

/** Everything observable outside the brick: names, types, modes, owners, sizes, times, links, contents, xattrs. */
function snapshot(s: Scene): string {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    const xs = st.isSymbolicLink() ? [] : xattr.listAttributesSync(p).sort().map((n) => `${n}=${xattr.getAttributeSync(p, n)?.toString("hex")}`);
    out.push(`${p} ${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.nlink} ${st.mtimeMs} ${st.ctimeMs} ${xs.join(",")}`);
    if (st.isFile()) out.push(readFileSync(p, "hex"));
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) if (p !== s.base || n !== "brick") walk(join(p, n));
  };
  walk(s.base);
  return out.join("\n");
}

async function refused(p: Promise<unknown>, codes: string[], what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FopError, `${what}: expected FopError, got ${String(e)}`);
    assert.ok(codes.map(errnoNumber).includes(e.errno), `${what}: got ${e.code}, expected one of ${codes.join(",")}`);
    return true;
  }, what);
}

/** Every path-taking fop, with the bad path in each path position. */
function pathFops(px: Posix, bad: string, good: string): [string, () => Promise<unknown>][] {
  const fd = () => new Fd(bad, FS.O_RDWR);
  const L = { path: bad };
  const G = { path: good };
  return [
    ["lookup", () => px.lookup(ctx, L)],
    ["stat", () => px.stat(ctx, L)],
    ["setattr", () => px.setattr(ctx, L, { mode: 0o777, uid: 99, size: 0, mtimeMs: 1 })],
    ["access", () => px.access(ctx, L, FS.R_OK)],
    ["readlink", () => px.readlink(ctx, L)],
    ["mknod", () => px.mknod(ctx, L, 0o010644, 0)],
    ["mkdir", () => px.mkdir(ctx, L, 0o755)],
    ["unlink", () => px.unlink(ctx, L)],
    ["rmdir", () => px.rmdir(ctx, L)],
    ["symlink", () => px.symlink(ctx, "x", L)],
    ["rename-from", () => px.rename(ctx, L, { path: "/renamed" })],
    ["rename-to", () => px.rename(ctx, G, L)],
    ["link-from", () => px.link(ctx, L, { path: "/linked" })],
    ["link-to", () => px.link(ctx, G, L)],
    ["create", () => px.create(ctx, L, FS.O_RDWR | FS.O_TRUNC, 0o644, fd())],
    ["open", () => px.open(ctx, L, FS.O_RDWR | FS.O_TRUNC, fd())],
    ["opendir", () => px.opendir(ctx, L, fd())],
    ["statfs", () => px.statfs(ctx, L)],
    ["getxattr", () => px.getxattr(ctx, L, "user.keep")],
    ["setxattr", () => px.setxattr(ctx, L, "user.keep", Buffer.from("changed"), 0)],
    ["listxattr", () => px.listxattr(ctx, L)],
    ["removexattr", () => px.removexattr(ctx, L, "user.keep")],
    ["xattrop", () => px.xattrop(ctx, L, "add32", { "trusted.afr.x": Buffer.from([0, 0, 0, 1]) })],
  ];
}

const BAD_PATHS: [string, string[]][] = [
  ["/../outside/secret", ["EACCES"]],
  ["/../outside", ["EACCES"]],
  ["/sub/../../outside/new", ["EACCES"]],
  ["//..//outside//secret", ["EACCES"]],
  ["outside/secret", ["EINVAL"]],
  ["", ["EINVAL"]],
  ["/sub/inner\0/../../outside", ["EINVAL"]],
  ["/evil/secret", ["EACCES"]],
  ["/evil/new", ["EACCES"]],
  ["/evil/dir/deeper", ["EACCES"]],
  ["/evilrel/secret", ["EACCES"]],
  ["/evilrel/dir/new", ["EACCES"]],
  ["/.glusterfs", ["ENOENT"]],
  ["/.glusterfs/brick-id", ["ENOENT"]],
  ["/.glusterfs/indices/xattrop", ["ENOENT"]],
  ["/tohidden/brick-id", ["ENOENT"]],
  ["/tohidden/new", ["ENOENT"]],
];

test("every path-taking fop refuses escapes, malformed paths and the internal directory, touching nothing", async (t) => {
  const s = scene(t);
  const before = snapshot(s);
  const brickBefore = readdirSync(s.brick).sort();
  const internalBefore = readdirSync(join(s.brick, ".glusterfs")).sort();
  for (const [bad, codes] of BAD_PATHS) {
    for (const [fop, call] of pathFops(s.px, bad, "/sub/inner")) {
      await refused(call(), codes, `${fop}(${JSON.stringify(bad)})`);
    }
  }
  assert.equal(snapshot(s), before);
  assert.deepEqual(readdirSync(s.brick).sort(), brickBefore);
  assert.deepEqual(readdirSync(join(s.brick, ".glusterfs")).sort(), internalBefore);
  assert.equal(s.px.dump().openFds, 0);
});

test("rename and link cannot move anything out of the brick", async (t) => {
  const s = scene(t);
  const before = snapshot(s);
  for (const to of ["/../moved", "/evil/moved", "/evilrel/moved", "/evil/dir/moved", "/.glusterfs/moved", "/tohidden/moved"]) {
    await refused(s.px.rename(ctx, { path: "/sub/inner" }, { path: to }), ["EACCES", "ENOENT"], `rename to ${to}`);
    await refused(s.px.link(ctx, { path: "/sub/inner" }, { path: to }), ["EACCES", "ENOENT"], `link to ${to}`);
    await refused(s.px.rename(ctx, { path: "/sub" }, { path: to }), ["EACCES", "ENOENT"], `rename dir to ${to}`);
  }
  assert.equal(readFileSync(join(s.brick, "sub/inner"), "utf8"), "inner");
  assert.equal(snapshot(s), before);
});

test("a symlink as the last component is acted on itself, never followed out of the brick", async (t) => {
  const s = scene(t);
  const before = snapshot(s);
  const { px } = s;
  assert.equal((await px.lookup(ctx, { path: "/evilfile" })).stat.mode & 0o170000, 0o120000);
  assert.equal(await px.readlink(ctx, { path: "/evil" }), s.outside);
  await px.setattr(ctx, { path: "/evilfile" }, { mode: 0o777, uid: 99, gid: 99, mtimeMs: 1000 });
  await px.setattr(ctx, { path: "/evil" }, { mode: 0o700 });
  await refused(px.setattr(ctx, { path: "/evilfile" }, { size: 0 }), ["EINVAL"], "truncate through symlink");
  await refused(px.open(ctx, { path: "/evilfile" }, FS.O_RDWR | FS.O_TRUNC, new Fd("/evilfile", 0)), ["ELOOP"], "open symlink");
  await refused(px.create(ctx, { path: "/evilfile" }, FS.O_RDWR | FS.O_TRUNC, 0o644, new Fd("/evilfile", 0)), ["ELOOP"], "create over symlink");
  await refused(px.opendir(ctx, { path: "/evil" }, new Fd("/evil", 0, true)), ["ELOOP", "ENOTDIR"], "opendir symlink");
  await refused(px.rmdir(ctx, { path: "/evil" }), ["ENOTDIR"], "rmdir symlink");
  await refused(px.setxattr(ctx, { path: "/evilfile" }, "user.keep", Buffer.from("x"), 0), ["EPERM"], "user xattr on symlink");
  await refused(px.removexattr(ctx, { path: "/evilfile" }, "user.keep"), ["ENODATA", "EPERM"], "removexattr on symlink");
  await px.setxattr(ctx, { path: "/evilfile" }, "trusted.on-link", Buffer.from("x"), 0);
  await px.xattrop(ctx, { path: "/evilfile" }, "add32", { "trusted.afr.b": Buffer.from([0, 0, 0, 1]) });
  const hl = await px.link(ctx, { path: "/evilfile" }, { path: "/hardlink-to-link" });
  assert.equal(hl.mode & 0o170000, 0o120000);
  await px.rename(ctx, { path: "/evil" }, { path: "/moved-link" });
  await px.unlink(ctx, { path: "/moved-link" });
  await px.unlink(ctx, { path: "/evilrel" });
  assert.equal(snapshot(s), before);
});

test("symlinks that stay inside the brick work as intermediate directories", async (t) => {
  const { px } = scene(t);
  const st = await px.lookup(ctx, { path: "/inlink/inner" });
  assert.equal(st.stat.size, 5);
  await px.mkdir(ctx, { path: "/inlink/made" }, 0o755);
  assert.ok((await px.stat(ctx, { path: "/sub/made" })).mode & 0o040000);
});

test("the root listing never shows .glusterfs", async (t) => {
  const { px } = scene(t);
  const fd = new Fd("/", 0, true);
  await px.opendir(ctx, { path: "/" }, fd);
  const names = (await px.readdir(ctx, fd, 0, true)).map((e) => e.name);
  await px.releasedir(ctx, fd);
  assert.ok(!names.includes(".glusterfs"));
  assert.ok(names.includes("sub") && names.includes("evil"));
});

/**
 * Ends this turn of the event loop: requests reach a brick from the network, one event each; the
 * brick's metadata calls are synchronous, so a loop of awaits alone would starve the other loops.
 */
const turn = () => new Promise((r) => setImmediate(r));

test("swapping a directory for an outside symlink while fops run never lets one escape", async (t) => {
  const s = scene(t);
  const { px } = s;
  const before = snapshot(s);
  await px.mkdir(ctx, { path: "/d" }, 0o755);
  const deadline = Date.now() + 1500;
  let swaps = 0;
  let attempts = 0;
  const swapper = (async () => {
    // a client's own fops: /d becomes the outside symlink and back, as fast as possible
    while (Date.now() < deadline) {
      await turn();
      await px.rename(ctx, { path: "/d" }, { path: "/d.real" });
      await turn();
      await px.rename(ctx, { path: "/evil" }, { path: "/d" });
      await turn();
      await px.rename(ctx, { path: "/d" }, { path: "/evil" });
      await turn();
      await px.rename(ctx, { path: "/d.real" }, { path: "/d" });
      swaps++;
    }
  })();
  const attackers = Array.from({ length: 4 }, async (_, i) => {
    while (Date.now() < deadline) {
      await turn();
      attempts++;
      const ops: Promise<unknown>[] = [
        px.create(ctx, { path: `/d/secret` }, FS.O_RDWR | FS.O_TRUNC, 0o644, new Fd("/d/secret", 0)).then((_st) => undefined),
        px.setxattr(ctx, { path: "/d/secret" }, "user.keep", Buffer.from(`pwned${i}`), 0),
        px.setattr(ctx, { path: "/d/secret" }, { mode: 0o777, size: 0 }),
        px.unlink(ctx, { path: "/d/secret" }),
        px.mkdir(ctx, { path: "/d/dir/x" }, 0o755),
        px.rename(ctx, { path: "/d/secret" }, { path: "/stolen" }),
      ];
      await Promise.allSettled(ops);
    }
  });
  await Promise.all([swapper, ...attackers]);
  assert.ok(swaps > 10 && attempts > 10, `swaps=${swaps} attempts=${attempts}`);
  assert.equal(snapshot(s), before);
});

test("swapping a file for an outside symlink while fops run never changes the target", async (t) => {
  const s = scene(t);
  const { px } = s;
  const before = snapshot(s);
  const fd0 = new Fd("/f", FS.O_RDWR);
  await px.create(ctx, { path: "/f" }, FS.O_RDWR, 0o644, fd0);
  await px.release(ctx, fd0);
  const deadline = Date.now() + 1500;
  let swaps = 0;
  const swapper = (async () => {
    while (Date.now() < deadline) {
      await turn();
      await px.rename(ctx, { path: "/f" }, { path: "/f.real" });
      await turn();
      await px.rename(ctx, { path: "/evilfile" }, { path: "/f" });
      await turn();
      await px.rename(ctx, { path: "/f" }, { path: "/evilfile" });
      await turn();
      await px.rename(ctx, { path: "/f.real" }, { path: "/f" });
      swaps++;
    }
  })();
  const attackers = Array.from({ length: 4 }, async () => {
    while (Date.now() < deadline) {
      await turn();
      const fd = new Fd("/f", FS.O_RDWR);
      await Promise.allSettled([
        px.setattr(ctx, { path: "/f" }, { mode: 0o777 }),
        px.setattr(ctx, { path: "/f" }, { size: 0, uid: 99, mtimeMs: 1 }),
        px.setxattr(ctx, { path: "/f" }, "user.keep", Buffer.from("pwned"), 0),
        px.removexattr(ctx, { path: "/f" }, "user.keep"),
        px.open(ctx, { path: "/f" }, FS.O_RDWR | FS.O_TRUNC, fd).then(() => px.write(ctx, fd, Buffer.from("pwned"), 0)).finally(() => px.release(ctx, fd)),
        px.create(ctx, { path: "/f" }, FS.O_RDWR | FS.O_TRUNC, 0o777, new Fd("/f", 0)),
        px.xattrop(ctx, { path: "/f" }, "add32", { "trusted.afr.x": Buffer.from([0, 0, 0, 1]) }),
      ]);
    }
  });
  await Promise.all([swapper, ...attackers]);
  assert.ok(swaps > 10, `swaps=${swaps}`);
  assert.equal(snapshot(s), before);
});

test("a parent directory kept open between fops never leads elsewhere: renamed away, swapped for a symlink out of the brick, or removed", async (t) => {
  const s = scene(t);
  const code = (p: Promise<unknown>) => p.then(() => "ok", (e: FopError) => e.code);
  mkdirSync(join(s.brick, "d", "e"), { recursive: true });
  writeFileSync(join(s.brick, "d", "e", "f"), "first");
  assert.equal((await s.px.stat(ctx, { path: "/d/e/f" })).size, 5, "d/e is opened (and kept)");
  // renamed away and replaced by another directory of the same name: the new one is used
  renameSync(join(s.brick, "d", "e"), join(s.brick, "d", "moved"));
  mkdirSync(join(s.brick, "d", "e"));
  writeFileSync(join(s.brick, "d", "e", "f"), "second!");
  assert.equal((await s.px.stat(ctx, { path: "/d/e/f" })).size, 7, "the directory now at d/e, not the one kept");
  assert.equal((await s.px.stat(ctx, { path: "/d/moved/f" })).size, 5);
  // d swapped for a symlink out of the brick after d/e was kept open
  const before = snapshot(s);
  renameSync(join(s.brick, "d"), join(s.brick, "d-old"));
  mkdirSync(join(s.outside, "e"), { recursive: true });
  symlinkSync(s.outside, join(s.brick, "d"));
  const after = snapshot(s);
  assert.equal(await code(s.px.stat(ctx, { path: "/d/e/f" })), "EACCES", "the path now leads outside: refused");
  assert.equal(await code(s.px.unlink(ctx, { path: "/d/e/secret" })), "EACCES");
  assert.equal(snapshot(s), after, "nothing outside the brick changed");
  assert.notEqual(before, after);
  // removed: ENOENT, not the removed directory's leftovers
  rmSync(join(s.brick, "d"));
  rmSync(join(s.brick, "d-old"), { recursive: true });
  assert.equal(await code(s.px.stat(ctx, { path: "/d/e/f" })), "ENOENT");
});

test("parent directories kept open are bounded, and the brick's stop closes them", async (t) => {
  const s = scene(t);
  const fds = () => readdirSync("/proc/self/fd").length;
  for (let i = 0; i < 100; i++) mkdirSync(join(s.brick, "many", `d${i}`), { recursive: true });
  const start = fds();
  for (let i = 0; i < 100; i++) await s.px.lookup(ctx, { path: `/many/d${i}/absent` }).catch(() => undefined);
  const grown = fds() - start;
  assert.ok(grown > 0 && grown <= 64, `at most 64 kept (grew by ${grown})`);
  await s.px.stop();
  assert.ok(fds() - start <= 0, "all closed at stop");
});

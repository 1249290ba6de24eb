// performance/md-cache over a real storage/posix brick in a temp dir: what it answers without going
// down, and that every local change drops what it affects (hard links included) while changes made
// by another client (a second md-cache over the same brick) show once entries expire.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, constants as FS } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FopError } from "../../runtime/core/errors";
import { FOP_NAMES, type FopName } from "../../runtime/core/fops";
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { Fd, XDATA, type CallCtx } from "../../runtime/core/types";
import { Xlator } from "../../runtime/core/xlator";
import { checkVolfile, parseVolfile } from "../../runtime/volfile";
import { Posix } from "../../runtime/xlators/storage/posix";
import { inoFromGfid, MdCache, type MdCacheOptions } from "../../runtime/xlators/performance/md-cache";
import { withMdCache, withMountStack } from "../../runtime/xlators/performance/md-cache/mount-stack";
import mdCacheSchema from "../../schema/xlators/performance/md-cache.json";

const ctx: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };
/** A file capability (VFS_CAP_REVISION_2, cap_net_bind_service permitted): the kernel checks the format. */
const CAP_VALUE = Buffer.from([0, 0, 0, 2, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/**
 * Counts the fops that get past md-cache; `hold` can delay one kind of fop until released (`answered`,
 * if given, is called once the child has answered a held fop, before its reply is delayed).
 */
class Probe extends Xlator {
  readonly counts = new Map<FopName, number>();
  hold: { fop: FopName; until: Promise<void>; answered?: () => void } | undefined;
  constructor(child: Xlator) {
    super({ name: "probe", type: "test/probe", options: {}, children: [child], log: silentLogger(), graph: new Map() });
    for (const fop of FOP_NAMES) {
      (this as unknown as Record<string, unknown>)[fop] = async (...args: unknown[]) => {
        this.counts.set(fop, (this.counts.get(fop) ?? 0) + 1);
        const h = this.hold;
        const f = (child[fop] as (...a: unknown[]) => Promise<unknown>).bind(child);
        if (h && h.fop === fop) {
          // the child answers now; the reply reaches md-cache only when released (a slow network)
          const res = await f(...args);
          h.answered?.();
          await h.until;
          return res;
        }
        return f(...args);
      };
    }
  }
  n(fop: FopName): number {
    return this.counts.get(fop) ?? 0;
  }
  total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }
}

function defaults(): MdCacheOptions {
  const o: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(mdCacheSchema.properties as Record<string, { default?: unknown }>)) o[k] = p.default;
  return o as unknown as MdCacheOptions;
}

interface Setup {
  posix: Posix;
  /** A fake clock (ms) shared by the caches. */
  clock: { now: number };
  client(options?: Partial<MdCacheOptions>): { md: MdCache; probe: Probe };
}

function setup(t: TestContext): Setup {
  const base = mkdtempSync(join(tmpdir(), "gha-mdc-"));
  const posix = new Posix({ name: "brick", type: "storage/posix", options: { directory: join(base, "brick"), fsync: false }, children: [], log: silentLogger(), graph: new Map() });
  t.after(async () => {
    await posix.stop();
    rmSync(base, { recursive: true, force: true });
  });
  const clock = { now: 1000 };
  return {
    posix,
    clock,
    client: (options = {}) => {
      const probe = new Probe(posix);
      const md = new MdCache(
        { name: "md", type: "performance/md-cache", options: { ...defaults(), ...options }, children: [probe], log: silentLogger(), graph: new Map() },
        () => clock.now,
      );
      return { md, probe };
    },
  };
}

async function mkfile(top: Xlator, path: string, content = ""): Promise<void> {
  const fd = new Fd(path, FS.O_RDWR);
  await top.create(ctx, { path }, FS.O_RDWR | FS.O_CREAT, 0o644, fd);
  if (content) await top.write(ctx, fd, Buffer.from(content), 0);
  await top.flush(ctx, fd);
  await top.release(ctx, fd);
}

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    assert.ok(err instanceof FopError, `expected a FopError, got ${String(err)}`);
    return err.code;
  }
}

async function listPlus(top: Xlator, dir: string): Promise<string[]> {
  const fd = new Fd(dir, FS.O_RDONLY, true);
  await top.opendir(ctx, { path: dir }, fd);
  const entries = await top.readdir(ctx, fd, 0, true);
  await top.releasedir(ctx, fd);
  return entries.map((e) => e.name);
}

test("a second lookup of a path is answered from the cache", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client();
  await mkfile(s.posix, "/f", "abc");
  const first = await md.lookup(ctx, { path: "/f" });
  const second = await md.lookup(ctx, { path: "/f" });
  assert.equal(probe.n("lookup"), 1);
  assert.deepEqual(second.stat, first.stat);
  assert.equal((await md.stat(ctx, { path: "/f" })).size, 3);
  assert.equal(probe.n("lookup"), 1, "stat is served from the same entry");
});

test("readdirplus primes attributes and xattr absence of every entry: ls -l costs no more fops", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client();
  await s.posix.mkdir(ctx, { path: "/d" }, 0o755);
  for (let i = 0; i < 20; i++) await mkfile(s.posix, `/d/f${i}`, "x".repeat(i));
  await listPlus(md, "/d");
  const before = probe.total();
  for (let i = 0; i < 20; i++) {
    assert.equal((await md.lookup(ctx, { path: `/d/f${i}` })).stat.size, i);
    assert.equal(await errnoOf(md.getxattr(ctx, { path: `/d/f${i}` }, "security.selinux")), "ENODATA");
    assert.equal(await errnoOf(md.getxattr(ctx, { path: `/d/f${i}` }, "system.posix_acl_access")), "ENODATA");
  }
  assert.equal(probe.total(), before, "nothing went below md-cache");
  const dump = md.dump() as { statHits: number; xattrNegativeHits: number; statHitRate: number };
  assert.equal(dump.xattrNegativeHits, 40);
  assert.ok(dump.statHits >= 20);
});

test("security.capability is not fetched with listings: a listed file's first write probe fetches it, later ones are cached", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client();
  await s.posix.mkdir(ctx, { path: "/d" }, 0o755);
  for (let i = 0; i < 10; i++) await mkfile(s.posix, `/d/f${i}`);
  await s.posix.setxattr(ctx, { path: "/d/f3" }, "security.capability", CAP_VALUE, 0);
  const asked: unknown[] = [];
  const readdir = probe.readdir.bind(probe);
  probe.readdir = (c, fd, offset, withStat, xdata) => (asked.push(xdata?.[XDATA.wantXattrs]), readdir(c, fd, offset, withStat, xdata));
  await listPlus(md, "/d");
  assert.ok(asked.length > 0 && asked.every((names) => Array.isArray(names) && !names.includes("security.capability") && names.includes("security.selinux")), JSON.stringify(asked));
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < 10; i++) {
      const got = await md.getxattr(ctx, { path: `/d/f${i}` }, "security.capability").catch((e: FopError) => e.code);
      assert.deepEqual(got, i === 3 ? CAP_VALUE : "ENODATA", `f${i}, pass ${pass}`);
    }
    assert.equal(probe.n("getxattr"), 10, "once per file, then from the cache");
  }
});

test("a cached xattr value is served, and setxattr/removexattr through this client drop it", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client({ "xattr-cache-list": "user.meta.*" });
  await mkfile(s.posix, "/f");
  await md.lookup(ctx, { path: "/f" });
  assert.equal(await errnoOf(md.getxattr(ctx, { path: "/f" }, "user.meta.a")), "ENODATA");
  assert.equal(await errnoOf(md.getxattr(ctx, { path: "/f" }, "user.meta.a")), "ENODATA");
  assert.equal(probe.n("getxattr"), 1, "the absence is cached");
  await md.setxattr(ctx, { path: "/f" }, "user.meta.a", Buffer.from("v1"), 0);
  assert.equal((await md.getxattr(ctx, { path: "/f" }, "user.meta.a")).toString(), "v1");
  assert.equal((await md.getxattr(ctx, { path: "/f" }, "user.meta.a")).toString(), "v1");
  assert.equal(probe.n("getxattr"), 2, "fetched once after the change, then cached");
  await md.removexattr(ctx, { path: "/f" }, "user.meta.a");
  assert.equal(await errnoOf(md.getxattr(ctx, { path: "/f" }, "user.meta.a")), "ENODATA");
  // names outside the policy always go down
  await md.getxattr(ctx, { path: "/f" }, "user.other").catch(() => undefined);
  await md.getxattr(ctx, { path: "/f" }, "user.other").catch(() => undefined);
  assert.equal(probe.n("getxattr"), 5);
});

test("hard links: a write through one name shows at once through the other (keyed by gfid)", async (t) => {
  const s = setup(t);
  const { md } = s.client({ timeout: 600 });
  await mkfile(md, "/a", "shared");
  await md.link(ctx, { path: "/a" }, { path: "/b" });
  assert.equal((await md.lookup(ctx, { path: "/b" })).stat.size, 6);
  assert.equal((await md.lookup(ctx, { path: "/a" })).stat.nlink, 2, "link updated nlink for the old name too");
  const fd = new Fd("/a", FS.O_RDWR);
  await md.open(ctx, { path: "/a" }, FS.O_RDWR, fd);
  await md.write(ctx, fd, Buffer.from("+more"), 6);
  assert.equal((await md.lookup(ctx, { path: "/b" })).stat.size, 11);
  assert.equal((await md.fstat(ctx, fd)).size, 11);
  await md.release(ctx, fd);
  await md.setattr(ctx, { path: "/b" }, { mode: 0o600 });
  assert.equal((await md.lookup(ctx, { path: "/a" })).stat.mode & 0o7777, 0o600);
  await md.setattr(ctx, { path: "/a" }, { size: 2 });
  assert.equal((await md.stat(ctx, { path: "/b" })).size, 2);
  await md.unlink(ctx, { path: "/a" });
  assert.equal((await md.lookup(ctx, { path: "/b" })).stat.nlink, 1);
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/a" })), "ENOENT");
});

test("create, mkdir, unlink and rename update names and the parent directory", async (t) => {
  const s = setup(t);
  const { md } = s.client({ timeout: 600 });
  await md.mkdir(ctx, { path: "/d" }, 0o755);
  const dirBefore = (await md.lookup(ctx, { path: "/d" })).stat;
  s.clock.now += 5; // mtimes move on the disk's clock; just make sure time passes
  await new Promise((r) => setTimeout(r, 15));
  await mkfile(md, "/d/x", "1");
  const dirAfter = (await md.lookup(ctx, { path: "/d" })).stat;
  assert.ok(dirAfter.mtimeMs > dirBefore.mtimeMs, "the parent's cached mtime was dropped by create");
  await md.mkdir(ctx, { path: "/d/sub" }, 0o755);
  assert.equal((await md.lookup(ctx, { path: "/d" })).stat.nlink, dirBefore.nlink + 1);
  await mkfile(md, "/d/sub/inner", "in");
  const inner = (await md.lookup(ctx, { path: "/d/sub/inner" })).stat;
  await md.rename(ctx, { path: "/d/sub" }, { path: "/d/moved" });
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/d/sub/inner" })), "ENOENT", "names under a renamed directory are forgotten");
  assert.equal((await md.lookup(ctx, { path: "/d/moved/inner" })).stat.gfid, inner.gfid);
  await mkfile(md, "/d/y", "22");
  const y = (await md.lookup(ctx, { path: "/d/y" })).stat;
  await md.rename(ctx, { path: "/d/y" }, { path: "/d/x" });
  assert.equal((await md.lookup(ctx, { path: "/d/x" })).stat.gfid, y.gfid, "a replaced name names the moved file");
  assert.equal(await errnoOf(md.stat(ctx, { path: "/d/y" })), "ENOENT");
  await md.unlink(ctx, { path: "/d/x" });
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/d/x" })), "ENOENT");
});

test("the directory's attributes after a create, mknod, mkdir, symlink, unlink or rmdir come with its answer: no fop to ask for them", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client({ timeout: 600 });
  await md.mkdir(ctx, { path: "/d" }, 0o755);
  const brickDir = join(s.posix.options.directory as string, "d");
  const onDisk = () => {
    const st = statSync(brickDir);
    return { mtimeMs: st.mtimeMs, nlink: st.nlink, size: st.size };
  };
  const cached = async () => {
    const before = probe.n("lookup");
    const st = (await md.lookup(ctx, { path: "/d" })).stat;
    assert.equal(probe.n("lookup"), before, "answered from the cache");
    return { mtimeMs: st.mtimeMs, nlink: st.nlink, size: st.size };
  };
  const fd = new Fd("/d/f", FS.O_RDWR);
  const made = await md.create(ctx, { path: "/d/f" }, FS.O_RDWR | FS.O_CREAT, 0o644, fd);
  assert.equal(made.postparent, undefined, "the directory's attributes are md-cache's, not handed up");
  await md.release(ctx, fd);
  assert.deepEqual(await cached(), onDisk());
  await md.mkdir(ctx, { path: "/d/sub" }, 0o755);
  assert.deepEqual(await cached(), onDisk(), "nlink counts the new subdirectory");
  await md.symlink(ctx, "f", { path: "/d/l" });
  assert.deepEqual(await cached(), onDisk());
  await md.mknod(ctx, { path: "/d/p" }, FS.S_IFIFO | 0o644, 0);
  assert.deepEqual(await cached(), onDisk());
  await md.unlink(ctx, { path: "/d/p" });
  assert.deepEqual(await cached(), onDisk(), "unlink too");
  await md.rmdir(ctx, { path: "/d/sub" });
  assert.deepEqual(await cached(), onDisk(), "rmdir too: nlink one fewer");
  // the root's too
  await mkfile(md, "/top");
  const root = (await md.lookup(ctx, { path: "/" })).stat;
  assert.equal(root.mtimeMs, statSync(s.posix.options.directory as string).mtimeMs);
});

test("creates side by side in one directory: the directory's attributes are asked for again, not taken from either", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client({ timeout: 600 });
  await md.mkdir(ctx, { path: "/d" }, 0o755);
  let release!: () => void;
  let answered = 0;
  let bothAnswered!: () => void;
  const answers = new Promise<void>((r) => (bothAnswered = r));
  probe.hold = { fop: "create", until: new Promise<void>((r) => (release = r)), answered: () => ++answered === 2 && bothAnswered() };
  const fds = [new Fd("/d/a", FS.O_RDWR), new Fd("/d/b", FS.O_RDWR)];
  const both = Promise.all(fds.map((fd) => md.create(ctx, { path: fd.path }, FS.O_RDWR | FS.O_CREAT, 0o644, fd)));
  await answers; // (both made on disk, neither answer delivered yet)
  release();
  await both;
  const before = probe.n("lookup");
  const dir = (await md.lookup(ctx, { path: "/d" })).stat;
  assert.equal(probe.n("lookup"), before + 1, "the second answer's attributes may not be the latest: not kept");
  assert.equal(dir.mtimeMs, statSync(join(s.posix.options.directory as string, "d")).mtimeMs);
});

test("another client's change is served stale until the timeout, then fresh", async (t) => {
  const s = setup(t);
  const a = s.client({ timeout: 1 });
  const b = s.client({ timeout: 1 });
  await mkfile(a.md, "/f", "one");
  assert.equal((await a.md.lookup(ctx, { path: "/f" })).stat.size, 3);
  const fd = new Fd("/f", FS.O_RDWR);
  await b.md.open(ctx, { path: "/f" }, FS.O_RDWR, fd);
  await b.md.write(ctx, fd, Buffer.from("-two"), 3);
  await b.md.release(ctx, fd);
  assert.equal((await a.md.lookup(ctx, { path: "/f" })).stat.size, 3, "within the timeout: cached");
  s.clock.now += 1001;
  assert.equal((await a.md.lookup(ctx, { path: "/f" })).stat.size, 7, "after it: fetched again");
  await b.md.unlink(ctx, { path: "/f" });
  s.clock.now += 1001;
  assert.equal(await errnoOf(a.md.lookup(ctx, { path: "/f" })), "ENOENT");
});

test("a lookup reply that left before a local write does not re-cache the old size", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client({ timeout: 600 });
  await mkfile(md, "/f", "abc");
  const fd = new Fd("/f", FS.O_RDWR);
  await md.open(ctx, { path: "/f" }, FS.O_RDWR, fd);
  md.cache.clear();
  let release!: () => void;
  let answered!: () => void;
  const answer = new Promise<void>((r) => (answered = r));
  probe.hold = { fop: "lookup", until: new Promise<void>((r) => (release = r)), answered };
  const slow = md.lookup(ctx, { path: "/f" }); // answered by posix now (size 3), delivered later
  await answer; // posix has answered (before the write below), however long the disk took
  probe.hold = undefined;
  await md.write(ctx, fd, Buffer.from("defg"), 3);
  release();
  assert.equal((await slow).stat.size, 3);
  assert.equal((await md.lookup(ctx, { path: "/f" })).stat.size, 7);
  assert.ok((md.dump() as { staleFillsDropped: number }).staleFillsDropped >= 1);
  await md.release(ctx, fd);
});

test("the cache holds at most lru-limit files and names; dump shows counts and hit rates", async (t) => {
  const s = setup(t);
  const { md } = s.client({ "lru-limit": 16 });
  for (let i = 0; i < 50; i++) await mkfile(s.posix, `/f${i}`);
  for (let i = 0; i < 50; i++) await md.lookup(ctx, { path: `/f${i}` });
  await md.lookup(ctx, { path: "/f49" });
  const d = md.dump() as { inodes: number; names: number; evictions: number; statHits: number; statHitRate: number };
  assert.ok(d.inodes <= 16 && d.names <= 16, JSON.stringify(d));
  assert.ok(d.evictions >= 34);
  assert.equal(d.statHits, 1);
  assert.ok(d.statHitRate > 0 && d.statHitRate < 1);
});

test("timeout 0 caches nothing; reconfigure applies timeout live", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client({ timeout: 0 });
  await mkfile(s.posix, "/f");
  await md.lookup(ctx, { path: "/f" });
  await md.lookup(ctx, { path: "/f" });
  assert.equal(probe.n("lookup"), 2);
  assert.deepEqual(md.reconfigure({ ...md.options, timeout: 2 }).applied, ["timeout"]);
  await md.lookup(ctx, { path: "/f" });
  await md.lookup(ctx, { path: "/f" });
  assert.equal(probe.n("lookup"), 3);
});

test("a server going away or coming back empties the cache", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client();
  await mkfile(s.posix, "/f");
  await md.lookup(ctx, { path: "/f" });
  md.notify("child-down", probe);
  await md.lookup(ctx, { path: "/f" });
  assert.equal(probe.n("lookup"), 2);
});

test("the client's mount stack puts md-cache on top of the volfile's graph", (t) => {
  // storage/posix prepares its directory at init, even in a graph that is never started.
  const dir = mkdtempSync(join(tmpdir(), "gha-mdc-never-started-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const text = `volume ds\ntype storage/posix\noption directory ${dir}\nend-volume\n`;
  const v = checkVolfile(parseVolfile(text, "client.vol"));
  const stacked = withMdCache(v, 2);
  assert.equal(stacked.top, "ds-md-cache");
  const graph = Graph.build(stacked, { log: silentLogger() });
  assert.equal(graph.top.type, "performance/md-cache");
  assert.equal(graph.top.children[0]!.name, "ds");
  assert.equal(graph.top.options.timeout, 2);
  assert.equal(withMdCache(v, 0), v, "0 disables it");
  assert.equal(withMdCache(stacked, 5), stacked, "a volfile with its own md-cache is left alone");
  // reloading the same volfile through the same stack keeps the shape: options apply live
  assert.deepEqual(graph.reconfigure(withMdCache(v, 3)), { applied: ["ds-md-cache:timeout"], needsRestart: [] });
  // ACLs and labels the mount refuses itself are not fetched for the cache either
  const options = (x: { acl: boolean; selinux: boolean }) =>
    withMountStack(v, { mdCacheTimeout: 1, quickRead: false, xattrs: x }).volumes.find((vol) => vol.type === "performance/md-cache")!.options;
  assert.equal(options({ acl: false, selinux: false })["cache-posix-acl"], false);
  assert.equal(options({ acl: false, selinux: false })["cache-selinux"], false);
  assert.equal(options({ acl: true, selinux: false })["cache-posix-acl"], true);
  assert.equal(options({ acl: false, selinux: true })["cache-selinux"], true);
  assert.equal(options({ acl: false, selinux: false })["cache-capability-xattrs"], true, "the kernel's per-write probe stays cached");
});

test("a file created through this client answers the kernel's per-write capability probe without a fop", async (t) => {
  const s = setup(t);
  const { md, probe } = s.client();
  await mkfile(md, "/new", "data");
  assert.equal(await errnoOf(md.getxattr(ctx, { path: "/new" }, "security.capability")), "ENODATA");
  assert.equal(probe.n("getxattr"), 0);
  // not assumed for the xattrs a new file may inherit or be labelled with
  await md.getxattr(ctx, { path: "/new" }, "system.posix_acl_access").catch(() => undefined);
  assert.equal(probe.n("getxattr"), 1);
});

test("every attribute md-cache hands up carries the gfid's inode number, whichever reply it came from", async (t) => {
  const s = setup(t);
  const { md } = s.client();
  await md.mkdir(ctx, { path: "/d" }, 0o755);
  const fd = new Fd("/d/f", FS.O_RDWR);
  const created = await md.create(ctx, { path: "/d/f" }, FS.O_RDWR | FS.O_CREAT, 0o644, fd);
  await md.release(ctx, fd);
  assert.equal(created.ino, inoFromGfid(created.gfid));
  assert.notEqual(created.ino, (await s.posix.stat(ctx, { path: "/d/f" })).ino, "differs from the brick's own number");
  md.cache.clear();
  const fdDir = new Fd("/d", FS.O_RDONLY, true);
  await md.opendir(ctx, { path: "/d" }, fdDir);
  const listed = (await md.readdir(ctx, fdDir, 0, true)).find((e) => e.name === "f")!;
  await md.releasedir(ctx, fdDir);
  assert.equal(listed.stat!.ino, created.ino);
  md.cache.clear();
  assert.equal((await md.lookup(ctx, { path: "/d/f" })).stat.ino, created.ino);
  assert.equal((await md.lookup(ctx, { path: "/" })).stat.ino, 1, "the root is inode 1");
});

/** A client whose servers report others' changes (as protocol/client says once a server agreed to upcalls). */
function upcallClient(s: Setup, options: Partial<MdCacheOptions> = {}): { md: MdCache; probe: Probe } {
  const c = s.client(options);
  c.probe.invalidationsDelivered = () => true;
  c.md.notify("child-up", c.probe);
  return c;
}

test("with upcalls, entries are served for invalidation-timeout, and an upcall drops what it names", async (t) => {
  const s = setup(t);
  const { md, probe } = upcallClient(s, { timeout: 1, "invalidation-timeout": 60 });
  assert.equal(md.invalidationInterest(), 60, "asks the servers for upcalls");
  await mkfile(s.posix, "/f", "abc");
  await mkfile(s.posix, "/g", "x");
  const f = await md.lookup(ctx, { path: "/f" });
  await md.lookup(ctx, { path: "/g" });
  s.clock.now += 30_000;
  await md.lookup(ctx, { path: "/f" });
  assert.equal(probe.n("lookup"), 2, "still cached after 30 s");
  md.othersChanged({ gfids: [f.stat.gfid], paths: [], entries: [] }, probe);
  await md.lookup(ctx, { path: "/f" });
  await md.lookup(ctx, { path: "/g" });
  assert.equal(probe.n("lookup"), 3, "only the file named was dropped");
  md.othersChanged({ gfids: [], paths: [], entries: ["/g"] }, probe);
  await md.lookup(ctx, { path: "/g" });
  assert.equal(probe.n("lookup"), 4, "a name removed or renamed: looked up again");
  // a lost connection: back to the short timeout, everything dropped
  probe.invalidationsDelivered = () => false;
  md.notify("child-down", probe);
  await md.lookup(ctx, { path: "/f" });
  s.clock.now += 2000;
  await md.lookup(ctx, { path: "/f" });
  assert.equal(probe.n("lookup"), 6);
  assert.equal(s.client({ "cache-invalidation": false }).md.invalidationInterest(), 0);
});

test("a reply in flight when an upcall arrives is not cached (it may predate the change)", async (t) => {
  const s = setup(t);
  const { md, probe } = upcallClient(s);
  await mkfile(s.posix, "/f", "abc");
  let release!: () => void;
  let answered!: () => void;
  const answer = new Promise<void>((r) => (answered = r));
  probe.hold = { fop: "lookup", until: new Promise((r) => (release = r)), answered };
  const pending = md.lookup(ctx, { path: "/f" });
  await answer; // (the reply is on its way up)
  md.othersChanged({ gfids: ["00000000-0000-0000-0000-00000000beef"], paths: [], entries: [] }, probe);
  release();
  await pending;
  probe.hold = undefined;
  await md.lookup(ctx, { path: "/f" });
  assert.equal(probe.n("lookup"), 2, "the raced reply was not kept");
});

test("with upcalls, closing a written file fetches its attributes once: the stats after it are cached", async (t) => {
  const s = setup(t);
  const { md, probe } = upcallClient(s);
  await mkfile(md, "/w", "hello");
  assert.equal(probe.n("fstat"), 1, "one fstat at release");
  const st = await md.stat(ctx, { path: "/w" });
  assert.equal(st.size, 5);
  assert.equal(probe.n("lookup"), 0, "served from what the release fetched");
  // without upcalls: nothing fetched at release (entries would expire within a second anyway)
  const plain = s.client();
  await mkfile(plain.md, "/v", "hi");
  assert.equal(plain.probe.n("fstat"), 0);
});

test("with upcalls, a name found missing is remembered until a change creates it (here or reported)", async (t) => {
  const s = setup(t);
  const { md, probe } = upcallClient(s);
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/n" })), "ENOENT");
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/n" })), "ENOENT");
  assert.equal(probe.n("lookup"), 1, "the second answered from the cache");
  await mkfile(md, "/n", "now"); // a local create replaces it
  assert.equal((await md.lookup(ctx, { path: "/n" })).stat.size, 3);
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/m" })), "ENOENT");
  await mkfile(s.posix, "/m", "theirs"); // another client's create...
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/m" })), "ENOENT", "...unknown until reported");
  md.othersChanged({ gfids: [], paths: ["/"], entries: ["/m"] }, probe);
  assert.equal((await md.lookup(ctx, { path: "/m" })).stat.size, 6);
  // without upcalls nothing is remembered
  const plain = s.client();
  await errnoOf(plain.md.lookup(ctx, { path: "/x" }));
  await errnoOf(plain.md.lookup(ctx, { path: "/x" }));
  assert.equal(plain.probe.n("lookup"), 2);
});

test("with upcalls, a directory made here knows all its names: a lookup of any other is ENOENT without a fop", async (t) => {
  const s = setup(t);
  const { md, probe } = upcallClient(s);
  await md.mkdir(ctx, { path: "/new" }, 0o755);
  const lookups = probe.n("lookup");
  for (let i = 0; i < 5; i++) {
    assert.equal(await errnoOf(md.lookup(ctx, { path: `/new/f${i}` })), "ENOENT"); // what the kernel asks before each create
    await mkfile(md, `/new/f${i}`, "x");
  }
  await md.mkdir(ctx, { path: "/new/sub" }, 0o755);
  await md.symlink(ctx, "f0", { path: "/new/l" });
  assert.equal(probe.n("lookup"), lookups, "no lookup went down");
  // names made here are found; removed ones are gone; renamed ones moved
  assert.equal((await md.lookup(ctx, { path: "/new/f1" })).stat.size, 1);
  await md.unlink(ctx, { path: "/new/f2" });
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/new/f2" })), "ENOENT");
  await md.rename(ctx, { path: "/new/f3" }, { path: "/new/g3" });
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/new/f3" })), "ENOENT");
  assert.equal((await md.lookup(ctx, { path: "/new/g3" })).stat.size, 1);
  // a create that fails (here: the name exists on the brick, made behind md-cache's back) ends what is known
  await mkfile(s.posix, "/new/theirs", "abc");
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/new/theirs" })), "ENOENT", "(unknown to this client: not reported)");
  const fd = new Fd("/new/theirs", FS.O_RDWR);
  assert.equal(await errnoOf(md.create(ctx, { path: "/new/theirs" }, FS.O_RDWR | FS.O_CREAT | FS.O_EXCL, 0o644, fd)), "EEXIST");
  assert.equal((await md.lookup(ctx, { path: "/new/theirs" })).stat.size, 3);
  // another client's create, reported, ends it as well
  await md.mkdir(ctx, { path: "/other" }, 0o755);
  assert.equal(await errnoOf(md.lookup(ctx, { path: "/other/x" })), "ENOENT");
  await mkfile(s.posix, "/other/x", "xy");
  md.othersChanged({ gfids: [], paths: ["/other"], entries: ["/other/x"] }, probe);
  assert.equal((await md.lookup(ctx, { path: "/other/x" })).stat.size, 2);
  // so does a renamed parent: nothing is known under the new name
  await md.mkdir(ctx, { path: "/p" }, 0o755);
  await md.mkdir(ctx, { path: "/p/q" }, 0o755);
  await md.rename(ctx, { path: "/p" }, { path: "/p2" });
  await mkfile(s.posix, "/p2/q/z", "z");
  assert.equal((await md.lookup(ctx, { path: "/p2/q/z" })).stat.size, 1);
  // without upcalls a new directory is not known
  const plain = s.client();
  await plain.md.mkdir(ctx, { path: "/plain" }, 0o755);
  await errnoOf(plain.md.lookup(ctx, { path: "/plain/a" }));
  assert.equal(plain.probe.n("lookup"), 1);
});

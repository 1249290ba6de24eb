// performance/md-cache as the glusterfs CLI stacks it by default, in the seed topology (two glusterfsd
// replicating each other on 127.0.0.2/.3, ports 24340): the POSIX suite still agrees with the local
// disk through it, hard links stay fresh through every name, a change made through a client of the
// other server shows at once (the servers' upcalls) although entries are kept for a minute, and,
// with cache-invalidation off, within md-cache's timeout.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FaultCluster, seedClientVolfile, waitFor } from "../helpers/cluster";
import { mountVolfile, statedumpOf, type Mounted } from "../helpers/mount";
import { stopAllServers } from "../helpers/servers";
import { posixSuite } from "../helpers/posix-suite";

const PORT = 24340;
/** Long enough that freshness can only come from invalidation, not from expiry. */
const LONG_TIMEOUT = 30;

let cluster: FaultCluster | undefined;
/** The CLI's default stack (md-cache, 1 s). */
let main: Mounted | undefined;
/** A second client, whose own md-cache keeps entries for LONG_TIMEOUT seconds and asks for no upcalls. */
let longCache: Mounted | undefined;
/** A third client, of the other server (node2), that changes files behind the others' backs. */
let other: Mounted | undefined;

const mount = (args: string[] = [], hosts?: string) => mountVolfile(seedClientVolfile({ port: PORT, timeout: 3, hosts }), { args });
/** The seed's client volfile with an md-cache of its own on top (the CLI then stacks none). */
const withOwnMdCache = (options: string[]) => `${seedClientVolfile({ port: PORT, timeout: 3 })}
volume md-cache
type performance/md-cache
${options.map((o) => `option ${o}`).join("\n")}
subvolumes readahead
end-volume
`;

before(async () => {
  cluster = await FaultCluster.start({ port: PORT, mount: false });
  main = await mount();
  longCache = await mountVolfile(withOwnMdCache([`timeout ${LONG_TIMEOUT}`, "cache-invalidation off"]));
  other = await mount(["--md-cache-timeout", "0"], "127.0.0.3");
  // AFR writes need both replicas connected
  await waitFor("a writable mount", () => {
    fs.writeFileSync(join(main!.mountpoint, ".probe"), "x");
    fs.unlinkSync(join(main!.mountpoint, ".probe"));
    return true;
  }, 20000);
});

after(async () => {
  for (const m of [main, longCache, other]) await m?.unmount().catch(() => undefined);
  await cluster?.close();
  await stopAllServers(); // and the cluster's temp dirs
});

posixSuite("seed topology through the default md-cache", () => main!.mountpoint);

describe("md-cache on a real mount", () => {
  it("hard links: a change through one name shows at once through the other", () => {
    const d = fs.mkdtempSync(join(longCache!.mountpoint, "hl-"));
    const a = join(d, "a");
    const b = join(d, "b");
    fs.writeFileSync(a, "shared");
    fs.linkSync(a, b);
    assert.equal(fs.statSync(b).size, 6);
    assert.equal(fs.statSync(a).nlink, 2);
    fs.appendFileSync(a, "+more");
    assert.equal(fs.statSync(b).size, 11);
    assert.equal(fs.readFileSync(b, "utf8"), "shared+more");
    fs.chmodSync(a, 0o600);
    assert.equal(fs.statSync(b).mode & 0o777, 0o600);
    fs.truncateSync(b, 3);
    assert.equal(fs.statSync(a).size, 3);
    fs.unlinkSync(b);
    assert.equal(fs.statSync(a).nlink, 1);
  });

  it("without upcalls, a change through another client is served from the cache until its timeout", async () => {
    const name = `remote-${process.pid}`;
    fs.writeFileSync(join(other!.mountpoint, name), "one");
    const p = join(longCache!.mountpoint, name);
    assert.equal(fs.statSync(p).size, 3);
    fs.appendFileSync(join(other!.mountpoint, name), "-two");
    await new Promise((r) => setTimeout(r, 1200)); // past the kernel's own 1 s and the default md-cache's
    assert.equal(fs.statSync(p).size, 3, "served from md-cache");
    // ...while a change through the long-timeout mount itself is seen at once
    fs.appendFileSync(p, "!");
    assert.equal(fs.statSync(p).size, 8);
    assert.equal(fs.readFileSync(join(other!.mountpoint, name), "utf8"), "one-two!");
  });

  it("with upcalls (the default), entries are kept for a minute and every kind of change through the other server shows at once", async () => {
    const d = `inv-${process.pid}`;
    const mine = (...p: string[]) => join(main!.mountpoint, d, ...p);
    const theirs = (...p: string[]) => join(other!.mountpoint, d, ...p);
    fs.mkdirSync(theirs());
    fs.writeFileSync(theirs("f"), "one");
    fs.mkdirSync(theirs("sub"));
    fs.writeFileSync(theirs("sub", "x"), "x");
    // look at everything, then let the kernel's 1 s and the old 1 s timeout pass: only md-cache answers now
    assert.equal(fs.statSync(mine("f")).size, 3);
    assert.equal(fs.readFileSync(mine("f"), "utf8"), "one"); // quick-read keeps it now
    assert.equal(fs.statSync(mine("sub", "x")).size, 1);
    assert.throws(() => fs.statSync(mine("new")), /ENOENT/);
    await new Promise((r) => setTimeout(r, 1300));
    const before = await mdCacheStats(main!);
    for (let i = 0; i < 20; i++) assert.equal(fs.statSync(mine("f")).size, 3);
    const cached = await mdCacheStats(main!);
    assert.equal(cached.statMisses - before.statMisses, 0, "still cached after 1.3 s");
    // The first stat after the kernel's copy went (its 1 s, or an invalidation) reaches md-cache; the kernel answers the rest.
    assert.ok(cached.statHits - before.statHits >= 1);
    const within = async (what: string, seen: () => boolean) => {
      const t0 = Date.now();
      await waitFor(what, () => {
        try {
          return seen();
        } catch {
          return false;
        }
      }, 5000, 20);
      const ms = Date.now() - t0;
      assert.ok(ms < 2500, `${what}: took ${ms} ms (the kernel and md-cache keep them up to 60 s: only the servers' reports can make it this fast)`);
    };
    fs.appendFileSync(theirs("f"), "-two");
    await within("the append", () => fs.statSync(mine("f")).size === 7 && fs.readFileSync(mine("f"), "utf8") === "one-two");
    fs.writeFileSync(theirs("f"), "ONE-TWO"); // same size, other bytes: only the content tells
    await within("the rewrite", () => fs.readFileSync(mine("f"), "utf8") === "ONE-TWO");
    fs.chmodSync(theirs("f"), 0o600);
    await within("the chmod", () => (fs.statSync(mine("f")).mode & 0o777) === 0o600);
    fs.truncateSync(theirs("f"), 2);
    await within("the truncate", () => fs.statSync(mine("f")).size === 2 && fs.readFileSync(mine("f"), "utf8") === "ON");
    fs.writeFileSync(theirs("new"), "new!");
    await within("the create", () => fs.statSync(mine("new")).size === 4);
    fs.linkSync(theirs("new"), theirs("new-link"));
    await within("the hard link", () => fs.statSync(mine("new")).nlink === 2);
    fs.unlinkSync(theirs("new-link"));
    await within("the unlink", () => !fs.existsSync(mine("new-link")) && fs.statSync(mine("new")).nlink === 1);
    fs.renameSync(theirs("sub"), theirs("moved"));
    await within("the directory rename", () => !fs.existsSync(mine("sub", "x")) && fs.statSync(mine("moved", "x")).size === 1);
    fs.rmSync(theirs(), { recursive: true });
    await within("the removal", () => !fs.existsSync(mine()));
  });

  it("a file open here keeps its own attributes when another client renames another file over its name, and fchmod changes it, not the other", async () => {
    const d = `over-${process.pid}`;
    const mine = (...p: string[]) => join(main!.mountpoint, d, ...p);
    const theirs = (...p: string[]) => join(other!.mountpoint, d, ...p);
    fs.mkdirSync(mine());
    fs.writeFileSync(mine("n"), "short");
    assert.equal(fs.readFileSync(mine("n"), "utf8"), "short");
    // quick-read answers this read-only open itself (it keeps the file's content): the descriptor
    // reads from memory, and cannot be opened on the servers once the name is another file's
    const deferredBefore = findCounter(await statedumpOf(main!), "opensDeferred");
    const fd = fs.openSync(mine("n"), "r");
    assert.equal(findCounter(await statedumpOf(main!), "opensDeferred"), deferredBefore + 1, "the open was answered by quick-read");
    const writable = fs.openSync(mine("n"), "r+");
    try {
      assert.equal(fs.fstatSync(fd).size, 5);
      fs.writeFileSync(theirs("m"), "a much longer content");
      fs.chmodSync(theirs("m"), 0o644);
      fs.renameSync(theirs("m"), theirs("n"));
      // the name shows the other file here (the servers' report), and the kernel's 1 s for the open file's attributes passes
      await waitFor("the rename to show", () => fs.statSync(mine("n")).size === 21, 5000, 20);
      await new Promise((r) => setTimeout(r, 1200));
      assert.equal(fs.fstatSync(fd).size, 5, "fstat of the open file: its own size, not the other file's");
      assert.equal(fs.readFileSync(fd, "utf8"), "short", "and its own content, whole");
      assert.equal(fs.fstatSync(writable).size, 5);
      fs.fchmodSync(fd, 0o600); // (reaches the servers through the descriptor that did)
      assert.equal(fs.fstatSync(writable).mode & 0o777, 0o600);
      assert.equal(fs.statSync(theirs("n")).mode & 0o777, 0o644, "the other file's mode is untouched");
      assert.equal(fs.readFileSync(mine("n"), "utf8"), "a much longer content");
    } finally {
      fs.closeSync(fd);
      fs.closeSync(writable);
    }
  });

  it("with upcalls the kernel remembers a missing name (no request for the second look), and forgets it when another client creates it", async () => {
    const name = `absent-${process.pid}`;
    const mine = join(main!.mountpoint, name);
    assert.throws(() => fs.statSync(mine), /ENOENT/);
    const before = await bridgeLookups(main!);
    for (let i = 0; i < 20; i++) assert.throws(() => fs.statSync(mine), /ENOENT/);
    assert.equal(await bridgeLookups(main!) - before, 0, "answered by the kernel's negative entry");
    fs.writeFileSync(join(other!.mountpoint, name), "here");
    await waitFor("the name created through the other server", () => {
      try {
        return fs.readFileSync(mine, "utf8") === "here";
      } catch {
        return false;
      }
    }, 2500, 20);
  });

  it("with upcalls the kernel keeps names and attributes past its 1 s, and forgets them when another client changes the file", async () => {
    const d = `kept-${process.pid}`;
    fs.mkdirSync(join(main!.mountpoint, d));
    const mine = join(main!.mountpoint, d, "f");
    const theirs = join(other!.mountpoint, d, "f");
    fs.writeFileSync(theirs, "one");
    assert.equal(fs.statSync(mine).size, 3);
    // (a reply that crossed the create's report is kept 1 s only: look again once things are quiet)
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(fs.statSync(mine).size, 3);
    await new Promise((r) => setTimeout(r, 1500));
    const before = await bridgeOps(main!);
    for (let i = 0; i < 10; i++) assert.equal(fs.statSync(mine).size, 3);
    const after = await bridgeOps(main!);
    assert.equal((after.lookup ?? 0) - (before.lookup ?? 0), 0, "no LOOKUP 1.5 s later");
    assert.equal((after.getattr ?? 0) - (before.getattr ?? 0), 0, "no GETATTR 1.5 s later");
    fs.appendFileSync(theirs, "-two");
    await waitFor("the append through the other server", () => fs.statSync(mine).size === 7, 2500, 20);
    fs.unlinkSync(theirs);
    await waitFor("the unlink through the other server", () => !fs.existsSync(mine), 2500, 20);
  });

  it("a directory made here knows its names: a missing one costs no request, and another client's create in it shows at once", async () => {
    const d = join(main!.mountpoint, `known-${process.pid}`);
    fs.mkdirSync(d);
    const before = await mdCacheStats(main!);
    for (let i = 0; i < 10; i++) {
      assert.throws(() => fs.statSync(join(d, `x${i}`)), /ENOENT/);
      fs.writeFileSync(join(d, `f${i}`), "mine"); // the kernel looks the name up first
    }
    const after = await mdCacheStats(main!);
    assert.ok(after.knownAbsentHits - before.knownAbsentHits >= 20, `answered from the known directory: ${after.knownAbsentHits - before.knownAbsentHits}`);
    assert.equal(fs.readdirSync(join(other!.mountpoint, `known-${process.pid}`)).length, 10);
    fs.writeFileSync(join(other!.mountpoint, `known-${process.pid}`, "theirs"), "theirs");
    await waitFor("the name created through the other server", () => {
      try {
        return fs.readFileSync(join(d, "theirs"), "utf8") === "theirs";
      } catch {
        return false;
      }
    }, 2500, 20);
    assert.equal(fs.readdirSync(d).length, 11);
  });

  it("ls -l of a listed directory sends no per-file lookups or xattr probes to the servers", async () => {
    const d = join(main!.mountpoint, `ls-${process.pid}`);
    fs.mkdirSync(d);
    for (let i = 0; i < 50; i++) fs.writeFileSync(join(d, `f${i}`), "x");
    await new Promise((r) => setTimeout(r, 1100)); // what creating them cached has expired
    const before = await mdCacheStats(main!);
    const bridgeBefore = await bridgeOps(main!);
    const { spawnSync } = await import("node:child_process");
    const ls = spawnSync("ls", ["-l", d], { encoding: "utf8" });
    assert.equal(ls.status, 0, ls.stderr);
    assert.equal(ls.stdout.trim().split("\n").length, 51);
    const afterLs = await mdCacheStats(main!);
    const bridgeAfter = await bridgeOps(main!);
    const misses = afterLs.statMisses - before.statMisses;
    const xattrMisses = afterLs.xattrMisses - before.xattrMisses;
    assert.ok(misses <= 3, `stat misses during ls -l: ${misses}`);
    assert.ok(xattrMisses <= 3, `xattr misses during ls -l: ${xattrMisses}`);
    // Every file was looked at: its attributes answered by the kernel from the READDIRPLUS listing (kernel
    // engine) or by md-cache (libfuse engine). Its SELinux label and ACL were asked for once only: the mount
    // keeps neither (no --selinux, --acl) and says so, and ls stops asking on this device.
    const delta = (op: string) => (bridgeAfter[op] ?? 0) - (bridgeBefore[op] ?? 0);
    assert.ok(delta("readdirplus") >= 1 || afterLs.statHits - before.statHits >= 50,
      `answered: readdirplus ${delta("readdirplus")}, md-cache stats ${afterLs.statHits - before.statHits}`);
    assert.ok(delta("getxattr") <= 3, `xattr probes that reached the mount: ${delta("getxattr")}`);
  });
});

interface MdStats {
  knownAbsentHits: number;
  statHits: number;
  statMisses: number;
  xattrMisses: number;
  xattrHits: number;
  xattrNegativeHits: number;
}

/** The requests the mount's FUSE bridge has served, by op (statedump). */
async function bridgeOps(m: Mounted): Promise<Record<string, number>> {
  const dump = await statedumpOf(m);
  return (dump.fuse as { stats: { ops: Record<string, number> } }).stats.ops;
}

/** LOOKUPs the mount's FUSE bridge has served. */
async function bridgeLookups(m: Mounted): Promise<number> {
  return (await bridgeOps(m)).lookup ?? 0;
}

/** md-cache's counters from a statedump of the mount process (SIGUSR1). */
async function mdCacheStats(m: Mounted): Promise<MdStats> {
  const dump = await statedumpOf(m);
  const found = findMdCache(dump);
  assert.ok(found, `no md-cache in the statedump: ${JSON.stringify(dump).slice(0, 500)}`);
  return found;
}

/** A numeric counter of the statedump, wherever it is (one translator has it). */
function findCounter(v: unknown, name: string): number {
  if (!v || typeof v !== "object") return NaN;
  const o = v as Record<string, unknown>;
  if (typeof o[name] === "number") return o[name] as number;
  for (const x of Object.values(o)) {
    const n = findCounter(x, name);
    if (!Number.isNaN(n)) return n;
  }
  return NaN;
}

function findMdCache(v: unknown): MdStats | undefined {
  if (!v || typeof v !== "object") return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.statHits === "number" && typeof o.statMisses === "number") return o as unknown as MdStats;
  for (const x of Object.values(o)) {
    const f = findMdCache(x);
    if (f) return f;
  }
  return undefined;
}

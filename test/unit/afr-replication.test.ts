import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { fullHeal } from "../../runtime/heal/full-crawl";
import { formatHealInfo, healComplete, healInfo } from "../../runtime/heal/heal-info";
import { LinkHints } from "../../runtime/xlators/cluster/afr/link-hints";
import { constants as fsc } from "node:fs";
import { randomBytes } from "node:crypto";
import { FopError } from "../../runtime/core/errors";
import { Fd } from "../../runtime/core/types";
import { Afr } from "../../runtime/xlators/cluster/afr";
import { Xlator } from "../../runtime/core/xlator";
import { decodeCounters } from "../../runtime/xlators/cluster/afr/changelog";
import { silentLogger } from "../../runtime/core/log";
import { AFR_DEFAULTS, ROOT, Switch, readFile, replicaSet, waitFor, writeFile } from "./afr-harness";
import { withFailingDatasyncs } from "../helpers/failing-datasyncs";

async function changelogOf(rs: Awaited<ReturnType<typeof replicaSet>>, brick: number, path: string, blamed: number) {
  const key = `trusted.afr.${rs.afr.brickIds[blamed]}`;
  const r = await rs.bricks[brick]!.lookup(ROOT, { path }, { "want-xattrs": [key] });
  return decodeCounters(r.xattrs?.[key]);
}

test("create and write reach every brick with the same gfid", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/file.txt", "hello");
  const stats = await Promise.all(rs.bricks.map((b) => b.lookup(ROOT, { path: "/file.txt" })));
  assert.equal(stats[0]!.stat.gfid, stats[1]!.stat.gfid);
  for (const d of rs.dirs) assert.equal(readFileSync(`${d}/file.txt`, "utf8"), "hello");
  // The post-op of a clean batch runs just after the answer (delayed post-op): the marks clear shortly.
  assert.ok(await waitFor(async () => (await changelogOf(rs, 0, "/file.txt", 1)).every((n) => n === 0), 5000), "no blame left");
});

test("write with a brick down succeeds and the survivor blames it by brick id", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/f", "v1");
  rs.switches[0]!.setDown(true);
  await writeFile(rs.afr, "/f", "v2-longer");
  await writeFile(rs.afr, "/test.txt", "testing failure\n");
  assert.equal(existsSync(`${rs.dirs[0]}/test.txt`), false);
  assert.equal(readFileSync(`${rs.dirs[1]}/test.txt`, "utf8"), "testing failure\n");
  const [data] = await changelogOf(rs, 1, "/f", 0);
  assert.ok(data > 0, "node2 blames node1 for data");
  const [, , entry] = await changelogOf(rs, 1, "/", 0);
  assert.ok(entry > 0, "node2 blames node1 for root entries");
  const index = JSON.parse((await rs.bricks[1]!.getxattr(ROOT, { path: "/" }, "trusted.gha.index")).toString()) as { path: string }[];
  assert.deepEqual(index.map((e) => e.path).sort(), ["/", "/f", "/test.txt"]);
});

test("lookup heals a returning brick: data, new files, and the changelog is cleared", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/f", "old content");
  rs.switches[0]!.setDown(true);
  await writeFile(rs.afr, "/f", "NEW");
  await writeFile(rs.afr, "/test.txt", "testing failure\n");
  rs.switches[0]!.setDown(false);
  await rs.afr.lookup(ROOT, { path: "/f" });
  await rs.afr.lookup(ROOT, { path: "/test.txt" });
  await rs.afr.heals.drain();
  assert.equal(readFileSync(`${rs.dirs[0]}/f`, "utf8"), "NEW content");
  assert.equal(readFileSync(`${rs.dirs[0]}/test.txt`, "utf8"), "testing failure\n");
  assert.deepEqual(await changelogOf(rs, 1, "/f", 0), [0, 0, 0]);
  const gfids = await Promise.all(rs.bricks.map((b) => b.lookup(ROOT, { path: "/test.txt" })));
  assert.equal(gfids[0]!.stat.gfid, gfids[1]!.stat.gfid);
  const index = await rs.bricks[1]!.getxattr(ROOT, { path: "/" }, "trusted.gha.index");
  assert.deepEqual(JSON.parse(index.toString()), []);
});

test("reads never come from a stale brick", async (t) => {
  const rs = await replicaSet(2, { "self-heal": false, "read-subvolume": "brick0" });
  t.after(() => rs.close());
  await writeFile(rs.afr, "/f", "aaaa");
  rs.switches[0]!.setDown(true);
  await writeFile(rs.afr, "/f", "bbbb");
  rs.switches[0]!.setDown(false);
  assert.equal((await readFile(rs.afr, "/f")).toString(), "bbbb");
  assert.equal(readFileSync(`${rs.dirs[0]}/f`, "utf8"), "aaaa", "no heal with self-heal off");
});

test("a file deleted while a brick was down does not come back", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/gone", "x");
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  await writeFile(rs.afr, "/d/inner", "y");
  rs.switches[0]!.setDown(true);
  await rs.afr.unlink(ROOT, { path: "/gone" });
  await rs.afr.unlink(ROOT, { path: "/d/inner" });
  await rs.afr.rmdir(ROOT, { path: "/d" });
  rs.switches[0]!.setDown(false);
  await assert.rejects(rs.afr.lookup(ROOT, { path: "/gone" }), { code: "ENOENT" });
  await rs.afr.heals.drain();
  await rs.afr.heals.healNow("/");
  assert.equal(existsSync(`${rs.dirs[0]}/gone`), false);
  assert.equal(existsSync(`${rs.dirs[0]}/d`), false);
});

test("renames and new directories while a brick is down heal with the same gfids", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/a", "content-a");
  rs.switches[0]!.setDown(true);
  await rs.afr.rename(ROOT, { path: "/a" }, { path: "/b" });
  await rs.afr.mkdir(ROOT, { path: "/dir" }, 0o750);
  await rs.afr.mkdir(ROOT, { path: "/dir/sub" }, 0o755);
  await writeFile(rs.afr, "/dir/sub/deep", "deep");
  await rs.afr.symlink(ROOT, "b", { path: "/link" });
  rs.switches[0]!.setDown(false);
  await rs.afr.heals.healNow("/");
  assert.equal(existsSync(`${rs.dirs[0]}/a`), false);
  assert.equal(readFileSync(`${rs.dirs[0]}/b`, "utf8"), "content-a");
  assert.equal(readFileSync(`${rs.dirs[0]}/dir/sub/deep`, "utf8"), "deep");
  assert.equal(statSync(`${rs.dirs[0]}/dir`).mode & 0o777, 0o750);
  const [s0, s1] = await Promise.all(rs.bricks.map((b) => b.lookup(ROOT, { path: "/dir/sub/deep" })));
  assert.equal(s0!.stat.gfid, s1!.stat.gfid);
  assert.equal(await rs.bricks[0]!.readlink(ROOT, { path: "/link" }), "b");
});

test("hard links made while a brick was down heal as links to one inode, in one directory and across two", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await rs.afr.mkdir(ROOT, { path: "/d1" }, 0o755);
  await rs.afr.mkdir(ROOT, { path: "/d2" }, 0o755);
  await writeFile(rs.afr, "/d1/old", "linked before");
  rs.switches[0]!.setDown(true);
  await writeFile(rs.afr, "/d1/new", "linked while down");
  await rs.afr.link(ROOT, { path: "/d1/new" }, { path: "/d1/new-same-dir" });
  await rs.afr.link(ROOT, { path: "/d1/new" }, { path: "/d2/new-other-dir" });
  await rs.afr.link(ROOT, { path: "/d1/old" }, { path: "/d2/old-other-dir" });
  rs.switches[0]!.setDown(false);
  for (const dir of ["/", "/d1", "/d2"]) await rs.afr.heals.healNow(dir);
  const ino = (p: string) => statSync(`${rs.dirs[0]}${p}`).ino;
  assert.equal(ino("/d1/new-same-dir"), ino("/d1/new"), "same-directory link is a link on the healed brick");
  assert.equal(ino("/d2/new-other-dir"), ino("/d1/new"), "cross-directory link is a link on the healed brick");
  assert.equal(ino("/d2/old-other-dir"), ino("/d1/old"), "link to a file that existed before");
  assert.equal(statSync(`${rs.dirs[0]}/d1/new`).nlink, 3);
  assert.equal(readFileSync(`${rs.dirs[0]}/d2/new-other-dir`, "utf8"), "linked while down");
});

test("heal full of a wiped brick restores hard links as links", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await rs.afr.mkdir(ROOT, { path: "/a" }, 0o755);
  await rs.afr.mkdir(ROOT, { path: "/b" }, 0o755);
  await writeFile(rs.afr, "/a/f", "one inode, three names");
  await rs.afr.link(ROOT, { path: "/a/f" }, { path: "/a/g" });
  await rs.afr.link(ROOT, { path: "/a/f" }, { path: "/b/h" });
  // A brick wiped while it was away, healed by a server that remembers no names (as after a restart).
  rs.switches[0]!.setDown(true);
  await rs.switches[0]!.released;
  for (const name of ["a", "b"]) rmSync(`${rs.dirs[0]}/${name}`, { recursive: true });
  rs.switches[0]!.setDown(false);
  (rs.afr as unknown as { linkHints: LinkHints }).linkHints = new LinkHints();
  const p = await fullHeal(rs.afr);
  assert.deepEqual(p.failed, []);
  const ino = (x: string) => statSync(`${rs.dirs[0]}${x}`).ino;
  assert.equal(ino("/a/g"), ino("/a/f"));
  assert.equal(ino("/b/h"), ino("/a/f"));
  assert.equal(readFileSync(`${rs.dirs[0]}/b/h`, "utf8"), "one inode, three names");
});

test("heal info: a write in flight is 'possibly undergoing heal', a replica that missed it is pending", async (t) => {
  const rs = await replicaSet(2, { "post-op-delay": 30 });
  t.after(() => rs.close());
  await writeFile(rs.afr, "/busy", "v1");
  const fd = new Fd("/busy", fsc.O_RDWR);
  await rs.afr.open(ROOT, { path: "/busy" }, fsc.O_RDWR, fd);
  await rs.afr.write(ROOT, fd, Buffer.from("v2"), 0);
  // The batches (the write's, and the create's on "/") hold their locks and their pre-op marks: every
  // replica marked, nobody accused.
  let bricks = await healInfo(rs.afr, ["b0", "b1"]);
  const inFlight = ["/:possibly-healing", "/busy:possibly-healing"];
  assert.deepEqual(bricks.map((b) => b.entries.map((e) => `${e.path}:${e.status}`)), [inFlight, inFlight]);
  assert.equal(healComplete(bricks), true);
  assert.match(formatHealInfo(bricks), /\/busy - Possibly undergoing heal/);
  await rs.afr.release(ROOT, fd);
  // A replica that misses a write is accused: pending, even while the next batch holds the lock.
  rs.switches[0]!.setDown(true);
  const fd2 = new Fd("/busy", fsc.O_RDWR);
  await rs.afr.open(ROOT, { path: "/busy" }, fsc.O_RDWR, fd2);
  await rs.afr.write(ROOT, fd2, Buffer.from("v3"), 0);
  bricks = await healInfo(rs.afr, ["b0", "b1"]);
  assert.deepEqual(bricks[1]!.entries.filter((e) => e.path === "/busy").map((e) => e.status), ["pending"]);
  assert.equal(healComplete(bricks), false);
  await rs.afr.release(ROOT, fd2);
});

test("a child down since start is blamed under its brick id (from the root's changelog keys), which the other server reads", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/before", "both up");
  // node1 restarts while node2 is away: its new AFR never hears brick1's identity from brick1.
  rs.switches[1]!.setDown(true);
  const node1 = new Afr({ name: rs.afr.name, type: "cluster/afr", options: { ...AFR_DEFAULTS }, children: rs.switches, log: silentLogger(), graph: new Map() });
  await node1.start();
  t.after(() => node1.stop());
  assert.equal(node1.brickIds[1], undefined);
  assert.equal(node1.guessedIds[1], rs.afr.brickIds[1]);
  await writeFile(node1, "/while-away", "only on brick0");
  await writeFile(node1, "/before", "changed while brick1 was away");
  // Blame is under brick1's id, so node2's AFR (reversed subvolumes, other names) sees it too.
  const key = `trusted.afr.${rs.afr.brickIds[1]}`;
  const r = await rs.bricks[0]!.lookup(ROOT, { path: "/while-away" }, { "want-xattrs": [key, "trusted.afr.brick1"] });
  assert.ok(decodeCounters(r.xattrs?.[key])[0] > 0, "brick1 blamed by id");
  assert.equal(r.xattrs?.["trusted.afr.brick1"], undefined, "nothing under the child's name");
  rs.switches[1]!.setDown(false);
  const node2 = new Afr({ name: rs.afr.name, type: "cluster/afr", options: { ...AFR_DEFAULTS, "self-heal": false }, children: [...rs.switches].reverse(), log: silentLogger(), graph: new Map() });
  await node2.start();
  t.after(() => node2.stop());
  // node2 reads from the good copy only (brick0 is its child 1) and heal info names the file.
  assert.equal((await readFile(node2, "/while-away")).toString(), "only on brick0");
  for (let k = 0; k < 5; k++) assert.equal((await readFile(node2, "/before")).toString(), "changed while brick1 was away");
  const info = await healInfo(node2, ["b1", "b0"]);
  assert.ok(info[1]!.entries.some((e) => e.path === "/while-away" && e.status === "pending"));
});

test("choose-local: reads go to the child on this machine (no protocol/client below it); off, they are spread", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  for (let k = 0; k < 16; k++) await writeFile(rs.afr, `/r${k}`, `file ${k}`);
  const reads = [0, 0];
  rs.switches.forEach((sw, b) => {
    const read = sw.read.bind(sw);
    (sw as unknown as { read: typeof read }).read = (...a) => { reads[b]!++; return read(...a); };
  });
  for (const chooseLocal of [true, false]) {
    reads.fill(0);
    // As on node1 of the seed: child 0 reaches its brick through protocol/client, child 1 is local.
    const remote = new Switch({ name: "peer", type: "protocol/client", options: {}, children: [rs.switches[0]!], log: silentLogger(), graph: new Map() });
    const afr = new Afr({ name: rs.afr.name, type: "cluster/afr", options: { ...AFR_DEFAULTS, "choose-local": chooseLocal }, children: [remote, rs.switches[1]!], log: silentLogger(), graph: new Map() });
    await afr.start();
    for (let k = 0; k < 16; k++) assert.equal((await readFile(afr, `/r${k}`)).toString(), `file ${k}`);
    await afr.stop();
    if (chooseLocal) assert.deepEqual(reads, [0, 16], "every read from the local brick");
    else assert.ok(reads[0]! > 0 && reads[1]! > 0, `spread: ${reads}`);
  }
});

test("metadata heal copies mode and user xattrs", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/m", "x");
  rs.switches[0]!.setDown(true);
  await rs.afr.setattr(ROOT, { path: "/m" }, { mode: 0o600 });
  await rs.afr.setxattr(ROOT, { path: "/m" }, "user.color", Buffer.from("blue"), 0);
  rs.switches[0]!.setDown(false);
  await rs.afr.heals.healNow("/m");
  assert.equal(statSync(`${rs.dirs[0]}/m`).mode & 0o777, 0o600);
  assert.equal((await rs.bricks[0]!.getxattr(ROOT, { path: "/m" }, "user.color")).toString(), "blue");
});

test("data heal with diff copies only the blocks that differ", async (t) => {
  const rs = await replicaSet(2, { "heal-block-size": 65536, "data-self-heal-algorithm": "diff" });
  t.after(() => rs.close());
  const big = randomBytes(1 << 20);
  await writeFile(rs.afr, "/big", big);
  rs.switches[0]!.setDown(true);
  const patch = randomBytes(1000);
  await writeFile(rs.afr, "/big", patch, 200000);
  rs.switches[0]!.setDown(false);
  // Blocks are compared by checksums computed on each brick: only the differing block is read at all.
  const bytesRead = [0, 0];
  rs.switches.forEach((sw, b) => {
    const read = sw.read.bind(sw);
    (sw as unknown as { read: typeof read }).read = async (...a) => { const buf = await read(...a); bytesRead[b]! += buf.length; return buf; };
  });
  const r = await rs.afr.heals.healNow("/big");
  assert.equal(r.bytes, 65536, "one block rewritten");
  assert.deepEqual(bytesRead, [0, 65536], "the sink was not read; the source only for the block that differs");
  patch.copy(big, 200000);
  assert.ok(readFileSync(`${rs.dirs[0]}/big`).equals(big));
});

test("data heal with diff over a brick without rchecksum (an earlier version) compares blocks by reading them", async (t) => {
  const rs = await replicaSet(2, { "heal-block-size": 65536, "data-self-heal-algorithm": "diff" });
  t.after(() => rs.close());
  const big = randomBytes(512 << 10);
  await writeFile(rs.afr, "/old", big);
  rs.switches[0]!.setDown(true);
  await writeFile(rs.afr, "/old", Buffer.from("changed"), 300000);
  rs.switches[0]!.setDown(false);
  (rs.switches[0] as unknown as { rchecksum: () => Promise<Buffer> }).rchecksum = async () => {
    throw new FopError("ENOSYS", "rchecksum not served");
  };
  const r = await rs.afr.heals.healNow("/old");
  assert.equal(r.bytes, 65536, "still one block rewritten");
  assert.ok(readFileSync(`${rs.dirs[0]}/old`).equals(readFileSync(`${rs.dirs[1]}/old`)));
});

test("split-brain: EIO on open, resolved from the chosen source", async (t) => {
  const rs = await replicaSet(2, { "self-heal": false });
  t.after(() => rs.close());
  await writeFile(rs.afr, "/sb", "base");
  rs.switches[0]!.setDown(true);
  await writeFile(rs.afr, "/sb", "from-node2");
  rs.switches[0]!.setDown(false);
  rs.switches[1]!.setDown(true);
  await writeFile(rs.afr, "/sb", "FROM-NODE1-LONGER");
  rs.switches[1]!.setDown(false);
  const fd = new Fd("/sb", fsc.O_RDONLY);
  await assert.rejects(rs.afr.open(ROOT, { path: "/sb" }, fsc.O_RDONLY, fd), { code: "EIO" });
  const r = await rs.afr.heals.healNow("/sb");
  assert.equal(r.splitBrain, true);
  await rs.afr.heals.healNow("/sb", { source: 1 });
  assert.equal((await readFile(rs.afr, "/sb")).toString(), "from-node2");
  assert.equal(readFileSync(`${rs.dirs[0]}/sb`, "utf8"), "from-node2");
});

test("favorite-child-policy size resolves split-brain by the larger copy", async (t) => {
  const rs = await replicaSet(2, { "self-heal": false, "favorite-child-policy": "size" });
  t.after(() => rs.close());
  await writeFile(rs.afr, "/sb", "base");
  rs.switches[0]!.setDown(true);
  await writeFile(rs.afr, "/sb", "short");
  rs.switches[0]!.setDown(false);
  rs.switches[1]!.setDown(true);
  await writeFile(rs.afr, "/sb", "much longer text");
  rs.switches[1]!.setDown(false);
  assert.equal((await readFile(rs.afr, "/sb")).toString(), "much longer text");
  assert.equal(readFileSync(`${rs.dirs[1]}/sb`, "utf8"), "much longer text");
});

test("gfid mismatch of a name created on both sides apart is reported as EIO", async (t) => {
  const rs = await replicaSet(2, { "self-heal": false });
  t.after(() => rs.close());
  rs.switches[0]!.setDown(true);
  await writeFile(rs.afr, "/same", "one");
  rs.switches[0]!.setDown(false);
  rs.switches[1]!.setDown(true);
  await writeFile(rs.afr, "/same", "two");
  rs.switches[1]!.setDown(false);
  await assert.rejects(rs.afr.lookup(ROOT, { path: "/same" }), { code: "EIO" });
  const r = await rs.afr.heals.healNow("/");
  assert.deepEqual(r.gfidMismatch, ["/same"]);
});

test("write returns EROFS without quorum", async (t) => {
  const rs = await replicaSet(2, { "quorum-type": "fixed", "quorum-count": 2 });
  t.after(() => rs.close());
  await writeFile(rs.afr, "/q", "ok");
  rs.switches[1]!.setDown(true);
  await assert.rejects(writeFile(rs.afr, "/q", "no"), { code: "EROFS" });
  await assert.rejects(rs.afr.mkdir(ROOT, { path: "/qd" }, 0o755), { code: "EROFS" });
  assert.equal(readFileSync(`${rs.dirs[0]}/q`, "utf8"), "ok");
});

// Both AFRs lock by brick id (not subvolume order), and overlapping writes of one eager batch, which
// share its lock, wait for each other: without that the two replicas diverged about 1 run in 4.
test("two replicate volumes with reversed subvolumes writing one file at once end byte-identical", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  // node2's AFR: the same bricks, the subvolumes order reversed (as in the seed's node2 volfile).
  const graph = new Map();
  const afr2 = new Afr({ name: rs.afr.name, type: "cluster/afr", options: { ...AFR_DEFAULTS }, children: [...rs.switches].reverse(), log: silentLogger(), graph });
  await afr2.start();
  t.after(() => afr2.stop());
  await writeFile(rs.afr, "/shared", Buffer.alloc(256 * 1024));
  const fds = [new Fd("/shared", fsc.O_RDWR), new Fd("/shared", fsc.O_RDWR)];
  await rs.afr.open(ROOT, { path: "/shared" }, fsc.O_RDWR, fds[0]!);
  await afr2.open(ROOT, { path: "/shared" }, fsc.O_RDWR, fds[1]!);
  const writes: Promise<number>[] = [];
  for (let k = 0; k < 200; k++) {
    const off = (k * 7919) % (240 * 1024);
    writes.push(rs.afr.write(ROOT, fds[0]!, randomBytes(8192), off));
    writes.push(afr2.write(ROOT, fds[1]!, randomBytes(8192), off));
  }
  await Promise.all(writes);
  await rs.afr.release(ROOT, fds[0]!);
  await afr2.release(ROOT, fds[1]!);
  assert.ok(readFileSync(`${rs.dirs[0]}/shared`).equals(readFileSync(`${rs.dirs[1]}/shared`)), "replicas identical");
});

test("overlapping writes in flight at once through one fd land in the same order on every replica", async (t) => {
  for (let round = 0; round < 5; round++) {
    const rs = await replicaSet(2);
    t.after(() => rs.close());
    await writeFile(rs.afr, "/overlap", Buffer.alloc(64 * 1024));
    const fd = new Fd("/overlap", fsc.O_RDWR);
    await rs.afr.open(ROOT, { path: "/overlap" }, fsc.O_RDWR, fd);
    await Promise.all(Array.from({ length: 100 }, (_, k) => rs.afr.write(ROOT, fd, randomBytes(8192), (k * 4099) % (56 * 1024))));
    await rs.afr.release(ROOT, fd);
    assert.ok(readFileSync(`${rs.dirs[0]}/overlap`).equals(readFileSync(`${rs.dirs[1]}/overlap`)), `replicas identical (round ${round})`);
  }
});

test("appends in flight at once through an O_APPEND fd land in the same order on every replica", async (t) => {
  for (const eagerLock of [true, false]) {
    const rs = await replicaSet(2, { "eager-lock": eagerLock });
    t.after(() => rs.close());
    await writeFile(rs.afr, "/log", "");
    const fd = new Fd("/log", fsc.O_WRONLY | fsc.O_APPEND);
    await rs.afr.open(ROOT, { path: "/log" }, fsc.O_WRONLY | fsc.O_APPEND, fd);
    await Promise.all(Array.from({ length: 100 }, (_, k) => rs.afr.write(ROOT, fd, Buffer.from(`line ${k} ${"x".repeat(k % 17)}\n`), 0)));
    await rs.afr.release(ROOT, fd);
    const a = readFileSync(`${rs.dirs[0]}/log`), b = readFileSync(`${rs.dirs[1]}/log`);
    assert.equal(a.toString().split("\n").length, 101, `every line there (eager-lock ${eagerLock})`);
    assert.ok(a.equals(b), `replicas identical (eager-lock ${eagerLock})`);
  }
});

test("heal daemon heals a returning brick's files within a second, without client access", async (t) => {
  const rs = await replicaSet(2, { "self-heal-daemon": true, "self-heal": false });
  t.after(() => rs.close());
  rs.switches[0]!.setDown(true);
  for (let k = 0; k < 5; k++) await writeFile(rs.afr, `/h${k}`, `file ${k}`);
  rs.switches[0]!.setDown(false);
  const t0 = Date.now();
  const ok = await waitFor(() => [0, 1, 2, 3, 4].every((k) => existsSync(`${rs.dirs[0]}/h${k}`) && readFileSync(`${rs.dirs[0]}/h${k}`, "utf8") === `file ${k}`), 3000, 10);
  assert.ok(ok, "healed");
  assert.ok(Date.now() - t0 < 1000, `healed in ${Date.now() - t0} ms`);
});

test("a heal attempted while the sink is still down keeps blaming it", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  rs.switches[0]!.setDown(true);
  await rs.afr.mkdir(ROOT, { path: "/new" }, 0o755);
  await rs.afr.lookup(ROOT, { path: "/" });
  await rs.afr.heals.drain();
  await rs.afr.heals.healNow("/");
  assert.ok((await changelogOf(rs, 1, "/", 0))[2] > 0, "root still blames brick0 for entries");
  rs.switches[0]!.setDown(false);
  await rs.afr.heals.healNow("/");
  assert.equal(statSync(`${rs.dirs[0]}/new`).isDirectory(), true);
});

test("eager lock: a brick lost in the middle of a batch of writes stays blamed after the flush", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/batch", "");
  const fd = new Fd("/batch", fsc.O_RDWR);
  await rs.afr.open(ROOT, { path: "/batch" }, fsc.O_RDWR, fd);
  await rs.afr.write(ROOT, fd, Buffer.from("aaaa"), 0);
  const dirty = decodeCounters((await rs.bricks[1]!.lookup(ROOT, { path: "/batch" }, { "want-xattrs": ["trusted.afr.dirty"] })).xattrs?.["trusted.afr.dirty"]);
  assert.ok(dirty[0] > 0, "the pre-op's dirty mark stays while the batch is open");
  rs.switches[0]!.setDown(true);
  await rs.afr.write(ROOT, fd, Buffer.from("bbbb"), 4);
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
  rs.switches[0]!.setDown(false);
  assert.equal((await changelogOf(rs, 1, "/batch", 0))[0], 1, "node2 blames node1 once");
  assert.equal((await changelogOf(rs, 1, "/batch", 1))[0], 0, "node2 does not blame itself");
  await rs.afr.heals.healNow("/batch");
  assert.equal(readFileSync(`${rs.dirs[0]}/batch`, "utf8"), "aaaabbbb");
});

test("eager lock: a replica that failed a write of the batch gives its errno for the batch's next writes, not ENOTCONN", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await writeFile(rs.afr, "/full", "");
  rs.switches[0]!.setDown(true); // the other brick alone: the batch runs there only
  const sw = rs.switches[1] as unknown as { write: (...a: unknown[]) => Promise<number> };
  const write = sw.write.bind(sw);
  sw.write = async () => {
    throw new FopError("ENOSPC", "no space left", { xlator: "test", fop: "write" });
  };
  const fd = new Fd("/full", fsc.O_RDWR);
  await rs.afr.open(ROOT, { path: "/full" }, fsc.O_RDWR, fd);
  await assert.rejects(rs.afr.write(ROOT, fd, Buffer.from("aaaa"), 0), { code: "ENOSPC" });
  await assert.rejects(rs.afr.write(ROOT, fd, Buffer.from("bbbb"), 4), { code: "ENOSPC" });
  sw.write = write;
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
});

test("a replica going away or coming back tells the translators above that anything may have changed (their caches)", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  const heard: { all?: boolean }[] = [];
  const top = new Xlator({ name: "top", type: "test/top", options: {}, children: [rs.afr], log: silentLogger(), graph: new Map() });
  top.othersChanged = (c) => void heard.push(c);
  rs.switches[1]!.setDown(true);
  assert.equal(heard.length, 1);
  assert.equal(heard[0]!.all, true);
  rs.switches[1]!.setDown(false);
  assert.equal(heard.length, 2);
  assert.equal(heard[1]!.all, true);
});

/** Writes `data` as a file and opens it read-write through AFR. */
async function openWritten(rs: Awaited<ReturnType<typeof replicaSet>>, path: string, data: string): Promise<Fd> {
  await writeFile(rs.afr, path, data);
  const fd = new Fd(path, fsc.O_RDWR);
  await rs.afr.lookup(ROOT, { path });
  await rs.afr.open(ROOT, { path }, fsc.O_RDWR, fd);
  return fd;
}

/** Runs `fn` while these replicas' fsyncs (or fsyncdirs) fail with EIO (their disks refuse the data). */
async function failingFsyncs<T>(switches: Switch[], fn: () => Promise<T>, fop: "fsync" | "fsyncdir" = "fsync"): Promise<T> {
  const patched = switches as unknown as Record<string, unknown>[];
  const reals = patched.map((s) => s[fop]);
  switches.forEach((s, i) => (patched[i]![fop] = async () => {
    throw new FopError("EIO", `${fop}: EIO`, { xlator: s.name, fop });
  }));
  try {
    return await fn();
  } finally {
    patched.forEach((s, i) => (s[fop] = reals[i]));
  }
}

test("an fsync that fails on one replica succeeds on the other, which blames it; heal copies the file there", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  const fd = await openWritten(rs, "/synced", "before");
  await rs.afr.write(ROOT, fd, Buffer.from("written, then synced"), 0);
  // brick0's disk refuses the data (as storage/posix reports a failed background writeback)
  await failingFsyncs([rs.switches[0]!], () => rs.afr.fsync(ROOT, fd, false));
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
  assert.ok(await waitFor(async () => (await changelogOf(rs, 1, "/synced", 0))[0] > 0, 5000), "brick1 blames brick0 for data");
  assert.equal((await changelogOf(rs, 0, "/synced", 1))[0], 0, "brick0 blames nobody");
  const index = JSON.parse((await rs.bricks[1]!.getxattr(ROOT, { path: "/" }, "trusted.gha.index")).toString()) as { path: string }[];
  assert.ok(index.some((e) => e.path === "/synced"), "pending heal on brick1");
  // the file on brick0 lost its data (what its disk could not keep): heal brings it back from brick1
  writeFileSync(`${rs.dirs[0]}/synced`, "lost");
  await rs.afr.lookup(ROOT, { path: "/synced" });
  await rs.afr.heals.drain();
  assert.equal(readFileSync(`${rs.dirs[0]}/synced`, "utf8"), "written, then synced");
  assert.deepEqual(await changelogOf(rs, 1, "/synced", 0), [0, 0, 0], "blame cleared by the heal");
});

test("an fsyncdir that fails on one replica succeeds on the other, which blames it for the directory's entries; entry heal restores them", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  await rs.afr.mkdir(ROOT, { path: "/d" }, 0o755);
  await writeFile(rs.afr, "/d/kept", "entry made before the sync");
  // (the directory's batch of entry changes ends first: its marks are gone from both)
  const unmarked = async () => (await changelogOf(rs, 0, "/d", 1))[2] === 0 && (await changelogOf(rs, 1, "/d", 0))[2] === 0;
  assert.ok(await waitFor(unmarked, 5000));
  const fd = new Fd("/d", fsc.O_RDONLY, true);
  await rs.afr.opendir(ROOT, { path: "/d" }, fd);
  await failingFsyncs([rs.switches[0]!], () => rs.afr.fsyncdir(ROOT, fd, false), "fsyncdir");
  await rs.afr.releasedir(ROOT, fd);
  assert.ok((await changelogOf(rs, 1, "/d", 0))[2] > 0, "brick1 blames brick0 for entries");
  assert.equal((await changelogOf(rs, 0, "/d", 1))[2], 0, "brick0 blames nobody");
  // brick0 lost the entry its disk did not sync (a crash): entry heal makes it again from brick1
  rmSync(`${rs.dirs[0]}/d/kept`);
  await rs.afr.lookup(ROOT, { path: "/d" });
  await rs.afr.heals.drain();
  assert.equal(readFileSync(`${rs.dirs[0]}/d/kept`, "utf8"), "entry made before the sync");
  assert.deepEqual(await changelogOf(rs, 1, "/d", 0), [0, 0, 0], "blame cleared by the heal");
});

test("an fsync that fails on every replica fails, and blames none", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  const fd = await openWritten(rs, "/nowhere", "data");
  await failingFsyncs(rs.switches, () => assert.rejects(rs.afr.fsync(ROOT, fd, false), { code: "EIO" }));
  await rs.afr.release(ROOT, fd);
  assert.equal((await changelogOf(rs, 1, "/nowhere", 0))[0], 0);
  assert.equal((await changelogOf(rs, 0, "/nowhere", 1))[0], 0);
});

test("a replica whose background writeback failed after its writes were answered is blamed by the other, fsync or not; heal copies the file there", async (t) => {
  const rs = await replicaSet(2);
  t.after(() => rs.close());
  rs.bricks.forEach((b, i) => b.reconfigure({ directory: rs.dirs[i], fsync: false, "writeback-after": 64 * 1024 }));
  const data = randomBytes(256 * 1024);
  const fd = new Fd("/big", fsc.O_RDWR);
  await rs.afr.create(ROOT, { path: "/big" }, fsc.O_RDWR | fsc.O_CREAT, 0o644, fd);
  // brick0's disk refuses what the brick sends it in the background (EIO); brick1's takes it
  const { refused } = await withFailingDatasyncs(async () => {
    assert.equal(await rs.afr.write(ROOT, fd, data, 0), data.length, "answered: both bricks took the writes");
    assert.ok(await waitFor(async () => (await changelogOf(rs, 1, "/big", 0))[0] > 0, 5000), "brick1 blames brick0 for data, no fsync asked");
  }, (h) => readlinkSync(`/proc/self/fd/${h}`).startsWith(rs.dirs[0]!));
  assert.ok(refused > 0);
  await rs.afr.flush(ROOT, fd);
  await rs.afr.release(ROOT, fd);
  assert.equal((await changelogOf(rs, 0, "/big", 1))[0], 0, "brick0 blames nobody");
  const index = JSON.parse((await rs.bricks[1]!.getxattr(ROOT, { path: "/" }, "trusted.gha.index")).toString()) as { path: string }[];
  assert.ok(index.some((e) => e.path === "/big"), "pending heal on brick1");
  // what brick0's disk kept (the page cache forgot the rest): heal brings the file back from brick1
  writeFileSync(`${rs.dirs[0]}/big`, data.subarray(0, 64 * 1024));
  await rs.afr.lookup(ROOT, { path: "/big" });
  await rs.afr.heals.drain();
  assert.ok(readFileSync(`${rs.dirs[0]}/big`).equals(data), "brick0's copy healed");
  assert.deepEqual(await changelogOf(rs, 1, "/big", 0), [0, 0, 0], "blame cleared by the heal");
});

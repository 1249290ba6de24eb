// Cache invalidation over real TCP (server and clients in this process, port 24180): a client that
// asks for upcalls hears about changes other connections make to what it looked at — and only
// those; never about its own; never if it did not ask or the server's cache-invalidation is off.
// Plus the pure parts: which fops change what, the interest list's bounds, one upcall per turn.
import assert from "node:assert/strict";
import { constants as fsc, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx, type Iatt, type Invalidation, type LostWrites } from "../../runtime/core/types";
import { Xlator } from "../../runtime/core/xlator";
import { changeOf, InterestList, PendingUpcall, type Change } from "../../runtime/xlators/protocol/server/upcall";
import { waitFor } from "../helpers/cluster";
import { brickVolfile, clientVolfile } from "../helpers/servers";
import { withFailingDatasyncs } from "../helpers/failing-datasyncs";

const PORT = 24180;
const CTX: CallCtx = { uid: 0, gid: 0, pid: process.pid, lkOwner: "t", client: "local" };
const dir = mkdtempSync(join(tmpdir(), "gha-upcall-"));
const graphs: Graph[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await Promise.all(graphs.splice(0).reverse().map((g) => g.stop()));
});

async function startServer(extra: string[] = [], posixOptions: string[] = []): Promise<Graph> {
  const brick = mkdtempSync(join(dir, "brick-"));
  const g = Graph.fromText(brickVolfile({ host: "127.0.0.2", port: PORT, brick, allow: { locks: "127.0.0.1,127.0.0.2" }, serverOptions: extra, posixOptions }), "server.vol", { log: silentLogger() });
  graphs.push(g);
  await g.start();
  return g;
}

/** A client graph with a parent that caches for `interest` seconds (0: asks for no upcalls) and records what it hears. */
async function connect(interest: number): Promise<{ top: Xlator; heard: Invalidation[]; lost: LostWrites[] }> {
  const g = Graph.fromText(clientVolfile({ hosts: "127.0.0.2", port: PORT }), "client.vol", { log: silentLogger() });
  graphs.push(g);
  const heard: Invalidation[] = [];
  const lost: LostWrites[] = [];
  const recorder = new Xlator({ name: "recorder", type: "test/recorder", options: {}, children: [g.top], log: silentLogger(), graph: new Map() });
  recorder.invalidationInterest = () => interest;
  recorder.othersChanged = (c) => void heard.push(c);
  recorder.writesLost = (files) => void lost.push(...files);
  await g.start();
  return { top: g.top, heard, lost };
}

async function create(x: Xlator, path: string): Promise<{ iatt: Iatt; fd: Fd }> {
  const fd = new Fd(path, fsc.O_RDWR);
  const iatt = await x.create(CTX, { path }, fsc.O_RDWR, 0o644, fd);
  return { iatt, fd };
}

const heardOf = (h: Invalidation[]) => ({
  gfids: new Set(h.flatMap((c) => c.gfids)), paths: new Set(h.flatMap((c) => c.paths)), entries: new Set(h.flatMap((c) => c.entries)),
});

describe("upcalls over TCP", () => {
  test("a change by another client to a file looked at is announced; the changer and clients not asking hear nothing", async () => {
    await startServer();
    const a = await connect(30);
    const b = await connect(30);
    const deaf = await connect(0);
    assert.equal(a.top.invalidationsDelivered(), true);
    assert.equal(deaf.top.invalidationsDelivered(), false);
    const { iatt, fd } = await create(b.top, "/f");
    await b.top.write(CTX, fd, Buffer.from("one"), 0);
    const seen = await a.top.lookup(CTX, { path: "/f" });
    await deaf.top.lookup(CTX, { path: "/f" });
    assert.equal(seen.stat.gfid, iatt.gfid);
    await sleep(50);
    a.heard.length = 0;
    b.heard.length = 0;
    await b.top.write(CTX, fd, Buffer.from("two"), 3);
    await waitFor("a to hear of the write", () => a.heard.length > 0, 5000);
    await sleep(100); // (room for a second one, which must not come)
    assert.equal(a.heard.length, 1, "one upcall for one change");
    const h = heardOf(a.heard);
    assert.ok(h.gfids.has(iatt.gfid) && h.paths.has("/f"), JSON.stringify(a.heard));
    assert.deepEqual(b.heard, [], "the client that changed it hears nothing");
    assert.deepEqual(deaf.heard, [], "a client that did not ask hears nothing");
    // entry changes: the parent (looked at) and the name
    await a.top.lookup(CTX, { path: "/" });
    a.heard.length = 0;
    await b.top.rename(CTX, { path: "/f", gfid: iatt.gfid }, { path: "/g" });
    await waitFor("a to hear of both names", () => { const r = heardOf(a.heard); return r.entries.has("/f") && r.entries.has("/g"); }, 5000);
    const r = heardOf(a.heard);
    assert.ok(r.entries.has("/f") && r.entries.has("/g") && r.paths.has("/"), JSON.stringify(a.heard));
    await b.top.release(CTX, fd);
  });

  test("changes to files the client never looked at are not announced to it", async () => {
    await startServer();
    const a = await connect(30);
    const b = await connect(30);
    await a.top.mkdir(CTX, { path: "/mine" }, 0o755);
    await b.top.mkdir(CTX, { path: "/theirs" }, 0o755);
    await sleep(50);
    a.heard.length = 0;
    const { fd } = await create(b.top, "/theirs/x");
    await b.top.write(CTX, fd, Buffer.from("x"), 0);
    await b.top.setattr(CTX, { path: "/theirs/x" }, { mode: 0o600 });
    await sleep(100);
    assert.deepEqual(a.heard, []);
    await b.top.release(CTX, fd);
  });

  test("with the server's cache-invalidation off, nothing is announced and the client knows it", async () => {
    await startServer(["cache-invalidation off"]);
    const a = await connect(30);
    const b = await connect(30);
    assert.equal(a.top.invalidationsDelivered(), false);
    await a.top.mkdir(CTX, { path: "/d" }, 0o755);
    await b.top.setattr(CTX, { path: "/d" }, { mode: 0o700 });
    await sleep(100);
    assert.deepEqual(a.heard, []);
  });

  test("a lookup whose reply raced with another client's change is followed by an upcall for it", async () => {
    const server = await startServer();
    const a = await connect(30);
    const b = await connect(30);
    const { iatt, fd } = await create(b.top, "/race");
    await b.top.link(CTX, { path: "/race", gfid: iatt.gfid }, { path: "/other-name" });
    // Hold a's lookup of /race inside the server's graph until b changed the file through its other name
    // (so nothing a named when it asked matches the change: only the reply's gfid does).
    const locks = server.volumes.get("locks")!;
    const realLookup = locks.lookup.bind(locks);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let held = false;
    locks.lookup = async (ctx, loc, xdata) => {
      const res = await realLookup(ctx, loc, xdata);
      if (loc.path === "/race") {
        held = true;
        await gate;
      }
      return res;
    };
    const pending = a.top.lookup(CTX, { path: "/race" });
    for (let i = 0; i < 100 && !held; i++) await sleep(10);
    assert.ok(held, "a's lookup reached the server");
    await b.top.setattr(CTX, { path: "/other-name" }, { mode: 0o600 });
    await sleep(50);
    assert.deepEqual(a.heard, [], "nothing a named when it asked was changed");
    release();
    await pending;
    await waitFor(`a to hear of the change (heard: ${JSON.stringify(a.heard)})`, () => heardOf(a.heard).gfids.has(iatt.gfid), 5000);
    await b.top.release(CTX, fd);
  });
});

test("a change below the server that no client made (a replica came or went) reaches every client that caches, as `all`", async () => {
  const server = await startServer();
  const a = await connect(30);
  const deaf = await connect(0);
  await a.top.lookup(CTX, { path: "/" });
  a.heard.length = 0;
  server.top.othersChanged({ gfids: [], paths: [], entries: [], all: true }, server.top);
  await waitFor("a to hear", () => a.heard.length > 0, 5000);
  await sleep(100); // (room for a second one, or for the deaf one to hear: neither may)
  assert.equal(a.heard.length, 1);
  assert.equal(a.heard[0]!.all, true);
  assert.deepEqual(deaf.heard, []);
});

test("a brick's lost writes (a failed background writeback) reach every client attached to it, caching or not", async () => {
  await startServer([], ["writeback-after 64KB"]);
  const writer = await connect(0);
  const other = await connect(30);
  const { iatt, fd } = await create(writer.top, "/big");
  // the brick's disk refuses the data it was sending in the background (EIO)
  await withFailingDatasyncs(async () => {
    assert.equal(await writer.top.write(CTX, fd, Buffer.alloc(128 * 1024, 1), 0), 128 * 1024);
    await waitFor("both clients to hear of the lost writes", () => writer.lost.length > 0 && other.lost.length > 0, 5000);
  });
  for (const c of [writer, other]) assert.deepEqual(c.lost, [{ gfid: iatt.gfid, path: "/big" }]);
  // the connections stay: the writer goes on (its next fsync reports the error)
  await assert.rejects(writer.top.fsync(CTX, fd, false), { code: "EIO" });
  await writer.top.release(CTX, fd);
  assert.equal((await other.top.lookup(CTX, { path: "/big" })).stat.size, 128 * 1024);
});

describe("what a fop changes", () => {
  const fd = Object.assign(new Fd("/d/f", 0), { gfid: "g1" });
  test("data and attribute changes name the file; entry changes the name and its directory", () => {
    assert.deepEqual(changeOf("write", [CTX, fd, Buffer.alloc(1), 0], 1), { gfids: ["g1"], paths: ["/d/f"], entries: [] });
    assert.deepEqual(changeOf("setattr", [CTX, { path: "/d/f" }, {}], { gfid: "g2" }), { gfids: ["g2"], paths: ["/d/f"], entries: [] });
    assert.deepEqual(changeOf("unlink", [CTX, { path: "/d/f", gfid: "g1" }], undefined), { gfids: ["g1"], paths: ["/d"], entries: ["/d/f"] });
    assert.equal(changeOf("unlink", [CTX, { path: "/d/f" }], undefined)?.links, true, "an unknown file: its other names may have one link fewer");
    assert.deepEqual(changeOf("symlink", [CTX, "target", { path: "/d/l" }], { gfid: "g3" }), { gfids: [], paths: ["/d"], entries: ["/d/l"] });
    assert.equal(changeOf("rename", [CTX, { path: "/a/x" }, { path: "/b/y" }], undefined)?.subtree, true);
    assert.equal(changeOf("open", [CTX, { path: "/d/f" }, fsc.O_RDONLY, fd], undefined), undefined);
    assert.ok(changeOf("open", [CTX, { path: "/d/f" }, fsc.O_WRONLY | fsc.O_TRUNC, fd], undefined));
    for (const op of ["lookup", "stat", "read", "readdir", "getxattr", "flush", "fsync", "inodelk", "xattrop"] as const) {
      assert.equal(changeOf(op, [CTX, { path: "/d/f" }], undefined), undefined, op);
    }
  });

  test("the interest list: names and gfids looked at, directories' entries, expiry, and a bound that tells the client to forget", async () => {
    const forgotten: Change[] = [];
    const list = new InterestList(200, 3, (c) => forgotten.push(c));
    list.noteRequest("lookup", [CTX, { path: "/d/f" }]);
    list.noteReply("lookup", [CTX, { path: "/d/f" }], { stat: { gfid: "g1" } }, () => false);
    assert.equal(list.concerns({ gfids: ["g1"], paths: [], entries: [] }), true);
    assert.equal(list.concerns({ gfids: [], paths: ["/d/f"], entries: [] }), true);
    assert.equal(list.concerns({ gfids: ["other"], paths: ["/x"], entries: ["/x/y"] }), false);
    // a renamed directory above something looked at
    assert.equal(list.concerns({ gfids: [], paths: [], entries: ["/d"], subtree: true }), true);
    assert.equal(list.concerns({ gfids: [], paths: [], entries: ["/d"] }), false);
    // readdirplus: the directory, and every entry by its gfid (by its name through the directory)
    const raced = list.noteReply("readdir", [CTX, Object.assign(new Fd("/e", 0, true), { gfid: "ge" }), 0, true],
      [{ name: ".", next: 1 }, { name: "a", next: 2, stat: { gfid: "ga" } }], (g) => g === "ga");
    assert.deepEqual(raced, ["ga"]);
    assert.equal(list.concerns({ gfids: [], paths: [], entries: ["/e/a"] }), true);
    assert.equal(list.concerns({ gfids: ["ga"], paths: ["/elsewhere/a"], entries: [] }), true, "the entry by its gfid");
    assert.equal(list.concerns({ gfids: [], paths: ["/e/a"], entries: [] }), true, "a change by path alone of a listed entry");
    assert.equal(list.concerns({ gfids: ["gz"], paths: ["/e/z"], entries: [] }), false, "a file the listing did not hand out");
    assert.equal(list.concerns({ gfids: [], paths: ["/e/a/deeper"], entries: [] }), false, "below a listed entry: not listed");
    // over the bound: the oldest go, and the client is told
    assert.ok(forgotten.length > 0 && forgotten.flatMap((c) => [...c.entries, ...c.gfids]).includes("/d/f"), JSON.stringify(forgotten));
    // a forgotten name goes out as a name, a forgotten gfid as a gfid
    list.noteReply("lookup", [CTX, { path: "/h" }], { stat: { gfid: "g2" } }, () => false);
    assert.deepEqual(forgotten.flatMap((c) => c.entries), ["/d/f"], JSON.stringify(forgotten));
    assert.deepEqual(forgotten.flatMap((c) => c.gfids), ["g1"], JSON.stringify(forgotten));
    // a listed directory that goes takes its entries' names with it (the client forgets all under it)
    list.noteReply("lookup", [CTX, { path: "/i" }], { stat: { gfid: "g3" } }, () => false);
    assert.deepEqual(forgotten.flatMap((c) => c.entries), ["/d/f", "/e"], JSON.stringify(forgotten));
    await sleep(250);
    assert.equal(list.concerns({ gfids: ["ga"], paths: [], entries: ["/e/a"] }), false, "expired");
  });

  test("making or removing an entry (its answer brings the directory's attributes) puts the directory on the list", () => {
    for (const [op, args] of [
      ["create", [CTX, { path: "/d/f" }, fsc.O_RDWR, 0o644]], ["mkdir", [CTX, { path: "/d/sub" }, 0o755]],
      ["mknod", [CTX, { path: "/d/p" }, 0o644, 0]], ["symlink", [CTX, "f", { path: "/d/l" }]],
      ["unlink", [CTX, { path: "/d/f" }]], ["rmdir", [CTX, { path: "/d/sub" }]],
    ] as const) {
      const list = new InterestList(1000, 100, () => undefined);
      list.noteRequest(op, args as unknown as unknown[]);
      // another client creates a name there: {paths: [dir], entries: [name]}
      assert.equal(list.concerns({ gfids: [], paths: ["/d"], entries: ["/d/other"] }), true, op);
    }
  });

  test("changes of one turn go out as one upcall", async () => {
    const sent: Change[] = [];
    const p = new PendingUpcall((c) => sent.push(c));
    p.add({ gfids: ["a"], paths: ["/x"], entries: [] });
    p.add({ gfids: ["a", "b"], paths: [], entries: ["/y"] });
    await sleep(10);
    assert.deepEqual(sent, [{ gfids: ["a", "b"], paths: ["/x"], entries: ["/y"] }]);
  });
});

// performance/quick-read (with open-behind) over a real storage/posix brick in a temp dir: small files
// written or read whole through this client are served from memory, read-only opens never reach the
// brick unless something but a read needs them, and every local or reported change drops what it touches.
import assert from "node:assert/strict";
import { constants as FS, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { FOP_NAMES, type FopName } from "../../runtime/core/fops";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { Xlator } from "../../runtime/core/xlator";
import { Posix } from "../../runtime/xlators/storage/posix";
import { QuickRead, type QuickReadOptions } from "../../runtime/xlators/performance/quick-read";

const ctx: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };

/** Counts the fops that get past quick-read; says whether upcalls are delivered. */
class Probe extends Xlator {
  readonly counts = new Map<FopName, number>();
  upcalls = true;
  constructor(child: Xlator) {
    super({ name: "probe", type: "test/probe", options: {}, children: [child], log: silentLogger(), graph: new Map() });
    for (const fop of FOP_NAMES) {
      (this as unknown as Record<string, unknown>)[fop] = (...args: unknown[]) => {
        this.counts.set(fop, (this.counts.get(fop) ?? 0) + 1);
        return (child[fop] as (...a: unknown[]) => Promise<unknown>).apply(child, args);
      };
    }
  }
  override invalidationsDelivered(): boolean {
    return this.upcalls;
  }
  n(fop: FopName): number {
    return this.counts.get(fop) ?? 0;
  }
}

function setup(t: TestContext, options: Partial<QuickReadOptions> = {}, upcalls = true): { qr: QuickRead; probe: Probe; posix: Posix } {
  const base = mkdtempSync(join(tmpdir(), "gha-qr-"));
  const posix = new Posix({ name: "brick", type: "storage/posix", options: { directory: join(base, "brick"), fsync: false }, children: [], log: silentLogger(), graph: new Map() });
  t.after(async () => {
    await posix.stop();
    rmSync(base, { recursive: true, force: true });
  });
  const probe = new Probe(posix);
  probe.upcalls = upcalls;
  const qr = new QuickRead({
    name: "qr", type: "performance/quick-read", children: [probe], log: silentLogger(), graph: new Map(),
    options: { "cache-size": 1 << 20, "max-file-size": 65536, timeout: 60, ...options },
  });
  qr.notify("child-up", probe);
  return { qr, probe, posix };
}

async function writeFile(top: Xlator, path: string, content: Buffer | string, flags = FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL): Promise<void> {
  const fd = new Fd(path, flags);
  await top.create(ctx, { path }, flags, 0o644, fd);
  const data = Buffer.from(content);
  for (let at = 0; at < data.length; at += 1000) await top.write(ctx, fd, data.subarray(at, at + 1000), at);
  await top.flush(ctx, fd);
  await top.release(ctx, fd);
}

async function readFile(top: Xlator, path: string): Promise<string> {
  const fd = new Fd(path, FS.O_RDONLY);
  await top.open(ctx, { path }, FS.O_RDONLY, fd);
  const chunks: Buffer[] = [];
  for (let at = 0; ; ) {
    const b = await top.read(ctx, fd, 131072, at);
    if (b.length === 0) break;
    chunks.push(Buffer.from(b));
    at += b.length;
  }
  await top.flush(ctx, fd);
  await top.release(ctx, fd);
  return Buffer.concat(chunks).toString();
}

test("a small file written whole is read back without reaching the brick: no open, no read", async (t) => {
  const { qr, probe } = setup(t);
  await writeFile(qr, "/f", "x".repeat(2500));
  const before = { open: probe.n("open"), read: probe.n("read"), flush: probe.n("flush"), release: probe.n("release") };
  assert.equal(await readFile(qr, "/f"), "x".repeat(2500));
  assert.deepEqual({ open: probe.n("open"), read: probe.n("read"), flush: probe.n("flush"), release: probe.n("release") }, before);
});

test("a file read whole once is kept: the next read-only open and its reads stay here", async (t) => {
  const { qr, probe, posix } = setup(t);
  await writeFile(posix, "/r", "read me"); // written behind quick-read's back: not known
  await qr.lookup(ctx, { path: "/r" }); // (md-cache's miss, or a listing, shows it which file the name is)
  assert.equal(await readFile(qr, "/r"), "read me");
  assert.equal(probe.n("open"), 1);
  assert.equal(await readFile(qr, "/r"), "read me");
  assert.equal(probe.n("open"), 1, "second open answered here");
  assert.equal(probe.n("read"), 1, "only the first read went down (it reached the end: the rest is served here)");
});

test("files over max-file-size, and writes with a gap, are not kept", async (t) => {
  const { qr, probe } = setup(t, { "max-file-size": 4096 });
  await writeFile(qr, "/big", "b".repeat(5000));
  assert.equal(await readFile(qr, "/big"), "b".repeat(5000));
  assert.equal(probe.n("open"), 1);
  const fd = new Fd("/gap", FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL);
  await qr.create(ctx, { path: "/gap" }, fd.flags, 0o644, fd);
  await qr.write(ctx, fd, Buffer.from("tail"), 10);
  await qr.write(ctx, fd, Buffer.from("head"), 0);
  await qr.flush(ctx, fd);
  await qr.release(ctx, fd);
  assert.equal(await readFile(qr, "/gap"), "head\0\0\0\0\0\0tail");
  assert.equal(probe.n("open"), 2, "read from the brick");
});

test("local changes drop the content: a write through another fd, a truncate", async (t) => {
  const { qr, probe } = setup(t);
  await writeFile(qr, "/c", "first");
  const fd = new Fd("/c", FS.O_WRONLY);
  await qr.open(ctx, { path: "/c" }, FS.O_WRONLY, fd);
  await qr.write(ctx, fd, Buffer.from("FI"), 0);
  await qr.flush(ctx, fd);
  await qr.release(ctx, fd);
  assert.equal(await readFile(qr, "/c"), "FIrst");
  await qr.setattr(ctx, { path: "/c" }, { size: 2 });
  assert.equal(await readFile(qr, "/c"), "FI");
  // while one fd writes it whole, a second writer spoils what the first would keep
  const a = new Fd("/d", FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL);
  await qr.create(ctx, { path: "/d" }, a.flags, 0o644, a);
  const b = new Fd("/d", FS.O_WRONLY);
  await qr.open(ctx, { path: "/d" }, FS.O_WRONLY, b);
  await qr.write(ctx, a, Buffer.from("aaaa"), 0);
  await qr.write(ctx, b, Buffer.from("B"), 1);
  for (const fd of [a, b]) {
    await qr.flush(ctx, fd);
    await qr.release(ctx, fd);
  }
  const opens = probe.n("open");
  assert.equal(await readFile(qr, "/d"), "aBaa");
  assert.equal(probe.n("open"), opens + 1, "nothing was kept for it");
});

test("a reported change drops the content; a removed or renamed name only forgets the name", async (t) => {
  const { qr, probe, posix } = setup(t);
  await writeFile(qr, "/u", "mine");
  const gfid = (await posix.lookup(ctx, { path: "/u" })).stat.gfid;
  // another client rewrites it (behind our back, then reported)
  const fd = new Fd("/u", FS.O_WRONLY);
  await posix.open(ctx, { path: "/u" }, FS.O_WRONLY, fd);
  await posix.write(ctx, fd, Buffer.from("THEIRS"), 0);
  await posix.release(ctx, fd);
  assert.equal(await readFile(qr, "/u"), "mine", "kept until reported");
  qr.othersChanged({ gfids: [gfid], paths: [], entries: [] }, probe);
  assert.equal(await readFile(qr, "/u"), "THEIRS");
  // an open fd survives the file's removal by another client: its reads are still served
  const keep = new Fd("/u", FS.O_RDONLY);
  await qr.open(ctx, { path: "/u" }, FS.O_RDONLY, keep);
  qr.othersChanged({ gfids: [], paths: ["/"], entries: ["/u"] }, probe);
  assert.equal((await qr.read(ctx, keep, 100, 0)).toString(), "THEIRS");
  await qr.release(ctx, keep);
  const opens = probe.n("open");
  await posix.rename(ctx, { path: "/u" }, { path: "/v" });
  assert.equal(await readFile(qr, "/v"), "THEIRS");
  assert.equal(probe.n("open"), opens + 1, "the new name was not known");
});

test("open-behind: something other than a read on a deferred fd sends the open first", async (t) => {
  const { qr, probe } = setup(t);
  await writeFile(qr, "/o", "locked");
  const fd = new Fd("/o", FS.O_RDONLY);
  await qr.open(ctx, { path: "/o" }, FS.O_RDONLY, fd);
  assert.equal(probe.n("open"), 0);
  assert.equal((await qr.fstat(ctx, fd)).size, 6);
  assert.equal(probe.n("open"), 1, "sent when fstat needed it");
  await qr.fsync(ctx, fd, false);
  await qr.flush(ctx, fd);
  await qr.release(ctx, fd);
  assert.equal(probe.n("release"), 2, "the late-opened fd is released on the brick");
});

test("without upcalls (or after a lost connection) nothing is kept", async (t) => {
  const { qr, probe } = setup(t, {}, false);
  await writeFile(qr, "/n", "plain");
  assert.equal(await readFile(qr, "/n"), "plain");
  assert.equal(await readFile(qr, "/n"), "plain");
  assert.equal(probe.n("open"), 2);
  probe.upcalls = true;
  qr.notify("child-up", probe);
  await qr.lookup(ctx, { path: "/n" });
  await readFile(qr, "/n");
  await readFile(qr, "/n");
  assert.equal(probe.n("open"), 3);
  qr.notify("child-down", probe);
  await readFile(qr, "/n");
  assert.equal(probe.n("open"), 4, "a disconnect drops everything");
});

test("a write that fails at flush is not kept", async (t) => {
  const { qr, probe } = setup(t);
  probe.flush = async () => {
    throw Object.assign(new Error("EIO"), { code: "EIO" });
  };
  const fd = new Fd("/e", FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL);
  await qr.create(ctx, { path: "/e" }, fd.flags, 0o644, fd);
  await qr.write(ctx, fd, Buffer.from("lost?"), 0);
  await assert.rejects(qr.flush(ctx, fd));
  await qr.release(ctx, fd);
  assert.equal(qr.dump().files, 0);
});

test("a change through a name quick-read never saw (another hard link) still drops the content", async (t) => {
  const { qr, posix } = setup(t);
  await writeFile(qr, "/a", "shared");
  await posix.link(ctx, { path: "/a" }, { path: "/b" }); // made where quick-read did not see it
  const fd = new Fd("/b", FS.O_WRONLY | FS.O_APPEND);
  await qr.open(ctx, { path: "/b" }, fd.flags, fd);
  await qr.write(ctx, fd, Buffer.from("+more"), 6);
  await qr.flush(ctx, fd);
  await qr.release(ctx, fd);
  assert.equal(await readFile(qr, "/a"), "shared+more");
  await qr.setattr(ctx, { path: "/b" }, { size: 3 });
  assert.equal(await readFile(qr, "/a"), "sha");
});

test("content is kept at most `timeout` from when the servers last heard of the file (their interest lasts that long)", async (t) => {
  const { qr, probe } = setup(t, { timeout: 1 });
  assert.equal(qr.invalidationInterest(), 1, "asks for upcalls for as long as it keeps content");
  await writeFile(qr, "/t", "short-lived");
  await readFile(qr, "/t");
  assert.equal(probe.n("open"), 0);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await readFile(qr, "/t"), "short-lived");
  assert.equal(probe.n("open"), 1, "expired: read from the brick");
});

test("a deferred open reaches the brick before the file is unlinked or renamed over: the descriptor still reads", async (t) => {
  const { qr, probe } = setup(t, {}, true);
  for (const [name, remove] of [
    ["/gone", (p: string) => qr.unlink(ctx, { path: p })],
    ["/over", async (p: string) => {
      await writeFile(qr, "/newer", "newer");
      await qr.rename(ctx, { path: "/newer" }, { path: p });
    }],
  ] as const) {
    await writeFile(qr, name, "orphan");
    const fd = new Fd(name, FS.O_RDONLY);
    const opensBefore = probe.n("open");
    await qr.open(ctx, { path: name }, FS.O_RDONLY, fd);
    assert.equal(probe.n("open"), opensBefore, "open deferred (content known)");
    await remove(name);
    assert.equal(probe.n("open"), opensBefore + 1, `the deferred open was sent before ${name} lost its name`);
    assert.equal((await qr.read(ctx, fd, 100, 0)).toString(), "orphan");
    await qr.release(ctx, fd);
  }
});

test("what is kept holds only its own bytes (not the reply it came in), and an unlinked file's content goes", async (t) => {
  const { qr, posix } = setup(t);
  await writeFile(posix, "/small", "seven b");
  await qr.lookup(ctx, { path: "/small" });
  // The brick answers a 128 KiB read of a 7-byte file with a view of its 128 KiB buffer.
  assert.equal(await readFile(qr, "/small"), "seven b");
  const kept = qr.dump() as { files: number; bytes: number; heldBytes: number };
  assert.deepEqual({ files: kept.files, bytes: kept.bytes, heldBytes: kept.heldBytes }, { files: 1, bytes: 7, heldBytes: 7 });
  await writeFile(qr, "/written", "w".repeat(3000));
  assert.equal((qr.dump() as { files: number }).files, 2);
  await qr.unlink(ctx, { path: "/small" });
  await qr.unlink(ctx, { path: "/written" });
  assert.deepEqual((({ files, bytes }) => ({ files, bytes }))(qr.dump() as { files: number; bytes: number }), { files: 0, bytes: 0 });
});

import { test } from "node:test";
import assert from "node:assert/strict";
import type { IoCache } from "../../runtime/xlators/performance/io-cache";
import type { ReadAhead } from "../../runtime/xlators/performance/read-ahead";
import { MemFs, createFile, ctx, openFile, perf, sleep } from "./perf-memfs";

const RA = "performance/read-ahead";
const IOC = "performance/io-cache";
const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 12)) & 255));

async function seeded(mem: MemFs, path: string, data: Buffer): Promise<void> {
  await mem.create(ctx, { path }, 0, 0o644, undefined as never);
  mem.writeBehindTheBack(path, data);
  mem.calls.length = 0;
}

test("read-ahead: sequential reads are served from pages fetched ahead", async () => {
  const mem = new MemFs();
  const data = pattern(1 << 20);
  await seeded(mem, "/f", data);
  const ra = perf<ReadAhead>(RA, mem, { "page-size": 65536, "page-count": 4 });
  const fd = await openFile(ra, "/f");
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += 4096) parts.push(await ra.read(ctx, fd, 4096, off));
  assert.deepEqual(Buffer.concat(parts), data);
  const reads = mem.calls.filter((c) => c.fop === "read");
  assert.ok(reads.length <= 20, `256 reads of 4 KiB became ${reads.length} reads below`);
  assert.ok(reads.every((r) => r.size! % 65536 === 0 && r.offset! % 65536 === 0), "reads of whole pages");
  const dump = ra.dump() as { inodes: { pages: number[] }[] };
  assert.ok(dump.inodes[0]!.pages.length <= 5, "pages behind the reader are dropped");
});

test("read-ahead: pages ahead are fetched in runs (one read below for several pages), reads within a run are views", async () => {
  const mem = new MemFs();
  const data = pattern(4 << 20);
  await seeded(mem, "/f", data);
  const ra = perf<ReadAhead>(RA, mem, { "page-size": 65536, "page-count": 16 });
  const fd = await openFile(ra, "/f");
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += 131072) parts.push(await ra.read(ctx, fd, 131072, off));
  assert.equal((await ra.read(ctx, fd, 131072, data.length)).length, 0, "end of file");
  assert.deepEqual(Buffer.concat(parts), data);
  const reads = mem.calls.filter((c) => c.fop === "read");
  // 32 reads of two pages each: the first fetches its 2 pages, then the window of 16 is topped up a
  // run of 16 pages at a time.
  assert.ok(reads.length <= 10, `32 reads of 128 KiB became ${reads.length} reads below`);
  assert.ok(reads.filter((r) => r.size! === 16 * 65536).length >= reads.length - 2, "runs of the whole window");
});

test("read-ahead: the kernel's 1 MiB reads with the seed's window (16 x 64 KiB) are one read below each, answered without a copy", async () => {
  const mem = new MemFs();
  const data = pattern(8 << 20);
  await seeded(mem, "/f", data);
  const ra = perf<ReadAhead>(RA, mem, { "page-size": 65536, "page-count": 16 });
  const fd = await openFile(ra, "/f");
  const got: Buffer[] = [];
  for (let off = 0; off < data.length; off += 1 << 20) got.push(await ra.read(ctx, fd, 1 << 20, off));
  assert.deepEqual(Buffer.concat(got), data);
  const reads = mem.calls.filter((c) => c.fop === "read");
  // (and one more past the end: the window ahead does not know where the file ends)
  assert.deepEqual(reads.filter((r) => r.offset! < data.length).map((r) => [r.offset! >> 20, r.size! >> 20]),
    Array.from({ length: 8 }, (_, i) => [i, 1]), "each MiB read below once, in one read");
  // (a read that spanned two runs would be their copy, joined)
  for (const b of got) assert.equal(b.byteOffset, 0);
});

test("read-ahead: a write through another fd drops the prefetched pages of the inode", async () => {
  const mem = new MemFs();
  await seeded(mem, "/f", Buffer.alloc(300000, "a"));
  const ra = perf(RA, mem, { "page-size": 65536, "page-count": 4 });
  const reader = await openFile(ra, "/f");
  const writer = await openFile(ra, "/f");
  assert.equal((await ra.read(ctx, reader, 10, 0)).toString(), "a".repeat(10));
  assert.equal((await ra.read(ctx, reader, 10, 10)).toString(), "a".repeat(10)); // sequential: prefetches pages 1..2
  await sleep(5); // the prefetch lands
  assert.ok(mem.calls.some((c) => c.fop === "read" && c.offset === 65536), "page 1 was prefetched");
  await ra.write(ctx, writer, Buffer.from("bbbb"), 70000);
  assert.equal((await ra.read(ctx, reader, 8, 69998)).toString(), "aabbbbaa");
  await ra.fsetattr(ctx, writer, { size: 100 });
  assert.equal((await ra.read(ctx, reader, 10, 69998)).length, 0, "truncate dropped the pages too");
});

test("read-ahead: a prefetch racing with a write cannot serve the old data afterwards", async () => {
  const mem = new MemFs();
  await seeded(mem, "/f", Buffer.alloc(200000, "a"));
  mem.delay = (fop, rec) => (fop === "read" && rec.offset! > 0 ? 40 : 0);
  const ra = perf(RA, mem, { "page-size": 65536, "page-count": 2 });
  const fd = await openFile(ra, "/f");
  await ra.read(ctx, fd, 10, 0);
  await ra.read(ctx, fd, 10, 10); // sequential: prefetches pages 1 and 2 (slow)
  assert.ok(mem.calls.some((c) => c.fop === "read" && c.offset === 65536), "page 1 is being prefetched");
  await ra.write(ctx, fd, Buffer.from("zz"), 65536);
  assert.equal((await ra.read(ctx, fd, 2, 65536)).toString(), "zz");
});

test("read-ahead: a small file read once (open, read, close) costs one read below", async () => {
  const mem = new MemFs();
  const data = pattern(4096);
  await seeded(mem, "/small", data);
  const ra = perf(RA, mem, { "page-size": 65536, "page-count": 16 });
  const fd = await openFile(ra, "/small");
  assert.deepEqual(await ra.read(ctx, fd, 4096, 0), data);
  await ra.release(ctx, fd);
  assert.equal(mem.count("read"), 1, "no pages fetched past the end of the file");
});

test("read-ahead: random reads pass straight through", async () => {
  const mem = new MemFs();
  const data = pattern(500000);
  await seeded(mem, "/f", data);
  const ra = perf(RA, mem);
  const fd = await openFile(ra, "/f");
  for (const off of [400000, 3, 250000, 100]) assert.deepEqual(await ra.read(ctx, fd, 1000, off), data.subarray(off, off + 1000));
  assert.ok(mem.calls.filter((c) => c.fop === "read").every((r) => r.size === 1000));
});

test("io-cache: repeated reads of a file are served from the cache across opens", async () => {
  const mem = new MemFs();
  const data = pattern(200000);
  await seeded(mem, "/f", data);
  const ioc = perf<IoCache>(IOC, mem, { "cache-timeout": 10 });
  for (let i = 0; i < 5; i++) {
    const fd = await openFile(ioc, "/f");
    assert.deepEqual(await ioc.read(ctx, fd, 200000, 0), data);
    await ioc.release(ctx, fd);
  }
  assert.equal(mem.count("read"), 2, "two pages read once");
  assert.equal(mem.count("fstat"), 1, "validated once within cache-timeout");
});

test("io-cache: a change made by another client is seen once cache-timeout has passed", async () => {
  const mem = new MemFs();
  await seeded(mem, "/f", Buffer.from("old contents"));
  const ioc = perf(IOC, mem, { "cache-timeout": 0.2 });
  const fd = await openFile(ioc, "/f");
  assert.equal((await ioc.read(ctx, fd, 100, 0)).toString(), "old contents");
  mem.writeBehindTheBack("/f", Buffer.from("new contents"));
  await sleep(250);
  assert.equal((await ioc.read(ctx, fd, 100, 0)).toString(), "new contents");
});

test("io-cache: a local write invalidates the cached pages", async () => {
  const mem = new MemFs();
  await seeded(mem, "/f", Buffer.from("0123456789"));
  const ioc = perf(IOC, mem, { "cache-timeout": 60 });
  const fd = await openFile(ioc, "/f");
  assert.equal((await ioc.read(ctx, fd, 10, 0)).toString(), "0123456789");
  await ioc.write(ctx, fd, Buffer.from("ab"), 2);
  assert.equal((await ioc.read(ctx, fd, 10, 0)).toString(), "01ab456789");
  await ioc.setattr(ctx, { path: "/f" }, { size: 4 });
  assert.equal((await ioc.read(ctx, fd, 10, 0)).toString(), "01ab");
});

test("io-cache: cached bytes stay within cache-size, and reconfigure shrinks it live", async () => {
  const mem = new MemFs();
  for (let i = 0; i < 20; i++) await seeded(mem, `/f${i}`, pattern(65536));
  const ioc = perf<IoCache>(IOC, mem, { "cache-size": 262144, "page-size": 65536 });
  for (let i = 0; i < 20; i++) {
    const fd = await openFile(ioc, `/f${i}`);
    await ioc.read(ctx, fd, 65536, 0);
  }
  await sleep(1);
  assert.ok((ioc.dump() as { cachedBytes: number }).cachedBytes <= 262144);
  const r = ioc.reconfigure({ "cache-size": 65536, "cache-timeout": 2, "page-size": 65536 });
  assert.deepEqual(r.applied.sort(), ["cache-size", "cache-timeout"]);
  assert.ok((ioc.dump() as { cachedBytes: number }).cachedBytes <= 65536);
});

test("io-cache: a file created anew under a cached name is not served the old data", async () => {
  const mem = new MemFs();
  const ioc = perf(IOC, mem, { "cache-timeout": 60 });
  let fd = await createFile(ioc, "/f");
  await ioc.write(ctx, fd, Buffer.from("first"), 0);
  assert.equal((await ioc.read(ctx, fd, 10, 0)).toString(), "first");
  await ioc.unlink(ctx, { path: "/f" });
  fd = await createFile(ioc, "/f");
  await ioc.write(ctx, fd, Buffer.from("2nd"), 0);
  assert.equal((await ioc.read(ctx, fd, 10, 0)).toString(), "2nd");
});

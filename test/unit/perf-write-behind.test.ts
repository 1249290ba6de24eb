import { test } from "node:test";
import assert from "node:assert/strict";
import { FopError } from "../../runtime/core/errors";
import type { WriteBehind } from "../../runtime/xlators/performance/write-behind";
import { MemFs, createFile, ctx, openFile, perf, sleep } from "./perf-memfs";

const WB = "performance/write-behind";
const fill = (ch: string, n: number) => Buffer.alloc(n, ch);

/**
 * A child that holds each write until the test lets it go: "before the write landed" is then a state
 * to assert, not a race against a timer. A write held 2 s goes anyway, so a translator that waits
 * for it fails the test's assertions instead of hanging it.
 */
class HeldWrites extends MemFs {
  /** Writes that reached this child and have not landed yet. */
  unlanded = 0;
  private readonly held: (() => void)[] = [];
  private allGo = false;
  /** Lets the oldest `n` held writes go; with no argument all of them, and every later write. */
  letGo(n = Infinity): void {
    if (n === Infinity) this.allGo = true;
    for (const go of this.held.splice(0, n)) go();
  }
  override async write(c: typeof ctx, fd: Parameters<MemFs["write"]>[1], data: Buffer, offset: number): Promise<number> {
    this.unlanded++;
    try {
      if (!this.allGo) {
        await new Promise<void>((resolve) => {
          const go = () => {
            clearTimeout(timer);
            const i = this.held.indexOf(go);
            if (i >= 0) this.held.splice(i, 1);
            resolve();
          };
          const timer = setTimeout(go, 2000);
          this.held.push(go);
        });
      }
      return await super.write(c, fd, data, offset);
    } finally {
      this.unlanded--;
    }
  }
}

test("write is acknowledged before the child has written it", async () => {
  const mem = new HeldWrites();
  const wb = perf<WriteBehind>(WB, mem);
  const fd = await createFile(wb, "/f");
  assert.equal(await wb.write(ctx, fd, fill("a", 4096), 0), 4096);
  assert.equal(mem.unlanded, 1, "acknowledged while the child still holds the write");
  assert.equal(mem.files.get("/f")!.data.length, 0, "not yet written below");
  mem.letGo();
  await wb.fsync(ctx, fd, false);
  assert.deepEqual(mem.files.get("/f")!.data, fill("a", 4096));
});

test("contiguous small writes are aggregated up to aggregate-size", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 20 : 0);
  const wb = perf(WB, mem, { "aggregate-size": 65536 });
  const fd = await createFile(wb, "/f");
  for (let i = 0; i < 64; i++) await wb.write(ctx, fd, fill(String.fromCharCode(97 + (i % 26)), 4096), i * 4096);
  await wb.flush(ctx, fd);
  const writes = mem.calls.filter((c) => c.fop === "write");
  assert.ok(writes.length <= 12, `64 writes of 4 KiB became ${writes.length} writes below`);
  assert.ok(writes.every((w) => w.size! <= 65536));
  const expected = Buffer.concat(Array.from({ length: 64 }, (_, i) => fill(String.fromCharCode(97 + (i % 26)), 4096)));
  assert.deepEqual(mem.files.get("/f")!.data, expected);
});

test("overlapping writes land in the order they were made", async () => {
  const mem = new MemFs();
  // The first write is slow: a translator that sent the second one alongside would let it land first.
  mem.delay = (fop, rec) => (fop === "write" && rec.offset === 0 ? 60 : 0);
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  await wb.write(ctx, fd, fill("a", 8192), 0);
  await wb.write(ctx, fd, fill("b", 4096), 4096);
  await wb.fsync(ctx, fd, false);
  assert.deepEqual(mem.files.get("/f")!.data, Buffer.concat([fill("a", 4096), fill("b", 4096)]));
});

test("a read sees the writes made before it", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 30 : 0);
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  await wb.write(ctx, fd, Buffer.from("hello world"), 0);
  const other = await openFile(wb, "/f");
  assert.equal((await wb.read(ctx, other, 100, 0)).toString(), "hello world");
});

test("fstat, stat and lookup report the size including pending writes", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 80 : 0);
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  await wb.write(ctx, fd, fill("x", 10000), 0);
  assert.equal(mem.files.get("/f")!.data.length, 0);
  assert.equal((await wb.fstat(ctx, fd)).size, 10000);
  assert.equal((await wb.stat(ctx, { path: "/f" })).size, 10000);
  assert.equal((await wb.lookup(ctx, { path: "/f" })).stat.size, 10000);
});

test("a size answered below before a pending write landed, but arriving after it, still counts the write", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 30 : 0);
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  // The server's answer is made at once and delivered late: by then the write has landed (and the
  // inode is idle), but the answer does not know it.
  for (const fop of ["lookup", "stat", "fstat"] as const) {
    const real = (mem[fop] as (...a: unknown[]) => Promise<unknown>).bind(mem);
    (mem as unknown as Record<string, unknown>)[fop] = async (...a: unknown[]) => {
      const r = await real(...a);
      await sleep(80);
      return r;
    };
  }
  let end = 0;
  for (const ask of [
    () => wb.lookup(ctx, { path: "/f" }).then((r) => r.stat.size),
    () => wb.stat(ctx, { path: "/f" }).then((s) => s.size),
    () => wb.fstat(ctx, fd).then((s) => s.size),
  ]) {
    end += 1000;
    await wb.write(ctx, fd, fill("x", 1000), end - 1000);
    const size = await ask();
    assert.equal(mem.files.get("/f")!.data.length, end, "the write landed meanwhile");
    assert.equal(size, end);
  }
});

test("a background write's error is reported on the next write, and again by the next fsync (which the caller cannot miss)", async () => {
  const mem = new MemFs();
  let failures = 1;
  mem.fail = (fop) => {
    if (fop === "write" && failures-- > 0) throw new FopError("ENOSPC");
  };
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  assert.equal(await wb.write(ctx, fd, fill("a", 100), 0), 100);
  await sleep(10);
  await assert.rejects(wb.write(ctx, fd, fill("b", 100), 100), { code: "ENOSPC" });
  assert.equal(await wb.write(ctx, fd, fill("c", 100), 100), 100);
  // The kernel turns a failed write into a short one when part of the caller's buffer was taken, so
  // that write's error may never reach the caller: fsync reports it again, once.
  await assert.rejects(wb.fsync(ctx, fd, false), { code: "ENOSPC" });
  await wb.fsync(ctx, fd, false);
});

test("an error a write reported is reported again by close (flush), with and without flush-behind", async () => {
  for (const flushBehind of [false, true]) {
    const mem = new MemFs();
    let failures = 1;
    mem.fail = (fop) => {
      if (fop === "write" && failures-- > 0) throw new FopError("EIO");
    };
    const wb = perf(WB, mem, { "flush-behind": flushBehind });
    const fd = await createFile(wb, "/f");
    await wb.write(ctx, fd, fill("a", 100), 0);
    await sleep(10);
    await assert.rejects(wb.write(ctx, fd, fill("b", 100), 100), { code: "EIO" });
    await assert.rejects(wb.flush(ctx, fd), { code: "EIO" }, `flush-behind ${flushBehind}`);
  }
});

test("a background write's error is reported by fsync, which waits for the writes before it", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 30 : 0);
  mem.fail = (fop, rec) => {
    if (fop === "write" && rec.offset === 0) throw new FopError("EIO");
  };
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  await wb.write(ctx, fd, fill("a", 100), 0);
  await assert.rejects(wb.fsync(ctx, fd, false), { code: "EIO" });
  await wb.fsync(ctx, fd, false); // reported once
});

test("a background write's error is reported by flush (close)", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 30 : 0);
  mem.fail = (fop) => {
    if (fop === "write") throw new FopError("EDQUOT");
  };
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  await wb.write(ctx, fd, fill("a", 100), 0);
  await assert.rejects(wb.flush(ctx, fd), { code: "EDQUOT" });
  assert.equal(mem.count("flush"), 1, "the child's flush still ran (it releases locks)");
  await wb.release(ctx, fd);
});

test("with flush-behind an error missed by close is reported by the next fsync of the file", async () => {
  const mem = new HeldWrites();
  let failures = 1;
  mem.fail = (fop) => {
    if (fop === "write" && failures-- > 0) throw new FopError("EIO");
  };
  const wb = perf(WB, mem, { "flush-behind": true });
  const fd = await createFile(wb, "/f");
  await wb.write(ctx, fd, fill("a", 100), 0);
  await wb.flush(ctx, fd);
  assert.equal(mem.unlanded, 1, "flush returned while the write was still held below");
  mem.letGo();
  await wb.release(ctx, fd);
  const again = await openFile(wb, "/f");
  await assert.rejects(wb.fsync(ctx, again, false), { code: "EIO" });
});

test("truncate waits for earlier writes, so they cannot land after it", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 40 : 0);
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  await wb.write(ctx, fd, fill("a", 5000), 0);
  await wb.setattr(ctx, { path: "/f" }, { size: 10 });
  await sleep(60);
  assert.equal(mem.files.get("/f")!.data.length, 10);
  await wb.write(ctx, fd, fill("b", 5), 20);
  await wb.fsetattr(ctx, fd, { size: 0 });
  assert.equal(mem.files.get("/f")!.data.length, 0);
});

test("at most window-size bytes are pending; further writers wait", async () => {
  const mem = new HeldWrites();
  const wb = perf<WriteBehind>(WB, mem, { "window-size": 8192, "aggregate-size": 4096 });
  const fd = await createFile(wb, "/f");
  const pendingBytes = () => (wb.dump() as { inodes: { pendingBytes: number }[] }).inodes[0]!.pendingBytes;
  await wb.write(ctx, fd, fill("a", 4096), 0);
  await wb.write(ctx, fd, fill("b", 4096), 4096);
  let thirdDone = false;
  const third = wb.write(ctx, fd, fill("c", 4096), 8192).finally(() => (thirdDone = true));
  await new Promise(setImmediate); // (anything not waiting for the child has settled by now)
  assert.equal(mem.unlanded, 2);
  assert.equal(thirdDone, false, "third write waits for room in the window while both are held below");
  assert.equal(pendingBytes(), 8192);
  mem.letGo(1); // the first write lands: room for the third, the second still held
  await third;
  assert.equal(mem.unlanded, 2, "the third went down beside the still-held second");
  assert.ok(pendingBytes() <= 8192);
  mem.letGo();
  await wb.fsync(ctx, fd, false);
  assert.deepEqual(mem.files.get("/f")!.data, Buffer.concat([fill("a", 4096), fill("b", 4096), fill("c", 4096)]));
});

test("the caller's buffer may be reused as soon as write returns", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 20 : 0);
  const wb = perf(WB, mem);
  const fd = await createFile(wb, "/f");
  const buf = fill("a", 100);
  await wb.write(ctx, fd, buf, 0);
  buf.fill("z");
  await wb.fsync(ctx, fd, false);
  assert.deepEqual(mem.files.get("/f")!.data, fill("a", 100));
});

test("reconfigure applies aggregate-size, window-size and flush-behind live; dump shows the queue", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 30 : 0);
  const wb = perf<WriteBehind>(WB, mem);
  const r = wb.reconfigure({ "aggregate-size": 8192, "window-size": 65536, "flush-behind": true });
  assert.deepEqual(r.applied.sort(), ["aggregate-size", "flush-behind", "window-size"]);
  assert.deepEqual(r.needsRestart, []);
  const fd = await createFile(wb, "/f");
  for (let i = 0; i < 8; i++) await wb.write(ctx, fd, fill("a", 4096), i * 4096);
  const dump = wb.dump() as { inodes: { pendingBytes: number; queued: number; inFlight: number }[] };
  assert.equal(dump.inodes[0]!.pendingBytes, 32768);
  assert.ok(dump.inodes[0]!.inFlight >= 1);
  await wb.fsync(ctx, fd, false);
  assert.ok(mem.calls.filter((c) => c.fop === "write").every((w) => w.size! <= 8192));
});

test("aggregate-size larger than window-size is refused at init", () => {
  assert.throws(() => perf(WB, new MemFs(), { "aggregate-size": 1048576, "window-size": 65536 }), { code: "ECONFIG" });
});

test("closing an fd that changed nothing costs no flush below, unless this client ever took an fcntl lock", async () => {
  const mem = new MemFs();
  const wb = perf<WriteBehind>(WB, mem);
  const created = await createFile(wb, "/f");
  await wb.write(ctx, created, fill("a", 100), 0);
  await wb.flush(ctx, created);
  assert.equal(mem.count("flush"), 1, "a written fd's close reaches the servers (replication ends its batch)");
  const reader = await openFile(wb, "/f");
  await wb.read(ctx, reader, 100, 0);
  await wb.flush(ctx, reader);
  assert.equal(mem.count("flush"), 1, "a read-only use of the file: nothing to flush");
  const truncated = await openFile(wb, "/f");
  await wb.fsetattr(ctx, truncated, { size: 0 });
  await wb.flush(ctx, truncated);
  assert.equal(mem.count("flush"), 2, "fsetattr counts as a change");
  // once any fcntl lock was asked for, every close must release the owner's locks below
  await wb.lk(ctx, reader, "setlk", { type: "rd", start: 0, len: 0, pid: 1 }).catch(() => undefined);
  const again = await openFile(wb, "/f");
  await wb.flush(ctx, again);
  assert.equal(mem.count("flush"), 3);
  assert.equal((wb.dump() as { flushesSkipped: number }).flushesSkipped, 1);
});

for (const size of [131072, 1 << 20]) {
  test(`copies of ${size >> 10} KiB writes come from a pool: reused once the write below has settled, never before`, async () => {
    // A child that keeps the buffer it is given until the write settles and checks it was not touched meanwhile.
    class HoldingMemFs extends MemFs {
      altered = 0;
      override async write(c: typeof ctx, fd: Parameters<MemFs["write"]>[1], data: Buffer, offset: number): Promise<number> {
        const before = Buffer.from(data);
        const n = await super.write(c, fd, data, offset);
        await sleep(2);
        if (!data.equals(before)) this.altered++;
        return n;
      }
    }
    const mem = new HoldingMemFs();
    mem.delay = (fop) => (fop === "write" ? 3 : 0);
    const wb = perf<WriteBehind>(WB, mem, { "window-size": 8 * size }); // 8 writes' worth: 40 writes must reuse
    const fd = await createFile(wb, "/f");
    const chunks = Array.from({ length: 40 }, (_, i) => fill(String.fromCharCode(97 + (i % 26)), size));
    const kernelBuffer = Buffer.alloc(size);
    for (let i = 0; i < chunks.length; i++) {
      chunks[i]!.copy(kernelBuffer); // FUSE reuses its buffer for the next request
      await wb.write(ctx, fd, kernelBuffer, i * size);
    }
    await wb.fsync(ctx, fd, false);
    assert.deepEqual(mem.files.get("/f")!.data, Buffer.concat(chunks));
    assert.equal(mem.altered, 0, "no pooled buffer was reused while a write below still held it");
    const pool = (wb.dump() as { pool: { size: number; made: number; outstanding: number } }).pool;
    assert.equal(pool.size, size, "the pool's buffers are of the largest write");
    assert.equal(pool.outstanding, 0);
    assert.ok(pool.made <= 12, `40 writes made ${pool.made} buffers (a window's worth is enough)`);
  });
}

test("the write pool grows to the largest write (1 MiB at most); smaller writes after it are copied as they are", async () => {
  const mem = new MemFs();
  mem.delay = (fop) => (fop === "write" ? 2 : 0);
  const wb = perf<WriteBehind>(WB, mem, { "window-size": 8 << 20 });
  const fd = await createFile(wb, "/f");
  const pool = () => (wb.dump() as { pool: { size: number; outstanding: number } }).pool;
  const writes = [fill("a", 131072), fill("b", 700_000), fill("c", 131072), fill("d", 2 << 20), fill("e", 1 << 20)];
  const sizes: number[] = [];
  let at = 0;
  for (const w of writes) {
    await wb.write(ctx, fd, w, at);
    at += w.length;
    sizes.push(pool().size);
  }
  await wb.fsync(ctx, fd, false);
  assert.deepEqual(mem.files.get("/f")!.data, Buffer.concat(writes));
  assert.deepEqual(sizes, [131072, 1 << 20, 1 << 20, 1 << 20, 1 << 20], "grows to a power of two, never past 1 MiB, never shrinks");
  assert.equal(pool().outstanding, 0, "buffers taken from the smaller pool were counted back");
});

test("close sends its flush right behind writes in flight when no lock was taken, after them when one was or a write is still queued", async () => {
  const mem = new MemFs();
  let landedAtFlush: number[] = [];
  mem.delay = (fop) => {
    if (fop === "flush") landedAtFlush.push(mem.files.get("/f")?.data.length ?? -1);
    return fop === "write" ? 40 : 0;
  };
  const wb = perf<WriteBehind>(WB, mem);
  const fd = await createFile(wb, "/f");
  await wb.write(ctx, fd, fill("a", 100), 0);
  await wb.flush(ctx, fd);
  assert.deepEqual(landedAtFlush, [0], "the flush went down while the write was in flight");
  assert.equal(mem.files.get("/f")!.data.length, 100, "close returned only once the write had landed");
  // an overlapping write waits for the first (queued, not sent): the flush must not pass it
  landedAtFlush = [];
  const second = await openFile(wb, "/f");
  await wb.write(ctx, second, fill("b", 200), 0);
  await wb.write(ctx, second, fill("c", 50), 0);
  await wb.flush(ctx, second);
  assert.deepEqual(landedAtFlush, [200]);
  assert.deepEqual(mem.files.get("/f")!.data, Buffer.concat([fill("c", 50), fill("b", 150)]));
  // once this client took an fcntl lock, a flush may release one: it waits for the writes
  await wb.lk(ctx, second, "setlk", { type: "wr", start: 0, len: 0, pid: 1 }).catch(() => undefined);
  landedAtFlush = [];
  const third = await openFile(wb, "/f");
  await wb.write(ctx, third, fill("d", 300), 0);
  await wb.flush(ctx, third);
  assert.deepEqual(landedAtFlush, [300]);
});

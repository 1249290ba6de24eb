// All four performance translators stacked in different orders over a child with random latencies
// must behave like a plain file to a caller that awaits each call (what a FUSE mount does per fd).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Xlator } from "../../runtime/core/xlator";
import { MemFs, createFile, ctx, openFile, perf } from "./perf-memfs";

const TYPES = ["performance/io-threads", "performance/write-behind", "performance/read-ahead", "performance/io-cache"];
const ORDERS = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1], [1, 2, 3, 0], [3, 1, 2, 0]];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

for (const order of ORDERS) {
  const names = order.map((i) => TYPES[i]!.split("/")[1]).join(" > ");
  test(`stack ${names}: reads, sizes and the final file match a plain file`, async () => {
    const rand = rng(order.join("").length * 7919 + order[0]! * 31 + order[1]!);
    const mem = new MemFs();
    mem.delay = () => (rand() < 0.3 ? Math.floor(rand() * 4) : 0);
    let top: Xlator = mem;
    for (const i of [...order].reverse()) {
      top = perf(TYPES[i]!, top, { "page-size": 4096, "page-count": 3, "aggregate-size": 8192, "window-size": 32768, "cache-timeout": 0.05, "thread-count": 4 });
    }
    let model = Buffer.alloc(0);
    const fds = [await createFile(top, "/f"), await openFile(top, "/f")];
    for (let step = 0; step < 400; step++) {
      const fd = fds[Math.floor(rand() * 2)]!;
      const r = rand();
      const off = Math.floor(rand() * 40000);
      const len = 1 + Math.floor(rand() * 9000);
      if (r < 0.4) {
        const data = Buffer.alloc(len, 97 + (step % 26));
        await top.write(ctx, fd, data, off);
        if (model.length < off + len) {
          const g = Buffer.alloc(off + len);
          model.copy(g);
          model = g;
        }
        data.copy(model, off);
      } else if (r < 0.55) {
        // mostly sequential reads so read-ahead prefetches
        const start = rand() < 0.7 ? (step * 4096) % 40000 : off;
        const got = await top.read(ctx, fd, len, start);
        assert.deepEqual(got, model.subarray(start, start + len), `step ${step}: read ${len}@${start}`);
      } else if (r < 0.65) {
        assert.equal((await top.fstat(ctx, fd)).size, model.length, `step ${step}: fstat size`);
      } else if (r < 0.7) {
        assert.equal((await top.stat(ctx, { path: "/f" })).size, model.length, `step ${step}: stat size`);
      } else if (r < 0.75) {
        const size = Math.floor(rand() * 30000);
        await top.fsetattr(ctx, fd, { size });
        const t = Buffer.alloc(size);
        model.copy(t, 0, 0, Math.min(size, model.length));
        model = t;
      } else if (r < 0.8) {
        await top.fsync(ctx, fd, false);
      } else {
        const got = await top.read(ctx, fd, len, off);
        assert.deepEqual(got, model.subarray(off, off + len), `step ${step}: read ${len}@${off}`);
      }
    }
    for (const fd of fds) {
      await top.flush(ctx, fd);
      await top.release(ctx, fd);
    }
    assert.deepEqual(mem.files.get("/f")!.data, model);
  });
}

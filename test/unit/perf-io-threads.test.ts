import { test } from "node:test";
import assert from "node:assert/strict";
import type { IoThreads } from "../../runtime/xlators/performance/io-threads";
import type { CallCtx, Flock, LkCmd, Loc } from "../../runtime/core/types";
import { MemFs, createFile, ctx, perf } from "./perf-memfs";

const IOT = "performance/io-threads";

test("io-threads: at most thread-count fops are in flight below it", async () => {
  const mem = new MemFs();
  await mem.create(ctx, { path: "/f" }, 0, 0o644, undefined as never);
  mem.delay = () => 50;
  const iot = perf<IoThreads>(IOT, mem, { "thread-count": 3 });
  const all = Array.from({ length: 20 }, () => iot.stat(ctx, { path: "/f" }));
  await new Promise(setImmediate); // (the first three are under way; none can have finished)
  const d = iot.dump() as { active: number; waiting: number };
  assert.equal(d.active, 3);
  assert.equal(d.waiting, 17);
  await Promise.all(all);
  assert.equal(mem.maxInFlight, 3);
});

test("io-threads: a slow fop does not hold up the others", async () => {
  const mem = new MemFs();
  await mem.create(ctx, { path: "/slow" }, 0, 0o644, undefined as never);
  await mem.create(ctx, { path: "/fast" }, 0, 0o644, undefined as never);
  mem.delay = () => 2;
  // The slow stat is held below until the fast ones are done (2 s at most: a translator that made
  // them wait for it then fails the assertion instead of hanging), so no timing is assumed.
  let letGo!: () => void;
  const held = new Promise<void>((r) => (letGo = r));
  const fallback = setTimeout(letGo, 2000);
  const stat = mem.stat.bind(mem);
  mem.stat = async (c, loc) => {
    if (loc.path === "/slow") await held;
    return stat(c, loc);
  };
  const iot = perf(IOT, mem, { "thread-count": 2 });
  let slowDone = false;
  const slow = iot.stat(ctx, { path: "/slow" }).finally(() => (slowDone = true));
  for (let i = 0; i < 10; i++) await iot.stat(ctx, { path: "/fast" });
  assert.equal(slowDone, false, "fast fops ran beside the slow one, which is still under way");
  letGo();
  clearTimeout(fallback);
  await slow;
});

test("io-threads: overlapping writes of an fd run in the order they were made", async () => {
  const mem = new MemFs();
  const iot = perf(IOT, mem, { "thread-count": 8 });
  const fd = await createFile(iot, "/f");
  mem.delay = (fop, rec) => (fop === "write" && rec.offset === 0 ? 50 : 0);
  await Promise.all([
    iot.write(ctx, fd, Buffer.alloc(100, "a"), 0),
    iot.write(ctx, fd, Buffer.alloc(50, "b"), 50),
  ]);
  assert.equal(mem.files.get("/f")!.data.toString(), "a".repeat(50) + "b".repeat(50));
});

test("io-threads: fsync waits for the fd's earlier writes", async () => {
  const mem = new MemFs();
  const iot = perf(IOT, mem, { "thread-count": 8 });
  const fd = await createFile(iot, "/f");
  mem.delay = (fop) => (fop === "write" ? 40 : 0);
  const w = iot.write(ctx, fd, Buffer.alloc(10, "a"), 0);
  await iot.fsync(ctx, fd, false);
  const order = mem.calls.filter((c) => c.fop === "write" || c.fop === "fsync").map((c) => c.fop);
  assert.deepEqual(order, ["write", "fsync"]);
  assert.equal(mem.files.get("/f")!.data.length, 10, "the write was done before fsync returned");
  await w;
});

test("io-threads: queued write bytes stay within cache-size; writers wait", async () => {
  const mem = new MemFs();
  const iot = perf<IoThreads>(IOT, mem, { "thread-count": 1, "cache-size": 16384 });
  const fd = await createFile(iot, "/f");
  mem.delay = (fop) => (fop === "write" ? 10 : 0);
  let maxQueued = 0;
  const timer = setInterval(() => {
    maxQueued = Math.max(maxQueued, (iot.dump() as { queuedWriteBytes: number }).queuedWriteBytes);
  }, 1);
  await Promise.all(Array.from({ length: 16 }, (_, i) => iot.write(ctx, fd, Buffer.alloc(4096, "x"), i * 4096)));
  clearInterval(timer);
  assert.ok(maxQueued > 0 && maxQueued <= 16384, `queued ${maxQueued}`);
  assert.equal(mem.files.get("/f")!.data.length, 65536);
});

test("io-threads: blocking lock fops do not take slots (an unlock can always get through)", async () => {
  const mem = new MemFs();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  mem.inodelk = async (_c: CallCtx, _d: string, _l: Loc, cmd: LkCmd, lock: Flock) => {
    if (cmd === "setlkw" && lock.type === "wr") await held;
    if (lock.type === "un") release();
    return lock;
  };
  const iot = perf(IOT, mem, { "thread-count": 1 });
  const waiting = iot.inodelk(ctx, "d", { path: "/" }, "setlkw", { type: "wr", start: 0, len: 0, pid: 1 });
  await iot.inodelk(ctx, "d", { path: "/" }, "setlk", { type: "un", start: 0, len: 0, pid: 2 });
  await waiting;
});

test("io-threads: reconfigure changes thread-count live", async () => {
  const mem = new MemFs();
  await mem.create(ctx, { path: "/f" }, 0, 0o644, undefined as never);
  mem.delay = () => 20;
  const iot = perf<IoThreads>(IOT, mem, { "thread-count": 1 });
  const all = Array.from({ length: 8 }, () => iot.stat(ctx, { path: "/f" }));
  await new Promise(setImmediate);
  assert.deepEqual(iot.reconfigure({ "thread-count": 4, "cache-size": 1048576 }).applied.sort(), ["cache-size", "thread-count"]);
  await Promise.all(all);
  assert.equal(mem.maxInFlight, 4);
});

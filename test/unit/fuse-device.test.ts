// The fuse_device addon (runtime/fuse/kernel/fuse_device.c, built by scripts/build-fuse-device.sh):
// readiness callbacks, read/writev results as byte counts or -errno, argument checks. A FIFO opened
// O_RDWR|O_NONBLOCK stands in for /dev/fuse; the real device is only opened, never mounted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, constants as fsc, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findFuseDevice, loadFuseDevice } from "../../runtime/fuse/kernel/device";

const dev = loadFuseDevice();
const EAGAIN = -11;

function withFifo(fn: (fd: number, dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "fuse-device-"));
    const path = join(dir, "fifo");
    execFileSync("mkfifo", [path]);
    const fd = openSync(path, fsc.O_RDWR | fsc.O_NONBLOCK);
    try {
      await fn(fd, dir);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

test("watch fires when data arrives, read returns it, then EAGAIN", withFifo(async (fd) => {
  const buf = Buffer.alloc(64);
  assert.equal(dev.read(fd, buf), EAGAIN);
  const got: string[] = [];
  let fired!: () => void;
  const firedOnce = new Promise<void>((r) => (fired = r));
  const w = dev.watch(fd, () => {
    // Level-triggered: drain until EAGAIN so the poll does not fire again for the same bytes.
    for (let n; (n = dev.read(fd, buf)) > 0; ) got.push(buf.subarray(0, n).toString());
    fired();
  });
  try {
    await tick(20);
    assert.deepEqual(got, [], "no callback before data");
    writeSync(fd, "hello");
    await firedOnce;
    assert.deepEqual(got, ["hello"]);
    assert.equal(dev.read(fd, buf), EAGAIN);
  } finally {
    w.close();
  }
}));

test("read fills at most buf.length and leaves the rest", withFifo((fd) => {
  writeSync(fd, "abcdef");
  const small = Buffer.alloc(4);
  assert.equal(dev.read(fd, small), 4);
  assert.equal(small.toString(), "abcd");
  assert.equal(dev.read(fd, new Uint8Array(16)), 2);
  assert.equal(dev.read(fd, Buffer.alloc(0)), 0);
}));

test("writev writes the buffers in order, as one write", withFifo((fd) => {
  const header = Buffer.from("HEAD:");
  const body = Buffer.from("body-bytes");
  assert.equal(dev.writev(fd, [header, body]), header.length + body.length);
  const out = Buffer.alloc(64);
  const n = readSync(fd, out);
  assert.equal(out.subarray(0, n).toString(), "HEAD:body-bytes");
  assert.equal(dev.writev(fd, []), 0);
  const many = Array.from({ length: 16 }, (_, i) => Buffer.from(String.fromCharCode(97 + i)));
  assert.equal(dev.writev(fd, many), 16);
  assert.equal(dev.read(fd, out), 16);
  assert.equal(out.subarray(0, 16).toString(), "abcdefghijklmnop");
}));

test("read and writev return -errno instead of throwing", withFifo((fd, dir) => {
  const EBADF = -9;
  const closed = openSync(join(dir, "fifo"), fsc.O_RDWR | fsc.O_NONBLOCK);
  closeSync(closed);
  assert.equal(dev.read(closed, Buffer.alloc(8)), EBADF);
  assert.equal(dev.writev(closed, [Buffer.from("x")]), EBADF);
  // A full pipe: writev says EAGAIN.
  const chunk = Buffer.alloc(65536);
  let n: number;
  while ((n = dev.writev(fd, [chunk])) > 0);
  assert.equal(n, EAGAIN);
}));

test("close stops the callbacks; a second close is harmless", withFifo(async (fd) => {
  let calls = 0;
  const w = dev.watch(fd, () => {
    calls++;
    if (calls === 1) w.close(); // closing from inside the callback is fine too
  });
  writeSync(fd, "x"); // never read: a live level-triggered poll would fire on every loop turn
  await tick(50);
  assert.equal(calls, 1);
  w.close();
  w.close();
  const w2 = dev.watch(fd, () => calls++);
  w2.close();
  await tick(50);
  assert.equal(calls, 1);
  w2.close();
}));

test("the callback runs like a Node I/O callback: microtasks drain right after it", withFifo(async (fd) => {
  const order: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const w = dev.watch(fd, () => {
    w.close();
    dev.read(fd, Buffer.alloc(8));
    order.push("callback");
    setImmediate(() => {
      order.push("immediate");
      done();
    });
    process.nextTick(() => order.push("nextTick"));
    void Promise.resolve().then(() => order.push("promise"));
  });
  writeSync(fd, "x");
  await finished;
  assert.deepEqual(order, ["callback", "nextTick", "promise", "immediate"]);
}));

test("a throw in the callback is an uncaught exception (process survives if handled)", withFifo((_fd, dir) => {
  const addon = findFuseDevice();
  assert.ok(addon);
  const script = (handled: boolean) => `
    const fs = require("fs");
    const dev = require(${JSON.stringify(addon)});
    const fd = fs.openSync(${JSON.stringify(join(dir, "fifo"))}, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const w = dev.watch(fd, () => { w.close(); throw new Error("boom from onReadable"); });
    ${handled ? 'process.on("uncaughtException", (e) => { console.log("caught:" + e.message); fs.closeSync(fd); });' : ""}
    fs.writeSync(fd, "x");
  `;
  const r = spawnSync(process.execPath, ["-e", script(true)], { encoding: "utf8", timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "caught:boom from onReadable");
  // Unhandled: the process dies with the error, like any uncaught exception.
  const r2 = spawnSync(process.execPath, ["-e", script(false)], { encoding: "utf8", timeout: 10_000 });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /boom from onReadable/);
}));

test("bad arguments throw TypeError", withFifo((fd) => {
  const buf = Buffer.alloc(8);
  const bad: Array<() => unknown> = [
    () => (dev.read as (...a: unknown[]) => number)(),
    () => (dev.read as (...a: unknown[]) => number)(fd),
    () => dev.read("3" as unknown as number, buf),
    () => dev.read(-1, buf),
    () => dev.read(1.5, buf),
    () => dev.read(fd, "abc" as unknown as Buffer),
    () => dev.writev(fd, buf as unknown as Buffer[]),
    () => dev.writev(fd, ["a"] as unknown as Buffer[]),
    () => dev.writev(fd, Array.from({ length: 17 }, () => buf)),
    () => dev.writev(NaN, [buf]),
    () => dev.watch(fd, 1 as unknown as () => void),
    () => dev.watch(-2, () => {}),
  ];
  for (const f of bad) assert.throws(f, TypeError, String(f));
}));

test("watch on something that cannot be polled throws a libuv error", () => {
  const dir = mkdtempSync(join(tmpdir(), "fuse-device-"));
  const file = join(dir, "plain");
  writeFileSync(file, "x");
  const fd = openSync(file, "r");
  try {
    assert.throws(() => dev.watch(fd, () => {}), (e: NodeJS.ErrnoException) => e.code === "EPERM");
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unmounted /dev/fuse fd: read gives -errno, not an exception", (t) => {
  let fd: number;
  try {
    fd = openSync("/dev/fuse", fsc.O_RDWR | fsc.O_NONBLOCK);
  } catch (e) {
    t.skip(`/dev/fuse: ${(e as Error).message}`);
    return;
  }
  try {
    assert.equal(dev.read(fd, Buffer.alloc(8192)), -1); // EPERM: no session on this fd yet
    assert.ok(dev.writev(fd, [Buffer.alloc(16)]) < 0);
  } finally {
    closeSync(fd);
  }
});

test("trimHeap gives freed 1 MiB buffers between live ones back to the system", () => {
  // In a child of its own: a fresh malloc heap, and gc() to free the buffers now.
  const script = `
const dev = require(${JSON.stringify(findFuseDevice())});
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require("fs").readFileSync("/proc/self/status", "utf8"))[1]) / 1024;
let first = Buffer.allocUnsafeSlow(2 << 20).fill(1); first = null; gc(); // glibc now serves up to 2 MiB from its heap
const kept = [], dropped = [];
for (let i = 0; i < 64; i++) { dropped.push(Buffer.allocUnsafeSlow(1 << 20).fill(2)); kept.push(Buffer.allocUnsafeSlow(200 << 10).fill(3)); }
dropped.length = 0; gc(); gc();
const before = rss();
const r = dev.trimHeap();
console.log(JSON.stringify({ before, after: rss(), r, kept: kept.length }));`;
  const out = spawnSync(process.execPath, ["--expose-gc", "-e", script], { encoding: "utf8", env: { ...process.env, MALLOC_ARENA_MAX: "2" } });
  assert.equal(out.status, 0, out.stderr);
  const { before, after, r } = JSON.parse(out.stdout) as { before: number; after: number; r: number };
  assert.equal(r, 1, "malloc_trim released memory");
  // glibc gives some pages back at free() itself (~54 of 64 MB here); ~10 MB stay until trimmed.
  assert.ok(before - after > 5, `RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB`);
});

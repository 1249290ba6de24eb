// storage/posix's writeback-after: once that many bytes were written through an fd, the brick starts
// sending them to disk in the background (fdatasync off the event loop). What must hold: it starts
// only past the threshold and never with 0, it changes nothing the file holds, the option is live, and
// a background failure is not lost: the kernel reports a writeback error to the datasync that finds
// it, not again to a later fsync of the same fd, so the brick must report it at that fsync.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { Posix } from "../../runtime/xlators/storage/posix";
import { withFailingDatasyncs } from "../helpers/failing-datasyncs";


const ctx: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "1", client: "local" };
const MiB = 1 << 20;

function brick(t: { after: (fn: () => Promise<void>) => void }, writebackAfter: number | undefined) {
  const base = fs.mkdtempSync(join(tmpdir(), "gha-writeback-"));
  const dir = join(base, "brick");
  const options = { directory: dir, fsync: true, "precreated-inodes": 0, ...(writebackAfter === undefined ? {} : { "writeback-after": writebackAfter }) };
  const px = new Posix({ name: "brick", type: "storage/posix", options, children: [], log: silentLogger(), graph: new Map() });
  t.after(async () => {
    await px.stop();
    fs.rmSync(base, { recursive: true, force: true });
  });
  const writebacks = () => px.dump().writebacks as number;
  const open = async (path: string) => {
    const fd = new Fd(path, fs.constants.O_CREAT | fs.constants.O_RDWR);
    await px.create(ctx, { path }, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o644, fd);
    return fd;
  };
  /** Until the fd's background datasync (if one is under way) is done: a new one starts only after it. */
  const writebackDone = async (fd: Fd) => {
    await fd.get<{ writeback?: Promise<void> }>(px)?.writeback;
  };
  return { dir, px, writebacks, open, writebackDone };
}

/** 1 MiB of bytes that differ from one MiB to the next. */
const block = (i: number) => Buffer.alloc(MiB, i + 1);

test("a background datasync starts once writeback-after bytes were written through the fd, and not before", async (t) => {
  const b = brick(t, 4 * MiB);
  const fd = await b.open("/big");
  for (let i = 0; i < 3; i++) await b.px.write(ctx, fd, block(i), i * MiB);
  assert.equal(b.writebacks(), 0, "3 MiB written: under the threshold");
  await b.px.write(ctx, fd, block(3), 3 * MiB);
  assert.equal(b.writebacks(), 1, "the 4th MiB starts one");
  for (let i = 4; i < 8; i++) {
    await b.writebackDone(fd);
    await b.px.write(ctx, fd, block(i), i * MiB);
  }
  assert.equal(b.writebacks(), 2, "counted again from the last one: 8 MiB, two");
  // small writes count as well (those are made on the event loop)
  await b.writebackDone(fd);
  for (let off = 8 * MiB; off < 12 * MiB; off += 4096) await b.px.write(ctx, fd, Buffer.alloc(4096, 9), off);
  assert.equal(b.writebacks(), 3);
  await b.px.fsync(ctx, fd, false);
  await b.px.release(ctx, fd);
  const content = fs.readFileSync(join(b.dir, "big"));
  assert.equal(content.length, 12 * MiB);
  for (let i = 0; i < 8; i++) assert.ok(content.subarray(i * MiB, (i + 1) * MiB).equals(block(i)), `MiB ${i} as written`);
  assert.ok(content.subarray(8 * MiB).every((x) => x === 9));
});

test("writeback-after 0 (and a brick built without the option) never starts one; the option is live", async (t) => {
  for (const after of [0, undefined]) {
    const b = brick(t, after);
    const fd = await b.open("/f");
    for (let i = 0; i < 10; i++) await b.px.write(ctx, fd, block(i), i * MiB);
    assert.equal(b.writebacks(), 0, `writeback-after ${after}`);
    const r = b.px.reconfigure({ directory: b.dir, fsync: true, "precreated-inodes": 0, "writeback-after": 2 * MiB });
    assert.deepEqual(r, { applied: ["writeback-after"], needsRestart: [] });
    await b.px.write(ctx, fd, block(10), 10 * MiB);
    assert.equal(b.writebacks(), 0, "1 MiB since the change");
    await b.px.write(ctx, fd, block(11), 11 * MiB);
    assert.equal(b.writebacks(), 1, "2 MiB since the change");
    await b.px.release(ctx, fd);
  }
});

test("a background datasync's error is reported by the fd's next fsync, once, and the release still closes the file", async (t) => {
  const b = brick(t, MiB);
  const fd = await b.open("/failing");
  // The disk refuses the background datasync (EIO): the kernel would report it to that call alone.
  const { refused } = await withFailingDatasyncs(async () => {
    await b.px.write(ctx, fd, block(0), 0);
    await b.writebackDone(fd);
  });
  assert.equal(refused, 1, "the background datasync ran");
  // a write after it goes on as before (the error is a sync's, for the next fsync)
  assert.equal(await b.px.write(ctx, fd, Buffer.from("more"), MiB), 4);
  await assert.rejects(b.px.fsync(ctx, fd, true), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, "EIO");
    assert.match(err.message, /fsync \/failing/, "names the fop and the file");
    return true;
  });
  await b.px.fsync(ctx, fd, true); // reported once: this one finds nothing more
  const before = fs.readdirSync("/proc/self/fd").length;
  await b.px.release(ctx, fd);
  assert.equal(fs.readdirSync("/proc/self/fd").length, before - 1, "the brick's fd closed");
});

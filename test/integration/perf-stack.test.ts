// All four performance translators stacked over posix + posix-locks, mounted with the glusterfs CLI:
// the POSIX suite agrees with the local disk, and a change made through another client (a second
// mount of the same brick) is seen within cache-timeout + the kernel's attribute timeout.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { mountVolfile, type Mounted } from "../helpers/mount";
import { posixSuite } from "../helpers/posix-suite";

function stackedVolfile(brick: string): string {
  return `volume brick
  type storage/posix
  option directory ${brick}
end-volume
volume locks
  type features/posix-locks
  subvolumes brick
end-volume
volume iothreads
  type performance/io-threads
  option thread-count 8
  option cache-size 64MB
  subvolumes locks
end-volume
volume writeback
  type performance/write-behind
  option aggregate-size 131072
  subvolumes iothreads
end-volume
volume readahead
  type performance/read-ahead
  option page-size 65536
  option page-count 16
  subvolumes writeback
end-volume
volume iocache
  type performance/io-cache
  option cache-size 32MB
  option cache-timeout 1
  subvolumes readahead
end-volume
`;
}

let base: string;
let a: Mounted | undefined;
let b: Mounted | undefined;

before(async () => {
  base = await mkdtemp("/var/tmp/gha-perf-stack-");
  await mkdir(join(base, "brick"));
  await mkdir(join(base, "a"));
  await mkdir(join(base, "b"));
  a = await mountVolfile(stackedVolfile(join(base, "brick")), { dir: join(base, "a") });
  b = await mountVolfile(stackedVolfile(join(base, "brick")), { dir: join(base, "b") });
});

after(async () => {
  await a?.unmount();
  await b?.unmount();
  await rm(base, { recursive: true, force: true });
});

posixSuite("io-cache > read-ahead > write-behind > io-threads > posix-locks > posix over FUSE", () => a!.mountpoint);

test("a large file written in odd-sized pieces reads back identical, sequentially and at random", () => {
  const path = join(a!.mountpoint, "big.bin");
  const data = Buffer.alloc(5 * 1024 * 1024 + 12345);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 10)) & 255;
  const fd = fs.openSync(path, "w");
  for (let off = 0; off < data.length; off += 70001) fs.writeSync(fd, data, off, Math.min(70001, data.length - off), off);
  assert.equal(fs.fstatSync(fd).size, data.length, "size includes writes still behind");
  fs.closeSync(fd);
  assert.ok(fs.readFileSync(path).equals(data));
  const rfd = fs.openSync(path, "r");
  const buf = Buffer.alloc(9999);
  for (const off of [4_000_000, 17, 2_500_000, data.length - 5000]) {
    const n = fs.readSync(rfd, buf, 0, buf.length, off);
    assert.ok(buf.subarray(0, n).equals(data.subarray(off, off + n)), `read at ${off}`);
  }
  fs.closeSync(rfd);
  fs.unlinkSync(path);
});

test("overwriting the middle of a file that was just read shows the new bytes (read-ahead and io-cache invalidated)", () => {
  const path = join(a!.mountpoint, "mid.bin");
  fs.writeFileSync(path, Buffer.alloc(1 << 20, "a"));
  const fd = fs.openSync(path, "r+");
  const buf = Buffer.alloc(65536);
  fs.readSync(fd, buf, 0, buf.length, 0); // starts read-ahead
  fs.writeSync(fd, Buffer.from("XYZ"), 0, 3, 300000);
  const got = Buffer.alloc(5);
  fs.readSync(fd, got, 0, 5, 299999);
  assert.equal(got.toString(), "aXYZa");
  fs.ftruncateSync(fd, 300001);
  assert.equal(fs.readSync(fd, Buffer.alloc(100), 0, 100, 300000), 1);
  fs.closeSync(fd);
  fs.unlinkSync(path);
});

test("a change made through another client is seen within cache-timeout", async () => {
  const onA = join(a!.mountpoint, "shared.txt");
  const onB = join(b!.mountpoint, "shared.txt");
  fs.writeFileSync(onA, "version one, long");
  assert.equal(fs.readFileSync(onB, "utf8"), "version one, long");
  const keep = fs.openSync(onA, "r"); // an open fd keeps io-cache's pages in use on A
  assert.equal(fs.readFileSync(onA, "utf8"), "version one, long");
  fs.writeFileSync(onB, "version two");
  // io-cache revalidates after cache-timeout (1 s); the kernel's attribute cache adds up to 1 s (and a
  // loaded machine its own delays: a cache that never revalidated would still fail).
  const deadline = Date.now() + 5000;
  let seen = "";
  while (Date.now() < deadline) {
    seen = fs.readFileSync(onA, "utf8");
    if (seen === "version two") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  fs.closeSync(keep);
  assert.equal(seen, "version two");
});

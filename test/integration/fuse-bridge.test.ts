// The FUSE bridge on its own: a real mount, in this process, of a tiny translator over a directory.
// Everything that touches the mount runs in child processes (dd, cat, python3): a synchronous fs call
// from this process would block the event loop that serves the mount.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, rm, writeFile, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { setAttribute } from "@napi-rs/xattr";
import { silentLogger } from "../../runtime/core/log";
import { createMountBridge, type MountBridge } from "../../runtime/fuse/engine";
import type { FuseEngine } from "../../runtime/fuse/options";
import { lazyUnmount, mountEntry } from "../../runtime/fuse/mounts";
import { DirXlator } from "../helpers/dir-xlator";

const exec = promisify(execFile);

/** Runs a python3 snippet against the mount; prints JSON. Errors come back as errno names. */
async function py(code: string): Promise<unknown> {
  const prog = `import os, json, errno\ntry:\n${code.split("\n").map((l) => "  " + l).join("\n")}\nexcept OSError as e:\n  print(json.dumps({"errno": errno.errorcode[e.errno]}))\n`;
  const { stdout } = await exec("python3", ["-c", prog]);
  return JSON.parse(stdout);
}

/** What each engine takes in one request (libfuse 2: big_writes' 128 KiB; the kernel engine: 1 MiB). */
const LARGEST_WRITE: Record<FuseEngine, number> = { libfuse: 131072, kernel: 1 << 20 };

for (const engine of ["kernel", "libfuse"] as const) describe(`FUSE bridge (${engine} engine) over a directory translator`, () => {
  let base: string;
  let backing: string;
  let mnt: string;
  let dir: DirXlator;
  let bridge: MountBridge;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), "gha-fuse-bridge-"));
    backing = join(base, "backing");
    mnt = join(base, "mnt");
    await mkdir(backing);
    await mkdir(mnt);
    dir = new DirXlator(backing);
    bridge = createMountBridge(dir, { mountpoint: mnt, attrTimeout: 1, entryTimeout: 1, engine }, silentLogger());
    await bridge.mount();
  });

  after(async () => {
    await bridge?.unmount().catch(() => lazyUnmount(mnt).catch(() => undefined));
    await rm(base, { recursive: true, force: true });
  });

  it("shows in /proc/mounts as a glusterfs FUSE filesystem", () => {
    const e = mountEntry(mnt);
    assert.ok(e, "mount entry present");
    assert.equal(e.fstype, "fuse.glusterfs");
    assert.equal(e.source, "glusterfs");
    assert.ok(e.options.includes("default_permissions"), e.options.join(","));
    assert.ok(e.options.includes("allow_other"), e.options.join(","));
  });

  it("passes big writes and large reads through, not 4 KiB pieces", async () => {
    await exec("dd", ["if=/dev/urandom", `of=${join(mnt, "big")}`, "bs=1M", "count=4", "conv=fsync", "status=none"]);
    const { stdout } = await exec("sh", ["-c", `echo 3 > /proc/sys/vm/drop_caches; cat ${join(mnt, "big")} | md5sum`]);
    const direct = await exec("md5sum", [join(backing, "big")]);
    assert.equal(stdout.split(" ")[0], direct.stdout.split(" ")[0]);
    const s = bridge.statsSnapshot();
    assert.equal(s.largestWrite, LARGEST_WRITE[engine]);
    assert.ok(s.largestRead > 4096, `largest read ${s.largestRead}`);
  });

  it("serves requests concurrently (two reads in flight at once)", async () => {
    // Two files: reads of the same page would wait for each other in the kernel's page cache.
    await writeFile(join(backing, "slow1"), "x".repeat(100));
    await writeFile(join(backing, "slow2"), "y".repeat(100));
    let inFlight = 0;
    let maxInFlight = 0;
    dir.beforeRead = async (fd) => {
      if (!fd.path.startsWith("/slow")) return;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      // Hold the read until the other one arrives (or 3 s pass, when reads are serialised).
      for (let i = 0; i < 60 && maxInFlight < 2; i++) await new Promise((r) => setTimeout(r, 50));
      inFlight--;
    };
    try {
      await Promise.all([exec("cat", [join(mnt, "slow1")]), exec("cat", [join(mnt, "slow2")])]);
    } finally {
      dir.beforeRead = async () => undefined;
    }
    assert.equal(maxInFlight, 2);
  });

  it("hides internal xattrs and refuses to change them; user xattrs work", async () => {
    await writeFile(join(backing, "x"), "data");
    await setAttribute(join(backing, "x"), "trusted.gfid", Buffer.alloc(16, 7));
    await setAttribute(join(backing, "x"), "trusted.afr.gfs-ds-1", Buffer.alloc(12));
    const f = JSON.stringify(join(mnt, "x"));
    assert.deepEqual(await py(`print(json.dumps({"v": os.getxattr(${f}, "trusted.gfid").hex()}))`), { errno: "ENODATA" });
    assert.deepEqual(await py(`os.setxattr(${f}, "trusted.afr.dirty", b"x"*12)\nprint(json.dumps({}))`), { errno: "EPERM" });
    assert.deepEqual(await py(`os.removexattr(${f}, "trusted.gfid")\nprint(json.dumps({}))`), { errno: "EPERM" });
    assert.deepEqual(await py(`os.setxattr(${f}, "user.color", b"blue")\nprint(json.dumps({"v": os.getxattr(${f}, "user.color").decode(), "l": sorted(os.listxattr(${f}))}))`),
      { v: "blue", l: ["user.color"] });
  });

  it("sees a change made underneath once the attribute timeout has passed (and fresh data on open)", async () => {
    const f = join(mnt, "changing");
    await writeFile(join(backing, "changing"), "one");
    assert.equal((await exec("cat", [f])).stdout, "one");
    await writeFile(join(backing, "changing"), "three");
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal((await exec("stat", ["-c", "%s", f])).stdout.trim(), "5");
    assert.equal((await exec("cat", [f])).stdout, "three");
    assert.equal(await readFile(join(backing, "changing"), "utf8"), "three");
  });

  it("turns translator errors into the right errno", async () => {
    assert.deepEqual(await py(`os.stat(${JSON.stringify(join(mnt, "nope"))})`), { errno: "ENOENT" });
    assert.deepEqual(await py(`os.mknod(${JSON.stringify(join(mnt, "fifo"))}, 0o10644)`), { errno: "EPERM" });
  });
});

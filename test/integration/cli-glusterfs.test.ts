// The glusterfs CLI: mounts, unmounts on SIGTERM, daemonizes, reports failures by exit code, writes
// statedumps, and clears a stale mount left by a crashed process.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { lazyUnmount, mountEntry } from "../../runtime/fuse/mounts";
import { ensureBuilt, GLUSTERFS_BIN, mountVolfile, posixLocksVolfile, waitForExit } from "../helpers/mount";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

describe("glusterfs CLI", () => {
  let base: string;
  let brick: string;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    ensureBuilt();
    base = await mkdtemp("/var/tmp/gha-cli-glusterfs-");
    brick = join(base, "brick");
    await mkdir(brick);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  });

  it("--volfile-check: 0 for a clean volfile, 1 naming file:line for a bad one", async () => {
    const good = join(base, "good.vol");
    await writeFile(good, posixLocksVolfile(brick));
    const ok = spawnSync(process.execPath, [GLUSTERFS_BIN, "--volfile-check", "-f", good], { encoding: "utf8" });
    assert.equal(ok.status, 0, ok.stderr);
    const bad = join(base, "bad.vol");
    await writeFile(bad, posixLocksVolfile(brick).replace("option directory", "option directry"));
    const r = spawnSync(process.execPath, [GLUSTERFS_BIN, "--volfile-check", "-f", bad], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.vol:3:/);
  });

  it("mounts in the foreground, logs JSON lines with the volume name, unmounts on SIGTERM", async () => {
    const m = await mountVolfile(posixLocksVolfile(brick));
    cleanups.push(m.unmount);
    assert.equal(mountEntry(m.mountpoint)?.fstype, "fuse.glusterfs");
    await writeFile(join(m.mountpoint, "hello"), "world");
    assert.equal(readFileSync(join(brick, "hello"), "utf8"), "world");
    const mounted = (await m.log()).split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === "mounted");
    // The mount stacks performance/md-cache on the volfile's top (see runtime/cli/glusterfs.ts).
    assert.equal(mounted?.volume, "locks-md-cache");
    m.child.kill("SIGTERM");
    assert.equal(await waitForExit(m.child, 10_000), 0);
    assert.equal(mountEntry(m.mountpoint), undefined);
  });

  it("SIGUSR1 writes a statedump with every volume and the open files", async () => {
    const m = await mountVolfile(posixLocksVolfile(brick));
    cleanups.push(m.unmount);
    process.kill(m.pid, "SIGUSR1");
    let path: string | undefined;
    await until(() => {
      const l = readFileSync(m.logFile, "utf8").split("\n").filter(Boolean).map((x) => JSON.parse(x)).find((x) => x.msg === "statedump written");
      path = l?.path;
      return path !== undefined;
    }, 5000);
    assert.ok(path && path.startsWith(`/tmp/glusterdump.${m.pid}.`), String(path));
    cleanups.push(() => rm(path!, { force: true }));
    const dump = JSON.parse(readFileSync(path!, "utf8"));
    assert.deepEqual(Object.keys(dump.volumes).sort(), ["brick", "locks", "locks-md-cache", "locks-quick-read"]);
    assert.equal(dump.volumes["locks-quick-read"].type, "performance/quick-read");
    assert.equal(dump.volumes["locks-md-cache"].type, "performance/md-cache");
    assert.equal(dump.fuse.mountpoint, m.mountpoint);
    await m.unmount();
  });

  it("a stale mount (process killed) is detected and replaced on the next mount", async () => {
    const dir = await mkdtemp(join(base, "stale-"));
    const first = await mountVolfile(posixLocksVolfile(brick), { dir });
    cleanups.push(() => lazyUnmount(first.mountpoint));
    first.child.kill("SIGKILL");
    await waitForExit(first.child, 5000);
    // statfs, not stat: the kernel may answer stat of the root from its attribute cache for a moment.
    const err = spawnSync("stat", ["-f", first.mountpoint], { encoding: "utf8" });
    assert.match(err.stderr, /Transport endpoint is not connected/);
    const second = await mountVolfile(posixLocksVolfile(brick), { dir });
    cleanups.push(second.unmount);
    assert.ok(statSync(second.mountpoint).isDirectory());
    assert.match(await second.log(), /stale mount/);
    await second.unmount();
  });

  it("daemonizes by default: returns 0 once mounted, the daemon keeps serving, SIGTERM unmounts", async () => {
    const dir = await mkdtemp(join(base, "daemon-"));
    const mnt = join(dir, "mnt");
    await mkdir(mnt);
    const vol = join(dir, "c.vol");
    await writeFile(vol, posixLocksVolfile(brick));
    const pidfile = join(dir, "glusterfs.pid");
    cleanups.push(async () => {
      if (existsSync(pidfile)) process.kill(Number(readFileSync(pidfile, "utf8")), "SIGKILL");
      await lazyUnmount(mnt).catch(() => undefined);
    });
    const parent = spawn(process.execPath, [GLUSTERFS_BIN, "-f", vol, mnt, "--pidfile", pidfile, "--log-file", join(dir, "log")], { stdio: "ignore" });
    assert.equal(await waitForExit(parent, 20_000), 0);
    assert.equal(mountEntry(mnt)?.fstype, "fuse.glusterfs");
    const pid = Number(readFileSync(pidfile, "utf8"));
    assert.notEqual(pid, parent.pid);
    await writeFile(join(mnt, "from-daemon"), "ok");
    assert.equal(readFileSync(join(brick, "from-daemon"), "utf8"), "ok");
    process.kill(pid, "SIGTERM");
    assert.ok(await until(() => mountEntry(mnt) === undefined && !existsSync(pidfile), 10_000));
  });

  it("a failed mount is reported by exit code, in the foreground and when daemonizing", async () => {
    const vol = join(base, "fail.vol");
    await writeFile(vol, posixLocksVolfile(brick));
    const missing = join(base, "no-such-dir");
    const fg = spawnSync(process.execPath, [GLUSTERFS_BIN, "-f", vol, missing, "--foreground"], { encoding: "utf8" });
    assert.equal(fg.status, 1);
    assert.match(fg.stderr, /ENOENT/);
    const bg = spawnSync(process.execPath, [GLUSTERFS_BIN, "-f", vol, missing, "--log-file", join(base, "fail.log")], { encoding: "utf8", timeout: 20_000 });
    assert.equal(bg.status, 1);
    assert.match(bg.stderr, /ENOENT/);
    const usage = spawnSync(process.execPath, [GLUSTERFS_BIN, "-f", vol], { encoding: "utf8" });
    assert.equal(usage.status, 2);
  });
});

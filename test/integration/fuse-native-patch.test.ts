// What the fuse-native patches (patches/fuse-native/) make work through a real mount: utimens with
// different times, fcntl and flock locks that reach features/posix-locks on the server (so two
// clients exclude each other), and files created as the calling user. One glusterfsd (posix + locks
// + protocol/server) and two glusterfs client mounts of it, each its own process.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mountVolfile, type Mounted } from "../helpers/mount";
import { clientVolfile, startBrickServer, stopAllServers, type ServerProc } from "../helpers/servers";

const HOST = "127.0.0.2";
const PORT = 24700;
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

// Takes an fcntl lock (lockf) and reports it as one JSON line; "hold" keeps it until a line on stdin,
// "close-other" then closes a second descriptor of the file (POSIX: that drops the process's locks).
const PY_LOCK = `
import fcntl, os, sys, json, errno, time
path, kind, start, length, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
fd = os.open(path, os.O_RDWR | os.O_CREAT)
op = fcntl.LOCK_EX if kind == "ex" else fcntl.LOCK_SH
if mode in ("nb", "hold", "close-other"): op |= fcntl.LOCK_NB
t = time.time()
try:
    fcntl.lockf(fd, op, length, start)
    res = {"ok": True}
except OSError as e:
    res = {"errno": errno.errorcode[e.errno]}
res["waitedMs"] = int((time.time() - t) * 1000)
res["pid"] = os.getpid()
if mode == "close-other":
    os.close(os.open(path, os.O_RDONLY))
print(json.dumps(res), flush=True)
if mode in ("hold", "close-other"): sys.stdin.readline()
`;

// F_GETLK for a whole-file write lock: what (if anything) stands in the way.
const PY_GETLK = `
import fcntl, os, sys, json, struct
fd = os.open(sys.argv[1], os.O_RDWR)
res = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
t, w, start, length, pid = struct.unpack("hhqqi", res)
names = {fcntl.F_RDLCK: "rd", fcntl.F_WRLCK: "wr", fcntl.F_UNLCK: "un"}
print(json.dumps({"type": names[t], "start": start, "len": length, "pid": pid}))
`;

type Json = Record<string, unknown>;
const children = new Set<ChildProcess>();

/** A process whose first stdout line is a JSON result; it lives on until release() (stdin line). */
function startProcess(cmd: string, args: string[]): { first: Promise<Json>; exited: Promise<number | null>; release(): Promise<number | null>; done(): boolean } {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  let finished = false;
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => {
    finished = true;
    children.delete(child);
    res(code);
  }));
  const first = new Promise<Json>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Json);
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    void exited.then((code) => reject(new Error(`${cmd} exited (${code}) without a result: ${err}`)));
  });
  first.catch(() => undefined);
  return {
    first, exited, done: () => finished,
    release: async () => {
      child.stdin.end("\n");
      return exited;
    },
  };
}

const lockProcess = (path: string, kind: "ex" | "sh", start: number, len: number, mode: "nb" | "wait" | "hold" | "close-other") =>
  startProcess(PYTHON, ["-c", PY_LOCK, path, kind, String(start), String(len), mode]);

async function tryLock(path: string, kind: "ex" | "sh", start = 0, len = 0): Promise<Json> {
  const p = lockProcess(path, kind, start, len, "nb");
  const r = await p.first;
  await p.exited;
  return { ok: r.ok, errno: r.errno };
}

/** Resolves false if `p` settles within `ms` (it should still be waiting). */
async function stillPending(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => false, () => false), new Promise<boolean>((r) => setTimeout(() => r(true), ms))]);
}

/** The mount's FUSE bridge counters, from a statedump (SIGUSR1). */
async function bridgeOps(m: Mounted): Promise<Record<string, number>> {
  const dumps = () => readFileSync(m.logFile, "utf8").split("\n").filter((l) => l.includes('"statedump written"')).map((l) => (JSON.parse(l) as { path: string }).path);
  const known = dumps().length;
  process.kill(m.pid, "SIGUSR1");
  for (const deadline = Date.now() + 10_000; dumps().length === known;) {
    if (Date.now() > deadline) throw new Error("no statedump written");
    await new Promise((r) => setTimeout(r, 50));
  }
  const path = dumps()[known]!;
  const dump = JSON.parse(readFileSync(path, "utf8")) as { fuse: { stats: { ops: Record<string, number> } } };
  rmSync(path, { force: true });
  return dump.fuse.stats.ops;
}

let base: string;
let server: ServerProc;
let mountA: Mounted;
let mountB: Mounted;

before(async () => {
  // Traversable by uid 1000 (the ownership test), unlike a fresh mkdtemp directory.
  base = mkdtempSync("/var/tmp/gha-fnp-");
  chmodSync(base, 0o755);
  server = await startBrickServer({ host: HOST, port: PORT, allow: { locks: "127.0.0.1" } });
  const volfile = clientVolfile({ hosts: HOST, port: PORT, timeout: 10 });
  for (const name of ["a", "b"]) mkdirSync(join(base, name));
  mountA = await mountVolfile(volfile, { dir: join(base, "a") });
  mountB = await mountVolfile(volfile, { dir: join(base, "b") });
});

after(async () => {
  for (const c of children) c.kill("SIGKILL");
  // The mounts go first: a lock waiter blocked in the kernel is only freed when its mount's process ends.
  await Promise.all([mountA?.unmount(), mountB?.unmount()]);
  await stopAllServers();
  rmSync(base, { recursive: true, force: true });
});

describe("utimens passes both times", () => {
  it("touch -d, touch -m -d and touch -a -d set exactly the times asked for", () => {
    const f = join(mountA.mountpoint, "times");
    const touch = (...args: string[]) => assert.equal(spawnSync("touch", [...args, f]).status, 0);
    const times = () => {
      const st = statSync(f);
      return [st.atime.toISOString(), st.mtime.toISOString()];
    };
    touch("-d", "2001-02-03T04:05:06Z");
    assert.deepEqual(times(), ["2001-02-03T04:05:06.000Z", "2001-02-03T04:05:06.000Z"]);
    touch("-m", "-d", "2010-01-01T00:00:00Z");
    assert.deepEqual(times(), ["2001-02-03T04:05:06.000Z", "2010-01-01T00:00:00.000Z"]);
    touch("-a", "-d", "2005-06-07T08:09:10Z");
    assert.deepEqual(times(), ["2005-06-07T08:09:10.000Z", "2010-01-01T00:00:00.000Z"]);
    // The brick has them too, and the other client sees them.
    const brick = statSync(join(server.brick, "times"));
    assert.deepEqual([brick.atime.toISOString(), brick.mtime.toISOString()], ["2005-06-07T08:09:10.000Z", "2010-01-01T00:00:00.000Z"]);
    assert.equal(statSync(join(mountB.mountpoint, "times")).mtime.toISOString(), "2010-01-01T00:00:00.000Z");
  });

  it("plain touch sets both times to now (UTIME_NOW)", () => {
    const f = join(mountA.mountpoint, "now");
    writeFileSync(f, "");
    assert.equal(spawnSync("touch", ["-d", "2001-01-01T00:00:00Z", f]).status, 0);
    const before = Date.now();
    assert.equal(spawnSync("touch", [f]).status, 0);
    const st = statSync(f);
    assert.ok(Math.abs(st.mtimeMs - before) < 60_000 && Math.abs(st.atimeMs - before) < 60_000, `${st.atime.toISOString()} ${st.mtime.toISOString()}`);
  });
});

describe("fcntl locks across two mounts", () => {
  it("a write lock held through one mount refuses the other mount's (EAGAIN), read ones included", async () => {
    const f = join(mountA.mountpoint, "fcntl-excl");
    const holder = lockProcess(f, "ex", 0, 0, "hold");
    assert.deepEqual((await holder.first).ok, true);
    const g = join(mountB.mountpoint, "fcntl-excl");
    assert.deepEqual(await tryLock(g, "ex"), { ok: undefined, errno: "EAGAIN" });
    assert.deepEqual(await tryLock(g, "sh"), { ok: undefined, errno: "EAGAIN" });
    // F_GETLK on the other mount names the holder (type and pid come from the server).
    const r = spawnSync(PYTHON, ["-c", PY_GETLK, g], { encoding: "utf8" });
    assert.deepEqual(JSON.parse(r.stdout), { type: "wr", start: 0, len: 0, pid: (await holder.first).pid });
    await holder.release();
    assert.deepEqual(await tryLock(g, "ex"), { ok: true, errno: undefined });
    assert.deepEqual(JSON.parse(spawnSync(PYTHON, ["-c", PY_GETLK, g], { encoding: "utf8" }).stdout).type, "un");
  });

  it("read locks share across mounts; byte ranges conflict only where they overlap", async () => {
    const f = join(mountA.mountpoint, "fcntl-ranges");
    const reader = lockProcess(f, "sh", 0, 0, "hold");
    assert.equal((await reader.first).ok, true);
    const g = join(mountB.mountpoint, "fcntl-ranges");
    assert.deepEqual(await tryLock(g, "sh"), { ok: true, errno: undefined });
    await reader.release();
    const ranged = lockProcess(f, "ex", 0, 10, "hold");
    assert.equal((await ranged.first).ok, true);
    assert.deepEqual(await tryLock(g, "ex", 10, 10), { ok: true, errno: undefined });
    assert.deepEqual(await tryLock(g, "ex", 5, 10), { ok: undefined, errno: "EAGAIN" });
    await ranged.release();
  });

  it("a blocking request on the other mount waits until the holder lets go (F_SETLKW)", async () => {
    const f = join(mountA.mountpoint, "fcntl-wait");
    const holder = lockProcess(f, "ex", 0, 0, "hold");
    assert.equal((await holder.first).ok, true);
    const waiter = lockProcess(join(mountB.mountpoint, "fcntl-wait"), "ex", 0, 0, "wait");
    assert.equal(await stillPending(waiter.first, 1500), true, "the waiter must not get the lock while it is held");
    await holder.release();
    const got = await waiter.first;
    assert.equal(got.ok, true);
    // (counted from its lockf call, which python's start-up may have delayed by most of the 1.5 s held)
    assert.ok((got.waitedMs as number) >= 200, `waited ${String(got.waitedMs)} ms`);
    await waiter.exited;
  });

  it("closing any descriptor of the file drops the process's locks (POSIX), for the other mount too", async () => {
    const f = join(mountA.mountpoint, "fcntl-close");
    const holder = lockProcess(f, "ex", 0, 0, "close-other");
    assert.equal((await holder.first).ok, true);
    // The holder is alive and still has the first descriptor open, but its lock went with the close.
    assert.deepEqual(await tryLock(join(mountB.mountpoint, "fcntl-close"), "ex"), { ok: true, errno: undefined });
    await holder.release();
  });

  it("closing files that were never locked costs no lock request to the volume", async (t) => {
    // libfuse follows every close with an unlock for the closing process; the bridge answers it itself
    // for lock owners that never locked anything through the mount. A mount of its own: owners are
    // kernel pointers, reused by later processes, so those of other tests' lockers could come back.
    mkdirSync(join(base, "c"));
    const mountC = await mountVolfile(clientVolfile({ hosts: HOST, port: PORT, timeout: 10 }), { dir: join(base, "c") });
    t.after(() => mountC.unmount());
    const dir = join(mountC.mountpoint, "unlocked");
    mkdirSync(dir);
    const r = spawnSync("sh", ["-c", 'for i in 1 2 3 4 5 6 7 8 9 10; do echo x > "$0/f$i"; cat "$0/f$i" > /dev/null; done', dir]);
    assert.equal(r.status, 0);
    const ops = await bridgeOps(mountC);
    assert.ok((ops.flush ?? 0) >= 20, `flushes: ${String(ops.flush)}`);
    assert.equal(ops.lk ?? 0, 0);
    assert.deepEqual(await tryLock(join(dir, "f1"), "ex"), { ok: true, errno: undefined });
    assert.ok(((await bridgeOps(mountC)).lk ?? 0) >= 2, "a lock and its unlock on close go to the volume");
  });

  it("blocked F_SETLKW waiters do not stall the mount for other requests", async () => {
    const f = join(mountA.mountpoint, "fcntl-many");
    const holder = lockProcess(f, "ex", 0, 0, "hold");
    assert.equal((await holder.first).ok, true);
    // More waiters than libfuse keeps idle worker threads (10): each waits on a FUSE thread of its own.
    const waiters = Array.from({ length: 12 }, () => lockProcess(join(mountB.mountpoint, "fcntl-many"), "ex", 0, 0, "wait"));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(waiters.filter((w) => w.done()).length, 0);
    const t0 = Date.now();
    const ls = spawnSync("ls", ["-la", mountB.mountpoint], { encoding: "utf8", timeout: 20_000 });
    writeFileSync(join(mountB.mountpoint, "still-writable"), "yes");
    assert.equal(ls.status, 0, ls.stderr);
    assert.ok(Date.now() - t0 < 10_000, `other requests took ${Date.now() - t0} ms`);
    await holder.release();
    // One at a time, each gets the lock and exits (closing the file releases it for the next).
    const results = await Promise.all(waiters.map((w) => w.first));
    assert.deepEqual(results.map((r) => r.ok), waiters.map(() => true));
  });
});

describe("flock across two mounts", () => {
  const holdFlock = (path: string, kind: "-x" | "-s") =>
    startProcess("flock", [kind, path, "-c", 'echo \'{"ok":true}\'; read line']);
  const tryFlock = (path: string, kind: "-x" | "-s") => spawnSync("flock", ["-n", kind, path, "-c", "true"]).status;

  it("an exclusive flock on one mount refuses the other's; shared ones share", async () => {
    const f = join(mountA.mountpoint, "flocked");
    writeFileSync(f, "");
    const g = join(mountB.mountpoint, "flocked");
    const holder = holdFlock(f, "-x");
    assert.equal((await holder.first).ok, true);
    assert.equal(tryFlock(g, "-x"), 1);
    assert.equal(tryFlock(g, "-s"), 1);
    await holder.release();
    assert.equal(tryFlock(g, "-x"), 0);
    const shared = holdFlock(f, "-s");
    assert.equal((await shared.first).ok, true);
    assert.equal(tryFlock(g, "-s"), 0);
    assert.equal(tryFlock(g, "-x"), 1);
    await shared.release();
  });

  it("a blocking flock on the other mount waits until the holder releases", async () => {
    const f = join(mountA.mountpoint, "flock-wait");
    writeFileSync(f, "");
    const holder = holdFlock(f, "-x");
    assert.equal((await holder.first).ok, true);
    const waiter = startProcess("flock", ["-x", join(mountB.mountpoint, "flock-wait"), "-c", 'echo \'{"ok":true}\'']);
    assert.equal(await stillPending(waiter.first, 1500), true, "the waiter must not get the flock while it is held");
    await holder.release();
    assert.equal((await waiter.first).ok, true);
    assert.equal(await waiter.exited, 0);
  });
});

describe("the caller's identity reaches the volume", () => {
  const asUser = (...cmd: string[]) => spawnSync("setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", ...cmd], { encoding: "utf8" });

  it("files and directories created by uid 1000 are owned by 1000 on the brick", () => {
    const shared = join(mountA.mountpoint, "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const r = asUser("touch", join(shared, "by-user"));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(asUser("mkdir", join(shared, "dir-by-user")).status, 0);
    for (const name of ["by-user", "dir-by-user"]) {
      const st = statSync(join(server.brick, "shared", name));
      assert.deepEqual([st.uid, st.gid], [1000, 1000], name);
    }
    const seen = statSync(join(mountB.mountpoint, "shared", "by-user"));
    assert.deepEqual([seen.uid, seen.gid], [1000, 1000]);
    // Root still creates as root.
    writeFileSync(join(shared, "by-root"), "");
    assert.equal(statSync(join(server.brick, "shared", "by-root")).uid, 0);
  });

  it("the kernel refuses uid 1000 where the mode says no (default_permissions with real owners)", () => {
    const priv = join(mountA.mountpoint, "private");
    mkdirSync(priv, { mode: 0o700 });
    const r = asUser("touch", join(priv, "nope"));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Permission denied/);
    assert.equal(existsSync(join(server.brick, "private", "nope")), false);
  });
});

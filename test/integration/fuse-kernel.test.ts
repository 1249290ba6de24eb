// The kernel FUSE engine (runtime/fuse/kernel/, the glusterfs CLI's default) on a real mount of
// posix + posix-locks: what the fuse-native/libfuse 2 engine could not do. The mount runs in its own
// process (the CLI), so this process may use the mount synchronously.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { mountDevice } from "../../runtime/fuse/mounts";
import { mountVolfile, posixLocksVolfile, statedumpOf, waitForExit, type Mounted } from "../helpers/mount";

const exec = promisify(execFile);

interface FuseDump {
  engine: string;
  maxWrite: number;
  stats: { ops: Record<string, number>; largestWrite: number; largestRead: number };
}

describe("kernel FUSE engine", () => {
  let base: string;
  let brick: string;
  let m: Mounted;

  before(async () => {
    base = await mkdtemp("/var/tmp/gha-fuse-kernel-");
    brick = join(base, "brick");
    await mkdir(brick);
    m = await mountVolfile(posixLocksVolfile(brick), { dir: base });
  });

  after(async () => {
    await m?.unmount();
    await rm(base, { recursive: true, force: true });
  });

  /** The mount's bridge section of a statedump (SIGUSR1). */
  const fuseDump = async (): Promise<FuseDump> => ((await statedumpOf(m)) as { fuse: FuseDump }).fuse;

  const delta = (a: FuseDump, b: FuseDump, op: string) => (b.stats.ops[op] ?? 0) - (a.stats.ops[op] ?? 0);

  it("takes 1 MiB writes and reads, and reads ahead 1 MiB", async () => {
    const f = join(m.mountpoint, "big");
    await exec("dd", ["if=/dev/urandom", `of=${f}`, "bs=1M", "count=8", "conv=fsync", "status=none"]);
    const { stdout } = await exec("sh", ["-c", `echo 3 > /proc/sys/vm/drop_caches; md5sum < ${f}`]);
    const direct = await exec("sh", ["-c", `md5sum < ${join(brick, "big")}`]);
    assert.equal(stdout, direct.stdout);
    const d = await fuseDump();
    assert.equal(d.engine, "kernel");
    assert.equal(d.stats.largestWrite, 1 << 20);
    assert.ok(d.stats.largestRead > 128 * 1024, `largest read ${d.stats.largestRead}`);
    const dev = mountDevice(m.mountpoint);
    assert.equal(fs.readFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, "utf8").trim(), "1024");
  });

  it("ls -l of a directory the kernel forgot is answered by READDIRPLUS: no lookup or getattr per file", async () => {
    const dir = join(m.mountpoint, "listed");
    fs.mkdirSync(dir);
    for (let i = 0; i < 100; i++) fs.writeFileSync(join(dir, `f${i}`), `file ${i}`);
    // Forget every dentry and inode: the kernel then knows nothing under the mount.
    fs.writeFileSync("/proc/sys/vm/drop_caches", "2");
    const a = await fuseDump();
    const { stdout } = await exec("ls", ["-l", dir]);
    const b = await fuseDump();
    assert.equal(stdout.split("\n").filter((l) => / f\d+$/.test(l)).length, 100);
    assert.match(stdout, /-rw-r--r-- 1 root root +6 .* f0\n/);
    assert.ok(delta(a, b, "readdirplus") >= 1, "listed with READDIRPLUS");
    assert.ok(delta(a, b, "lookup") + delta(a, b, "getattr") < 10,
      `per-file requests: lookup ${delta(a, b, "lookup")}, getattr ${delta(a, b, "getattr")}`);
    // ls asks every file for its SELinux label and ACL unless the device said it keeps none.
    assert.ok(delta(a, b, "getxattr") < 10, `getxattr requests: ${delta(a, b, "getxattr")}`);
  });

  it("ACLs and SELinux labels are not supported without --acl/--selinux; other xattrs are, and --acl keeps ACLs", async () => {
    const f = join(m.mountpoint, "labelled");
    fs.writeFileSync(f, "x");
    // An ACL granting uid 1000 read: version 2, then (tag u16, perm u16, id u32) for owner, user 1000, group,
    // mask, other (one equivalent to the mode bits would be turned into a chmod by the kernel).
    const acl = Buffer.from("02000000" + "01000600ffffffff" + "02000400e8030000" + "04000400ffffffff" + "10000400ffffffff" + "20000400ffffffff", "hex");
    const py = (name: string, set: boolean, file = f) => exec("python3", ["-c", `
import os, sys, errno
try:
    ${set ? `os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]))` : "os.getxattr(sys.argv[1], sys.argv[2])"}
    print("ok")
except OSError as e:
    print("EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode[e.errno])`, file, name, acl.toString("hex")]).then((r) => r.stdout.trim());
    assert.equal(await py("system.posix_acl_access", true), "EOPNOTSUPP");
    assert.equal(await py("system.posix_acl_access", false), "EOPNOTSUPP");
    assert.equal(await py("security.selinux", false), "EOPNOTSUPP");
    assert.equal(await py("security.NTACL", true), "ok"); // Samba keeps Windows ACLs here: security.* other than selinux
    assert.equal(await py("security.NTACL", false), "ok");
    assert.equal(await py("user.note", true), "ok");

    const withAcl = await mountVolfile(posixLocksVolfile(brick), { dir: join(base, "acl"), args: ["--acl"] });
    try {
      const g = join(withAcl.mountpoint, "labelled");
      assert.equal(await py("system.posix_acl_access", true, g), "ok");
      assert.equal(await py("system.posix_acl_access", false, g), "ok");
      assert.deepEqual(fs.readFileSync(join(brick, "labelled")).toString(), "x");
      const { stdout } = await exec("python3", ["-c", "import os,sys; print(os.getxattr(sys.argv[1], 'system.posix_acl_access').hex())", join(brick, "labelled")]);
      assert.equal(stdout.trim(), acl.toString("hex"), "the ACL is on the brick");
    } finally {
      await withAcl.unmount();
    }
  });

  it("rewinddir sees the directory as it is now (the handle's cached batch is for one pass only)", async () => {
    const dir = join(m.mountpoint, "rewound");
    fs.mkdirSync(dir);
    // more names than one READDIRPLUS page: the first pass stops in the middle of the handle's batch
    for (let i = 0; i < 100; i++) fs.writeFileSync(join(dir, `f${i}`), "");
    const { stdout } = await exec("perl", ["-e", `
opendir(my $d, $ARGV[0]) or die; my $one = readdir($d);
open(my $f, ">", "$ARGV[0]/new") or die; close($f);
rewinddir($d); my @again = grep { !/^\\./ } readdir($d);
print scalar(@again), " ", (grep { $_ eq "new" } @again) ? "new" : "-", "\n";`, dir]);
    assert.equal(stdout.trim(), "101 new");
  });

  it("a process waiting for an fcntl lock can be killed, and the lock it would have had is given back", async () => {
    const f = join(m.mountpoint, "locked");
    fs.writeFileSync(f, "x");
    const py = (mode: string) => spawn("python3", ["-c", `
import fcntl, sys, time
f = open(${JSON.stringify(f)}, "r+")
mode = ${JSON.stringify(mode)}
if mode == "hold":
    fcntl.lockf(f, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
elif mode == "wait":
    print("waiting", flush=True)
    fcntl.lockf(f, fcntl.LOCK_EX)
    print("got it", flush=True)
    time.sleep(60)
else:
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("free", flush=True)
    except OSError:
        print("busy", flush=True)
`], { stdio: ["pipe", "pipe", "inherit"] });
    const line = (p: ReturnType<typeof spawn>) => new Promise<string>((res) => p.stdout!.once("data", (d: Buffer) => res(d.toString().trim())));
    const holder = py("hold");
    assert.equal(await line(holder), "held");
    const waiter = py("wait");
    assert.equal(await line(waiter), "waiting");
    await new Promise((r) => setTimeout(r, 300)); // the wait is at the server
    const killedAt = Date.now();
    waiter.kill("SIGKILL");
    await waitForExit(waiter, 5000);
    assert.equal(waiter.signalCode, "SIGKILL", "the waiter ended");
    assert.ok(Date.now() - killedAt < 3000, `the killed waiter took ${Date.now() - killedAt} ms to end`);
    holder.stdin!.end();
    await waitForExit(holder, 5000);
    // The server still granted the dead waiter's request once the holder let go: the bridge undoes it.
    let state = "";
    for (let i = 0; i < 40 && state !== "free"; i++) {
      const probe = py("try");
      state = await line(probe);
      await waitForExit(probe, 5000);
      if (state !== "free") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(state, "free");
  });

  it("an unlinked open file leaves no hidden name behind: its directory lists empty and can be removed", async () => {
    const dir = join(m.mountpoint, "orphans");
    fs.mkdirSync(dir);
    const f = join(dir, "f");
    fs.writeFileSync(f, "still here");
    const { stdout } = await exec("python3", ["-c", `
import os, json
fd = os.open(${JSON.stringify(f)}, os.O_RDONLY)
os.unlink(${JSON.stringify(f)})
listing = os.listdir(${JSON.stringify(dir)})
data = os.pread(fd, 100, 0).decode()
os.rmdir(${JSON.stringify(dir)})
os.close(fd)
print(json.dumps({"listing": listing, "data": data}))
`]);
    assert.deepEqual(JSON.parse(stdout), { listing: [], data: "still here" });
    assert.equal(fs.existsSync(join(brick, "orphans")), false);
  });

  it("hard links: a write, chmod or unlink through one name shows through the other at once (attributes are cached 1 s)", async () => {
    const a = join(m.mountpoint, "one");
    const b = join(m.mountpoint, "two");
    fs.writeFileSync(a, "12345");
    fs.linkSync(a, b);
    assert.equal(fs.statSync(a).nlink, 2);
    assert.equal(fs.statSync(b).size, 5);
    fs.appendFileSync(a, "678");
    assert.equal(fs.statSync(b).size, 8);
    fs.chmodSync(b, 0o600);
    assert.equal(fs.statSync(a).mode & 0o777, 0o600);
    fs.unlinkSync(a);
    assert.equal(fs.statSync(b).nlink, 1);
  });
  it("after a stream of big reads, once it stops, the mount runs a full collection (promoted read buffers are freed)", async () => {
    // written into the brick, not through the mount: the kernel has none of it cached, so every read reaches us
    const MiB = 1 << 20;
    const fd0 = fs.openSync(join(brick, "streamed"), "w");
    for (let i = 0; i < 48; i++) fs.writeSync(fd0, Buffer.alloc(MiB, i));
    fs.closeSync(fd0);
    const reclaims = async () => ((await statedumpOf(m)) as { process: { transientReclaims: { young: number; full: number } } }).process.transientReclaims;
    const before = await reclaims();
    const buf = Buffer.alloc(MiB);
    const fd = fs.openSync(join(m.mountpoint, "streamed"), "r");
    try {
      for (let i = 0; i < 48; i++) {
        assert.equal(fs.readSync(fd, buf, 0, MiB, i * MiB), MiB);
        assert.equal(buf[MiB - 1], i);
      }
    } finally {
      fs.closeSync(fd);
    }
    // (the rule: idle for 200 ms, checked every 200 ms; a busy machine may take longer to get there)
    let after = await reclaims();
    for (const deadline = Date.now() + 10_000; after.full === before.full && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 250));
      after = await reclaims();
    }
    assert.ok(after.young - before.young >= 2, `young collections while streaming (${before.young} -> ${after.young})`);
    // (one, unless a pause of 200 ms within the stream on a busy machine made it two)
    assert.ok(after.full - before.full >= 1, `a full collection after the stream (${before.full} -> ${after.full})`);
    fs.unlinkSync(join(brick, "streamed"));
  });
});

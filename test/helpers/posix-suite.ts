// A POSIX behaviour suite that runs every scenario twice, on the mount under test and on a plain
// directory of the machine's own disk, and asserts the two agree (results, errno codes, contents,
// metadata). Reused for every graph: local posix, over the network, replicated.
//
// Usage: posixSuite("posix+locks mount", () => mounted.mountpoint). The mount must be served by
// another process (the glusterfs CLI): this file uses synchronous fs calls.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

type Outcome = unknown;

// Debian's python3 (fcntl.lockf, os.*xattr); a version manager's shim costs ~100 ms a start.
const PYTHON = fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** The result of a call, or its errno name: what both sides must agree on. */
function attempt<T>(f: () => T): T | { errno: string } {
  try {
    return f();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!code) throw err;
    return { errno: code };
  }
}

/** The metadata that must match (directory sizes are the backing filesystem's business). */
function meta(st: fs.Stats) {
  const type = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFIFO() ? "fifo" : "other";
  return { type, perm: (st.mode & 0o7777).toString(8), nlink: st.nlink, size: type === "dir" ? undefined : st.size, uid: st.uid, gid: st.gid };
}

function metaOf(p: string) {
  return attempt(() => meta(fs.lstatSync(p)));
}

const PY_XATTRS = `
import os, sys, json, errno
p = sys.argv[1]
out = []
def rec(label, f):
    try:
        v = f()
        if isinstance(v, bytes): v = v.decode()
        if isinstance(v, list): v = sorted(v)
        out.append([label, v])
    except OSError as e:
        out.append([label, {"errno": errno.errorcode[e.errno]}])
open(p, "w").close()
rec("list-empty", lambda: [n for n in os.listxattr(p) if n.startswith("user.")])
rec("set", lambda: os.setxattr(p, "user.a", b"one"))
rec("get", lambda: os.getxattr(p, "user.a"))
rec("set-create-existing", lambda: os.setxattr(p, "user.a", b"x", os.XATTR_CREATE))
rec("set-replace-missing", lambda: os.setxattr(p, "user.b", b"x", os.XATTR_REPLACE))
rec("set-replace", lambda: os.setxattr(p, "user.a", b"two", os.XATTR_REPLACE))
rec("get-replaced", lambda: os.getxattr(p, "user.a"))
rec("set-binary", lambda: os.setxattr(p, "user.bin", bytes(range(256))))
rec("get-binary", lambda: os.getxattr(p, "user.bin").hex())
rec("set-empty", lambda: os.setxattr(p, "user.empty", b""))
rec("get-empty", lambda: os.getxattr(p, "user.empty"))
rec("list", lambda: [n for n in os.listxattr(p) if n.startswith("user.")])
rec("get-missing", lambda: os.getxattr(p, "user.nope"))
rec("remove", lambda: os.removexattr(p, "user.a"))
rec("remove-missing", lambda: os.removexattr(p, "user.a"))
rec("list-after", lambda: [n for n in os.listxattr(p) if n.startswith("user.")])
os.mkdir(p + ".d")
rec("dir-set", lambda: os.setxattr(p + ".d", "user.d", b"dir"))
rec("dir-get", lambda: os.getxattr(p + ".d", "user.d"))
rec("missing-file", lambda: os.getxattr(p + ".none", "user.a"))
print(json.dumps(out))
`;

const PY_LOCK = `
import fcntl, os, sys, json, errno, time
path, kind, start, length, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
fd = os.open(path, os.O_RDWR)
op = fcntl.LOCK_EX if kind == "ex" else fcntl.LOCK_SH
if mode != "wait": op |= fcntl.LOCK_NB
t = time.time()
try:
    fcntl.lockf(fd, op, length, start)
    res = {"ok": True}
except OSError as e:
    res = {"errno": errno.errorcode[e.errno]}
res["waitedMs"] = int((time.time() - t) * 1000)
print(json.dumps(res), flush=True)
if mode == "hold": sys.stdin.readline()
`;

function python(script: string, args: string[]): unknown {
  const r = spawnSync(PYTHON, ["-c", script, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** A process holding a lock until release(); `first` is its first JSON line (the lock result). */
function holdLock(cmd: string, args: string[]): Promise<{ first: Record<string, unknown>; release(): Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0 && out.length > 0) {
        child.stdout.removeAllListeners("data");
        resolve({
          first: JSON.parse(out.slice(0, nl)),
          release: () => new Promise((res) => {
            child.once("exit", (code) => res(code));
            child.stdin.end("\n");
          }),
        });
      }
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (!out.includes("\n")) reject(new Error(`lock holder exited ${code} early`));
    });
  });
}

/** Starts a lock request that may block; resolves with its JSON line when it completes. */
function lockLater(args: string[]): { done: Promise<Record<string, unknown>>; finished: () => boolean } {
  let finished = false;
  const done = new Promise<Record<string, unknown>>((resolve, reject) => {
    const child = spawn(PYTHON, ["-c", PY_LOCK, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", () => {
      finished = true;
      try {
        resolve(JSON.parse(out));
      } catch (err) {
        reject(err);
      }
    });
  });
  return { done, finished: () => finished };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function posixSuite(name: string, getMountDir: () => string): void {
  describe(`POSIX behaviour: ${name} agrees with the local disk`, () => {
    let reference: string;
    let counter = 0;

    before(() => {
      // /var/tmp: on the machine's own disk on Debian (never tmpfs).
      reference = mkdtempSync("/var/tmp/gha-posix-ref-");
    });
    after(() => rmSync(reference, { recursive: true, force: true }));

    /** A fresh directory of the same name on both sides. */
    function dirs(): [string, string] {
      const n = `case-${process.pid}-${++counter}`;
      const a = join(getMountDir(), n);
      const b = join(reference, n);
      fs.mkdirSync(a);
      fs.mkdirSync(b);
      return [a, b];
    }

    /** Runs the scenario on both sides and asserts the outcomes agree; returns the local one. */
    async function agree<T extends Outcome>(scenario: (root: string) => T | Promise<T>): Promise<T> {
      const [onMount, onDisk] = dirs();
      try {
        const local = await scenario(onDisk);
        const mounted = await scenario(onMount);
        assert.deepEqual(mounted, local);
        return local;
      } finally {
        rmSync(onMount, { recursive: true, force: true });
        rmSync(onDisk, { recursive: true, force: true });
      }
    }

    it("create, write, read, append, pwrite and truncate", async () => {
      const local = await agree((d) => {
        const f = join(d, "f");
        const r: Record<string, unknown> = {};
        fs.writeFileSync(f, "hello world");
        r.read = fs.readFileSync(f, "utf8");
        fs.appendFileSync(f, "!!");
        const fd = fs.openSync(f, "r+");
        fs.writeSync(fd, "HELLO", 0, "utf8");
        fs.writeSync(fd, Buffer.from("xyz"), 0, 3, 20); // past the end: a hole of zeros
        r.afterPwrite = fs.readFileSync(f).toString("hex");
        fs.ftruncateSync(fd, 4);
        r.fstatSize = fs.fstatSync(fd).size;
        fs.closeSync(fd);
        r.afterFtruncate = fs.readFileSync(f, "utf8");
        fs.truncateSync(f, 10);
        r.extended = fs.readFileSync(f).toString("hex");
        r.meta = metaOf(f);
        r.exclusive = attempt(() => fs.openSync(f, "wx"));
        r.noCreate = attempt(() => fs.openSync(join(d, "missing"), "r"));
        r.readDir = attempt(() => fs.readFileSync(d));
        r.writeDir = attempt(() => fs.openSync(d, "w"));
        r.notDirParent = attempt(() => fs.openSync(join(f, "x"), "w"));
        const w = fs.openSync(join(d, "t"), "w");
        fs.writeSync(w, "abc");
        r.truncOnOpen = (fs.closeSync(w), fs.closeSync(fs.openSync(join(d, "t"), "w")), fs.statSync(join(d, "t")).size);
        return r;
      });
      assert.equal((local as Record<string, unknown>).read, "hello world");
      assert.deepEqual((local as Record<string, unknown>).exclusive, { errno: "EEXIST" });
    });

    it("rename over existing files and directories, with the right errno cases", async () => {
      const local = await agree((d) => {
        const p = (n: string) => join(d, n);
        fs.writeFileSync(p("a"), "A");
        fs.writeFileSync(p("b"), "B");
        fs.mkdirSync(p("emptydir"));
        fs.mkdirSync(p("dir"));
        fs.mkdirSync(p("full"));
        fs.writeFileSync(join(p("full"), "x"), "x");
        fs.mkdirSync(p("other"));
        const inoA = fs.statSync(p("a")).ino;
        const r: Record<string, unknown> = {};
        r.fileOverFile = attempt(() => fs.renameSync(p("a"), p("b")));
        r.contentAfter = fs.readFileSync(p("b"), "utf8");
        r.sameInode = fs.statSync(p("b")).ino === inoA;
        r.sourceGone = metaOf(p("a"));
        r.dirOverEmptyDir = attempt(() => fs.renameSync(p("dir"), p("emptydir")));
        r.dirOverFullDir = attempt(() => fs.renameSync(p("emptydir"), p("full")));
        r.fileOverDir = attempt(() => fs.renameSync(p("b"), p("other")));
        r.dirOverFile = attempt(() => fs.renameSync(p("other"), p("b")));
        r.missing = attempt(() => fs.renameSync(p("nope"), p("nope2")));
        r.intoOwnSubdir = attempt(() => fs.renameSync(p("full"), join(p("full"), "x", "y")));
        r.dirIntoItself = attempt(() => fs.renameSync(p("other"), join(p("other"), "inside")));
        r.toSelf = attempt(() => fs.renameSync(p("b"), p("b")));
        r.acrossDirs = attempt(() => fs.renameSync(p("b"), join(p("other"), "b2")));
        r.moved = fs.readFileSync(join(p("other"), "b2"), "utf8");
        // An open file keeps working after a rename.
        fs.writeFileSync(p("open"), "still here");
        const fd = fs.openSync(p("open"), "r");
        fs.renameSync(p("open"), p("renamed"));
        const buf = Buffer.alloc(10);
        fs.readSync(fd, buf, 0, 10, 0);
        fs.closeSync(fd);
        r.readAfterRename = buf.toString();
        r.listing = fs.readdirSync(d).sort();
        return r;
      });
      const l = local as Record<string, unknown>;
      assert.deepEqual(l.dirOverFullDir, { errno: "ENOTEMPTY" });
      assert.deepEqual(l.fileOverDir, { errno: "EISDIR" });
      assert.deepEqual(l.dirOverFile, { errno: "ENOTDIR" });
    });

    it("hard links share data and metadata", async () => {
      await agree((d) => {
        const a = join(d, "a");
        const b = join(d, "b");
        fs.writeFileSync(a, "shared");
        const r: Record<string, unknown> = {};
        r.link = attempt(() => fs.linkSync(a, b));
        r.sameInode = fs.statSync(a).ino === fs.statSync(b).ino;
        r.nlink = fs.statSync(a).nlink;
        fs.appendFileSync(b, "+more");
        r.seenThroughA = fs.readFileSync(a, "utf8");
        fs.chmodSync(b, 0o600);
        r.modeThroughA = metaOf(a);
        r.linkExisting = attempt(() => fs.linkSync(a, b));
        r.linkDir = attempt(() => fs.linkSync(d, join(d, "dirlink")));
        r.linkMissing = attempt(() => fs.linkSync(join(d, "missing"), join(d, "c")));
        fs.unlinkSync(a);
        r.afterUnlink = metaOf(b);
        r.content = fs.readFileSync(b, "utf8");
        return r;
      });
    });

    it("symlinks: create, read, follow, dangle", async () => {
      await agree((d) => {
        const r: Record<string, unknown> = {};
        fs.writeFileSync(join(d, "target"), "T");
        fs.mkdirSync(join(d, "tdir"));
        fs.writeFileSync(join(d, "tdir", "inner"), "I");
        r.symlink = attempt(() => fs.symlinkSync("target", join(d, "l")));
        r.readlink = fs.readlinkSync(join(d, "l"));
        r.lstat = meta(fs.lstatSync(join(d, "l")));
        r.stat = meta(fs.statSync(join(d, "l")));
        r.readThrough = fs.readFileSync(join(d, "l"), "utf8");
        fs.symlinkSync("tdir", join(d, "ldir"));
        r.throughDir = fs.readFileSync(join(d, "ldir", "inner"), "utf8");
        fs.symlinkSync("nowhere", join(d, "dangling"));
        r.dangleStat = attempt(() => fs.statSync(join(d, "dangling")));
        r.dangleLstat = metaOf(join(d, "dangling"));
        r.readlinkFile = attempt(() => fs.readlinkSync(join(d, "target")));
        r.symlinkExisting = attempt(() => fs.symlinkSync("x", join(d, "target")));
        fs.symlinkSync("/an/absolute/path/" + "p".repeat(200), join(d, "long"));
        r.longTarget = fs.readlinkSync(join(d, "long")).length;
        fs.symlinkSync("loop2", join(d, "loop1"));
        fs.symlinkSync("loop1", join(d, "loop2"));
        r.loop = attempt(() => fs.statSync(join(d, "loop1")));
        r.unlinkLink = attempt(() => fs.unlinkSync(join(d, "l")));
        r.targetKept = fs.readFileSync(join(d, "target"), "utf8");
        return r;
      });
    });

    it("chmod, chown and utimens (same atime and mtime)", async () => {
      await agree((d) => {
        const f = join(d, "f");
        fs.writeFileSync(f, "x");
        fs.mkdirSync(join(d, "sub"));
        const r: Record<string, unknown> = {};
        for (const mode of [0o640, 0o4755, 0o2711, 0o1777, 0o000]) {
          fs.chmodSync(f, mode);
          r[`chmod${mode.toString(8)}`] = metaOf(f);
        }
        fs.chmodSync(join(d, "sub"), 0o700);
        r.dirMode = metaOf(join(d, "sub"));
        fs.chownSync(f, 1234, 5678);
        r.chown = metaOf(f);
        fs.chownSync(f, -1, 42);
        r.chgrpOnly = metaOf(f);
        fs.utimesSync(f, 1_000_000, 1_000_000);
        const st = fs.statSync(f);
        r.times = [st.atimeMs, st.mtimeMs];
        r.missing = attempt(() => fs.chmodSync(join(d, "none"), 0o644));
        return r;
      });
    });

    it("utimens with different atime and mtime", async () => {
      await agree((d) => {
        const f = join(d, "f");
        fs.writeFileSync(f, "x");
        fs.utimesSync(f, 1_000_000, 2_000_000);
        const st = fs.statSync(f);
        return [st.atimeMs, st.mtimeMs];
      });
    });

    it("user xattrs: set, get, list, remove, create/replace flags", async () => {
      const local = await agree((d) => python(PY_XATTRS, [join(d, "f")]));
      assert.deepEqual((local as unknown[][])[2], ["get", "one"]);
    });

    it("mkdir and rmdir, non-empty and other errno cases", async () => {
      const local = await agree((d) => {
        const r: Record<string, unknown> = {};
        r.mkdir = attempt(() => fs.mkdirSync(join(d, "x"), 0o755));
        r.mkdirExisting = attempt(() => fs.mkdirSync(join(d, "x")));
        fs.writeFileSync(join(d, "x", "f"), "");
        r.rmdirNonEmpty = attempt(() => fs.rmdirSync(join(d, "x")));
        r.rmdirFile = attempt(() => fs.rmdirSync(join(d, "x", "f")));
        r.unlinkDir = attempt(() => fs.unlinkSync(join(d, "x")));
        r.rmdirMissing = attempt(() => fs.rmdirSync(join(d, "nope")));
        r.mkdirNoParent = attempt(() => fs.mkdirSync(join(d, "nope", "child")));
        r.mkdirUnderFile = attempt(() => fs.mkdirSync(join(d, "x", "f", "child")));
        r.nlinkParent = fs.statSync(d).nlink;
        fs.unlinkSync(join(d, "x", "f"));
        r.rmdirEmpty = attempt(() => fs.rmdirSync(join(d, "x")));
        r.gone = metaOf(join(d, "x"));
        for (let i = 0; i < 300; i++) fs.writeFileSync(join(d, `n${i}`), String(i));
        r.listing = fs.readdirSync(d).sort();
        r.types = fs.readdirSync(d, { withFileTypes: true }).map((e) => `${e.name}:${e.isFile()}`).sort();
        return r;
      });
      assert.deepEqual((local as Record<string, unknown>).rmdirNonEmpty, { errno: "ENOTEMPTY" });
    });

    it("long names: 255 bytes work, 256 fail with ENAMETOOLONG", async () => {
      const local = await agree((d) => {
        const ok = "n".repeat(254) + "é".slice(0, 1); // 255 bytes
        const multi = "é".repeat(127) + "x"; // 255 bytes in UTF-8
        const tooLong = "n".repeat(256);
        const r: Record<string, unknown> = {};
        r.create255 = attempt(() => fs.writeFileSync(join(d, ok), "ok"));
        r.stat255 = metaOf(join(d, ok));
        r.createMultibyte = attempt(() => fs.writeFileSync(join(d, multi), "mb"));
        r.readMultibyte = fs.readFileSync(join(d, multi), "utf8");
        r.mkdir255 = attempt(() => fs.mkdirSync(join(d, "d".repeat(255))));
        r.create256 = attempt(() => fs.writeFileSync(join(d, tooLong), "x"));
        r.mkdir256 = attempt(() => fs.mkdirSync(join(d, tooLong)));
        r.stat256 = attempt(() => fs.statSync(join(d, tooLong)));
        r.rename256 = attempt(() => fs.renameSync(join(d, ok), join(d, tooLong)));
        r.listing = fs.readdirSync(d).map((n) => Buffer.byteLength(n)).sort();
        return r;
      });
      assert.deepEqual((local as Record<string, unknown>).create256, { errno: "ENAMETOOLONG" });
    });

    it("deep paths (near PATH_MAX) and one past it", async () => {
      await agree((d) => {
        const r: Record<string, unknown> = {};
        let p = d;
        const seg = "s".repeat(120);
        // Stay under PATH_MAX (4096) whatever the mount's own path length.
        while (p.length + seg.length + 1 < 3900) {
          p = join(p, seg);
          fs.mkdirSync(p);
        }
        r.depth = p.slice(d.length).split("/").length;
        fs.writeFileSync(join(p, "leaf"), "deep");
        r.leaf = fs.readFileSync(join(p, "leaf"), "utf8");
        r.meta = metaOf(join(p, "leaf"));
        r.pastMax = attempt(() => fs.statSync(join(p, "x".repeat(250), "y".repeat(250))));
        return { ...r, depth: r.depth !== undefined };
      });
    });

    it("sparse files read back holes as zeros", async () => {
      await agree((d) => {
        const f = join(d, "sparse");
        const fd = fs.openSync(f, "w+");
        fs.writeSync(fd, Buffer.from("end"), 0, 3, 1 << 30);
        const buf = Buffer.alloc(4096, 1);
        fs.readSync(fd, buf, 0, 4096, 1 << 20);
        fs.closeSync(fd);
        const st = fs.statSync(f);
        return { size: st.size, sparse: st.blocks * 512 < 1 << 20, holeIsZero: buf.every((b) => b === 0) };
      });
    });

    it("large files: offsets past 4 GiB", async () => {
      await agree((d) => {
        const f = join(d, "large");
        const fd = fs.openSync(f, "w+");
        const off = 5 * 2 ** 30 + 12345;
        const data = Buffer.from("beyond four gibibytes");
        fs.writeSync(fd, data, 0, data.length, off);
        const back = Buffer.alloc(data.length);
        fs.readSync(fd, back, 0, back.length, off);
        const r: Record<string, unknown> = { back: back.toString(), size: fs.fstatSync(fd).size };
        fs.ftruncateSync(fd, 6 * 2 ** 30);
        r.truncated = fs.fstatSync(fd).size;
        fs.closeSync(fd);
        fs.truncateSync(f, 2 ** 32 + 1);
        r.truncatedByPath = fs.statSync(f).size;
        return r;
      });
    });

    it("an unlinked file stays readable through an open descriptor", async () => {
      await agree((d) => {
        const f = join(d, "f");
        fs.writeFileSync(f, "orphan");
        const fd = fs.openSync(f, "r");
        fs.unlinkSync(f);
        const buf = Buffer.alloc(6);
        fs.readSync(fd, buf, 0, 6, 0);
        fs.closeSync(fd);
        return { content: buf.toString(), gone: metaOf(f) };
      });
    });

    it("fcntl locks between two processes (exclusive, shared, byte ranges, blocking)", async () => {
      const local = await agree(async (d) => {
        const f = join(d, "locked");
        fs.writeFileSync(f, "0123456789".repeat(10));
        const r: Record<string, unknown> = {};
        const lock = (kind: string, start: number, len: number) => python(PY_LOCK, [f, kind, String(start), String(len), "nb"]) as Record<string, unknown>;
        const strip = (o: Record<string, unknown>) => ({ ...o, waitedMs: undefined });

        const ex = await holdLock(PYTHON, ["-c", PY_LOCK, f, "ex", "0", "0", "hold"]);
        r.holderEx = strip(ex.first);
        r.otherEx = strip(lock("ex", 0, 0));
        r.otherSh = strip(lock("sh", 0, 0));
        await ex.release();
        r.afterRelease = strip(lock("ex", 0, 0));

        const sh = await holdLock(PYTHON, ["-c", PY_LOCK, f, "sh", "0", "0", "hold"]);
        r.secondShared = strip(lock("sh", 0, 0));
        r.exVsShared = strip(lock("ex", 0, 0));
        await sh.release();

        const range = await holdLock(PYTHON, ["-c", PY_LOCK, f, "ex", "0", "10", "hold"]);
        r.disjointRange = strip(lock("ex", 10, 10));
        r.overlappingRange = strip(lock("ex", 5, 10));
        await range.release();

        // A blocking request waits for the holder, and gets the lock once it lets go.
        const holder = await holdLock(PYTHON, ["-c", PY_LOCK, f, "ex", "0", "0", "hold"]);
        const waiter = lockLater([f, "ex", "0", "0", "wait"]);
        await sleep(600);
        r.stillWaiting = !waiter.finished();
        await holder.release();
        const w = await waiter.done;
        r.waiterGotIt = w.ok === true;
        return r;
      });
      const l = local as Record<string, unknown>;
      assert.ok((l.otherEx as { errno?: string }).errno, "a second exclusive lock must be refused");
      assert.equal(l.waiterGotIt, true);
    });

    it("flock(1) between two processes", async () => {
      const local = await agree(async (d) => {
        const f = join(d, "flocked");
        fs.writeFileSync(f, "");
        const script = `echo '{"held":true}'; read line`;
        const holder = await holdLock("flock", ["-x", f, "-c", script]);
        const r: Record<string, unknown> = { held: holder.first.held };
        r.tryExclusive = spawnSync("flock", ["-n", "-x", f, "-c", "true"]).status;
        r.tryShared = spawnSync("flock", ["-n", "-s", f, "-c", "true"]).status;
        r.holderExit = await holder.release();
        r.afterRelease = spawnSync("flock", ["-n", "-x", f, "-c", "true"]).status;
        const shared = await holdLock("flock", ["-s", f, "-c", script]);
        r.sharedWithShared = spawnSync("flock", ["-n", "-s", f, "-c", "true"]).status;
        await shared.release();
        return r;
      });
      assert.equal((local as Record<string, unknown>).tryExclusive, 1);
    });

    it("statfs reports a usable filesystem", () => {
      const s = fs.statfsSync(getMountDir());
      assert.ok(s.blocks > 0 && s.bsize > 0, JSON.stringify(s));
      assert.ok(s.bavail <= s.blocks);
    });
  });
}

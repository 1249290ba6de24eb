// Differential POSIX testing: random sequences of file operations run on the FUSE mount of the seed
// cluster and on a plain local directory; return values, errno, contents and metadata must match op by
// op. fast-check shrinks a failure to a minimal sequence. CI: 4 seeds x 150 runs (<= 25 s each);
// FAULTS_LONG=1: 10 seeds x 1000 runs. FAULTS_SEED=n adds a seed. 127.0.0.2/127.0.0.3:24550.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { FaultCluster } from "../helpers/cluster";
import { stopAllServers, tempDir } from "../helpers/servers";
import { LONG, record } from "./report";

const PORT = 24550;
const FILE = "differential-posix.test.ts";
let c: FaultCluster;
let local: string;
let runNo = 0;
let opsIssued = 0;

before(async () => {
  c = await FaultCluster.start({ port: PORT, clientTimeout: 3, peerTimeout: 2 });
  local = tempDir("gha-faults-diff-");
});
after(async () => {
  await c?.close();
  await stopAllServers();
});

const PATHS = ["a", "b", "d", "d/a", "d/b", "d/e", "d/e/a", "x/y"] as const;
const pathArb = fc.constantFrom(...PATHS);
const dataArb = fc.oneof(fc.string({ maxLength: 40 }), fc.constant(""), fc.integer({ min: 1, max: 200_000 }).map((n) => "z".repeat(n)));

type Op =
  | { op: "writeFile"; p: string; data: string }
  | { op: "appendFile"; p: string; data: string }
  | { op: "pwrite"; p: string; data: string; at: number }
  | { op: "readFile"; p: string }
  | { op: "mkdir"; p: string }
  | { op: "rmdir"; p: string }
  | { op: "unlink"; p: string }
  | { op: "rename"; p: string; q: string }
  | { op: "truncate"; p: string; len: number }
  | { op: "stat"; p: string }
  | { op: "lstat"; p: string }
  | { op: "chmod"; p: string; mode: number }
  | { op: "symlink"; target: string; p: string }
  | { op: "readlink"; p: string }
  | { op: "link"; p: string; q: string }
  | { op: "readdir"; p: string }
  | { op: "setxattr"; p: string; value: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("writeFile" as const), p: pathArb, data: dataArb }),
  fc.record({ op: fc.constant("appendFile" as const), p: pathArb, data: dataArb }),
  fc.record({ op: fc.constant("pwrite" as const), p: pathArb, data: fc.string({ minLength: 1, maxLength: 20 }), at: fc.integer({ min: 0, max: 70_000 }) }),
  fc.record({ op: fc.constant("readFile" as const), p: pathArb }),
  fc.record({ op: fc.constant("mkdir" as const), p: pathArb }),
  fc.record({ op: fc.constant("rmdir" as const), p: pathArb }),
  fc.record({ op: fc.constant("unlink" as const), p: pathArb }),
  fc.record({ op: fc.constant("rename" as const), p: pathArb, q: pathArb }),
  fc.record({ op: fc.constant("truncate" as const), p: pathArb, len: fc.integer({ min: 0, max: 140_000 }) }),
  fc.record({ op: fc.constant("stat" as const), p: pathArb }),
  fc.record({ op: fc.constant("lstat" as const), p: pathArb }),
  fc.record({ op: fc.constant("chmod" as const), p: pathArb, mode: fc.constantFrom(0o600, 0o644, 0o755, 0o700, 0o444) }),
  fc.record({ op: fc.constant("symlink" as const), target: fc.constantFrom("a", "d/a", "../a", "missing", "d"), p: pathArb }),
  fc.record({ op: fc.constant("readlink" as const), p: pathArb }),
  fc.record({ op: fc.constant("link" as const), p: pathArb, q: pathArb }),
  fc.record({ op: fc.constant("readdir" as const), p: fc.constantFrom(".", "d", "d/e", "x") }),
  fc.record({ op: fc.constant("setxattr" as const), p: pathArb, value: fc.string({ maxLength: 10 }) }),
);

/** What an op returned, in a form comparable across the two filesystems. */
async function apply(root: string, o: Op): Promise<unknown> {
  const P = (p: string) => join(root, p);
  const meta = (s: import("node:fs").Stats) => ({
    type: s.isFile() ? "file" : s.isDirectory() ? "dir" : s.isSymbolicLink() ? "symlink" : "other",
    // Directory sizes and symlink sizes are filesystem-specific; a file's size is not.
    size: s.isFile() ? s.size : undefined,
    perm: s.isSymbolicLink() ? undefined : s.mode & 0o7777,
    nlink: s.isDirectory() ? undefined : s.nlink,
  });
  try {
    switch (o.op) {
      case "writeFile": return await fs.writeFile(P(o.p), o.data);
      case "appendFile": return await fs.appendFile(P(o.p), o.data);
      case "pwrite": {
        const fh = await fs.open(P(o.p), "r+");
        try {
          return (await fh.write(o.data, o.at)).bytesWritten;
        } finally {
          await fh.close();
        }
      }
      case "readFile": {
        const b = await fs.readFile(P(o.p));
        return `${b.length}:${b.toString("base64").slice(0, 64)}:${require("node:crypto").createHash("sha1").update(b).digest("hex")}`;
      }
      case "mkdir": return await fs.mkdir(P(o.p), 0o755);
      case "rmdir": return await fs.rmdir(P(o.p));
      case "unlink": return await fs.unlink(P(o.p));
      case "rename": return await fs.rename(P(o.p), P(o.q));
      case "truncate": return await fs.truncate(P(o.p), o.len);
      case "stat": return meta(await fs.stat(P(o.p)));
      case "lstat": return meta(await fs.lstat(P(o.p)));
      case "chmod": return await fs.chmod(P(o.p), o.mode);
      case "symlink": return await fs.symlink(o.target, P(o.p));
      case "readlink": return await fs.readlink(P(o.p));
      case "link": return await fs.link(P(o.p), P(o.q));
      case "readdir": return (await fs.readdir(P(o.p))).sort();
      case "setxattr": {
        const { setAttribute, getAttribute } = await import("@napi-rs/xattr");
        await setAttribute(P(o.p), "user.diff", Buffer.from(o.value));
        return (await getAttribute(P(o.p), "user.diff"))?.toString();
      }
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!code) throw err;
    return { errno: code };
  }
}

async function runBoth(ops: Op[]): Promise<void> {
  const name = `run-${runNo++}`;
  const m = join(c.mounts[0]!.mountpoint, name);
  const l = join(local, name);
  await fs.mkdir(m);
  await fs.mkdir(l);
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!;
    const [got, want] = [await apply(m, o), await apply(l, o)];
    opsIssued += 2;
    assert.deepEqual(got, want, `op ${i} ${JSON.stringify(o)}: mount ${JSON.stringify(got)} vs local ${JSON.stringify(want)}`);
  }
  // The final trees match too (names, types, contents).
  const tree = async (root: string, rel = "."): Promise<string[]> => {
    const out: string[] = [];
    for (const e of (await fs.readdir(join(root, rel), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(rel, e.name);
      if (e.isDirectory()) out.push(`${p}/`, ...(await tree(root, p)));
      else if (e.isSymbolicLink()) out.push(`${p} -> ${await fs.readlink(join(root, p))}`);
      else out.push(`${p} ${(await fs.readFile(join(root, p))).length}`);
    }
    return out;
  };
  assert.deepEqual(await tree(m), await tree(l), "final trees");
}

const seeds = LONG ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] : [1, 2, 3, 4];
if (process.env.FAULTS_SEED) seeds.push(Number(process.env.FAULTS_SEED));
for (const seed of seeds) {
  test(`random op sequences give the same results on the mount as on a local directory (seed ${seed})`, async () => {
    const before = opsIssued;
    try {
      await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: LONG ? 40 : 30 }), runBoth), {
        seed, numRuns: LONG ? 1000 : 150, endOnFailure: false, interruptAfterTimeLimit: LONG ? 600_000 : 25_000,
      });
    } finally {
      record({ file: FILE, scenarios: 1, operations: opsIssued - before, crashes: c.crashes().length });
    }
    assert.deepEqual(c.crashes(), []);
  });
}

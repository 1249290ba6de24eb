// Two clients at once: fcntl-locked read-modify-write of one file (no lost update), and rename/unlink
// storms (no crash, bricks agree, every surviving file whole). Each client mount is pinned to a different
// server, so locks and directory operations must be coordinated across the servers' AFR.
// Seed topology on 127.0.0.2/127.0.0.3:24530.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { FaultCluster, nodeAddress, type ClusterMount } from "../helpers/cluster";
import { stopAllServers } from "../helpers/servers";
import { LONG, record } from "./report";

const run = promisify(execFile);
const PORT = 24530;
const FILE = "concurrency.test.ts";
let c: FaultCluster;
let a: ClusterMount;
let b: ClusterMount;

before(async () => {
  c = await FaultCluster.start({ port: PORT, clientTimeout: 3, peerTimeout: 2, mount: false });
  a = await c.mount({ hosts: nodeAddress(1) });
  b = await c.mount({ hosts: nodeAddress(2) });
});
after(async () => {
  await c?.close();
  await stopAllServers();
});

// Locked read-increment-write of a decimal counter, N times (python3's fcntl.lockf = F_SETLKW).
const LOCKED_INCREMENT = `
import fcntl, os, sys
path, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    os.lseek(fd, 0, 0)
    v = int(os.read(fd, 64) or b"0")
    os.lseek(fd, 0, 0)
    os.ftruncate(fd, 0)
    os.write(fd, str(v + 1).encode())
    os.fsync(fd)
    fcntl.lockf(fd, fcntl.LOCK_UN)
    os.close(fd)
`;

test("two clients incrementing one file under fcntl locks lose no update", async (t) => {
  const n = LONG ? 500 : 100;
  await writeFile(join(a.mountpoint, "counter"), "0");
  const t0 = Date.now();
  await Promise.all([a, b].map((m) => run("python3", ["-c", LOCKED_INCREMENT, join(m.mountpoint, "counter"), String(n)], { timeout: 240_000 })));
  t.diagnostic(`${2 * n} locked increments in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await c.waitHealed(30_000);
  const seen = await Promise.all([join(a.mountpoint, "counter"), join(b.mountpoint, "counter"), c.brickPath(1, "counter"), c.brickPath(2, "counter")].map((p) => readFile(p, "utf8")));
  record({ file: FILE, scenarios: 1, operations: 2 * n * 7, bytesVerified: seen.join("").length, crashes: c.crashes().length, dataLost: seen.filter((s) => s !== String(2 * n)).length });
  assert.deepEqual(seen, Array(4).fill(String(2 * n)), "mount a, mount b, brick1, brick2 all hold the full count");
  assert.deepEqual(c.crashes(), []);
});

async function code(p: Promise<unknown>): Promise<string> {
  return p.then(() => "OK", (e: NodeJS.ErrnoException) => e.code ?? String(e));
}

test("rename and unlink storms from two clients leave both bricks identical and every file whole", async (t) => {
  const rounds = LONG ? 2000 : 400;
  const names = Array.from({ length: 8 }, (_, i) => `s${i}`);
  const dirA = join(a.mountpoint, "storm");
  const dirB = join(b.mountpoint, "storm");
  await run("mkdir", ["-p", dirA]);
  const outcomes: Record<string, number> = {};
  const tally = (k: string) => (outcomes[k] = (outcomes[k] ?? 0) + 1);
  let seq = 0;
  const content = (tag: string) => `${tag}:${"x".repeat(1000)}:${tag}\n`;
  const storm = async (dir: string, who: string) => {
    for (let i = 0; i < rounds; i++) {
      const r = (i * 7 + (who === "a" ? 3 : 5)) % 4;
      const x = names[(i * 3 + (who === "a" ? 1 : 4)) % names.length]!;
      const y = names[(i * 5 + 2) % names.length]!;
      if (r === 0) {
        const tag = `${who}${seq++}`;
        const tmp = join(dir, `.tmp-${tag}`);
        tally(`write ${await code(writeFile(tmp, content(tag)))}`);
        tally(`rename-in ${await code(rename(tmp, join(dir, x)))}`);
      } else if (r === 1) {
        tally(`rename ${await code(rename(join(dir, x), join(dir, y)))}`);
      } else if (r === 2) {
        tally(`unlink ${await code(unlink(join(dir, x)))}`);
      } else {
        tally(`read ${await code(readFile(join(dir, y), "utf8").then((s) => assert.match(s, /^([ab]\d+):x{1000}:\1\n$/)))}`);
      }
    }
  };
  await Promise.all([storm(dirA, "a"), storm(dirB, "b")]);
  t.diagnostic(`outcomes: ${JSON.stringify(outcomes)}`);
  const unexpected = Object.keys(outcomes).filter((k) => !/ (OK|ENOENT)$/.test(k));
  await c.waitHealed(30_000);
  const list = async (d: string) => (await readdir(d)).sort();
  const [la, lb, l1, l2] = await Promise.all([list(dirA), list(dirB), list(c.brickPath(1, "storm")), list(c.brickPath(2, "storm"))]);
  let whole = 0;
  for (const f of l1) {
    const [x, y, m] = await Promise.all([readFile(join(c.brickPath(1, "storm"), f), "utf8"), readFile(join(c.brickPath(2, "storm"), f), "utf8"), readFile(join(dirA, f), "utf8")]);
    if (x === y && y === m && /^([ab]\d+):x{1000}:\1\n$/.test(x)) whole++;
  }
  record({ file: FILE, scenarios: 1, operations: rounds * 2, bytesVerified: whole * 1010, crashes: c.crashes().length, dataLost: l1.length - whole });
  assert.deepEqual(unexpected, [], "only OK or ENOENT (a lost race) as outcomes");
  assert.deepEqual(la, l1, "mount a lists what brick1 holds");
  assert.deepEqual(lb, l1, "mount b lists what brick1 holds");
  assert.deepEqual(l2, l1, "the bricks hold the same names");
  assert.equal(whole, l1.length, "every surviving file is whole and identical on both bricks and the mount");
  assert.deepEqual(c.crashes(), []);
});

// Replication and self-heal through real processes: the seed's two servers and a FUSE client, with
// nodes killed and restarted under load. Everything is checksummed: nothing acknowledged is lost and
// the bricks end byte-identical.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { appendFile, open } from "node:fs/promises";
import { join } from "node:path";
import { startSeedCluster, waitUntil, type SeedCluster } from "./afr-seed-cluster";

const PORT = 24220;

/** name -> sha1 of every file under a brick (without .glusterfs), dirs as "dir". */
function tree(root: string, rel = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    if (rel === "" && e.name === ".glusterfs") continue;
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      out.set(p, "dir");
      for (const [k, v] of tree(root, p)) out.set(k, v);
    } else out.set(p, createHash("sha1").update(readFileSync(join(root, p))).digest("hex"));
  }
  return out;
}

function waitHealed(c: SeedCluster, timeoutS = 60): void {
  const r = c.cli(["heal", "info", "-f", c.volfiles[1], "--wait-empty", "--timeout", String(timeoutS)]);
  assert.equal(r.status, 0, `heal info --wait-empty: ${r.stdout}${r.stderr}`);
}

function assertBricksEqual(c: SeedCluster): void {
  assert.deepEqual(Object.fromEntries(tree(c.bricks[0])), Object.fromEntries(tree(c.bricks[1])));
}

test("a large file written across a failover ends identical on both bricks", async (t) => {
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3,127.0.0.2" });
  t.after(() => c.close());
  const path = join(c.mount.mountpoint, "big.bin");
  const expected = randomBytes(24 << 20);
  const fh = await open(path, "w");
  const chunk = 1 << 20;
  for (let off = 0; off < expected.length; off += chunk) {
    if (off === 8 * chunk) await c.kill(1);
    if (off === 16 * chunk) await c.start(1);
    await fh.write(expected, off, chunk, off);
  }
  await fh.close();
  waitHealed(c);
  assert.ok(readFileSync(path).equals(expected), "mount content");
  assert.ok(readFileSync(join(c.bricks[0], "big.bin")).equals(expected), "node1 brick");
  assert.ok(readFileSync(join(c.bricks[1], "big.bin")).equals(expected), "node2 brick");
});

test("deletes, renames and new directories while node1 is down heal without resurrecting files", async (t) => {
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3,127.0.0.2" });
  t.after(() => c.close());
  const m = c.mount.mountpoint;
  mkdirSync(join(m, "dir"));
  for (let i = 0; i < 10; i++) writeFileSync(join(m, "dir", `f${i}`), `content ${i}\n`);
  writeFileSync(join(m, "keep"), "keep");
  await c.kill(1);
  for (let i = 0; i < 5; i++) unlinkSync(join(m, "dir", `f${i}`));
  renameSync(join(m, "dir", "f5"), join(m, "renamed"));
  renameSync(join(m, "keep"), join(m, "dir", "kept"));
  mkdirSync(join(m, "new", "deep"), { recursive: true });
  writeFileSync(join(m, "new", "deep", "x"), randomBytes(300_000));
  rmSync(join(m, "dir", "f6"));
  await c.start(1);
  waitHealed(c);
  assertBricksEqual(c);
  for (let i = 0; i < 5; i++) assert.equal(existsSync(join(c.bricks[0], "dir", `f${i}`)), false, `f${i} stays deleted`);
  assert.equal(existsSync(join(c.bricks[0], "keep")), false);
  assert.equal(readFileSync(join(c.bricks[0], "renamed"), "utf8"), "content 5\n");
  assert.deepEqual(readdirSync(join(m, "dir")).sort(), ["f7", "f8", "f9", "kept"]);
});

test("both nodes restarted in turn under a running writer: every acknowledged record survives", async (t) => {
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3,127.0.0.2" });
  t.after(() => c.close());
  const path = join(c.mount.mountpoint, "log.txt");
  writeFileSync(path, "");
  const acked: string[] = [];
  let stop = false;
  let failures = 0;
  const writer = (async () => {
    for (let n = 0; !stop; n++) {
      const rec = `record ${n} ${"x".repeat(n % 50)}\n`;
      for (;;) {
        try {
          await appendFile(path, rec);
          acked.push(rec);
          break;
        } catch {
          failures++; // a write refused while the client switches servers is retried
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await pause(500);
  await c.kill(1);
  await pause(700);
  await c.start(1);
  assert.ok(await waitUntil(() => c.cli(["heal", "info", "-f", c.volfiles[0], "--wait-empty", "--timeout", "0"]).status === 0, 20000, 200), "node1 healed before node2 is killed");
  await c.kill(2);
  await pause(700);
  await c.start(2);
  await pause(500);
  stop = true;
  await writer;
  waitHealed(c);
  const content = readFileSync(path, "utf8");
  assert.equal(content, acked.join(""), `every acknowledged record, in order (${acked.length} records, ${failures} retried)`);
  assertBricksEqual(c);
});

test("a node restarted in the middle of a heal still ends byte-identical", async (t) => {
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3,127.0.0.2" });
  t.after(() => c.close());
  const m = c.mount.mountpoint;
  await c.kill(1);
  const files = [0, 1, 2].map(() => randomBytes(32 << 20));
  files.forEach((b, i) => writeFileSync(join(m, `heal${i}.bin`), b));
  await c.start(1);
  await waitUntil(() => existsSync(join(c.bricks[0], "heal0.bin")) && statSync(join(c.bricks[0], "heal0.bin")).size > 0, 10000, 5);
  await c.kill(1); // mid-heal
  await c.start(1);
  waitHealed(c);
  files.forEach((b, i) => assert.ok(readFileSync(join(c.bricks[0], `heal${i}.bin`)).equals(b), `heal${i}.bin on node1`));
  assertBricksEqual(c);
});

test("heal full repopulates a wiped brick, can be interrupted and resumes from its checkpoint", async (t) => {
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3,127.0.0.2" });
  t.after(() => c.close());
  const m = c.mount.mountpoint;
  // Enough files that the heal is still running when the interrupt comes (200 healed in well under a
  // second once the restarted brick had precreated inodes, before the signal arrived).
  const perDir = 250;
  for (let d = 0; d < 4; d++) {
    mkdirSync(join(m, `d${d}`));
    for (let i = 0; i < perDir; i++) writeFileSync(join(m, `d${d}`, `f${i}`), randomBytes(20_000 + i));
  }
  await c.kill(1);
  rmSync(c.bricks[0], { recursive: true, force: true }); // a replaced disk
  await c.start(1);
  const checkpoint = join(c.bricks[1], "..", "heal.checkpoint");
  // Interrupted run: SIGINT after it started.
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [join(__dirname, "../../dist/bin/gluster-ha.js"), "heal", "full", "-f", c.volfiles[1], "--checkpoint", checkpoint], { stdio: "pipe" });
  // Listen before the signal: a run that ended early must fail the test, not hang it.
  const exited = new Promise<number | null>((r) => child.once("exit", r));
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  await waitUntil(() => existsSync(checkpoint), 20000, 10);
  child.kill("SIGINT");
  const code = await exited;
  assert.equal(code, 130, output);
  assert.ok(existsSync(checkpoint), "checkpoint kept after an interrupt");
  const r = c.cli(["heal", "full", "-f", c.volfiles[1], "--checkpoint", checkpoint, "--json"]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const summary = JSON.parse(r.stdout) as { files: number; skipped: number };
  assert.ok(summary.skipped > 0, "the resumed run skipped what was done");
  assert.equal(existsSync(checkpoint), false);
  assertBricksEqual(c);
  assert.equal(tree(c.bricks[0]).size, 4 + 4 * perDir);
});

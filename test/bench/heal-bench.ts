// Heal throughput of `gluster-ha heal full` (MB/s for large files, files/s for small ones), on the
// seed's topology over loopback: populate through the FUSE mount, wipe node1's brick (a replaced
// disk), restart it, time the full heal, verify the copy.
// Run: node --import tsx test/bench/heal-bench.ts [--quick] [--json FILE]
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startSeedCluster, type SeedCluster } from "../integration/afr-seed-cluster";

// The bench's port range (24300-24399).
const PORT = 24350;
// Not strict: bench.ts imports this module, and its own flags (--only, --profile) are in argv too.
const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, json: { type: "string" } }, strict: false });
const LARGE = values.quick ? { files: 2, mb: 32 } : { files: 4, mb: 128 };
const SMALL = values.quick ? { files: 500, kb: 4 } : { files: 3000, kb: 4 };
const log = (m: string) => process.stderr.write(`[heal-bench] ${m}\n`);

function digest(root: string, rel = ""): string {
  const h = createHash("sha1");
  for (const e of readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (rel === "" && e.name === ".glusterfs") continue;
    const p = join(rel, e.name);
    h.update(p);
    h.update(e.isDirectory() ? digest(root, p) : readFileSync(join(root, p)));
  }
  return h.digest("hex");
}

interface Result { workload: string; files: number; bytes: number; seconds: number; mbPerSec: number; filesPerSec: number }

async function healFull(c: SeedCluster, workload: string): Promise<Result> {
  await c.kill(1);
  rmSync(c.bricks[0], { recursive: true, force: true });
  await c.start(1);
  const t0 = process.hrtime.bigint();
  const r = c.cli(["heal", "full", "-f", c.volfiles[1], "--json", "--checkpoint", join(c.bricks[1], "..", "bench.checkpoint")]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`heal full failed: ${r.stdout}${r.stderr}`);
  const s = JSON.parse(r.stdout) as { files: number; bytes: number };
  if (process.env.HEAL_BENCH_DEBUG) log(r.stdout);
  if (digest(c.bricks[0]) !== digest(c.bricks[1])) throw new Error(`${workload}: bricks differ after heal full`);
  const res = { workload, files: s.files, bytes: s.bytes, seconds, mbPerSec: s.bytes / 2 ** 20 / seconds, filesPerSec: s.files / seconds };
  log(`${workload}: ${s.files} files, ${(s.bytes / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(2)} s = ${res.mbPerSec.toFixed(1)} MB/s, ${res.filesPerSec.toFixed(0)} files/s`);
  return res;
}

/** Both heal workloads; bench.ts calls this (figures keyed by workload). */
export async function run(): Promise<Record<string, number>> {
  const results = await measure();
  const out: Record<string, number> = {};
  for (const r of results) {
    const key = r.workload.startsWith("large") ? "large" : "small";
    out[`${key}MBps`] = r.mbPerSec;
    out[`${key}FilesPerSec`] = r.filesPerSec;
  }
  return out;
}

async function measure(): Promise<Result[]> {
  const results: Result[] = [];
  {
    const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3,127.0.0.2", afrOptions: ["self-heal-daemon off"] });
    try {
      for (let i = 0; i < LARGE.files; i++) writeFileSync(join(c.mount.mountpoint, `large${i}.bin`), randomBytes(LARGE.mb << 20));
      results.push(await healFull(c, `large files (${LARGE.files} x ${LARGE.mb} MiB)`));
    } finally {
      await c.close();
    }
  }
  {
    const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3,127.0.0.2", afrOptions: ["self-heal-daemon off"] });
    try {
      const per = 100;
      for (let d = 0; d < SMALL.files / per; d++) {
        mkdirSync(join(c.mount.mountpoint, `d${d}`));
        for (let i = 0; i < per; i++) writeFileSync(join(c.mount.mountpoint, `d${d}`, `f${i}`), randomBytes(SMALL.kb << 10));
      }
      results.push(await healFull(c, `small files (${SMALL.files} x ${SMALL.kb} KiB)`));
    } finally {
      await c.close();
    }
  }
  return results;
}

async function main(): Promise<void> {
  const results = await measure();
  const out = JSON.stringify({ bench: "heal", results }, null, 2);
  if (typeof values.json === "string") writeFileSync(values.json, out);
  process.stdout.write(`${out}\n`);
}

// Run directly: the JSON report; imported by bench.ts: only run().
if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`[heal-bench] FAILED: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}

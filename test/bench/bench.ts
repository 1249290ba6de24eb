// npm run bench [-- --quick] [-- --cold] [-- --install-glusterfs] [-- --profile] [-- --only local,gluster-ha,gluster-ha-no-md-cache,glusterfs]
//
// Runs the same workloads, in one run, against a plain local directory, the gluster-ha mount in the
// seed's topology on loopback, and GlusterFS 10 (Debian's glusterfs-server, replica 2 on this
// machine). Each system first runs the workloads once at the quick sizes, unmeasured (--cold: not);
// then the measured run. Prints a table with ratios to GlusterFS and peak RSS, writes the raw results as JSON and
// an SVG chart to bench-results/. --profile runs gluster-ha's processes with --cpu-prof and
// summarises where their time went.
import * as fs from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Progress } from "../../runtime/core/progress";
import { FULL, QUICK, dropCaches, runWorkloads, type Sizes, type TrackWorkload } from "./workloads";
import { REPO, glusterHaTarget, glusterfsTarget, localTarget, type Target } from "./targets";
import { sampleRss, type RssPeaks } from "./rss";
import { svgChart, table, type SystemResult } from "./report";
import { summariseProfile, type ProfileSummary } from "./profile-summary";
import quickReadSchema from "../../schema/xlators/performance/quick-read.json";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    cold: { type: "boolean", default: false },
    "install-glusterfs": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string", default: join(REPO, "bench-results") },
    base: { type: "string", default: "/var/tmp/gha-bench" },
  },
});

const sizes: Sizes = values.quick ? QUICK : FULL;
const only = new Set((values.only ?? "local,gluster-ha,glusterfs").split(","));
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const profileDir = join(values.out!, `profiles-${stamp}`);
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

/** A progress line per system and workload on stderr (redrawn on a terminal; plain lines in a log). */
const trackWorkload = (system: string): TrackWorkload => (label, total, unit) => {
  const progress = new Progress({ label: `[bench] ${system}: ${label}`, total, unit });
  let done = 0;
  return {
    step: (n = 1) => progress.update((done += n)),
    done: (figure) => progress.finish(`= ${figure}`),
  };
};

interface SystemRun extends SystemResult {
  rssMB?: RssPeaks["byRole"];
  profiles?: Record<string, ProfileSummary>;
}

/**
 * Memory targets: glusterfsd <= 200 MB; the client <= 100 MB + its cache sizes: the seed's read-ahead
 * and write-behind windows, and what the glusterfs CLI stacks by default: md-cache (lru-limit 16384
 * files at ~1 KB each, see schema/xlators/performance/md-cache.json) and quick-read (cache-size).
 */
const NO_MD_CACHE = "gluster-ha (no md-cache)";
const MD_CACHE_MB = (16384 * 1024) / 2 ** 20;
const QUICK_READ_MB = quickReadSchema.properties["cache-size"].default / 2 ** 20;
const RSS_LIMIT_MB = { glusterfsd: 200, client: 100 + (16 * 65536 + 1048576) / 2 ** 20 + MD_CACHE_MB + QUICK_READ_MB };

async function runSystem(name: string, setup: () => Promise<Target>): Promise<SystemRun> {
  log(`== ${name}`);
  let target: Target | undefined;
  try {
    target = await setup();
    const rss = sampleRss(target.pids());
    const results = (() => {
      try {
        if (!values.cold) warmUp(target, name);
        return runWorkloads(target.dir, sizes, trackWorkload(name));
      } catch (err) {
        return err as Error;
      }
    })();
    const peaks = await rss.stop();
    if (results instanceof Error) throw results;
    return { name, results, rssMB: peaks.byRole };
  } catch (err) {
    log(`${name}: FAILED: ${(err as Error).message}`);
    return { name, error: (err as Error).message };
  } finally {
    await target?.teardown().catch((e: unknown) => log(`${name}: teardown failed: ${(e as Error).message}`));
  }
}

/**
 * The workloads once at the quick sizes, unmeasured, as benchmarks warm up: what a running system has
 * already done — V8 has compiled the hot paths of gluster-ha's processes, connections and the kernel's
 * structures are set up — is not charged to the first measured workload. Every system gets the same.
 */
function warmUp(target: Target, name: string): void {
  const dir = join(target.dir, "warm-up");
  fs.mkdirSync(dir);
  runWorkloads(dir, QUICK, trackWorkload(`${name} (warm-up)`));
  fs.rmdirSync(dir);
}

async function optionalBench(file: string): Promise<Record<string, number> | { error: string } | undefined> {
  const path = join(__dirname, file);
  if (!fs.existsSync(path)) return undefined;
  try {
    const mod = (await import(path)) as { run?: () => Promise<Record<string, number>> };
    if (typeof mod.run !== "function") return { error: `${file} exports no run()` };
    log(`== ${file}`);
    return await mod.run();
  } catch (err) {
    return { error: (err as Error).message };
  }
}

async function main(): Promise<number> {
  fs.mkdirSync(values.base!, { recursive: true });
  fs.mkdirSync(values.out!, { recursive: true });
  const canDrop = dropCaches();
  if (!canDrop) log("cannot write /proc/sys/vm/drop_caches: reads will not be cold");
  log(`sizes: ${JSON.stringify(sizes)}${values.quick ? " (quick)" : ""}${values.cold ? ", no warm-up" : ", after a warm-up run at the quick sizes"}`);
  const systems: SystemRun[] = [];
  if (only.has("local")) systems.push(await runSystem("local disk", () => localTarget(values.base!)));
  if (only.has("gluster-ha")) {
    const nodeFlags = values.profile
      ? (role: string) => ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${role}.cpuprofile`]
      : undefined;
    const run = await runSystem("gluster-ha", () => glusterHaTarget(values.base!, { nodeFlags }));
    if (values.profile && fs.existsSync(profileDir)) {
      run.profiles = {};
      for (const f of fs.readdirSync(profileDir)) run.profiles[f] = summariseProfile(join(profileDir, f));
    }
    systems.push(run);
  }
  // The same stack without the client's default metadata cache: what md-cache is worth, in the same run.
  if (only.has("gluster-ha-no-md-cache")) {
    systems.push(await runSystem(NO_MD_CACHE, () => glusterHaTarget(values.base!, { clientArgs: ["--md-cache-timeout", "0"], name: NO_MD_CACHE })));
  }
  if (only.has("glusterfs")) systems.push(await runSystem("GlusterFS 10", () => glusterfsTarget(values.base!, values["install-glusterfs"]!)));

  const micro: Record<string, unknown> = {};
  for (const f of ["protocol-bench.ts", "heal-bench.ts"]) {
    const r = await optionalBench(f);
    if (r) micro[f.replace(/\.ts$/, "")] = r;
  }

  const out = [
    "",
    `gluster-ha bench (${values.quick ? "quick" : "full"}: ${sizes.seqMiB} MiB sequential, ${sizes.smallFiles} small files, walk ${sizes.walkFiles}, ls -lR ${sizes.lsFiles})${values.cold ? ", no warm-up" : ", each system warmed up first"}${canDrop ? "" : " [caches NOT dropped]"}`,
    "",
    table(systems, "GlusterFS 10", ["gluster-ha", NO_MD_CACHE]),
    "",
    "peak RSS (MB):",
    ...systems.filter((s) => s.rssMB && Object.keys(s.rssMB).length).map((s) =>
      `  ${s.name.padEnd(14)} ${Object.entries(s.rssMB!).map(([role, mb]) => {
        const limit = s.name.startsWith("gluster-ha") ? RSS_LIMIT_MB[role as keyof typeof RSS_LIMIT_MB] : undefined;
        return `${role} ${mb.toFixed(0)}${limit ? ` (limit ${limit.toFixed(0)}: ${mb <= limit ? "ok" : "OVER"})` : ""}`;
      }).join(", ")}`),
    ...systems.filter((s) => s.error).map((s) => `${s.name}: not measured: ${s.error}`),
  ];
  for (const [k, v] of Object.entries(micro)) out.push(`${k}: ${JSON.stringify(v)}`);
  for (const s of systems) {
    for (const [f, p] of Object.entries(s.profiles ?? {})) {
      out.push("", `profile ${f} (${p.totalMs.toFixed(0)} ms sampled), top self time:`);
      for (const r of p.byFunction.slice(0, 12)) out.push(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.name}`);
    }
  }
  console.log(out.join("\n"));

  const record = { date: new Date().toISOString(), quick: values.quick, warmUp: !values.cold, sizes, cachesDropped: canDrop, systems, micro, profileDir: values.profile ? profileDir : undefined };
  const json = join(values.out!, `bench-${stamp}.json`);
  fs.writeFileSync(json, JSON.stringify(record, null, 2));
  fs.writeFileSync(join(values.out!, "latest.json"), JSON.stringify(record, null, 2));
  const svg = join(values.out!, `bench-${stamp}.svg`);
  fs.writeFileSync(svg, svgChart(systems, "GlusterFS 10", `gluster-ha bench ${record.date.slice(0, 16)}${values.quick ? " (quick)" : ""}`));
  console.log(`\nraw results: ${json}\nchart: ${svg}`);
  return systems.some((s) => s.error) ? 1 : 0;
}

// Tear down on Ctrl-C too: runSystem's finally blocks run once the pending await rejects.
process.on("SIGINT", () => {
  log("interrupted");
  process.exitCode = 130;
});

main().then((code) => {
  process.exitCode = process.exitCode || code;
}, (err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

// npm run bench [-- --quick] [-- --cold] [-- --rounds N] [-- --install-glusterfs] [-- --profile] [-- --only local,gluster-ha,gluster-ha-no-md-cache,glusterfs]
//
// Runs the same workloads, in one run, against a plain local directory, the gluster-ha mount in the
// seed's topology on loopback, and GlusterFS 10 (Debian's glusterfs-server, replica 2 on this
// machine), all set up at once. Each system first runs the workloads once at the quick sizes,
// unmeasured (--cold: not); then --rounds rounds (full sizes: 3, --quick: 1) in which every system runs
// them in turn; each figure is the median of its rounds. Prints a table with ratios to GlusterFS and peak RSS, writes the raw results as JSON and
// an SVG chart to bench-results/. --profile runs gluster-ha's processes with --cpu-prof and
// summarises where their time went.
import * as fs from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Progress } from "../../runtime/core/progress";
import { FULL, QUICK, WARM_UP, dropCaches, runWorkloads, type Results, type Sizes, type TrackWorkload } from "./workloads";
import { PORT_NODE1, PORT_NODE2, REPO, glusterHaTarget, glusterfsTarget, localTarget, type Target } from "./targets";
import { rssNow, sampleRss, type RssPeaks } from "./rss";
import { svgChart, table, type SystemResult } from "./report";
import { summariseProfile, type ProfileSummary } from "./profile-summary";
import quickReadSchema from "../../schema/xlators/performance/quick-read.json";
import writeBehindSchema from "../../schema/xlators/performance/write-behind.json";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    cold: { type: "boolean", default: false },
    "install-glusterfs": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    only: { type: "string" },
    rounds: { type: "string" },
    out: { type: "string", default: join(REPO, "bench-results") },
    base: { type: "string", default: "/var/tmp/gha-bench" },
  },
});

const sizes: Sizes = values.quick ? QUICK : FULL;
/** Rounds of the workloads on every system (full sizes: 3; --quick: 1). */
const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: a whole number >= 1, not ${JSON.stringify(values.rounds)}`);
const only = new Set((values.only ?? "local,gluster-ha,glusterfs").split(","));
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const profileDir = join(values.out!, `profiles-${stamp}`);
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

/** The peak RSS (VmHWM) of each target's processes last seen, by role: a workload that raised it says so. */
const peaksSeen = new WeakMap<Target, Record<string, number>>();

/**
 * A progress line per system and workload on stderr (redrawn on a terminal; plain lines in a log),
 * ending with the workload's figure and, when it raised the peak RSS of one of `target`'s processes,
 * the new peak (the sampler's maximum alone does not say which workload reached it).
 */
const trackWorkload = (system: string, target?: Target): TrackWorkload => (label, total, unit) => {
  const progress = new Progress({ label: `[bench] ${system}: ${label}`, total, unit });
  let done = 0;
  return {
    step: (n = 1) => progress.update((done += n)),
    done: (figure) => {
      let rose = "";
      if (target) {
        const seen = peaksSeen.get(target) ?? {};
        const now = rssNow(target.pids(), "VmHWM");
        const up = Object.entries(now).filter(([role, mb]) => mb >= (seen[role] ?? 0) + 1);
        if (up.length > 0) rose = ` (peak RSS now ${up.map(([role, mb]) => `${role} ${mb.toFixed(0)} MB`).join(", ")})`;
        peaksSeen.set(target, { ...seen, ...now });
      }
      progress.finish(`= ${figure}${rose}`);
    },
  };
};

interface SystemRun extends SystemResult {
  rssMB?: RssPeaks["byRole"];
  /** Each round's figures (results: their medians). */
  rounds?: Results[];
  profiles?: Record<string, ProfileSummary>;
}

/**
 * Memory targets: glusterfsd <= 200 MB; the client <= 100 MB + its cache sizes: the seed's read-ahead
 * window and write-behind's (its default window-size: the seed sets none), and what the glusterfs CLI stacks by default: md-cache (lru-limit 16384
 * files at ~1 KB each, see schema/xlators/performance/md-cache.json) and quick-read (cache-size).
 */
const NO_MD_CACHE = "gluster-ha (no md-cache)";
const MD_CACHE_MB = (16384 * 1024) / 2 ** 20;
const QUICK_READ_MB = quickReadSchema.properties["cache-size"].default / 2 ** 20;
const WRITE_BEHIND_MB = writeBehindSchema.properties["window-size"].default / 2 ** 20;
const RSS_LIMIT_MB = { glusterfsd: 200, client: 100 + (16 * 65536) / 2 ** 20 + WRITE_BEHIND_MB + MD_CACHE_MB + QUICK_READ_MB };

/** A system set up for the whole run: its target, its RSS sampler and the results of each round. */
interface LiveSystem {
  name: string;
  target?: Target;
  rss?: ReturnType<typeof sampleRss>;
  rounds: Results[];
  error?: string;
}

async function setUp(name: string, setup: () => Promise<Target>): Promise<LiveSystem> {
  log(`== ${name}: set up${values.cold ? "" : " and warm up"}`);
  const live: LiveSystem = { name, rounds: [] };
  try {
    live.target = await setup();
    live.rss = sampleRss(live.target.pids());
    peaksSeen.set(live.target, rssNow(live.target.pids(), "VmHWM"));
    if (!values.cold) warmUp(live.target, name);
  } catch (err) {
    live.error = (err as Error).message;
    log(`${name}: FAILED: ${live.error}`);
  }
  return live;
}

/**
 * Round after round, every system runs the workloads in turn (the order rotates each round, so none
 * always follows the same one): the machine's swings (a third from run to run here) fall on all
 * systems alike, and each figure is the median of its rounds.
 */
function runRounds(systems: LiveSystem[]): void {
  for (let r = 0; r < rounds; r++) {
    const order = systems.map((_, k) => systems[(k + r) % systems.length]!);
    for (const s of order) {
      if (s.error || !s.target) continue;
      const dir = join(s.target.dir, `round-${r + 1}`);
      try {
        fs.mkdirSync(dir);
        s.rounds.push(runWorkloads(dir, sizes, trackWorkload(rounds > 1 ? `${s.name} (round ${r + 1}/${rounds})` : s.name, s.target)));
        fs.rmdirSync(dir);
        const rss = rssNow(s.target.pids());
        if (Object.keys(rss).length) log(`${s.name}: RSS after round ${r + 1}: ${Object.entries(rss).map(([role, mb]) => `${role} ${mb.toFixed(0)} MB`).join(", ")}`);
      } catch (err) {
        s.error = (err as Error).message;
        log(`${s.name}: FAILED: ${s.error}`);
      }
    }
  }
}

/** The median of each workload's figures over the rounds. */
function medianResults(rs: Results[]): Results {
  const out: Results = {};
  for (const key of Object.keys(rs[0] ?? {})) {
    const v = rs.map((r) => r[key]!).sort((a, b) => a - b);
    const mid = Math.floor(v.length / 2);
    out[key] = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  }
  return out;
}

async function tearDown(s: LiveSystem): Promise<SystemRun> {
  const peaks = await s.rss?.stop().catch(() => undefined);
  await s.target?.teardown().catch((e: unknown) => log(`${s.name}: teardown failed: ${(e as Error).message}`));
  const run: SystemRun = { name: s.name, rssMB: peaks?.byRole, rounds: s.rounds };
  if (s.error) run.error = s.error;
  else run.results = medianResults(s.rounds);
  return run;
}

/**
 * The workloads once, unmeasured, as benchmarks warm up: what a running system has already done —
 * V8 has optimised the hot paths of gluster-ha's processes, connections and the kernel's structures
 * are set up — is not charged to the first measured workload. Every system gets the same: the quick
 * sizes before a quick run, WARM_UP's (a round's worth of small files) before full rounds.
 */
function warmUp(target: Target, name: string): void {
  const dir = join(target.dir, "warm-up");
  fs.mkdirSync(dir);
  runWorkloads(dir, values.quick ? QUICK : WARM_UP, trackWorkload(`${name} (warm-up)`, target));
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
  // (made here: removed at the end if the systems left it empty, as they should)
  const madeBase = fs.mkdirSync(values.base!, { recursive: true }) !== undefined;
  fs.mkdirSync(values.out!, { recursive: true });
  const canDrop = dropCaches();
  if (!canDrop) log("cannot write /proc/sys/vm/drop_caches: reads will not be cold");
  log(`sizes: ${JSON.stringify(sizes)}${values.quick ? " (quick)" : ""}${values.cold ? ", no warm-up" : `, after a warm-up run (${JSON.stringify(values.quick ? QUICK : WARM_UP)})`}`);
  const live: LiveSystem[] = [];
  const systems: SystemRun[] = [];
  try {
    if (only.has("local")) live.push(await setUp("local disk", () => localTarget(values.base!)));
    const nodeFlags = values.profile
      ? (role: string) => ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${role}.cpuprofile`]
      : undefined;
    if (only.has("gluster-ha")) live.push(await setUp("gluster-ha", () => glusterHaTarget(values.base!, { nodeFlags })));
    // The same stack without the client's default metadata cache: what md-cache is worth, in the same run.
    // (Its own ports: it runs beside the other gluster-ha.)
    if (only.has("gluster-ha-no-md-cache")) {
      live.push(await setUp(NO_MD_CACHE, () => glusterHaTarget(values.base!, { clientArgs: ["--md-cache-timeout", "0"], name: NO_MD_CACHE, ports: [PORT_NODE1 + 10, PORT_NODE2 + 10] })));
    }
    if (only.has("glusterfs")) live.push(await setUp("GlusterFS 10", () => glusterfsTarget(values.base!, values["install-glusterfs"]!)));
    log(`${rounds} round${rounds > 1 ? "s" : ""}: ${live.filter((s) => !s.error).map((s) => s.name).join(", ")} in turn`);
    runRounds(live);
  } finally {
    for (const s of live) systems.push(await tearDown(s));
    if (madeBase) {
      try {
        fs.rmdirSync(values.base!);
      } catch (err) {
        log(`${values.base}: left in place (${(err as NodeJS.ErrnoException).code})`);
      }
    }
  }
  const ha = systems.find((s) => s.name === "gluster-ha");
  if (ha && values.profile && fs.existsSync(profileDir)) {
    ha.profiles = {};
    for (const f of fs.readdirSync(profileDir)) ha.profiles[f] = summariseProfile(join(profileDir, f));
  }

  const micro: Record<string, unknown> = {};
  for (const f of ["protocol-bench.ts", "heal-bench.ts"]) {
    const r = await optionalBench(f);
    if (r) micro[f.replace(/\.ts$/, "")] = r;
  }

  const out = [
    "",
    `gluster-ha bench (${values.quick ? "quick" : "full"}: ${sizes.seqMiB} MiB sequential, ${sizes.smallFiles} small files, walk ${sizes.walkFiles}, ls -lR ${sizes.lsFiles})${values.cold ? ", no warm-up" : ", each system warmed up first"}${rounds > 1 ? `, median of ${rounds} rounds (systems in turn)` : ""}${canDrop ? "" : " [caches NOT dropped]"}`,
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

  const record = { date: new Date().toISOString(), quick: values.quick, warmUp: !values.cold, rounds, sizes, cachesDropped: canDrop, systems, micro, profileDir: values.profile ? profileDir : undefined };
  const json = join(values.out!, `bench-${stamp}.json`);
  fs.writeFileSync(json, JSON.stringify(record, null, 2));
  fs.writeFileSync(join(values.out!, "latest.json"), JSON.stringify(record, null, 2));
  const svg = join(values.out!, `bench-${stamp}.svg`);
  fs.writeFileSync(svg, svgChart(systems, "GlusterFS 10", `gluster-ha bench ${record.date.slice(0, 16)}${values.quick ? " (quick)" : ""}`));
  console.log(`\nraw results: ${json}\nchart: ${svg}`);
  return systems.some((s) => s.error) ? 1 : 0;
}

// Tear down on Ctrl-C too: main's finally block runs once the pending await rejects.
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

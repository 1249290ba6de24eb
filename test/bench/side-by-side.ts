// npm run bench:ab -- --workload create|spread|read|unlink|write|seqread [--rounds N] [--idle MS]
//                     [--a-server-option "storage/posix:precreated-inodes 0"] [--b-client-arg "--invalidated-timeout 0"]
//                     [--b-env MALLOC_ARENA_MAX=4]
//
// Two gluster-ha clusters at once (the seed's topology each, on their own ports and bricks), one workload
// run on each in turn, several rounds: a change's effect measured in one run, on the same machine state.
// The order alternates every round — the second of a pair was seen to run faster (the first one's
// dropped caches and freed CPU) — and the summary gives each side's mean and their ratio.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { glusterHaTarget, patchVolfile, type Target } from "./targets";
import { rssNow } from "./rss";
import { dropCaches, readSequential, writeSequential } from "./workloads";

const MiB = 1 << 20;
const WORKLOADS = ["create", "spread", "read", "unlink", "write", "seqread"] as const;
/** Directories a "spread" round creates its files in, round-robin (a hashed object store, a spool). */
const SPREAD_DIRS = 20;
type Workload = (typeof WORKLOADS)[number];

/** "type:option value" pairs for the servers' volfiles, as patchVolfile takes them. */
function serverOptions(list: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const o of list) {
    const i = o.indexOf(":");
    if (i < 0) throw new Error(`--a/b-server-option wants TYPE:OPTION VALUE, got ${o}`);
    (out[o.slice(0, i)] ??= []).push(o.slice(i + 1));
  }
  return out;
}

/** "NAME=VALUE" pairs for a side's cluster processes (over runtime/cli/node-flags.json's environment). */
function sideEnv(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((kv) => {
    const i = kv.indexOf("=");
    if (i < 1) throw new Error(`--a/b-env wants NAME=VALUE, got ${kv}`);
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
}

/** One side: a cluster in this process, answering "go" on stdin with one figure on stdout. */
async function side(name: string, workload: Workload, files: number): Promise<void> {
  const serverOpts = serverOptions(JSON.parse(process.env.AB_SERVER_OPTIONS ?? "[]") as string[]);
  const clientArgs = JSON.parse(process.env.AB_CLIENT_ARGS ?? "[]") as string[];
  const base = `/var/tmp/gha-ab-${name}`;
  const env = JSON.parse(process.env.AB_ENV ?? "{}") as Record<string, string>;
  const t: Target = await glusterHaTarget(base, { clientArgs, env });
  if (Object.keys(serverOpts).length > 0) {
    // The servers reload their volfiles on SIGHUP: the option applies live (or the reload says it cannot).
    for (const n of ["node1", "node2"]) {
      const f = join(base, "gluster-ha", `${n}-server.vol`);
      fs.writeFileSync(f, patchVolfile(fs.readFileSync(f, "utf8"), serverOpts, []));
    }
    for (const pid of t.pids().glusterfsd ?? []) process.kill(pid, "SIGHUP");
  }
  const chunk = Buffer.alloc(MiB, 7);
  const content = (i: number) => Buffer.alloc(4096, i & 255);
  let round = 0;
  const run = (): number => {
    const dir = join(t.dir, workload === "read" ? "files" : `r${round}`);
    if (workload === "create") {
      fs.mkdirSync(dir);
      const t0 = performance.now();
      for (let i = 0; i < files; i++) fs.writeFileSync(join(dir, `f${i}`), content(i), { flag: "wx" });
      return files / ((performance.now() - t0) / 1000);
    }
    if (workload === "spread") {
      fs.mkdirSync(dir);
      for (let d = 0; d < SPREAD_DIRS; d++) fs.mkdirSync(join(dir, `d${d}`));
      const t0 = performance.now();
      for (let i = 0; i < files; i++) fs.writeFileSync(join(dir, `d${i % SPREAD_DIRS}`, `f${i}`), content(i), { flag: "wx" });
      return files / ((performance.now() - t0) / 1000);
    }
    if (workload === "read") {
      if (round === 0) {
        fs.mkdirSync(dir);
        for (let i = 0; i < files; i++) fs.writeFileSync(join(dir, `f${i}`), content(i));
      }
      dropCaches();
      const t0 = performance.now();
      for (let i = 0; i < files; i++) if (!fs.readFileSync(join(dir, `f${i}`)).equals(content(i))) throw new Error(`f${i} differs`);
      return files / ((performance.now() - t0) / 1000);
    }
    if (workload === "unlink") {
      // the bench's unlink: files made (and stat'ed) beforehand, written back, then removed one by one
      fs.mkdirSync(dir);
      const names = Array.from({ length: files }, (_, i) => join(dir, `f${i}`));
      names.forEach((n, i) => fs.writeFileSync(n, content(i), { flag: "wx" }));
      names.forEach((n) => fs.statSync(n));
      spawnSync("sync");
      const t0 = performance.now();
      for (const n of names) fs.unlinkSync(n);
      const rate = files / ((performance.now() - t0) / 1000);
      fs.rmdirSync(dir);
      return rate;
    }
    if (workload === "seqread") {
      // The bench's cold sequential read: one 256 MiB file written once, read in 1 MiB requests after the caches are dropped.
      const f = join(t.dir, "seq.bin");
      if (round === 0) writeSequential(f, chunk, 256, false);
      dropCaches();
      const t0 = performance.now();
      readSequential(f, 256 * MiB);
      return (256 * MiB) / 1e6 / ((performance.now() - t0) / 1000);
    }
    const f = `${dir}.bin`;
    const t0 = performance.now();
    writeSequential(f, chunk, 256, true);
    const mbps = (256 * MiB) / 1e6 / ((performance.now() - t0) / 1000);
    fs.unlinkSync(f);
    return mbps;
  };
  process.stdin.on("data", (d: Buffer) => {
    if (d.toString().trim() === "quit") {
      process.stderr.write(`side ${name.toUpperCase()} peak RSS (VmHWM): ${Object.entries(rssNow(t.pids(), "VmHWM")).map(([role, mb]) => `${role} ${mb.toFixed(0)} MB`).join(", ")}\n`);
      // (the base directory too: made by glusterHaTarget, left empty by its teardown)
      void t.teardown().then(() => fs.rmSync(base, { recursive: true, force: true })).then(() => process.exit(0));
      return;
    }
    const figure = run();
    round++;
    process.stdout.write(`${figure}\n`);
  });
  process.stdout.write("ready\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workload: { type: "string", default: "create" },
      rounds: { type: "string", default: "4" },
      idle: { type: "string", default: "4000" },
      files: { type: "string", default: "1000" },
      "a-server-option": { type: "string", multiple: true, default: [] },
      "b-server-option": { type: "string", multiple: true, default: [] },
      "a-client-arg": { type: "string", multiple: true, default: [] },
      "b-client-arg": { type: "string", multiple: true, default: [] },
      "a-env": { type: "string", multiple: true, default: [] },
      "b-env": { type: "string", multiple: true, default: [] },
    },
  });
  const workload = values.workload as Workload;
  if (!WORKLOADS.includes(workload)) throw new Error(`--workload: one of ${WORKLOADS.join(", ")}`);
  const sides = (["a", "b"] as const).map((s, i) => {
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", __filename], {
      env: {
        ...process.env, AB_SIDE: s,
        AB_ENV: JSON.stringify(sideEnv(values[`${s}-env`] as string[])), AB_WORKLOAD: workload, AB_FILES: values.files,
        AB_SERVER_OPTIONS: JSON.stringify(values[`${s}-server-option`]),
        AB_CLIENT_ARGS: JSON.stringify((values[`${s}-client-arg`] as string[]).flatMap((a) => a.split(" "))),
        GHA_BENCH_PORTS: i === 0 ? "24311,24312" : "24321,24322",
      },
      stdio: ["pipe", "pipe", "inherit"],
    });
    return { name: s.toUpperCase(), child, figures: [] as number[] };
  });
  const line = (s: (typeof sides)[number]) => new Promise<string>((res) => s.child.stdout!.once("data", (d: Buffer) => res(d.toString().trim())));
  try {
    await Promise.all(sides.map(line));
    for (let r = 0; r < Number(values.rounds); r++) {
      const order = r % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) {
        await new Promise((res) => setTimeout(res, Number(values.idle)));
        const next = line(s);
        s.child.stdin!.write("go\n");
        s.figures.push(Number(await next));
      }
      console.log(`round ${r} (${order.map((s) => s.name).join(" then ")}): ${sides.map((s) => `${s.name} ${s.figures.at(-1)!.toFixed(0)}`).join(", ")}`);
    }
  } finally {
    for (const s of sides) s.child.stdin!.write("quit\n");
  }
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const unit = workload === "write" || workload === "seqread" ? "MB/s" : "files/s";
  console.log(`${workload}: A ${mean(sides[0]!.figures).toFixed(0)} ${unit}, B ${mean(sides[1]!.figures).toFixed(0)} ${unit}, A/B ${(mean(sides[0]!.figures) / mean(sides[1]!.figures)).toFixed(2)}`);
}

if (process.env.AB_SIDE) void side(process.env.AB_SIDE, process.env.AB_WORKLOAD as Workload, Number(process.env.AB_FILES));
else void main();

/**
 * What the end-to-end tests of the component share: a Pulumi project in a temp dir running against a
 * snapshot of the built package, the offline Pulumi engine (scripts/pulumi-engine.sh) with a file
 * backend, and the ways they watch the deployed cluster (site poller, process listing, mounts).
 *
 *   const project = pulumiProject(mkdtempSync("/tmp/x-project-"), mkdtempSync("/tmp/x-backend-"));
 *   snapshotPackage(project.dir);
 *   const up = await project.pulumiAsync(`up --yes --skip-preview --stack ${stack}`);
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const repoRoot = join(__dirname, "..", "..");

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface PulumiProject {
  /** The project directory (Pulumi.yaml, the program, node_modules). */
  dir: string;
  /** The file backend's directory (PULUMI_BACKEND_URL). */
  backendDir: string;
  /** A bash script in the project dir, with the project's backend in the environment. */
  sh(script: string, timeoutMs?: number): Run;
  /** `pulumi --non-interactive ARGS` with the offline engine; blocks the event loop. */
  pulumi(args: string, timeoutMs?: number): Run;
  /** The same without blocking the event loop (a poller can run meanwhile). */
  pulumiAsync(args: string, timeoutMs?: number): Promise<Run>;
}

/** Runs pulumi in `dir` with the offline engine and a file backend in `backendDir`. */
export function pulumiProject(dir: string, backendDir: string): PulumiProject {
  // TMPDIR inside the backend dir (removed at teardown): the language host leaves a pipes directory in
  // the temp dir after every program run.
  const tmp = join(backendDir, "tmp");
  mkdirSync(tmp, { recursive: true });
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, PULUMI_BACKEND_URL: `file://${backendDir}`, TMPDIR: tmp });
  const pulumiScript = (args: string): string => `set -euo pipefail
. ${repoRoot}/scripts/pulumi-env.sh
PATH="$(${repoRoot}/scripts/pulumi-engine.sh | tail -n 1):$PATH"
pulumi --non-interactive ${args}`;
  const sh = (script: string, timeoutMs = 600_000): Run => {
    const r = spawnSync("bash", ["-c", script], { cwd: dir, encoding: "utf8", timeout: timeoutMs, env: env() });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };
  return {
    dir,
    backendDir,
    sh,
    pulumi: (args, timeoutMs = 600_000) => sh(pulumiScript(args), timeoutMs),
    pulumiAsync: (args, timeoutMs = 600_000) =>
      new Promise((resolve) => {
        const child = spawn("bash", ["-c", pulumiScript(args)], { cwd: dir, env: env(), timeout: timeoutMs });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
      }),
  };
}

/** Builds dist/ unless the CLIs and the provider are there already. */
export function ensureBuilt(): void {
  if (!existsSync(join(repoRoot, "dist", "bin", "glusterfsd.js")) || !existsSync(join(repoRoot, "dist", "provider", "index.js"))) {
    spawnSync("node", ["scripts/build.mjs"], { cwd: repoRoot, stdio: "inherit" });
  }
}

/**
 * `projectDir/node_modules`: the repo's packages, and gluster-ha -> a copy of the package as built now
 * (package.json, dist/, the native fuse-native build). A copy, because others rebuilding dist/ meanwhile
 * would change the runtime release between two `pulumi up`s.
 */
export function snapshotPackage(projectDir: string): void {
  const pkg = join(projectDir, "gluster-ha");
  mkdirSync(join(pkg, "native"), { recursive: true });
  copyFileSync(join(repoRoot, "package.json"), join(pkg, "package.json"));
  cpSync(join(repoRoot, "dist"), join(pkg, "dist"), { recursive: true });
  cpSync(join(repoRoot, "native", "fuse-native"), join(pkg, "native", "fuse-native"), { recursive: true });
  cpSync(join(repoRoot, "native", "fuse-device"), join(pkg, "native", "fuse-device"), { recursive: true });
  symlinkSync(join(repoRoot, "node_modules"), join(pkg, "node_modules"));
  const modules = join(projectDir, "node_modules");
  mkdirSync(modules);
  for (const name of readdirSync(join(repoRoot, "node_modules")).filter((n) => !n.startsWith("."))) {
    symlinkSync(join(repoRoot, "node_modules", name), join(modules, name));
  }
  symlinkSync(pkg, join(modules, "gluster-ha"));
}

/** The lines in which pulumi reported a step done, with its duration (for a test's closing report). */
export function stepLines(out: string): string[] {
  return out.split("\n").filter((l) => /\b(created|updated|deleted|replaced)\b.*\(\d/.test(l)).map((l) => l.trim());
}

/** Durations of a test file's pulumi runs and the steps each printed, written out at the end. */
export interface RunReport {
  timings: Record<string, number>;
  /** Runs `run` (a pulumi command), recording how long it took and, unless `steps` is false, its steps. */
  timed(what: string, run: () => Run | Promise<Run>, steps?: boolean): Promise<Run>;
  /** Writes the timings and steps as TAP comments. */
  print(): void;
}

export function runReport(): RunReport {
  const timings: Record<string, number> = {};
  const stepLog: string[] = [];
  return {
    timings,
    async timed(what, run, steps = true) {
      const t0 = Date.now();
      const r = await run();
      timings[what] = (Date.now() - t0) / 1000;
      if (steps) stepLog.push(`${what}:`, ...stepLines(r.stdout).map((l) => `  ${l}`));
      return r;
    },
    print() {
      process.stdout.write(`# timings (s): ${JSON.stringify(timings)}\n${stepLog.map((l) => `# ${l}\n`).join("")}`);
    },
  };
}

/**
 * A test file's after(), whatever happened: destroy through the engine (unless `destroy` is false),
 * stop the fixtures (DNS server, Apache...), kill what is left of ours (killLeftovers), `afterKill`
 * (e.g. stop sshd), remove the stack and the directories.
 */
export async function tearDown(o: {
  project: PulumiProject;
  stack: string;
  stateDir: string;
  hosts: string[];
  mountPoint: string;
  destroy?: boolean;
  stopFixtures?: string;
  afterKill?: () => Promise<void>;
  dirs?: string[];
}): Promise<void> {
  if (o.destroy !== false && existsSync(join(o.project.dir, `Pulumi.${o.stack}.yaml`))) {
    await o.project.pulumiAsync(`destroy --yes --skip-preview --stack ${o.stack}`, 300_000);
  }
  if (o.stopFixtures) o.project.sh(o.stopFixtures);
  killLeftovers(o.stateDir, o.hosts, o.mountPoint);
  await o.afterKill?.();
  await o.project.pulumiAsync(`stack rm --yes --force ${o.stack}`, 60_000);
  for (const d of [o.project.dir, o.stateDir, o.project.backendDir, ...(o.dirs ?? [])]) rmSync(d, { recursive: true, force: true });
}

/** GET through Apache on 127.0.0.1, a new connection each time (a kept-alive one Apache closes is no site failure). */
export function httpGet(port: number, hostHeader: string, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, timeout: 3000, agent: false, headers: { Host: hostHeader } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

export interface SitePollResult {
  /** Requests answered 200. */
  ok: number;
  /** When (ms since the epoch) the last answered request was sent. */
  lastOk: number;
  /** `<seconds since start> s: <HTTP status or error>` for every other answer. */
  failures: string[];
  /** When (ms since the epoch) each of those failures came back. */
  failedAt: number[];
}

/** Requests the site every 100 ms until stop() (which resolves with what it saw). */
export function pollSite(port: number, hostHeader: string): { stop(): Promise<SitePollResult> } {
  const t0 = Date.now();
  const result: SitePollResult = { ok: 0, lastOk: 0, failures: [], failedAt: [] };
  const fail = (why: string): void => {
    result.failures.push(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${why}`);
    result.failedAt.push(Date.now());
  };
  let polling = true;
  const loop = (async () => {
    while (polling) {
      const started = Date.now();
      try {
        const r = await httpGet(port, hostHeader);
        if (r.status === 200) {
          result.ok++;
          result.lastOk = started;
        } else fail(`HTTP ${r.status}`);
      } catch (e) {
        fail((e as Error).message);
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      polling = false;
      await loop;
      return result;
    },
  };
}

/** The A records a DNS server on 127.0.0.1:port answers for `name`, sorted. */
export function digA(name: string, port: number): string[] {
  const r = spawnSync("dig", ["+short", "+norecurse", "+tries=1", "+time=2", "@127.0.0.1", "-p", String(port), name, "A"], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l)).sort();
}

/** `<pid> <command line>` of every process (but this one) whose command line contains `text`. */
export function processesMentioning(text: string): string[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ");
        return cmd.includes(text) ? [`${p} ${cmd}`] : [];
      } catch {
        return [];
      }
    });
}

/** A mount at exactly this path (this process's mount namespace). */
export function isMounted(mountPoint: string): boolean {
  return readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === mountPoint);
}

/** Polls `cond` every `pollMs` (200 ms); throws after `ms`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000, pollMs = 200): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

/**
 * After a test, whatever happened: kills the supervisors recorded in each host's run dir
 * (`<stateDir>/<host>/opt/run/*.pid`, so they restart nothing), lazily unmounts `mountPoint`, then kills
 * every process still mentioning `stateDir`. A pid counts only while its command line mentions
 * `stateDir` (pids are reused).
 */
export function killLeftovers(stateDir: string, hosts: string[], mountPoint: string): void {
  const ours = new Map(processesMentioning(stateDir).map((l) => [l.split(" ")[0]!, l]));
  for (const host of hosts) {
    const run = `${stateDir}/${host}/opt/run`;
    if (!existsSync(run)) continue;
    for (const f of readdirSync(run).filter((f) => f.endsWith(".pid"))) {
      const pid = readFileSync(join(run, f), "utf8").trim();
      if (ours.has(pid)) spawnSync("kill", ["-9", pid]);
    }
  }
  spawnSync("fusermount", ["-uz", mountPoint], { stdio: "ignore" });
  for (const line of processesMentioning(stateDir)) spawnSync("kill", ["-9", line.split(" ")[0]!]);
}

/**
 * examples/local as an e2e project of its own: a copy of the example (Pulumi.yaml, index.ts, fixtures)
 * against a snapshot of the built package, its own backend, state dir and stack, on the test's ports.
 * `setUp()` (in `before`) initialises the stack and its config; `tearDown()` (in `after`) destroys it
 * and stops the fixtures (BIND, Apache).
 */
export function localExampleProject(o: { name: string; stack: string; ports: { server: number; dns: number; web: number } }) {
  const example = join(repoRoot, "examples", "local");
  const project = pulumiProject(mkdtempSync(`/tmp/gha-${o.name}-e2e-project-`), mkdtempSync(`/tmp/gha-${o.name}-e2e-backend-`));
  const stateDir = mkdtempSync(`/tmp/gha-${o.name}-e2e-`);
  chmodSync(stateDir, 0o755); // Apache's www-data must traverse it to reach the mount (mkdtemp gives 0700)
  const mountPoint = `${stateDir}/client/mnt`;
  return {
    project, stack: o.stack, stateDir, mountPoint, ports: o.ports, clusterName: "cluster.gluster-ha.test",
    setUp(): void {
      ensureBuilt();
      for (const f of ["Pulumi.yaml", "index.ts"]) copyFileSync(join(example, f), join(project.dir, f));
      cpSync(join(example, "fixtures"), join(project.dir, "fixtures"), { recursive: true });
      snapshotPackage(project.dir);
      const init = project.pulumi(`stack init ${o.stack}`, 900_000); // a cold engine build takes minutes
      if (init.status !== 0) throw new Error(`pulumi stack init: ${init.stderr}`);
      const settings = { stateDir, serverPort: o.ports.server, dnsPort: o.ports.dns, webPort: o.ports.web };
      const plain = Object.entries(settings).map(([k, v]) => `--plaintext ${k}=${v}`).join(" ");
      const set = project.pulumi(`config set-all --stack ${o.stack} ${plain}`, 60_000);
      if (set.status !== 0) throw new Error(`pulumi config set-all: ${set.stderr}`);
    },
    tearDown: () => tearDown({
      project, stack: o.stack, stateDir, mountPoint, hosts: ["client", "node1", "node2"],
      stopFixtures: `bash fixtures/bind.sh stop ${stateDir}/bind >/dev/null 2>&1 || true
bash fixtures/apache.sh stop ${stateDir}/apache >/dev/null 2>&1 || true`,
    }),
  };
}

// examples/local with the real Pulumi engine (scripts/pulumi-engine.sh): up from nothing, the site and
// both A records answer, a second up changes nothing, node1 fails and returns (the seed's failover and
// heal), a rolling option change never interrupts the site, destroy leaves only brick data.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

const repo = join(__dirname, "..", "..");
const example = join(repo, "examples", "local");
// The example runs from a copy, against a snapshot of the built package: others rebuilding dist/
// meanwhile would change the runtime release between two `pulumi up`s.
const projectDir = mkdtempSync("/tmp/gha-local-e2e-project-");
const stack = "e2e";
const stateDir = mkdtempSync("/tmp/gha-e2e-");
chmodSync(stateDir, 0o755); // Apache's www-data must traverse it to reach the mount (mkdtemp gives 0700)
const backendDir = mkdtempSync("/tmp/gha-e2e-backend-");
// Our port range is 24400-24499; the example's defaults (24400/24453/24480) stay free for a manual run.
const ports = { server: 24410, dns: 24454, web: 24482 };
const clusterName = "cluster.gluster-ha.test";
const mountPoint = `${stateDir}/client/mnt`;
const timings: Record<string, number> = {};
/** The per-resource step durations pulumi printed, kept for the report at the end. */
const stepLog: string[] = [];
const logSteps = (what: string, out: string): void => {
  stepLog.push(`${what}:`, ...out.split("\n").filter((l) => /\b(created|updated|deleted|replaced)\b.*\(\d/.test(l)).map((l) => `  ${l.trim()}`));
};

type Run = { status: number | null; stdout: string; stderr: string };
const env = (): NodeJS.ProcessEnv => ({ ...process.env, PULUMI_BACKEND_URL: `file://${backendDir}` });

function sh(script: string, timeoutMs = 600_000): Run {
  const r = spawnSync("bash", ["-c", script], { cwd: projectDir, encoding: "utf8", timeout: timeoutMs, env: env() });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

const pulumiScript = (args: string): string => `set -euo pipefail
. ${repo}/scripts/pulumi-env.sh
PATH="$(${repo}/scripts/pulumi-engine.sh | tail -n 1):$PATH"
pulumi --non-interactive ${args}`;

/** Runs pulumi with the project's offline engine and settings. */
function pulumi(args: string, timeoutMs = 600_000): Run {
  return sh(pulumiScript(args), timeoutMs);
}

/** pulumi without blocking the event loop (so a poller can run meanwhile). */
function pulumiAsync(args: string, timeoutMs = 600_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", pulumiScript(args)], { cwd: projectDir, env: env(), timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

function httpGet(port: number, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A connection per request: a kept-alive socket that Apache closes meanwhile is not a site failure.
    const req = http.get({ host: "127.0.0.1", port, path, timeout: 3000, agent: false, headers: { Host: clusterName } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

function digA(name: string): string[] {
  const r = spawnSync("dig", ["+short", "+norecurse", "+tries=1", "+time=2", "@127.0.0.1", "-p", String(ports.dns), name, "A"], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l)).sort();
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Processes whose command line mentions our state dir (supervisors, servers, mount, named, apache). */
function processesOfStateDir(): string[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ");
        return cmd.includes(stateDir) ? [`${p} ${cmd}`] : [];
      } catch {
        return [];
      }
    });
}

const clientLogFile = `${stateDir}/client/opt/log/glusterfs.log`;
/** When (ms since the epoch) the mount's protocol/client lost a server connection, from its log. */
const clientDisconnects = (): number[] =>
  readFileSync(clientLogFile, "utf8")
    .split("\n")
    .filter((l) => l.includes('"msgid":"PC_DISCONNECTED"'))
    .map((l) => (JSON.parse(l) as { time: number }).time);
const mounted = (): boolean => readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === mountPoint);
const gha = (host: string, args: string): Run => sh(`node ${stateDir}/${host}/opt/current/bin/gluster-ha.js ${args}`, 60_000);

/**
 * projectDir: examples/local's Pulumi.yaml, index.ts and fixtures/; node_modules with the repo's packages
 * and gluster-ha -> a copy of the package as built now (package.json, dist/, the native fuse-native build).
 */
function snapshotProject(): void {
  for (const f of ["Pulumi.yaml", "index.ts"]) copyFileSync(join(example, f), join(projectDir, f));
  cpSync(join(example, "fixtures"), join(projectDir, "fixtures"), { recursive: true });
  const pkg = join(projectDir, "gluster-ha");
  mkdirSync(join(pkg, "native"), { recursive: true });
  copyFileSync(join(repo, "package.json"), join(pkg, "package.json"));
  cpSync(join(repo, "dist"), join(pkg, "dist"), { recursive: true });
  cpSync(join(repo, "native", "fuse-native"), join(pkg, "native", "fuse-native"), { recursive: true });
  symlinkSync(join(repo, "node_modules"), join(pkg, "node_modules"));
  const modules = join(projectDir, "node_modules");
  mkdirSync(modules);
  for (const name of readdirSync(join(repo, "node_modules")).filter((n) => !n.startsWith("."))) symlinkSync(join(repo, "node_modules", name), join(modules, name));
  symlinkSync(pkg, join(modules, "gluster-ha"));
}

before(() => {
  if (!existsSync(join(repo, "dist", "bin", "glusterfsd.js")) || !existsSync(join(repo, "dist", "provider", "index.js"))) {
    spawnSync("node", ["scripts/build.mjs"], { cwd: repo, stdio: "inherit" });
  }
  assert.ok(existsSync(join(repo, "dist", "provider", "index.js")), "npm run build must produce dist/provider/index.js");
  snapshotProject();
  const init = pulumi(`stack init ${stack}`, 900_000); // a cold engine build takes minutes
  assert.equal(init.status, 0, init.stderr);
  const settings = { stateDir, serverPort: ports.server, dnsPort: ports.dns, webPort: ports.web };
  const plain = Object.entries(settings).map(([k, v]) => `--plaintext ${k}=${v}`).join(" ");
  const set = pulumi(`config set-all --stack ${stack} ${plain}`, 60_000);
  assert.equal(set.status, 0, set.stderr);
});

after(() => {
  // Whatever happened: destroy through the engine, then make sure nothing of ours is left.
  if (existsSync(join(projectDir, `Pulumi.${stack}.yaml`))) pulumi(`destroy --yes --skip-preview --stack ${stack}`, 300_000);
  for (const host of ["client", "node1", "node2"]) {
    const run = `${stateDir}/${host}/opt/run`;
    if (existsSync(run)) for (const f of readdirSync(run).filter((f) => f.endsWith(".pid"))) sh(`kill -9 $(cat ${run}/${f}) 2>/dev/null || true`);
  }
  sh(`fusermount -uz ${mountPoint} 2>/dev/null || true
bash fixtures/bind.sh stop ${stateDir}/bind >/dev/null 2>&1 || true
bash fixtures/apache.sh stop ${stateDir}/apache >/dev/null 2>&1 || true`);
  for (const line of processesOfStateDir()) sh(`kill -9 ${line.split(" ")[0]} 2>/dev/null || true`);
  pulumi(`stack rm --yes --force ${stack}`, 60_000);
  rmSync(projectDir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(backendDir, { recursive: true, force: true });
  process.stdout.write(`# timings (s): ${JSON.stringify(timings)}\n${stepLog.map((l) => `# ${l}\n`).join("")}`);
});

test("pulumi up from nothing: servers, mount, Apache and DNS come up; the site serves the volume's page", async () => {
  const t0 = Date.now();
  const up = pulumi(`up --yes --skip-preview --stack ${stack}`);
  timings.up = (Date.now() - t0) / 1000;
  logSteps("up", up.stdout);
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
  const page = await httpGet(ports.web);
  assert.equal(page.status, 200);
  assert.match(page.body, /<h1>gluster-ha<\/h1>/);
  // The page lives on the replicated volume: on both bricks.
  for (const n of ["node1", "node2"]) assert.equal(readFileSync(`${stateDir}/${n}/brick/www/index.html`, "utf8"), page.body);
  assert.deepEqual(digA(clusterName), ["127.0.0.2", "127.0.0.3"]);
  assert.ok(mounted(), `${mountPoint} mounted`);
  const outputs = JSON.parse(pulumi(`stack output --json --show-secrets --stack ${stack}`, 60_000).stdout);
  assert.match(outputs.nodeStatus.node1, new RegExp(`^node1 up 127\\.0\\.0\\.2:${ports.server} release=[0-9a-f]{16}$`));
  assert.match(outputs.nodeStatus.node2, new RegExp(`^node2 up 127\\.0\\.0\\.3:${ports.server} release=[0-9a-f]{16}$`));
  assert.match(outputs.volfiles.node2, new RegExp(`option bind-address 127\\.0\\.0\\.3\\noption listen-port ${ports.server}\\n`));
  for (const n of ["node1", "node2"]) {
    const status = gha(n, `service status gluster-ha-${n} --run-dir ${stateDir}/${n}/opt/run`);
    assert.equal(status.status, 0, `${n}: ${status.stdout}${status.stderr}`);
  }
});

test("a second pulumi up changes nothing", () => {
  const t0 = Date.now();
  const r = pulumi(`up --yes --skip-preview --expect-no-changes --stack ${stack}`);
  timings.secondUp = (Date.now() - t0) / 1000;
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout, /updated|created|replaced/);
});

test("with node1's server down the site answers; a file written meanwhile reaches node1 when it returns", async () => {
  const disconnectsBefore = clientDisconnects().length;
  const stop = gha("node1", `service stop gluster-ha-node1 --run-dir ${stateDir}/node1/opt/run`);
  assert.equal(stop.status, 0, stop.stderr);
  assert.equal(gha("node1", `service status gluster-ha-node1 --run-dir ${stateDir}/node1/opt/run`).status, 3);
  // The seed: "wait a few seconds and then browse" — the client fails over within its transport-timeout (10 s).
  const t0 = Date.now();
  await until("the site answering with node1 down", async () => (await httpGet(ports.web).catch(() => ({ status: 0 }))).status === 200, 20_000);
  timings.siteWithNode1Down = (Date.now() - t0) / 1000;
  // The client was using node1 (the first address of its list): it lost it and failed over to node2.
  await until("the client noticing node1 is gone", () => clientDisconnects().length > disconnectsBefore, 15_000);
  writeFileSync(`${mountPoint}/test.txt`, "testing failure\n");
  assert.equal(readFileSync(`${stateDir}/node2/brick/test.txt`, "utf8"), "testing failure\n");
  assert.ok(!existsSync(`${stateDir}/node1/brick/test.txt`), "node1 is down: it cannot have the file yet");
  const start = gha("node1", `service start gluster-ha-node1 --run-dir ${stateDir}/node1/opt/run`);
  assert.equal(start.status, 0, start.stderr);
  const t1 = Date.now();
  await until("test.txt healed to node1's brick", () => {
    sh(`ls -lR ${mountPoint} >/dev/null 2>&1 || true`); // the seed's way to trigger self-heal
    return existsSync(`${stateDir}/node1/brick/test.txt`) && readFileSync(`${stateDir}/node1/brick/test.txt`, "utf8") === "testing failure\n";
  }, 60_000);
  timings.healToNode1 = (Date.now() - t1) / 1000;
});

test("changing a server option restarts the nodes one at a time and the site never fails", async () => {
  assert.equal(pulumi(`config set --stack ${stack} ioThreadCount 16`, 60_000).status, 0);
  const disconnectsBefore = clientDisconnects().length;
  let ok = 0;
  let lastOk = 0;
  const failures: string[] = [];
  let polling = true;
  const t0 = Date.now();
  const poller = (async () => {
    while (polling) {
      try {
        const started = Date.now();
        const r = await httpGet(ports.web);
        if (r.status === 200) {
          ok++;
          lastOk = started;
        } else failures.push(`${((Date.now() - t0) / 1000).toFixed(1)} s: HTTP ${r.status}`);
      } catch (e) {
        failures.push(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${(e as Error).message}`);
      }
      await sleep(100);
    }
  })();
  const up = await pulumiAsync(`up --yes --skip-preview --stack ${stack}`);
  timings.rollingUp = (Date.now() - t0) / 1000;
  timings.rollingUpRequestsAnswered = ok;
  logSteps("rolling up", up.stdout);
  polling = false;
  await poller;
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
  assert.match(up.stdout, /local-node1-server\s+updated/);
  assert.match(up.stdout, /local-node2-server\s+updated/);
  assert.doesNotMatch(up.stdout, /local-client-mount\s+updated/, "a server option must not remount the client");
  const clientLog = readFileSync(clientLogFile, "utf8").split("\n").slice(-30).join("\n");
  assert.deepEqual(failures, [], `${ok} requests answered, ${failures.length} failed; client log:\n${clientLog}`);
  assert.ok(ok > 10, `only ${ok} requests made it during the update`);
  // Both nodes restarted, so the client lost the one it was using: the site kept answering through a failover.
  const failovers = clientDisconnects().slice(disconnectsBefore);
  assert.ok(failovers.length >= 1, `the client never lost its server during the update; client log:\n${clientLog}`);
  assert.ok(lastOk > failovers[0]!, "requests were answered after the client's failover");
  const outputs = JSON.parse(pulumi(`stack output --json --stack ${stack}`, 60_000).stdout);
  assert.match(outputs.volfiles.node1, /option thread-count 16\n/);
  for (const n of ["node1", "node2"]) assert.match(readFileSync(`${stateDir}/${n}/opt/etc/server.vol`, "utf8"), /option thread-count 16\n/);
});

test("pulumi destroy leaves no process, mount, site, record or runtime — only the brick data", async () => {
  const t0 = Date.now();
  const r = pulumi(`destroy --yes --skip-preview --stack ${stack}`);
  timings.destroy = (Date.now() - t0) / 1000;
  logSteps("destroy", r.stdout);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(processesOfStateDir(), []);
  assert.ok(!mounted());
  assert.equal((await httpGet(ports.web).catch(() => ({ status: 0 }))).status, 0, "the site no longer answers");
  assert.deepEqual(digA(clusterName), [], "no DNS answer for the cluster name");
  assert.ok(!existsSync(`${stateDir}/apache`), "site and Apache instance removed");
  assert.ok(!existsSync(`${stateDir}/bind`), "DNS server and its zone removed");
  for (const host of ["client", "node1", "node2"]) assert.ok(!existsSync(`${stateDir}/${host}/opt`), `${host}: runtime removed`);
  for (const n of ["node1", "node2"]) {
    assert.equal(readFileSync(`${stateDir}/${n}/brick/test.txt`, "utf8"), "testing failure\n", `${n}: brick data kept`);
    assert.ok(existsSync(`${stateDir}/${n}/brick/www/index.html`));
  }
});

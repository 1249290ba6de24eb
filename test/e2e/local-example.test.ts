// examples/local with the real Pulumi engine (scripts/pulumi-engine.sh): up from nothing, the site and
// both A records answer, a second up changes nothing, node1 fails and returns (the seed's failover and
// heal), a rolling option change never interrupts the site, destroy leaves only brick data.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

const repo = join(__dirname, "..", "..");
const example = join(repo, "examples", "local");
const stack = "e2e";
const stateDir = mkdtempSync("/tmp/gha-e2e-");
chmodSync(stateDir, 0o755); // Apache's www-data must traverse it to reach the mount (mkdtemp gives 0700)
const backendDir = mkdtempSync("/tmp/gha-e2e-backend-");
// Our port range is 24400-24499; the example's defaults (24400/24453/24480) stay free for a manual run.
const ports = { server: 24410, dns: 24454, web: 24482 };
const clusterName = "cluster.gluster-ha.test";
const timings: Record<string, number> = {};

function sh(script: string, timeoutMs = 600_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("bash", ["-c", script], {
    cwd: example,
    encoding: "utf8",
    timeout: timeoutMs,
    env: { ...process.env, PULUMI_BACKEND_URL: `file://${backendDir}` },
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Runs pulumi with the project's offline engine and settings. */
function pulumi(args: string, timeoutMs = 600_000): { status: number | null; stdout: string; stderr: string } {
  return sh(`set -euo pipefail
. ${repo}/scripts/pulumi-env.sh
PATH="$(${repo}/scripts/pulumi-engine.sh | tail -n 1):$PATH"
pulumi --non-interactive ${args}`, timeoutMs);
}

function httpGet(port: number, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, timeout: 3000 }, (res) => {
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
  return r.stdout.split("\n").filter(Boolean).sort();
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

const mounted = (): boolean => readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === `${stateDir}/client/mnt`);
const gha = (host: string, args: string): { status: number | null; stdout: string; stderr: string } =>
  sh(`node ${stateDir}/${host}/opt/current/bin/gluster-ha.js ${args}`, 60_000);

before(() => {
  if (!existsSync(join(repo, "dist", "bin", "glusterfsd.js")) || !existsSync(join(repo, "dist", "provider", "index.js"))) {
    spawnSync("node", ["scripts/build.mjs"], { cwd: repo, stdio: "inherit" });
  }
  assert.ok(existsSync(join(repo, "dist", "provider", "index.js")), "npm run build must produce dist/provider/index.js");
  mkdirSync(join(example, "node_modules"), { recursive: true });
  sh("ln -sfn ../../.. node_modules/gluster-ha");
  const init = pulumi(`stack init ${stack}`, 120_000);
  assert.equal(init.status, 0, init.stderr);
  for (const [k, v] of Object.entries({ stateDir, serverPort: ports.server, dnsPort: ports.dns, webPort: ports.web })) {
    const r = pulumi(`config set --stack ${stack} ${k} ${v}`, 60_000);
    assert.equal(r.status, 0, r.stderr);
  }
});

after(() => {
  // Whatever happened: destroy through the engine, then make sure nothing of ours is left.
  if (existsSync(join(example, `Pulumi.${stack}.yaml`))) pulumi(`destroy --yes --skip-preview --stack ${stack}`, 300_000);
  for (const host of ["client", "node1", "node2"]) {
    const run = `${stateDir}/${host}/opt/run`;
    if (existsSync(run)) for (const f of readdirSync(run).filter((f) => f.endsWith(".pid"))) sh(`kill -9 $(cat ${run}/${f}) 2>/dev/null || true`);
  }
  sh(`fusermount -uz ${stateDir}/client/mnt 2>/dev/null || true
bash fixtures/bind.sh stop ${stateDir}/bind >/dev/null 2>&1 || true
bash fixtures/apache.sh stop ${stateDir}/apache >/dev/null 2>&1 || true`);
  for (const line of processesOfStateDir()) sh(`kill -9 ${line.split(" ")[0]} 2>/dev/null || true`);
  pulumi(`stack rm --yes --force ${stack}`, 60_000);
  rmSync(join(example, `Pulumi.${stack}.yaml`), { force: true });
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(backendDir, { recursive: true, force: true });
  process.stdout.write(`# timings (s): ${JSON.stringify(timings)}\n`);
});

test("pulumi up from nothing: servers, mount, Apache and DNS come up; the site serves the volume's page", async () => {
  const t0 = Date.now();
  const up = pulumi(`up --yes --skip-preview --stack ${stack}`);
  timings.up = (Date.now() - t0) / 1000;
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
  const page = await httpGet(ports.web);
  assert.equal(page.status, 200);
  assert.match(page.body, /<h1>gluster-ha<\/h1>/);
  // The page lives on the replicated volume: on both bricks.
  for (const n of ["node1", "node2"]) assert.equal(readFileSync(`${stateDir}/${n}/brick/www/index.html`, "utf8"), page.body);
  assert.deepEqual(digA(clusterName), ["127.0.0.2", "127.0.0.3"]);
  assert.ok(mounted());
  const outputs = JSON.parse(pulumi(`stack output --json --show-secrets --stack ${stack}`, 60_000).stdout);
  assert.match(outputs.nodeStatus.node1, /^node1 up 127\.0\.0\.2:24410 release=[0-9a-f]{16}$/);
  assert.match(outputs.volfiles.node2, /option bind-address 127\.0\.0\.3\noption listen-port 24410\n/);
});

test("a second pulumi up changes nothing", () => {
  const r = pulumi(`up --yes --skip-preview --expect-no-changes --stack ${stack}`);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout, /updated|created|replaced/);
});

test("with node1's server down the site answers; a file written meanwhile reaches node1 when it returns", async () => {
  const stop = gha("node1", `service stop gluster-ha-node1 --run-dir ${stateDir}/node1/opt/run`);
  assert.equal(stop.status, 0, stop.stderr);
  assert.equal(gha("node1", `service status gluster-ha-node1 --run-dir ${stateDir}/node1/opt/run`).status, 3);
  // The seed: "wait a few seconds and then browse" — the client fails over within its transport-timeout (10 s).
  await until("the site answering with node1 down", async () => (await httpGet(ports.web).catch(() => ({ status: 0 }))).status === 200, 20_000);
  writeFileSync(`${stateDir}/client/mnt/test.txt`, "testing failure\n");
  assert.equal(readFileSync(`${stateDir}/node2/brick/test.txt`, "utf8"), "testing failure\n");
  assert.ok(!existsSync(`${stateDir}/node1/brick/test.txt`), "node1 is down: it cannot have the file yet");
  const start = gha("node1", `service start gluster-ha-node1 --run-dir ${stateDir}/node1/opt/run`);
  assert.equal(start.status, 0, start.stderr);
  await until("test.txt healed to node1's brick", () => {
    sh(`ls -lR ${stateDir}/client/mnt >/dev/null 2>&1 || true`); // the seed's way to trigger self-heal
    return existsSync(`${stateDir}/node1/brick/test.txt`) && readFileSync(`${stateDir}/node1/brick/test.txt`, "utf8") === "testing failure\n";
  }, 60_000);
});

test("changing a server option restarts the nodes one at a time and the site never fails", async () => {
  assert.equal(pulumi(`config set --stack ${stack} ioThreadCount 16`, 60_000).status, 0);
  let ok = 0;
  const failures: string[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        const r = await httpGet(ports.web);
        if (r.status === 200) ok++;
        else failures.push(`HTTP ${r.status}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
      await sleep(100);
    }
  })();
  const t0 = Date.now();
  const up = pulumi(`up --yes --skip-preview --stack ${stack}`);
  timings.rollingUp = (Date.now() - t0) / 1000;
  polling = false;
  await poller;
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
  assert.match(up.stdout, /local-node1-server\s+updated/);
  assert.match(up.stdout, /local-node2-server\s+updated/);
  assert.doesNotMatch(up.stdout, /local-client-mount\s+updated/, "a server option must not remount the client");
  assert.deepEqual(failures, [], `${ok} requests answered, ${failures.length} failed`);
  assert.ok(ok > 10, `only ${ok} requests made it during the update`);
  const outputs = JSON.parse(pulumi(`stack output --json --stack ${stack}`, 60_000).stdout);
  assert.match(outputs.volfiles.node1, /option thread-count 16\n/);
  assert.match(readFileSync(`${stateDir}/node2/opt/etc/server.vol`, "utf8"), /option thread-count 16\n/);
});

test("pulumi destroy leaves no process, mount, site, record or runtime — only the brick data", () => {
  const t0 = Date.now();
  const r = pulumi(`destroy --yes --skip-preview --stack ${stack}`);
  timings.destroy = (Date.now() - t0) / 1000;
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(processesOfStateDir(), []);
  assert.ok(!mounted());
  assert.ok(!existsSync(`${stateDir}/apache`), "site and Apache instance removed");
  assert.ok(!existsSync(`${stateDir}/bind`), "DNS server and its zone removed");
  for (const host of ["client", "node1", "node2"]) assert.ok(!existsSync(`${stateDir}/${host}/opt`), `${host}: runtime removed`);
  for (const n of ["node1", "node2"]) {
    assert.equal(readFileSync(`${stateDir}/${n}/brick/test.txt`, "utf8"), "testing failure\n", `${n}: brick data kept`);
    assert.ok(existsSync(`${stateDir}/${n}/brick/www/index.html`));
  }
});

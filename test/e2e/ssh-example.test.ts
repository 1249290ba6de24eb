// examples/ssh with the real Pulumi engine, every step over SSH: three private sshd instances stand in
// for the seed's hosts (node1 127.0.0.2, node2 127.0.0.3, client 127.0.0.1), each "host" with its own
// directories under a temp state dir. up from nothing (servers, mount, DNS, Apache site), a second up
// changes nothing, a server option change rolls through both nodes while the site keeps answering, a
// host key other than the pinned one is refused, destroy leaves only the brick data.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startSshHosts, type SshHosts } from "../helpers/sshd";

const repo = join(__dirname, "..", "..");
const example = join(repo, "examples", "ssh");
// The example runs from a copy, against a snapshot of the built package: others rebuilding dist/
// meanwhile would change the runtime release between two `pulumi up`s.
const projectDir = mkdtempSync("/tmp/gha-ssh-e2e-project-");
const fixtures = join(repo, "examples", "local", "fixtures");
const stack = "e2e";
// Our port range is 24900-24999.
const ports = { ssh: 24900, server: 24910, dns: 24953, web: 24980 };
const zone = "gluster-ha.test";
const clusterName = `cluster.${zone}`;
const keyName = "gluster-ha-ssh-e2e";
const stateDir = mkdtempSync("/tmp/gha-ssh-e2e-");
chmodSync(stateDir, 0o755); // Apache's www-data must traverse it to reach the mount (mkdtemp gives 0700)
const backendDir = mkdtempSync("/tmp/gha-ssh-e2e-backend-");
// The DNS server is not one of the hosts' (its processes must not count as ours after destroy).
const bindDir = mkdtempSync("/tmp/gha-ssh-e2e-bind-");
const apacheDir = `${stateDir}/client/apache`;
const mountPoint = `${stateDir}/client/mnt`;
const timings: Record<string, number> = {};
/** The per-resource step durations pulumi printed, kept for the report at the end. */
const stepLog: string[] = [];
const logSteps = (what: string, out: string): void => {
  stepLog.push(`${what}:`, ...out.split("\n").filter((l) => /\b(created|updated|deleted|replaced)\b.*\(\d/.test(l)).map((l) => `  ${l.trim()}`));
};
let sshHosts: SshHosts | undefined;

type Run = { status: number | null; stdout: string; stderr: string };

function sh(script: string, timeoutMs = 600_000): Run {
  const r = spawnSync("bash", ["-c", script], {
    cwd: projectDir,
    encoding: "utf8",
    timeout: timeoutMs,
    env: { ...process.env, PULUMI_BACKEND_URL: `file://${backendDir}` },
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Runs pulumi with the project's offline engine and settings. */
function pulumi(args: string, timeoutMs = 600_000): Run {
  return sh(`set -euo pipefail
. ${repo}/scripts/pulumi-env.sh
PATH="$(${repo}/scripts/pulumi-engine.sh | tail -n 1):$PATH"
pulumi --non-interactive ${args}`, timeoutMs);
}

/** pulumi without blocking the event loop (so a poller can run meanwhile). */
function pulumiAsync(args: string, timeoutMs = 600_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", `set -euo pipefail
. ${repo}/scripts/pulumi-env.sh
PATH="$(${repo}/scripts/pulumi-engine.sh | tail -n 1):$PATH"
pulumi --non-interactive ${args}`], { cwd: projectDir, env: { ...process.env, PULUMI_BACKEND_URL: `file://${backendDir}` }, timeout: timeoutMs });
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
  return r.stdout.split("\n").filter(Boolean).sort();
}

/** Processes whose command line mentions our state dir (supervisors, servers, the mount). */
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

const mounted = (): boolean => readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === mountPoint);
/** The gluster-ha CLI of one host's installed runtime, run on that host over ssh. */
const gha = (host: string, args: string): Run => sshHosts!.ssh(host, `node ${stateDir}/${host}/opt/current/bin/gluster-ha.js ${args}`);

/**
 * projectDir: examples/ssh's Pulumi.yaml and index.ts; node_modules with the repo's packages and
 * gluster-ha -> a copy of the package as built now (package.json, dist/, the native fuse-native build).
 */
function snapshotProject(): void {
  for (const f of ["Pulumi.yaml", "index.ts"]) copyFileSync(join(example, f), join(projectDir, f));
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

before(async () => {
  if (!existsSync(join(repo, "dist", "bin", "glusterfsd.js")) || !existsSync(join(repo, "dist", "provider", "index.js"))) {
    spawnSync("node", ["scripts/build.mjs"], { cwd: repo, stdio: "inherit" });
  }
  assert.ok(existsSync(join(repo, "dist", "provider", "index.js")), "npm run build must produce dist/provider/index.js");
  sshHosts = await startSshHosts({ port: ports.ssh });

  // What an admin would have installed on the hosts beforehand: a DNS server taking dynamic updates
  // and Apache on the client (private instances, so the system's are untouched).
  const bind = sh(`bash ${fixtures}/bind.sh start ${bindDir} ${ports.dns} ${zone} ${keyName}`, 60_000);
  assert.equal(bind.status, 0, bind.stderr);
  const tsigSecret = bind.stdout.trim().split("\n").pop()!;
  const apache = sh(`bash ${fixtures}/apache.sh prepare ${apacheDir}`, 60_000);
  assert.equal(apache.status, 0, apache.stderr);

  snapshotProject();
  const init = pulumi(`stack init ${stack}`, 900_000); // a cold engine build takes minutes
  assert.equal(init.status, 0, init.stderr);
  const settings: Record<string, string | number> = {
    node1: "127.0.0.2",
    node2: "127.0.0.3",
    client: "127.0.0.1",
    sshPort: ports.ssh,
    hostRoot: stateDir,
    serviceManager: "process",
    listenPort: ports.server,
    // The runtime resolves the cluster name with the system resolver, which does not know the private
    // BIND: the client lists both node addresses (the same failover as the round-robin name).
    remoteHost: "127.0.0.2,127.0.0.3",
    clusterName,
    dnsServer: "127.0.0.1",
    dnsPort: ports.dns,
    dnsZone: zone,
    tsigKeyName: keyName,
    apachePort: ports.web,
    apacheConfigDir: apacheDir,
    apacheControl: `env APACHE_CONFDIR=${apacheDir} apache2ctl`,
    // Pinned host keys: the command provider then connects with StrictHostKeyChecking=yes.
    ...Object.fromEntries(sshHosts.hosts.map((h) => [`hostKeys.${h.name}`, h.hostKey])),
  };
  const quote = (v: string | number) => `'${String(v).replace(/'/g, `'\\''`)}'`;
  const plain = Object.entries(settings).map(([k, v]) => `--plaintext ${quote(`${k}=${v}`)}`).join(" ");
  const secrets = `--secret ${quote(`tsigSecret=${tsigSecret}`)} --secret "sshPrivateKey=$(cat ${sshHosts.privateKeyPath})"`;
  const set = pulumi(`config set-all --stack ${stack} --path ${plain} ${secrets}`, 60_000);
  assert.equal(set.status, 0, set.stderr);
});

after(async () => {
  // Whatever happened: destroy through the engine, then make sure nothing of ours is left.
  if (existsSync(join(projectDir, `Pulumi.${stack}.yaml`)) && sshHosts) pulumi(`destroy --yes --skip-preview --stack ${stack}`, 300_000);
  for (const host of ["client", "node1", "node2"]) {
    const run = `${stateDir}/${host}/opt/run`;
    if (existsSync(run)) for (const f of readdirSync(run).filter((f) => f.endsWith(".pid"))) sh(`kill -9 $(cat ${run}/${f}) 2>/dev/null || true`);
  }
  sh(`fusermount -uz ${mountPoint} 2>/dev/null || true
bash ${fixtures}/bind.sh stop ${bindDir} >/dev/null 2>&1 || true
bash ${fixtures}/apache.sh stop ${apacheDir} >/dev/null 2>&1 || true`);
  for (const line of processesOfStateDir()) sh(`kill -9 ${line.split(" ")[0]} 2>/dev/null || true`);
  await sshHosts?.stop();
  pulumi(`stack rm --yes --force ${stack}`, 60_000);
  rmSync(projectDir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(backendDir, { recursive: true, force: true });
  rmSync(bindDir, { recursive: true, force: true });
  process.stdout.write(`# timings (s): ${JSON.stringify(timings)}\n${stepLog.map((l) => `# ${l}\n`).join("")}`);
});

test("pulumi up over ssh: both servers and the mount come up, a file written through the mount is on both bricks, the site and DNS answer", async () => {
  const t0 = Date.now();
  const up = pulumi(`up --yes --skip-preview --stack ${stack}`);
  timings.up = (Date.now() - t0) / 1000;
  logSteps("up", up.stdout);
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);

  // Every host step went through remote.Command / CopyToRemote; only the DNS update runs here.
  const state = JSON.parse(pulumi(`stack export --stack ${stack}`, 60_000).stdout) as { deployment: { resources: Array<{ urn: string; type: string }> } };
  const types = state.deployment.resources.map((r) => `${r.type} ${r.urn.split("::").pop()}`);
  for (const host of ["node1", "node2", "client"]) {
    assert.ok(types.includes(`command:remote:CopyToRemote seed-${host}-runtime-copy`), `${host}: runtime copied over scp\n${types.join("\n")}`);
    assert.ok(types.includes(`command:remote:Command seed-${host}-runtime`), `${host}: runtime installed over ssh`);
  }
  assert.deepEqual(types.filter((t) => t.startsWith("command:local:")), ["command:local:Command seed-dns"]);
  assert.doesNotMatch(JSON.stringify(state), /PRIVATE KEY/, "the ssh private key is a secret in the state");
  // The pinned host keys reached the provider (it then checks them strictly).
  // (The connection holds the private key: the whole object is a secret, its plaintext a JSON string.)
  type Resource = { urn: string; inputs?: { connection?: { plaintext?: string } } };
  const revealed = JSON.parse(pulumi(`stack export --show-secrets --stack ${stack}`, 60_000).stdout) as { deployment: { resources: Resource[] } };
  for (const host of sshHosts!.hosts) {
    const runtime = revealed.deployment.resources.find((r) => r.urn.endsWith(`::seed-${host.name}-runtime`));
    const connection = JSON.parse(runtime?.inputs?.connection?.plaintext ?? "{}") as { hostKey?: string };
    assert.equal(connection.hostKey, host.hostKey, `${host.name}: connection.hostKey`);
  }
  // ... and each host's steps reached that host's own sshd.
  for (const host of sshHosts!.hosts) {
    const logins = readFileSync(host.logFile, "utf8").match(/Accepted publickey for root/g) ?? [];
    assert.ok(logins.length >= 4, `${host.name}: ${logins.length} ssh logins (prepare, copy, runtime, service steps)`);
  }

  const outputs = JSON.parse(pulumi(`stack output --json --show-secrets --stack ${stack}`, 60_000).stdout);
  assert.match(outputs.nodeStatus.node1, new RegExp(`^node1 up 127\\.0\\.0\\.2:${ports.server} release=[0-9a-f]{16}$`));
  assert.match(outputs.nodeStatus.node2, new RegExp(`^node2 up 127\\.0\\.0\\.3:${ports.server} release=[0-9a-f]{16}$`));
  for (const host of ["node1", "node2", "client"]) {
    assert.equal(readFileSync(`${stateDir}/${host}/opt/current/.complete`, "utf8"), "", `${host}: release unpacked`);
  }
  for (const n of ["node1", "node2"]) {
    const status = gha(n, `service status gluster-ha-${n} --run-dir ${stateDir}/${n}/opt/run`);
    assert.equal(status.status, 0, `${n}: ${status.stdout}${status.stderr}`);
  }

  assert.ok(mounted(), `${mountPoint} mounted`);
  writeFileSync(`${mountPoint}/over-ssh.txt`, "written through the mount\n");
  for (const n of ["node1", "node2"]) assert.equal(readFileSync(`${stateDir}/${n}/brick/over-ssh.txt`, "utf8"), "written through the mount\n", `${n}'s brick`);

  const page = await httpGet(ports.web);
  assert.equal(page.status, 200);
  assert.match(page.body, /<h1>gluster-ha<\/h1>/);
  for (const n of ["node1", "node2"]) assert.equal(readFileSync(`${stateDir}/${n}/brick/www/index.html`, "utf8"), page.body);
  assert.deepEqual(digA(clusterName), ["127.0.0.2", "127.0.0.3"]);
});

test("a second pulumi up over ssh changes nothing", () => {
  const t0 = Date.now();
  const r = pulumi(`up --yes --skip-preview --expect-no-changes --stack ${stack}`);
  timings.secondUp = (Date.now() - t0) / 1000;
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout, /updated|created|replaced/);
});

test("changing a server option over ssh restarts the nodes one at a time and the site never fails", async () => {
  assert.equal(pulumi(`config set --stack ${stack} ioThreadCount 16`, 60_000).status, 0);
  let ok = 0;
  const failures: string[] = [];
  let polling = true;
  const t0 = Date.now();
  const poller = (async () => {
    while (polling) {
      try {
        const r = await httpGet(ports.web);
        if (r.status === 200) ok++;
        else failures.push(`${((Date.now() - t0) / 1000).toFixed(1)} s: HTTP ${r.status}`);
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
  assert.match(up.stdout, /seed-node1-server\s+updated/);
  assert.match(up.stdout, /seed-node2-server\s+updated/);
  assert.doesNotMatch(up.stdout, /seed-client-mount\s+updated/, "a server option must not remount the client");
  assert.deepEqual(failures, [], `${ok} requests answered, ${failures.length} failed`);
  assert.ok(ok > 10, `only ${ok} requests made it during the update`);
  for (const n of ["node1", "node2"]) assert.match(readFileSync(`${stateDir}/${n}/opt/etc/server.vol`, "utf8"), /option thread-count 16\n/);
});

test("a host presenting another host key than the pinned one is refused", () => {
  const wrongKey = sshHosts!.byName.node1!.hostKey;
  assert.equal(pulumi(`config set --stack ${stack} --path hostKeys.client -- '${wrongKey}'`, 60_000).status, 0);
  try {
    const up = pulumi(`up --yes --skip-preview --stack ${stack}`);
    assert.notEqual(up.status, 0, "up must fail: the client's sshd presents its own key");
    assert.match(up.stdout + up.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    assert.ok(mounted(), "the failed update left the running cluster alone");
  } finally {
    assert.equal(pulumi(`config set --stack ${stack} --path hostKeys.client -- '${sshHosts!.byName.client!.hostKey}'`, 60_000).status, 0);
  }
});

test("pulumi destroy over ssh leaves no process, mount, site, record or runtime — only the brick data", async () => {
  const t0 = Date.now();
  const r = pulumi(`destroy --yes --skip-preview --stack ${stack}`);
  timings.destroy = (Date.now() - t0) / 1000;
  logSteps("destroy", r.stdout);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(processesOfStateDir(), []);
  assert.ok(!mounted());
  assert.deepEqual(readdirSync(`${apacheDir}/sites-enabled`), [], "site removed");
  assert.deepEqual(readdirSync(`${apacheDir}/sites-available`), [], "site removed");
  assert.equal((await httpGet(ports.web).catch(() => ({ status: 0 }))).status === 200, false, "the site no longer answers");
  assert.deepEqual(digA(clusterName), [], "A records removed");
  for (const host of ["client", "node1", "node2"]) assert.ok(!existsSync(`${stateDir}/${host}/opt`), `${host}: runtime removed`);
  for (const n of ["node1", "node2"]) {
    assert.equal(readFileSync(`${stateDir}/${n}/brick/over-ssh.txt`, "utf8"), "written through the mount\n", `${n}: brick data kept`);
    assert.ok(existsSync(`${stateDir}/${n}/brick/www/index.html`));
  }
});

// examples/ssh with the real Pulumi engine, every step over SSH: three private sshd instances stand in
// for the seed's hosts (node1 127.0.0.2, node2 127.0.0.3, client 127.0.0.1), each "host" with its own
// directories under a temp state dir. up from nothing (servers, mount, DNS, Apache site; each server
// started once), a second up changes nothing, a server option change rolls through both nodes while the
// site keeps answering, a new runtime release restarts the servers one at a time and remounts the
// client last, a host key other than the pinned one is refused, destroy leaves only the brick data.
import assert from "node:assert/strict";
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  digA as digAt, ensureBuilt, httpGet as httpGetAt, isMounted, pollSite, processesMentioning, pulumiProject, repoRoot, runReport,
  snapshotPackage, tearDown, type Run,
} from "../helpers/e2e-project";
import { startSshHosts, type SshHosts } from "../helpers/sshd";

const example = join(repoRoot, "examples", "ssh");
// The example runs from a copy, against a snapshot of the built package (test/helpers/e2e-project.ts).
const project = pulumiProject(mkdtempSync("/tmp/gha-ssh-e2e-project-"), mkdtempSync("/tmp/gha-ssh-e2e-backend-"));
const fixtures = join(repoRoot, "examples", "local", "fixtures");
const stack = "e2e";
// Our port range is 24900-24999.
const ports = { ssh: 24900, server: 24910, dns: 24953, web: 24980 };
const zone = "gluster-ha.test";
const clusterName = `cluster.${zone}`;
const keyName = "gluster-ha-ssh-e2e";
const stateDir = mkdtempSync("/tmp/gha-ssh-e2e-");
chmodSync(stateDir, 0o755); // Apache's www-data must traverse it to reach the mount (mkdtemp gives 0700)
// The DNS server is not one of the hosts' (its processes must not count as ours after destroy).
const bindDir = mkdtempSync("/tmp/gha-ssh-e2e-bind-");
const apacheDir = `${stateDir}/client/apache`;
const mountPoint = `${stateDir}/client/mnt`;
/** Durations and the steps pulumi printed, for the report at the end. */
const report = runReport();
let sshHosts: SshHosts | undefined;

const sh = (script: string, timeoutMs?: number): Run => project.sh(script, timeoutMs);
const pulumi = (args: string, timeoutMs?: number): Run => project.pulumi(args, timeoutMs);
const httpGet = (port: number) => httpGetAt(port, clusterName);
const digA = (name: string): string[] => digAt(name, ports.dns);
const mounted = (): boolean => isMounted(mountPoint);
/** A node's server log, one JSON object a line. */
const serverLog = (node: string): Array<{ msgid?: string; time: number }> =>
  readFileSync(`${stateDir}/${node}/opt/log/glusterfsd.log`, "utf8").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
/** How often a node's server started: its log's PROC_STARTED lines. */
const serverStarts = (node: string): number => serverLog(node).filter((l) => l.msgid === "PROC_STARTED").length;
/** The gluster-ha CLI of one host's installed runtime, run on that host over ssh. */
const gha = (host: string, args: string): Run => sshHosts!.ssh(host, `node ${stateDir}/${host}/opt/current/bin/gluster-ha.js ${args}`);

before(async () => {
  ensureBuilt();
  assert.ok(existsSync(join(repoRoot, "dist", "provider", "index.js")), "npm run build must produce dist/provider/index.js");
  sshHosts = await startSshHosts({ port: ports.ssh });

  // What an admin would have installed on the hosts beforehand: a DNS server taking dynamic updates
  // and Apache on the client (private instances, so the system's are untouched).
  const bind = sh(`bash ${fixtures}/bind.sh start ${bindDir} ${ports.dns} ${zone} ${keyName}`, 60_000);
  assert.equal(bind.status, 0, bind.stderr);
  const tsigSecret = bind.stdout.trim().split("\n").pop()!;
  const apache = sh(`bash ${fixtures}/apache.sh prepare ${apacheDir}`, 60_000);
  assert.equal(apache.status, 0, apache.stderr);

  for (const f of ["Pulumi.yaml", "index.ts"]) copyFileSync(join(example, f), join(project.dir, f));
  snapshotPackage(project.dir);
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
  await tearDown({
    project, stack, stateDir, mountPoint, hosts: ["client", "node1", "node2"],
    destroy: sshHosts !== undefined, // the steps cannot reach the hosts without their sshd
    stopFixtures: `bash ${fixtures}/bind.sh stop ${bindDir} >/dev/null 2>&1 || true
bash ${fixtures}/apache.sh stop ${apacheDir} >/dev/null 2>&1 || true`,
    afterKill: async () => sshHosts?.stop(),
    dirs: [bindDir],
  });
  report.print();
});

test("pulumi up over ssh: both servers and the mount come up, a file written through the mount is on both bricks, the site and DNS answer", async () => {
  const up = await report.timed("up", () => pulumi(`up --yes --skip-preview --stack ${stack}`));
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
    // Started by the bring-up; the server step found it serving this volfile and release.
    assert.equal(serverStarts(n), 1, `${n}: the first deploy starts the server once`);
    assert.match(status.stdout, / restarts=0\n/, `${n}: and it never died`);
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

test("a second pulumi up over ssh changes nothing", async () => {
  const r = await report.timed("secondUp", () => pulumi(`up --yes --skip-preview --expect-no-changes --stack ${stack}`), false);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout, /updated|created|replaced/);
});

test("changing a server option over ssh restarts the nodes one at a time and the site never fails", async () => {
  assert.equal(pulumi(`config set --stack ${stack} ioThreadCount 16`, 60_000).status, 0);
  const poller = pollSite(ports.web, clusterName);
  const up = await report.timed("rollingUp", () => project.pulumiAsync(`up --yes --skip-preview --stack ${stack}`));
  const { ok, failures } = await poller.stop();
  report.timings.rollingUpRequestsAnswered = ok;
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
  assert.match(up.stdout, /seed-node1-server\s+updated/);
  assert.match(up.stdout, /seed-node2-server\s+updated/);
  assert.doesNotMatch(up.stdout, /seed-client-mount\s+updated/, "a server option must not remount the client");
  assert.deepEqual(failures, [], `${ok} requests answered, ${failures.length} failed`);
  assert.ok(ok > 10, `only ${ok} requests made it during the update`);
  for (const n of ["node1", "node2"]) {
    assert.match(readFileSync(`${stateDir}/${n}/opt/etc/server.vol`, "utf8"), /option thread-count 16\n/);
    assert.equal(serverStarts(n), 2, `${n}: restarted once for the new volfile`);
  }
});

test("a new runtime release restarts each server once, one at a time, then remounts the client: only that remount fails the site", async () => {
  const release = (): string => (JSON.parse(pulumi(`stack output --json --stack ${stack}`, 60_000).stdout) as { runtimeRelease: string }).runtimeRelease;
  const before = release();
  // Another build of the package: any change to the bundled files is another release (content hash).
  appendFileSync(join(project.dir, "gluster-ha", "dist", "bin", "gluster-ha.js"), "\n// e2e: another runtime release\n");
  const startsBefore = Object.fromEntries(["node1", "node2"].map((n) => [n, serverStarts(n)]));
  const poller = pollSite(ports.web, clusterName);
  const up = await report.timed("upgradeUp", () => project.pulumiAsync(`up --yes --skip-preview --stack ${stack}`));
  const { ok, failures, failedAt } = await poller.stop();
  report.timings.upgradeRequestsAnswered = ok;
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
  const after = release();
  assert.notEqual(after, before);
  const at = (re: RegExp): number => {
    const m = re.exec(up.stdout);
    assert.ok(m, `${re} in\n${up.stdout}`);
    return m.index;
  };
  assert.ok(at(/seed-node1-server\s+updated/) < at(/seed-node2-server\s+updated/) && at(/seed-node2-server\s+updated/) < at(/seed-client-mount\s+updated/), up.stdout);
  for (const n of ["node1", "node2"]) {
    assert.equal(serverStarts(n), startsBefore[n]! + 1, `${n}: restarted once for the new release`);
    assert.equal(readlinkSync(`${stateDir}/${n}/opt/current`), `releases/${after}`);
  }
  // The servers restart one at a time (the site keeps answering); the client's remount comes after
  // both: every failed request (if any) came back after node2's restart.
  const node2Started = serverLog("node2").filter((l) => l.msgid === "PROC_STARTED").pop()!.time;
  const mountedAt = (JSON.parse(readFileSync(`${stateDir}/client/opt/log/glusterfs.log`, "utf8").trim().split("\n").filter((l) => l.includes('"msgid":"FUSE_MOUNTED"')).pop()!) as { time: number }).time;
  report.timings.upgradeRequestsFailed = failures.length;
  report.timings.upgradeFailuresSpan = failedAt.length ? (failedAt[failedAt.length - 1]! - failedAt[0]!) / 1000 : 0;
  report.timings.upgradeLastFailureBeforeRemounted = failedAt.length ? (mountedAt - failedAt[failedAt.length - 1]!) / 1000 : 0;
  assert.ok(failedAt.every((t) => t > node2Started), `failures before node2's restart ended: ${failures.join(", ")}`);
  assert.equal((await httpGet(ports.web)).status, 200);
  assert.ok(mounted());
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
  const r = await report.timed("destroy", () => pulumi(`destroy --yes --skip-preview --stack ${stack}`));
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(processesMentioning(stateDir), []);
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

// examples/local with the real Pulumi engine (scripts/pulumi-engine.sh): up from nothing, the site and
// both A records answer, a second up changes nothing, node1 fails and returns (the seed's failover and
// heal), a rolling option change never interrupts the site, destroy leaves only brick data.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import {
  digA as digAt, httpGet as httpGetAt, isMounted, pollSite, processesMentioning, localExampleProject, runReport, until, type Run,
} from "../helpers/e2e-project";

// The example runs from a copy, against a snapshot of the built package (test/helpers/e2e-project.ts).
// Our port range is 24400-24499; the example's defaults (24400/24453/24480) stay free for a manual run.
const local = localExampleProject({ name: "local", stack: "e2e", ports: { server: 24410, dns: 24454, web: 24482 } });
const { project, stack, stateDir, mountPoint, ports, clusterName } = local;
/** Durations and the steps pulumi printed, for the report at the end. */
const report = runReport();

const sh = (script: string, timeoutMs?: number): Run => project.sh(script, timeoutMs);
const pulumi = (args: string, timeoutMs?: number): Run => project.pulumi(args, timeoutMs);
const httpGet = (port: number) => httpGetAt(port, clusterName);
const digA = (name: string): string[] => digAt(name, ports.dns);

const clientLogFile = `${stateDir}/client/opt/log/glusterfs.log`;
/** When (ms since the epoch) the mount's protocol/client lost a server connection, from its log. */
const clientDisconnects = (): number[] =>
  readFileSync(clientLogFile, "utf8")
    .split("\n")
    .filter((l) => l.includes('"msgid":"PC_DISCONNECTED"'))
    .map((l) => (JSON.parse(l) as { time: number }).time);
const mounted = (): boolean => isMounted(mountPoint);
const gha = (host: string, args: string): Run => sh(`node ${stateDir}/${host}/opt/current/bin/gluster-ha.js ${args}`, 60_000);

before(() => local.setUp());

after(async () => {
  await local.tearDown();
  report.print();
});

test("pulumi up from nothing: servers, mount, Apache and DNS come up; the site serves the volume's page", async () => {
  const up = await report.timed("up", () => pulumi(`up --yes --skip-preview --stack ${stack}`));
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

test("a second pulumi up changes nothing", async () => {
  const r = await report.timed("secondUp", () => pulumi(`up --yes --skip-preview --expect-no-changes --stack ${stack}`), false);
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
  report.timings.siteWithNode1Down = (Date.now() - t0) / 1000;
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
  report.timings.healToNode1 = (Date.now() - t1) / 1000;
});

test("changing a server option restarts the nodes one at a time and the site never fails", async () => {
  assert.equal(pulumi(`config set --stack ${stack} ioThreadCount 16`, 60_000).status, 0);
  const disconnectsBefore = clientDisconnects().length;
  const poller = pollSite(ports.web, clusterName);
  const up = await report.timed("rollingUp", () => project.pulumiAsync(`up --yes --skip-preview --stack ${stack}`));
  const { ok, lastOk, failures } = await poller.stop();
  report.timings.rollingUpRequestsAnswered = ok;
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
  const r = await report.timed("destroy", () => pulumi(`destroy --yes --skip-preview --stack ${stack}`));
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(processesMentioning(stateDir), []);
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

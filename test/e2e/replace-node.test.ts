// Replacing a storage node with the real Pulumi engine: node1 and the client run locally as in
// examples/local (process supervision; no DNS server or Apache, they play no part here), node2 over SSH
// on its own host. First node2 moves from 127.0.0.3 to 127.0.0.4 with a new, empty brick directory on
// the same host; then it moves to another host — its own sshd and its own files (a mount namespace),
// the same paths, never given anything — at 127.0.0.5. Each time the new node must be brought up (on
// the new host: prepared and given the runtime first) and healed fully from node1 before node1's
// volfile and the client switch to it; the old node's server goes last; every file ends on the new
// brick; the mount keeps working.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { isMounted, pulumiProject, repoRoot, runReport, snapshotPackage, tearDown, type Run } from "../helpers/e2e-project";
import { startSshdWithOwnFiles, type SshdWithOwnFiles } from "../helpers/e2e-other-host";
import { startSshHosts, type SshHosts } from "../helpers/sshd";

// Runs from a copy, against a snapshot of the built package (others may rebuild dist/ meanwhile).
const project = pulumiProject(mkdtempSync("/tmp/gha-replace-e2e-project-"), mkdtempSync("/tmp/gha-replace-e2e-backend-"));
const stateDir = mkdtempSync("/tmp/gha-replace-e2e-");
const stack = "e2e";
// Our port range is 25000-25099.
// (GHA_E2E_REPLACE_PORT, within the range: a second run of this file at the same time, e.g. from a copy
// of the tree; sshd listens 10 and 11 above it.)
const serverPort = Number(process.env.GHA_E2E_REPLACE_PORT ?? 25010);
const ports = { server: serverPort, ssh: serverPort + 10, sshOtherHost: serverPort + 11 };
const mountPoint = `${stateDir}/client/mnt`;
const oldBrick = `${stateDir}/node2/brick`;
const newBrick = `${stateDir}/node2/brick-new`;
/** The other host's files: what it sees at ${stateDir}/node2. */
const otherHostFiles = `${stateDir}/other-host-files`;
const sshDir = `${stateDir}/sshd`;
/** Durations and the steps pulumi printed, for the report at the end. */
const report = runReport();
let sshHosts: SshHosts | undefined;
let otherHost: SshdWithOwnFiles | undefined;

const pulumi = (args: string, timeoutMs = 900_000): Promise<Run> => project.pulumiAsync(args, timeoutMs);
async function up(what: string, extra = ""): Promise<Run> {
  const r = await report.timed(what, () => pulumi(`up --yes --skip-preview ${extra} --stack ${stack}`));
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return r;
}

const PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "gluster-ha";
const config = new pulumi.Config();
const stateDir = config.require("stateDir");
const node2Address = config.require("node2Address");
const node2Ssh = config.requireObject<{ host: string; port: number; hostKey: string }>("node2Ssh");
const node = (name: string, address: string, brickDir: string, connection: object) =>
  ({ name, address, connection, brickDir, installPrefix: \`\${stateDir}/\${name}/opt\` });
const cluster = new Cluster("rep", {
  nodes: [
    node("node1", "127.0.0.2", \`\${stateDir}/node1/brick\`, { local: true }),
    node("node2", node2Address, config.require("node2Brick"), { ...node2Ssh, user: "root", privateKey: config.requireSecret("sshPrivateKey") }),
  ],
  client: { address: "127.0.0.1", connection: { local: true }, mountPoint: \`\${stateDir}/client/mnt\`,
    installPrefix: \`\${stateDir}/client/opt\`, remoteHost: \`127.0.0.2,\${node2Address}\` },
  clusterName: "cluster.gluster-ha.test",
  listenPort: config.requireNumber("serverPort"),
  serviceManager: "process",
  dns: { mode: "none" },
  apache: false,
});
export const nodeStatus = cluster.nodeStatus;
`;

const listening = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 2000 }, () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
    s.on("timeout", () => { s.destroy(); resolve(false); });
  });
/** How often a server started: its log's PROC_STARTED lines (the log of the host's install prefix). */
const serverStarts = (prefix: string): number => (readFileSync(`${prefix}/log/glusterfsd.log`, "utf8").match(/"msgid":"PROC_STARTED"/g) ?? []).length;
/** Pulumi prints each step as it finishes: the order of the lines is the order they ran in. */
const position = (out: string, re: RegExp): number => {
  const m = re.exec(out);
  assert.ok(m, `${re} in\n${out}`);
  return m.index;
};
const node2Ssh = (address: string, port: number, hostKey: string): string => JSON.stringify({ host: address, port, hostKey });
const quote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

/** Files written through the mount before the replacements: name -> content. */
const files: Record<string, string> = {};

before(async () => {
  // The package as the source is now (this test is about the provider's current step scripts).
  const build = spawnSync("node", ["scripts/build.mjs"], { cwd: repoRoot, encoding: "utf8" });
  assert.equal(build.status, 0, build.stderr);
  writeFileSync(join(project.dir, "Pulumi.yaml"), "name: gluster-ha-replace-e2e\nruntime: nodejs\nmain: index.ts\n");
  writeFileSync(join(project.dir, "index.ts"), PROGRAM);
  snapshotPackage(project.dir);
  // node2's first host (this machine's files) and the one it moves to (its own files): sshd on
  // 127.0.0.3 and on 127.0.0.5; the latter's listener on ports.ssh stays unused, a second one with its
  // config serves from its own mount namespace.
  sshHosts = await startSshHosts({ port: ports.ssh, hosts: { node2: "127.0.0.3", "other-host": "127.0.0.5" }, dir: sshDir });
  mkdirSync(`${stateDir}/node2`, { recursive: true });
  otherHost = await startSshdWithOwnFiles({ host: sshHosts.byName["other-host"]!, port: ports.sshOtherHost, root: `${stateDir}/node2`, backing: otherHostFiles, dir: sshDir });
  const init = await pulumi(`stack init ${stack}`);
  assert.equal(init.status, 0, init.stderr);
  const set = await pulumi(`config set-all --stack ${stack} --plaintext stateDir=${stateDir} --plaintext node2Address=127.0.0.3 ` +
    `--plaintext node2Brick=${oldBrick} --plaintext serverPort=${ports.server} ` +
    `--plaintext ${quote(`node2Ssh=${node2Ssh("127.0.0.3", ports.ssh, sshHosts.byName.node2!.hostKey)}`)} ` +
    `--secret "sshPrivateKey=$(cat ${sshHosts.privateKeyPath})"`);
  assert.equal(set.status, 0, set.stderr);
});

after(async () => {
  // (The other host's processes, in its mount namespace, mention stateDir as well.)
  await tearDown({
    project, stack, stateDir, mountPoint, hosts: ["node1", "node2", "client"],
    afterKill: async () => {
      await otherHost?.stop();
      await sshHosts?.stop();
    },
  });
  report.print();
});

test("the cluster comes up with node2 on 127.0.0.3 (over SSH), each server started once; a file tree written through the mount is on both bricks", async () => {
  await up("up");
  assert.ok(isMounted(mountPoint));
  // The bring-up started each server; the server step found it serving its volfile and release.
  for (const n of ["node1", "node2"]) assert.equal(serverStarts(`${stateDir}/${n}/opt`), 1, `${n}: started once`);
  mkdirSync(`${mountPoint}/docs/deep`, { recursive: true });
  for (let i = 0; i < 20; i++) files[`docs/deep/f${i}.txt`] = `file ${i} `.repeat(200 * (i + 1));
  files["top.bin"] = "x".repeat(300_000);
  for (const [name, content] of Object.entries(files)) writeFileSync(`${mountPoint}/${name}`, content);
  for (const brick of [`${stateDir}/node1/brick`, oldBrick]) {
    for (const [name, content] of Object.entries(files)) assert.equal(readFileSync(`${brick}/${name}`, "utf8"), content, `${brick}/${name}`);
  }
});

test("node2 moved to 127.0.0.4 with an empty brick: brought up, fully healed, then node1 and the client switch; the old server stops last", async () => {
  const set = await pulumi(`config set-all --stack ${stack} --plaintext node2Address=127.0.0.4 --plaintext node2Brick=${newBrick}`);
  assert.equal(set.status, 0, set.stderr);
  const out = (await up("replaceAddress")).stdout;
  const bringUp = position(out, /rep-node2-[0-9a-f]{12}-bringup\s+created/);
  const join2 = position(out, /rep-node2-[0-9a-f]{12}-join\s+created/);
  const survivor = position(out, /rep-node1-server\s+updated/);
  const mount = position(out, /rep-client-mount\s+updated/);
  const oldDeleted = position(out, /rep-node2-[0-9a-f]{12}-bringup\s+deleted/);
  assert.ok(bringUp < join2 && join2 < survivor && survivor < mount && mount < oldDeleted, out);
  assert.doesNotMatch(out, /rep-node1-[0-9a-f]{12}-bringup\s+(created|deleted)/, "the survivor is not replaced");
  assert.doesNotMatch(out, /rep-node2-runtime-copy\s+(created|replaced)/, "the same host: no new copy of the runtime");

  // Every file reached the new brick; the old one is retained (retainData defaults to true).
  for (const [name, content] of Object.entries(files)) {
    assert.equal(readFileSync(`${newBrick}/${name}`, "utf8"), content, `${newBrick}/${name}`);
    assert.equal(readFileSync(`${oldBrick}/${name}`, "utf8"), content, `old ${oldBrick}/${name}`);
  }
  assert.match(readFileSync(`${stateDir}/node1/opt/etc/server.vol`, "utf8"), /option remote-host 127\.0\.0\.4 /);
  assert.equal(await listening("127.0.0.4", ports.server), true, "the new node serves");
  assert.equal(await listening("127.0.0.3", ports.server), false, "the old node's server is stopped");
  assert.ok(!existsSync(`${stateDir}/node1/opt/etc/server.vol.join-node2`), "the staged volfile is gone");

  // The mount works and replicates to the new node.
  assert.ok(isMounted(mountPoint));
  writeFileSync(`${mountPoint}/after-replace.txt`, "after\n");
  for (const brick of [`${stateDir}/node1/brick`, newBrick]) assert.equal(readFileSync(`${brick}/after-replace.txt`, "utf8"), "after\n", brick);
  files["after-replace.txt"] = "after\n";
  const outputs = JSON.parse((await pulumi(`stack output --json --stack ${stack}`, 60_000)).stdout) as { nodeStatus: Record<string, string> };
  assert.match(outputs.nodeStatus.node2!, new RegExp(`^node2 up 127\\.0\\.0\\.4:${ports.server} `));
});

test("node2 moved to another host (own files, same paths) at 127.0.0.5: runtime copied there, brought up once, fully healed, then the others switch; the old host's server stops last", async () => {
  const set = await pulumi(`config set-all --stack ${stack} --plaintext node2Address=127.0.0.5 ` +
    `--plaintext ${quote(`node2Ssh=${node2Ssh(otherHost!.address, otherHost!.port, otherHost!.hostKey)}`)}`);
  assert.equal(set.status, 0, set.stderr);
  // The new host has nothing yet at the node's paths.
  assert.ok(!existsSync(`${otherHostFiles}/opt`));
  const out = (await up("moveHost")).stdout;
  const copy = position(out, /rep-node2-runtime-copy\s+(created|replaced)/);
  const bringUp = position(out, /rep-node2-[0-9a-f]{12}-bringup\s+created/);
  const join2 = position(out, /rep-node2-[0-9a-f]{12}-join\s+created/);
  const survivor = position(out, /rep-node1-server\s+updated/);
  const mount = position(out, /rep-client-mount\s+updated/);
  const oldDeleted = position(out, /rep-node2-[0-9a-f]{12}-bringup\s+deleted/);
  assert.ok(copy < bringUp && bringUp < join2 && join2 < survivor && survivor < mount && mount < oldDeleted, out);

  // On the new host: the runtime, the volfile, the whole file tree on the (same-path) brick.
  const onNew = (path: string): string => `${otherHostFiles}${path.slice(`${stateDir}/node2`.length)}`;
  assert.ok(existsSync(onNew(`${stateDir}/node2/opt/current/.complete`)), "runtime unpacked on the new host");
  assert.match(readFileSync(onNew(`${stateDir}/node2/opt/etc/server.vol`), "utf8"), /option bind-address 127\.0\.0\.5\n/);
  for (const [name, content] of Object.entries(files)) assert.equal(readFileSync(onNew(`${newBrick}/${name}`), "utf8"), content, `new host: ${name}`);
  assert.equal(serverStarts(onNew(`${stateDir}/node2/opt`)), 1, "the new host's server started once (bring-up), not again by its server step");
  assert.match(readFileSync(otherHost!.logFile, "utf8"), /Accepted publickey for root/);
  // The old host: its server stopped (over its own connection), its brick kept.
  assert.equal(await listening("127.0.0.5", ports.server), true, "the new node serves");
  assert.equal(await listening("127.0.0.4", ports.server), false, "the old host's server is stopped");
  assert.ok(!existsSync(`${stateDir}/node2/opt/etc/server.vol`), "the old host's volfile is removed");
  for (const [name, content] of Object.entries(files)) assert.equal(readFileSync(`${newBrick}/${name}`, "utf8"), content, `old host: ${name} retained`);
  assert.match(readFileSync(`${stateDir}/node1/opt/etc/server.vol`, "utf8"), /option remote-host 127\.0\.0\.5 /);

  assert.ok(isMounted(mountPoint));
  writeFileSync(`${mountPoint}/after-move.txt`, "moved\n");
  for (const brick of [`${stateDir}/node1/brick`, onNew(newBrick)]) assert.equal(readFileSync(`${brick}/after-move.txt`, "utf8"), "moved\n", brick);
  const outputs = JSON.parse((await pulumi(`stack output --json --stack ${stack}`, 60_000)).stdout) as { nodeStatus: Record<string, string> };
  assert.match(outputs.nodeStatus.node2!, new RegExp(`^node2 up 127\\.0\\.0\\.5:${ports.server} `));
});

test("a second pulumi up after the replacements changes nothing", async () => {
  await up("noChange", "--expect-no-changes");
});

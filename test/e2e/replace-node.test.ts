// Replacing a storage node with the real Pulumi engine: the cluster as examples/local runs it (local
// "hosts", process supervision; no DNS server or Apache, they play no part here), then node2 moves
// from 127.0.0.3 to 127.0.0.4 with a new, empty brick directory. The new node must be brought up and
// healed fully from node1 before node1's volfile and the client switch to it; the old node's server
// goes last; every file ends on the new brick; the mount keeps working.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";

const repo = join(__dirname, "..", "..");
// Runs from a copy, against a snapshot of the built package (others may rebuild dist/ meanwhile).
const projectDir = mkdtempSync("/tmp/gha-replace-e2e-project-");
const stateDir = mkdtempSync("/tmp/gha-replace-e2e-");
const backendDir = mkdtempSync("/tmp/gha-replace-e2e-backend-");
const stack = "e2e";
// Our port range is 25000-25099.
// (GHA_E2E_REPLACE_PORT, within the range: a second run of this file at the same time, e.g. from a copy of the tree.)
const serverPort = Number(process.env.GHA_E2E_REPLACE_PORT ?? 25010);
const mountPoint = `${stateDir}/client/mnt`;
const oldBrick = `${stateDir}/node2/brick`;
const newBrick = `${stateDir}/node2/brick-new`;

type Run = { status: number | null; stdout: string; stderr: string };

/** pulumi with the project's offline engine, without blocking the event loop. */
function pulumi(args: string, timeoutMs = 900_000): Promise<Run> {
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

const PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "gluster-ha";
const config = new pulumi.Config();
const stateDir = config.require("stateDir");
const node2Address = config.require("node2Address");
const node = (name: string, address: string, brickDir: string) =>
  ({ name, address, connection: { local: true }, brickDir, installPrefix: \`\${stateDir}/\${name}/opt\` });
const cluster = new Cluster("rep", {
  nodes: [node("node1", "127.0.0.2", \`\${stateDir}/node1/brick\`), node("node2", node2Address, config.require("node2Brick"))],
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

/** projectDir: the program above; node_modules with the repo's packages and a copy of the built package. */
function snapshotProject(): void {
  writeFileSync(join(projectDir, "Pulumi.yaml"), "name: gluster-ha-replace-e2e\nruntime: nodejs\nmain: index.ts\n");
  writeFileSync(join(projectDir, "index.ts"), PROGRAM);
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

function processesOfStateDir(): string[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ");
        return cmd.includes(stateDir) ? [p] : [];
      } catch {
        return [];
      }
    });
}

const mounted = (): boolean => readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === mountPoint);
const listening = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 2000 }, () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
    s.on("timeout", () => { s.destroy(); resolve(false); });
  });

/** Files written through the mount before the replacement: name -> content. */
const files: Record<string, string> = {};

before(async () => {
  // The package as the source is now (this test is about the provider's current step scripts).
  const build = spawnSync("node", ["scripts/build.mjs"], { cwd: repo, encoding: "utf8" });
  assert.equal(build.status, 0, build.stderr);
  snapshotProject();
  const init = await pulumi(`stack init ${stack}`);
  assert.equal(init.status, 0, init.stderr);
  const set = await pulumi(`config set-all --stack ${stack} --plaintext stateDir=${stateDir} --plaintext node2Address=127.0.0.3 ` +
    `--plaintext node2Brick=${oldBrick} --plaintext serverPort=${serverPort}`);
  assert.equal(set.status, 0, set.stderr);
});

after(async () => {
  if (existsSync(join(projectDir, `Pulumi.${stack}.yaml`))) await pulumi(`destroy --yes --skip-preview --stack ${stack}`, 300_000);
  spawnSync("bash", ["-c", `fusermount -uz ${mountPoint} 2>/dev/null || true`]);
  for (const pid of processesOfStateDir()) spawnSync("kill", ["-9", pid]);
  await pulumi(`stack rm --yes --force ${stack}`, 60_000);
  for (const d of [projectDir, stateDir, backendDir]) rmSync(d, { recursive: true, force: true });
});

test("the cluster comes up with node2 on 127.0.0.3 and a file tree written through the mount is on both bricks", async () => {
  const up = await pulumi(`up --yes --skip-preview --stack ${stack}`);
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
  assert.ok(mounted());
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
  const up = await pulumi(`up --yes --skip-preview --stack ${stack}`);
  assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
  const out = up.stdout;
  // Pulumi prints each step as it finishes: the order of the lines is the order they ran in.
  const at = (re: RegExp): number => {
    const m = re.exec(out);
    assert.ok(m, `${re} in\n${out}`);
    return m.index;
  };
  const bringUp = at(/rep-node2-[0-9a-f]{12}-bringup\s+created/);
  const join2 = at(/rep-node2-[0-9a-f]{12}-join\s+created/);
  const survivor = at(/rep-node1-server\s+updated/);
  const mount = at(/rep-client-mount\s+updated/);
  const oldDeleted = at(/rep-node2-[0-9a-f]{12}-bringup\s+deleted/);
  assert.ok(bringUp < join2 && join2 < survivor && survivor < mount && mount < oldDeleted, out);
  assert.doesNotMatch(out, /rep-node1-[0-9a-f]{12}-bringup\s+(created|deleted)/, "the survivor is not replaced");

  // Every file reached the new brick; the old one is retained (retainData defaults to true).
  for (const [name, content] of Object.entries(files)) {
    assert.equal(readFileSync(`${newBrick}/${name}`, "utf8"), content, `${newBrick}/${name}`);
    assert.equal(readFileSync(`${oldBrick}/${name}`, "utf8"), content, `old ${oldBrick}/${name}`);
  }
  assert.match(readFileSync(`${stateDir}/node1/opt/etc/server.vol`, "utf8"), /option remote-host 127\.0\.0\.4 /);
  assert.equal(await listening("127.0.0.4", serverPort), true, "the new node serves");
  assert.equal(await listening("127.0.0.3", serverPort), false, "the old node's server is stopped");
  assert.ok(!existsSync(`${stateDir}/node1/opt/etc/server.vol.join-node2`), "the staged volfile is gone");

  // The mount works and replicates to the new node.
  assert.ok(mounted());
  writeFileSync(`${mountPoint}/after-replace.txt`, "after\n");
  for (const brick of [`${stateDir}/node1/brick`, newBrick]) assert.equal(readFileSync(`${brick}/after-replace.txt`, "utf8"), "after\n", brick);
  const outputs = JSON.parse((await pulumi(`stack output --json --stack ${stack}`, 60_000)).stdout) as { nodeStatus: Record<string, string> };
  assert.match(outputs.nodeStatus.node2!, new RegExp(`^node2 up 127\\.0\\.0\\.4:${serverPort} `));
});

test("a second pulumi up after the replacement changes nothing", async () => {
  const r = await pulumi(`up --yes --skip-preview --expect-no-changes --stack ${stack}`);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

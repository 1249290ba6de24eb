// The Cluster component with engine glusterfs through the real Pulumi engine (offline, see
// scripts/pulumi-engine.sh) against the real GlusterFS on this machine: up creates the volume over
// bricks on 127.0.0.2 and 127.0.0.3 and mounts it, a second up changes nothing, a preview that switches
// the engine is refused, destroy unmounts and deletes the volume but keeps the bricks.
// Ports: glusterd's 24007 and the bricks' 49152+ only (DNS mode hosts, no Apache).
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { glusterdPidfile } from "../../provider/engines/glusterfs-scripts";
import { hostPaths } from "../../provider/scripts";

const repoRoot = resolve(__dirname, "../..");
const ENGINE_TIMEOUT_MS = 15 * 60_000;
const PULUMI_TIMEOUT_MS = 5 * 60_000;

function engineEnv(stateDir: string): NodeJS.ProcessEnv {
  mkdirSync(stateDir, { recursive: true }); // also the language host's TMPDIR (it leaves a pipes dir per run)
  const bin = spawnSync("bash", [join(repoRoot, "scripts/pulumi-engine.sh")], { encoding: "utf8", timeout: ENGINE_TIMEOUT_MS });
  assert.equal(bin.status, 0, `scripts/pulumi-engine.sh failed:\n${bin.stderr}`);
  const binDir = bin.stdout.trim().split("\n").pop()!;
  const r = spawnSync("bash", ["-c", `. "${join(repoRoot, "scripts/pulumi-env.sh")}" && env -0`], {
    encoding: "utf8",
    env: { ...process.env, PULUMI_BACKEND_URL: `file://${stateDir}`, PULUMI_CONFIG_PASSPHRASE: "glusterfs-engine-test", TMPDIR: stateDir },
  });
  assert.equal(r.status, 0, r.stderr);
  const env = Object.fromEntries(r.stdout.split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return { ...env, PATH: `${binDir}:${env.PATH}` };
}

function gluster(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync("gluster", ["--mode=script", ...args], { encoding: "utf8", timeout: 60_000 });
}

/** The volumes glusterd lists, or undefined while it does not answer (busy with another transaction). */
function volumesLeft(): string[] | undefined {
  for (let i = 0; i < 25; i++) {
    const r = gluster("volume", "list");
    if (r.status === 0) return r.stdout.split("\n").filter((l) => l && !l.startsWith("No volumes"));
    spawnSync("sleep", ["0.4"]);
  }
  return undefined;
}

function mounted(mountPoint: string): string | undefined {
  return readFileSync("/proc/mounts", "utf8").split("\n").find((l) => l.split(" ")[1] === mountPoint);
}

function alive(pid: number): boolean {
  // A zombie is dead: glusterd daemonizes, so once killed it waits for PID 1 to reap it, and this
  // sandbox's PID 1 does not reap (a normal init would).
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

test("pulumi up/destroy of a Cluster with engine glusterfs; switching the engine is refused at preview", { timeout: ENGINE_TIMEOUT_MS + 8 * PULUMI_TIMEOUT_MS }, () => {
  const work = mkdtempSync("/var/tmp/gha-gfe-e2e-");
  const project = join(work, "project");
  const volume = `gha-gfe-e2e-${process.pid}`;
  const node = (name: string, address: string) => ({ name, address, brickDir: join(work, name, "brick"), installPrefix: join(work, name, "opt") });
  const nodes = [node("node1", "127.0.0.2"), node("node2", "127.0.0.3")];
  const mountPoint = join(work, "client", "mnt");
  const hostsFile = join(work, "hosts");
  const stateExisted = existsSync("/var/lib/glusterd/glusterd.info");
  spawnSync("mkdir", ["-p", project]);
  writeFileSync(hostsFile, "127.0.0.1\tlocalhost\n");
  symlinkSync(join(repoRoot, "node_modules"), join(project, "node_modules"));
  writeFileSync(join(project, "Pulumi.yaml"), "name: glusterfs-engine-e2e\nruntime: nodejs\n");
  // The component from this checkout's sources (the language host runs index.ts through ts-node, type-checked). A runtime
  // bundle is passed so a preview with engine bundled does not build one.
  writeFileSync(
    join(project, "index.ts"),
    `import * as pulumi from "@pulumi/pulumi";
import { Cluster } from ${JSON.stringify(join(repoRoot, "provider"))};
const engine = new pulumi.Config().require("engine") as "bundled" | "glusterfs";
const cluster = new Cluster("gfe", {
  engine,
  volumeName: engine === "glusterfs" ? ${JSON.stringify(volume)} : undefined,
  nodes: ${JSON.stringify(nodes.map((n) => ({ ...n, connection: { local: true } })))},
  client: { address: "127.0.0.1", connection: { local: true }, mountPoint: ${JSON.stringify(mountPoint)}, installPrefix: ${JSON.stringify(join(work, "client", "opt"))}, remoteHost: "127.0.0.2,127.0.0.3" },
  clusterName: "cluster.gfe.test",
  serviceManager: "process",
  dns: { mode: "hosts", hostsFile: ${JSON.stringify(hostsFile)} },
  options: { ioThreadCount: new pulumi.Config().getNumber("ioThreadCount") ?? 8 },
}, { runtimeBundle: { hash: "e2e", archivePath: "/nonexistent", version: "0" } });
export const nodeStatus = cluster.nodeStatus;
export const mountPoint = cluster.mountPoint;
export const records = cluster.records;
`,
  );
  const env = engineEnv(join(work, "state"));
  spawnSync("mkdir", ["-p", join(work, "state")]);
  const pulumi = (...args: string[]): SpawnSyncReturns<string> =>
    spawnSync("pulumi", [...args, "--non-interactive"], { cwd: project, env, encoding: "utf8", timeout: PULUMI_TIMEOUT_MS });
  const must = (...args: string[]): SpawnSyncReturns<string> => {
    const r = pulumi(...args);
    assert.equal(r.status, 0, `pulumi ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const ownGlusterd = (): number | undefined => {
    const f = glusterdPidfile(hostPaths(nodes[0]!.installPrefix));
    const pid = existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : NaN;
    return Number.isInteger(pid) && alive(pid) ? pid : undefined;
  };

  try {
    must("stack", "init", "test");
    must("config", "set", "engine", "glusterfs");
    must("up", "--yes");

    const status = JSON.parse(must("stack", "output", "nodeStatus", "--json").stdout) as Record<string, string>;
    assert.match(status.node1!, /^node1 glusterd up 10\.\d+ brick 127\.0\.0\.2:/);
    assert.match(status.node2!, /^node2 glusterd up 10\.\d+ brick 127\.0\.0\.3:/);
    assert.match(gluster("volume", "info", volume).stdout, /^Status: Started$/m);
    assert.match(mounted(mountPoint) ?? "", new RegExp(`^127\\.0\\.0\\.2:/${volume} \\S+ fuse\\.glusterfs `));
    assert.match(readFileSync(hostsFile, "utf8"), /^127\.0\.0\.2\tcluster\.gfe\.test\t/m, "the DNS step is the bundled engine's hosts mode");
    writeFileSync(join(mountPoint, "through-pulumi.txt"), "replicated\n");
    for (const n of nodes) assert.equal(readFileSync(join(n.brickDir, "through-pulumi.txt"), "utf8"), "replicated\n", `${n.name}'s brick`);

    const again = must("up", "--yes", "--expect-no-changes");
    assert.match(again.stdout, /unchanged/);

    // An option change is a live `gluster volume set` on node 1's volume step; the mount stays.
    const mountBefore = mounted(mountPoint);
    must("config", "set", "ioThreadCount", "12");
    const changed = must("up", "--yes");
    assert.match(changed.stdout, /gfe-node1-volume\s+updated|~\s+command:local:Command\s+gfe-node1-volume/);
    assert.match(changed.stdout, /1 updated/);
    assert.match(gluster("volume", "get", volume, "performance.io-thread-count").stdout, /^performance\.io-thread-count\s+12\s*$/m);
    assert.equal(mounted(mountPoint), mountBefore, "the client kept its mount");
    assert.equal(readFileSync(join(mountPoint, "through-pulumi.txt"), "utf8"), "replicated\n");

    must("config", "set", "engine", "bundled");
    const refused = pulumi("preview");
    assert.notEqual(refused.status, 0, "a preview switching the engine fails");
    assert.match(refused.stdout + refused.stderr, /engine: switching this cluster from engine "glusterfs" \(as deployed\) to "bundled" is refused: the data on the bricks would have to be migrated/);
    const refusedUp = pulumi("up", "--yes");
    assert.notEqual(refusedUp.status, 0, "so does an up");
    assert.match(mounted(mountPoint) ?? "", /fuse\.glusterfs/, "and nothing was touched");
    assert.equal(readFileSync(join(mountPoint, "through-pulumi.txt"), "utf8"), "replicated\n");
    must("config", "set", "engine", "glusterfs");

    const glusterd = ownGlusterd();
    must("destroy", "--yes");
    assert.equal(mounted(mountPoint), undefined, "unmounted");
    assert.notEqual(gluster("volume", "info", volume).status, 0, "the volume is deleted");
    for (const n of nodes) assert.equal(readFileSync(join(n.brickDir, "through-pulumi.txt"), "utf8"), "replicated\n", `${n.name}'s brick data retained`);
    assert.doesNotMatch(readFileSync(hostsFile, "utf8"), /cluster\.gfe\.test/, "records removed");
    if (glusterd !== undefined) assert.equal(alive(glusterd), false, "the glusterd the component started is stopped");
    must("stack", "rm", "--yes", "test");
  } finally {
    if (mounted(mountPoint)) spawnSync("umount", ["-l", mountPoint]);
    if (gluster("volume", "info", volume).status === 0) {
      gluster("volume", "stop", volume, "force");
      gluster("volume", "delete", volume);
    }
    const pid = ownGlusterd();
    if (pid !== undefined && volumesLeft()?.length === 0) {
      process.kill(pid, "SIGTERM");
      for (let i = 0; i < 50 && alive(pid); i++) spawnSync("sleep", ["0.2"]);
      if (!stateExisted && !alive(pid)) rmSync("/var/lib/glusterd", { recursive: true, force: true });
    }
    rmSync(work, { recursive: true, force: true });
  }
});

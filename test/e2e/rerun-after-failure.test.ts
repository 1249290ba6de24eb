// "Every remote step is idempotent and safe to re-run after a failure half-way" (issue #6), with the
// real Pulumi engine on examples/local: a first `pulumi up` fails in the middle because node2's server
// cannot listen (another program holds its address and port); once that program is gone, `pulumi up`
// completes without a duplicate server; a `pulumi up` killed with SIGKILL once both servers serve is
// completed by the next one; destroy leaves nothing running.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import { after, before, test } from "node:test";
import {
  digA as digAt, httpGet as httpGetAt, isMounted, processesMentioning, localExampleProject, runReport, until, type Run,
} from "../helpers/e2e-project";

// Our port range is 25100-25199.
const local = localExampleProject({ name: "rerun", stack: "rerun", ports: { server: 25110, dns: 25154, web: 25182 } });
const { project, stack, stateDir, mountPoint, ports, clusterName } = local;
const nodes = ["node1", "node2"] as const;
const report = runReport();
// Another program on node2's server address and port: node2's server cannot listen until it is gone.
const squatter = net.createServer((socket) => socket.destroy());
/** node1's supervisor as the failed first run left it. */
let node1Supervisor = 0;

const pulumi = (args: string, timeoutMs?: number): Run => project.pulumi(args, timeoutMs);
const up = (what: string): Promise<Run> => report.timed(what, () => project.pulumiAsync(`up --yes --skip-preview --stack ${stack}`));
const httpGet = () => httpGetAt(ports.web, clusterName);
const digA = (): string[] => digAt(clusterName, ports.dns);
const runDir = (n: string): string => `${stateDir}/${n}/opt/run`;

/** The supervisor of a node's server as its state file records it. */
const supervisorOf = (n: string): { supervisorPid: number; childPid: number | null; restarts: number; startedAt: string } =>
  JSON.parse(readFileSync(`${runDir(n)}/gluster-ha-${n}.state.json`, "utf8"));
/** Running processes of a node's server: its supervisors and its glusterfsd processes. */
const serverProcesses = (n: string): { supervisors: number[]; servers: number[] } => {
  const lines = processesMentioning(`${stateDir}/${n}/opt/`).filter((l) => l.includes("glusterfsd.js -f"));
  const pid = (l: string): number => Number(l.split(" ")[0]);
  return {
    supervisors: lines.filter((l) => l.includes(" service supervise ")).map(pid),
    servers: lines.filter((l) => !l.includes(" service supervise ")).map(pid),
  };
};

/** The stack's command resources by name, with the stdout of their last run (from the state). */
function stepOutputs(): Map<string, string> {
  const exported = JSON.parse(pulumi(`stack export --stack ${stack}`, 60_000).stdout) as {
    deployment: { resources?: { urn: string; type: string; outputs?: { stdout?: string } }[] };
  };
  return new Map(
    (exported.deployment.resources ?? [])
      .filter((r) => r.type === "command:local:Command")
      .map((r) => [r.urn.split("::").pop()!, r.outputs?.stdout ?? ""]),
  );
}

/** Per node, how many of its steps (bring-up, server step: the two that may start it) started its server when they last ran. */
function startsBySteps(steps: Map<string, string>): Record<string, number> {
  return Object.fromEntries(
    nodes.map((n) => {
      const text = [...steps].filter(([name]) => name.startsWith(`local-${n}-`)).map(([, out]) => out).join("\n");
      return [n, text.split("\n").filter((l) => l.startsWith(`gluster-ha-${n} started `)).length];
    }),
  );
}

/** The cluster works end to end: the site, both records, the mount, a write reaching both bricks; one server per node. */
async function assertClusterServes(marker: string): Promise<void> {
  const page = await httpGet();
  assert.equal(page.status, 200);
  assert.match(page.body, /<h1>gluster-ha<\/h1>/);
  for (const n of nodes) assert.equal(readFileSync(`${stateDir}/${n}/brick/www/index.html`, "utf8"), page.body);
  assert.deepEqual(digA(), ["127.0.0.2", "127.0.0.3"]);
  assert.ok(isMounted(mountPoint), `${mountPoint} mounted`);
  writeFileSync(`${mountPoint}/${marker}.txt`, `${marker}\n`);
  for (const n of nodes) assert.equal(readFileSync(`${stateDir}/${n}/brick/${marker}.txt`, "utf8"), `${marker}\n`, `${n}'s brick`);
  for (const n of nodes) {
    const { supervisors, servers } = serverProcesses(n);
    assert.equal(supervisors.length, 1, `${n}: one supervisor, got ${supervisors}`);
    assert.equal(servers.length, 1, `${n}: one glusterfsd, got ${servers}`);
    const state = supervisorOf(n);
    assert.deepEqual([state.supervisorPid, state.childPid], [supervisors[0], servers[0]], `${n}: the supervisor runs the one glusterfsd`);
    assert.equal(state.restarts, 0, `${n}: its glusterfsd never died and was restarted`);
  }
}

before(() => local.setUp());

after(async () => {
  squatter.close();
  await local.tearDown();
  report.print();
});

test("node2's server cannot listen: pulumi up fails half-way and says why", async () => {
  await new Promise<void>((resolve, reject) => squatter.once("error", reject).listen(ports.server, "127.0.0.3", resolve));
  const r = await up("failingUp");
  const out = `${r.stdout}\n${r.stderr}`;
  assert.notEqual(r.status, 0, out);
  // The failing step, and the server's own reason (from its log) rather than only the probe's last error.
  assert.match(out, /command:local:Command \(local-node2-[0-9a-f]{12}-bringup\):\n\s+error: exit status 1/);
  assert.match(out, /127\.0\.0\.3:25110 does not serve gfs; the end of \S+\/node2\/opt\/log\/glusterfsd\.log:/);
  assert.match(out, /cannot listen on 127\.0\.0\.3:25110: EADDRINUSE/);
  assert.doesNotMatch(out, /No such file or directory/, "no noise from a first deploy's missing volfile");
  // Half-way: the hosts are prepared, the runtime installed and node1 up; nothing after node2's bring-up ran.
  const steps = [...stepOutputs().keys()];
  for (const host of ["node1", "node2", "client"]) {
    assert.ok(steps.includes(`local-${host}-prepare`) && steps.includes(`local-${host}-runtime`), `${host} prepared: ${steps}`);
  }
  assert.ok(steps.some((s) => /^local-node1-[0-9a-f]{12}-bringup$/.test(s)), `node1 brought up: ${steps}`);
  for (const s of steps) assert.doesNotMatch(s, /^local-(node2-[0-9a-f]{12}-bringup|node[12]-[0-9a-f]{12}-join|node[12]-server|dns|client-mount|client-apache)$/, `${s} ran`);
  assert.ok(!isMounted(mountPoint));
  assert.deepEqual(digA(), []);
  const { supervisors, servers } = serverProcesses("node1");
  assert.equal(supervisors.length, 1);
  assert.equal(servers.length, 1);
  node1Supervisor = supervisors[0]!;
});

test("with the port free again, pulumi up completes; each server was started once", async () => {
  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  const fixedAt = Date.now();
  const r = await up("upAfterFix");
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  // Only what had not run is created; nothing done by the failed run is redone.
  assert.match(r.stdout, /local-node2-[0-9a-f]{12}-bringup\s+created/);
  assert.doesNotMatch(r.stdout, /\b(updated|replaced|deleted)\b/);
  await assertClusterServes("after-fix");
  // node1 kept the server its bring-up started in the failed run; node2's was started by one step, after the fix.
  assert.equal(serverProcesses("node1").supervisors[0], node1Supervisor, "node1's server was not restarted");
  assert.ok(Date.parse(supervisorOf("node2").startedAt) >= fixedAt - 1000);
  assert.deepEqual(startsBySteps(stepOutputs()), { node1: 1, node2: 1 });
});

test("a third pulumi up changes nothing", async () => {
  const r = await report.timed("noChangeUp", () => project.pulumiAsync(`up --yes --skip-preview --expect-no-changes --stack ${stack}`), false);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout, /updated|created|replaced|deleted/);
});

/** Pids of the running `pulumi` CLI (the engine) in our project directory. */
function pulumiCli(): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      return /(^|\/)pulumi$/.test(argv[0]!) && argv.includes("up") && readFileSync(`/proc/${pid}/environ`, "utf8").includes(project.backendDir);
    } catch {
      return false;
    }
  });
}

/** A process exists and is not a zombie. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The pulumi CLI and its descendants (language host, program, provider plugin, the step it runs), not the services it started. */
function pulumiTree(): number[] {
  const children = new Map<number, number[]>();
  const cmdline = new Map<number, string>();
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(p)]);
      cmdline.set(Number(p), readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " "));
    } catch {
      // gone meanwhile
    }
  }
  const tree: number[] = [];
  const walk = (pid: number): void => {
    if (cmdline.get(pid)?.includes(" service supervise ")) return; // detached: a service outlives pulumi
    tree.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  for (const pid of pulumiCli()) walk(pid);
  return tree;
}

/**
 * Processes of the tree that a step runs (children of the command provider plugin). Pulumi records a
 * step as a pending operation before it starts it, so a kill while one runs leaves one; between two steps
 * there is none to leave.
 */
function runningSteps(tree: number[]): number[] {
  const inTree = new Set(tree);
  return tree.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      return inTree.has(ppid) && readFileSync(`/proc/${ppid}/cmdline`, "utf8").includes("pulumi-resource-command");
    } catch {
      return false;
    }
  });
}

/**
 * The local backend rewrites a stack's state file in place: a SIGKILL landing during that write leaves
 * it empty ("failed to load checkpoint: EOF"), and Pulumi's recovery is the copy it kept before the
 * write (<stack>.json.bak). Returns whether it had to be restored.
 */
function restoreTruncatedCheckpoint(backendDir: string, stackName: string): boolean {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${d}/${e.name}`);
      else if (e.name === `${stackName}.json`) found.push(`${d}/${e.name}`);
    }
  };
  walk(`${backendDir}/.pulumi/stacks`);
  for (const f of found) {
    if (readFileSync(f).length > 0 || !existsSync(`${f}.bak`)) continue;
    writeFileSync(f, readFileSync(`${f}.bak`));
    return true;
  }
  return false;
}

test("pulumi killed (SIGKILL) once both servers serve: after `pulumi cancel` the next pulumi up completes them", async (t) => {
  const destroyed = await report.timed("destroyBeforeKill", () => project.pulumiAsync(`destroy --yes --skip-preview --stack ${stack}`));
  assert.equal(destroyed.status, 0, `${destroyed.stdout}\n${destroyed.stderr}`);
  assert.deepEqual(processesMentioning(stateDir), []);
  const running = up("killedUp");
  const stamps = nodes.map((n) => `${runDir(n)}/gluster-ha-${n}.serving`);
  await until("both servers serving", () => stamps.every((f) => existsSync(f)), 120_000);
  // As when the machine or CI job running pulumi dies: the CLI, its plugins and the step they run —
  // while a step runs (the steps after the servers' include the client's mount, Apache and DNS).
  let tree: number[] = [];
  await until("a step running", () => runningSteps((tree = pulumiTree())).length > 0, 60_000, 5);
  assert.ok(tree.length > 0, "pulumi up still running when both servers serve");
  for (const pid of tree) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  const killed = await running;
  assert.notEqual(killed.status, 0);
  await until("the killed processes gone", () => tree.every((pid) => !isRunning(pid)), 10_000);
  const atKill = Object.fromEntries(nodes.map((n) => [n, serverProcesses(n).supervisors]));
  // What pulumi left: the steps it was running as pending operations, and its lock on the stack.
  const restored = restoreTruncatedCheckpoint(project.backendDir, stack);
  if (restored) t.diagnostic("pulumi was killed while writing its state file: restored from its .bak, as Pulumi advises");
  const exported = JSON.parse(pulumi(`stack export --stack ${stack}`, 60_000).stdout) as { deployment: { pending_operations?: unknown[] } };
  if (!restored) assert.ok((exported.deployment.pending_operations ?? []).length > 0, "killed in the middle: operations pending");
  const locked = pulumi(`up --yes --skip-preview --stack ${stack}`);
  assert.notEqual(locked.status, 0);
  assert.match(locked.stderr, /the stack is currently locked by 1 lock\(s\)\..*`pulumi cancel`/);
  const cancel = pulumi(`cancel --yes --stack ${stack}`, 60_000);
  assert.equal(cancel.status, 0, cancel.stderr);
  // The next up warns about the interrupted steps, drops them and runs them again.
  const r = await up("upAfterKill");
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  if (!restored) assert.match(r.stdout, /pending operations from previous deployment\.\n\s+\* urn:\S+, interrupted while creating/);
  await assertClusterServes("after-kill");
  for (const n of nodes) assert.deepEqual(serverProcesses(n).supervisors, atKill[n], `${n}'s server was not started again`);
});

test("pulumi destroy leaves nothing running; the brick data stays", async () => {
  const r = await report.timed("destroy", () => project.pulumiAsync(`destroy --yes --skip-preview --stack ${stack}`));
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(processesMentioning(stateDir), []);
  assert.ok(!isMounted(mountPoint));
  assert.equal((await httpGet().catch(() => ({ status: 0 }))).status, 0, "the site no longer answers");
  assert.deepEqual(digA(), []);
  for (const host of ["client", "node1", "node2"]) assert.ok(!existsSync(`${stateDir}/${host}/opt`), `${host}: runtime removed`);
  for (const n of nodes) {
    for (const marker of ["after-fix", "after-kill"]) assert.equal(readFileSync(`${stateDir}/${n}/brick/${marker}.txt`, "utf8"), `${marker}\n`);
  }
});

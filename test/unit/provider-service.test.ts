// `gluster-ha service`: the supervisor the component uses on hosts without systemd. Real processes:
// it daemonizes, writes pidfiles, restarts a dead child with backoff, stops with SIGTERM then SIGKILL.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { restartDelayMs } from "../../runtime/service/supervisor";

const CLI = join(__dirname, "..", "..", "runtime", "cli", "gluster-ha.ts");
const runDir = mkdtempSync(join(tmpdir(), "gha-service-"));
const started: string[] = [];

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, "service", ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const state = (name: string): { supervisorPid: number; childPid: number | null; restarts: number } =>
  JSON.parse(readFileSync(join(runDir, `${name}.state.json`), "utf8"));
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

after(() => {
  for (const name of started) cli("stop", name, "--run-dir", runDir, "--stop-timeout", "1");
  rmSync(runDir, { recursive: true, force: true });
});

const sleeper = [process.execPath, "-e", "setInterval(() => {}, 1000)"];

test("start daemonizes, writes the pidfile; a second start leaves it alone", () => {
  started.push("s1");
  const r = cli("start", "s1", "--run-dir", runDir, "--", ...sleeper);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^s1 started pid=\d+\n$/);
  const pid = Number(readFileSync(join(runDir, "s1.pid"), "utf8"));
  assert.ok(alive(pid));
  assert.ok(alive(state("s1").childPid!));
  const again = cli("start", "s1", "--run-dir", runDir, "--", ...sleeper);
  assert.equal(again.status, 0);
  assert.equal(again.stdout, `s1 already running pid=${pid}\n`);
  const status = cli("status", "s1", "--run-dir", runDir);
  assert.equal(status.status, 0);
  assert.match(status.stdout, new RegExp(`^s1 running pid=${pid} child=\\d+ restarts=0\\n$`));
});

test("a child that dies is restarted, and the restart is counted", async () => {
  const before = state("s1");
  process.kill(before.childPid!, "SIGKILL");
  await until("a new child", () => {
    const s = state("s1");
    return s.childPid !== null && s.childPid !== before.childPid && alive(s.childPid);
  });
  assert.equal(state("s1").restarts, 1);
  assert.equal(state("s1").supervisorPid, before.supervisorPid);
});

test("restart without a command reuses the recorded one", () => {
  const before = state("s1");
  const r = cli("restart", "s1", "--run-dir", runDir);
  assert.equal(r.status, 0, r.stderr);
  const now = state("s1");
  assert.notEqual(now.supervisorPid, before.supervisorPid);
  assert.ok(!alive(before.supervisorPid) && !alive(before.childPid!));
  assert.ok(alive(now.childPid!));
});

test("stop ends supervisor and child, removes the pidfile; status then exits 3; stop again is fine", async () => {
  const s = state("s1");
  const r = cli("stop", "s1", "--run-dir", runDir);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "s1 stopped\n");
  assert.ok(!alive(s.supervisorPid));
  await until("child gone", () => !alive(s.childPid!));
  assert.ok(!existsSync(join(runDir, "s1.pid")));
  assert.equal(cli("status", "s1", "--run-dir", runDir).status, 3);
  const again = cli("stop", "s1", "--run-dir", runDir);
  assert.equal(again.status, 0);
  assert.equal(again.stdout, "s1 was not running\n");
});

test("start without a command after a stop reuses the recorded one (the seed's failover: stop, then start)", () => {
  const r = cli("start", "s1", "--run-dir", runDir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^s1 started pid=\d+\n$/);
  assert.ok(alive(state("s1").childPid!));
  assert.equal(cli("stop", "s1", "--run-dir", runDir).status, 0);
});

test("a child that ignores SIGTERM is killed after the stop timeout", async () => {
  started.push("stubborn");
  const r = cli("start", "stubborn", "--run-dir", runDir, "--stop-timeout", "1", "--", process.execPath, "-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)");
  assert.equal(r.status, 0, r.stderr);
  const s = state("stubborn");
  const t0 = Date.now();
  assert.equal(cli("stop", "stubborn", "--run-dir", runDir, "--stop-timeout", "1").status, 0);
  await until("stubborn child gone", () => !alive(s.childPid!));
  const took = Date.now() - t0;
  assert.ok(took >= 900, `stopped after ${took} ms: SIGKILL came before the timeout`);
  assert.ok(!alive(s.supervisorPid));
});

test("bad usage exits 2", () => {
  assert.equal(cli("start", "x", "--run-dir", runDir).status, 2, "start without a command");
  assert.equal(cli("frobnicate", "x").status, 2);
  assert.equal(cli("start", "bad/name", "--", "true").status, 2);
});

test("restart backoff doubles from 0.5 s up to 30 s", () => {
  assert.deepEqual([1, 2, 3, 4, 10, 20].map(restartDelayMs), [500, 1000, 2000, 4000, 30_000, 30_000]);
});

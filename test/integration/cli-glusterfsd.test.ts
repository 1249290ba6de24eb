// The glusterfsd CLI: volfile check, pidfile, structured logs, SIGHUP reload, SIGUSR1 statedump,
// SIGTERM stop, --daemon. The graph here is a local brick (protocol/server is tested with the network).
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { threadPoolSize } from "../../runtime/cli/thread-pool";
import { ensureBuilt, GLUSTERFSD_BIN, posixLocksVolfile, waitForExit } from "../helpers/mount";

const SEED = resolve(__dirname, "../fixtures/seed");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

async function waitForLog(file: string, msg: string, ms = 10_000): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const hit = logLines(file).find((l) => l.msg === msg);
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`no "${msg}" in ${file}:\n${existsSync(file) ? readFileSync(file, "utf8") : ""}`);
    await sleep(50);
  }
}

describe("glusterfsd CLI", () => {
  let base: string;
  const children: ChildProcess[] = [];
  const pids: number[] = [];

  before(async () => {
    ensureBuilt();
    base = await mkdtemp("/var/tmp/gha-cli-glusterfsd-");
    await mkdir(join(base, "brick"));
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    for (const p of pids) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await rm(base, { recursive: true, force: true });
  });

  it("--volfile-check fails the seed's node1-server.vol at line 35 and passes node2", () => {
    const bad = spawnSync(process.execPath, [GLUSTERFSD_BIN, "--volfile-check", "-f", join(SEED, "node1-server.vol")], { encoding: "utf8" });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /node1-server\.vol:35:/);
    const good = spawnSync(process.execPath, [GLUSTERFSD_BIN, "--volfile-check", "-f", join(SEED, "node2-server.vol")], { encoding: "utf8" });
    assert.equal(good.status, 0, good.stderr);
  });

  it("runs in the foreground with a pidfile; HUP reloads, USR1 dumps, TERM stops and removes the pidfile", async () => {
    const vol = join(base, "server.vol");
    const log = join(base, "fg.log");
    const pidfile = join(base, "fg.pid");
    await writeFile(vol, posixLocksVolfile(join(base, "brick")));
    const child = spawn(process.execPath, [GLUSTERFSD_BIN, "-f", vol, "--pidfile", pidfile, "--log-file", log, "--log-level", "DEBUG"], { stdio: "ignore" });
    children.push(child);
    const started = await waitForLog(log, "started");
    assert.equal(started.volume, "locks");
    assert.equal(readFileSync(pidfile, "utf8").trim(), String(child.pid));

    // A second server with the same pidfile is refused while the first lives.
    const second = spawnSync(process.execPath, [GLUSTERFSD_BIN, "-f", vol, "--pidfile", pidfile], { encoding: "utf8" });
    assert.equal(second.status, 1);
    assert.match(second.stderr, /EEXIST|is running/);

    await writeFile(vol, posixLocksVolfile(join(base, "brick")).replace("subvolumes brick", "option mandatory-locks on\n  subvolumes brick"));
    child.kill("SIGHUP");
    const reloaded = await waitForLog(log, "volfile reloaded");
    assert.ok(Array.isArray(reloaded.applied) && Array.isArray(reloaded.needsRestart));
    assert.ok([...(reloaded.applied as string[]), ...(reloaded.needsRestart as string[])].some((x) => x.startsWith("locks:")), JSON.stringify(reloaded));

    child.kill("SIGUSR1");
    const dumped = await waitForLog(log, "statedump written");
    const dump = JSON.parse(readFileSync(dumped.path as string, "utf8"));
    await rm(dumped.path as string, { force: true });
    assert.deepEqual(Object.keys(dump.volumes).sort(), ["brick", "locks"]);
    assert.equal(dump.top, "locks");

    child.kill("SIGTERM");
    assert.equal(await waitForExit(child, 10_000), 0);
    assert.equal(existsSync(pidfile), false);
    assert.ok(logLines(log).some((l) => l.msg === "stopped" && l.volume === "locks"));
  });

  it("sizes libuv's thread pool to the cores (2 to 4 threads) unless UV_THREADPOOL_SIZE says otherwise", async () => {
    // Started servers differ in threads only by their pools (libuv starts them all at first use: the brick's start).
    const threadsOf = async (name: string, env: Record<string, string>): Promise<number> => {
      await mkdir(join(base, `${name}-brick`));
      const vol = join(base, `${name}.vol`);
      const log = join(base, `${name}.log`);
      await writeFile(vol, posixLocksVolfile(join(base, `${name}-brick`)));
      const { UV_THREADPOOL_SIZE: _inherited, ...parentEnv } = process.env;
      const child = spawn(process.execPath, [GLUSTERFSD_BIN, "-f", vol, "--log-file", log], { stdio: "ignore", env: { ...parentEnv, ...env } });
      children.push(child);
      await waitForLog(log, "started");
      const n = readdirSync(`/proc/${child.pid}/task`).length;
      child.kill("SIGTERM");
      assert.equal(await waitForExit(child, 10_000), 0);
      return n;
    };
    const withFour = await threadsOf("pool4", { UV_THREADPOOL_SIZE: "4" });
    const chosen = await threadsOf("pool-default", {});
    const withThree = await threadsOf("pool3", { UV_THREADPOOL_SIZE: "3" });
    assert.equal(withFour - chosen, 4 - threadPoolSize(availableParallelism()), `threads: ${withFour} with 4, ${chosen} by default`);
    assert.equal(withFour - withThree, 1, "an operator's UV_THREADPOOL_SIZE is kept");
  });

  it("--daemon detaches once started; a bad volfile fails with exit 1 naming file:line", async () => {
    const vol = join(base, "daemon.vol");
    const pidfile = join(base, "daemon.pid");
    await writeFile(vol, posixLocksVolfile(join(base, "brick")));
    const r = spawnSync(process.execPath, [GLUSTERFSD_BIN, "-f", vol, "--daemon", "--pidfile", pidfile, "--log-file", join(base, "d.log")], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const pid = Number(readFileSync(pidfile, "utf8"));
    pids.push(pid);
    process.kill(pid, 0); // alive
    process.kill(pid, "SIGTERM");
    const end = Date.now() + 10_000;
    while (existsSync(pidfile) && Date.now() < end) await sleep(50);
    assert.equal(existsSync(pidfile), false);

    const bad = join(base, "bad.vol");
    await writeFile(bad, "volume a\n  type storage/posix\nend-volume\n");
    const b = spawnSync(process.execPath, [GLUSTERFSD_BIN, "-f", bad, "--daemon", "--log-file", join(base, "bad.log")], { encoding: "utf8", timeout: 20_000 });
    assert.equal(b.status, 1);
    assert.match(b.stderr, /bad\.vol:\d+:/);
  });
});

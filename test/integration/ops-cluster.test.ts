// Operability against the seed's two servers as real glusterfsd processes (127.0.0.2 / 127.0.0.3):
// status (both up, then one down), server metrics after a known number of fops, a statedump showing
// a lock a test holds, the log level changed at runtime, and a live transport-timeout change (SIGHUP)
// that shortens how long a silent peer takes to be declared dead — all without a restart.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { Fd } from "../../runtime/core/types";
import { seedServerVolfile, waitUntil } from "./afr-seed-cluster";
import { dropTraffic, spawnHelper, startServer, stopAllServers, tempDir, waitForLine, type ServerProc } from "../helpers/servers";
import { REPO } from "../helpers/mount";

const PORT = 24601;
const METRICS = [24602, 24603] as const;
const CLI = join(REPO, "dist/bin/gluster-ha.js");
const CTX = { uid: 0, gid: 0, pid: process.pid, lkOwner: "ops-test", client: "local" };

interface LogLine { msgid?: string; msg: string; time: number; [k: string]: unknown }

function logLines(p: ServerProc): LogLine[] {
  return readFileSync(p.logFile, "utf8").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as LogLine);
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of one sample (labels in any order), 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

function clientVolfile(volume: string): string {
  return [
    "volume c", "  type protocol/client", "  option remote-host 127.0.0.2", `  option remote-port ${PORT}`,
    `  option remote-subvolume ${volume}`, "  option transport-timeout 5", "end-volume", "",
  ].join("\n");
}

describe("operability on a two-node seed cluster", () => {
  const dirs = [tempDir("gha-ops-n1-"), tempDir("gha-ops-n2-")];
  const volfiles = dirs.map((d) => join(d, "server.vol"));
  const texts = [1, 2].map((n) =>
    seedServerVolfile(n as 1 | 2, { brick: join(dirs[n - 1]!, "ha"), port: PORT, afrOptions: ["heal-timeout 600"] })
      .replace(/(option listen-port \d+\n)/, `$1option metrics-port ${METRICS[n - 1]}\n`));
  const nodes: (ServerProc | undefined)[] = [undefined, undefined];
  let client: Graph | undefined;
  const dumps: string[] = [];
  let partition: { remove(): void } | undefined;

  before(async () => {
    nodes[0] = await startServer(texts[0]!, "127.0.0.2", PORT, join(dirs[0]!, "ha"), dirs[0]);
    nodes[1] = await startServer(texts[1]!, "127.0.0.3", PORT, join(dirs[1]!, "ha"), dirs[1]);
    // Both AFRs see their peer before the tests start.
    const peersUp = () => [0, 1].every((i) => logLines(nodes[i]!).some((l) => l.msgid === "AFR_CHILD_UP" && String(l.child).includes("node")));
    assert.ok(await waitUntil(peersUp, 15_000), "the servers did not connect to each other");
    client = Graph.fromText(clientVolfile("gfs"), "client.vol", { log: silentLogger() });
    await client.start();
  });

  after(async () => {
    partition?.remove();
    await client?.stop();
    await stopAllServers();
    for (const d of dumps) rmSync(d, { force: true });
  });

  test("status lists both nodes up with address, port, clients, brick space and no pending heals", () => {
    const r = cli(["status", "-f", volfiles[0]!, "--json"]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const { nodes: st } = JSON.parse(r.stdout) as { nodes: { name: string; address: string; port: number; up: boolean; clients: number; brick: { totalBytes: number; availBytes: number }; pendingHeal: number; splitBrain: number; replicas: { up: number; total: number; down: string[] } }[] };
    assert.deepEqual(st.map((n) => [n.name, n.address, n.port, n.up]), [["gfs-ds-locks", "127.0.0.2", PORT, true], ["gfs-node2-ds", "127.0.0.3", PORT, true]]);
    for (const n of st) {
      assert.ok(n.clients >= 1, `${n.name}: the peer's replication link counts as a client`);
      assert.ok(n.brick.totalBytes > 0 && n.brick.availBytes > 0 && n.brick.availBytes <= n.brick.totalBytes);
      assert.equal(n.pendingHeal, 0);
      assert.equal(n.splitBrain, 0);
      assert.deepEqual(n.replicas, { up: 2, total: 2, down: [] }, `${n.name} reaches itself and its peer`);
    }
    const table = cli(["status", "--server", `127.0.0.2:${PORT}/gfs-ds-locks`, "--server", `127.0.0.3:${PORT}/gfs-ds-locks`]);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^NODE\s+ADDRESS\s+PORT\s+STATUS\s+REPLICAS\s+CLIENTS\s+BRICK FREE/);
    assert.equal(table.stdout.split("\n").filter((l) => /\s+up\s+/.test(l)).length, 2, table.stdout);
  });

  test("server metrics count exactly the fops and bytes a client sent", async () => {
    const before = await scrape(METRICS[0]);
    const top = client!.top;
    const fd = new Fd("/metered", 0o2 | 0o100);
    await top.create(CTX, { path: "/metered" }, fd.flags, 0o644, fd);
    assert.equal(await top.write(CTX, fd, Buffer.alloc(1000, 7), 0), 1000);
    for (let i = 0; i < 5; i++) await top.stat(CTX, { path: "/metered" });
    await assert.rejects(top.stat(CTX, { path: "/absent" }), { code: "ENOENT" });
    await top.release(CTX, fd);
    const now = await scrape(METRICS[0]);
    const delta = (name: string, labels: Record<string, string>) => sample(now, name, labels) - sample(before, name, labels);
    assert.equal(delta("gluster_ha_fops_total", { volume: "gfs", fop: "stat", result: "ok" }), 5);
    assert.equal(delta("gluster_ha_fops_total", { volume: "gfs", fop: "stat", result: "ENOENT" }), 1);
    assert.equal(delta("gluster_ha_fops_total", { volume: "gfs", fop: "create", result: "ok" }), 1);
    assert.equal(delta("gluster_ha_fops_total", { volume: "gfs", fop: "write", result: "ok" }), 1);
    assert.equal(delta("gluster_ha_written_bytes_total", { volume: "gfs" }), 1000);
    assert.equal(delta("gluster_ha_fop_duration_seconds_count", { volume: "gfs", fop: "stat" }), 6);
    // Replication: node1's AFR wrote the same through its link to node2, which node2 counts.
    const peer = await scrape(METRICS[1]);
    assert.ok(sample(peer, "gluster_ha_written_bytes_total", { volume: "gfs-ds-locks" }) >= 1000);
    assert.equal(sample(now, "gluster_ha_connections", { volume: "gfs" }), 1, "this test's client");
    assert.equal(sample(now, "gluster_ha_connections", { volume: "gfs-node2-ds" }), 1, "node1's link to node2");
    // AFR keeps a burst's changelog marks on the directory for post-op-delay (delayed post-op): the
    // backlog drains to 0 shortly after the burst, without any heal.
    assert.ok(
      await waitUntil(async () => sample(await scrape(METRICS[0]), "gluster_ha_heal_pending", { volume: "gfs-ds-afr" }) === 0, 5000, 100),
      "heal backlog back to 0 after the burst",
    );
    assert.equal(sample(now, "gluster_ha_split_brain", { volume: "gfs-ds-afr" }), 0);
  });

  test("SIGUSR1 writes a statedump showing the lock a test holds, and who holds it", async () => {
    const dir = tempDir("gha-ops-lock-");
    const vol = join(dir, "client.vol");
    writeFileSync(vol, clientVolfile("gfs"));
    const holder = spawnHelper(["lock-holder", vol, "/locked"]);
    await waitForLine(holder, /^locked$/);
    const n1 = nodes[0]!;
    n1.child.kill("SIGUSR1");
    let path: string | undefined;
    await waitUntil(() => (path = logLines(n1).find((l) => l.msgid === "STATEDUMP_WRITTEN")?.path as string | undefined) !== undefined, 5000);
    assert.ok(path && existsSync(path), "STATEDUMP_WRITTEN names the dump file");
    dumps.push(path);
    const dump = JSON.parse(readFileSync(path, "utf8")) as { pid: number; volumes: Record<string, { type: string; up: boolean; options: Record<string, unknown>; state: Record<string, any> }> };
    assert.equal(dump.pid, n1.child.pid);
    const locks = dump.volumes["gfs-ds-locks"]!;
    assert.equal(locks.type, "features/posix-locks");
    const gfid = Object.entries(locks.state.paths as Record<string, string>).find(([, p]) => p === "/locked")?.[0];
    assert.ok(gfid, `the dump names the locked file: ${JSON.stringify(locks.state.paths)}`);
    const granted = (locks.state.fcntl as Record<string, { granted: { type: string; owner: string; client: string }[] }>)[gfid]!.granted;
    assert.equal(granted.length, 1);
    assert.equal(granted[0]!.type, "wr");
    assert.match(granted[0]!.owner, new RegExp(`holder-${holder.pid}`), "the holder's lock owner");
    assert.ok((locks.state.inodelk as Record<string, Record<string, unknown>>)["test-domain"]?.[gfid], "the inodelk in its domain");
    // Every translator is there with its type and options; the peer link shows its timing.
    assert.deepEqual(Object.keys(dump.volumes).sort(), ["gfs", "gfs-ds", "gfs-ds-afr", "gfs-ds-locks", "gfs-node2-ds", "server"]);
    assert.equal(dump.volumes["gfs-node2-ds"]!.state.transportTimeout, 5);
    assert.equal(dump.volumes["gfs-ds-afr"]!.state.children.length, 2);
    assert.ok(Array.isArray(dump.volumes.server!.state.connections));
    holder.kill("SIGKILL");
  });

  test("gluster-ha log-level changes a running server's level (info lines stop at warn)", async () => {
    const n1 = nodes[0]!;
    const r = cli(["log-level", String(n1.child.pid), "WARNING"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(logLines(n1).some((l) => l.msgid === "LOG_LEVEL_CHANGED" && l.to === "warn"));
    const mark = Date.now();
    assert.equal(cli(["status", "-f", volfiles[0]!, "--json"]).status, 0);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(logLines(n1).filter((l) => l.time >= mark && l.msgid === "PS_CLIENT_ATTACHED").length, 0, "info lines suppressed at warn");
    assert.equal(cli(["log-level", String(n1.child.pid), "debug"]).status, 0);
    const mark2 = Date.now();
    assert.equal(cli(["status", "-f", volfiles[0]!, "--json"]).status, 0);
    assert.ok(await waitUntil(() => logLines(n1).some((l) => l.time >= mark2 && l.msgid === "PS_CLIENT_ATTACHED"), 3000));
    assert.equal(cli(["log-level", "999999999", "debug"]).status, 1);
    assert.equal(cli(["log-level", String(n1.child.pid), "loud"]).status, 2);
  });

  test("SIGHUP applies transport-timeout live: a silent peer is declared dead after the new timeout", async () => {
    const n1 = nodes[0]!;
    const pid = n1.child.pid;
    // transport-timeout of node1's link to node2: 5 s -> 1 s (live); the brick directory: needs a restart.
    const changed = texts[0]!.replace("option transport-timeout 5", "option transport-timeout 1")
      .replace(`option directory ${join(dirs[0]!, "ha")}`, `option directory ${join(dirs[0]!, "elsewhere")}`);
    assert.notEqual(changed, texts[0]);
    writeFileSync(volfiles[0]!, changed);
    const mark = Date.now();
    n1.child.kill("SIGHUP");
    let reload: LogLine | undefined;
    assert.ok(await waitUntil(() => (reload = logLines(n1).find((l) => l.time >= mark && l.msgid === "VOLFILE_RELOADED")) !== undefined, 5000));
    assert.deepEqual(reload!.applied, ["gfs-node2-ds:transport-timeout"]);
    assert.deepEqual(reload!.needsRestart, ["gfs-ds:directory"]);
    assert.ok(logLines(n1).some((l) => l.time >= mark && l.msgid === "VOLFILE_NEEDS_RESTART"));
    // A healthy peer stays connected under the shorter timeout (pings keep it alive).
    await new Promise((res) => setTimeout(res, 2500));
    assert.deepEqual(logLines(n1).filter((l) => l.time >= mark && l.msgid === "PC_DISCONNECTED"), [], "no spurious disconnect after the change");

    const t0 = Date.now();
    partition = dropTraffic("127.0.0.3", PORT);
    let down: LogLine | undefined;
    const seen = await waitUntil(() => (down = logLines(n1).find((l) => l.time >= t0 && l.msgid === "PC_DISCONNECTED")) !== undefined, 8000, 50);
    const took = (down?.time ?? Date.now()) - t0;
    partition.remove();
    partition = undefined;
    assert.ok(seen, "node1 never declared the silent peer dead");
    assert.match(String(down!.reason), /transport-timeout \(1s\)/);
    assert.ok(took < 3500, `declared dead after ${took} ms: the old 5 s timeout still applies`);
    assert.equal(n1.child.pid, pid);
    assert.ok(n1.alive(), "no restart");
    // The brick directory change was not half-applied: the old brick still serves.
    const st = await client!.top.stat(CTX, { path: "/metered" });
    assert.equal(st.size, 1000);
    assert.ok(await waitUntil(() => logLines(n1).some((l) => l.time >= t0 && l.msgid === "PC_CONNECTED" && l.volume === "gfs-node2-ds" && l.remoteVolume === "gfs-ds-locks"), 15_000), "node1 reconnected to node2");
  });

  test("status with one node down: it is DOWN, the survivor reports the pending heals", async () => {
    await nodes[1]!.kill();
    nodes[1] = undefined;
    const top = client!.top;
    const fd = new Fd("/while-down", 0o2 | 0o100);
    await top.create(CTX, { path: "/while-down" }, fd.flags, 0o644, fd);
    await top.write(CTX, fd, Buffer.from("written while node2 was down"), 0);
    await top.release(CTX, fd);
    const r = cli(["status", "-f", volfiles[0]!, "--json", "--timeout", "2"]);
    assert.equal(r.status, 1, "exit 1: a node is down");
    const { nodes: st } = JSON.parse(r.stdout) as { nodes: { name: string; up: boolean; error?: string; pendingHeal?: number }[] };
    assert.equal(st[0]!.up, true);
    assert.ok((st[0]!.pendingHeal ?? 0) >= 1, `pending heals on node1: ${st[0]!.pendingHeal}`);
    assert.equal(st[1]!.up, false);
    assert.match(st[1]!.error ?? "", /ECONNREFUSED/);
    const table = cli(["status", "-f", volfiles[0]!]);
    assert.equal(table.status, 1);
    assert.match(table.stdout, /gfs-node2-ds\s+127\.0\.0\.3\s+24601\s+DOWN/);
    const m = await scrape(METRICS[0]);
    assert.ok(sample(m, "gluster_ha_heal_pending", { volume: "gfs-ds-afr" }) >= 1);
    assert.equal(sample(m, "gluster_ha_connections", { volume: "gfs-node2-ds" }), 0);
  });
});

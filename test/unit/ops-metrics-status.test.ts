import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { metrics } from "../../runtime/core/metrics";
import { silentLogger } from "../../runtime/core/log";
import { FopError } from "../../runtime/core/errors";
import { Fd, type CallCtx, type Iatt, type Loc } from "../../runtime/core/types";
import { Xlator } from "../../runtime/core/xlator";
import { IoStats } from "../../runtime/xlators/debug/io-stats";
import { parseVolfile, checkVolfile } from "../../runtime/volfile";
import { readFileSync } from "node:fs";
import { formatStatus, nodesOfVolfile } from "../../runtime/cli/commands/status";
import { seedServerVolfile } from "../integration/afr-seed-cluster";

const CTX: CallCtx = { uid: 0, gid: 0, pid: 1, lkOwner: "t", client: "local" };

/** A child that answers stat for "/ok" and ENOENT otherwise, and reads 10 bytes. */
class Fixed extends Xlator {
  override async stat(_ctx: CallCtx, loc: Loc): Promise<Iatt> {
    if (loc.path !== "/ok") throw new FopError("ENOENT", "no", { xlator: this.name, fop: "stat" });
    return { gfid: "g" } as unknown as Iatt;
  }
  override async read(): Promise<Buffer> {
    return Buffer.alloc(10);
  }
}

async function value(name: string, labels: Record<string, string>): Promise<number> {
  const m = await metrics().registry.getSingleMetric(name)!.get();
  const v = m.values.find((x) => Object.entries(labels).every(([k, l]) => String(x.labels[k]) === l));
  return v?.value ?? 0;
}

test("io-stats counts every fop by result, times it, and adds up bytes read", async () => {
  const log = silentLogger();
  const child = new Fixed({ name: "fixed", type: "test/fixed", options: {}, children: [], log, graph: new Map() });
  const io = new IoStats({ name: "io", type: "debug/io-stats", options: { "volume-label": "unit-vol" }, children: [child], log, graph: new Map() });
  for (let i = 0; i < 3; i++) await io.stat(CTX, { path: "/ok" });
  await assert.rejects(io.stat(CTX, { path: "/nope" }), { code: "ENOENT" });
  await io.read(CTX, new Fd("/ok", 0), 10, 0);
  await io.read(CTX, new Fd("/ok", 0), 10, 10);
  assert.equal(await value("gluster_ha_fops_total", { volume: "unit-vol", fop: "stat", result: "ok" }), 3);
  assert.equal(await value("gluster_ha_fops_total", { volume: "unit-vol", fop: "stat", result: "ENOENT" }), 1);
  assert.equal(await value("gluster_ha_read_bytes_total", { volume: "unit-vol" }), 20);
  const h = await metrics().registry.getSingleMetric("gluster_ha_fop_duration_seconds")!.get();
  const count = (h.values as { metricName?: string; labels: Record<string, unknown>; value: number }[]).find((x) => x.metricName === "gluster_ha_fop_duration_seconds_count" && x.labels.volume === "unit-vol" && x.labels.fop === "stat");
  assert.equal(count?.value, 4);
});

test("scrape-time sources fill the heal gauges once per scrape; the endpoint serves /metrics only", async () => {
  let calls = 0;
  const drop = metrics().addSource(async () => {
    calls++;
    metrics().healBacklog.set({ volume: "unit-afr" }, 7);
    metrics().splitBrain.set({ volume: "unit-afr" }, 2);
  });
  const server = await metrics().serve(24650, "127.0.0.1");
  try {
    const text = await (await fetch("http://127.0.0.1:24650/metrics")).text();
    assert.match(text, /^gluster_ha_heal_pending\{volume="unit-afr"\} 7$/m);
    assert.match(text, /^gluster_ha_split_brain\{volume="unit-afr"\} 2$/m);
    assert.equal(calls, 1, "both gauges share one run of the sources");
    assert.equal((await fetch("http://127.0.0.1:24650/other")).status, 404);
  } finally {
    drop();
    await new Promise((r) => server.close(r));
  }
});

test("status finds every brick of a seed server volfile: the local one at its bind address, the peer at its remote-host", () => {
  const text = seedServerVolfile(1, { brick: "/srv/ha", port: 24699 });
  const vf = checkVolfile(parseVolfile(text, "node1-server.vol"));
  assert.deepEqual(nodesOfVolfile(vf).map((n) => [n.name, n.host, n.port, n.volume]), [
    ["gfs-ds-locks", "127.0.0.2", 24699, "gfs-ds-locks"],
    ["gfs-node2-ds", "127.0.0.3", 24699, "gfs-ds-locks"],
  ]);
  // The seed's own volfile (no bind-address, default port): local brick on loopback.
  const seed = checkVolfile(parseVolfile(readFileSync(join(__dirname, "../fixtures/seed/node2-server.vol"), "utf8"), "node2-server.vol"));
  assert.deepEqual(nodesOfVolfile(seed, { host: "10.0.0.3" }).map((n) => `${n.host}:${n.port}/${n.volume}`), ["10.0.0.3:6996/gfs-ds-locks", "10.0.0.2:6996/gfs-ds-locks"]);
});

test("the status table shows a down node as DOWN with its error, a node that does not reach its peer, and dashes for what it could not say", () => {
  const out = formatStatus([
    { name: "a", address: "127.0.0.2", port: 1, volume: "v", up: true, clients: 2, brick: { totalBytes: 10 * 2 ** 30, freeBytes: 4 * 2 ** 30, availBytes: 3 * 2 ** 30, usedPercent: 60 }, pendingHeal: 3, splitBrain: 1, uptimeSeconds: 3700, replicas: { up: 1, total: 2, down: ["b-link"] } },
    { name: "b", address: "127.0.0.3", port: 1, volume: "v", up: false, error: "ECONNREFUSED: refused" },
  ]);
  const lines = out.trim().split("\n");
  assert.match(lines[0]!, /^NODE\s+ADDRESS\s+PORT\s+STATUS\s+REPLICAS\s+CLIENTS\s/);
  assert.match(lines[1]!, /^a\s+127\.0\.0\.2\s+1\s+up\s+1\/2\s+2\s+3\.0G\s+10\.0G\s+60%\s+3\s+1\s+1h1m$/);
  assert.match(lines[2]!, /^b\s+127\.0\.0\.3\s+1\s+DOWN\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+-$/);
  assert.equal(lines[3], "b: ECONNREFUSED: refused");
  assert.equal(lines[4], "a: does not reach b-link");
});

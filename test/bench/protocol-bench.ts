// Round trips through protocol/client -> protocol/server -> features/posix-locks -> storage/posix over
// loopback, server in its own process (ports 24190-24199). Not a timed test: prints figures.
//   node --import tsx test/bench/protocol-bench.ts        (also run by npm run bench)
// Targets (issue 3): >= 20,000 stat/s with 32 in flight on one connection, >= 1 GB/s of 128 KiB writes.
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx } from "../../runtime/core/types";
import type { Xlator } from "../../runtime/core/xlator";
import { clientVolfile, startBrickServer, stopAllServers } from "../helpers/servers";

const CTX: CallCtx = { uid: 0, gid: 0, pid: process.pid, lkOwner: "bench", client: "local" };
const HOST = "127.0.0.2";
const PORT = 24190;

/** Keeps `depth` calls in flight until `total` are done; returns calls per second. */
async function inFlight(depth: number, total: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (next < total) await call(next++);
  };
  await Promise.all(Array.from({ length: depth }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return total / s;
}

export async function run(): Promise<Record<string, number>> {
  const log = (m: string) => process.stderr.write(`[protocol-bench] ${m}\n`);
  const brick = `/var/tmp/gha-protocol-bench-${process.pid}`;
  const graphs: Graph[] = [];
  try {
    await startBrickServer({ host: HOST, port: PORT, brick, posixOptions: ["fsync off"], allow: { locks: "127.0.0.*" } });
    const graph = Graph.fromText(clientVolfile({ hosts: HOST, port: PORT, timeout: 30 }), "bench-client.vol", { log: silentLogger() });
    graphs.push(graph);
    await graph.start();
    const c: Xlator = graph.top;
    const results: Record<string, number> = {};

    await inFlight(32, 5000, () => c.stat(CTX, { path: "/" })); // warm-up
    results.statPerSec = await inFlight(32, 100000, () => c.stat(CTX, { path: "/" }));
    log(`stat, 32 in flight: ${results.statPerSec.toFixed(0)}/s`);

    const chunk = 128 * 1024;
    const totalMiB = 2048;
    const count = (totalMiB * 1024 * 1024) / chunk;
    const data = Buffer.alloc(chunk, 0x5a);
    const fd = new Fd("/bench.bin", 0o2 | 0o100);
    await c.create(CTX, { path: "/bench.bin" }, fd.flags, 0o644, fd);
    for (const depth of [1, 16]) {
      const w = await inFlight(depth, count, (i) => c.write(CTX, fd, data, (i % 4096) * chunk));
      results[`writeMBps_depth${depth}`] = (w * chunk) / 1e6;
      log(`128 KiB writes, ${depth} in flight: ${((w * chunk) / 1e6).toFixed(0)} MB/s`);
      const r = await inFlight(depth, count, (i) => c.read(CTX, fd, chunk, (i % 4096) * chunk));
      results[`readMBps_depth${depth}`] = (r * chunk) / 1e6;
      log(`128 KiB reads, ${depth} in flight: ${((r * chunk) / 1e6).toFixed(0)} MB/s`);
    }
    await c.release(CTX, fd);
    return results;
  } finally {
    await Promise.all(graphs.map((g) => g.stop()));
    await stopAllServers();
    const { rmSync } = await import("node:fs");
    rmSync(brick, { recursive: true, force: true });
  }
}

if (require.main === module) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

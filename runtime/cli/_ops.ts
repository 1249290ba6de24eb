// What glusterfsd and glusterfs share for operators: the metrics endpoint (--metrics-port), the
// statedump (SIGUSR1) and the runtime log level (SIGUSR2). (Not bundled as a CLI: "_" prefix.)
import type { Server } from "node:http";
import type { Graph } from "../core/graph";
import type { Logger } from "../core/log";
import { metrics } from "../core/metrics";
import { writeGraphStatedump } from "../core/statedump";
import { IoStats } from "../xlators/debug/io-stats";
import type { Xlator } from "../core/xlator";
import { applyLogLevelRequest } from "./commands/log-level";
import { UsageError } from "./_common";

export const OPS_FLAGS = {
  "metrics-port": { type: "string" },
  "metrics-address": { type: "string" },
} as const;

export const OPS_USAGE = `      --metrics-port P      serve Prometheus metrics at http://ADDRESS:P/metrics (default: off)
      --metrics-address A   address of the metrics endpoint (default 127.0.0.1)
`;

export interface MetricsFlags {
  port: number;
  address: string;
}

/**
 * The metrics endpoint asked for: --metrics-port, else a protocol/server's `metrics-port` option of
 * the volfile (servers), else none. Turns fop accounting on, so call it before the graph starts.
 */
export function metricsFlags(values: { "metrics-port"?: string; "metrics-address"?: string }, graph?: Graph): MetricsFlags | undefined {
  let port: number | undefined;
  let address = values["metrics-address"];
  if (values["metrics-port"] !== undefined) {
    port = Number(values["metrics-port"]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--metrics-port ${values["metrics-port"]}: expected a port 1..65535`);
  } else if (graph) {
    for (const x of graph.volumes.values()) {
      const p = x.type === "protocol/server" ? Number(x.options["metrics-port"] ?? 0) : 0;
      if (p > 0) {
        port = p;
        address ??= typeof x.options["metrics-address"] === "string" ? x.options["metrics-address"] : undefined;
        break;
      }
    }
  }
  if (port === undefined) return undefined;
  metrics().enable();
  return { port, address: address ?? "127.0.0.1" };
}

/** The mount's graph top wrapped in io-stats (every fop the kernel sends is counted). */
export function countedTop(graph: Graph, log: Logger): Xlator {
  if (!metrics().isEnabled) return graph.top;
  return new IoStats({
    name: `${graph.top.name}-io-stats`, type: "debug/io-stats", options: { "volume-label": graph.top.name },
    children: [graph.top], log, graph: graph.volumes,
  });
}

/** Starts the endpoint; a failure is logged (METRICS_FAILED) and the process runs on without it. */
export async function serveMetrics(flags: MetricsFlags | undefined, log: Logger): Promise<Server | undefined> {
  if (!flags) return undefined;
  try {
    const server = await metrics().serve(flags.port, flags.address);
    server.unref();
    log.info({ msgid: "METRICS_LISTENING", address: flags.address, port: flags.port }, "metrics endpoint listening");
    return server;
  } catch (err) {
    log.error({ msgid: "METRICS_FAILED", address: flags.address, port: flags.port, err: (err as Error).message }, "metrics endpoint cannot listen");
    return undefined;
  }
}

/** SIGUSR1. */
export function statedump(graph: Graph, log: Logger, extra: Record<string, unknown> = {}): void {
  try {
    const path = writeGraphStatedump(graph, extra);
    log.info({ msgid: "STATEDUMP_WRITTEN", path }, "statedump written");
  } catch (err) {
    log.error({ msgid: "STATEDUMP_FAILED", err: (err as Error).message }, "statedump failed");
  }
}

/** SIGUSR2. */
export function changeLogLevel(root: Logger, log: Logger): void {
  applyLogLevelRequest(root, log);
}

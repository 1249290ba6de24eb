import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * The process's Prometheus metrics (prom-client). One registry per process: glusterfsd and the
 * glusterfs mount each expose their own endpoint, off unless asked for.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly fops = new Counter({
    name: "gluster_ha_fops_total",
    help: "File operations completed, by volume, fop and result (ok or the errno).",
    labelNames: ["volume", "fop", "result"] as const,
    registers: [this.registry],
  });
  readonly fopSeconds = new Histogram({
    name: "gluster_ha_fop_duration_seconds",
    help: "Latency of file operations, by volume and fop.",
    labelNames: ["volume", "fop"] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly bytesRead = new Counter({
    name: "gluster_ha_read_bytes_total", help: "Bytes returned by read.", labelNames: ["volume"] as const, registers: [this.registry],
  });
  readonly bytesWritten = new Counter({
    name: "gluster_ha_written_bytes_total", help: "Bytes accepted by write.", labelNames: ["volume"] as const, registers: [this.registry],
  });
  readonly connections = new Gauge({
    name: "gluster_ha_connections", help: "Open client connections (servers) or connected subvolumes (clients).", labelNames: ["volume"] as const, registers: [this.registry],
  });
  readonly reconnects = new Counter({
    name: "gluster_ha_reconnects_total", help: "Connections re-established after a loss.", labelNames: ["volume"] as const, registers: [this.registry],
  });
  readonly healBacklog = new Gauge({
    name: "gluster_ha_heal_pending", help: "Entries waiting for self-heal (the pending-heal index), by replicate volume.", labelNames: ["volume"] as const, registers: [this.registry],
    collect: () => this.runSources(),
  });
  readonly healed = new Counter({
    name: "gluster_ha_healed_total", help: "Entries healed.", labelNames: ["volume", "kind"] as const, registers: [this.registry],
  });
  readonly splitBrain = new Gauge({
    name: "gluster_ha_split_brain", help: "Entries in split-brain (or with mismatching gfids), by replicate volume.", labelNames: ["volume"] as const, registers: [this.registry],
    collect: () => this.runSources(),
  });
  /** Read at scrape time (heal backlog, split-brain): each translator that has such state registers one. */
  private readonly sources = new Set<() => unknown>();
  private enabled = false;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "gluster_ha_process_" });
  }

  /**
   * Turns on fop accounting (io-stats under protocol/server, around the mount's graph): the CLIs call
   * it when --metrics-port is given, before the graph starts. Counters that cost nothing (connections,
   * heals) are kept either way.
   */
  enable(): void {
    this.enabled = true;
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** Registers a scrape-time source (may be async); returns its removal. */
  addSource(source: () => unknown): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  // Both gauges collect in parallel within one scrape: they share one run of the sources.
  private running: Promise<void> | undefined;
  private runSources(): Promise<void> {
    this.running ??= this.collectSources().finally(() => (this.running = undefined));
    return this.running;
  }

  private async collectSources(): Promise<void> {
    await Promise.all([...this.sources].map(async (s) => {
      try {
        await s();
      } catch {
        // A source that cannot answer now (child down) leaves its last value.
      }
    }));
  }

  /** Serves GET /metrics on address:port (loopback unless configured). Resolves once listening. */
  serve(port: number, address = "127.0.0.1"): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, () => resolve(server));
    });
  }
}

let processMetrics: Metrics | undefined;

/** The process-wide metrics, created on first use. */
export function metrics(): Metrics {
  return (processMetrics ??= new Metrics());
}

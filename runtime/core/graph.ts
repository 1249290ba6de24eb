import type { Logger } from "pino";
import { ConfigError } from "./errors";
import type { ReconfigureResult, Xlator, XlatorDef } from "./xlator";
import { findXlator } from "../xlators/registry";
import { checkVolfile, loadVolfile, parseVolfile, type CheckedVolfile } from "../volfile";

export interface GraphOptions {
  log: Logger;
  /** Where translator types are looked up; defaults to runtime/xlators/registry.ts (tests pass their own). */
  findXlator?: (type: string) => XlatorDef<any> | undefined;
}

/**
 * A live translator graph built from a checked volfile. Volumes are kept in definition order, which
 * is bottom-up (a volume only uses volumes defined before it); the last one is the top.
 */
export class Graph {
  readonly top: Xlator;
  readonly volumes: ReadonlyMap<string, Xlator>;
  /** The volfile this graph was built from (the latest one applied by reconfigure). */
  volfile: CheckedVolfile;
  private readonly order: Xlator[];
  private stopping: Promise<void> | undefined;
  private readonly log: Logger;

  private constructor(volfile: CheckedVolfile, volumes: Map<string, Xlator>, order: Xlator[], log: Logger) {
    this.volfile = volfile;
    this.volumes = volumes;
    this.order = order;
    this.top = volumes.get(volfile.top)!;
    this.log = log;
  }

  static fromFile(path: string, opts: GraphOptions): Graph {
    return Graph.build(loadVolfile(path), opts);
  }

  static fromText(text: string, file: string, opts: GraphOptions): Graph {
    return Graph.build(checkVolfile(parseVolfile(text, file)), opts);
  }

  /** Instantiates every translator bottom-up; each gets its children, a child logger and the shared map. */
  static build(v: CheckedVolfile, opts: GraphOptions): Graph {
    const find = opts.findXlator ?? findXlator;
    const graph = new Map<string, Xlator>();
    const order: Xlator[] = [];
    for (const vol of v.volumes) {
      const where = { file: v.file, line: vol.line, volume: vol.name };
      const def = find(vol.type);
      if (!def) throw new ConfigError(`unknown type "${vol.type}" in volume "${vol.name}"`, where);
      const children = vol.subvolumes.map((name) => {
        const child = graph.get(name);
        if (!child) throw new ConfigError(`subvolume "${name}" of volume "${vol.name}" is not defined before it`, where);
        return child;
      });
      const { min, max } = def.children;
      if (children.length < min || children.length > max) {
        throw new ConfigError(`type ${def.type} takes ${min}..${max} subvolumes; volume "${vol.name}" has ${children.length}`, where);
      }
      let xlator: Xlator;
      try {
        xlator = def.init({ name: vol.name, type: def.type, options: vol.options, children, log: opts.log.child({ volume: vol.name }), graph });
      } catch (err) {
        // A translator's own config check (xlator.configError) does not know the file: add it.
        if (err instanceof ConfigError && err.where?.file === undefined) {
          const option = err.where?.option;
          const line = (option !== undefined ? vol.optionLines?.[option] : undefined) ?? vol.line;
          throw new ConfigError(`volume "${vol.name}": ${err.message}`, { ...where, line, option });
        }
        throw err;
      }
      graph.set(vol.name, xlator);
      order.push(xlator);
    }
    return new Graph(v, graph, order, opts.log);
  }

  /** Starts every translator bottom-up; if one fails, stops those already started and rethrows. */
  async start(): Promise<void> {
    const started: Xlator[] = [];
    for (const x of this.order) {
      try {
        await x.start();
        started.push(x);
      } catch (err) {
        for (const s of started.reverse()) {
          await s.stop().catch((e: unknown) => this.log.warn({ err: e, volume: s.name }, "stop after failed start"));
        }
        throw err;
      }
    }
  }

  /** Stops every translator top-down; idempotent. A failing stop is logged and the rest still stop. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const x of [...this.order].reverse()) {
        try {
          await x.stop();
        } catch (err) {
          this.log.warn({ err, volume: x.name }, "stop failed");
        }
      }
    })();
    return this.stopping;
  }

  /**
   * Applies a new checked volfile to the running graph. The shape (volume names, types, subvolumes in
   * order) must be the same; otherwise every volume is reported in needsRestart and nothing changes.
   * Results name `volume:option`, or the bare volume name when the whole volume needs a restart.
   */
  reconfigure(v: CheckedVolfile): ReconfigureResult {
    const shapeChange = this.shapeDifference(v);
    if (shapeChange !== undefined) {
      this.log.info({ reason: shapeChange }, "graph shape changed: restart needed");
      const names = new Set([...this.volumes.keys(), ...v.volumes.map((vol) => vol.name)]);
      return { applied: [], needsRestart: [...names] };
    }
    const applied: string[] = [];
    const needsRestart: string[] = [];
    for (const vol of v.volumes) {
      const x = this.volumes.get(vol.name)!;
      let r: ReconfigureResult;
      try {
        r = x.reconfigure(vol.options);
      } catch (err) {
        this.log.warn({ err, volume: vol.name }, "reconfigure failed: volume needs a restart");
        needsRestart.push(vol.name);
        continue;
      }
      applied.push(...r.applied.map((o) => `${vol.name}:${o}`));
      needsRestart.push(...r.needsRestart.map((o) => `${vol.name}:${o}`));
    }
    this.volfile = v;
    return { applied, needsRestart };
  }

  /** Every translator's dump() by volume name (a failing dump shows its error instead). */
  dump(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const x of this.order) {
      try {
        out[x.name] = x.dump();
      } catch (err) {
        out[x.name] = { error: (err as Error).message };
      }
    }
    return out;
  }

  // Why the new volfile cannot be applied live, or undefined if it can.
  private shapeDifference(v: CheckedVolfile): string | undefined {
    const old = this.volfile;
    if (v.top !== old.top) return `top changed from ${old.top} to ${v.top}`;
    if (v.volumes.length !== old.volumes.length) return `volume count changed from ${old.volumes.length} to ${v.volumes.length}`;
    const byName = new Map(old.volumes.map((vol) => [vol.name, vol]));
    for (const vol of v.volumes) {
      const before = byName.get(vol.name);
      if (!before) return `new volume ${vol.name}`;
      if (before.type !== vol.type) return `volume ${vol.name} changed type from ${before.type} to ${vol.type}`;
      if (before.subvolumes.join(" ") !== vol.subvolumes.join(" ")) return `volume ${vol.name} changed subvolumes`;
    }
    return undefined;
  }
}

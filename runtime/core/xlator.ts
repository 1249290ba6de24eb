import type { Logger } from "pino";
import { FOP_NAMES, type Fops } from "./fops";
import { ConfigError, FopError } from "./errors";
import type { Invalidation, LostWrites } from "./types";

/** Events that travel through the graph (GlusterFS's notify). */
export type XlatorEvent = "child-up" | "child-down";

/** What a translator's init receives: its validated options (defaults applied) and its place in the graph. */
export interface XlatorInit<O> {
  name: string;
  type: string;
  options: O;
  children: Xlator[];
  log: Logger;
  /** Every volume of the graph by name (protocol/server exports any of them, auth decides). */
  graph: ReadonlyMap<string, Xlator>;
}

/** The result of a live reconfigure: what took effect now, and what needs a restart. */
export interface ReconfigureResult {
  applied: string[];
  needsRestart: string[];
}

/**
 * The declaration every translator module exports as default: its volfile type, its options
 * schema (JSON Schema in schema/xlators/), how many children it takes, and an init from validated options.
 */
export interface XlatorDef<O = Record<string, unknown>> {
  type: string;
  /** JSON Schema of the options: { type: "object", properties: {...}, additionalProperties: false }. */
  schema: Record<string, unknown>;
  children: { min: number; max: number };
  init(init: XlatorInit<O>): Xlator;
}

export function defineXlator<O>(def: XlatorDef<O>): XlatorDef<O> {
  return def;
}

/**
 * Base of every translator. A translator overrides the fops it implements; every other fop passes
 * straight down to its first child (as GlusterFS's default fops do).
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface Xlator extends Fops {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Xlator {
  readonly name: string;
  readonly type: string;
  readonly children: Xlator[];
  readonly parents: Xlator[] = [];
  options: Record<string, unknown>;
  readonly log: Logger;
  protected readonly graph: ReadonlyMap<string, Xlator>;

  constructor(init: XlatorInit<unknown>) {
    this.name = init.name;
    this.type = init.type;
    this.children = init.children;
    this.options = init.options as Record<string, unknown>;
    this.log = init.log;
    this.graph = init.graph;
    for (const c of this.children) c.parents.push(this);
  }

  /** The only child of a one-child translator. */
  get child(): Xlator {
    const c = this.children[0];
    if (!c) throw new FopError("ENOTCONN", `${this.name} has no subvolume`, { xlator: this.name });
    return c;
  }

  /** Starts whatever the translator runs (sockets, timers). Called bottom-up once the graph is built. */
  async start(): Promise<void> {}

  /** Stops it; idempotent. Called top-down. */
  async stop(): Promise<void> {}

  /** A child came up or went down. Default: pass the news to the parents. */
  notify(event: XlatorEvent, from: Xlator): void {
    void from;
    for (const p of this.parents) p.notify(event, this);
  }

  /** Another client changed these (a server's upcall, rising from protocol/client). Default: pass it up. */
  othersChanged(change: Invalidation, from: Xlator): void {
    void from;
    for (const p of this.parents) p.othersChanged(change, this);
  }

  /**
   * A brick's copies of these files lack writes it had answered (storage/posix, rising from the brick;
   * protocol/server sends it to the clients of that brick). Default: pass it up; cluster/afr, which
   * has the other copies, takes it (the others blame this one, heal copies the file back).
   */
  writesLost(files: LostWrites[], from: Xlator): void {
    void from;
    for (const p of this.parents) p.writesLost(files, this);
  }

  /**
   * Seconds this translator would cache what it is told if servers report others' changes (md-cache);
   * protocol/client asks its ancestors, and asks the server for upcalls when any says more than 0.
   */
  invalidationInterest(): number {
    return Math.max(0, ...this.parents.map((p) => p.invalidationInterest()));
  }

  /** Whether every change others make reaches this translator as othersChanged() (protocol/client: the server said so). */
  invalidationsDelivered(): boolean {
    return this.children.length > 0 && this.children.every((c) => c.invalidationsDelivered());
  }

  /** Whether this translator can serve fops now (protocol/client: connected; afr: any child up). */
  isUp(): boolean {
    return this.children.every((c) => c.isUp());
  }

  /** Applies changed options live where possible. Default: nothing is live. */
  reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const changed = Object.keys(options).filter((k) => JSON.stringify(options[k]) !== JSON.stringify(this.options[k]));
    return { applied: [], needsRestart: changed };
  }

  /** Internal state for a statedump (open fds, locks, queues, caches). */
  dump(): Record<string, unknown> {
    return {};
  }

  /** For init(): a ConfigError about this volume. */
  configError(message: string, option?: string): ConfigError {
    return new ConfigError(message, { volume: this.name, option });
  }
}

// Pass-through defaults for every fop: wind to the first child.
for (const fop of FOP_NAMES) {
  (Xlator.prototype as unknown as Record<string, unknown>)[fop] = function (this: Xlator, ...args: unknown[]) {
    const child = this.children[0];
    if (!child) {
      return Promise.reject(new FopError("ENOSYS", `${fop} not supported by ${this.name}`, { xlator: this.name, fop }));
    }
    return (child[fop] as (...a: unknown[]) => Promise<unknown>).apply(child, args);
  };
}

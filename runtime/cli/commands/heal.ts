// gluster-ha heal info|full|split-brain -f SERVER_VOLFILE ...
// Works against the running servers: it builds the server volfile's replicate volume over network
// connections to each brick (see runtime/heal/admin-graph.ts), so heals take the servers' own locks.
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, FopError } from "../../core/errors";
import { createLogger, silentLogger } from "../../core/log";
import { openAdminGraph, type AdminGraph } from "../../heal/admin-graph";
import { formatDuration, Progress, type ProgressOptions } from "../../core/progress";
import { fullHeal, Interrupted, type FullHealProgress } from "../../heal/full-crawl";
import { formatHealInfo, healComplete, healInfo } from "../../heal/heal-info";
import { childByNode } from "../../xlators/cluster/afr/split-brain";
import type { Command } from "./command";

const USAGE = `usage:
  gluster-ha heal info -f SERVER_VOLFILE [--json] [--split-brain] [--wait-empty [--timeout S]]
  gluster-ha heal full -f SERVER_VOLFILE [--checkpoint FILE] [--json]
  gluster-ha heal split-brain FILE --source NODE -f SERVER_VOLFILE
common: [--host ADDRESS] (this server's address) [--volume AFR_VOLUME] [--log-level L]
NODE: a subvolume name, a brick id, or a server address of the volfile.
`;

const OPTIONS = {
  volfile: { type: "string", short: "f" },
  host: { type: "string" },
  volume: { type: "string" },
  json: { type: "boolean" },
  "split-brain": { type: "boolean" },
  "wait-empty": { type: "boolean" },
  timeout: { type: "string" },
  checkpoint: { type: "string" },
  source: { type: "string" },
  "log-level": { type: "string" },
  "favorite-child-policy": { type: "string" },
  "data-self-heal-algorithm": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

function mib(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** What heal full's progress tracks: bytes against the counted total, or files when the files are all empty. */
function tracked(p: FullHealProgress): { unit: "bytes" | "count"; done: number; total?: number } {
  if (p.totalBytes === 0 && p.totalFiles !== undefined) return { unit: "count", done: p.files + p.skipped, total: p.totalFiles };
  return { unit: "bytes", done: p.bytes, total: p.totalBytes };
}

/** The files and heals beside the bytes bar: "files 10/100  5 files/s  healed 10". */
export function healDetail(p: FullHealProgress, now = Date.now()): string {
  const secs = Math.max(0.001, (now - p.startedAt) / 1000);
  const files = p.totalFiles !== undefined ? `${p.files + p.skipped}/${p.totalFiles}` : `${p.files}`;
  return `files ${files}  ${(p.files / secs).toFixed(0)} files/s  healed ${p.healed}`;
}

/**
 * heal full's progress on stderr (runtime/core/progress.ts: redrawn on a terminal, a plain line every
 * few seconds otherwise). Made at the first report, once the totals are counted.
 */
export function healFullProgress(label: string, o: { stream?: ProgressOptions["stream"]; tty?: boolean; now?: () => number } = {}) {
  let bar: Progress | undefined;
  const report = (p: FullHealProgress): Progress => {
    const t = tracked(p);
    bar ??= new Progress({ label, unit: t.unit, total: t.total, stream: o.stream, tty: o.tty, now: o.now, startedAt: p.startedAt });
    bar.update(t.done, { total: t.total, detail: healDetail(p, o.now?.()) });
    return bar;
  };
  return {
    report,
    // fullHeal reports its final state before it returns: the bar has it, and redrawing it first would print it twice.
    finish: (p: FullHealProgress) => (bar ?? report(p)).finish(healDetail(p, o.now?.())),
    /** Whether a redrawn line is open (a caller printing something else ends it first). */
    get onScreen() {
      return bar?.onScreen ?? false;
    },
  };
}

async function withGraph<T>(v: Values, fn: (g: AdminGraph) => Promise<T>): Promise<T> {
  const log = v["log-level"] ? createLogger({ level: v["log-level"] as "info", name: "gluster-ha heal" }) : silentLogger();
  const afrOptions: Record<string, string> = {};
  if (v["favorite-child-policy"]) afrOptions["favorite-child-policy"] = v["favorite-child-policy"];
  if (v["data-self-heal-algorithm"]) afrOptions["data-self-heal-algorithm"] = v["data-self-heal-algorithm"];
  const g = await openAdminGraph(v.volfile!, { host: v.host, volume: v.volume, log, afrOptions });
  try {
    return await fn(g);
  } finally {
    await g.close();
  }
}

async function info(v: Values): Promise<number> {
  const timeout = Number(v.timeout ?? "60");
  return withGraph(v, async (g) => {
    const end = Date.now() + timeout * 1000;
    // --wait-empty (a deploy step between node restarts): how far the heal got, on stderr.
    let waiting: Progress | undefined;
    let mostPending = 0;
    for (;;) {
      const bricks = await healInfo(g.afr, g.labels);
      // Entries only in flight (possibly undergoing heal) accuse nobody: a node may restart over them.
      const empty = healComplete(bricks);
      const pending = bricks.reduce((n, b) => n + b.entries.filter((e) => e.status !== "possibly-healing").length, 0);
      mostPending = Math.max(mostPending, pending);
      const down = bricks.filter((b) => b.status !== "Connected").map((b) => b.brick);
      const detail = `${pending} pending${down.length ? `  not connected: ${down.join(", ")}` : ""}`;
      if (v["wait-empty"] && !empty) {
        waiting ??= new Progress({ label: `waiting for heal of ${g.afr.name}`, unit: "count" });
        waiting.update(mostPending - pending, { total: mostPending, detail });
      }
      if (!v["wait-empty"] || empty || Date.now() >= end) {
        waiting?.finish(detail);
        process.stdout.write(v.json ? `${JSON.stringify({ volume: g.afr.name, bricks }, null, 2)}\n` : formatHealInfo(bricks, v["split-brain"]));
        if (v["wait-empty"]) return empty ? 0 : 1;
        return 0;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  });
}

async function full(v: Values): Promise<number> {
  const checkpoint = v.checkpoint ?? join(tmpdir(), `gluster-ha-heal-full-${createHash("sha1").update(resolve(v.volfile!)).digest("hex").slice(0, 12)}.json`);
  const tty = process.stderr.isTTY === true;
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once("SIGINT", onSig);
  process.once("SIGTERM", onSig);
  try {
    return await withGraph(v, async (g) => {
      const progress = healFullProgress(`heal full ${g.afr.name}`);
      try {
        // Counting first is a second walk: worth it for the bar and ETA someone watches, not for a log.
        const p = await fullHeal(g.afr, { checkpointFile: checkpoint, countFirst: tty, signal: ac.signal, onProgress: progress.report });
        progress.finish(p);
        const secs = (Date.now() - p.startedAt) / 1000;
        if (v.json) {
          process.stdout.write(`${JSON.stringify({ ...p, seconds: secs, mbPerSec: p.bytes / (1 << 20) / Math.max(secs, 0.001), filesPerSec: p.files / Math.max(secs, 0.001) })}\n`);
        } else {
          process.stdout.write(`heal full of ${g.afr.name}: ${p.files} files and ${p.dirs} directories walked (${mib(p.bytes)}) in ${formatDuration(secs)}; ` +
            `${p.healed} healed (${mib(p.healedBytes)} written), ${p.splitBrain.length} in split-brain, ${p.gfidMismatch.length} gfid mismatches, ${p.failed.length} failed` +
            `${p.skipped ? `, ${p.skipped} skipped (done before the checkpoint)` : ""}\n`);
          for (const s of p.splitBrain) process.stdout.write(`split-brain: ${s}\n`);
          for (const s of p.gfidMismatch) process.stdout.write(`gfid mismatch: ${s}\n`);
          for (const s of p.failed) process.stdout.write(`failed: ${s}\n`);
        }
        return p.failed.length > 0 || p.splitBrain.length > 0 || p.gfidMismatch.length > 0 ? 1 : 0;
      } catch (err) {
        if (err instanceof Interrupted) {
          process.stderr.write(`${progress.onScreen ? "\n" : ""}interrupted; progress saved in ${checkpoint}: run the same command to resume\n`);
          return 130;
        }
        throw err;
      }
    });
  } finally {
    process.off("SIGINT", onSig);
    process.off("SIGTERM", onSig);
  }
}

async function splitBrain(v: Values, file: string | undefined): Promise<number> {
  if (!file || !v.source) {
    process.stderr.write(USAGE);
    return 2;
  }
  return withGraph(v, async (g) => {
    const src = childByNode(g.afr, v.source!);
    if (src === undefined) {
      process.stderr.write(`gluster-ha heal: --source ${v.source} is none of ${g.afr.children.map((c, i) => `${c.name} (${g.labels[i]})`).join(", ")}\n`);
      return 2;
    }
    if (!g.afr.childUp(src)) {
      process.stderr.write(`gluster-ha heal: the source ${g.labels[src]} is not connected\n`);
      return 1;
    }
    const r = await g.afr.heals.healNow(file, { source: src });
    if (r.missing) {
      process.stderr.write(`gluster-ha heal: ${file}: no such file on any brick\n`);
      return 1;
    }
    process.stdout.write(`Healed ${file} from ${g.labels[src]}\n`);
    return 0;
  });
}

export const heal: Command = {
  summary: "self-heal: info (pending entries per brick), full (crawl everything), split-brain FILE --source NODE",
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (e) {
      process.stderr.write(`gluster-ha heal: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    const v = parsed.values;
    const [sub, ...rest] = parsed.positionals;
    if (v.help || !sub) {
      process.stderr.write(USAGE);
      return v.help ? 0 : 2;
    }
    if (!v.volfile) {
      process.stderr.write(`gluster-ha heal: -f SERVER_VOLFILE is required\n${USAGE}`);
      return 2;
    }
    try {
      switch (sub) {
        case "info": return await info(v);
        case "full": return await full(v);
        case "split-brain": return await splitBrain(v, rest[0]);
        default:
          process.stderr.write(`gluster-ha heal: unknown subcommand ${sub}\n${USAGE}`);
          return 2;
      }
    } catch (err) {
      if (err instanceof ConfigError || err instanceof FopError) {
        process.stderr.write(`gluster-ha heal: ${err.message}${err instanceof FopError ? ` (${err.code})` : ""}\n`);
        return 1;
      }
      throw err;
    }
  },
};

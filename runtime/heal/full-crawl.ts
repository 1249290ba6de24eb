/**
 * `heal full`: walks the whole volume depth-first in name order, healing every directory (its
 * entries first, so missing names appear) and every file. The order is total, so a checkpoint (the
 * last path done, written every second and on interrupt) lets a later run skip what was done.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { posix as pathPosix } from "node:path";
import type { Iatt } from "../core/types";
import type { Afr } from "../xlators/cluster/afr/afr";
import { isDir } from "../xlators/cluster/afr/inspect";
import { readdirAll } from "../xlators/cluster/afr/self-heal-common";

export interface FullHealProgress {
  files: number;
  dirs: number;
  /** Bytes of the files walked (healed or found in sync). */
  bytes: number;
  /** Bytes actually written to sinks. */
  healedBytes: number;
  healed: number;
  splitBrain: string[];
  gfidMismatch: string[];
  failed: string[];
  skipped: number;
  totalFiles?: number;
  totalBytes?: number;
  startedAt: number;
}

export interface FullHealOptions {
  checkpointFile?: string;
  /** Called after each entry (and once more at the end). */
  onProgress?: (p: FullHealProgress) => void;
  /** Count files and bytes first (for the ETA). */
  countFirst?: boolean;
  signal?: AbortSignal;
  /** Files healed at once (default 16). */
  parallel?: number;
}

interface Checkpoint {
  last: string;
  progress: Omit<FullHealProgress, "startedAt">;
}

/** Depth-first name order: "/a" < "/a/z" < "/b". */
export function walkCompare(a: string, b: string): number {
  const pa = a.split("/").filter(Boolean);
  const pb = b.split("/").filter(Boolean);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i]! < pb[i]! ? -1 : 1;
  }
  return pa.length - pb.length;
}

async function unionListing(afr: Afr, path: string): Promise<Map<string, Iatt | undefined>> {
  const lists = await Promise.all(afr.upChildren().map((i) => readdirAll(afr, afr.internalCtx(), i, path).catch(() => new Map<string, Iatt | undefined>())));
  const out = new Map<string, Iatt | undefined>();
  for (const l of lists) for (const [n, st] of l) if (!out.has(n) || (!out.get(n) && st)) out.set(n, st);
  return out;
}

async function count(afr: Afr, path: string, acc: { files: number; bytes: number }, signal?: AbortSignal): Promise<void> {
  for (const [name, st] of await unionListing(afr, path)) {
    if (signal?.aborted) return;
    if (st && isDir(st)) await count(afr, pathPosix.join(path, name), acc, signal);
    else {
      acc.files++;
      acc.bytes += st?.size ?? 0;
    }
  }
}

export class Interrupted extends Error {
  override name = "Interrupted";
}

export async function fullHeal(afr: Afr, opts: FullHealOptions = {}): Promise<FullHealProgress> {
  let resumeAfter: string | undefined;
  const p: FullHealProgress = {
    files: 0, dirs: 0, bytes: 0, healedBytes: 0, healed: 0, splitBrain: [], gfidMismatch: [], failed: [], skipped: 0, startedAt: Date.now(),
  };
  if (opts.checkpointFile) {
    try {
      const cp = JSON.parse(readFileSync(opts.checkpointFile, "utf8")) as Checkpoint;
      resumeAfter = cp.last;
      Object.assign(p, cp.progress, { startedAt: Date.now() });
    } catch {
      // no checkpoint: start from the top
    }
  }
  if (opts.countFirst) {
    const acc = { files: 0, bytes: 0 };
    await count(afr, "/", acc, opts.signal);
    p.totalFiles = acc.files;
    p.totalBytes = acc.bytes;
  }
  let lastSave = 0;
  let lastDone = resumeAfter ?? "";
  const save = (force = false) => {
    if (!opts.checkpointFile || (!force && Date.now() - lastSave < 1000)) return;
    lastSave = Date.now();
    const { startedAt: _s, ...progress } = p;
    const tmp = `${opts.checkpointFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ last: lastDone, progress } satisfies Checkpoint));
    renameSync(tmp, opts.checkpointFile);
  };
  const done = (path: string) => resumeAfter !== undefined && walkCompare(path, resumeAfter) <= 0;
  // Entries a directory heal just created (and healed) need no second visit.
  const fresh = new Set<string>();
  const healOne = async (path: string): Promise<void> => {
    if (fresh.delete(path)) return;
    try {
      const r = await afr.heals.healNow(path);
      if (r.healed) p.healed++;
      p.healed += r.createdPaths.length;
      p.healedBytes += r.bytes;
      if (r.splitBrain) p.splitBrain.push(path);
      p.gfidMismatch.push(...r.gfidMismatch);
      for (const c of r.createdPaths) fresh.add(c);
    } catch {
      p.failed.push(path);
    }
  };
  const width = opts.parallel ?? 16;
  const walk = async (dir: string): Promise<void> => {
    if (!done(dir) || dir === "/") await healOne(dir);
    p.dirs++;
    const names = [...(await unionListing(afr, dir))].sort(([a], [b]) => (a < b ? -1 : 1));
    // Files in batches healed in parallel; the checkpoint moves only past whole batches.
    let batch: [string, Iatt | undefined][] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const b = batch;
      batch = [];
      await Promise.all(b.map(([path]) => healOne(path)));
      for (const [path, st] of b) {
        p.files++;
        p.bytes += st?.size ?? 0;
        lastDone = path;
      }
      opts.onProgress?.(p);
      save();
    };
    for (const [name, st] of names) {
      if (opts.signal?.aborted) {
        await flush();
        throw new Interrupted("heal full interrupted");
      }
      const path = pathPosix.join(dir, name);
      if (st && isDir(st)) {
        await flush();
        const isAncestor = resumeAfter !== undefined && resumeAfter.startsWith(path + "/");
        if (done(path) && !isAncestor) continue;
        await walk(path);
        continue;
      }
      if (done(path)) {
        p.skipped++;
        continue;
      }
      batch.push([path, st]);
      if (batch.length >= width) await flush();
    }
    await flush();
    lastDone = walkCompare(dir, lastDone) > 0 ? dir : lastDone;
  };
  try {
    await walk("/");
  } catch (err) {
    save(true);
    throw err;
  }
  opts.onProgress?.(p);
  if (opts.checkpointFile) rmSync(opts.checkpointFile, { force: true });
  return p;
}

/**
 * Heals one path completely: its parent's entries first when some replica lacks it, then its own
 * entries (directories), data (regular files) and metadata. Used by lookup (in the background), by the
 * heal daemon from the pending index, and by `gluster-ha heal`.
 */
import { posix as pathPosix } from "node:path";
import type { Afr } from "./afr";
import { gfidConflict, inspect, isDir, isRegular } from "./inspect";
import type { HealOptions } from "./self-heal-common";
import { healData } from "./self-heal-data";
import { healEntries } from "./self-heal-entry";
import { healMetadata } from "./self-heal-metadata";

export interface HealResult {
  path: string;
  /** Something was repaired or cleared. */
  healed: boolean;
  splitBrain: boolean;
  gfidMismatch: string[];
  bytes: number;
  /** Entries created on a sink (each healed too). */
  created: number;
  /** The entries created on a sink (already healed: a crawl need not visit them again). */
  createdPaths: string[];
  deleted: number;
  missing: boolean;
}

function empty(path: string): HealResult {
  return { path, healed: false, splitBrain: false, gfidMismatch: [], bytes: 0, created: 0, createdPaths: [], deleted: 0, missing: false };
}

function merge(into: HealResult, r: HealResult): void {
  into.healed ||= r.healed;
  into.splitBrain ||= r.splitBrain;
  into.gfidMismatch.push(...r.gfidMismatch);
  into.bytes += r.bytes;
  into.created += r.created;
  into.createdPaths.push(...r.createdPaths);
  into.deleted += r.deleted;
}

export async function healPath(afr: Afr, path: string, opts: HealOptions = {}, depth = 0): Promise<HealResult> {
  const res = empty(path);
  // A heal needs a source and a sink: with one replica reachable there is nothing to do yet.
  if (afr.upChildren().length < 2) return res;
  let insp = await inspect(afr, { path });
  if (insp.present.size === 0) {
    res.missing = true;
    return res;
  }
  if ((insp.missing.length > 0 || gfidConflict(insp)) && path !== "/" && depth === 0) {
    merge(res, await healDir(afr, pathPosix.dirname(path), opts.source !== undefined ? {} : opts, depth + 1));
    insp = await inspect(afr, { path });
    if (insp.present.size === 0) {
      res.missing = true;
      return res;
    }
  }
  const st = insp.present.values().next().value!.stat;
  if (isDir(st)) merge(res, await healDir(afr, path, opts, depth));
  if (isRegular(st)) {
    const d = await healData(afr, path, opts);
    res.healed ||= d.healed;
    res.splitBrain ||= d.splitBrain;
    res.bytes += d.bytes;
  }
  const m = await healMetadata(afr, path, opts);
  res.healed ||= m.healed;
  res.splitBrain ||= m.splitBrain;
  return res;
}

/** Entry heal of a directory, then a full heal of everything it created on a sink. */
async function healDir(afr: Afr, path: string, opts: HealOptions, depth: number): Promise<HealResult> {
  const res = empty(path);
  const e = await healEntries(afr, path, opts);
  res.healed = e.healed;
  res.splitBrain = e.splitBrain && e.gfidMismatch.length > 0;
  res.gfidMismatch.push(...e.gfidMismatch);
  res.created = e.created.length;
  res.deleted = e.deleted.length;
  // Each created entry still needs its content: several at once (latency-bound over the network).
  const width = Math.max(1, afr.options["heal-parallel"] ?? 4);
  for (let at = 0; at < e.created.length; at += width) {
    const subs = await Promise.all(e.created.slice(at, at + width).map((c) => healPath(afr, c.path, { source: c.source }, depth + 1)));
    for (const sub of subs) merge(res, sub);
  }
  res.createdPaths.push(...e.created.map((c) => c.path));
  return res;
}

/**
 * Split-brain resolution. Automatic by favorite-child-policy (only when every replica answered, as in
 * GlusterFS), or by an operator naming the source (`gluster-ha heal split-brain FILE --source NODE`).
 */
import type { Afr } from "./afr";
import type { ChangelogKind } from "./changelog";
import { isDir, type Inspection } from "./inspect";

function unique<T>(items: [number, T][], better: (a: T, b: T) => number): number | undefined {
  if (items.length === 0) return undefined;
  const sorted = [...items].sort((a, b) => better(b[1], a[1]));
  if (sorted.length > 1 && better(sorted[0]![1], sorted[1]![1]) === 0) return undefined; // a tie picks nothing
  return sorted[0]![0];
}

export function pickBySplitBrainPolicy(afr: Afr, insp: Inspection, kind: ChangelogKind): number | undefined {
  const policy = afr.options["favorite-child-policy"];
  const reps = [...insp.present].map(([i, r]) => [i, r.stat] as [number, typeof r.stat]);
  if (reps.length === 0 || policy === "none" || kind === "entry") return undefined;
  switch (policy) {
    case "size":
      return isDir(reps[0]![1]) ? undefined : unique(reps, (a, b) => a.size - b.size);
    case "mtime":
      return unique(reps, (a, b) => a.mtimeMs - b.mtimeMs);
    case "ctime":
      return unique(reps, (a, b) => a.ctimeMs - b.ctimeMs);
    case "majority": {
      const key = (s: { mtimeMs: number; size: number }) => `${s.mtimeMs}:${s.size}`;
      const counts = new Map<string, number>();
      for (const [, s] of reps) counts.set(key(s), (counts.get(key(s)) ?? 0) + 1);
      const win = reps.find(([, s]) => counts.get(key(s))! * 2 > afr.children.length);
      return win?.[0];
    }
  }
  return undefined;
}

/** Resolves NODE (a child volume name, a brick id, or a remote-host of a protocol/client child). */
export function childByNode(afr: Afr, node: string): number | undefined {
  const byName = afr.children.findIndex((c) => c.name === node);
  if (byName >= 0) return byName;
  const byId = afr.brickIds.findIndex((id) => id === node);
  if (byId >= 0) return byId;
  const byHost = afr.children.findIndex((c) => {
    const hosts = c.options["remote-host"];
    return Array.isArray(hosts) ? hosts.includes(node) : hosts === node;
  });
  return byHost >= 0 ? byHost : undefined;
}

import type { HeldLock, LockTableKind } from "./lock-table";

/** A byte-range lock (fcntl, inodelk). `end` is inclusive; Infinity means to the end of file. */
export interface RangeLock extends HeldLock {
  type: "rd" | "wr";
  start: number;
  end: number;
  pid: number;
  lkOwner: string;
}

export function overlaps(a: { start: number; end: number }, b: { start: number; end: number }): boolean {
  return a.start <= b.end && b.start <= a.end;
}

/** The owner's locks minus [start, end] (splitting those that straddle it); others untouched. */
export function subtractRange<L extends RangeLock>(granted: L[], owner: string, start: number, end: number): L[] {
  const out: L[] = [];
  for (const g of granted) {
    if (g.owner !== owner || !overlaps(g, { start, end })) {
      out.push(g);
      continue;
    }
    if (g.start < start) out.push({ ...g, end: start - 1 });
    if (g.end > end) out.push({ ...g, start: end + 1 });
  }
  return out;
}

/** POSIX semantics for one owner: a new lock replaces the owner's locks in its range, and merges with adjacent same-type ones. */
export function placeRange<L extends RangeLock>(granted: L[], lock: L): L[] {
  const kept = subtractRange(granted, lock.owner, lock.start, lock.end);
  const merged = { ...lock };
  const out: L[] = [];
  for (const g of kept) {
    const adjacent = g.owner === lock.owner && g.type === lock.type && (g.end + 1 === merged.start || merged.end + 1 === g.start);
    if (adjacent) {
      merged.start = Math.min(merged.start, g.start);
      merged.end = Math.max(merged.end, g.end);
    } else out.push(g);
  }
  out.push(merged);
  return out;
}

export function rangeKind(fair: boolean): LockTableKind<RangeLock> {
  return {
    conflicts: (a, b) => overlaps(a, b) && (a.type === "wr" || b.type === "wr"),
    place: placeRange,
    fair,
  };
}

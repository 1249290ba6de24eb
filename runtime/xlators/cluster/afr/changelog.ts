/**
 * AFR's changelog (GlusterFS 2.0 "v1" model, see docs in index.ts): on every replica each file carries
 * one `trusted.afr.<brick-id>` xattr per replica of the set, 12 bytes = big-endian int32 pending
 * counters data | metadata | entry. M[i][j] = what replica i holds about replica j.
 *
 * Keys are the children's brick identities (getxattr "/" trusted.gha.brick-id), not the `subvolumes`
 * names, because the two servers' volfiles name the same bricks differently (node1: gfs-ds-locks +
 * gfs-node2-ds; node2: gfs-ds-locks + gfs-node1-ds) and both must agree on who is blamed. A child down
 * since start is blamed under the identity the root's changelog keys reveal (afr.ts guessBrickIds), else
 * under `trusted.afr.<child-name>`; reads sum every key a child may be blamed under.
 */
export const CHANGELOG_PREFIX = "trusted.afr.";
/**
 * The "in flight" mark of a data batch (eager-lock.ts), GlusterFS 3.6's dirty counter: +1 here
 * stands for the v1 pre-op's +1 to every replica's counter on this replica (readers add it to every
 * cell of the replica's row, so the matrix means what it always did). One short key instead of one
 * per replica: beside trusted.gfid it fits in the inode (ext4's 256-byte inodes keep ~90 bytes of
 * xattrs inline), where a file's pre-op and post-op are a few microseconds instead of rewriting an
 * xattr block (~15x slower, measured). Blame of a replica that missed a write is still written to
 * its own key by the post-op.
 */
export const DIRTY_KEY = "trusted.afr.dirty";
export const BRICK_ID_XATTR = "trusted.gha.brick-id";
export const INDEX_XATTR = "trusted.gha.index";
/** The root's trusted.afr.* names on a brick (JSON list; read-only, answered by storage/posix). */
export const CHANGELOG_KEYS_XATTR = "trusted.gha.changelog-keys";

export type ChangelogKind = "data" | "metadata" | "entry";
export const KIND_SLOT: Record<ChangelogKind, number> = { data: 0, metadata: 1, entry: 2 };

export type Counters = [number, number, number];

export function encodeCounters(c: readonly number[]): Buffer {
  const b = Buffer.alloc(12);
  for (let i = 0; i < 3; i++) b.writeInt32BE(c[i] ?? 0, i * 4);
  return b;
}

export function decodeCounters(b: Buffer | undefined): Counters {
  if (!b || b.length < 12) return [0, 0, 0];
  return [b.readInt32BE(0), b.readInt32BE(4), b.readInt32BE(8)];
}

/** Counters with `n` in the slot of `kind` (for xattrop add32). */
export function delta(kind: ChangelogKind, n: number): Buffer {
  const c: Counters = [0, 0, 0];
  c[KIND_SLOT[kind]] = n;
  return encodeCounters(c);
}

/**
 * The pending matrix of one kind over the replicas that answered: rows by replica index, columns by
 * child index; each cell sums the child's id key and its name key, plus the row's dirty counter.
 */
export function pendingMatrix(
  rows: ReadonlyMap<number, Record<string, Buffer> | undefined>,
  keysOf: (j: number) => string[],
  childCount: number,
  kind: ChangelogKind,
): Map<number, number[]> {
  const m = new Map<number, number[]>();
  for (const [i, xattrs] of rows) {
    const row: number[] = [];
    const dirty = decodeCounters(xattrs?.[DIRTY_KEY])[KIND_SLOT[kind]];
    for (let j = 0; j < childCount; j++) {
      let sum = dirty;
      for (const k of keysOf(j)) sum += decodeCounters(xattrs?.[k])[KIND_SLOT[kind]];
      row.push(sum);
    }
    m.set(i, row);
  }
  return m;
}

export interface Direction {
  /** Replicas nobody trustworthy accuses: they hold the good copy. */
  sources: number[];
  /** Present replicas that are not sources. */
  sinks: number[];
  /** Trustworthy replicas accuse each other: no source can be chosen without a policy. */
  splitBrain: boolean;
  /** Any non-zero counter at all (something to clear even when nothing to copy). */
  pending: boolean;
  /** Replicas (present or not) that some present replica blames for a change they missed. */
  accused: number[];
}

/**
 * afr_selfheal_find_direction: a replica with M[i][i] != 0 accuses itself (a transaction died half way
 * there: its pre-op added 1 for every replica and no post-op came) and those accusations are ignored —
 * but only up to its self-accusation: a dead pre-op adds as much to M[i][j] as to M[i][i], so blame
 * beyond M[i][i] is a change replica j really missed (e.g. a peer's pre-op that arrived while its
 * answer was lost to a partition must not hide what this replica took on its own). Sources are the
 * present replicas no replica accuses; if replicas exist but all are accused, it is split-brain.
 */
export function findDirection(m: ReadonlyMap<number, number[]>): Direction {
  const present = [...m.keys()];
  const accused = new Set<number>();
  let pending = false;
  for (const i of present) {
    const row = m.get(i) ?? [];
    if (row.some((v) => v !== 0)) pending = true;
    const self = Math.max(0, row[i] ?? 0);
    row.forEach((v, j) => {
      if (j !== i && v - self > 0) accused.add(j);
    });
  }
  const sources = present.filter((i) => !accused.has(i));
  const splitBrain = sources.length === 0 && present.length > 0;
  return { sources, sinks: present.filter((i) => !sources.includes(i)), splitBrain, pending, accused: [...accused].sort((a, b) => a - b) };
}

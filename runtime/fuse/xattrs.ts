/**
 * Extended attributes that belong to the volume itself (gfid, replication changelog, server state):
 * the mount neither shows nor lets anyone change them (see docs/ARCHITECTURE.md, "Internal xattrs").
 */
const INTERNAL_EXACT = new Set(["trusted.gfid"]);
const INTERNAL_PREFIXES = ["trusted.afr.", "trusted.glusterfs.", "trusted.gha."];

export function isInternalXattr(name: string): boolean {
  return INTERNAL_EXACT.has(name) || INTERNAL_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Bounded maps kept in use order (a hit is deleted and set again, so the first entries are the least
 * recently used). Past the bound they lose their oldest down to 15/16 of it in one pass, not one entry
 * per insert: V8 leaves a deleted entry's slot empty at the front of the table until it rehashes, and
 * each fresh iteration walks those slots again — one-at-a-time eviction at the bound cost ~5 µs per
 * insert in a 16,384-entry map (0.5-1 µs in passes), which a tree walk pays for every name it lists.
 */
export function trimOldest<K, V>(map: Map<K, V>, limit: number, evicted?: (key: K, value: V) => void): void {
  if (map.size <= limit) return;
  const keep = limit - (limit >> 4);
  for (const [key, value] of map) {
    if (map.size <= keep) break;
    map.delete(key);
    evicted?.(key, value);
  }
}

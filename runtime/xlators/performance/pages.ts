/**
 * A read served from cached pages (read-ahead, io-cache): `pages` are consecutive pages from page
 * number `first`, each resolving to at most `pageSize` bytes; a short page is the end of the file.
 * Pages fetched in one read are adjacent views of one buffer: a read within them is a view too, not a copy.
 */
export async function readFromPages(pages: readonly { promise: Promise<Buffer> }[], first: number, pageSize: number, offset: number, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let pos = offset;
  for (let k = 0; k < pages.length; k++) {
    const data = await pages[k]!.promise;
    const pageStart = (first + k) * pageSize;
    const from = pos - pageStart;
    const to = Math.min(data.length, offset + size - pageStart);
    if (to > from) parts.push(data.subarray(from, to));
    pos = pageStart + to;
    if (data.length < pageSize) break; // end of file
  }
  return joinViews(parts);
}

/** Concatenates buffers; when each starts where the one before ends in the same memory, as one view of it. */
function joinViews(parts: Buffer[]): Buffer {
  if (parts.length === 0) return Buffer.alloc(0);
  if (parts.length === 1) return parts[0]!;
  let total = 0;
  let adjacent = true;
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k]!;
    if (k > 0) {
      const prev = parts[k - 1]!;
      if (p.buffer !== prev.buffer || p.byteOffset !== prev.byteOffset + prev.length) adjacent = false;
    }
    total += p.length;
  }
  return adjacent ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, total) : Buffer.concat(parts, total);
}

/**
 * A read served from cached pages (read-ahead, io-cache): `pages` are consecutive pages from page
 * number `first`, each resolving to at most `pageSize` bytes; a short page is the end of the file.
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
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

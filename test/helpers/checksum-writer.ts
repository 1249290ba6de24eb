/**
 * A writer that knows exactly what the filesystem acknowledged, and a verifier that holds the
 * filesystem to it.
 *
 * Every file's content is a deterministic byte stream (its name picks a rotation of one shared random
 * block), so any offset's expected bytes are known without keeping copies. The writer writes chunks,
 * fsyncs, and only after fsync (and, for small files, close) succeeds records the length as
 * acknowledged. On an error (a server killed mid-write, ENOTCONN during failover) it reopens the file
 * and rewrites from the last acknowledged offset, until its deadline.
 *
 * The verifier reads every file through the mount and on both bricks: the acknowledged prefix must be
 * there byte for byte (else: data lost), everything beyond it must still be the stream (no garbage),
 * and the two bricks must hold identical bytes (else: divergent).
 */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, readFile, stat, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";

const BLOCK_LEN = 1_048_573; // prime, so rotations of different files rarely line up
const BLOCK = randomBytes(BLOCK_LEN);

function shiftOf(name: string): number {
  return createHash("sha1").update(name).digest().readUInt32BE(0) % BLOCK_LEN;
}

/** The expected bytes of `name` at [offset, offset+len). */
export function streamBytes(name: string, offset: number, len: number): Buffer {
  const out = Buffer.allocUnsafe(len);
  let done = 0;
  while (done < len) {
    const at = (shiftOf(name) + offset + done) % BLOCK_LEN;
    const n = Math.min(len - done, BLOCK_LEN - at);
    BLOCK.copy(out, done, at, at + n);
    done += n;
  }
  return out;
}

export interface AckedFile {
  /** Path relative to the volume root. */
  path: string;
  /** Bytes acknowledged by fsync. */
  acked: number;
  /** sha256 of the acknowledged prefix. */
  sha256: string;
}

export interface WriterStats {
  operations: number;
  bytesAcked: number;
  errors: Record<string, number>;
  /** Longest time one operation (write/fsync/open) took, ms. */
  maxStallMs: number;
  /** Writes that took only part of their buffer. */
  shortWrites: number;
}

export class AckLedger {
  readonly files = new Map<string, AckedFile>();
  readonly stats: WriterStats = { operations: 0, bytesAcked: 0, errors: {}, maxStallMs: 0, shortWrites: 0 };
  /** Running sha256 of each file's acknowledged prefix (acks only grow, so hashing stays linear). */
  private readonly hashes = new Map<string, Hash>();
  /** Files a writer has open right now. */
  readonly busy = new Set<string>();

  ack(path: string, len: number): void {
    const prev = this.files.get(path)?.acked ?? 0;
    if (len < prev || (len === prev && this.files.has(path))) return;
    let h = this.hashes.get(path);
    if (!h) this.hashes.set(path, (h = createHash("sha256")));
    h.update(streamBytes(path, prev, len - prev));
    this.stats.bytesAcked += len - prev;
    this.files.set(path, { path, acked: len, sha256: h.copy().digest("hex") });
  }

  error(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? "UNKNOWN";
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
  }

  totalAcked(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.acked;
    return n;
  }
}

export interface WriterOptions {
  /** The mount point. */
  root: string;
  /** Directory under the root for this writer's files. */
  prefix: string;
  /** Files to write and their sizes. */
  files: number;
  fileSize: number;
  /** Bytes per write call; an fsync follows every `fsyncEvery` writes (default 1). */
  chunk: number;
  fsyncEvery?: number;
  /** Give up on a file after this long without progress (ms). */
  stallLimitMs?: number;
  /** Stop starting new files once set. */
  signal?: AbortSignal;
  /** Delay between chunks, to spread a writer over time (ms). */
  pauseMs?: number;
}

async function timed<T>(ledger: AckLedger, p: Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await p;
  } finally {
    ledger.stats.operations++;
    ledger.stats.maxStallMs = Math.max(ledger.stats.maxStallMs, Date.now() - t0);
  }
}

/** Writes one file to `size` with retries from the last acknowledged offset. */
async function writeOne(ledger: AckLedger, o: WriterOptions, rel: string): Promise<void> {
  ledger.busy.add(rel);
  try {
    await writeWithRetries(ledger, o, rel);
  } finally {
    ledger.busy.delete(rel);
  }
}

async function writeWithRetries(ledger: AckLedger, o: WriterOptions, rel: string): Promise<void> {
  const abs = join(o.root, rel);
  const every = o.fsyncEvery ?? 1;
  const stallLimit = o.stallLimitMs ?? 30_000;
  let lastProgress = Date.now();
  for (;;) {
    let fh: FileHandle | undefined;
    let off = ledger.files.get(rel)?.acked ?? 0;
    try {
      await timed(ledger, mkdir(dirname(abs), { recursive: true }));
      fh = await timed(ledger, open(abs, constants.O_WRONLY | constants.O_CREAT, 0o644));
      if (!ledger.files.has(rel)) ledger.ack(rel, 0);
      let unsynced = 0;
      while (off < o.fileSize) {
        const len = Math.min(o.chunk, o.fileSize - off);
        // A short write (the kernel's answer when part of the buffer went through and then a write
        // failed) is taken like a careful program takes it: the rest is written again.
        const { bytesWritten } = await timed(ledger, fh.write(streamBytes(rel, off, len), 0, len, off));
        if (bytesWritten === 0) throw Object.assign(new Error(`no progress writing ${rel} at ${off}`), { code: "ESHORTWRITE" });
        if (bytesWritten < len) ledger.stats.shortWrites++;
        off += bytesWritten;
        if (++unsynced >= every || off >= o.fileSize) {
          await timed(ledger, fh.sync());
          ledger.ack(rel, off);
          lastProgress = Date.now();
          unsynced = 0;
        }
        if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
      }
      await timed(ledger, fh.close());
      fh = undefined;
      return;
    } catch (err) {
      ledger.error(err);
      await fh?.close().catch(() => undefined);
      if (Date.now() - lastProgress > stallLimit) throw new Error(`writer stalled on ${rel} for ${stallLimit} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Runs a writer to completion (or until `signal` stops it between files). */
export async function runWriter(ledger: AckLedger, o: WriterOptions): Promise<void> {
  for (let i = 0; i < o.files; i++) {
    if (o.signal?.aborted) return;
    await writeOne(ledger, o, `${o.prefix}/f${String(i).padStart(5, "0")}`);
  }
}

export interface VerifyResult {
  files: number;
  bytesVerified: number;
  /** Files whose acknowledged bytes are missing or wrong somewhere. */
  lost: string[];
  /** Files whose two bricks differ. */
  divergent: string[];
}

export interface VerifyTarget {
  label: string;
  root: string;
}

async function readOrUndefined(p: string): Promise<Buffer | undefined> {
  try {
    return await readFile(p);
  } catch {
    return undefined;
  }
}

/** Where `buf` departs from the stream, in 64 KiB blocks: "wrong at 1048576-1114112 (zeros), ...". */
function wrongRanges(path: string, buf: Buffer): string {
  const BLK = 64 << 10;
  const out: string[] = [];
  for (let off = 0; off < buf.length && out.length < 4; off += BLK) {
    const got = buf.subarray(off, Math.min(buf.length, off + BLK));
    if (got.equals(streamBytes(path, off, got.length))) continue;
    let end = off + BLK;
    while (end < buf.length && !buf.subarray(end, Math.min(buf.length, end + BLK)).equals(streamBytes(path, end, Math.min(BLK, buf.length - end)))) end += BLK;
    const zeros = buf.subarray(off, Math.min(end, buf.length)).every((b) => b === 0);
    out.push(`wrong at ${off}-${Math.min(end, buf.length)}${zeros ? " (zeros)" : ""}`);
    off = end - BLK;
  }
  return out.join(", ");
}

/** One copy holds the acknowledged prefix exactly and nothing but stream bytes beyond it. */
function holds(f: AckedFile, buf: Buffer | undefined): string | undefined {
  if (!buf) return f.acked > 0 ? "missing" : undefined;
  if (buf.length < f.acked) return `short: ${buf.length} < ${f.acked} acknowledged`;
  if (createHash("sha256").update(buf.subarray(0, f.acked)).digest("hex") !== f.sha256) return `acknowledged bytes differ (${wrongRanges(f.path, buf.subarray(0, f.acked))}; size ${buf.length}, ${f.acked} acknowledged)`;
  if (buf.length > f.acked && !buf.subarray(f.acked).equals(streamBytes(f.path, f.acked, buf.length - f.acked))) return "bytes beyond the acknowledged length are not the writer's";
  return undefined;
}

/**
 * Compares every file of the ledger on every target (the mount, each brick). Bricks are also compared
 * with each other (divergence) when `bricks` has two entries.
 */
export async function verify(ledger: AckLedger, mount: VerifyTarget | undefined, bricks: VerifyTarget[]): Promise<VerifyResult & { problems: string[] }> {
  const r: VerifyResult & { problems: string[] } = { files: 0, bytesVerified: 0, lost: [], divergent: [], problems: [] };
  for (const f of ledger.files.values()) {
    r.files++;
    let lost = false;
    const copies: (Buffer | undefined)[] = [];
    for (const t of [...(mount ? [mount] : []), ...bricks]) {
      const buf = await readOrUndefined(join(t.root, f.path));
      const why = holds(f, buf);
      if (why) {
        lost = true;
        r.problems.push(`${t.label}:${f.path}: ${why}`);
      } else {
        r.bytesVerified += f.acked;
      }
      if (t !== mount) copies.push(buf);
    }
    if (lost) r.lost.push(f.path);
    if (copies.length === 2 && !(copies[0] && copies[1] && copies[0].equals(copies[1])) && (copies[0] || copies[1])) {
      r.divergent.push(f.path);
      r.problems.push(`${f.path}: bricks differ (${copies[0]?.length ?? "absent"} vs ${copies[1]?.length ?? "absent"} bytes)`);
    }
  }
  return r;
}

/** The size of a file through a path, or -1. */
export async function sizeOf(p: string): Promise<number> {
  return stat(p).then((s) => s.size, () => -1);
}

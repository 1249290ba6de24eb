// The bench's workloads: each runs in a fresh directory of the target and returns one figure.
// Plain synchronous fs calls, one at a time, as a single-threaded application (cp, ls, Apache's
// per-request open/read/close) would make them.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";

export interface Sizes {
  /** Sequential write/read file size, MiB. */
  seqMiB: number;
  /** Small (4 KiB) files for create/stat/read/unlink. */
  smallFiles: number;
  /** Files in the tree walk (20 directories). */
  walkFiles: number;
  /** Files under `ls -lR` (10 directories). */
  lsFiles: number;
}

export const FULL: Sizes = { seqMiB: 256, smallFiles: 2000, walkFiles: 2000, lsFiles: 10000 };
export const QUICK: Sizes = { seqMiB: 16, smallFiles: 200, walkFiles: 200, lsFiles: 1000 };
/**
 * The unmeasured warm-up before the full rounds: as many small files as a round (gluster-ha's create
 * rate rose over its first ~3,000 files: 205, 304, 375, then 345-390 files/s per 1,000, its processes'
 * CPU per file ~6 -> ~3 ms while V8 optimised the hot paths), less of the bulk work, which warms up sooner.
 */
export const WARM_UP: Sizes = { seqMiB: 64, smallFiles: 2000, walkFiles: 2000, lsFiles: 2000 };

export interface Metric {
  key: string;
  label: string;
  unit: string;
  /** true: bigger is better (rates); false: smaller is better (seconds). */
  higherIsBetter: boolean;
}

export const METRICS: Metric[] = [
  { key: "seqWrite", label: "sequential write + fsync", unit: "MB/s", higherIsBetter: true },
  { key: "seqRead", label: "cold sequential read", unit: "MB/s", higherIsBetter: true },
  { key: "create", label: "4 KiB file create", unit: "files/s", higherIsBetter: true },
  { key: "stat", label: "stat (cold)", unit: "stats/s", higherIsBetter: true },
  { key: "walk", label: "tree walk", unit: "s", higherIsBetter: false },
  { key: "readVerify", label: "small-file read + verify", unit: "files/s", higherIsBetter: true },
  { key: "unlink", label: "unlink", unit: "files/s", higherIsBetter: true },
  { key: "lsR", label: "ls -lR", unit: "s", higherIsBetter: false },
];

/** Drops the kernel's page, dentry and inode caches (cold reads reach the filesystem). */
export function dropCaches(): boolean {
  spawnSync("sync");
  try {
    fs.writeFileSync("/proc/sys/vm/drop_caches", "3");
    return true;
  } catch {
    return false;
  }
}

const MiB = 1 << 20;

/** Jiffies busy and in all since boot, from /proc/stat's cpu line (undefined where there is none). */
function cpuJiffies(): { busy: number; all: number } | undefined {
  try {
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const all = f.reduce((a, b) => a + b, 0);
    return { busy: all - f[3]! - f[4]!, all };
  } catch {
    return undefined;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes back what earlier workloads left dirty, then waits until the machine is quiet (under 10% of
 * its CPU busy over 200 ms; at most 10 s): what a system leaves behind after a workload (dirty files
 * and metadata that the next fsync would commit with its own, delayed post-ops, GlusterFS's janitor
 * removing unlinked files) must not be charged to the next workload, whichever system runs it.
 */
function waitQuiet(): void {
  spawnSync("sync");
  const deadline = performance.now() + 10_000;
  let before = cpuJiffies();
  while (before && performance.now() < deadline) {
    Atomics.wait(sleeper, 0, 0, 200);
    const now = cpuJiffies()!;
    if (now.all > before.all && (now.busy - before.busy) / (now.all - before.all) < 0.1) return;
    before = now;
  }
}

function timed(fn: () => void): number {
  waitQuiet();
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

/** A 4 KiB buffer whose content names its file (so a read of the wrong file fails verification). */
function smallContent(i: number): Buffer {
  const b = Buffer.alloc(4096, i & 255);
  b.write(`file ${i}\n`, 0);
  return b;
}

export type Results = Record<string, number>;

/** One workload's progress: `step` after each item (bytes or files), `done` with its figure. */
export interface WorkloadProgress {
  step(n?: number): void;
  done(figure: string): void;
}
/** Starts the progress of a workload of `total` items. */
export type TrackWorkload = (label: string, total: number, unit: "count" | "bytes") => WorkloadProgress;

/** Writes `mib` copies of the 1 MiB `chunk` to `path` in 1 MiB requests (then fsync, if asked). */
export function writeSequential(path: string, chunk: Buffer, mib: number, fsync: boolean, step?: (bytes: number) => void): void {
  const fd = fs.openSync(path, "w");
  for (let i = 0; i < mib; i++) {
    fs.writeSync(fd, chunk, 0, MiB, i * MiB);
    step?.(MiB);
  }
  if (fsync) fs.fsyncSync(fd);
  fs.closeSync(fd);
}

/** Reads `path` from start to end in 1 MiB requests; throws unless it held `bytes`. */
export function readSequential(path: string, bytes: number, step?: (bytes: number) => void): void {
  const buf = Buffer.alloc(MiB);
  const fd = fs.openSync(path, "r");
  let total = 0;
  for (let n; (n = fs.readSync(fd, buf, 0, MiB, total)) > 0; ) {
    total += n;
    step?.(n);
  }
  fs.closeSync(fd);
  if (total !== bytes) throw new Error(`${path}: read ${total} bytes, wrote ${bytes}`);
}

/** Runs every workload under `root` (which must be empty and is left empty). */
export function runWorkloads(root: string, sizes: Sizes, track: TrackWorkload): Results {
  const r: Results = {};
  // 1. sequential write with fsync
  const big = join(root, "seq.bin");
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  let pr = track("seq write", sizes.seqMiB * MiB, "bytes");
  let secs = timed(() => writeSequential(big, chunk, sizes.seqMiB, true, (n) => pr.step(n)));
  r.seqWrite = (sizes.seqMiB * MiB) / 1e6 / secs;
  pr.done(`${r.seqWrite.toFixed(1)} MB/s`);
  // 2. cold sequential read
  dropCaches();
  pr = track("cold seq read", sizes.seqMiB * MiB, "bytes");
  secs = timed(() => readSequential(big, sizes.seqMiB * MiB, (n) => pr.step(n)));
  r.seqRead = (sizes.seqMiB * MiB) / 1e6 / secs;
  pr.done(`${r.seqRead.toFixed(1)} MB/s`);
  fs.unlinkSync(big);
  // 3. small files: create, stat, read+verify, unlink
  const small = join(root, "small");
  fs.mkdirSync(small);
  const names = Array.from({ length: sizes.smallFiles }, (_, i) => join(small, `f${i}`));
  pr = track("create", sizes.smallFiles, "count");
  secs = timed(() => names.forEach((n, i) => {
    fs.writeFileSync(n, smallContent(i), { flag: "wx" });
    pr.step();
  }));
  r.create = sizes.smallFiles / secs;
  pr.done(`${r.create.toFixed(0)} files/s`);
  dropCaches();
  pr = track("stat", sizes.smallFiles, "count");
  secs = timed(() => names.forEach((n) => {
    if (fs.statSync(n).size !== 4096) throw new Error(`${n}: wrong size`);
    pr.step();
  }));
  r.stat = sizes.smallFiles / secs;
  pr.done(`${r.stat.toFixed(0)} stats/s`);
  dropCaches();
  pr = track("read+verify", sizes.smallFiles, "count");
  secs = timed(() => names.forEach((n, i) => {
    if (!fs.readFileSync(n).equals(smallContent(i))) throw new Error(`${n}: content differs`);
    pr.step();
  }));
  r.readVerify = sizes.smallFiles / secs;
  pr.done(`${r.readVerify.toFixed(0)} files/s`);
  pr = track("unlink", sizes.smallFiles, "count");
  secs = timed(() => names.forEach((n) => {
    fs.unlinkSync(n);
    pr.step();
  }));
  r.unlink = sizes.smallFiles / secs;
  pr.done(`${r.unlink.toFixed(0)} files/s`);
  fs.rmdirSync(small);
  // 4. tree walk (20 directories)
  const tree = join(root, "tree");
  makeTree(tree, 20, sizes.walkFiles, 1024, track("tree walk: make the tree", sizes.walkFiles, "count"));
  dropCaches();
  let seen = 0;
  pr = track("tree walk", sizes.walkFiles + 20, "count");
  secs = timed(() => {
    seen = walk(tree, pr);
  });
  if (seen !== sizes.walkFiles + 20) throw new Error(`walk saw ${seen} entries, expected ${sizes.walkFiles + 20}`);
  r.walk = secs;
  pr.done(`${r.walk.toFixed(2)} s`);
  fs.rmSync(tree, { recursive: true });
  // 5. ls -lR (10 directories)
  const lsTree = join(root, "ls");
  makeTree(lsTree, 10, sizes.lsFiles, 0, track("ls -lR: make the tree", sizes.lsFiles, "count"));
  dropCaches();
  pr = track("ls -lR", sizes.lsFiles, "count"); // one child process: its files count when it ends
  secs = timed(() => {
    const res = spawnSync("ls", ["-lR", lsTree], { stdio: ["ignore", "ignore", "pipe"] });
    if (res.status !== 0) throw new Error(`ls -lR failed: ${res.stderr}`);
    pr.step(sizes.lsFiles);
  });
  r.lsR = secs;
  pr.done(`${r.lsR.toFixed(2)} s`);
  fs.rmSync(lsTree, { recursive: true });
  return r;
}

function makeTree(dir: string, dirs: number, files: number, size: number, pr: WorkloadProgress): void {
  fs.mkdirSync(dir);
  const content = Buffer.alloc(size, "t");
  for (let d = 0; d < dirs; d++) fs.mkdirSync(join(dir, `d${d}`));
  for (let i = 0; i < files; i++) {
    fs.writeFileSync(join(dir, `d${i % dirs}`, `f${i}`), content);
    pr.step();
  }
  pr.done(`${files} files`);
}

/** Like `find -ls`: every entry listed and lstat'ed; returns how many entries were seen. */
function walk(dir: string, pr: WorkloadProgress): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    fs.lstatSync(p);
    n++;
    pr.step();
    if (e.isDirectory()) n += walk(p, pr);
  }
  return n;
}

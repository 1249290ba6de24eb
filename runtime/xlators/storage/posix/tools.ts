import { execFile } from "node:child_process";
import { getSystemErrorMap } from "node:util";
import { createServer } from "node:net";
import { link, unlink } from "node:fs/promises";
import { FopError } from "../../../core/errors";

/**
 * What Node's fs lacks, done through util-linux tools or sockets: fallocate(2) modes and mknod(2)
 * of fifos, devices and sockets. These fops are rare, so a process spawn per call is acceptable.
 */

// errno name for a tool's stderr ("fallocate: fallocate failed: No space left on device"): the tools
// print glibc's strerror, which differs from libuv's wording for some codes, so glibc's come first.
const GLIBC_MESSAGES: [string, string][] = [
  ["ENOSPC", "No space left on device"], ["EEXIST", "File exists"], ["ENOENT", "No such file or directory"],
  ["EOPNOTSUPP", "Operation not supported"], ["EINVAL", "Invalid argument"], ["EFBIG", "File too large"],
  ["EBADF", "Bad file descriptor"], ["ENOTDIR", "Not a directory"], ["EPERM", "Operation not permitted"],
  ["EACCES", "Permission denied"], ["EIO", "Input/output error"], ["EDQUOT", "Disk quota exceeded"],
  ["EROFS", "Read-only file system"], ["ENAMETOOLONG", "File name too long"], ["ENODEV", "No such device"],
  ["ESPIPE", "Illegal seek"], ["EISDIR", "Is a directory"], ["ELOOP", "Too many levels of symbolic links"],
];
const messages = [...GLIBC_MESSAGES, ...[...getSystemErrorMap().values()].map(([n, m]): [string, string] => [n, m])];
function errnoOfMessage(stderr: string): string {
  const s = stderr.toLowerCase();
  for (const [name, msg] of messages) if (s.includes(msg.toLowerCase())) return name;
  return "EIO";
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
      reject(new FopError(missing ? "EOPNOTSUPP" : errnoOfMessage(String(stderr)), `${cmd}: ${String(stderr).trim() || err.message}`));
    });
  });
}

export const FALLOC = { KEEP_SIZE: 0x01, PUNCH_HOLE: 0x02, ZERO_RANGE: 0x10 } as const;

/** fallocate(2) on an open file (`path` is its /proc/PID/fd link). Modes: 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE[|KEEP_SIZE]. */
export async function fallocate(path: string, mode: number, offset: number, len: number): Promise<void> {
  const args = ["-o", String(offset), "-l", String(len)];
  if (mode === 0) {
    // plain allocation
  } else if (mode === FALLOC.KEEP_SIZE) args.push("-n");
  else if (mode === (FALLOC.PUNCH_HOLE | FALLOC.KEEP_SIZE)) args.push("-p");
  else if (mode === FALLOC.ZERO_RANGE) args.push("-z");
  else if (mode === (FALLOC.ZERO_RANGE | FALLOC.KEEP_SIZE)) args.push("-z", "-n");
  else throw new FopError("EOPNOTSUPP", `fallocate mode ${mode} not supported`);
  await run("fallocate", [...args, path]);
}

/** Linux dev_t split (glibc's gnu_dev_major/minor for values below 2^32). */
export function devMajorMinor(rdev: number): [number, number] {
  return [(rdev >>> 8) & 0xfff, (rdev & 0xff) | ((rdev >>> 12) & 0xfff00)];
}

/** mknod of a fifo or device node with exact permission bits. */
export async function mknodSpecial(path: string, kind: "p" | "c" | "b", perm: number, rdev: number): Promise<void> {
  const args = ["-m", (perm & 0o7777).toString(8), path, kind];
  if (kind !== "p") args.push(...devMajorMinor(rdev).map(String));
  await run("mknod", args);
}

/**
 * A unix socket node: bind a listening socket at a short temporary path inside the brick (bind
 * paths are limited to 107 bytes, so `shortDir` is a /proc/PID/fd link to the brick's internal
 * dir), hard-link the node into place (EEXIST if taken), then drop the temporary name and close.
 */
export async function mksock(shortDir: string, realTmpDir: string, dest: string): Promise<void> {
  const name = `sock-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(`${shortDir}/${name}`, () => resolve());
  });
  try {
    await link(`${realTmpDir}/${name}`, dest); // link, not rename: an existing dest must give EEXIST
  } finally {
    await unlink(`${realTmpDir}/${name}`).catch(() => undefined);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

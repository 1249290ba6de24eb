import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { stat, statfs } from "node:fs/promises";
import { resolve } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "pino";
import { FopError } from "../core/errors";

const run = promisify(execFile);

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string[];
}

/** /proc/mounts escapes space, tab, newline and backslash as octal (\040 ...). */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The last (topmost) mount on `mountpoint`, if any. */
export function mountEntry(mountpoint: string): MountEntry | undefined {
  const target = resolve(mountpoint);
  let found: MountEntry | undefined;
  for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
    const [source, mnt, fstype, opts] = line.split(" ");
    if (!source || !mnt || !fstype) continue;
    if (unescapeMountField(mnt) === target) {
      found = { source: unescapeMountField(source), target, fstype, options: (opts ?? "").split(",") };
    }
  }
  return found;
}

/**
 * The device number ("major:minor") of the topmost mount on `mountpoint`, from /proc/self/mountinfo:
 * the FUSE process must never stat its own mountpoint (the kernel would ask it, and it is busy asking).
 */
export function mountDevice(mountpoint: string): string | undefined {
  const target = resolve(mountpoint);
  let found: string | undefined;
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    if (f[4] !== undefined && unescapeMountField(f[4]) === target) found = f[2];
  }
  return found;
}

export function isMounted(mountpoint: string): boolean {
  return mountEntry(mountpoint) !== undefined;
}

/** Lazily detaches a mount (busy or dead), trying fusermount first (the FUSE way), then umount. */
export async function lazyUnmount(mountpoint: string): Promise<void> {
  try {
    await run("fusermount", ["-uz", mountpoint]);
  } catch {
    await run("umount", ["-l", mountpoint]);
  }
}

/**
 * Makes `mountpoint` ready for a new mount: a FUSE mount left by a crashed process answers every
 * access with ENOTCONN ("Transport endpoint is not connected") and is detached lazily. A live mount
 * there is refused (EBUSY) rather than stacked over.
 */
export async function clearStaleMount(mountpoint: string, log: Logger): Promise<"none" | "cleared"> {
  const entry = mountEntry(mountpoint);
  try {
    await stat(mountpoint);
    // The kernel may answer stat from its attribute cache for a while after the process died; statfs
    // always asks the process.
    if (entry && entry.fstype.startsWith("fuse")) await statfs(mountpoint);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTCONN" || code === "ECONNABORTED") {
      log.warn({ mountpoint }, "stale mount (transport endpoint is not connected): unmounting it lazily");
      await lazyUnmount(mountpoint);
      return "cleared";
    }
    throw FopError.from(err, { fop: "mount" });
  }
  if (entry && entry.fstype.startsWith("fuse")) {
    throw new FopError("EBUSY", `${mountpoint} is already mounted (${entry.source}, ${entry.fstype})`, { fop: "mount" });
  }
  return "none";
}

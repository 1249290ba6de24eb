import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError } from "../../core/errors";
import { findManifestAbove } from "../native";

/**
 * Where scripts/build-fuse-device.sh puts the fuse_device addon (fuse_device.c beside this file):
 * `native/fuse-device/current.json` names the build dir holding fuse_device.node. Found by walking up
 * from this file like the patched fuse-native (runtime/fuse/native.ts), so it works from the sources,
 * the bundle (dist/bin) and a host's runtime bundle.
 */
export const FUSE_DEVICE_MANIFEST = join("native", "fuse-device", "current.json");

/** A readiness watch on an fd; the fd itself stays open (closing it is the caller's job, after close()). */
export interface FuseDeviceWatch {
  /** Stops the callbacks and frees the poll handle. Idempotent. */
  close(): void;
}

/**
 * Syscalls on a /dev/fuse fd from the main event loop. Syscall failures come back as -errno
 * (-11 EAGAIN: nothing to read; -19 ENODEV: unmounted; -2 ENOENT on a write: request was interrupted),
 * never as exceptions; only bad arguments throw (TypeError).
 */
export interface FuseDevice {
  /**
   * Polls `fd` (uv_poll, readable or disconnect) and calls `onReadable()` each time the loop sees it
   * ready, also after a poll error (the next read reports the errno; libuv then stops polling). The
   * callback runs like any Node I/O callback: nextTicks and promise jobs run after it, and a throw is
   * an uncaught exception. Makes `fd` non-blocking. One watch per fd; it keeps the process alive
   * until closed. Throws (Error with a libuv code such as EPERM) if the fd cannot be polled.
   */
  watch(fd: number, onReadable: () => void): FuseDeviceWatch;
  /** One read(2) into `buf` (its whole length; EINTR retried): bytes read, or -errno. */
  read(fd: number, buf: Uint8Array): number;
  /** One writev(2) of up to 16 buffers, in order (EINTR retried): bytes written, or -errno. */
  writev(fd: number, bufs: readonly Uint8Array[]): number;
  /** malloc_trim(0): returns glibc's free heap pages to the system (1 if any were). See fuse_device.c. */
  trimHeap(): number;
}

interface DeviceManifest {
  hash: string;
  dir: string;
}

/** The path of the built fuse_device.node, or undefined when no manifest is found above `start`. */
export function findFuseDevice(start = __dirname): string | undefined {
  const manifest = findManifestAbove(FUSE_DEVICE_MANIFEST, start);
  if (!manifest) return undefined;
  const m = JSON.parse(readFileSync(manifest, "utf8")) as DeviceManifest;
  const addon = join(dirname(manifest), m.dir, "fuse_device.node");
  if (!existsSync(addon)) {
    throw new ConfigError(`${manifest} names ${m.dir}, which has no fuse_device.node; run scripts/build-fuse-device.sh`);
  }
  return addon;
}

let loaded: FuseDevice | undefined;

export function loadFuseDevice(): FuseDevice {
  if (loaded) return loaded;
  const addon = findFuseDevice(__dirname);
  if (!addon) {
    throw new ConfigError(`fuse_device addon not found (${FUSE_DEVICE_MANIFEST} above ${__dirname}); run \`npm run build\` (scripts/build-fuse-device.sh)`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time
  loaded = require(addon) as FuseDevice;
  return loaded;
}

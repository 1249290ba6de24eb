import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type FuseNative = require("fuse-native");
import { ConfigError } from "../core/errors";

/**
 * Where scripts/build-fuse-native.sh puts fuse-native built with our patches (patches/fuse-native/):
 * `native/fuse-native/current.json` names the build dir, a copy of the package whose index.js loads
 * its own build/Release/fuse.node. Found by walking up from this file, so it works from the sources
 * (runtime/fuse), the bundle (dist/bin) and a host's runtime bundle (bin/, native/ beside it).
 */
export const NATIVE_MANIFEST = join("native", "fuse-native", "current.json");

interface NativeManifest {
  dir: string;
  fuseNative: string;
  patches: string[];
}

/**
 * The nearest `relativePath` (a build manifest such as NATIVE_MANIFEST) in `start` or a directory
 * above it, or undefined. Shared by the native builds' loaders (also runtime/fuse/kernel/device.ts).
 */
export function findManifestAbove(relativePath: string, start = __dirname): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, relativePath);
    if (existsSync(manifest)) return manifest;
    if (dirname(dir) === dir) return undefined;
  }
}

export function findPatchedFuseNative(start = __dirname): string | undefined {
  const manifest = findManifestAbove(NATIVE_MANIFEST, start);
  if (!manifest) return undefined;
  const m = JSON.parse(readFileSync(manifest, "utf8")) as NativeManifest;
  const index = join(dirname(manifest), m.dir, "index.js");
  if (!existsSync(join(dirname(index), "build", "Release", "fuse.node"))) {
    throw new ConfigError(`${manifest} names ${m.dir}, which has no build/Release/fuse.node; run scripts/build-fuse-native.sh`);
  }
  return index;
}

let loaded: typeof FuseNative | undefined;

/**
 * The patched fuse-native (utimens with both times, fcntl/flock locks, the caller's uid/gid/pid).
 * The stock package is not a fallback: it would silently lose those.
 */
export function loadFuseNative(): typeof FuseNative {
  if (loaded) return loaded;
  const index = findPatchedFuseNative();
  if (!index) {
    throw new ConfigError(`patched fuse-native not found (${NATIVE_MANIFEST} above ${__dirname}); run \`npm run build\` (scripts/build-fuse-native.sh)`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time
  loaded = require(index) as typeof FuseNative;
  return loaded;
}

// The runtime bundle shipped to every host: dist/bin/*.js (the CLIs, built by scripts/build.mjs) plus the
// packages they leave external (native modules and what they require), as one tar.gz named by the hash
// of its content. Hosts re-copy only when that hash changes.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { ConfigError } from "../runtime/core/errors";

/** Packages the bundled CLIs require at run time (scripts/build.mjs `external`), closed over their deps. */
export const RUNTIME_EXTERNALS = ["fuse-native", "@napi-rs/xattr", "msgpackr", "msgpackr-extract", "prom-client", "pino", "thread-stream"];

export interface RuntimeBundle {
  /** sha256 of every bundled file's path and content (first 16 hex digits name the release). */
  hash: string;
  /** The tar.gz on this machine. */
  archivePath: string;
  version: string;
}

/** The package's root (where package.json and dist/ live), from provider/ or dist/provider/. */
export function packageRoot(start = __dirname): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "gluster-ha") return dir;
    if (dirname(dir) === dir) throw new ConfigError(`cannot find the gluster-ha package above ${start}`);
  }
}

/** Resolves `name` the way Node would from `fromDir` (nearest node_modules up the tree). */
function resolvePackageDir(name: string, fromDir: string, root: string): string | undefined {
  for (let dir = fromDir; dir.startsWith(root); dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) break;
  }
  return undefined;
}

/** Every package directory the externals need: dependencies, and optional ones that are installed. */
export function collectPackageDirs(root: string, names = RUNTIME_EXTERNALS): string[] {
  const seen = new Set<string>();
  const visit = (name: string, fromDir: string, optional: boolean): void => {
    const dir = resolvePackageDir(name, fromDir, root);
    if (!dir) {
      if (optional) return;
      throw new ConfigError(`runtime bundle: package ${name} is not installed (run npm install)`);
    }
    if (seen.has(dir)) return;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, dir, true);
  };
  for (const name of names) visit(name, root, false);
  return [...seen].sort();
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []))
    .sort();
}

/**
 * The native builds the runtime loads by walking up from the bin dir: the patched fuse-native
 * (runtime/fuse/native.ts, `native/fuse-native/current.json`) and the fuse_device addon
 * (runtime/fuse/kernel/device.ts, `native/fuse-device/current.json`): each manifest and the build
 * directory it names.
 */
function nativeBuildFiles(root: string): string[] {
  return ["fuse-native", "fuse-device"].flatMap((name) => {
    const manifest = join(root, "native", name, "current.json");
    if (!existsSync(manifest)) throw new ConfigError(`runtime bundle: ${manifest} is missing; run \`npm run build\` first`);
    const { dir } = JSON.parse(readFileSync(manifest, "utf8")) as { dir: string };
    return [manifest, ...listFiles(join(root, "native", name, dir))];
  });
}

/**
 * Builds (or reuses) the archive. The hash covers paths and contents, not timestamps, so an unchanged
 * build gives the same release and `pulumi up` shows no change.
 */
export function bundleRuntime(root = packageRoot()): RuntimeBundle {
  const distBin = join(root, "dist", "bin");
  for (const cli of ["glusterfsd.js", "glusterfs.js", "gluster-ha.js"]) {
    if (!existsSync(join(distBin, cli))) throw new ConfigError(`runtime bundle: ${join(distBin, cli)} is missing; run \`npm run build\` first`);
  }
  const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  const entries = [
    ...readdirSync(distBin).filter((f) => /\.js(\.map)?$/.test(f)).sort().map((f) => join(distBin, f)),
    ...nativeBuildFiles(root),
    ...collectPackageDirs(root).flatMap(listFiles),
  ];
  const hasher = createHash("sha256").update(`gluster-ha ${version}\n`);
  for (const file of entries) hasher.update(`${relative(root, file)}\0${statSync(file).mode & 0o111 ? "x" : "-"}\0`).update(readFileSync(file));
  const hash = hasher.digest("hex").slice(0, 16);
  const cacheDir = join(root, ".cache", "runtime");
  const archivePath = join(cacheDir, `gluster-ha-runtime-${version}-${hash}.tar.gz`);
  if (!existsSync(archivePath)) {
    mkdirSync(cacheDir, { recursive: true });
    // Layout on the host: bin/*.js next to node_modules/, so the CLIs' require() finds the packages.
    const tmp = `${archivePath}.${process.pid}.tmp`;
    execFileSync("tar", [
      "-czf", tmp, "--owner=0", "--group=0", "--numeric-owner", "--sort=name", "--mtime=@0",
      "--transform", "s,^dist/bin,bin,",
      "-C", root,
      ...entries.map((f) => relative(root, f)),
    ]);
    renameSync(tmp, archivePath);
  }
  return { hash, archivePath, version };
}

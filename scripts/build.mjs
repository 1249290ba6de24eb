// Builds the CLIs (one bundle each, native modules left external) and the Pulumi component.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, readdirSync } from "node:fs";

// fuse-native built with our patches (patches/fuse-native/*.patch) into native/fuse-native/: the FUSE
// bridge loads it from there (runtime/fuse/native.ts). Returns at once when already built.
execFileSync("bash", ["scripts/build-fuse-native.sh"], { stdio: "inherit" });
// The fuse_device addon (runtime/fuse/kernel/fuse_device.c) into native/fuse-device/ (runtime/fuse/kernel/device.ts).
execFileSync("bash", ["scripts/build-fuse-device.sh"], { stdio: "inherit" });

// The CLIs run with the environment and V8 flags of runtime/cli/node-flags.json (why: see there); `env -S`
// splits the #! line and sets the variables.
const nodeSettings = JSON.parse(readFileSync("runtime/cli/node-flags.json", "utf8"));
const nodeCommand = [...Object.entries(nodeSettings.env).map(([k, v]) => `${k}=${v}`), "node", ...nodeSettings.flags];
const external = ["fuse-native", "@napi-rs/xattr", "msgpackr-extract", "prom-client", "pino", "thread-stream"];
const clis = readdirSync("runtime/cli").filter((f) => f.endsWith(".ts") && !f.startsWith("_"));
await build({
  entryPoints: clis.map((f) => `runtime/cli/${f}`),
  outdir: "dist/bin",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  external,
  banner: { js: `#!/usr/bin/env -S ${nodeCommand.join(" ")}` },
  logLevel: "warning",
});
for (const f of clis) chmodSync(`dist/bin/${f.replace(/\.ts$/, ".js")}`, 0o755);
if (existsSync("provider/index.ts")) {
  await build({
    entryPoints: ["provider/index.ts"],
    outdir: "dist/provider",
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    sourcemap: true,
    packages: "external",
    logLevel: "warning",
  });
}
// Types for the package's users, and a strict type check of everything.
execFileSync("npx", ["tsc", "-p", "tsconfig.json", "--noEmit"], { stdio: "inherit" });

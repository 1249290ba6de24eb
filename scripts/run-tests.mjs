// Runs every test file with node's test runner, one file at a time (they mount, bind ports, spawn
// servers). Usage: node scripts/run-tests.mjs [unit|integration|e2e|faults ...]
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";

const suites = process.argv.slice(2).length ? process.argv.slice(2) : ["unit", "integration", "faults", "e2e"];
const files = suites.flatMap((s) =>
  existsSync(`test/${s}`) ? readdirSync(`test/${s}`).filter((f) => f.endsWith(".test.ts")).sort().map((f) => `test/${s}/${f}`) : [],
);
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);

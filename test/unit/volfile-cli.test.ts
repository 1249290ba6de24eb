import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const SEED = join(ROOT, "test", "fixtures", "seed");

// Runs volfileCheckMain in a child process, as the CLIs' --volfile-check does.
function check(file: string): { status: number | null; stdout: string; stderr: string } {
  const script = `process.exitCode = require("./runtime/volfile/check").volfileCheckMain(${JSON.stringify(file)});`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("volfile check prints ok with the volume count and top, exit 0", () => {
  const r = check(join(SEED, "client.vol"));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `ok: ${join(SEED, "client.vol")} (3 volumes, top: readahead)\n`);
});

test("volfile check prints every error with file:line, exit 1", (t) => {
  const r = check(join(SEED, "node1-server.vol"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /node1-server\.vol:35: unknown option "auth\.ip\.gfs-ds-".*did you mean "auth\.ip\.gfs-ds-locks\.allow"/);

  const dir = mkdtempSync(join(tmpdir(), "gha-volcheck-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, "bad.vol");
  writeFileSync(bad, "volume a\ntype storage/posix\noption directory /x\noption fsync maybe\nend-volume\nvolume b\ntype nope/x\nend-volume\n");
  const many = check(bad);
  assert.equal(many.status, 1);
  const lines = many.stderr.trim().split("\n");
  assert.deepEqual(lines.slice(0, -1).map((l) => l.replace(/^.*?:(\d+):.*$/, "$1")), ["1", "4", "7"]);
  assert.equal(lines.at(-1), `${bad}: 3 errors`);

  const syntax = join(dir, "syntax.vol");
  writeFileSync(syntax, "volume a\ntype storage/posix\noption directory\nend-volume\nend-volume\n");
  assert.match(check(syntax).stderr, /syntax\.vol:3: option "directory" has no value\n.*syntax\.vol:5: end-volume without a volume block/);

  const missing = check(join(dir, "nope.vol"));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.vol: cannot read volfile \(ENOENT\)/);
});

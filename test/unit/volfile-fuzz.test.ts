import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { ConfigError } from "../../runtime/core/errors";
import { checkVolfile, collectVolfileErrors, parseVolfile, parseVolfileCollecting } from "../../runtime/volfile";

const SEED = join(__dirname, "..", "fixtures", "seed");
const seeds = ["node1-server.vol", "node2-server.vol", "client.vol"].map((f) => readFileSync(join(SEED, f), "utf8"));

// Loading either succeeds or fails with a ConfigError "fuzz.vol:LINE: ..."; anything else is a bug.
function loadsOrFailsCleanly(text: string): void {
  try {
    checkVolfile(parseVolfile(text, "fuzz.vol"));
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}\n--- input ---\n${text}`);
    assert.match(err.message, /^fuzz\.vol:\d+: \S/, err.message);
    const line = Number(/^fuzz\.vol:(\d+):/.exec(err.message)![1]);
    assert.ok(line >= 1 && line <= text.split("\n").length, `line ${line} outside the file: ${err.message}`);
  }
  // The collecting path (--volfile-check) must hold up as well.
  const { volfile, errors } = parseVolfileCollecting(text, "fuzz.vol");
  for (const e of [...errors, ...(errors.length === 0 ? collectVolfileErrors(volfile) : [])]) {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /^fuzz\.vol:\d+: \S/);
  }
}

const PIECES = [
  "volume", "end-volume", "type", "option", "subvolumes", "subvolumeS", "\n", " ", "\t", "#", '"', "\\", "`",
  "storage/posix", "protocol/server", "cluster/afr", "gfs", "gfs-ds", "server", "auth.ip.gfs.allow", "64MB",
  "99999999999999999999PB", "-1", "0.5", "on", "*", ",", "/", "\r", "é", "\u0000", "directory", "page-size",
];

const mutation = fc.record({
  at: fc.nat(),
  remove: fc.nat({ max: 12 }),
  insert: fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 6 })),
});

test("mutated seed volfiles load or fail with a file:line ConfigError", () => {
  fc.assert(
    fc.property(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 6 }), (seed, edits) => {
      let text = seed;
      for (const e of edits) {
        const at = e.at % (text.length + 1);
        text = text.slice(0, at) + e.insert + text.slice(at + e.remove);
      }
      loadsOrFailsCleanly(text);
    }),
    { numRuns: 1500 },
  );
});

test("random token soups load or fail with a file:line ConfigError", () => {
  const soup = fc.array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 4 })), { maxLength: 60 }).map((p) => p.join(" "));
  fc.assert(fc.property(soup, loadsOrFailsCleanly), { numRuns: 1500 });
});

test("arbitrary unicode text loads or fails with a file:line ConfigError", () => {
  fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 300 }), loadsOrFailsCleanly), { numRuns: 1000 });
});

test("a large volfile checks in well under a second", () => {
  const parts = ["volume v0\ntype storage/posix\noption directory /b\nend-volume"];
  for (let i = 1; i < 2000; i++) parts.push(`volume v${i}\ntype performance/io-threads\noption thread-count 4\nsubvolumes v${i - 1}\nend-volume`);
  const started = performance.now();
  const v = checkVolfile(parseVolfile(parts.join("\n"), "big.vol"));
  const ms = performance.now() - started;
  assert.equal(v.volumes.length, 2000);
  assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
});

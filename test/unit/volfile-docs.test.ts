import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { OPTIONS_DOC, renderOptionsDoc } from "../../scripts/gen-docs";
import { XLATORS } from "../../runtime/xlators/registry";
import { optionTable } from "../../runtime/volfile/schema";

test("docs/options.md is current (regenerate with npm run docs)", () => {
  assert.equal(readFileSync(OPTIONS_DOC, "utf8"), renderOptionsDoc(), "docs/options.md is stale: run `npm run docs`");
});

test("the options doc has a table for every registered translator, pattern options spelled out", () => {
  const doc = renderOptionsDoc();
  for (const type of XLATORS.keys()) assert.ok(doc.includes(`\n## ${type}\n`), type);
  assert.match(doc, /\| `auth\.ip\.<volume>\.allow` \| address-list \|/);
  assert.match(doc, /\| `cache-size` \| size \| `64MB` \|/);
});

test("every registered translator's schema compiles in ajv strict mode", () => {
  for (const def of XLATORS.values()) assert.doesNotThrow(() => optionTable(def), def.type);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MSGIDS, messagesMarkdown, msg } from "../../runtime/core/msgids";
import { MESSAGES_DOC } from "../../scripts/gen-docs";

const ROOT = join(__dirname, "../..");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []);
}

test("docs/messages.md is current (regenerate with npm run docs)", () => {
  assert.equal(readFileSync(MESSAGES_DOC, "utf8"), messagesMarkdown(), "docs/messages.md is stale: run `npm run docs`");
});

test("every msgid logged in the sources is in the catalog", () => {
  const used = new Map<string, string>();
  for (const file of [...sources(join(ROOT, "runtime")), ...sources(join(ROOT, "provider"))]) {
    // `msgid: "X"`, `msgid: cond ? "X" : "Y"`, `msg("X", ...)`
    for (const m of readFileSync(file, "utf8").matchAll(/msgid: ([^,}\n]+)|msg\(("[A-Z0-9_]+")/g)) {
      for (const id of (m[1] ?? m[2]!).matchAll(/"([A-Z][A-Z0-9_]+)"/g)) used.set(id[1]!, file);
    }
  }
  const unknown = [...used].filter(([id]) => !(id in MSGIDS)).map(([id, f]) => `${id} (${f})`);
  assert.deepEqual(unknown, []);
  // The important events are wired, not just catalogued.
  for (const id of ["PC_CONNECTED", "PC_DISCONNECTED", "PS_AUTH_REFUSED", "AFR_CHILD_UP", "AFR_CHILD_DOWN", "AFR_HEAL_STARTED",
    "AFR_HEAL_DONE", "AFR_SPLIT_BRAIN", "VOLFILE_RELOADED", "VOLFILE_NEEDS_RESTART", "STATEDUMP_WRITTEN", "LOG_LEVEL_CHANGED"]) {
    assert.ok(used.has(id), `${id} is logged somewhere`);
  }
});

test("every catalog entry says what it means and what to do", () => {
  for (const [id, d] of Object.entries(MSGIDS)) {
    assert.match(id, /^[A-Z][A-Z0-9_]+$/);
    assert.ok(d.meaning.length > 10 && d.action.length > 3, id);
    assert.ok(messagesMarkdown().includes(`| \`${id}\` | ${d.level} |`), id);
  }
  assert.deepEqual(msg("PC_CONNECTED", { address: "a" }), { address: "a", msgid: "PC_CONNECTED" });
});

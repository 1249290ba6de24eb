// Bounded maps in use order (core/lru.ts): past the bound, the oldest go in one pass down to 15/16.
import { test } from "node:test";
import assert from "node:assert/strict";
import { trimOldest } from "../../runtime/core/lru";

test("a map past its bound loses its oldest entries, down to 15/16 of the bound, and says which", () => {
  const m = new Map<number, string>();
  for (let i = 0; i < 64; i++) m.set(i, `v${i}`);
  const gone: [number, string][] = [];
  trimOldest(m, 64, (k, v) => gone.push([k, v]));
  assert.equal(m.size, 64, "within the bound: untouched");
  assert.equal(gone.length, 0);
  m.set(64, "v64");
  trimOldest(m, 64, (k, v) => gone.push([k, v]));
  assert.equal(m.size, 60, "64 - 64/16");
  assert.deepEqual(gone, [[0, "v0"], [1, "v1"], [2, "v2"], [3, "v3"], [4, "v4"]], "the first inserted first");
  assert.deepEqual([...m.keys()].slice(0, 2), [5, 6]);
  // a small bound keeps exactly its bound
  const small = new Map([["a", 1], ["b", 2], ["c", 3], ["d", 4]]);
  trimOldest(small, 3);
  assert.deepEqual([...small.keys()], ["b", "c", "d"]);
});

test("an entry used again (deleted and set) is kept over older ones", () => {
  const m = new Map<string, number>();
  for (let i = 0; i < 32; i++) m.set(`k${i}`, i);
  m.delete("k0");
  m.set("k0", 0);
  m.set("k32", 32);
  trimOldest(m, 32);
  assert.equal(m.size, 30);
  assert.ok(m.has("k0"), "used last");
  assert.ok(!m.has("k1") && !m.has("k2") && !m.has("k3"));
});

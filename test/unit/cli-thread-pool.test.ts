// The CLIs' thread pool size (runtime/cli/thread-pool.ts): one thread per core, between 2 and 4.
import { test } from "node:test";
import assert from "node:assert/strict";
import { threadPoolSize } from "../../runtime/cli/thread-pool";

test("one pool thread per core, at least 2 and at most libuv's default 4", () => {
  assert.deepEqual([1, 2, 3, 4, 8, 64].map(threadPoolSize), [2, 2, 3, 4, 4, 4]);
});

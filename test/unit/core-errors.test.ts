// FopError: an answer with an errno, cheap to make (no stack trace unless GLUSTER_HA_FOP_STACKS=1).
import { test } from "node:test";
import assert from "node:assert/strict";
import { errnoNumber, FopError } from "../../runtime/core/errors";

test("a FopError names its errno, translator and fop, and captures no stack by default", () => {
  const e = new FopError("ENODATA", "/f: no security.selinux", { xlator: "md-cache", fop: "getxattr" });
  assert.equal(e.code, "ENODATA");
  assert.equal(e.errno, errnoNumber("ENODATA"));
  assert.deepEqual([e.xlator, e.fop], ["md-cache", "getxattr"]);
  assert.ok(e instanceof Error);
  assert.doesNotMatch(e.stack ?? "", /\n\s+at /, "no stack frames");
  // the limit is restored for every other error
  assert.match(new Error("other").stack ?? "", /\n\s+at /);
});

test("with captureStacks on, a FopError has its stack (for debugging), and unknown codes become EIO", () => {
  const saved = FopError.captureStacks;
  FopError.captureStacks = true;
  try {
    const e = new FopError("ENOENT", "gone");
    assert.match(e.stack ?? "", /\n\s+at /);
  } finally {
    FopError.captureStacks = saved;
  }
  assert.equal(new FopError("EWHATEVER").code, "EIO");
  assert.equal(FopError.from(Object.assign(new Error("x"), { code: "EACCES" })).code, "EACCES");
});

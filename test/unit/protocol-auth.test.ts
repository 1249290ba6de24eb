import { test } from "node:test";
import assert from "node:assert/strict";
import { addressMatches, authorize, authRulesFor, normalizeAddress } from "../../runtime/protocol";

test("auth entries match exact addresses, globs and CIDR ranges", () => {
  const cases: [string, string, boolean][] = [
    ["127.0.0.1", "127.0.0.1", true],
    ["127.0.0.2", "127.0.0.1", false],
    ["10.0.0.7", "10.0.0.*", true],
    ["10.0.1.7", "10.0.0.*", false],
    ["10.0.0.17", "10.0.0.1?", true],
    ["10.0.0.7", "*", true],
    ["fd00::5", "*", true],
    ["10.0.0.7", "10.0.0.0/24", true],
    ["10.0.1.7", "10.0.0.0/24", false],
    ["192.168.5.200", "192.168.0.0/16", true],
    ["127.0.0.3", "127.0.0.2/32", false],
    ["127.0.0.2", "127.0.0.2/32", true],
    ["10.0.0.7", "0.0.0.0/0", true],
    ["fd00::5", "fd00::/8", true],
    ["fe80::1", "fd00::/8", false],
    ["10.0.0.7", "fd00::/8", false],
    ["::ffff:10.0.0.7", "10.0.0.0/8", true],
    ["::1", "0:0::1", true],
    ["10.0.0.7", "10.0.0.0/33", false],
    ["10.0.0.7", "bogus/8", false],
  ];
  for (const [addr, entry, want] of cases) assert.equal(addressMatches(addr, entry), want, `${addr} vs ${entry}`);
});

test("reject wins over allow, and a volume without an allow rule is refused", () => {
  const opts = {
    "auth.ip.gfs.allow": ["10.0.0.*", "127.0.0.1"],
    "auth.ip.gfs.reject": ["10.0.0.66"],
    "auth.ip.gfs-ds-locks.allow": ["10.0.0.0/24"],
  };
  assert.equal(authorize("10.0.0.5", authRulesFor(opts, "gfs")).ok, true);
  assert.equal(authorize("127.0.0.1", authRulesFor(opts, "gfs")).ok, true);
  assert.equal(authorize("10.0.0.66", authRulesFor(opts, "gfs")).ok, false);
  assert.equal(authorize("10.0.1.5", authRulesFor(opts, "gfs")).ok, false);
  assert.equal(authorize("10.0.0.9", authRulesFor(opts, "gfs-ds-locks")).ok, true);
  const none = authorize("127.0.0.1", authRulesFor(opts, "gfs-ds"));
  assert.equal(none.ok, false);
  assert.match(none.reason, /no allow rule/);
});

test("rules given as a raw comma list are split", () => {
  const rules = authRulesFor({ "auth.ip.v.allow": "10.0.0.*, 127.0.0.1" }, "v");
  assert.deepEqual(rules.allow, ["10.0.0.*", "127.0.0.1"]);
  assert.equal(normalizeAddress("::FFFF:1.2.3.4"), "1.2.3.4");
});

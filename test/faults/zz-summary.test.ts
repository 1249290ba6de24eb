// The suite's summary (runs last: files run in name order). Adds up the counters every scenario
// appended to the run's report file, prints them, and holds the two that must be zero.
import { test } from "node:test";
import assert from "node:assert/strict";
import { anyFaultRules } from "../helpers/iptables";
import { clearReport, LONG, readReport, REPORT_FILE, totals } from "./report";

test("fault suite summary: no crashes, no data lost, no iptables rule left", (t) => {
  const lines = readReport();
  const s = totals(lines);
  const notes = lines.filter((l) => l.note).map((l) => `  ${l.file}: ${l.note}`);
  const text = [
    `fault suite summary (${LONG ? "long" : "CI"} mode, ${REPORT_FILE})`,
    `  scenarios run      ${s.scenarios}`,
    `  operations issued  ${s.operations}`,
    `  bytes verified     ${s.bytesVerified} (${(s.bytesVerified / (1 << 20)).toFixed(1)} MiB, every copy: mount and both bricks)`,
    `  bad inputs tried   ${s.badInputs}`,
    `  crashes            ${s.crashes}`,
    `  data lost          ${s.dataLost}`,
    ...notes,
  ].join("\n");
  process.stdout.write(`\n${text}\n\n`);
  for (const l of text.split("\n")) t.diagnostic(l);
  clearReport();
  assert.ok(lines.length > 0, "the scenarios reported their counters");
  assert.equal(s.crashes, 0, "crashes");
  assert.equal(s.dataLost, 0, "data lost");
  assert.deepEqual(anyFaultRules(), [], "iptables -S holds no fault rule");
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { Progress, formatAmount, formatDuration } from "../../runtime/core/progress";

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: string; columns?: number } {
  const w = new Writable({ write(chunk, _enc, cb) { w.text += chunk.toString(); cb(); } }) as Writable & { isTTY: boolean; text: string };
  w.text = "";
  w.isTTY = isTTY;
  return w;
}

test("on a terminal the line is redrawn in place with a bar, rate and ETA, then ended", () => {
  let now = 0;
  const out = sink(true);
  const p = new Progress({ label: "heal full", total: 100, stream: out, now: () => now, intervalMs: 100 });
  now = 1000;
  p.update(25);
  now = 1050;
  p.update(30); // within the interval: not redrawn
  now = 2000;
  p.update(50);
  p.finish("done");
  const frames = out.text.split("\r").filter(Boolean);
  assert.equal(frames.length, 3, JSON.stringify(out.text));
  assert.match(frames[0]!, /^heal full  \[#####-{15}\]  25%  25\/100  25\/s  ETA 3s\x1b\[K$/);
  assert.match(frames[1]!, /50%  50\/100  25\/s  ETA 2s/);
  assert.match(frames[2]!, /elapsed 2s  done\x1b\[K\n$/);
});

test("not a terminal: plain lines, no control characters, throttled", () => {
  let now = 0;
  const out = sink(false);
  const p = new Progress({ label: "bench write", unit: "bytes", stream: out, now: () => now, plainEveryMs: 1000 });
  for (let i = 1; i <= 30; i++) {
    now = i * 100;
    p.update(i * 1024 * 1024);
  }
  p.finish();
  assert.doesNotMatch(out.text, /[\r\x1b]/);
  const lines = out.text.trim().split("\n");
  assert.ok(lines.length >= 3 && lines.length <= 5, out.text);
  assert.match(lines.at(-1)!, /^bench write  30\.0 MiB  10\.0 MiB\/s  elapsed 3s$/);
});

test("amounts and durations read like a person would write them", () => {
  assert.equal(formatAmount(1536, "bytes"), "1.5 KiB");
  assert.equal(formatAmount(3 * 1024 ** 3, "bytes"), "3.0 GiB");
  assert.equal(formatAmount(12.4, "count"), "12");
  assert.equal(formatDuration(59.6), "1m00s");
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(Infinity), "?");
});

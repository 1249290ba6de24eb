import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { parseVolfile, checkVolfile } from "../../runtime/volfile";
import { adminVolfile } from "../../runtime/heal/admin-graph";
import { walkCompare, type FullHealProgress } from "../../runtime/heal/full-crawl";
import { byDepth } from "../../runtime/heal/pending-index";
import { healFullProgress } from "../../runtime/cli/commands/heal";
import { findDirection } from "../../runtime/xlators/cluster/afr/changelog";

const NODE2 = `volume gfs-ds
type storage/posix
option directory /srv/ha
end-volume
volume gfs-ds-locks
type features/posix-locks
subvolumes gfs-ds
end-volume
volume gfs-node1-ds
type protocol/client
option remote-host 127.0.0.2
option remote-port 24200
option remote-subvolume gfs-ds-locks
option transport-timeout 5
end-volume
volume gfs-ds-afr
type cluster/afr
option favorite-child-policy mtime
subvolumes gfs-ds-locks gfs-node1-ds
end-volume
volume server
type protocol/server
option bind-address 127.0.0.3
option listen-port 24200
subvolumes gfs-ds-afr
option auth.ip.gfs-ds-locks.allow 127.0.0.*
end-volume
`;

test("heal's admin volfile reaches the local brick through this server and the peer as the server does", () => {
  const a = adminVolfile(checkVolfile(parseVolfile(NODE2, "node2.vol")), {});
  assert.equal(a.afr, "gfs-ds-afr");
  assert.deepEqual(a.labels, ["127.0.0.3:/srv/ha", "127.0.0.2:gfs-ds-locks"]);
  const checked = checkVolfile(parseVolfile(a.text, "admin.vol"));
  const local = checked.volumes.find((v) => v.name === "gfs-ds-locks")!;
  assert.equal(local.type, "protocol/client");
  assert.deepEqual(local.options["remote-host"], ["127.0.0.3"]);
  assert.equal(local.options["remote-port"], 24200);
  const afr = checked.volumes.find((v) => v.name === "gfs-ds-afr")!;
  assert.equal(afr.options["favorite-child-policy"], "mtime");
  assert.equal(afr.options["self-heal-daemon"], false);
  assert.deepEqual(afr.subvolumes, ["gfs-ds-locks", "gfs-node1-ds"]);
});

test("heal full walks depth-first in name order", () => {
  const paths = ["/b", "/a/z", "/a", "/a/b/c", "/ab"];
  assert.deepEqual([...paths].sort(walkCompare), ["/a", "/a/b/c", "/a/z", "/ab", "/b"]);
});

test("index entries heal parents first", () => {
  assert.deepEqual(byDepth(["/d/x", "/", "/d", "/a", "/d/x"]), ["/", "/a", "/d", "/d/x"]);
});

function healReport(o: Partial<FullHealProgress>): FullHealProgress {
  return { files: 0, dirs: 1, bytes: 0, healedBytes: 0, healed: 0, splitBrain: [], gfidMismatch: [], failed: [], skipped: 0, startedAt: 0, ...o };
}

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: string } {
  const w = new Writable({ write(chunk, _enc, cb) { w.text += chunk.toString(); cb(); } }) as Writable & { isTTY: boolean; text: string };
  w.text = "";
  w.isTTY = isTTY;
  return w;
}

test("heal full's progress on a terminal: bytes bar, files, rate and ETA, redrawn, then a final line", () => {
  let now = 0;
  const out = sink(true);
  const progress = healFullProgress("heal full gfs-ds-afr", { stream: out, now: () => now });
  now = 1000;
  progress.report(healReport({ files: 10, bytes: 10 << 20, healed: 10, totalFiles: 100, totalBytes: 100 << 20 }));
  assert.equal(progress.onScreen, true);
  now = 2000;
  const last = healReport({ files: 100, bytes: 100 << 20, healed: 100, totalFiles: 100, totalBytes: 100 << 20 });
  progress.report(last); // fullHeal's final report
  progress.finish(last);
  const frames = out.text.split("\r").filter(Boolean);
  assert.equal(frames.length, 3, JSON.stringify(out.text));
  assert.match(frames[0]!, /^heal full gfs-ds-afr  \[##-{18}\]  10%  10\.0 MiB\/100\.0 MiB  10\.0 MiB\/s  ETA 9s  files 10\/100  10 files\/s  healed 10\x1b\[K$/);
  assert.match(frames[1]!, /100%.*ETA 0s/);
  assert.match(frames[2]!, /100%.*elapsed 2s  files 100\/100  50 files\/s  healed 100\x1b\[K\n$/);
  assert.equal(progress.onScreen, false);
});

test("heal full's progress of empty files counts files; not a terminal: plain lines", () => {
  let now = 0;
  const out = sink(false);
  const progress = healFullProgress("heal full v", { stream: out, now: () => now });
  now = 1000;
  progress.report(healReport({ files: 40, totalFiles: 80, totalBytes: 0 }));
  now = 1500;
  const last = healReport({ files: 80, totalFiles: 80, totalBytes: 0 });
  progress.report(last); // within the plain interval: not printed
  progress.finish(last);
  assert.doesNotMatch(out.text, /[\r\x1b]/);
  const lines = out.text.trim().split("\n");
  assert.equal(lines.length, 2, out.text);
  assert.match(lines[0]!, /^heal full v  \[#{10}-{10}\]  50%  40\/80  40\/s  ETA 1s  files 40\/80/);
  assert.match(lines[1]!, /100%  80\/80 .* files 80\/80/);
});

test("source selection: blame, self-accusation and split-brain", () => {
  // node2 blames node1: node2 is the source.
  assert.deepEqual(findDirection(new Map([[0, [0, 0]], [1, [3, 0]]])), { sources: [1], sinks: [0], splitBrain: false, pending: true, accused: [0] });
  // both blame each other: split-brain.
  assert.equal(findDirection(new Map([[0, [0, 1]], [1, [1, 0]]])).splitBrain, true);
  // a crashed transaction: both accuse themselves too, nobody is trusted, everyone is a source.
  assert.deepEqual(findDirection(new Map([[0, [1, 1]], [1, [1, 1]]])).sources, [0, 1]);
  // nothing pending.
  assert.equal(findDirection(new Map([[0, [0, 0]], [1, [0, 0]]])).pending, false);
  // node2 was killed inside a transaction (a dead pre-op: [1,1]) while node1 went on: node1 is the source.
  assert.deepEqual(findDirection(new Map([[0, [0, 1]], [1, [1, 1]]])).sources, [0]);
  // a partition: node1's pre-op reached node2 but its answer was lost ([.., +1] on node2 for both),
  // and node2 took changes node1 missed (blame beyond its self-accusation): split-brain, not node1.
  assert.equal(findDirection(new Map([[0, [0, 1]], [1, [2, 1]]])).splitBrain, true);
});

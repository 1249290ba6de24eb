import { test } from "node:test";
import assert from "node:assert/strict";
import { parseVolfile, checkVolfile } from "../../runtime/volfile";
import { adminVolfile } from "../../runtime/heal/admin-graph";
import { walkCompare } from "../../runtime/heal/full-crawl";
import { byDepth } from "../../runtime/heal/pending-index";
import { progressLine } from "../../runtime/cli/commands/heal";
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

test("progress line shows files, bytes, rate and ETA", () => {
  const line = progressLine({ files: 10, dirs: 1, bytes: 10 << 20, healedBytes: 0, healed: 10, splitBrain: [], gfidMismatch: [], failed: [], skipped: 0,
    totalFiles: 100, totalBytes: 100 << 20, startedAt: Date.now() - 1000 });
  assert.match(line, /files 10\/100/);
  assert.match(line, /ETA /);
});

test("source selection: blame, self-accusation and split-brain", () => {
  // node2 blames node1: node2 is the source.
  assert.deepEqual(findDirection(new Map([[0, [0, 0]], [1, [3, 0]]])), { sources: [1], sinks: [0], splitBrain: false, pending: true });
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

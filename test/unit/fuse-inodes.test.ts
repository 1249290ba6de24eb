// The kernel engine's node table (inodes.ts): which node a directory's name is, and every node of a
// file (its hard links), kept right through lookups, FORGETs, unlinks, renames and replaced names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InodeTable } from "../../runtime/fuse/kernel/inodes";

const ids = (xs: Iterable<{ id: number }>) => [...xs].map((n) => n.id).sort((a, b) => a - b);

test("a name is one node until the kernel forgets it; its directory's names go with the last one", () => {
  const t = new InodeTable();
  const dir = t.remember(t.root, "d", "g-dir");
  const a = t.remember(dir, "a", "g-a");
  assert.equal(t.remember(dir, "a", "g-a"), a, "the same node for the same name and file");
  assert.equal(a.lookups, 2);
  assert.equal(t.child(dir, "a"), a);
  assert.equal(t.child(t.root, "a"), undefined, "names are per directory");
  assert.equal(t.path(a), "/d/a");
  t.forget(a.id, 1);
  assert.equal(t.find(a.id), a, "one reference left");
  t.forget(a.id, 1);
  assert.equal(t.find(a.id), undefined);
  assert.equal(t.child(dir, "a"), undefined);
  assert.equal(t.nameCount("g-a"), 0);
  assert.deepEqual([...t.namesOf("g-a")], []);
  // a name now naming another file gets a new node; the old one is no longer reachable by name
  const b = t.remember(dir, "b", "g-b1");
  const b2 = t.remember(dir, "b", "g-b2");
  assert.notEqual(b2.id, b.id);
  assert.equal(b.attached, false);
  assert.equal(t.child(dir, "b"), b2);
  assert.deepEqual(ids(t.namesOf("g-b1")), [b.id], "the old node is still that file's until forgotten");
  t.forget(b.id, 1);
  assert.equal(t.nameCount("g-b1"), 0);
});

test("every name of a hard-linked file is found by its gfid, as links come and go", () => {
  const t = new InodeTable();
  const d1 = t.remember(t.root, "d1", "g-d1");
  const d2 = t.remember(t.root, "d2", "g-d2");
  const x = t.remember(d1, "x", "g-f");
  assert.equal(t.nameCount("g-f"), 1);
  assert.deepEqual(ids(t.namesOf("g-f")), [x.id]);
  const y = t.remember(d2, "y", "g-f");
  const z = t.remember(d2, "z", "g-f");
  assert.equal(t.nameCount("g-f"), 3);
  assert.deepEqual(ids(t.namesOf("g-f")), ids([x, y, z]));
  // unlinked: the node stays the file's while the kernel holds it (an open file), then goes
  assert.equal(t.removed(d2, "y"), y);
  assert.equal(t.child(d2, "y"), undefined);
  assert.equal(t.nameCount("g-f"), 3);
  t.forget(y.id, 1);
  assert.deepEqual(ids(t.namesOf("g-f")), ids([x, z]));
  t.forget(z.id, 1);
  assert.deepEqual(ids(t.namesOf("g-f")), [x.id], "one name left");
  const w = t.remember(d1, "w", "g-f");
  assert.deepEqual(ids(t.namesOf("g-f")), ids([x, w]), "and a second one again");
  // a node first known without its gfid joins the file's names once it is learnt
  const v = t.remember(d1, "v", undefined);
  assert.equal(t.remember(d1, "v", "g-f"), v);
  assert.deepEqual(ids(t.namesOf("g-f")), ids([x, w, v]));
});

test("a rename moves the node (and everything under it) and replaces what was at the target", () => {
  const t = new InodeTable();
  const src = t.remember(t.root, "src", "g-src");
  const dst = t.remember(t.root, "dst", "g-dst");
  const sub = t.remember(src, "sub", "g-sub");
  const leaf = t.remember(sub, "leaf", "g-leaf");
  const old = t.remember(dst, "sub", "g-old");
  t.renamed(src, "sub", dst, "sub");
  assert.equal(t.child(src, "sub"), undefined);
  assert.equal(t.child(dst, "sub"), sub);
  assert.equal(old.attached, false, "the replaced node is no longer reachable");
  assert.equal(t.path(leaf), "/dst/sub/leaf");
  assert.equal(t.child(sub, "leaf"), leaf, "names under the moved directory stay under it");
  // renaming over itself's name in the same directory, and renaming a name nobody holds
  t.renamed(dst, "sub", dst, "sub2");
  assert.equal(t.child(dst, "sub2"), sub);
  assert.equal(t.child(dst, "sub"), undefined);
  t.renamed(dst, "nothing", dst, "sub2");
  assert.equal(t.child(dst, "sub2"), undefined, "a rename of an unknown name still replaces the target");
  assert.equal(sub.attached, false);
});

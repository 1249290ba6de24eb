// What the kernel engine tells the kernel to forget (kernel-caches.ts). The kernel may keep names and
// attributes for a minute while the servers report changes, so a report that names no file must still
// reach every copy it may concern: "all" (a server came or went) drops every name and attribute,
// "links" (a link count changed somewhere, file unknown) drops what the kernel has of files with
// other names, and every invalidation moves the epoch that replies in flight are checked against.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KernelCaches } from "../../runtime/fuse/kernel/kernel-caches";
import { InodeTable } from "../../runtime/fuse/kernel/inodes";
import { NotifyCode } from "../../runtime/fuse/kernel/protocol";
import type { FuseChannel } from "../../runtime/fuse/kernel/channel";

function setup() {
  const inodes = new InodeTable();
  const sent: { code: number; node: number; name?: string }[] = [];
  const decode = (b: Buffer) => {
    const code = b.readInt32LE(4); // fuse_out_header.error carries the notify code
    const node = Number(b.readBigUInt64LE(16));
    if (code !== NotifyCode.INVAL_ENTRY) return { code, node };
    return { code, node, name: b.subarray(32, 32 + b.readUInt32LE(24)).toString() };
  };
  const channel = { send: (bufs: Buffer[]) => sent.push(decode(Buffer.concat(bufs))), sendAside: (b: Buffer) => sent.push(decode(b)) } as unknown as FuseChannel;
  const caches = new KernelCaches(inodes, () => channel);
  const dir = inodes.remember(inodes.root, "d", "g-dir");
  const single = inodes.remember(dir, "single", "g-1");
  const linked = inodes.remember(dir, "linked", "g-2");
  linked.multiLink = true;
  return { inodes, caches, sent, dir, single, linked };
}

test("'all' drops every attribute and every name the kernel holds", () => {
  const { caches, sent, dir, single, linked } = setup();
  const epoch = caches.epoch;
  caches.othersChanged({ gfids: [], paths: [], entries: [], all: true });
  const attrs = sent.filter((s) => s.code === NotifyCode.INVAL_INODE).map((s) => s.node).sort();
  const names = sent.filter((s) => s.code === NotifyCode.INVAL_ENTRY).map((s) => `${s.node}/${s.name}`).sort();
  assert.deepEqual(attrs, [1, dir.id, single.id, linked.id].sort());
  assert.deepEqual(names, [`1/d`, `${dir.id}/linked`, `${dir.id}/single`].sort());
  assert.ok(caches.epoch > epoch);
});

test("'links' drops the attributes of files with other names only; a named gfid drops all its names", () => {
  const { inodes, caches, sent, dir, single, linked } = setup();
  caches.othersChanged({ gfids: [], paths: [], entries: [], links: true });
  assert.deepEqual(sent.map((s) => s.node), [linked.id]);
  sent.length = 0;
  const other = inodes.remember(dir, "other-name", "g-1");
  caches.othersChanged({ gfids: ["g-1"], paths: [], entries: [] });
  assert.deepEqual(sent.map((s) => s.node).sort(), [single.id, other.id].sort());
});

test("an entry change drops the name and its directory's attributes, and moves the epoch", () => {
  const { caches, sent, dir } = setup();
  const epoch = caches.epoch;
  caches.othersChanged({ gfids: [], paths: [], entries: ["/d/single"] });
  assert.deepEqual(sent.map((s) => [s.code, s.node, s.name]), [[NotifyCode.INVAL_INODE, dir.id, undefined], [NotifyCode.INVAL_ENTRY, dir.id, "single"]]);
  assert.equal(caches.epoch, epoch + 2);
});

import type { Invalidation } from "../../core/types";
import { Xlator } from "../../core/xlator";
import type { FuseChannel } from "./channel";
import type { Inode, InodeTable } from "./inodes";
import { notifyBuffer, NotifyCode, writeU64 } from "./protocol";

/**
 * What the kernel caches of the mount (attributes, names, missing names), and how the bridge makes
 * it forget: FUSE notifications on the device. Used when a file changes through another of its names,
 * when a lock is granted, and when the servers report another client's change.
 */
export class KernelCaches {
  /**
   * Invalidations sent so far. A reply describing what was fetched before the latest one may be stale
   * (the kernel would cache it after being told to forget): such replies get the short timeouts.
   */
  epoch = 0;

  constructor(
    private readonly inodes: InodeTable,
    private readonly channel: () => FuseChannel | undefined,
  ) {}

  /** Another client changed something (an upcall rising to the top of the graph). */
  othersChanged(change: Invalidation): void {
    if (!this.channel()) return;
    if (change.all) {
      // (names too: while the servers reported changes the kernel may keep them for a minute)
      for (const inode of this.inodes.all()) {
        this.dropAttributes(inode);
        if (inode.parent && inode.attached) this.dropName(inode.parent, inode.name);
      }
      return;
    }
    for (const gfid of change.gfids) for (const inode of this.inodes.namesOf(gfid)) this.dropAttributes(inode);
    if (change.links) for (const inode of this.inodes.all()) if (inode.multiLink) this.dropAttributes(inode);
    for (const path of change.paths) {
      const inode = this.resolve(path);
      if (inode) this.dropAttributes(inode);
    }
    for (const path of change.entries) {
      const slash = path.lastIndexOf("/");
      const parent = this.resolve(slash <= 0 ? "/" : path.slice(0, slash));
      if (!parent) continue;
      this.dropAttributes(parent);
      this.dropName(parent, path.slice(slash + 1));
    }
  }

  /** The file behind `inode` changed (or may have: a lock was granted): every name of it. */
  dropFile(inode: Inode, gfid = inode.gfid): void {
    this.dropAttributes(inode);
    this.dropOtherNames(gfid, inode);
  }

  /** A file changed through one of its names (`except`): the other names' cached attributes are stale. */
  dropOtherNames(gfid: string | undefined, except?: Inode): void {
    if (!gfid) return;
    for (const inode of this.inodes.namesOf(gfid)) if (inode !== except) this.dropAttributes(inode);
  }

  /** The node a path names, if the kernel holds every name on the way. */
  private resolve(path: string): Inode | undefined {
    let inode: Inode | undefined = this.inodes.root;
    for (const part of path.split("/")) {
      if (!part) continue;
      inode = this.inodes.child(inode, part);
      if (!inode) return undefined;
    }
    return inode;
  }

  /**
   * FUSE_NOTIFY_INVAL_INODE for attributes only (offset -1): the kernel takes no inode or page lock
   * for that, so it is safe while requests on the file are in flight. Cached pages then go when the
   * kernel sees the new mtime/size (FUSE_AUTO_INVAL_DATA).
   */
  private dropAttributes(inode: Inode): void {
    this.epoch++;
    const b = notifyBuffer(NotifyCode.INVAL_INODE, 24);
    writeU64(b, inode.id, 16);
    b.writeBigInt64LE(-1n, 24);
    b.writeBigInt64LE(0n, 32);
    this.channel()?.send([b]);
  }

  /**
   * FUSE_NOTIFY_INVAL_ENTRY takes the directory's lock in the kernel, which a request in flight on
   * that directory may hold while it waits for us: it is sent from another thread (the pool), never inline.
   */
  private dropName(parent: Inode, name: string): void {
    this.epoch++;
    const nameBuf = Buffer.from(`${name}\0`);
    const b = notifyBuffer(NotifyCode.INVAL_ENTRY, 16 + nameBuf.length);
    writeU64(b, parent.id, 16);
    b.writeUInt32LE(nameBuf.length - 1, 24);
    b.writeUInt32LE(0, 28);
    nameBuf.copy(b, 32);
    this.channel()?.sendAside(b);
  }
}

/**
 * A parent for the graph's top that hears othersChanged(). Its own interest is 0: md-cache, below it,
 * is what asks the servers for upcalls, and the kernel's caches ride on those.
 */
export function listenForChanges(top: Xlator, onChange: (change: Invalidation) => void): Xlator {
  const listener = Object.create(Xlator.prototype) as Xlator;
  Object.assign(listener, { name: "fuse", type: "mount/fuse", children: [top], parents: [], options: {} });
  listener.othersChanged = (change) => onChange(change);
  // A server went away or came back: changes meanwhile were not reported (md-cache clears too).
  listener.notify = () => onChange({ gfids: [], paths: [], entries: [], all: true });
  listener.invalidationInterest = () => 0;
  top.parents.push(listener);
  return listener;
}

import { FopError } from "../../core/errors";
import type { Iatt } from "../../core/types";
import { FUSE_ROOT_ID } from "./protocol";

/**
 * One name the kernel knows (a node id it holds references to). As in libfuse's path-based API, every
 * name of a hard-linked file is its own node; `byGfid` finds them all when one file's cached attributes
 * must be dropped.
 */
export interface Inode {
  readonly id: number;
  parent: Inode | undefined;
  name: string;
  gfid: string | undefined;
  /** References the kernel holds (LOOKUP-like replies minus FORGETs). */
  lookups: number;
  /** Still reachable under parent/name (false once unlinked or replaced). */
  attached: boolean;
  /**
   * The attributes last given to the kernel were of a file with other names: an unlink or rename
   * elsewhere that the servers report without the file's gfid ("links") may have changed its link count.
   */
  multiLink?: boolean;
  /** The attributes last given to the kernel (a GETATTR of an open file whose name went answers them). */
  attr?: Iatt;
  /** Where the kernel's writes since then reached (it counts them into the size it keeps). */
  writtenTo?: number;
}

/**
 * The kernel's node ids and what they name. Paths are built from the parent chain when a request
 * needs one, so renaming a directory moves everything under it at once. Ids are never reused within
 * a mount (generation is always 0).
 */
export class InodeTable {
  readonly root: Inode = { id: FUSE_ROOT_ID, parent: undefined, name: "", gfid: undefined, lookups: 1, attached: true };
  private readonly byId = new Map<number, Inode>([[FUSE_ROOT_ID, this.root]]);
  private readonly byName = new Map<string, Inode>();
  private readonly byGfid = new Map<string, Set<Inode>>();
  private nextId = FUSE_ROOT_ID + 1;

  get size(): number {
    return this.byId.size;
  }

  get(id: number): Inode {
    const inode = this.byId.get(id);
    // The kernel only names ids we gave it and has not forgotten: anything else is a stale handle.
    if (!inode) throw new FopError("ESTALE", `unknown node id ${id}`, { xlator: "fuse" });
    return inode;
  }

  /** The node, or undefined if the kernel has forgotten it. */
  find(id: number): Inode | undefined {
    return this.byId.get(id);
  }

  child(parent: Inode, name: string): Inode | undefined {
    return this.byName.get(key(parent.id, name));
  }

  path(inode: Inode): string {
    if (inode.id === FUSE_ROOT_ID) return "/";
    const parts: string[] = [];
    for (let n: Inode | undefined = inode; n && n.id !== FUSE_ROOT_ID; n = n.parent) parts.push(n.name);
    return `/${parts.reverse().join("/")}`;
  }

  childPath(parent: Inode, name: string): string {
    return parent.id === FUSE_ROOT_ID ? `/${name}` : `${this.path(parent)}/${name}`;
  }

  /**
   * A reply is about to name parent/name (gfid) to the kernel: the node it holds, one more reference.
   * A name now pointing at another file (another client replaced it) gets a new node, so the kernel
   * never sees one node id change its file type.
   */
  remember(parent: Inode, name: string, gfid: string | undefined): Inode {
    const k = key(parent.id, name);
    let inode = this.byName.get(k);
    if (inode && gfid && inode.gfid && inode.gfid !== gfid) {
      this.detach(inode);
      inode = undefined;
    }
    if (!inode) {
      inode = { id: this.nextId++, parent, name, gfid, lookups: 0, attached: true };
      this.byId.set(inode.id, inode);
      this.byName.set(k, inode);
      if (gfid) this.indexGfid(inode, gfid);
    } else if (!inode.gfid && gfid) {
      inode.gfid = gfid;
      this.indexGfid(inode, gfid);
    }
    inode.lookups++;
    return inode;
  }

  /** The kernel dropped `n` references (FORGET). */
  forget(id: number, n: number): void {
    const inode = this.byId.get(id);
    if (!inode || id === FUSE_ROOT_ID) return;
    inode.lookups -= n;
    if (inode.lookups > 0) return;
    this.byId.delete(id);
    if (inode.attached) this.detach(inode);
    else this.unindexGfid(inode);
  }

  /** parent/name was removed (unlink, rmdir, or replaced by a rename). */
  removed(parent: Inode, name: string): Inode | undefined {
    const inode = this.byName.get(key(parent.id, name));
    if (inode) this.detach(inode);
    return inode;
  }

  renamed(from: Inode, fromName: string, to: Inode, toName: string): void {
    const inode = this.byName.get(key(from.id, fromName));
    this.removed(to, toName);
    if (!inode) return;
    this.byName.delete(key(from.id, fromName));
    inode.parent = to;
    inode.name = toName;
    this.byName.set(key(to.id, toName), inode);
  }

  /** Every node of this file (all its names the kernel knows). */
  namesOf(gfid: string): Iterable<Inode> {
    return this.byGfid.get(gfid) ?? [];
  }

  nameCount(gfid: string): number {
    return this.byGfid.get(gfid)?.size ?? 0;
  }

  /** Every node (for "drop everything"). */
  all(): Iterable<Inode> {
    return this.byId.values();
  }

  private detach(inode: Inode): void {
    if (inode.parent && this.byName.get(key(inode.parent.id, inode.name)) === inode) {
      this.byName.delete(key(inode.parent.id, inode.name));
    }
    inode.attached = false;
    if (!this.byId.has(inode.id)) this.unindexGfid(inode);
  }

  private indexGfid(inode: Inode, gfid: string): void {
    let set = this.byGfid.get(gfid);
    if (!set) this.byGfid.set(gfid, (set = new Set()));
    set.add(inode);
  }

  private unindexGfid(inode: Inode): void {
    if (!inode.gfid) return;
    const set = this.byGfid.get(inode.gfid);
    if (!set) return;
    set.delete(inode);
    if (set.size === 0) this.byGfid.delete(inode.gfid);
  }
}

// Names cannot contain "/", so parent id + "/" + name is unambiguous.
function key(parentId: number, name: string): string {
  return `${parentId}/${name}`;
}

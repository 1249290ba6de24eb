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
  /**
   * The names under each directory (by its node id): a listing's names need no key made of them,
   * and a directory's map goes with its last name.
   */
  private readonly children = new Map<number, Map<string, Inode>>();
  /** A file's node, or its nodes when the kernel knows it by several names (hard links: rare). */
  private readonly byGfid = new Map<string, Inode | Set<Inode>>();
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
    return this.children.get(parent.id)?.get(name);
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
    let inode = this.child(parent, name);
    if (inode && gfid && inode.gfid && inode.gfid !== gfid) {
      this.detach(inode);
      inode = undefined;
    }
    if (!inode) {
      inode = { id: this.nextId++, parent, name, gfid, lookups: 0, attached: true };
      this.byId.set(inode.id, inode);
      this.name(inode);
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
    const inode = this.child(parent, name);
    if (inode) this.detach(inode);
    return inode;
  }

  renamed(from: Inode, fromName: string, to: Inode, toName: string): void {
    const inode = this.child(from, fromName);
    this.removed(to, toName);
    if (!inode) return;
    this.unname(inode);
    inode.parent = to;
    inode.name = toName;
    this.name(inode);
  }

  /** Every node of this file (all its names the kernel knows). */
  namesOf(gfid: string): Iterable<Inode> {
    const known = this.byGfid.get(gfid);
    return known === undefined ? [] : known instanceof Set ? known : [known];
  }

  nameCount(gfid: string): number {
    const known = this.byGfid.get(gfid);
    return known === undefined ? 0 : known instanceof Set ? known.size : 1;
  }

  /** Every node (for "drop everything"). */
  all(): Iterable<Inode> {
    return this.byId.values();
  }

  private detach(inode: Inode): void {
    this.unname(inode);
    inode.attached = false;
    if (!this.byId.has(inode.id)) this.unindexGfid(inode);
  }

  /** Puts the node under its name in its directory's names. */
  private name(inode: Inode): void {
    const parentId = inode.parent!.id;
    const names = this.children.get(parentId);
    if (names) names.set(inode.name, inode);
    else this.children.set(parentId, new Map([[inode.name, inode]]));
  }

  /** Takes the node's name out of its directory's names (if the name is still this node's). */
  private unname(inode: Inode): void {
    if (!inode.parent) return;
    const names = this.children.get(inode.parent.id);
    if (names?.get(inode.name) !== inode) return;
    names.delete(inode.name);
    if (names.size === 0) this.children.delete(inode.parent.id);
  }

  private indexGfid(inode: Inode, gfid: string): void {
    const known = this.byGfid.get(gfid);
    if (known === undefined) this.byGfid.set(gfid, inode);
    else if (known instanceof Set) known.add(inode);
    else if (known !== inode) this.byGfid.set(gfid, new Set([known, inode]));
  }

  private unindexGfid(inode: Inode): void {
    if (!inode.gfid) return;
    const known = this.byGfid.get(inode.gfid);
    if (known === inode) this.byGfid.delete(inode.gfid);
    else if (known instanceof Set) {
      known.delete(inode);
      if (known.size === 1) this.byGfid.set(inode.gfid, known.values().next().value!);
    }
  }
}

import type { Fd, Loc } from "../../../core/types";

/**
 * Per-inode state of a performance translator, found from an Fd or a Loc. The key is the gfid when
 * known, else the path; opens remember path -> key so a Loc without gfid finds the same inode.
 * Shared by write-behind, read-ahead and io-cache.
 */
export class InodeTable<T> {
  private readonly byKey = new Map<string, T>();
  private readonly keyByPath = new Map<string, string>();
  private readonly pathsByKey = new Map<string, Set<string>>();

  constructor(private readonly make: (key: string) => T) {}

  static fdKey(fd: Fd): string {
    return fd.gfid ?? fd.path;
  }

  /** The inode an fd refers to, created on first use; remembers its path. */
  forFd(fd: Fd): T {
    const key = InodeTable.fdKey(fd);
    this.remember(fd.path, key);
    let v = this.byKey.get(key);
    if (!v) {
      v = this.make(key);
      this.byKey.set(key, v);
    }
    return v;
  }

  private remember(path: string, key: string): void {
    const old = this.keyByPath.get(path);
    if (old === key) return;
    if (old !== undefined) this.pathsByKey.get(old)?.delete(path);
    this.keyByPath.set(path, key);
    let paths = this.pathsByKey.get(key);
    if (!paths) this.pathsByKey.set(key, (paths = new Set()));
    paths.add(path);
  }

  /** The inode a Loc refers to, if this table has it. */
  forLoc(loc: Loc): T | undefined {
    const key = loc.gfid ?? this.keyByPath.get(loc.path) ?? loc.path;
    return this.byKey.get(key);
  }

  keyOfLoc(loc: Loc): string {
    return loc.gfid ?? this.keyByPath.get(loc.path) ?? loc.path;
  }

  get(key: string): T | undefined {
    return this.byKey.get(key);
  }

  /** Forgets an inode (and every path that pointed at it). */
  delete(key: string): void {
    this.byKey.delete(key);
    for (const p of this.pathsByKey.get(key) ?? []) this.keyByPath.delete(p);
    this.pathsByKey.delete(key);
  }

  /** Forgets a path (after unlink/rename); the inode stays reachable by gfid. */
  forgetPath(path: string): void {
    const key = this.keyByPath.get(path);
    if (key !== undefined) this.pathsByKey.get(key)?.delete(path);
    this.keyByPath.delete(path);
  }

  values(): IterableIterator<T> {
    return this.byKey.values();
  }

  entries(): IterableIterator<[string, T]> {
    return this.byKey.entries();
  }

  get size(): number {
    return this.byKey.size;
  }
}

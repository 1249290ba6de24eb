// An in-memory storage translator for the performance translators' unit tests: records every fop it
// sees, can delay them and inject errors, so ordering and error surfacing can be asserted exactly.
import { randomUUID } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { Xlator } from "../../runtime/core/xlator";
import { FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import { findXlator } from "../../runtime/xlators/registry";
import { Fd, type CallCtx, type Iatt, type Loc, type LookupResult, type SetattrArgs } from "../../runtime/core/types";

export const ctx: CallCtx = { uid: 0, gid: 0, pid: process.pid, lkOwner: String(process.pid), client: "local" };

interface MemFile {
  gfid: string;
  ino: number;
  data: Buffer;
  mtimeMs: number;
}

export interface FopRecord {
  fop: string;
  path: string;
  offset?: number;
  size?: number;
}

export class MemFs extends Xlator {
  readonly files = new Map<string, MemFile>();
  readonly calls: FopRecord[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Milliseconds each fop takes (may be a function of the fop). */
  delay: (fop: string, rec: FopRecord) => number = () => 0;
  /** Throw a FopError from here to fail a fop. */
  fail: (fop: string, rec: FopRecord) => void = () => {};
  private nextIno = 1;

  constructor() {
    super({ name: "memfs", type: "test/memfs", options: {}, children: [], log: silentLogger(), graph: new Map() });
  }

  count(fop: string): number {
    return this.calls.filter((c) => c.fop === fop).length;
  }

  private async step<T>(rec: FopRecord, body: () => T): Promise<T> {
    this.calls.push(rec);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const ms = this.delay(rec.fop, rec);
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      else await Promise.resolve();
      this.fail(rec.fop, rec);
      return body();
    } finally {
      this.inFlight--;
    }
  }

  private file(path: string): MemFile {
    const f = this.files.get(path);
    if (!f) throw new FopError("ENOENT", path);
    return f;
  }

  private iatt(f: MemFile): Iatt {
    return {
      gfid: f.gfid, ino: f.ino, mode: fsConstants.S_IFREG | 0o644, nlink: 1, uid: 0, gid: 0, rdev: 0,
      size: f.data.length, blocks: Math.ceil(f.data.length / 512), blksize: 4096,
      atimeMs: f.mtimeMs, mtimeMs: f.mtimeMs, ctimeMs: f.mtimeMs,
    };
  }

  private touch(f: MemFile): void {
    f.mtimeMs = Math.max(Date.now(), f.mtimeMs + 0.001);
  }

  /** Changes a file behind the translators' back (another client). */
  writeBehindTheBack(path: string, data: Buffer): void {
    const f = this.file(path);
    f.data = Buffer.from(data);
    this.touch(f);
  }

  override lookup(_c: CallCtx, loc: Loc): Promise<LookupResult> {
    return this.step({ fop: "lookup", path: loc.path }, () => ({ stat: this.iatt(this.file(loc.path)) }));
  }
  override stat(_c: CallCtx, loc: Loc): Promise<Iatt> {
    return this.step({ fop: "stat", path: loc.path }, () => this.iatt(this.file(loc.path)));
  }
  override fstat(_c: CallCtx, fd: Fd): Promise<Iatt> {
    return this.step({ fop: "fstat", path: fd.path }, () => this.iatt(this.file(fd.path)));
  }
  override create(_c: CallCtx, loc: Loc, _flags: number, _mode: number, _fd: Fd): Promise<Iatt> {
    return this.step({ fop: "create", path: loc.path }, () => {
      const f = { gfid: randomUUID(), ino: this.nextIno++, data: Buffer.alloc(0), mtimeMs: Date.now() };
      this.files.set(loc.path, f);
      return this.iatt(f);
    });
  }
  override open(_c: CallCtx, loc: Loc, _flags: number, fd: Fd): Promise<void> {
    return this.step({ fop: "open", path: loc.path }, () => {
      fd.gfid ??= this.file(loc.path).gfid;
    });
  }
  override read(_c: CallCtx, fd: Fd, size: number, offset: number): Promise<Buffer> {
    return this.step({ fop: "read", path: fd.path, offset, size }, () => Buffer.from(this.file(fd.path).data.subarray(offset, offset + size)));
  }
  override write(_c: CallCtx, fd: Fd, data: Buffer, offset: number): Promise<number> {
    const copy = Buffer.from(data);
    return this.step({ fop: "write", path: fd.path, offset, size: data.length }, () => {
      const f = this.file(fd.path);
      if (f.data.length < offset + copy.length) {
        const grown = Buffer.alloc(offset + copy.length);
        f.data.copy(grown);
        f.data = grown;
      }
      copy.copy(f.data, offset);
      this.touch(f);
      return copy.length;
    });
  }
  override flush(_c: CallCtx, fd: Fd): Promise<void> {
    return this.step({ fop: "flush", path: fd.path }, () => undefined);
  }
  override release(_c: CallCtx, fd: Fd): Promise<void> {
    return this.step({ fop: "release", path: fd.path }, () => undefined);
  }
  override fsync(_c: CallCtx, fd: Fd): Promise<void> {
    return this.step({ fop: "fsync", path: fd.path }, () => undefined);
  }
  private truncate(f: MemFile, size: number): void {
    const t = Buffer.alloc(size);
    f.data.copy(t, 0, 0, Math.min(size, f.data.length));
    f.data = t;
    this.touch(f);
  }
  override setattr(_c: CallCtx, loc: Loc, attr: SetattrArgs): Promise<Iatt> {
    return this.step({ fop: "setattr", path: loc.path, size: attr.size }, () => {
      const f = this.file(loc.path);
      if (attr.size !== undefined) this.truncate(f, attr.size);
      return this.iatt(f);
    });
  }
  override fsetattr(_c: CallCtx, fd: Fd, attr: SetattrArgs): Promise<Iatt> {
    return this.step({ fop: "fsetattr", path: fd.path, size: attr.size }, () => {
      const f = this.file(fd.path);
      if (attr.size !== undefined) this.truncate(f, attr.size);
      return this.iatt(f);
    });
  }
  override unlink(_c: CallCtx, loc: Loc): Promise<undefined> {
    return this.step({ fop: "unlink", path: loc.path }, () => {
      this.file(loc.path);
      this.files.delete(loc.path);
      return undefined;
    });
  }
  override rename(_c: CallCtx, from: Loc, to: Loc): Promise<void> {
    return this.step({ fop: "rename", path: from.path }, () => {
      this.files.set(to.path, this.file(from.path));
      this.files.delete(from.path);
    });
  }
}

/** Builds one performance translator (by volfile type) over `child`, options defaulted from its schema. */
export function perf<T extends Xlator = Xlator>(type: string, child: Xlator, options: Record<string, unknown> = {}): T {
  const def = findXlator(type)!;
  const props = (def.schema as { properties: Record<string, { default?: unknown }> }).properties;
  const full: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(props)) if (p.default !== undefined) full[k] = p.default;
  Object.assign(full, options);
  return def.init({ name: type.split("/")[1]!, type, options: full, children: [child], log: silentLogger(), graph: new Map() }) as T;
}

/** Creates /path through `top` and returns its open fd. */
export async function createFile(top: Xlator, path: string, flags = fsConstants.O_RDWR): Promise<Fd> {
  const fd = new Fd(path, flags);
  await top.create(ctx, { path }, flags | fsConstants.O_CREAT, 0o644, fd);
  return fd;
}

export async function openFile(top: Xlator, path: string, flags = fsConstants.O_RDWR): Promise<Fd> {
  const fd = new Fd(path, flags);
  await top.open(ctx, { path }, flags, fd);
  return fd;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// In-process replica sets for AFR unit tests: N bricks (storage/posix + features/posix-locks on temp
// dirs), each behind a switch that can take it "down" (fops fail ENOTCONN, isUp() false, child-down /
// child-up notified) like protocol/client losing its server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants as fsc } from "node:fs";
import { FopError } from "../../runtime/core/errors";
import { silentLogger } from "../../runtime/core/log";
import { FOP_NAMES } from "../../runtime/core/fops";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { Xlator, type XlatorInit } from "../../runtime/core/xlator";
import { findXlator } from "../../runtime/xlators/registry";
import { Afr, type AfrOptions } from "../../runtime/xlators/cluster/afr";

/**
 * A child that can be switched off, as protocol/client is when its server dies. Like the server
 * cleaning up after a lost connection, switching off releases the internal locks taken through it.
 */
export class Switch extends Xlator {
  down = false;
  readonly held = new Map<string, () => Promise<unknown>>();
  override isUp(): boolean {
    return !this.down && this.children[0]!.isUp();
  }
  /** The lock releases of the last switch-off (await it before touching the brick behind the switch). */
  released: Promise<unknown> = Promise.resolve();
  setDown(down: boolean): void {
    this.down = down;
    if (down) {
      this.released = Promise.all([...this.held.values()].map((unlock) => unlock().catch(() => undefined)));
      this.held.clear();
    }
    for (const p of this.parents) p.notify(down ? "child-down" : "child-up", this);
  }
}
for (const fop of FOP_NAMES) {
  (Switch.prototype as unknown as Record<string, unknown>)[fop] = async function (this: Switch, ...args: unknown[]) {
    if (this.down) throw new FopError("ENOTCONN", "switched off", { xlator: this.name, fop });
    const child = this.children[0]!;
    const c = child as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const result = await c[fop]!.apply(child, args);
    if (fop === "inodelk") {
      const [ctx, domain, loc, , lock] = args as [CallCtx, string, { path: string }, string, { type: string; start: number; len: number }];
      const key = `i:${ctx.lkOwner}:${domain}:${loc.path}:${lock.start}:${lock.len}`;
      if (lock.type === "un") this.held.delete(key);
      else this.held.set(key, () => child.inodelk(ctx, domain, loc, "setlk", { ...lock, type: "un" } as never));
    } else if (fop === "entrylk") {
      const [ctx, domain, loc, base, cmd, type] = args as [CallCtx, string, { path: string }, string | null, string, "rd" | "wr"];
      const key = `e:${ctx.lkOwner}:${domain}:${loc.path}:${base}`;
      if (cmd === "unlock") this.held.delete(key);
      else this.held.set(key, () => child.entrylk(ctx, domain, loc, base, "unlock", type));
    }
    if (this.down) throw new FopError("ENOTCONN", "switched off", { xlator: this.name, fop });
    return result;
  };
}

export const AFR_DEFAULTS: AfrOptions = {
  "quorum-type": "none", "self-heal": true, "self-heal-daemon": false, "heal-timeout": 600,
  "favorite-child-policy": "none", "data-self-heal-algorithm": "auto", "heal-block-size": 65536,
  "heal-parallel": 4, "child-up-heal-delay": 0,
};

export interface ReplicaSet {
  afr: Afr;
  switches: Switch[];
  dirs: string[];
  bricks: Xlator[];
  close(): Promise<void>;
}

function make(type: string, name: string, options: Record<string, unknown>, children: Xlator[], graph: Map<string, Xlator>): Xlator {
  const def = findXlator(type)!;
  const x = def.init({ name, type, options, children, log: silentLogger(), graph } as XlatorInit<any>);
  graph.set(name, x);
  return x;
}

export async function replicaSet(n = 2, opts: Partial<AfrOptions> = {}, afrName = "gfs-ds-afr"): Promise<ReplicaSet> {
  const graph = new Map<string, Xlator>();
  const dirs: string[] = [];
  const switches: Switch[] = [];
  const bricks: Xlator[] = [];
  for (let i = 0; i < n; i++) {
    const dir = mkdtempSync(join(tmpdir(), `afr-brick${i}-`));
    dirs.push(dir);
    const posix = make("storage/posix", `posix${i}`, { directory: dir, fsync: false }, [], graph);
    const locks = make("features/posix-locks", `locks${i}`, {}, [posix], graph);
    bricks.push(posix);
    const sw = new Switch({ name: `brick${i}`, type: "test/switch", options: {}, children: [locks], log: silentLogger(), graph });
    graph.set(sw.name, sw);
    switches.push(sw);
  }
  const afr = new Afr({ name: afrName, type: "cluster/afr", options: { ...AFR_DEFAULTS, ...opts }, children: switches, log: silentLogger(), graph });
  for (const x of graph.values()) await x.start();
  await afr.start();
  return {
    afr, switches, dirs, bricks,
    async close() {
      await afr.stop();
      for (const x of [...graph.values()].reverse()) await x.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

export const ROOT: CallCtx = { uid: 0, gid: 0, pid: process.pid, lkOwner: String(process.pid), client: "local" };

export async function writeFile(x: Xlator, path: string, data: Buffer | string, offset = 0): Promise<void> {
  const buf = Buffer.from(data);
  const fd = new Fd(path, fsc.O_RDWR);
  try {
    await x.lookup(ROOT, { path });
    await x.open(ROOT, { path }, fsc.O_RDWR, fd);
  } catch (err) {
    if ((err as FopError).code !== "ENOENT") throw err;
    await x.create(ROOT, { path }, fsc.O_RDWR | fsc.O_CREAT, 0o644, fd);
  }
  try {
    if (buf.length > 0) await x.write(ROOT, fd, buf, offset);
    await x.flush(ROOT, fd);
  } finally {
    await x.release(ROOT, fd);
  }
}

export async function readFile(x: Xlator, path: string): Promise<Buffer> {
  await x.lookup(ROOT, { path });
  const fd = new Fd(path, fsc.O_RDONLY);
  await x.open(ROOT, { path }, fsc.O_RDONLY, fd);
  try {
    const size = (await x.fstat(ROOT, fd)).size;
    const parts: Buffer[] = [];
    for (let off = 0; off < size; ) {
      const b = await x.read(ROOT, fd, Math.min(1 << 20, size - off), off);
      if (b.length === 0) break;
      parts.push(b);
      off += b.length;
    }
    return Buffer.concat(parts);
  } finally {
    await x.release(ROOT, fd);
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

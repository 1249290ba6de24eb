/**
 * Eager lock and delayed post-op (GlusterFS's optimisation): a stream of writes through one fd shares
 * one transaction — the full-file data lock and the pre-op are taken by the first write; the post-op
 * and unlock run when the fd goes idle (`post-op-delay`), after `eager-lock-max-hold`, or before any
 * other fop on the fd (flush, fsync, fsetattr, release). A replica that fails any write of the batch
 * stays blamed; a crash inside the window leaves every replica self-accusing, which heal handles.
 */
import { FopError } from "../../../core/errors";
import type { CallCtx, Fd } from "../../../core/types";
import type { Afr, AfrFdCtx } from "./afr";
import { delta } from "./changelog";
import { dataLock, fdLoc } from "./inode-write";
import { lockAll, type HeldLocks } from "./transaction";

interface EagerTxn {
  ready: Promise<void>;
  held?: HeldLocks;
  ctx: CallCtx;
  keys: string[];
  marked: number[];
  failed: Set<number>;
  succeeded: Set<number>;
  inflight: number;
  idle?: NodeJS.Timeout;
  startedAt: number;
  closing?: Promise<void>;
}

const eager = new WeakMap<AfrFdCtx, EagerTxn>();

export function eagerEnabled(afr: Afr): boolean {
  return afr.options["eager-lock"] !== false;
}

async function begin(afr: Afr, ctx: CallCtx, fd: Fd, fc: AfrFdCtx): Promise<EagerTxn> {
  const up = afr.upChildren();
  if (up.length === 0) throw afr.err("ENOTCONN", "write", "no subvolume is up");
  if (!afr.hasQuorum(up)) throw afr.err("EROFS", "write", "quorum not met");
  const txn: EagerTxn = {
    ready: Promise.resolve(), ctx: afr.internalCtx(ctx), keys: afr.children.map((_, j) => afr.blameKey(j)),
    marked: [], failed: new Set(), succeeded: new Set(), inflight: 0, startedAt: Date.now(),
  };
  eager.set(fc, txn);
  txn.ready = (async () => {
    const loc = fdLoc(fd);
    txn.held = await lockAll(afr, txn.ctx, [dataLock(afr, loc)], up);
    let locked = txn.held.children;
    if (locked.length === 0) locked = up; // unlinked while open: no path to lock
    const mark = Object.fromEntries(txn.keys.map((k) => [k, delta("data", 1)]));
    await Promise.all(locked.map(async (i) => {
      try {
        await afr.children[i]!.xattrop(txn.ctx, loc, "add32", mark);
        txn.marked.push(i);
      } catch (err) {
        if (FopError.from(err).code !== "ENOENT") txn.failed.add(i);
      }
    }));
  })();
  try {
    await txn.ready;
  } catch (err) {
    eager.delete(fc);
    await txn.held?.releaseAll();
    throw err;
  }
  return txn;
}

/** Post-op and unlock of the fd's pending batch, if any. */
export async function finishEager(afr: Afr, fd: Fd): Promise<void> {
  const fc = afr.fdCtx(fd);
  const txn = fc ? eager.get(fc) : undefined;
  if (!fc || !txn) return;
  txn.closing ??= (async () => {
    await txn.ready.catch(() => undefined);
    while (txn.inflight > 0) await new Promise((r) => setImmediate(r));
    if (eager.get(fc) === txn) eager.delete(fc);
    if (txn.idle) clearTimeout(txn.idle);
    const ok = [...txn.succeeded].filter((i) => !txn.failed.has(i));
    const undo = ok.length > 0 ? ok : afr.children.map((_, j) => j);
    const change = Object.fromEntries(undo.map((j) => [txn.keys[j]!, delta("data", -1)]));
    const loc = fdLoc(fd);
    await Promise.all(txn.marked.map(async (i) => {
      try {
        await afr.children[i]!.xattrop(txn.ctx, loc, "add32", change);
      } catch (err) {
        afr.log.warn({ child: afr.children[i]!.name, err: (err as Error).message }, "delayed post-op failed; replica stays marked");
      }
    }));
    await txn.held?.releaseAll();
  })();
  await txn.closing;
}

/** One write inside the fd's batch (starting one if needed). */
export async function eagerWrite(afr: Afr, ctx: CallCtx, fd: Fd, fc: AfrFdCtx, op: (i: number) => Promise<number>): Promise<number> {
  let txn = eager.get(fc);
  const maxHold = (afr.options["eager-lock-max-hold"] ?? 1) * 1000;
  // A batch ends when a replica came back (it must join the next one) or it was held long enough.
  if (txn && (txn.closing || Date.now() - txn.startedAt > maxHold || afr.upChildren().some((i) => fc.opened[i] && !txn!.marked.includes(i) && !txn!.failed.has(i)))) {
    await finishEager(afr, fd);
    txn = undefined;
  }
  txn ??= eager.get(fc) ?? (await begin(afr, ctx, fd, fc));
  await txn.ready;
  txn.inflight++;
  if (txn.idle) clearTimeout(txn.idle);
  try {
    const targets = txn.marked.length > 0 ? txn.marked : afr.upChildren();
    const results = new Map<number, number>();
    const errors: FopError[] = [];
    await Promise.all(targets.map(async (i) => {
      if (!fc.opened[i] || txn!.failed.has(i)) {
        txn!.failed.add(i);
        return;
      }
      try {
        results.set(i, await op(i));
        txn!.succeeded.add(i);
      } catch (err) {
        const e = FopError.from(err, { xlator: afr.name, fop: "write" });
        txn!.failed.add(i);
        errors.push(e);
        if (e.code === "EBADF" || e.code === "ENOTCONN") fc.opened[i] = false;
      }
    }));
    if (results.size === 0) {
      throw errors.find((e) => e.code !== "ENOTCONN" && e.code !== "EBADF") ?? errors[0] ?? afr.err("ENOTCONN", "write");
    }
    if (!results.has(fc.readChild)) fc.readChild = results.keys().next().value!;
    if (afr.options["quorum-type"] !== "none" && !afr.hasQuorum([...results.keys()])) throw afr.err("EROFS", "write", "succeeded on fewer replicas than the quorum");
    return results.get(fc.readChild)!;
  } finally {
    txn.inflight--;
    if (txn.inflight === 0 && !txn.closing) {
      const delay = (afr.options["post-op-delay"] ?? 0.1) * 1000;
      txn.idle = setTimeout(() => void finishEager(afr, fd), delay);
    }
  }
}

/**
 * Application locks (fcntl, flock) and internal locks from above go to every reachable replica, one
 * after the other in brick-identity order, so two lockers meet on the same replica first. A lock is
 * granted if at least one replica granted it; a refusal on one releases what the others granted.
 */
import { FopError } from "../../../core/errors";
import type { CallCtx, EntrylkCmd, Fd, Flock, LkCmd, Loc, Xdata } from "../../../core/types";
import type { Afr } from "./afr";

async function onEachInOrder<T>(afr: Afr, fop: string, targets: number[], fn: (i: number) => Promise<T>,
  undo?: (i: number) => Promise<unknown>): Promise<T> {
  let result: { v: T } | undefined;
  let firstErr: FopError | undefined;
  const done: number[] = [];
  for (const i of afr.lockOrder(targets)) {
    try {
      const v = await fn(i);
      result ??= { v };
      done.push(i);
    } catch (err) {
      const e = FopError.from(err, { xlator: afr.name, fop });
      if (e.code === "ENOTCONN" || e.code === "EBADF") {
        firstErr ??= e;
        continue;
      }
      if (undo) await Promise.all(done.map((d) => undo(d).catch(() => undefined)));
      throw e;
    }
  }
  if (result) return result.v;
  throw firstErr ?? afr.err("ENOTCONN", fop, "no subvolume is up");
}

function fdTargets(afr: Afr, fd: Fd): number[] {
  const fc = afr.fdCtx(fd);
  return afr.upChildren().filter((i) => !fc || fc.opened[i]);
}

export function lk(afr: Afr, ctx: CallCtx, fd: Fd, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock> {
  const targets = fdTargets(afr, fd);
  if (cmd !== "getlk" && lock.type !== "un") afr.clientsWithLocks.add(ctx.client);
  if (cmd === "getlk") {
    return onEachInOrder(afr, "lk", targets.slice(0, 1), (i) => afr.children[i]!.lk(ctx, fd, cmd, lock, xdata));
  }
  return onEachInOrder(afr, "lk", targets, (i) => afr.children[i]!.lk(ctx, fd, cmd, lock, xdata),
    lock.type === "un" ? undefined : (i) => afr.children[i]!.lk(ctx, fd, "setlk", { ...lock, type: "un" }, xdata));
}

export function flock(afr: Afr, ctx: CallCtx, fd: Fd, op: "sh" | "ex" | "un", nonblock: boolean, xdata?: Xdata): Promise<void> {
  if (op !== "un") afr.clientsWithLocks.add(ctx.client);
  return onEachInOrder(afr, "flock", fdTargets(afr, fd), (i) => afr.children[i]!.flock(ctx, fd, op, nonblock, xdata),
    op === "un" ? undefined : (i) => afr.children[i]!.flock(ctx, fd, "un", false, xdata));
}

export function inodelk(afr: Afr, ctx: CallCtx, domain: string, loc: Loc, cmd: LkCmd, lock: Flock, xdata?: Xdata): Promise<Flock> {
  return onEachInOrder(afr, "inodelk", afr.upChildren(), (i) => afr.children[i]!.inodelk(ctx, domain, loc, cmd, lock, xdata),
    lock.type === "un" ? undefined : (i) => afr.children[i]!.inodelk(ctx, domain, loc, "setlk", { ...lock, type: "un" }, xdata));
}

export function entrylk(afr: Afr, ctx: CallCtx, domain: string, loc: Loc, basename: string | null, cmd: EntrylkCmd, type: "rd" | "wr", xdata?: Xdata): Promise<void> {
  return onEachInOrder(afr, "entrylk", afr.upChildren(), (i) => afr.children[i]!.entrylk(ctx, domain, loc, basename, cmd, type, xdata),
    cmd === "unlock" ? undefined : (i) => afr.children[i]!.entrylk(ctx, domain, loc, basename, "unlock", type, xdata));
}

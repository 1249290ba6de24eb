import { constants } from "node:fs";
import { FD_FOPS, type FopName } from "../core/fops";

/**
 * Where fds sit in a fop's argument list on the wire (index 0 is the CallCtx).
 * FD_FOPS carry an fd the client opened earlier, sent as its number. create/open/opendir carry the
 * new Fd the caller made, sent as a `WireNewFd` so the server can make its own Fd under that number.
 */
export const FD_ARG = 1;
export const NEW_FD_ARG: Readonly<Partial<Record<FopName, number>>> = { create: 4, open: 3, opendir: 2 };

/** The fops that free an fd on the server. */
export const RELEASE_FOPS: ReadonlySet<FopName> = new Set<FopName>(["release", "releasedir"]);

/** Where a lock description (Flock) sits in the arguments of lock fops, to make its owner unique per client. */
export const LOCK_ARG: Readonly<Partial<Record<FopName, number>>> = { lk: 3, inodelk: 4 };

export interface WireNewFd {
  /** The number the client will use for this fd on this connection. */
  n: number;
  path: string;
  flags: number;
  isDir: boolean;
  gfid?: string;
}

export function carriesFd(op: FopName): boolean {
  return FD_FOPS.has(op);
}

/** open(2) flags that must not be repeated when a client reopens an fd after a reconnect. */
export const REOPEN_MASK = ~(constants.O_CREAT | constants.O_EXCL | constants.O_TRUNC);

/** Default TCP port of protocol/server (GlusterFS 1.3). */
export const DEFAULT_PORT = 6996;

import type { XlatorDef } from "../core/xlator";
import posix from "./storage/posix";
import posixLocks from "./features/posix-locks";
import server from "./protocol/server";
import client from "./protocol/client";
import afr from "./cluster/afr";
import ioThreads from "./performance/io-threads";
import writeBehind from "./performance/write-behind";
import readAhead from "./performance/read-ahead";
import ioCache from "./performance/io-cache";
import mdCache from "./performance/md-cache";
import quickRead from "./performance/quick-read";
import ioStats from "./debug/io-stats";

/** Every translator by its volfile `type`. */
export const XLATORS: ReadonlyMap<string, XlatorDef<any>> = new Map<string, XlatorDef<any>>(
  [posix, posixLocks, server, client, afr, ioThreads, writeBehind, readAhead, ioCache, mdCache, quickRead, ioStats].map((d) => [d.type, d]),
);

/** Other names GlusterFS accepts for the same translators. */
export const XLATOR_ALIASES: ReadonlyMap<string, string> = new Map([
  ["features/locks", "features/posix-locks"],
  ["cluster/replicate", "cluster/afr"],
]);

export function findXlator(type: string): XlatorDef<any> | undefined {
  return XLATORS.get(XLATOR_ALIASES.get(type) ?? type);
}

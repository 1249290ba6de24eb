/**
 * cluster/afr (alias cluster/replicate): automatic file replication.
 *
 * Files: afr.ts (the translator: children, identity, quorum, events), transaction.ts (lock, pre-op,
 * op, post-op, unlock), after-work.ts (unlocks and clean post-ops after the answer), eager-lock.ts
 * (write batches per fd), entry-eager.ts (entry-fop batches per directory), changelog.ts
 * (trusted.afr.* counters, source/sink direction), inspect.ts,
 * inode-read.ts, inode-write.ts, dir-write.ts, lock-fops.ts, self-heal*.ts, split-brain.ts,
 * heal-scheduler.ts, heal-daemon.ts. The index crawler is in runtime/heal/ (shared with the CLI).
 */
import { defineXlator } from "../../../core/xlator";
import schema from "../../../../schema/xlators/cluster/afr.json";
import { Afr, type AfrOptions } from "./afr";

export { Afr };
export type { AfrOptions };

export default defineXlator<AfrOptions>({
  type: "cluster/afr",
  schema,
  children: { min: 1, max: 16 },
  init: (init) => new Afr(init),
});

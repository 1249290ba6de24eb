/**
 * Locks that ride on a fop ("locks first"): a replicate volume on another server sends its entry or
 * inode locks inside the fop that needs them (an entry fop, a pre-op xattrop) instead of a lock
 * request of its own, saving a round trip per transaction. The brick takes them all or none, without
 * waiting (a conflict fails the fop with EAGAIN and it does not run); they stay held if the fop
 * succeeds (released later by ordinary unlocks, or with the connection), and go again if it fails.
 * The owner is the fop's lock owner (CallCtx.lkOwner), as for inodelk/entrylk.
 *
 * Unlocks ride the same way: the locks listed under LOCKS_AFTER_XDATA are released once the fop is
 * done, whatever its outcome (a post-op and the unlock after it; or an op whose locks are needed
 * only while it runs on this brick).
 *
 * A write batch's post-op rides on the close: a flush may carry changelog counters to add to its
 * file (CHANGELOG_XDATA, applied after the flush, before the locks after it go) and its unlock,
 * under the batch's own lock owner (FirstLock.owner; the flush itself carries the closing process's).
 * A batch's pre-op rides on the create of its file the same way (the counters added once the create
 * made the file, its data lock taken under the gfid the create asks for): a new file is born locked
 * and marked, with no lock request or pre-op of its own.
 */
import type { Loc } from "../../../core/types";

/** xdata key of a fop: the locks to take before it runs. */
export const LOCKS_FIRST_XDATA = "gha.locks-first";
/** xdata key of a fop: the locks (of the fop's owner) to release after it. */
export const LOCKS_AFTER_XDATA = "gha.locks-after";
/** getxattr on any path answers "1" where the brick understands LOCKS_FIRST_XDATA. */
export const LOCKS_FIRST_XATTR = "trusted.gha.locks-first";

/** xdata key of a flush or create: changelog counters to add (xattrop add32) to the file. */
export const CHANGELOG_XDATA = "gha.changelog";

export type FirstLock = (
  | { kind: "inode"; domain: string; loc: Loc; start: number; len: number }
  | { kind: "entry"; domain: string; loc: Loc; basename: string | null; type: "rd" | "wr" }
) & {
  /** The lock's owner when it is not the fop's (CallCtx.lkOwner). */
  owner?: string;
};

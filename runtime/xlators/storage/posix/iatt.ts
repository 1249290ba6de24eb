import type { Stats } from "node:fs";
import type { Iatt } from "../../../core/types";

export function toIatt(st: Stats, gfid: string): Iatt {
  return {
    gfid,
    ino: st.ino,
    mode: st.mode,
    nlink: st.nlink,
    uid: st.uid,
    gid: st.gid,
    rdev: st.rdev,
    size: st.size,
    blocks: st.blocks,
    blksize: st.blksize,
    atimeMs: st.atimeMs,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
  };
}

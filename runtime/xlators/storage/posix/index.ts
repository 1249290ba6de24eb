import { defineXlator } from "../../../core/xlator";
import schema from "../../../../schema/xlators/storage/posix.json";
import { Posix, type PosixOptions } from "./posix";

export { Posix, INDEX_XATTR, BRICK_ID_XATTR, LISTING_DISK_WAIT } from "./posix";
export type { PosixOptions } from "./posix";
export { ROOT_GFID, gfidFromBytes, gfidToBytes } from "./gfid";

/** storage/posix: the brick (a local directory); the bottom of every server graph. */
export default defineXlator<PosixOptions>({
  type: "storage/posix",
  schema,
  children: { min: 0, max: 0 },
  init: (init) => new Posix(init),
});

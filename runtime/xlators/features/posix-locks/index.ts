import { defineXlator } from "../../../core/xlator";
import schema from "../../../../schema/xlators/features/posix-locks.json";
import { PosixLocks, type PosixLocksOptions } from "./locks";

export { PosixLocks } from "./locks";
export type { PosixLocksOptions } from "./locks";

/** features/posix-locks: fcntl locks, flock, inodelk and entrylk above one brick. */
export default defineXlator<PosixLocksOptions>({
  type: "features/posix-locks",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new PosixLocks(init),
});

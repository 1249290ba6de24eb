// A disk that refuses data, for storage/posix's background writeback (writeback-after): node:fs's
// callback fdatasync — the one the brick calls in the background — fails with EIO while `fn` runs.

type Datasync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void;

/** node:fs itself (the module storage/posix calls), whose fdatasync is replaced for a while. */
const nodeFs = require("node:fs") as { fdatasync: Datasync };

/**
 * Runs `fn` while background datasyncs of the descriptors `refuses` picks (every one by default) fail
 * with EIO, as the kernel reports a writeback error to the datasync that meets it; the others go to
 * the disk. Returns `fn`'s result and how many datasyncs were refused.
 */
export async function withFailingDatasyncs<T>(fn: () => Promise<T>, refuses: (fd: number) => boolean = () => true): Promise<{ result: T; refused: number }> {
  const real = nodeFs.fdatasync;
  let refused = 0;
  nodeFs.fdatasync = (fd, cb) => {
    if (!refuses(fd)) return real(fd, cb);
    refused++;
    process.nextTick(cb, Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5, syscall: "fdatasync" }));
  };
  try {
    return { result: await fn(), refused };
  } finally {
    nodeFs.fdatasync = real;
  }
}

import { constants as osConstants } from "node:os";

/** errno names we use, mapped to their Linux numbers (os.constants.errno is the source of truth). */
export type ErrnoCode = keyof typeof osConstants.errno;

export function errnoNumber(code: string): number {
  const n = (osConstants.errno as Record<string, number>)[code];
  return n === undefined ? osConstants.errno.EIO : n;
}

const byNumber = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) if (!byNumber.has(num)) byNumber.set(num, name);

export function errnoName(n: number): string {
  return byNumber.get(Math.abs(n)) ?? "EIO";
}

/**
 * The one error type of file operations: an errno, and which translator and fop raised it.
 * Node's own fs errors are converted once, in storage/posix (see `FopError.from`).
 */
export class FopError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly xlator: string | undefined;
  readonly fop: string | undefined;

  /**
   * Stack traces are captured only when GLUSTER_HA_FOP_STACKS=1: a FopError is an answer (ENOENT,
   * ENODATA, EAGAIN...), made thousands of times a second (a negative lookup or xattr probe per file of
   * `ls -l`), and capturing the stack was most of its cost (~4 µs). It names its errno, translator and fop.
   */
  static captureStacks = process.env.GLUSTER_HA_FOP_STACKS === "1";

  constructor(code: string, message?: string, where?: { xlator?: string; fop?: string }) {
    const limit = Error.stackTraceLimit;
    if (!FopError.captureStacks) Error.stackTraceLimit = 0;
    super(message ?? code);
    Error.stackTraceLimit = limit;
    this.name = "FopError";
    this.code = code in osConstants.errno ? code : "EIO";
    this.errno = errnoNumber(this.code);
    this.xlator = where?.xlator;
    this.fop = where?.fop;
  }

  /** Converts anything thrown (a Node fs error, a FopError, a bug) into a FopError. Bugs become EIO. */
  static from(err: unknown, where?: { xlator?: string; fop?: string }): FopError {
    if (err instanceof FopError) return err;
    const e = err as { code?: unknown; message?: unknown } | undefined;
    const code = typeof e?.code === "string" && e.code in osConstants.errno ? e.code : "EIO";
    const msg = typeof e?.message === "string" ? e.message : String(err);
    return new FopError(code, msg, where);
  }
}

/** Thrown by configuration checks (volfiles, options, component inputs): names what is wrong and where. */
export class ConfigError extends Error {
  readonly code = "ECONFIG";
  constructor(
    message: string,
    readonly where?: { file?: string; line?: number; volume?: string; option?: string },
  ) {
    super(where?.file !== undefined ? `${where.file}:${where.line ?? 0}: ${message}` : message);
    this.name = "ConfigError";
  }
}

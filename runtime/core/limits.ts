/**
 * Linux's limits on names, which every layer must agree on: storage/posix refuses a longer name with
 * ENAMETOOLONG, and a cache must not answer such a name "missing" (ENOENT) in its place.
 */
export const NAME_MAX = 255;
export const PATH_MAX = 4096;

/** Whether a volume path is too long for the bricks: over PATH_MAX bytes, or a component over NAME_MAX. */
export function nameTooLong(path: string): boolean {
  return Buffer.byteLength(path) > PATH_MAX || path.split("/").some((c) => Buffer.byteLength(c) > NAME_MAX);
}

import { constants as FS } from "node:fs";

// The flags worth naming in a statedump, in the order open(2) documents them.
const NAMED: [string, number | undefined][] = [
  ["O_APPEND", FS.O_APPEND], ["O_CREAT", FS.O_CREAT], ["O_EXCL", FS.O_EXCL], ["O_TRUNC", FS.O_TRUNC],
  ["O_SYNC", FS.O_SYNC], ["O_DSYNC", FS.O_DSYNC], ["O_DIRECT", FS.O_DIRECT], ["O_NONBLOCK", FS.O_NONBLOCK],
  ["O_DIRECTORY", FS.O_DIRECTORY], ["O_NOFOLLOW", FS.O_NOFOLLOW], ["O_NOATIME", FS.O_NOATIME],
];

/** open(2) flags as an operator reads them: "O_RDWR|O_CREAT|O_TRUNC". */
export function openFlagNames(flags: number): string {
  const access = flags & 3;
  const names = [access === FS.O_WRONLY ? "O_WRONLY" : access === FS.O_RDWR ? "O_RDWR" : "O_RDONLY"];
  let known = 3;
  for (const [name, bit] of NAMED) {
    if (!bit) continue;
    known |= bit;
    // O_SYNC includes O_DSYNC's bit on Linux: name only the wider one.
    if ((flags & bit) === bit && !(name === "O_DSYNC" && (flags & FS.O_SYNC) === FS.O_SYNC)) names.push(name);
  }
  const rest = flags & ~known;
  if (rest) names.push(`0x${rest.toString(16)}`);
  return names.join("|");
}

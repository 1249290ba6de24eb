// A posix + posix-locks volume mounted with the glusterfs CLI behaves like the local disk.
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before } from "node:test";
import { mountVolfile, posixLocksVolfile, type Mounted } from "../helpers/mount";
import { posixSuite } from "../helpers/posix-suite";

let base: string;
let mounted: Mounted | undefined;

before(async () => {
  // The brick on the machine's own disk, like the reference directory.
  base = await mkdtemp("/var/tmp/gha-fuse-posix-");
  await mkdir(join(base, "brick"));
  mounted = await mountVolfile(posixLocksVolfile(join(base, "brick")), { dir: base });
});

after(async () => {
  await mounted?.unmount();
  await rm(base, { recursive: true, force: true });
});

posixSuite("posix + posix-locks over FUSE", () => mounted!.mountpoint);

import type { MountXattrSupport } from "./xattrs";

/** How the FUSE mount is set up (the `glusterfs` CLI fills this from its flags). */
/** Who serves /dev/fuse: our own event-loop reader (kernel/), or fuse-native + libfuse 2 (bridge.ts). */
export type FuseEngine = "kernel" | "libfuse";

export interface FuseMountOptions {
  engine: FuseEngine;
  /** Directory to mount on (must exist). */
  mountpoint: string;
  /**
   * Seconds the kernel may cache attributes / names. GlusterFS uses 1 s for both; attributes default
   * to 0 here because libfuse 2's path-based API gives every name of a hard-linked file its own
   * kernel inode: a cached size or link count of one name would go stale when the file changes
   * through another (test/helpers/posix-suite.ts, "hard links"). Raise it with --attribute-timeout
   * when hard links do not matter.
   */
  attrTimeout: number;
  entryTimeout: number;
  /**
   * Seconds the kernel may cache the attributes of directories, and of files with a single link
   * (no other name whose changes would leave them stale), whatever attrTimeout says: set per reply
   * by the patched fuse-native (patches/fuse-native/0005). Without it the kernel asks for the
   * attributes of every directory of every path it walks (default_permissions checks them). A hard
   * link made through the mount drops its source's cached attributes. Changes made through other
   * clients show within this time, as with GlusterFS's 1 s attribute-timeout. 0: attrTimeout.
   */
  dirAttrTimeout: number;
  /**
   * Off by default (attrTimeout applies): a file's cached size outlives an fcntl lock taken to read
   * what another client just wrote under the same lock (the kernel clamps reads to the size it has),
   * and libfuse 2 gives us no call to drop the kernel's attributes when a lock is granted. Two clients
   * incrementing a counter under lockf lost updates with it on (test/faults/concurrency.test.ts, long
   * mode). Turn it on for data no two clients share under locks.
   */
  singleLinkAttrTimeout: number;
  /**
   * Seconds the kernel may keep names and attributes while every server below reports the other
   * clients' changes (cache-invalidation upcalls, which the kernel engine turns into FUSE invalidations,
   * kernel-caches.ts), as md-cache keeps its own for its invalidation-timeout: a path walked again later
   * (stat, open, unlink of files listed or made a minute ago) then costs the kernel no LOOKUP per name.
   * Missing names keep entryTimeout. 0, or the libfuse engine: entryTimeout and attrTimeout always.
   */
  invalidatedTimeout: number;
  /** Largest write the kernel sends in one request (needs big_writes; the kernel's ceiling is 128 KiB on libfuse 2). */
  maxWrite: number;
  /** Largest read the kernel asks for in one request. */
  maxRead: number;
  /** Let other users (Apache's www-data) use the mount; the kernel then checks permissions (default_permissions). */
  allowOther: boolean;
  /** Kernel-side permission checks against the modes/owners we report. Always wanted with allowOther. */
  defaultPermissions: boolean;
  /** Shown as the source in /proc/mounts (GlusterFS shows the volfile server or "glusterfs"). */
  fsname: string;
  /** Optional xattr families the mount keeps (see ./xattrs.ts): off, EOPNOTSUPP, as GlusterFS without -o acl/selinux. */
  xattrs: MountXattrSupport;
}

export const DEFAULT_FUSE_OPTIONS: Omit<FuseMountOptions, "mountpoint"> = {
  engine: "kernel",
  attrTimeout: 0,
  entryTimeout: 1,
  dirAttrTimeout: 1,
  singleLinkAttrTimeout: 0,
  invalidatedTimeout: 0,
  maxWrite: 131072,
  maxRead: 131072,
  allowOther: true,
  defaultPermissions: true,
  fsname: "glusterfs",
  xattrs: { acl: false, selinux: false },
};

/** The filesystem type suffix: /proc/mounts shows `fuse.glusterfs`, as a GlusterFS mount does. */
export const FUSE_SUBTYPE = "glusterfs";

/**
 * libfuse options fuse-native has no setting for. fuse-native builds its `-o` string from a fixed
 * list (Fuse#_fuseOptions); the bridge appends these to it (see GlusterFuse in bridge.ts):
 * - big_writes + max_write: without them the kernel sends 4 KiB writes (sequential writes ~40 MB/s).
 * - use_ino: st_ino comes from the volume (hard links share an inode number, as on disk), not from
 *   libfuse's own per-path node ids.
 * - attr_timeout / entry_timeout: always passed here, 0 included.
 */
export function extraLibfuseOptions(o: Pick<FuseMountOptions, "maxWrite" | "attrTimeout" | "entryTimeout">): string[] {
  return [
    "big_writes", `max_write=${o.maxWrite}`, "use_ino",
    // fuse-native drops a timeout of 0 (it tests the value for truth), which would leave libfuse's 1 s.
    `attr_timeout=${o.attrTimeout}`, `entry_timeout=${o.entryTimeout}`,
  ];
}

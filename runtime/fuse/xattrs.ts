import { FopError } from "../core/errors";

/**
 * Extended attributes that belong to the volume itself (gfid, replication changelog, server state):
 * the mount neither shows nor lets anyone change them (see docs/ARCHITECTURE.md, "Internal xattrs").
 */
const INTERNAL_EXACT = new Set(["trusted.gfid"]);
const INTERNAL_PREFIXES = ["trusted.afr.", "trusted.glusterfs.", "trusted.gha."];

export function isInternalXattr(name: string): boolean {
  return INTERNAL_EXACT.has(name) || INTERNAL_PREFIXES.some((p) => name.startsWith(p));
}

/** Which optional xattr families the mount supports (`glusterfs --acl`, `--selinux`, as GlusterFS's mount options). */
export interface MountXattrSupport {
  /** POSIX ACLs are kept (stored on the bricks, replicated, shown to getfacl); the kernel checks mode bits only. */
  acl: boolean;
  /** security.selinux labels are kept. */
  selinux: boolean;
}

const POSIX_ACL_XATTRS = new Set(["system.posix_acl_access", "system.posix_acl_default"]);

function unsupported(name: string, support: MountXattrSupport): string | undefined {
  if (!support.acl && POSIX_ACL_XATTRS.has(name)) return "--acl";
  if (!support.selinux && name === "security.selinux") return "--selinux";
  return undefined;
}

/**
 * Why the mount answers an xattr request itself instead of sending it down, or undefined.
 * Without --acl/--selinux, ACLs and SELinux labels are EOPNOTSUPP, as on a GlusterFS mount without
 * `-o acl`/`selinux`: tools then know the filesystem has none, and `ls -l`, which asks for both on
 * every file, stops asking after the first answer on this device (coreutils caches "unsupported" per
 * st_dev) — two round trips per listed file otherwise.
 */
export function refusedXattr(fop: "getxattr" | "setxattr" | "removexattr", name: string, support: MountXattrSupport): FopError | undefined {
  if (isInternalXattr(name)) return new FopError(fop === "getxattr" ? "ENODATA" : "EPERM", `${name} is internal`, { xlator: "fuse", fop });
  const flag = unsupported(name, support);
  return flag ? new FopError("EOPNOTSUPP", `${name}: not kept on this mount (mount with ${flag})`, { xlator: "fuse", fop }) : undefined;
}

/** The names listxattr shows: neither the volume's own nor those the mount does not support. */
export function visibleXattrs(names: string[], support: MountXattrSupport): string[] {
  return names.filter((n) => !isInternalXattr(n) && !unsupported(n, support));
}

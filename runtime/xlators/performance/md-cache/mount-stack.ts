import type { CheckedVolfile } from "../../../volfile/types";
import type { MountXattrSupport } from "../../../fuse/xattrs";
import schema from "../../../../schema/xlators/performance/md-cache.json";
import quickReadSchema from "../../../../schema/xlators/performance/quick-read.json";

export const MD_CACHE_TYPE = "performance/md-cache";
export const QUICK_READ_TYPE = "performance/quick-read";

/** A translator's options with its schema's defaults. */
function defaults(s: { properties: object }): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(s.properties as Record<string, { default?: unknown }>)) {
    if (p.default !== undefined) options[k] = p.default;
  }
  return options;
}

/**
 * md-cache's options with the schema's defaults, `timeout` replaced. ACLs and SELinux labels a mount
 * refuses itself (fuse/xattrs.ts) are not cached either: nothing would ask, and every lookup and
 * listing would fetch them from the bricks for nothing.
 */
function mdCacheOptions(timeout: number, xattrs?: MountXattrSupport): Record<string, unknown> {
  const o: Record<string, unknown> = { ...defaults(schema), timeout };
  if (xattrs && !xattrs.acl) o["cache-posix-acl"] = false;
  if (xattrs && !xattrs.selinux) o["cache-selinux"] = false;
  return o;
}

/** Puts a translator of `type` on top of the graph (named <base>-<suffix>), unless the volfile has one. */
function stackOnTop(v: CheckedVolfile, type: string, suffix: string, options: Record<string, unknown>, base = v.top): CheckedVolfile {
  if (v.volumes.some((vol) => vol.type === type)) return v;
  const top = v.volumes.find((vol) => vol.name === v.top);
  const name = `${base}-${suffix}`;
  return { ...v, top: name, volumes: [...v.volumes, { name, type, line: top?.line ?? 0, options, subvolumes: [v.top] }] };
}

/**
 * The client's whole mount stack: performance/quick-read (unless `quickRead` is false) and
 * performance/md-cache above it, each skipped when the volfile has its own.
 */
export function withMountStack(v: CheckedVolfile, o: { mdCacheTimeout: number; quickRead: boolean; xattrs?: MountXattrSupport }): CheckedVolfile {
  const withQr = o.quickRead ? stackOnTop(v, QUICK_READ_TYPE, "quick-read", defaults(quickReadSchema)) : v;
  // md-cache keeps the name it always had (<volfile's top>-md-cache): metrics and dumps use it.
  return withMdCache(withQr, o.mdCacheTimeout, v.top, o.xattrs);
}

/**
 * The client's mount stack: performance/md-cache on top of the volfile's graph, as GlusterFS's
 * mount adds caching translators the user never wrote. Left alone when `timeout` is 0 or the volfile
 * already has an md-cache (the user's own settings win). Applied again on every reload, so the
 * graph keeps its shape and reconfigure can apply changes live.
 */
export function withMdCache(v: CheckedVolfile, timeout: number, base = v.top, xattrs?: MountXattrSupport): CheckedVolfile {
  if (timeout <= 0) return v;
  return stackOnTop(v, MD_CACHE_TYPE, "md-cache", mdCacheOptions(timeout, xattrs), base);
}

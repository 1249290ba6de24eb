import type { CheckedVolfile } from "../../../volfile/types";
import schema from "../../../../schema/xlators/performance/md-cache.json";

export const MD_CACHE_TYPE = "performance/md-cache";

/** md-cache's options with the schema's defaults, `timeout` replaced. */
function mdCacheOptions(timeout: number): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(schema.properties as Record<string, { default?: unknown }>)) {
    if (p.default !== undefined) options[k] = p.default;
  }
  options.timeout = timeout;
  return options;
}

/**
 * The client's mount stack: performance/md-cache on top of the volfile's graph, as GlusterFS's
 * mount adds caching translators the user never wrote. Left alone when `timeout` is 0 or the volfile
 * already has an md-cache (the user's own settings win). Applied again on every reload, so the
 * graph keeps its shape and reconfigure can apply changes live.
 */
export function withMdCache(v: CheckedVolfile, timeout: number): CheckedVolfile {
  if (timeout <= 0 || v.volumes.some((vol) => vol.type === MD_CACHE_TYPE)) return v;
  const top = v.volumes.find((vol) => vol.name === v.top);
  const name = `${v.top}-md-cache`;
  return {
    ...v,
    top: name,
    volumes: [...v.volumes, { name, type: MD_CACHE_TYPE, line: top?.line ?? 0, options: mdCacheOptions(timeout), subvolumes: [v.top] }],
  };
}

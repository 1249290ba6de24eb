// TEMPORARY profiling aid (removed before hand-off).
import { writeFileSync } from "node:fs";
import { FOP_NAMES } from "../../../core/fops";
import type { Afr } from "./afr";
export function installTrace(afr: Afr): void {
  if (!process.env.GHA_AFR_TRACE) return;
  const counts: Record<string, { n: number; ms: number }> = {};
  afr.children.forEach((c, i) => {
    for (const f of FOP_NAMES) {
      const orig = (c as any)[f].bind(c);
      (c as any)[f] = async (...args: unknown[]) => {
        const t0 = performance.now();
        const key = `${i}:${f}${f === "lookup" || f === "getxattr" ? ":" + JSON.stringify((args[1] as any)?.path)?.slice(0, 1) : ""}`;
        try { return await orig(...args); } finally {
          const e = (counts[key] ??= { n: 0, ms: 0 }); e.n++; e.ms += performance.now() - t0;
        }
      };
    }
  });
  const own: Record<string, number> = {};
  for (const f of FOP_NAMES) {
    const orig = (afr as any)[f].bind(afr);
    (afr as any)[f] = async (...args: unknown[]) => {
      own[f] = (own[f] ?? 0) + 1;
      const t0 = performance.now();
      try { return await orig(...args); } finally { own[f + "_ms"] = (own[f + "_ms"] ?? 0) + performance.now() - t0; }
    };
  }
  setInterval(() => writeFileSync(`${process.env.GHA_AFR_TRACE}/trace-${process.pid}-${afr.name}.json`, JSON.stringify({ own, counts }, null, 1)), 500).unref();
}

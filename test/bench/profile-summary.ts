// Summarises a V8 .cpuprofile (node --cpu-prof): where the self time went, by function and by file.
import * as fs from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  byFunction: { name: string; ms: number; pct: number }[];
  byFile: { file: string; ms: number; pct: number }[];
}

export function summariseProfile(path: string, top = 15): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(path, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const short = n.callFrame.url.replace(/^file:\/\//, "").replace(/.*\/(node_modules\/)/, "$1").replace(/.*\/dist\//, "dist/");
    const name = `${n.callFrame.functionName || "(anonymous)"} ${short}:${n.callFrame.lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    const f = short || n.callFrame.functionName;
    file.set(f, (file.get(f) ?? 0) + us);
    total += us;
  }
  const rank = <K extends string>(m: Map<string, number>, key: K) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => ({ [key]: k, ms: us / 1000, pct: (100 * us) / total }) as { ms: number; pct: number } & Record<K, string>);
  return { totalMs: total / 1000, byFunction: rank(fn, "name"), byFile: rank(file, "file") };
}

if (require.main === module) {
  for (const f of process.argv.slice(2)) {
    const s = summariseProfile(f);
    console.log(`${f}: ${s.totalMs.toFixed(0)} ms sampled`);
    for (const r of s.byFunction) console.log(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.name}`);
  }
}

// The bench's outputs: a text table with ratios to GlusterFS, and an SVG bar chart of those ratios.
import { METRICS, type Results } from "./workloads";

export interface SystemResult {
  name: string;
  results?: Results;
  error?: string;
}

/** How many times better `x` is than `ref` (>1 = better), whatever the metric's direction. */
export function ratio(metric: string, x: number | undefined, ref: number | undefined): number | undefined {
  if (x === undefined || ref === undefined || !(x > 0) || !(ref > 0)) return undefined;
  const m = METRICS.find((k) => k.key === metric)!;
  return m.higherIsBetter ? x / ref : ref / x;
}

/** Targets, as ratios to GlusterFS: >= 1.0x on sequential figures, >= 2x on small-file and metadata ones. */
export const TARGET_RATIO: Record<string, number> = {
  seqWrite: 1, seqRead: 1, create: 2, stat: 2, walk: 2, readVerify: 2, unlink: 2, lsR: 2,
};

const fmt = (v: number | undefined, unit: string) =>
  v === undefined ? "-" : unit === "s" ? v.toFixed(2) : v >= 100 ? v.toFixed(0) : v.toFixed(1);

/** One column per system, then each subject's ratio to `ref` (subjects not in the run are left out). */
export function table(systems: SystemResult[], ref: string, subject: string | string[]): string {
  const subjects = (Array.isArray(subject) ? subject : [subject]).filter((n, i) => i === 0 || systems.some((s) => s.name === n));
  const head = ["workload", "unit", ...systems.map((s) => s.name), ...subjects.map((n) => `${n} / ${ref}`), "target"];
  const rows: string[][] = [head];
  const refRes = systems.find((s) => s.name === ref)?.results;
  for (const m of METRICS) {
    const goal = TARGET_RATIO[m.key]!;
    const ratios = subjects.map((n) => {
      const r = ratio(m.key, systems.find((s) => s.name === n)?.results?.[m.key], refRes?.[m.key]);
      return r === undefined ? "-" : `${r.toFixed(2)}x ${r >= goal ? "ok" : "MISS"}`;
    });
    rows.push([m.label, m.unit, ...systems.map((s) => fmt(s.results?.[m.key], m.unit)), ...ratios, `>= ${goal}x`]);
  }
  const widths = head.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r, i) => {
    const line = r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
    return i === 0 ? `${line}\n${"-".repeat(line.length)}` : line;
  }).join("\n");
}

/** A bar chart of each system's figure relative to the reference (log scale, 1x line, target marks). */
export function svgChart(systems: SystemResult[], ref: string, title: string): string {
  const refRes = systems.find((s) => s.name === ref)?.results;
  const colours = ["#7f8c8d", "#2e86de", "#e67e22", "#27ae60"];
  const W = 900, rowH = 26 * systems.length + 18, top = 60, left = 230, plotW = 600;
  const H = top + METRICS.length * rowH + 50;
  const lo = Math.log10(0.1), hi = Math.log10(100);
  const x = (v: number) => left + ((Math.log10(Math.min(100, Math.max(0.1, v))) - lo) / (hi - lo)) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16">${esc(title)}</text>`,
    `<text x="${W / 2}" y="42" text-anchor="middle" fill="#555">speed relative to ${esc(ref)} (log scale; right is better)</text>`,
  ];
  for (const t of [0.1, 0.5, 1, 2, 5, 10, 100]) {
    out.push(`<line x1="${x(t)}" y1="${top - 6}" x2="${x(t)}" y2="${H - 40}" stroke="${t === 1 ? "#000" : "#ddd"}"/>`,
      `<text x="${x(t)}" y="${H - 26}" text-anchor="middle">${t}x</text>`);
  }
  METRICS.forEach((m, i) => {
    const y0 = top + i * rowH;
    out.push(`<text x="${left - 8}" y="${y0 + rowH / 2}" text-anchor="end">${esc(m.label)}</text>`);
    out.push(`<line x1="${x(TARGET_RATIO[m.key]!)}" y1="${y0}" x2="${x(TARGET_RATIO[m.key]!)}" y2="${y0 + rowH - 14}" stroke="#c0392b" stroke-dasharray="3,2"/>`);
    systems.forEach((s, j) => {
      const r = ratio(m.key, s.results?.[m.key], refRes?.[m.key]);
      if (r === undefined) return;
      const y = y0 + j * 26;
      const x1 = x(Math.min(r, 1)), x2 = x(Math.max(r, 1));
      out.push(`<rect x="${x1}" y="${y}" width="${Math.max(1, x2 - x1)}" height="20" fill="${colours[j % colours.length]}"><title>${esc(s.name)}: ${r.toFixed(2)}x</title></rect>`,
        `<text x="${x2 + 4}" y="${y + 14}" fill="#333">${r.toFixed(2)}x</text>`);
    });
  });
  systems.forEach((s, j) => {
    out.push(`<rect x="${left + j * 180}" y="${H - 16}" width="12" height="12" fill="${colours[j % colours.length]}"/>`,
      `<text x="${left + j * 180 + 16}" y="${H - 6}">${esc(s.name)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n");
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

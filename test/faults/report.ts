/**
 * Counters the fault scenarios append to one JSON-lines file per test run; zz-summary.test.ts adds them
 * up and prints the suite's summary. The run is identified by the test runner's pid (every test file
 * is a child process of the same `node --test`), so concurrent runs do not mix.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Counters {
  scenarios: number;
  operations: number;
  bytesVerified: number;
  badInputs: number;
  crashes: number;
  dataLost: number;
}

export interface ReportLine extends Partial<Counters> {
  file: string;
  scenario?: string;
  note?: string;
}

const DIR = join(tmpdir(), "gha-faults-report");
export const REPORT_FILE = join(DIR, `run-${process.env.GHA_FAULTS_RUN ?? process.ppid}.jsonl`);

export const LONG = process.env.FAULTS_LONG === "1";

export function record(line: ReportLine): void {
  mkdirSync(DIR, { recursive: true });
  appendFileSync(REPORT_FILE, `${JSON.stringify(line)}\n`);
}

export function readReport(): ReportLine[] {
  if (!existsSync(REPORT_FILE)) return [];
  return readFileSync(REPORT_FILE, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as ReportLine);
}

export function totals(lines: ReportLine[]): Counters {
  const t: Counters = { scenarios: 0, operations: 0, bytesVerified: 0, badInputs: 0, crashes: 0, dataLost: 0 };
  for (const l of lines) for (const k of Object.keys(t) as (keyof Counters)[]) t[k] += l[k] ?? 0;
  return t;
}

export function clearReport(): void {
  rmSync(REPORT_FILE, { force: true });
  // The directory too, once no other run's report is in it.
  try {
    rmdirSync(DIR);
  } catch {
    // another run's report, or already gone
  }
}

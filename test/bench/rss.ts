// Samples the resident memory of processes every 200 ms from a worker thread (the workloads block
// the main thread with synchronous fs calls).
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";

const SAMPLER = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const max = {};
const tick = () => {
  for (const [role, pids] of Object.entries(workerData)) {
    for (const pid of pids) {
      try {
        const m = /VmRSS:\\s+(\\d+) kB/.exec(fs.readFileSync("/proc/" + pid + "/status", "utf8"));
        if (m) { const mb = Number(m[1]) / 1024; const k = role + ":" + pid; if (!(max[k] >= mb)) max[k] = mb; }
      } catch {}
    }
  }
};
tick();
const timer = setInterval(tick, 200);
parentPort.on("message", () => { clearInterval(timer); tick(); parentPort.postMessage(max); });
`;

export interface RssPeaks {
  /** Peak RSS in MB of each process ("role:pid"). */
  byProcess: Record<string, number>;
  /** Largest peak per role. */
  byRole: Record<string, number>;
}

export function sampleRss(pids: Record<string, number[]>): { stop(): Promise<RssPeaks> } {
  const worker = new Worker(SAMPLER, { eval: true, workerData: pids });
  return {
    stop: () =>
      new Promise((resolve, reject) => {
        worker.once("message", (byProcess: Record<string, number>) => {
          void worker.terminate();
          const byRole: Record<string, number> = {};
          for (const [k, mb] of Object.entries(byProcess)) {
            const role = k.split(":")[0]!;
            byRole[role] = Math.max(byRole[role] ?? 0, mb);
          }
          resolve({ byProcess, byRole });
        });
        worker.once("error", reject);
        worker.postMessage("stop");
      }),
  };
}

/** The resident memory in MB of each role's largest process now (VmRSS), or its peak since it started (VmHWM). */
export function rssNow(pids: Record<string, number[]>, field: "VmRSS" | "VmHWM" = "VmRSS"): Record<string, number> {
  const out: Record<string, number> = {};
  const pattern = new RegExp(`${field}:\\s+(\\d+) kB`);
  for (const [role, list] of Object.entries(pids)) {
    for (const pid of list) {
      try {
        const m = pattern.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        if (m) out[role] = Math.max(out[role] ?? 0, Number(m[1]) / 1024);
      } catch {
        // exited
      }
    }
  }
  return out;
}

/**
 * iptables DROP rules for partition tests. Every rule carries the comment `gha-faults-<pid>` so that
 * `removeAll()` (call it from after/finally hooks) takes away exactly what this process added, and
 * `leftoverRules()` can prove `iptables -S` is clean at the end. Rules always name a port of the caller's
 * range, so tests of other engineers on 127.0.0.2/3 are never cut off.
 */
import { execFileSync } from "node:child_process";

const TAG = `gha-faults-${process.pid}`;
const added: string[][] = [];

function iptables(args: string[]): string {
  return execFileSync("iptables", ["-w", "5", ...args], { encoding: "utf8" });
}

function add(rule: string[]): void {
  const full = ["INPUT", ...rule, "-m", "comment", "--comment", TAG, "-j", "DROP"];
  iptables(["-I", ...full]);
  added.push(full);
}

export interface Partition {
  /** Removes this partition's rules (idempotent). */
  heal(): void;
}

function partition(rules: string[][]): Partition {
  const mine: string[][] = [];
  try {
    for (const r of rules) {
      add(r);
      mine.push(added[added.length - 1]!);
    }
  } catch (err) {
    removeRules(mine);
    throw err;
  }
  return { heal: () => removeRules(mine) };
}

function removeRules(rules: string[][]): void {
  for (const r of rules.splice(0)) {
    const i = added.indexOf(r);
    if (i >= 0) added.splice(i, 1);
    try {
      iptables(["-D", ...r]);
    } catch {
      // already gone
    }
  }
}

/**
 * Cuts node `addr` (a server listening on addr:port whose peer connection also leaves from addr) off
 * from everybody: nothing reaches addr:port, nothing leaves it for anyone's :port.
 */
export function isolateNode(addr: string, port: number): Partition {
  const p = String(port);
  return partition([
    ["-d", addr, "-p", "tcp", "--dport", p],
    ["-s", addr, "-p", "tcp", "--sport", p],
    ["-s", addr, "-p", "tcp", "--dport", p],
    ["-d", addr, "-p", "tcp", "--sport", p],
  ]);
}

/** Cuts the two servers off from each other only; clients (from 127.0.0.1) still reach both. */
export function splitServers(a: string, b: string, port: number): Partition {
  const p = String(port);
  return partition([
    ["-s", a, "-d", b, "-p", "tcp", "--dport", p],
    ["-s", b, "-d", a, "-p", "tcp", "--dport", p],
    ["-s", a, "-d", b, "-p", "tcp", "--sport", p],
    ["-s", b, "-d", a, "-p", "tcp", "--sport", p],
  ]);
}

/** Removes every rule this process added. */
export function removeAll(): void {
  removeRules(added);
}

/** Rules in `iptables -S` that carry this process's tag (must be none after removeAll). */
export function leftoverRules(): string[] {
  return iptables(["-S"]).split("\n").filter((l) => l.includes(TAG));
}

/** Any gha-faults rule of any process (a crashed earlier run leaves these behind). */
export function anyFaultRules(): string[] {
  return iptables(["-S"]).split("\n").filter((l) => l.includes("gha-faults-"));
}

// Last resort: a test process that dies between add and its after hook still leaves no rule behind.
process.on("exit", removeAll);

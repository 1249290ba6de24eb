/**
 * Another machine with the same paths, on this one: a second sshd for one of startSshHosts' hosts (its
 * config, host key and authorized keys) on another port, in a mount namespace of its own in which `root`
 * is a bind mount of `backing` (an empty directory). Everything a session through it does under `root`
 * — and every process it starts, which inherits the namespace — lands in `backing`: a host that never
 * got anything, although the paths are the same. The network is shared (addresses must differ).
 *
 *   const other = await startSshdWithOwnFiles({ host: hosts.byName.b, port: 25021, root: `${state}/node2`, backing, dir });
 *   ... connection { host: other.address, port: other.port, ... }
 *   await other.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { SshHost } from "./sshd";

export interface SshdWithOwnFiles {
  address: string;
  port: number;
  /** The host's public key (the same as `host`'s: connection.hostKey). */
  hostKey: string;
  /** sshd's log: one "Accepted publickey for root" line per session. */
  logFile: string;
  /** Stops the sshd (TERM, then KILL); the sessions' processes are the caller's. Idempotent. */
  stop(): Promise<void>;
}

const listening = (address: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: address, port, timeout: 1000 }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
    s.on("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  if (await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])) return;
  child.kill("SIGKILL");
  await exited;
}

export async function startSshdWithOwnFiles(o: { host: SshHost; port: number; root: string; backing: string; dir: string }): Promise<SshdWithOwnFiles> {
  mkdirSync(o.dir, { recursive: true });
  mkdirSync(o.backing, { recursive: true });
  mkdirSync(o.root, { recursive: true });
  const configFile = join(o.dir, `${o.host.name}_own_files_sshd_config`);
  const pidFile = join(o.dir, `${o.host.name}_own_files.pid`);
  const logFile = join(o.dir, `${o.host.name}_own_files_sshd.log`);
  const config = readFileSync(o.host.configFile, "utf8")
    .replace(/^ListenAddress .*$/m, `ListenAddress ${o.host.address}:${o.port}`)
    .replace(/^PidFile .*$/m, `PidFile ${pidFile}`);
  writeFileSync(configFile, config);
  // unshare: a private mount namespace; the bind mount is only seen inside it. exec keeps the pid ours.
  const child = spawn(
    "unshare",
    ["--mount", "--propagation", "private", "sh", "-c", 'exec 2>>"$4"; mount --bind "$1" "$2" && exec /usr/sbin/sshd -D -f "$3" -E "$4"', "sh", o.backing, o.root, configFile, logFile],
    { stdio: "ignore", detached: true },
  );
  child.unref();
  const stop = () => stopChild(child);
  for (let i = 0; i < 100; i++) {
    let pid = 0;
    try {
      pid = Number(readFileSync(pidFile, "utf8").trim());
    } catch {}
    if (pid === child.pid && (await listening(o.host.address, o.port))) {
      return { address: o.host.address, port: o.port, hostKey: o.host.hostKey, logFile, stop };
    }
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  await stop();
  let log = "";
  try {
    log = readFileSync(logFile, "utf8");
  } catch {}
  throw new Error(`sshd with its own files for ${o.host.name} (${o.host.address}:${o.port}) did not come up:\n${log}`);
}

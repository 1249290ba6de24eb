/**
 * Private sshd instances standing in for the seed's three hosts on this machine: one Debian sshd per
 * "host" address (node1 127.0.0.2, node2 127.0.0.3, client 127.0.0.1 by default), all on one port,
 * each with its own config, host key and pidfile under a directory of ours, letting root in with one
 * generated client key (PermitRootLogin prohibit-password). The system's sshd and /etc/ssh are untouched.
 *
 *   const hosts = await startSshHosts({ port: 24900 });
 *   ... connection { host: hosts.byName.node1.address, port: hosts.port, user: "root", privateKey: hosts.privateKey }
 *   await hosts.stop();
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const SSHD = "/usr/sbin/sshd";

export const SEED_HOSTS: Record<string, string> = { node1: "127.0.0.2", node2: "127.0.0.3", client: "127.0.0.1" };

export interface SshHost {
  name: string;
  address: string;
  /** The sshd listener's pid (from its pidfile). */
  pid: number;
  /** The host's public key, `ssh-ed25519 AAAA...` (a known_hosts entry without the host; @pulumi/command's connection.hostKey). */
  hostKey: string;
  configFile: string;
  /** sshd's log (-E): one "Accepted publickey for root" line per session. */
  logFile: string;
}

export interface SshHosts {
  port: number;
  /** Private key (OpenSSH PEM) that root's login accepts on every host. */
  privateKey: string;
  privateKeyPath: string;
  hosts: SshHost[];
  byName: Record<string, SshHost>;
  /** Runs a command on a host with the system ssh client; resolves with its exit status and output. */
  ssh(name: string, command: string, timeoutMs?: number): { status: number | null; stdout: string; stderr: string };
  /** Stops every sshd (TERM, then KILL) and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

export interface StartSshHostsOptions {
  port: number;
  /** Host name -> loopback address. Defaults to SEED_HOSTS. */
  hosts?: Record<string, string>;
  /** Where configs, keys, pidfiles and logs go (removed by stop()). Defaults to a new temp dir. */
  dir?: string;
}

function keygen(file: string): void {
  const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "gluster-ha-test", "-f", file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ssh-keygen ${file} failed: ${r.stderr}`);
}

function sshdConfig(o: { address: string; port: number; hostKey: string; authorizedKeys: string; pidFile: string }): string {
  return [
    `ListenAddress ${o.address}:${o.port}`,
    `HostKey ${o.hostKey}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    `PidFile ${o.pidFile}`,
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    // The keys live in a temp dir whose parents we do not control.
    "StrictModes no",
    "PrintMotd no",
    // The component's steps are many short sessions, some in parallel (one per host).
    "MaxStartups 100",
    "MaxSessions 100",
    "Subsystem sftp internal-sftp",
    "",
  ].join("\n");
}

/** Resolves once something on address:port sends an SSH banner. */
async function sshBanner(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    let data = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on("data", (d) => {
      data += d.toString("latin1");
      if (data.includes("\n")) done(data.startsWith("SSH-2.0-"));
    });
    socket.on("error", () => done(false));
  });
}

function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function stopPid(pid: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  if (alive(pid)) process.kill(pid, "SIGKILL");
}

/**
 * Starts one sshd per host and waits until each answers with its banner. On failure, whatever
 * started is stopped before the error propagates.
 */
export async function startSshHosts(o: StartSshHostsOptions): Promise<SshHosts> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "gha-sshd-"));
  mkdirSync(dir, { recursive: true });
  mkdirSync("/run/sshd", { recursive: true }); // sshd's privilege separation directory
  const privateKeyPath = join(dir, "client_key");
  keygen(privateKeyPath);
  const authorizedKeys = join(dir, "authorized_keys");
  writeFileSync(authorizedKeys, readFileSync(`${privateKeyPath}.pub`), { mode: 0o600 });

  const hosts: SshHost[] = [];
  const pids: number[] = [];
  const stop = async (): Promise<void> => {
    for (const pid of pids.splice(0)) await stopPid(pid);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const [name, address] of Object.entries(o.hosts ?? SEED_HOSTS)) {
      const hostKey = join(dir, `${name}_host_key`);
      keygen(hostKey);
      const pidFile = join(dir, `${name}.pid`);
      const configFile = join(dir, `${name}_sshd_config`);
      writeFileSync(configFile, sshdConfig({ address, port: o.port, hostKey, authorizedKeys, pidFile }));
      const check = spawnSync(SSHD, ["-t", "-f", configFile], { encoding: "utf8" });
      if (check.status !== 0) throw new Error(`sshd -t -f ${configFile}: ${check.stderr}`);
      // -D: no fork, so the pid we spawn is the listener; -E: its log in a file of ours.
      const log = join(dir, `${name}_sshd.log`);
      const child = spawn(SSHD, ["-D", "-f", configFile, "-E", log], { stdio: "ignore", detached: true });
      child.unref();
      if (child.pid === undefined) throw new Error(`cannot spawn ${SSHD}`);
      pids.push(child.pid);
      // Ours is up once it wrote its pidfile (after binding) and answers: a banner alone could come
      // from a stale sshd still holding the port.
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) {
        if (child.exitCode !== null) break;
        ready = readPid(pidFile) === child.pid && (await sshBanner(address, o.port));
        if (!ready) await sleep(100);
      }
      if (!ready) {
        let text = "";
        try {
          text = readFileSync(log, "utf8");
        } catch {}
        throw new Error(`sshd for ${name} (${address}:${o.port}) did not come up:\n${text}`);
      }
      hosts.push({ name, address, pid: child.pid, hostKey: readFileSync(`${hostKey}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" "), configFile, logFile: log });
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, hosts.map((h) => `[${h.address}]:${o.port} ${h.hostKey}\n`).join(""));
  const byName = Object.fromEntries(hosts.map((h) => [h.name, h]));
  return {
    port: o.port,
    privateKey: readFileSync(privateKeyPath, "utf8"),
    privateKeyPath,
    hosts,
    byName,
    ssh(name, command, timeoutMs = 60_000) {
      const host = byName[name];
      if (!host) throw new Error(`no ssh host ${name}`);
      const r = spawnSync(
        "ssh",
        ["-p", String(o.port), "-i", privateKeyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
          "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
          `root@${host.address}`, command],
        { encoding: "utf8", timeout: timeoutMs },
      );
      return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
    },
    stop,
  };
}

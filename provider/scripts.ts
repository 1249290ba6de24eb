// The shell scripts the component runs on each host, one per step, as pure functions of the plan.
// Each is idempotent: re-running it after a failure half-way converges to the same state.
import { createHash } from "node:crypto";
import { ConfigError } from "../runtime/core/errors";
import { renderSystemdUnit } from "./planners/systemd";
import nodeFlags from "../runtime/cli/node-flags.json";

/** Single-quotes a value for sh. */
export function sh(value: string | number): string {
  const s = String(value);
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Writes `content` to `path` atomically (temp file + rename), through a quoted heredoc. */
export function writeFile(path: string, content: string, mode = "0644"): string {
  const marker = "GLUSTER_HA_FILE_EOF";
  if (content.split("\n").includes(marker)) throw new ConfigError(`${path}: content may not contain a line "${marker}"`);
  return [
    `mkdir -p "$(dirname ${sh(path)})"`,
    `cat > ${sh(`${path}.tmp`)} <<'${marker}'`,
    content.endsWith("\n") ? content.slice(0, -1) : content,
    marker,
    `chmod ${mode} ${sh(`${path}.tmp`)}`,
    `mv -f ${sh(`${path}.tmp`)} ${sh(path)}`,
  ].join("\n");
}

/** Installs a volfile only once the runtime's own checker accepts it (a bad one never replaces a good one). */
export function installVolfileScript(path: string, content: string, cli: string): string {
  return `${writeFile(`${path}.next`, content)}
node ${sh(cli)} --volfile-check -f ${sh(`${path}.next`)}
mv -f ${sh(`${path}.next`)} ${sh(path)}`;
}

/** Wraps a script so any POSIX login shell (local /bin/sh, a remote user's shell) runs it with bash. */
export function asBash(script: string): string {
  const marker = "GLUSTER_HA_SCRIPT_EOF";
  return `bash -s <<'${marker}'\nset -euo pipefail\n${script}\n${marker}\n`;
}

export interface HostPaths {
  prefix: string;
  /** The runtime release in use: <prefix>/current -> releases/<hash>. */
  bin: string;
  etc: string;
  run: string;
  log: string;
}

export function hostPaths(prefix: string): HostPaths {
  return { prefix, bin: `${prefix}/current/bin`, etc: `${prefix}/etc`, run: `${prefix}/run`, log: `${prefix}/log` };
}

/** Step 1: Node.js >= 20, FUSE (device, module, libfuse2 from the host's package manager), directories. */
export function prepareScript(p: HostPaths, extraDirs: string[]): string {
  return `
command -v node >/dev/null || { echo "gluster-ha needs Node.js >= 20 on this host: node not found" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "gluster-ha needs Node.js >= 20 on this host, found $(node --version)" >&2; exit 1; }
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || { echo "/dev/fuse is missing and the fuse module could not be loaded" >&2; exit 1; }
if ! { ldconfig -p 2>/dev/null || true; } | grep -q 'libfuse\\.so\\.2'; then
  if command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y libfuse2 || DEBIAN_FRONTEND=noninteractive apt-get install -y libfuse2t64
  elif command -v dnf >/dev/null; then dnf install -y fuse-libs
  elif command -v yum >/dev/null; then yum install -y fuse-libs
  else echo "libfuse.so.2 is missing and no apt-get/dnf/yum to install it" >&2; exit 1; fi
fi
mkdir -p ${[p.prefix, `${p.prefix}/releases`, p.etc, p.run, p.log, ...extraDirs].map(sh).join(" ")}
echo "prepared: node $(node --version), fuse ok"`.trim();
}

export function unprepareScript(p: HostPaths): string {
  return `rm -rf ${[p.etc, p.run, p.log].map(sh).join(" ")}
rmdir ${sh(`${p.prefix}/releases`)} ${sh(p.prefix)} 2>/dev/null || true`;
}

/** Step 2: unpack the runtime release and point <prefix>/current at it; older releases go. */
export function installRuntimeScript(p: HostPaths, hash: string, archivePath: string, removeArchive: boolean): string {
  const release = `${p.prefix}/releases/${hash}`;
  return `
if [ ! -f ${sh(`${release}/.complete`)} ]; then
  echo "unpacking runtime ${hash} ($(du -h ${sh(archivePath)} | cut -f1))"
  rm -rf ${sh(release)} && mkdir -p ${sh(release)}
  tar -xzf ${sh(archivePath)} -C ${sh(release)}
  touch ${sh(`${release}/.complete`)}
fi
ln -sfn ${sh(`releases/${hash}`)} ${sh(`${p.prefix}/current.tmp`)} && mv -Tf ${sh(`${p.prefix}/current.tmp`)} ${sh(`${p.prefix}/current`)}
for old in ${sh(`${p.prefix}/releases`)}/*; do [ "$old" = ${sh(release)} ] || rm -rf "$old"; done
${removeArchive ? `rm -f ${sh(archivePath)}` : ""}
echo "runtime ${hash}"`.trim();
}

export function removeRuntimeScript(p: HostPaths, hash: string): string {
  return `
if [ "$(readlink ${sh(`${p.prefix}/current`)} 2>/dev/null)" = ${sh(`releases/${hash}`)} ]; then rm -f ${sh(`${p.prefix}/current`)}; fi
rm -rf ${sh(`${p.prefix}/releases/${hash}`)} ${sh(`${p.prefix}/releases/gluster-ha-${hash}.tar.gz`)}`.trim();
}

export interface ServiceDef {
  /** Service name: gluster-ha-<host>; the systemd unit is <name>.service. */
  name: string;
  manager: "systemd" | "process";
  paths: HostPaths;
  /** argv after `node`. */
  args: string[];
  logFile: string;
  description: string;
  mountPoint?: string;
}

/** The service's command, through env: node with the CLIs' environment and V8 flags (runtime/cli/node-flags.json says why). */
function processArgv(s: ServiceDef): string[] {
  return ["env", ...Object.entries(nodeFlags.env).map(([k, v]) => `${k}=${v}`), "node", ...nodeFlags.flags, ...s.args];
}

/** (Re)starts the service with the current volfile and runtime. */
export function restartServiceScript(s: ServiceDef): string {
  if (s.manager === "process") {
    return `node ${sh(`${s.paths.bin}/gluster-ha.js`)} service restart ${sh(s.name)} --run-dir ${sh(s.paths.run)} --log-file ${sh(s.logFile)} -- ${processArgv(s).map(sh).join(" ")}`;
  }
  const unit = renderSystemdUnit({
    description: s.description,
    execStart: ["/usr/bin/env", ...processArgv(s).slice(1)],
    mountPoint: s.mountPoint,
    wantedBy: s.mountPoint ? "remote-fs.target" : "multi-user.target",
  });
  return `${writeFile(`/etc/systemd/system/${s.name}.service`, unit)}
systemctl daemon-reload
systemctl enable ${sh(`${s.name}.service`)}
systemctl restart ${sh(`${s.name}.service`)}`;
}

/** Stops the service; works even when the runtime is already gone (pidfile + signals). */
export function stopServiceScript(s: ServiceDef): string {
  const unstamp = `rm -f ${sh(servingStampPath(s))}`;
  if (s.manager === "systemd") {
    return `systemctl disable --now ${sh(`${s.name}.service`)} 2>/dev/null || true
rm -f ${sh(`/etc/systemd/system/${s.name}.service`)}
systemctl daemon-reload || true
${unstamp}`;
  }
  const pidfile = `${s.paths.run}/${s.name}.pid`;
  return `if [ -f ${sh(`${s.paths.bin}/gluster-ha.js`)} ]; then
  node ${sh(`${s.paths.bin}/gluster-ha.js`)} service stop ${sh(s.name)} --run-dir ${sh(s.paths.run)}
elif [ -f ${sh(pidfile)} ]; then
  kill "$(cat ${sh(pidfile)})" 2>/dev/null || true; sleep 2; rm -f ${sh(pidfile)}
fi
${unstamp}`;
}

/** What a service was last (re)started with by {@link ensureServingScript}: release and volfile digest. */
export function servingStampPath(s: ServiceDef): string {
  return `${s.paths.run}/${s.name}.serving`;
}

/** sha256 (16 hex digits) of a file as {@link writeFile} writes `content` (always one final newline). */
export function fileDigest(content: string): string {
  return createHash("sha256").update(content.endsWith("\n") ? content : `${content}\n`).digest("hex").slice(0, 16);
}

/** The stamp of a server started from runtime `release` with a volfile of `content`. */
export function servingStamp(release: string, content: string): string {
  return `release=${release} volfile=${fileDigest(content)}`;
}

export interface EnsureServing {
  /** {@link servingStamp} of the release and volfile the service must run. */
  stamp: string;
  /** A command that exits 0 while the service answers. */
  probe: string;
  /** Installs the volfile, (re)starts the service and waits for it. */
  start: string;
  /**
   * With no stamp at all (a service started before stamps existed): serving counts when this volfile
   * on the host has `content`. Only for steps that never need a restart for a new runtime release.
   */
  legacyVolfile?: { path: string; content: string };
}

/**
 * Starts the service unless it already serves exactly `stamp` and answers. Every step that needs the
 * server running this volfile and release runs this: the first one to get there starts it, later ones
 * find it serving — one start per change. The stamp is written once the start succeeded and removed when
 * the service stops, so a stale stamp can only cost an extra restart, never skip a needed one.
 */
export function ensureServingScript(s: ServiceDef, e: EnsureServing): string {
  const file = servingStampPath(s);
  let serving = `[ "$(cat ${sh(file)} 2>/dev/null || true)" = ${sh(e.stamp)} ]`;
  if (e.legacyVolfile) {
    // 2>/dev/null before the <: a missing volfile (first deploy) must not print a bash error.
    const digest = `"$(sha256sum 2>/dev/null < ${sh(e.legacyVolfile.path)} | cut -c1-16)"`;
    serving = `{ ${serving} || { [ ! -e ${sh(file)} ] && [ ${digest} = ${fileDigest(e.legacyVolfile.content)} ]; }; }`;
  }
  return `if ${serving} && ${e.probe} >/dev/null 2>&1; then
  echo ${sh(`${s.name} already serving ${e.stamp}`)}
else
rm -f ${sh(file)}
${e.start}
mkdir -p ${sh(s.paths.run)}
printf '%s\\n' ${sh(e.stamp)} > ${sh(`${file}.tmp`)} && mv -f ${sh(`${file}.tmp`)} ${sh(file)}
echo ${sh(`${s.name} started ${e.stamp}`)}
fi`;
}

/**
 * Waits until the server answers a protocol handshake for its exported volume (polls, not a sleep).
 * When it does not, the end of `logFile` goes with the error: why the server is not up (e.g. "cannot
 * listen on ...: EADDRINUSE") is there, not in the probe's last error.
 */
export function waitForServerScript(p: HostPaths, host: string, port: number, volume = "gfs", seconds = 30, logFile?: string): string {
  // A line before each wait: Pulumi shows a step's output, so a slow step says what it waits for.
  const probe = `node ${sh(`${p.bin}/gluster-ha.js`)} probe ${sh(`${host}:${port}`)} ${sh(volume)} --timeout ${seconds}`;
  const why = logFile === undefined ? "" : ` || { echo "${host}:${port} does not serve ${volume}; the end of ${logFile}:" >&2; tail -n 6 ${sh(logFile)} >&2 || true; exit 1; }`;
  return `echo "waiting up to ${seconds} s for ${host}:${port} to serve ${volume}"
${probe}${why}`;
}

/**
 * Waits until each server's replicate volume has every child up: a server that just (re)started is
 * reached by its peer only after the peer's reconnect backoff, and writes before that go to one brick
 * (healed later) instead of both.
 */
export function waitForReplicationScript(p: HostPaths, hosts: string[], port: number, volume = "gfs", seconds = 30): string {
  return hosts.map((h) => `node ${sh(`${p.bin}/gluster-ha.js`)} probe ${sh(`${h}:${port}`)} ${sh(volume)} --replicated --timeout ${seconds}`).join("\n");
}

/**
 * Waits until nothing is left to heal between the two bricks (after a restart the returning node
 * catches up before the next one goes down).
 */
export function waitForHealScript(p: HostPaths, volfile: string, address: string, seconds = 300): string {
  return `echo "waiting up to ${seconds} s until ${address} has nothing left to heal"
node ${sh(`${p.bin}/gluster-ha.js`)} heal info -f ${sh(volfile)} --host ${sh(address)} --wait-empty --timeout ${seconds}`;
}

/** Mounted (per /proc/mounts)? Polls up to a deadline. */
export function waitForMountScript(mountPoint: string, seconds = 30): string {
  return `echo "waiting up to ${seconds} s for the mount at ${mountPoint}"
for i in $(seq 1 ${seconds * 10}); do
  if awk -v m=${sh(mountPoint)} '$2 == m && $3 ~ /^fuse/ { found = 1 } END { exit !found }' /proc/mounts; then break; fi
  [ "$i" -lt ${seconds * 10} ] || { echo "${mountPoint} not mounted after ${seconds} s" >&2; exit 1; }
  sleep 0.1
done`;
}

/** Write and read back a marker file through the mount. */
export function markerCheckScript(mountPoint: string, clientName: string): string {
  const marker = `${mountPoint}/.gluster-ha-check-${clientName}`;
  return `token="gluster-ha $(date +%s%N) $$"
for i in $(seq 1 50); do
  if printf '%s\\n' "$token" > ${sh(marker)} 2>/dev/null && [ "$(cat ${sh(marker)})" = "$token" ]; then ok=1; break; fi
  sleep 0.2
done
[ "\${ok:-}" = 1 ] || { echo "write+read of ${marker} through the mount failed" >&2; exit 1; }
rm -f ${sh(marker)}
echo "mount verified: ${mountPoint}"`;
}

export function unmountScript(mountPoint: string): string {
  return `if awk -v m=${sh(mountPoint)} '$2 == m { found = 1 } END { exit !found }' /proc/mounts; then
  fusermount -uz ${sh(mountPoint)} 2>/dev/null || umount -l ${sh(mountPoint)}
fi
rmdir ${sh(mountPoint)} 2>/dev/null || true`;
}

/**
 * Which node incarnation owns a service on its host. A replaced node's old delete step stops the
 * service only while the stamp still names it: with the same host and prefix, the new node owns it.
 */
export function identityStampPath(s: ServiceDef): string {
  return s.manager === "systemd" ? `/etc/gluster-ha/${s.name}.identity` : `${s.paths.run}/${s.name}.identity`;
}

export function writeIdentityScript(s: ServiceDef, identity: string): string {
  const stamp = identityStampPath(s);
  return `mkdir -p "$(dirname ${sh(stamp)})"
printf '%s\\n' ${sh(identity)} > ${sh(`${stamp}.tmp`)} && mv -f ${sh(`${stamp}.tmp`)} ${sh(stamp)}`;
}

/** Runs `body` (and drops the stamp) only while this host's service still belongs to `identity`. */
export function ifIdentityScript(s: ServiceDef, identity: string, body: string): string {
  const stamp = identityStampPath(s);
  return `if [ "$(cat ${sh(stamp)} 2>/dev/null || true)" = ${sh(identity)} ] || [ ! -e ${sh(stamp)} ]; then
${body}
rm -f ${sh(stamp)}
else
  echo "${s.name}: now run by $(cat ${sh(stamp)}), not ${identity}; left running"
fi`;
}

/**
 * A (new) peer joins: a FULL heal from the survivor's brick to the peer's, then waits until nothing is
 * pending. `volfile` is the survivor's server volfile naming the new peer; the checkpoint (one per
 * joining incarnation) lets a re-run after a failure resume instead of starting over.
 */
export function fullHealScript(p: HostPaths, volfile: string, address: string, checkpoint: string, seconds = 3600): string {
  const cli = sh(`${p.bin}/gluster-ha.js`);
  return `node ${cli} heal full -f ${sh(volfile)} --host ${sh(address)} --checkpoint ${sh(checkpoint)}
node ${cli} heal info -f ${sh(volfile)} --host ${sh(address)} --wait-empty --timeout ${seconds}
rm -f ${sh(checkpoint)}`;
}

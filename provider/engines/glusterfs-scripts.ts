// The glusterfs engine's shell steps, pure functions of the plan (provider/engines/glusterfs.ts).
// Each is idempotent: re-running it after a failure half-way converges to the same state. They run
// under scripts.asBash (bash, set -euo pipefail), locally or over SSH, as root.
import { markerCheckScript, sh, type HostPaths } from "../scripts";
import type { GlusterfsMountPlan, GlusterfsPlan } from "./glusterfs";

/**
 * Every step calls the CLI non-interactively (volume stop/delete would otherwise ask y/n), and retries
 * while another transaction holds glusterd's cluster-wide lock (other volumes' operations, a peer's).
 */
const GL = `gl() {
  local out rc i
  for i in $(seq 1 60); do
    rc=0; out=$(gluster --mode=script "$@" 2>&1) || rc=$?
    case "$out" in *"Another transaction is in progress"*|*"ocking failed"*) sleep 1 ;; *) break ;; esac
  done
  if [ "$rc" = 0 ]; then printf '%s\\n' "$out"; else printf '%s\\n' "$out" >&2; fi
  return "$rc"
}
# The volumes glusterd serves, one per line; fails when glusterd does not answer.
volumes_left() { local out; out=$(gl volume list 2>/dev/null) || return 1; printf '%s\\n' "$out" | grep -v '^No volumes present' || true; }`;

const ENGINE = "glusterfs";

export function engineMarkerPath(p: HostPaths): string {
  return `${p.prefix}/engine`;
}

/**
 * Refuses a host the bundled engine set up (its runtime release link or a different marker): the bricks
 * hold that engine's data and would have to be migrated. Then records this engine on the host.
 */
export function engineMarkerScript(p: HostPaths, hostName: string): string {
  const marker = engineMarkerPath(p);
  return `if [ -e ${sh(`${p.prefix}/current`)} ] || [ -L ${sh(`${p.prefix}/current`)} ] || { [ -f ${sh(marker)} ] && [ "$(cat ${sh(marker)})" != ${ENGINE} ]; }; then
  echo "engine: host ${hostName} is set up by the bundled gluster-ha engine (${p.prefix}); switching engines is refused because the data would have to be migrated — copy it to a new cluster instead (docs/engines.md)" >&2
  exit 1
fi
mkdir -p ${[p.prefix, p.run, p.log].map(sh).join(" ")}
printf '%s\\n' ${ENGINE} > ${sh(marker)}`;
}

export function removeEngineMarkerScript(p: HostPaths): string {
  return `rm -f ${sh(engineMarkerPath(p))}
rmdir ${sh(p.run)} ${sh(p.log)} ${sh(p.prefix)} 2>/dev/null || true`;
}

/** The distribution's GlusterFS packages: the server (nodes) or the FUSE client (the client host). */
export function installPackagesScript(role: "server" | "client"): string {
  const present =
    role === "server"
      ? "command -v glusterd >/dev/null && command -v gluster >/dev/null"
      : "{ command -v mount.glusterfs >/dev/null || [ -x /sbin/mount.glusterfs ] || [ -x /usr/sbin/mount.glusterfs ]; }";
  const debian = role === "server" ? "glusterfs-server glusterfs-client" : "glusterfs-client";
  const rhel = role === "server" ? "glusterfs-server glusterfs-fuse" : "glusterfs-fuse";
  // RHEL-family hosts get GlusterFS from the CentOS Storage SIG when the base repos lack it.
  return `if ${present}; then
  :
elif command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y ${debian} || { apt-get update && apt-get install -y ${debian}; }
elif command -v dnf >/dev/null; then
  dnf install -y ${rhel} || { dnf install -y centos-release-gluster && dnf install -y ${rhel}; }
elif command -v yum >/dev/null; then
  yum install -y ${rhel} || { yum install -y centos-release-gluster && yum install -y ${rhel}; }
else
  echo "GlusterFS ${role} packages are missing and there is no apt-get, dnf or yum to install them" >&2; exit 1
fi
${present} || { echo "GlusterFS ${role} still missing after the package install" >&2; exit 1; }`;
}

export function glusterdPidfile(p: HostPaths): string {
  return `${p.run}/glusterd.pid`;
}

/** Marks that this engine (not the host's admin) enabled glusterd, so destroy stops only what it started. */
function ownedMarker(p: HostPaths): string {
  return `${p.run}/glusterd.started-by-gluster-ha`;
}

/**
 * Starts glusterd (one per host, shared by every brick on it) and waits until it answers the CLI.
 * systemd: `systemctl enable --now glusterd`; process: `glusterd` run directly with a pidfile, or the
 * glusterd already running on the host.
 */
export function startGlusterdScript(manager: "systemd" | "process", p: HostPaths, seconds = 30): string {
  const start =
    manager === "systemd"
      ? `if ! systemctl is-active --quiet glusterd; then touch ${sh(ownedMarker(p))}; fi
systemctl enable --now glusterd`
      : `pidfile=${sh(glusterdPidfile(p))}
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  :
elif pgrep -x glusterd >/dev/null; then
  rm -f "$pidfile"
  echo "using the glusterd already running on this host (pid $(pgrep -x glusterd | awk 'NR == 1'))"
else
  mkdir -p /var/log/glusterfs
  glusterd -p "$pidfile" --log-file=${sh(`${p.log}/glusterd.log`)}
fi`;
  return `${GL}
${start}
for i in $(seq 1 ${seconds * 5}); do
  if gl volume list >/dev/null 2>&1; then break; fi
  [ "$i" -lt ${seconds * 5} ] || { echo "glusterd did not answer within ${seconds} s (see ${p.log}/glusterd.log, /var/log/glusterfs/glusterd.log)" >&2; exit 1; }
  sleep 0.2
done`;
}

/** Stops glusterd when this engine started it and no volume is left on it (others may share the host's glusterd). */
export function stopGlusterdScript(manager: "systemd" | "process", p: HostPaths): string {
  // Only an answer saying "no volumes" lets it stop: a busy or silent glusterd is left running.
  const idle = `{ ! command -v gluster >/dev/null || { left=$(volumes_left) && [ -z "$left" ]; }; }`;
  const keep = `echo "glusterd left running: it still serves \${left:-volumes it did not list}"`;
  if (manager === "systemd") {
    return `${GL}
if [ -f ${sh(ownedMarker(p))} ]; then
  if ${idle}; then systemctl disable --now glusterd || true; else ${keep}; fi
fi
rm -f ${sh(ownedMarker(p))}`;
  }
  return `${GL}
pidfile=${sh(glusterdPidfile(p))}
if [ -s "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$pidfile"
  elif ${idle}; then
    kill "$pid"
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    rm -f "$pidfile"
  else
    ${keep}
  fi
fi`;
}

/** Node 1 probes the others into its trusted pool and waits until each is connected. */
export function peerProbeScript(peers: string[], seconds = 60): string {
  if (peers.length === 0) return "echo 'trusted pool: this host only'";
  return `${GL}
for peer in ${peers.map(sh).join(" ")}; do
  out=$(gl peer probe "$peer" 2>&1) || { echo "gluster peer probe $peer failed: $out" >&2; exit 1; }
  case "$out" in *"localhost not needed"*) echo "peer $peer: this host"; continue ;; esac
  for i in $(seq 1 ${seconds * 5}); do
    if gl pool list | awk -v p="$peer" '$2 == p && $3 == "Connected" { f = 1 } END { exit !f }'; then break; fi
    [ "$i" -lt ${seconds * 5} ] || { echo "peer $peer did not join the trusted pool within ${seconds} s" >&2; gl pool list >&2 || true; exit 1; }
    sleep 0.2
  done
  echo "peer $peer: in the pool"
done`;
}

/** Detaches the peers again (after the volume is gone); one that still serves other volumes stays. */
export function peerDetachScript(peers: string[]): string {
  if (peers.length === 0) return ":";
  return `${GL}
for peer in ${peers.map(sh).join(" ")}; do
  if gl pool list 2>/dev/null | awk -v p="$peer" '$2 == p { f = 1 } END { exit !f }'; then
    gl peer detach "$peer" || echo "peer $peer stays in the pool (it may serve other volumes)"
  fi
done`;
}

/** argv after `gluster --mode=script`, quoted: `gl volume create ...`. */
function gl(argv: string[]): string {
  return `gl ${argv.map(sh).join(" ")}`;
}

/**
 * Creates the volume when missing (force: re-uses retained bricks, whose data stays visible), checks
 * an existing one has the planned bricks, starts it, sets the options, waits until every brick is online.
 */
export function volumeUpScript(plan: GlusterfsPlan, seconds = 60): string {
  const v = sh(plan.volumeName);
  const expected = plan.bricks.join(" ");
  const l = plan.layout;
  const shape = `replica ${l.replica}${l.arbiter ? " arbiter 1" : ""}${l.sets > 1 ? ` x ${l.sets} sets` : ""}`;
  return `${GL}
if ! gl volume info ${v} >/dev/null 2>&1; then
  ${gl(plan.create)}
fi
have=$(gl volume info ${v} | sed -n 's/^Brick[0-9][0-9]*: \\([^ ]*\\).*/\\1/p' | xargs)
if [ "$have" != ${sh(expected)} ]; then
  echo "volume ${plan.volumeName} has the bricks '$have' but the plan has '${expected}': changing the bricks of a live volume is not automated (gluster volume add-brick / replace-brick, then pulumi up)" >&2
  exit 1
fi
# Captured, not piped into grep -q: with pipefail an early-closing grep would fail the pipeline.
info=$(gl volume info ${v})
if ! grep -q '^Status: Started' <<<"$info"; then
  ${gl(plan.start)}
fi
${plan.options.map(([k, val]) => gl(["volume", "set", plan.volumeName, k, val])).join(" >/dev/null\n")} >/dev/null
for i in $(seq 1 ${seconds * 5}); do
  online=$(gl volume status ${v} detail 2>/dev/null | grep -c '^Online.*: Y' || true)
  [ "$online" -ge ${plan.bricks.length} ] && break
  [ "$i" -lt ${seconds * 5} ] || { echo "volume ${plan.volumeName}: $online of ${plan.bricks.length} bricks online after ${seconds} s" >&2; gl volume status ${v} >&2 || true; exit 1; }
  sleep 0.2
done
echo "volume ${plan.volumeName} started: ${shape}, bricks ${expected}"`;
}

/** Stops and deletes the volume; the bricks (and their data) stay. */
export function volumeDownScript(plan: GlusterfsPlan): string {
  const v = sh(plan.volumeName);
  return `${GL}
if command -v gluster >/dev/null && gl volume info ${v} >/dev/null 2>&1; then
  info=$(gl volume info ${v})
  if grep -q '^Status: Started' <<<"$info"; then ${gl(plan.stop)}; fi
  ${gl(plan.delete)}
fi`;
}

/**
 * retainData: false — the brick's content including .glusterfs and GlusterFS's xattrs on the brick
 * root (a brick that is a mount point keeps its directory, so the xattrs must go explicitly).
 */
export function wipeBrickScript(brickDir: string): string {
  const b = sh(brickDir);
  return `if [ -d ${b} ]; then
  find ${b} -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  if command -v getfattr >/dev/null && command -v setfattr >/dev/null; then
    getfattr --absolute-names -d -m '^trusted\\.' ${b} 2>/dev/null | sed -n 's/^\\(trusted\\.[^=]*\\)=.*/\\1/p' | while read -r x; do setfattr -x "$x" ${b}; done
  fi
  rmdir ${b} 2>/dev/null || true
fi`;
}

/** Mounts the volume (remounting a stale or differently-sourced mount), then writes and reads a marker. */
export function mountScript(m: GlusterfsMountPlan, clientName: string, seconds = 30): string {
  const mp = sh(m.mountPoint);
  return `mkdir -p ${mp}
current=$(awk -v m=${mp} '$2 == m { print $1 " " $3 }' /proc/mounts | tail -1)
case "$current" in
  "") ;;
  ${sh(`${m.source} fuse.glusterfs`)})
    # Transport endpoint not connected: a mount left from a crash.
    if ! stat -t ${mp} >/dev/null 2>&1; then umount -l ${mp}; current=""; fi ;;
  *" fuse.glusterfs") umount ${mp} 2>/dev/null || umount -l ${mp}; current="" ;;
  *) echo "${m.mountPoint} is already mounted ($current); refusing to mount over it" >&2; exit 1 ;;
esac
if [ -z "$current" ]; then
  ${m.argv.map(sh).join(" ")}
fi
for i in $(seq 1 ${seconds * 10}); do
  if awk -v m=${mp} '$2 == m && $3 == "fuse.glusterfs" { f = 1 } END { exit !f }' /proc/mounts && stat -t ${mp} >/dev/null 2>&1; then break; fi
  [ "$i" -lt ${seconds * 10} ] || { echo "${m.mountPoint} not mounted after ${seconds} s" >&2; exit 1; }
  sleep 0.1
done
${markerCheckScript(m.mountPoint, clientName)}`;
}

export function unmountScript(mountPoint: string): string {
  const mp = sh(mountPoint);
  return `if awk -v m=${mp} '$2 == m { f = 1 } END { exit !f }' /proc/mounts; then
  umount ${mp} 2>/dev/null || umount -l ${mp}
fi
rmdir ${mp} 2>/dev/null || true`;
}

/** The steps of one storage node: marker, packages, brick directory, glusterd. */
export function nodeUpScript(manager: "systemd" | "process", p: HostPaths, nodeName: string, address: string, brickDir: string): string {
  return [
    engineMarkerScript(p, nodeName),
    installPackagesScript("server"),
    `mkdir -p ${sh(brickDir)}`,
    startGlusterdScript(manager, p),
    `echo "${nodeName} glusterd up $(glusterd --version 2>/dev/null | awk 'NR == 1 { print $2 }') brick ${address}:${brickDir}"`,
  ].join("\n");
}

export function nodeDownScript(manager: "systemd" | "process", p: HostPaths, brickDir: string, retainData: boolean): string {
  return [stopGlusterdScript(manager, p), ...(retainData ? [] : [wipeBrickScript(brickDir)]), removeEngineMarkerScript(p)].join("\n");
}

const fstabEscape = (v: string): string => v.replace(/\\/g, "\\134").replace(/ /g, "\\040").replace(/\t/g, "\\011");

/** The /etc/fstab line for the mount (blanks escaped as \040); `_netdev` waits for the network at boot. */
export function fstabLine(m: GlusterfsMountPlan): string {
  const options = ["defaults", "_netdev", ...(m.backupServers.length ? [`backup-volfile-servers=${m.backupServers.join(":")}`] : [])].join(",");
  return `${fstabEscape(m.source)} ${fstabEscape(m.mountPoint)} glusterfs ${options} 0 0`;
}

/** Drops the glusterfs line of this mount point; rewrites in place (not sed -i: /etc/fstab may be a bind mount). */
function fstabRemoveScript(mountPoint: string, fstab: string): string {
  const f = sh(fstab);
  // Through the environment: awk -v would turn the \040 escapes back into blanks.
  const m = `m=${sh(fstabEscape(mountPoint))}`;
  const ours = `${m} awk '$2 == ENVIRON["m"] && $3 == "glusterfs" { f = 1 } END { exit !f }' ${f}`;
  return `if [ -f ${f} ] && ${ours}; then
  ${m} awk '!($2 == ENVIRON["m"] && $3 == "glusterfs")' ${f} > ${f}.gluster-ha
  cat ${f}.gluster-ha > ${f} && rm -f ${f}.gluster-ha
fi`;
}

/**
 * The client: marker (a bundled-engine client is refused), the FUSE client package, the mount. With
 * systemd the mount is also in /etc/fstab, so it returns at boot (as the bundled engine's mount unit does).
 */
export function clientUpScript(m: GlusterfsMountPlan, p: HostPaths, clientName: string, manager: "systemd" | "process" = "process", fstab = "/etc/fstab"): string {
  const persist =
    manager === "systemd"
      ? [fstabRemoveScript(m.mountPoint, fstab), `printf '%s\\n' ${sh(fstabLine(m))} >> ${sh(fstab)}`]
      : [];
  return [engineMarkerScript(p, clientName), installPackagesScript("client"), mountScript(m, clientName), ...persist].join("\n");
}

export function clientDownScript(mountPoint: string, p: HostPaths, fstab = "/etc/fstab"): string {
  return [fstabRemoveScript(mountPoint, fstab), unmountScript(mountPoint), removeEngineMarkerScript(p)].join("\n");
}

#!/usr/bin/env bash
# Sets up (and tears down) Debian's GlusterFS 10 as the benchmark peer of `npm run bench`: glusterd
# run directly (no systemd), a replica-2 volume with two bricks on this machine (127.0.0.9: GlusterFS refuses 127.0.0.1; force),
# mounted with `mount -t glusterfs`.
#
#   scripts/glusterfs-peer.sh up   [--install-glusterfs] [--workdir DIR] [--mount DIR] [--volume NAME] [--host 127.0.0.9]
#   scripts/glusterfs-peer.sh down [--workdir DIR] [--mount DIR] [--volume NAME]
#   scripts/glusterfs-peer.sh pids [--volume NAME]   # glusterd, bricks and the client mount (for RSS sampling)
#
# `up` prints the mountpoint on its last line. `down` is safe to run twice and after a failed `up`.
set -euo pipefail

cmd="${1:-}"; shift || true
install=0
workdir=/var/tmp/gha-glusterfs-peer
mnt=""
volume=gha-bench-peer
# GlusterFS refuses 127.0.0.1/localhost as a brick host, but any other loopback address is this machine.
host=127.0.0.9
while [ $# -gt 0 ]; do
  case "$1" in
    --install-glusterfs) install=1 ;;
    --workdir) workdir="$2"; shift ;;
    --mount) mnt="$2"; shift ;;
    --volume) volume="$2"; shift ;;
    --host) host="$2"; shift ;;
    *) echo "glusterfs-peer.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mnt="${mnt:-$workdir/mnt}"
glusterd_pidfile="$workdir/glusterd.pid"
gluster() { command gluster --mode=script "$@"; }

log() { echo "glusterfs-peer: $*" >&2; }

ensure_installed() {
  if command -v glusterd >/dev/null && command -v mount.glusterfs >/dev/null; then return; fi
  if [ "$install" != 1 ]; then
    log "GlusterFS is not installed; run with --install-glusterfs (apt-get install glusterfs-server glusterfs-client)"
    exit 3
  fi
  log "installing glusterfs-server and glusterfs-client with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq glusterfs-server glusterfs-client >/dev/null
}

glusterd_running() {
  [ -s "$glusterd_pidfile" ] && kill -0 "$(cat "$glusterd_pidfile")" 2>/dev/null
}

start_glusterd() {
  mkdir -p "$workdir" /var/log/glusterfs /var/run/gluster
  if glusterd_running; then return; fi
  if pgrep -x glusterd >/dev/null; then
    log "a glusterd not started by this script is running; using it"
    return
  fi
  # --no-daemon would tie it to our shell; -p records the daemon's pid for `down`.
  glusterd -p "$glusterd_pidfile" --log-file="$workdir/glusterd.log"
  for _ in $(seq 1 50); do
    if gluster volume list >/dev/null 2>&1; then return; fi
    sleep 0.2
  done
  log "glusterd did not answer within 10 s (see $workdir/glusterd.log)"
  exit 4
}

volume_exists() { gluster volume info "$volume" >/dev/null 2>&1; }

up() {
  ensure_installed
  start_glusterd
  if volume_exists; then
    log "removing a leftover volume $volume"
    teardown_volume
  fi
  rm -rf "$workdir/brick1" "$workdir/brick2"
  mkdir -p "$workdir/brick1" "$workdir/brick2" "$mnt"
  gluster volume create "$volume" replica 2 transport tcp \
    "$host:$workdir/brick1" "$host:$workdir/brick2" force >&2
  gluster volume start "$volume" >&2
  for _ in $(seq 1 50); do
    online=$(gluster volume status "$volume" detail 2>/dev/null | grep -c '^Online.*: Y' || true)
    [ "$online" -ge 2 ] && break
    sleep 0.2
  done
  mount -t glusterfs "$host:/$volume" "$mnt"
  for _ in $(seq 1 50); do
    if mountpoint -q "$mnt" && stat "$mnt" >/dev/null 2>&1; then echo "$mnt"; return; fi
    sleep 0.2
  done
  log "mount of $volume on $mnt did not come up"
  exit 5
}

teardown_volume() {
  gluster volume stop "$volume" force >/dev/null 2>&1 || true
  gluster volume delete "$volume" >/dev/null 2>&1 || true
}

# Processes glusterd started for this volume write pidfiles; end them by their pids only.
volume_pids() {
  local f
  for f in /var/lib/glusterd/vols/"$volume"/run/*.pid /var/run/gluster/vols/"$volume"/*.pid; do
    [ -s "$f" ] && cat "$f"
  done 2>/dev/null || true
}

client_pid() {
  # The FUSE client that mount.glusterfs started for our mountpoint.
  pgrep -f -- "--volfile-id=/?$volume .*$mnt\$" 2>/dev/null | head -1 || true
}

down() {
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" 2>/dev/null || umount -l "$mnt" || true; fi
  if command -v gluster >/dev/null && glusterd_running; then
    local pids
    pids=$(volume_pids)
    teardown_volume
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    local shd
    shd=$(cat /var/run/gluster/shd/*.pid 2>/dev/null || true)
    for p in $shd; do kill "$p" 2>/dev/null || true; done
    kill "$(cat "$glusterd_pidfile")" 2>/dev/null || true
    for _ in $(seq 1 25); do glusterd_running || break; sleep 0.2; done
    rm -f "$glusterd_pidfile"
  fi
  rm -rf "$workdir/brick1" "$workdir/brick2"
  rmdir "$mnt" 2>/dev/null || true
}

pids() {
  local g=""
  glusterd_running && g=$(cat "$glusterd_pidfile")
  echo "glusterd $g"
  echo "bricks $(volume_pids | tr '\n' ' ')"
  echo "client $(client_pid)"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  pids) pids ;;
  *) echo "usage: $0 up|down|pids [--install-glusterfs] [--workdir DIR] [--mount DIR] [--volume NAME]" >&2; exit 2 ;;
esac

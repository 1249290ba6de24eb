#!/usr/bin/env bash
# Installs the Debian packages the tests use (real FUSE, Apache, bind9, sshd, iptables, network
# namespaces) and makes /dev/fuse usable. Skips apt entirely when everything is already installed.
# Run as root (or with sudo available): scripts/ci-deps.sh
set -euo pipefail

DEBIAN_PACKAGES=(
  libfuse2 fuse3 attr          # fuse-native's libfuse, fusermount, setfattr/getfattr
  libfuse-dev build-essential pkg-config  # scripts/build-fuse-native.sh (patched fuse-native)
  apache2                      # Apache serving from the FUSE mount
  bind9 bind9-dnsutils         # round-robin DNS (named) and dig/nsupdate
  iptables iproute2            # fault injection, network namespaces
  openssh-server               # the ssh example's deploy target
  curl psmisc procps kmod      # HTTP checks, fuser/killall -0, ps/pkill, modprobe
  glusterfs-server glusterfs-client  # the Cluster component's engine glusterfs, the bench's peer
)

log() { echo "ci-deps: $*" >&2; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" == "ii "* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "all ${#DEBIAN_PACKAGES[@]} Debian packages already installed"
else
  log "installing: ${missing[*]}"
  # Don't let package scripts start apache2/named/sshd as services: the tests start their own.
  added_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${DEBIAN_PACKAGES[@]}"
  [[ -z "$added_policy" ]] || as_root rm -f /usr/sbin/policy-rc.d
fi

# FUSE needs the fuse module's device; in a container it usually exists already.
if [[ ! -c /dev/fuse ]]; then
  as_root modprobe fuse 2>/dev/null || log "modprobe fuse failed (fine if the kernel has FUSE built in)"
fi
if [[ ! -c /dev/fuse ]]; then
  as_root mknod -m 0666 /dev/fuse c 10 229 || true
fi
[[ -c /dev/fuse ]] || { log "error: /dev/fuse is missing and could not be created"; exit 1; }
log "/dev/fuse is present"

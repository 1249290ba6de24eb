#!/usr/bin/env bash
# Builds the fuse_device Node-API addon (runtime/fuse/kernel/fuse_device.c: poll/read/writev on
# /dev/fuse from the main loop, no libfuse) with the node-gyp bundled in npm and Node's own headers
# (--nodedir=/usr: nothing is downloaded).
#
# Output: native/fuse-device/<hash>/fuse_device.node and native/fuse-device/current.json naming it
# (runtime/fuse/kernel/device.ts reads it). <hash> covers the sources, the Node ABI and the machine:
# when nothing changed this exits at once.
#
# Usage: scripts/build-fuse-device.sh [--force]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/runtime/fuse/kernel
SOURCES=(fuse_device.c binding.gyp)
OUT_BASE=$ROOT/native/fuse-device
log() { echo "build-fuse-device: $*" >&2; }
die() { log "error: $*"; exit 1; }

for f in "${SOURCES[@]}"; do [[ -f $SRC/$f ]] || die "$SRC/$f is missing"; done
abi=$(node -p 'process.versions.modules')
hash=$({
  echo "node-abi $abi $(uname -m)"
  for f in "${SOURCES[@]}"; do echo "$f"; cat "$SRC/$f"; done
} | sha256sum | cut -c1-16)
out=$OUT_BASE/$hash

write_manifest() {
  local manifest=$OUT_BASE/current.json tmp
  local json
  json=$(printf '{"hash":"%s","dir":"%s","nodeAbi":"%s"}\n' "$hash" "$hash" "$abi")
  [[ -f $manifest && "$(cat "$manifest")" == "$json" ]] && return 0
  tmp=$manifest.$$.tmp
  echo "$json" > "$tmp"
  mv -f "$tmp" "$manifest"
}

if [[ ${1:-} != --force && -f $out/fuse_device.node ]]; then
  write_manifest
  log "up to date: $out"
  exit 0
fi

for tool in cc make python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/ci-deps.sh installs build-essential)"
done
NODE_GYP=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
[[ -f $NODE_GYP ]] || NODE_GYP=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
[[ -f $NODE_GYP ]] || die "npm's bundled node-gyp not found"
NODEDIR=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[[ -f $NODEDIR/include/node/node_api.h ]] || die "Node headers not found in $NODEDIR/include/node"
[[ -f $NODEDIR/include/node/uv.h ]] || die "libuv headers (uv.h) not found in $NODEDIR/include/node"

work=$ROOT/.cache/fuse-device-build/$hash.$$
trap 'rm -rf "$work" "$out.$$.tmp"' EXIT
mkdir -p "$work"
for f in "${SOURCES[@]}"; do cp "$SRC/$f" "$work/"; done

log "building fuse_device (node ABI $abi) in $work"
started=$(date +%s.%N)
(cd "$work" && node "$NODE_GYP" rebuild --nodedir="$NODEDIR" --jobs=max --loglevel=warn) >&2 \
  || die "node-gyp failed"

staging=$out.$$.tmp
mkdir -p "$staging"
cp "$work/build/Release/fuse_device.node" "$staging/fuse_device.node"
# Load it before publishing: the addon links and exports the three functions.
node -e '
  const d = require(process.argv[1]);
  for (const k of ["watch", "read", "writev"]) if (typeof d[k] !== "function") throw new Error(`fuse_device.${k} missing`);
' "$staging/fuse_device.node" || die "the built addon does not load"
if [[ -d $out && ${1:-} == --force ]]; then
  mv -T "$out" "$out.$$.old" && mv -T "$staging" "$out" && rm -rf "$out.$$.old"
elif [[ -d $out ]]; then
  rm -rf "$staging" # built meanwhile by another run (same inputs, same result)
else
  mv -T "$staging" "$out"
fi
write_manifest
log "built $out/fuse_device.node in $(echo "$(date +%s.%N) - $started" | bc 2>/dev/null || echo "?") s"

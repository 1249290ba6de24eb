#!/usr/bin/env bash
# Builds fuse-native (node_modules/fuse-native) with our fixes, patches/fuse-native/*.patch, against the
# system's libfuse 2 (Debian libfuse-dev), with the node-gyp bundled in npm and Node's own headers
# (--nodedir=/usr: nothing is downloaded).
#
# Output: native/fuse-native/<hash>/ — a loadable copy of the patched package (package.json, index.js,
# build/Release/fuse.node, found by fuse-native's own node-gyp-build loader), and
# native/fuse-native/current.json naming it (runtime/fuse/native.ts reads it). <hash> covers the
# patches, fuse-native's version, the Node ABI and the machine: when nothing changed this exits at once.
#
# Usage: scripts/build-fuse-native.sh [--force]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/node_modules/fuse-native
PATCHES=("$ROOT"/patches/fuse-native/*.patch)
OUT_BASE=$ROOT/native/fuse-native
log() { echo "build-fuse-native: $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -f $SRC/package.json ]] || die "$SRC is missing (run npm install)"
[[ -f ${PATCHES[0]} ]] || die "no patches in $ROOT/patches/fuse-native"
read -r version abi < <(node -p 'require(process.argv[1]).version + " " + process.versions.modules' "$SRC/package.json")
hash=$({
  echo "fuse-native $version"
  echo "node-abi $abi $(uname -m)"
  for p in "${PATCHES[@]}"; do echo "$(basename "$p")"; cat "$p"; done
} | sha256sum | cut -c1-16)
out=$OUT_BASE/$hash

write_manifest() {
  local manifest=$OUT_BASE/current.json tmp
  local json
  json=$(printf '{"hash":"%s","dir":"%s","fuseNative":"%s","nodeAbi":"%s","patches":[%s]}\n' \
    "$hash" "$hash" "$version" "$abi" \
    "$(for p in "${PATCHES[@]}"; do printf '"%s",' "$(basename "$p")"; done | sed 's/,$//')")
  [[ -f $manifest && "$(cat "$manifest")" == "$json" ]] && return 0
  tmp=$manifest.$$.tmp
  echo "$json" > "$tmp"
  mv -f "$tmp" "$manifest"
}

if [[ ${1:-} != --force && -f $out/build/Release/fuse.node ]]; then
  write_manifest
  log "up to date: $out"
  exit 0
fi

for tool in patch pkg-config cc make python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/ci-deps.sh installs build-essential, pkg-config, libfuse-dev)"
done
pkg-config --exists fuse || die "libfuse 2 development files are missing (apt-get install libfuse-dev)"
NODE_GYP=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
[[ -f $NODE_GYP ]] || NODE_GYP=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
[[ -f $NODE_GYP ]] || die "npm's bundled node-gyp not found"
NODEDIR=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[[ -f $NODEDIR/include/node/node_api.h ]] || die "Node headers not found in $NODEDIR/include/node"

# Built under the repository so that binding.gyp's `require('napi-macros')` finds node_modules/.
work=$ROOT/.cache/fuse-native-build/$hash.$$
trap 'rm -rf "$work" "$out.$$.tmp"' EXIT
mkdir -p "$work"
# The sources only: no prebuilds/ (node-gyp-build would fall back to the unpatched binary).
cp "$SRC"/{package.json,index.js,fuse-native.c,binding.gyp,semaphore.h} "$work"/
for p in "${PATCHES[@]}"; do
  patch -d "$work" -p1 --forward --batch --quiet < "$p" || die "$(basename "$p") does not apply to fuse-native $version"
done

log "building fuse-native $version + ${#PATCHES[@]} patches (node ABI $abi) in $work"
started=$(date +%s.%N)
(cd "$work" && node "$NODE_GYP" rebuild --nodedir="$NODEDIR" --jobs=max --loglevel=warn) >&2 \
  || die "node-gyp failed"

staging=$out.$$.tmp
mkdir -p "$staging/build/Release"
cp "$work"/{package.json,index.js} "$staging"/
cp "$work/build/Release/fuse.node" "$staging/build/Release/fuse.node"
# Load it before publishing: the addon links and exports what the patches add.
node -e '
  const Fuse = require(process.argv[1]);
  for (const k of ["F_SETLKW", "LOCK_EX"]) if (typeof Fuse[k] !== "number") throw new Error(`Fuse.${k} missing`);
  if (typeof Fuse.prototype.context !== "function") throw new Error("Fuse#context missing");
' "$staging/index.js" || die "the built addon does not load"
if [[ -d $out && ${1:-} == --force ]]; then
  mv -T "$out" "$out.$$.old" && mv -T "$staging" "$out" && rm -rf "$out.$$.old"
elif [[ -d $out ]]; then
  rm -rf "$staging" # built meanwhile by another run (same inputs, same result)
else
  mv -T "$staging" "$out"
fi
write_manifest
log "built $out/build/Release/fuse.node in $(echo "$(date +%s.%N) - $started" | bc 2>/dev/null || echo "?") s"

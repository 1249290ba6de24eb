#!/usr/bin/env bash
# Everything a fresh Debian machine needs before the tests or the local cluster can run: Debian
# packages and /dev/fuse, npm dependencies, the Pulumi engine (built from Go modules when it cannot be
# downloaded; cached), and the build (CLIs, patched fuse-native, the component).
# Source it (`. scripts/setup.sh`) to keep the engine on PATH and the offline Pulumi settings.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

setup_started=$SECONDS
step() { echo; echo "=== [$((SECONDS - setup_started))s] $*"; }

step "machine: $(uname -srm), $(nproc) cores, node $(node --version 2>/dev/null || echo missing)"
step "Debian packages and /dev/fuse (scripts/ci-deps.sh)"
bash scripts/ci-deps.sh

step "npm ci"
if [[ -d node_modules && node_modules/.package-lock.json -nt package-lock.json ]]; then
  echo "node_modules is current"
else
  npm ci --no-audit --no-fund
fi

step "Pulumi engine (scripts/pulumi-engine.sh)"
. scripts/pulumi-env.sh
engine_bin="$(bash scripts/pulumi-engine.sh | tail -n 1)"
export PATH="$engine_bin:$PATH"
pulumi version

step "build"
npm run build

#!/usr/bin/env bash
# The README's main job: set up this machine, then bring up the local example cluster with the real
# Pulumi engine (`pulumi up` of examples/local): storage nodes on 127.0.0.2 and 127.0.0.3, the client
# mount, a private BIND with the round-robin records, and Apache serving the site from the volume.
#   scripts/local-cluster.sh up      set up and `pulumi up`
#   scripts/local-cluster.sh down    `pulumi destroy` (brick data is kept)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
action="${1:-up}"
case "$action" in
up)
  . scripts/setup.sh
  bash examples/local/run.sh up
  cd examples/local
  url="$(bash run.sh pulumi stack output siteUrl 2>/dev/null || true)"
  echo
  echo "The cluster is up. Site: ${url}"
  echo "Try next (the seed's failover test, heal info):"
  bash run.sh pulumi stack output tryNext --json 2>/dev/null |
    node -e 'for (const l of JSON.parse(require("fs").readFileSync(0, "utf8"))) console.log("  " + l)' || true
  echo
  echo "All outputs (volfiles, DNS records, per-node status): bash examples/local/run.sh pulumi stack output --json"
  echo "Tear it down with: bash scripts/local-cluster.sh down"
  ;;
down)
  . scripts/pulumi-env.sh
  bash examples/local/run.sh destroy
  ;;
*) echo "usage: scripts/local-cluster.sh up|down" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Runs the ssh example with the project's offline Pulumi engine.
#   ./run.sh up       build the runtime if needed, then `pulumi up` (stack "ssh")
#   ./run.sh destroy  `pulumi destroy` and remove the stack
#   ./run.sh pulumi ARGS...  any other pulumi command in this project
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

# The example imports "gluster-ha": point it at this checkout (the package's main is dist/provider).
mkdir -p node_modules
ln -sfn ../../.. node_modules/gluster-ha
if [ ! -f "$repo/dist/provider/index.js" ] || [ ! -f "$repo/dist/bin/glusterfsd.js" ]; then
  (cd "$repo" && npm run build)
fi

. "$repo/scripts/pulumi-env.sh"
PATH="$("$repo/scripts/pulumi-engine.sh" | tail -n 1):$PATH"
export PATH
stack="${GLUSTER_HA_STACK:-ssh}"
pulumi stack select --create "$stack" >/dev/null

case "${1:-up}" in
up) shift || true; pulumi up --yes --skip-preview "$@" ;;
destroy) shift; pulumi destroy --yes --skip-preview "$@" && pulumi stack rm --yes "$stack" ;;
pulumi) shift; pulumi "$@" ;;
*) echo "usage: run.sh up|destroy|pulumi ARGS..." >&2; exit 2 ;;
esac

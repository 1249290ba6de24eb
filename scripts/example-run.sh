#!/usr/bin/env bash
# Runs one of the examples with the project's offline Pulumi engine (examples/*/run.sh call this).
#   scripts/example-run.sh EXAMPLE_DIR DEFAULT_STACK up       build the runtime if needed, then `pulumi up`
#   scripts/example-run.sh EXAMPLE_DIR DEFAULT_STACK destroy  `pulumi destroy` and remove the stack
#   scripts/example-run.sh EXAMPLE_DIR DEFAULT_STACK pulumi ARGS...  any other pulumi command there
# GLUSTER_HA_STACK overrides the stack name.
set -euo pipefail
here="$(cd "$1" && pwd)"
default_stack="$2"
shift 2
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

# The example imports "gluster-ha": point it at this checkout (the package's main is dist/provider).
mkdir -p node_modules
ln -sfn "$repo" node_modules/gluster-ha
if [ ! -f "$repo/dist/provider/index.js" ] || [ ! -f "$repo/dist/bin/glusterfsd.js" ]; then
  (cd "$repo" && npm run build)
fi

. "$repo/scripts/pulumi-env.sh"
# The language host leaves a pipes directory in the temp dir after every program run: give it one of
# its own, removed when this script ends.
TMPDIR="$(mktemp -d)"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
PATH="$("$repo/scripts/pulumi-engine.sh" | tail -n 1):$PATH"
export PATH
stack="${GLUSTER_HA_STACK:-$default_stack}"
pulumi stack select --create "$stack" >/dev/null

case "${1:-up}" in
up) shift || true; pulumi up --yes --skip-preview "$@" ;;
destroy) shift; pulumi destroy --yes --skip-preview "$@" && pulumi stack rm --yes "$stack" ;;
pulumi) shift; pulumi "$@" ;;
*) echo "usage: run.sh up|destroy|pulumi ARGS..." >&2; exit 2 ;;
esac

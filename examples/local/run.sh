#!/usr/bin/env bash
# Runs the local example with the project's offline Pulumi engine (stack "local" unless GLUSTER_HA_STACK says).
#   ./run.sh up | destroy | pulumi ARGS...     (see scripts/example-run.sh)
exec "$(dirname "${BASH_SOURCE[0]}")/../../scripts/example-run.sh" "$(dirname "${BASH_SOURCE[0]}")" local "$@"

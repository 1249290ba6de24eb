#!/usr/bin/env bash
# The README's test command (and what CI runs): set up a fresh machine, then run every test suite.
set -euo pipefail
exec </dev/null
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
started=$SECONDS
. scripts/setup.sh
echo; echo "=== [$((SECONDS - started))s] npm test"
npm test
echo; echo "=== tests passed in $((SECONDS - started))s"

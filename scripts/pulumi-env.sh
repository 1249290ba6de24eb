# Offline settings for every use of the Pulumi CLI in this project. Source it:
#   . scripts/pulumi-env.sh && PATH="$(scripts/pulumi-engine.sh):$PATH"
# Each value can be overridden by setting it before sourcing.
#
# - PULUMI_SKIP_UPDATE_CHECK: the CLI would otherwise ask the network for a newer release.
# - PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: fail instead of downloading a missing plugin; the
#   plugins come from scripts/pulumi-engine.sh's bin dir (on PATH).
# - PULUMI_BACKEND_URL: a local file backend, so no login to a service.
# - PULUMI_CONFIG_PASSPHRASE: the file backend encrypts secrets with it; a fixed test passphrase
#   unless one (or PULUMI_CONFIG_PASSPHRASE_FILE) is already set, so nothing prompts.
# - PULUMI_ENGINE_NODE_MODULES: where the Node plugins of pulumi-engine.sh find @pulumi/pulumi when
#   the project being deployed has no node_modules of its own.
export PULUMI_SKIP_UPDATE_CHECK="${PULUMI_SKIP_UPDATE_CHECK:-true}"
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="${PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION:-true}"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://${XDG_STATE_HOME:-$HOME/.local/state}/gluster-ha/pulumi-state}"
case "$PULUMI_BACKEND_URL" in
  file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;;
esac
if [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-gluster-ha-test-passphrase}"
fi
export PULUMI_ENGINE_NODE_MODULES="${PULUMI_ENGINE_NODE_MODULES:-$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)/node_modules}"

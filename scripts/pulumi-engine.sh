#!/usr/bin/env bash
# Provides the Pulumi engine without downloads: the `pulumi` CLI, the Node.js language host
# (pulumi-language-nodejs) and the command provider plugin (pulumi-resource-command), at the versions
# pinned in package.json's "pulumiEngine" field. Prints their bin dir as the last line of stdout and
# logs to stderr, so callers do:
#   . scripts/pulumi-env.sh && PATH="$(scripts/pulumi-engine.sh):$PATH"
# (pulumi-env.sh holds the offline settings every caller needs.)
#
# Order: 1. a `pulumi` on PATH at the pinned version (with its plugins beside it, or on PATH);
#        2. this script's cache, ${XDG_CACHE_HOME:-~/.cache}/gluster-ha/pulumi-<cli>-command-<v>/bin;
#        3. the official installer, only if its host answers within a few seconds;
#        4. a build of the CLI from its Go module (scripts/engine/cli, go.sum pinned) — about 3-4 minutes
#           cold on 2 cores, seconds with Go's build cache warm.
# The language host, when not on PATH (or installed beside an official CLI), is the Go host built from
# sdk/v3 v3.68.0 (scripts/engine/langhost, go.sum pinned; about a minute cold, cached with the CLI):
# later releases moved it to a module of its own, which the module proxy here does not serve. That old
# host speaks the current protocol (methods added since fall back in the CLI) and runs the program with
# @pulumi/pulumi's own run script, so TypeScript entry points go through ts-node (the one vendored in
# @pulumi/pulumi unless the project has its own) with type checking, as upstream.
# scripts/engine/pulumi-language-nodejs.js is the fallback when that build fails (logged; retried only
# when the pin changes or the marker file named in the log is removed).
# The command provider comes from scripts/engine/pulumi-resource-command.js when not on PATH: its Go
# module is not served by the module proxy here (see the comment in that file).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "pulumi-engine: $*" >&2; }
fail() { log "error: $*"; exit 1; }

command -v node >/dev/null || fail "node is not on PATH (Node.js 20+ is needed)"
cli_version="$(node -p 'require(process.argv[1]).pulumiEngine.cli' "$repo_root/package.json")"
command_version="$(node -p 'require(process.argv[1]).pulumiEngine.command' "$repo_root/package.json")"
[[ "$cli_version" == v* && "$command_version" == v* ]] ||
  fail "package.json pulumiEngine.cli/command must be versions like v3.260.0 (got '$cli_version', '$command_version')"

cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/gluster-ha/pulumi-${cli_version}-command-${command_version}"
bin_dir="$cache_dir/bin"
mkdir -p "$bin_dir"

# One builder at a time per cache dir; later callers wait and then find the cache warm.
exec 9>"$cache_dir/.lock"
if command -v flock >/dev/null; then flock 9; fi

cli_version_of() { "$1" version 2>/dev/null | tr -d '[:space:]' || true; }

# A command found on PATH, ignoring our own bin dir (callers put it on PATH too).
on_path_elsewhere() {
  local found
  found="$(PATH="$(tr ':' '\n' <<<"$PATH" | grep -vxF "$bin_dir" | paste -sd: -)" command -v "$1" 2>/dev/null)" || return 1
  [[ "$(readlink -f "$found")" != "$(readlink -f "$bin_dir/$1")" ]] || return 1
  echo "$found"
}

official_installer_reachable() {
  command -v curl >/dev/null && curl -fsS --max-time 4 -o /dev/null https://get.pulumi.com/ 2>/dev/null
}

build_cli_from_go_module() {
  local go_bin
  go_bin="$(command -v go || true)"
  [[ -n "$go_bin" ]] || go_bin=/usr/local/go/bin/go
  [[ -x "$go_bin" ]] || fail "no Go toolchain (go on PATH or /usr/local/go) to build the Pulumi CLI"
  local pinned
  pinned="$(awk '$1 == "github.com/pulumi/pulumi/pkg/v3" { print $2 }' "$repo_root/scripts/engine/cli/go.mod")"
  [[ "$pinned" == "$cli_version" ]] ||
    fail "scripts/engine/cli/go.mod pins pkg/v3 $pinned but package.json pulumiEngine.cli is $cli_version; run: (cd scripts/engine/cli && go get -tool github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$cli_version github.com/pulumi/pulumi/sdk/v3@$cli_version)"
  log "building pulumi $cli_version from its Go module with $("$go_bin" version | cut -d' ' -f3) (a few minutes when Go's build cache is cold)"
  local started=$SECONDS
  # -mod=readonly: build exactly what go.mod/go.sum pin; the module proxy is the machine's default.
  (cd "$repo_root/scripts/engine/cli" &&
    GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 "$go_bin" build -trimpath -tags osusergo \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$cli_version" \
      -o "$bin_dir/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  mv -f "$bin_dir/pulumi.tmp" "$bin_dir/pulumi"
  log "built pulumi in $((SECONDS - started))s"
}

# The Go language host. Its stamp records what it was built from (pin + go.sum), so a warm cache is a
# file compare and a changed pin rebuilds.
langhost_module="$repo_root/scripts/engine/langhost"
langhost_stamp="$cache_dir/pulumi-language-nodejs.go-build"
langhost_failed="$cache_dir/pulumi-language-nodejs.go-build-failed"
langhost_source() {
  local sdk
  sdk="$(awk '$1 == "github.com/pulumi/pulumi/sdk/v3" { print $2 }' "$langhost_module/go.mod")"
  echo "github.com/pulumi/pulumi/sdk/v3@$sdk go.sum:$(cksum <"$langhost_module/go.sum" | cut -d' ' -f1)"
}

build_language_host_from_go_module() {
  local go_bin sdk started=$SECONDS
  go_bin="$(command -v go || true)"
  [[ -n "$go_bin" ]] || go_bin=/usr/local/go/bin/go
  if [[ ! -x "$go_bin" ]]; then
    log "no Go toolchain (go on PATH or /usr/local/go) to build the language host"
    return 1
  fi
  sdk="$(awk '$1 == "github.com/pulumi/pulumi/sdk/v3" { print $2 }' "$langhost_module/go.mod")"
  log "building pulumi-language-nodejs from github.com/pulumi/pulumi/sdk/v3@$sdk (about a minute when Go's build cache is cold)"
  (cd "$langhost_module" &&
    GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 "$go_bin" build -trimpath -tags osusergo \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$sdk" \
      -o "$bin_dir/pulumi-language-nodejs.tmp" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs) >&2 || return 1
  mv -f "$bin_dir/pulumi-language-nodejs.tmp" "$bin_dir/pulumi-language-nodejs"
  langhost_source >"$langhost_stamp"
  log "built pulumi-language-nodejs in $((SECONDS - started))s"
}

# The Go language host, cached; the Node one from scripts/engine when it cannot be built.
install_language_host() {
  local source
  source="$(langhost_source)"
  if [[ -f "$langhost_stamp" && "$(cat "$langhost_stamp")" == "$source" && -x "$bin_dir/pulumi-language-nodejs" ]]; then
    log "using cached pulumi-language-nodejs (${source%% *})"
    return 0
  fi
  rm -f "$langhost_stamp"
  if [[ ! -f "$langhost_failed" || "$(cat "$langhost_failed")" != "$source" ]]; then
    if build_language_host_from_go_module; then
      rm -f "$langhost_failed"
      return 0
    fi
    rm -f "$bin_dir/pulumi-language-nodejs.tmp"
    echo "$source" >"$langhost_failed"
  fi
  log "the Go language host could not be built; falling back to scripts/engine/pulumi-language-nodejs.js (to retry the build: rm $langhost_failed)"
  install_node_plugin pulumi-language-nodejs
}

install_with_official_installer() {
  local root="$cache_dir/official"
  log "installing pulumi $cli_version with the official installer into $root"
  curl -fsSL https://get.pulumi.com | sh -s -- --version "${cli_version#v}" --install-root "$root" --no-edit-path >&2
  ln -sfn "$root/bin/pulumi" "$bin_dir/pulumi"
  ln -sfn "$root/bin/pulumi-language-nodejs" "$bin_dir/pulumi-language-nodejs"
  "$bin_dir/pulumi" plugin install resource command "${command_version#v}" >&2
}

# Writes a launcher for one of the Node plugins in scripts/engine (copied, so the cache does not
# depend on this checkout staying where it is).
install_node_plugin() {
  local name="$1"
  cp "$repo_root/scripts/engine/$name.js" "$bin_dir/$name.js.tmp" && mv -f "$bin_dir/$name.js.tmp" "$bin_dir/$name.js"
  cat >"$bin_dir/$name.tmp" <<EOF
#!/bin/sh
# Written by scripts/pulumi-engine.sh: the Pulumi plugin $name, served by @pulumi/pulumi.
PULUMI_COMMAND_PLUGIN_VERSION="${command_version#v}" exec node "\$(dirname "\$0")/$name.js" "\$@"
EOF
  chmod +x "$bin_dir/$name.tmp" && mv -f "$bin_dir/$name.tmp" "$bin_dir/$name"
}

# 1-4: the CLI.
if existing="$(on_path_elsewhere pulumi)" && [[ "$(cli_version_of "$existing")" == "$cli_version" ]]; then
  log "using pulumi $cli_version on PATH: $existing"
  ln -sfn "$existing" "$bin_dir/pulumi"
  [[ -x "$(dirname "$existing")/pulumi-language-nodejs" ]] && ln -sfn "$(dirname "$existing")/pulumi-language-nodejs" "$bin_dir/pulumi-language-nodejs"
elif [[ -x "$bin_dir/pulumi" && "$(cli_version_of "$bin_dir/pulumi")" == "$cli_version" ]]; then
  log "using cached pulumi $cli_version"
elif official_installer_reachable; then
  install_with_official_installer
else
  log "official installer not reachable; building from Go modules"
  build_cli_from_go_module
fi
[[ "$(cli_version_of "$bin_dir/pulumi")" == "$cli_version" ]] || fail "$bin_dir/pulumi does not report $cli_version"

# The plugins: one on PATH (or installed beside an official CLI) wins; else the Go language host and
# the Node command provider.
for plugin in pulumi-language-nodejs pulumi-resource-command; do
  if [[ -L "$bin_dir/$plugin" && -e "$bin_dir/$plugin" ]]; then
    continue
  elif existing="$(on_path_elsewhere "$plugin")"; then
    log "using $plugin on PATH: $existing"
    ln -sfn "$existing" "$bin_dir/$plugin"
  elif [[ "$plugin" == pulumi-resource-command && -d "$cache_dir/official" ]]; then
    continue # installed by `pulumi plugin install` with the official CLI
  elif [[ "$plugin" == pulumi-language-nodejs ]]; then
    install_language_host
  else
    install_node_plugin "$plugin"
  fi
done

log "ready: pulumi $cli_version, command provider $command_version in $bin_dir"
echo "$bin_dir"

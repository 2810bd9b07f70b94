# shellcheck shell=bash
# Shared setup of the firmware-scripts tests: a temporary root, stub commands that record their calls, and
# fake releases whose "agent" serves /healthz on a free loopback port. Nothing outside $BATS_TEST_TMPDIR is touched.

bats_require_minimum_version 1.5.0

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
SCRIPTS=$REPO/firmware-scripts
STUBS=$BATS_TEST_DIRNAME/stubs

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

common_setup() {
  export ROOT=$BATS_TEST_TMPDIR/root
  export STUB_CALLS=$BATS_TEST_TMPDIR/calls.log
  export STUB_STATE=$BATS_TEST_TMPDIR/state
  mkdir -p "$ROOT" "$STUB_STATE"
  : >"$STUB_CALLS"
  export SYSTEMCTL=$STUBS/systemctl USERADD=$STUBS/useradd USERDEL=$STUBS/userdel GETENT=$STUBS/getent CHOWN=$STUBS/chown
  export NODE_BIN=/usr/bin/node
  AGENT_PORT=$(free_port)
  export AGENT_PORT
  export HEALTH_URL=http://127.0.0.1:$AGENT_PORT/healthz HEALTHCHECK_TIMEOUT=2 HEALTH_INTERVAL=0.2 HEALTH_PASSES=2
}

common_teardown() {
  if [ -f "$STUB_STATE/agent.pid" ]; then kill "$(cat "$STUB_STATE/agent.pid")" 2>/dev/null || true; fi
}

# make_release VERSION [MODE] [dir|tar]: builds a fake release (MODE healthy, unhealthy or crash) and prints
# its path: a .tar.gz with one top-level directory like `npm pack` makes (default), or a directory.
make_release() {
  local version=$1 mode=${2:-healthy} kind=${3:-tar} dir
  dir=$BATS_TEST_TMPDIR/build-$version-$mode/package
  mkdir -p "$dir/dist/cli" "$dir/node_modules" "$dir/firmware-scripts"
  printf '{\n  "name": "roadside-agent",\n  "version": "%s",\n  "type": "module"\n}\n' "$version" >"$dir/package.json"
  printf '{"version": "%s", "mode": "%s"}\n' "$version" "$mode" >"$dir/fake.json"
  cp "$BATS_TEST_DIRNAME/fake-agent.js" "$dir/dist/cli/main.js"
  cp "$SCRIPTS"/*.sh "$dir/firmware-scripts/"
  if [ "$kind" = dir ]; then
    echo "$dir"
  else
    tar -czf "$BATS_TEST_TMPDIR/roadside-agent-$version-$mode.tgz" -C "$(dirname "$dir")" package
    echo "$BATS_TEST_TMPDIR/roadside-agent-$version-$mode.tgz"
  fi
}

# Installs VERSION (healthy) with a config present, so the service is started.
install_running() {
  mkdir -p "$ROOT/etc/roadside-agent"
  echo "# test config" >"$ROOT/etc/roadside-agent/agent.yaml"
  "$SCRIPTS/install.sh" --release "$(make_release "$1")"
}

# Waits up to 10 s for the fake agent to answer /healthz with 200.
wait_served() {
  local _
  for _ in $(seq 100); do "$SCRIPTS/healthcheck.sh" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

current() { readlink "$ROOT/opt/roadside-agent/current"; }
calls_matching() { grep -c -- "$1" "$STUB_CALLS" || true; }
# The version the running fake agent reports on /healthz (empty if none answers).
served_version() { curl -s --max-time 2 "$HEALTH_URL" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'; }

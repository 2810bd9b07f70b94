#!/usr/bin/env bats
# firmware-scripts/update.sh: side-by-side release, symlink switch, restart, health check, rollback, pruning.
# The stub systemctl really (re)starts the fake agent of the current release; healthcheck.sh asks it over HTTP.

load helpers

setup() {
  common_setup
  install_running 0.1.0
}
teardown() { common_teardown; }

@test "update to a healthy release switches current, restarts and keeps the old one as previous" {
  run "$SCRIPTS/update.sh" --release "$(make_release 0.2.0)" --health-timeout 20
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(current)" = releases/0.2.0 ]
  [ "$(readlink "$ROOT/opt/roadside-agent/previous")" = releases/0.1.0 ]
  [ -d "$ROOT/opt/roadside-agent/releases/0.1.0" ]
  [ "$(calls_matching 'systemctl restart roadside-agent.service')" = 2 ]
  [ "$(served_version)" = 0.2.0 ]
}

@test "update to a release whose health check fails rolls back to the previous one" {
  run "$SCRIPTS/update.sh" --release "$(make_release 0.2.0 unhealthy)" --health-timeout 3
  echo "$output"
  [ "$status" -eq 1 ]
  [[ $output == *"rolling back to 0.1.0"* ]]
  # Symlink restored, restart called again (install, update, rollback), the old release serves again.
  [ "$(current)" = releases/0.1.0 ]
  [ "$(calls_matching 'systemctl restart roadside-agent.service')" = 3 ]
  [ "$(served_version)" = 0.1.0 ]
  run "$SCRIPTS/healthcheck.sh"
  [ "$status" -eq 0 ]
  # The failed release is removed; no dangling previous link.
  [ ! -e "$ROOT/opt/roadside-agent/releases/0.2.0" ]
  [ ! -L "$ROOT/opt/roadside-agent/previous" ]
}

@test "update to a release that crashes on start rolls back too" {
  run "$SCRIPTS/update.sh" --release "$(make_release 0.2.0 crash)" --health-timeout 3
  echo "$output"
  [ "$status" -eq 1 ]
  [ "$(current)" = releases/0.1.0 ]
  [ "$(served_version)" = 0.1.0 ]
  grep -q 'fake agent 0.2.0: crashing on start' "$STUB_STATE/agent.log"
}

@test "a failed update keeps the earlier previous release for a later rollback" {
  "$SCRIPTS/update.sh" --release "$(make_release 0.2.0)" --health-timeout 20
  run "$SCRIPTS/update.sh" --release "$(make_release 0.3.0 unhealthy)" --health-timeout 2
  [ "$status" -eq 1 ]
  [ "$(current)" = releases/0.2.0 ]
  [ "$(readlink "$ROOT/opt/roadside-agent/previous")" = releases/0.1.0 ]
}

@test "update exits 2 when the rollback target is unhealthy too" {
  # Break the running release's fake agent, then update to another unhealthy one.
  echo '{"version": "0.1.0", "mode": "unhealthy"}' >"$ROOT/opt/roadside-agent/releases/0.1.0/fake.json"
  run "$SCRIPTS/update.sh" --release "$(make_release 0.2.0 unhealthy)" --health-timeout 2
  [ "$status" -eq 2 ]
  [ "$(current)" = releases/0.1.0 ]
}

@test "update keeps only --keep releases, never the current or previous" {
  for v in 0.2.0 0.3.0 0.4.0; do
    "$SCRIPTS/update.sh" --release "$(make_release $v)" --keep 2 --health-timeout 20
  done
  run ls "$ROOT/opt/roadside-agent/releases"
  [ "$output" = "$(printf '0.3.0\n0.4.0')" ]
  [ "$(current)" = releases/0.4.0 ]
  [ "$(readlink "$ROOT/opt/roadside-agent/previous")" = releases/0.3.0 ]
}

@test "update --rollback switches back to the previous release with a health check" {
  "$SCRIPTS/update.sh" --release "$(make_release 0.2.0)" --health-timeout 20
  run "$SCRIPTS/update.sh" --rollback --health-timeout 20
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(current)" = releases/0.1.0 ]
  [ "$(readlink "$ROOT/opt/roadside-agent/previous")" = releases/0.2.0 ]
  [ "$(served_version)" = 0.1.0 ]
}

@test "update refuses the release that is already current, and bad arguments" {
  run "$SCRIPTS/update.sh" --release "$(make_release 0.1.0)"
  [ "$status" -eq 1 ]
  [[ $output == *"already the current one"* ]]
  run "$SCRIPTS/update.sh"
  [ "$status" -eq 64 ]
  run "$SCRIPTS/update.sh" --release x --keep 1
  [ "$status" -ne 0 ]
  [ "$(calls_matching 'systemctl restart roadside-agent.service')" = 1 ]
}

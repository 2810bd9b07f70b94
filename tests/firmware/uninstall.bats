#!/usr/bin/env bats
# firmware-scripts/uninstall.sh: removes code, unit and wrapper; keeps config and data unless --purge.

load helpers

setup() {
  common_setup
  install_running 0.1.0
  echo "outbox" >"$ROOT/var/lib/roadside-agent/outbox.db"
  echo "ROADSIDE_MQTT_PASSWORD='x'" >"$ROOT/etc/roadside-agent/secrets.env"
}
teardown() { common_teardown; }

@test "uninstall stops the service, removes code, unit and wrapper, keeps config and data" {
  run "$SCRIPTS/uninstall.sh"
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx 'systemctl disable --now roadside-agent.service' "$STUB_CALLS"
  [ ! -e "$ROOT/opt/roadside-agent" ]
  [ ! -e "$ROOT/etc/systemd/system/roadside-agent.service" ]
  [ ! -e "$ROOT/etc/systemd/journald.conf.d/50-roadside-agent.conf" ]
  [ ! -e "$ROOT/usr/local/bin/roadside-agent" ]
  [ "$(cat "$ROOT/var/lib/roadside-agent/outbox.db")" = outbox ]
  [ -f "$ROOT/etc/roadside-agent/agent.yaml" ]
  [ -f "$ROOT/etc/roadside-agent/secrets.env" ]
  [ "$(calls_matching '^userdel')" = 0 ]
  # The agent is stopped.
  run "$SCRIPTS/healthcheck.sh"
  [ "$status" -eq 1 ]
}

@test "uninstall --purge removes config, data and the user" {
  run "$SCRIPTS/uninstall.sh" --purge
  echo "$output"
  [ "$status" -eq 0 ]
  [ ! -e "$ROOT/opt/roadside-agent" ]
  [ ! -e "$ROOT/etc/roadside-agent" ]
  [ ! -e "$ROOT/var/lib/roadside-agent" ]
  grep -qx 'userdel roadside' "$STUB_CALLS"
}

@test "uninstall twice is harmless" {
  "$SCRIPTS/uninstall.sh"
  run "$SCRIPTS/uninstall.sh"
  [ "$status" -eq 0 ]
}

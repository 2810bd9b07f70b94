#!/usr/bin/env bats
# firmware-scripts/install.sh in a temporary root with stub systemctl/useradd/getent/chown.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "install lays out user, directories and modes, release, current symlink, unit, journald drop-in, wrapper" {
  run "$SCRIPTS/install.sh" --release "$(make_release 0.1.0)"
  echo "$output"
  [ "$status" -eq 0 ]
  install_output=$output

  grep -q '^useradd --system --user-group --home-dir /var/lib/roadside-agent --no-create-home --shell /usr/sbin/nologin .* roadside$' "$STUB_CALLS"
  [ "$(stat -c %a "$ROOT/etc/roadside-agent")" = 750 ]
  [ "$(stat -c %a "$ROOT/var/lib/roadside-agent")" = 750 ]
  grep -qx "chown roadside:roadside $ROOT/etc/roadside-agent $ROOT/var/lib/roadside-agent" "$STUB_CALLS"

  [ -f "$ROOT/opt/roadside-agent/releases/0.1.0/dist/cli/main.js" ]
  [ "$(current)" = releases/0.1.0 ]
  # No staging directory left behind.
  [ -z "$(find "$ROOT/opt/roadside-agent/releases" -maxdepth 1 -name '.incoming*')" ]

  unit=$ROOT/etc/systemd/system/roadside-agent.service
  for line in 'Type=simple' 'User=roadside' 'Restart=on-failure' 'WatchdogSec=60s' 'NotifyAccess=all' \
    'EnvironmentFile=-/etc/roadside-agent/secrets.env' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
    'ReadWritePaths=/var/lib/roadside-agent /etc/roadside-agent' 'PrivateTmp=yes' 'ProtectHome=yes' 'RestartPreventExitStatus=64 78' \
    'ExecStart=/usr/bin/node --lite-mode --no-expose-wasm /opt/roadside-agent/current/dist/cli/main.js run --config /etc/roadside-agent/agent.yaml' \
    'WantedBy=multi-user.target'; do
    grep -qxF "$line" "$unit" || { echo "missing in unit: $line"; false; }
  done
  # The unit names the box's paths, never the test root.
  run ! grep -qF "$ROOT" "$unit"

  grep -qx 'SystemMaxUse=200M' "$ROOT/etc/systemd/journald.conf.d/50-roadside-agent.conf"
  [ -x "$ROOT/usr/local/bin/roadside-agent" ]
  grep -qx 'exec /usr/bin/node /opt/roadside-agent/current/dist/cli/main.js "$@"' "$ROOT/usr/local/bin/roadside-agent"

  grep -qx 'systemctl daemon-reload' "$STUB_CALLS"
  grep -qx 'systemctl enable roadside-agent.service' "$STUB_CALLS"
  # No config yet: installed, not started, and told to provision.
  [ "$(calls_matching 'restart roadside-agent.service')" = 0 ]
  [[ $install_output == *"roadside-agent provision"* ]]
}

@test "install starts the service when a config exists and is idempotent" {
  install_running 0.1.0
  [ "$(calls_matching 'systemctl restart roadside-agent.service')" = 1 ]
  wait_served

  run "$SCRIPTS/install.sh" --release "$(make_release 0.1.0)"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *"already installed"* ]]
  [ "$(calls_matching '^useradd')" = 1 ]
  [ "$(current)" = releases/0.1.0 ]
}

@test "install accepts an unpacked release directory and --watchdog-sec 0" {
  run "$SCRIPTS/install.sh" --release "$(make_release 0.1.0 healthy dir)" --watchdog-sec 0 --no-start
  [ "$status" -eq 0 ]
  [ "$(current)" = releases/0.1.0 ]
  run ! grep -q "^WatchdogSec=" "$ROOT/etc/systemd/system/roadside-agent.service"
}

@test "install refuses to replace an installed release (that is update.sh's job)" {
  "$SCRIPTS/install.sh" --release "$(make_release 0.1.0)"
  run "$SCRIPTS/install.sh" --release "$(make_release 0.2.0)"
  [ "$status" -ne 0 ]
  [[ $output == *"use update.sh"* ]]
  [ "$(current)" = releases/0.1.0 ]
  [ ! -e "$ROOT/opt/roadside-agent/releases/0.2.0" ]
}

@test "install rejects something that is not a built release" {
  mkdir -p "$BATS_TEST_TMPDIR/bogus/package"
  echo '{"version": "9.9.9"}' >"$BATS_TEST_TMPDIR/bogus/package/package.json"
  tar -czf "$BATS_TEST_TMPDIR/bogus.tgz" -C "$BATS_TEST_TMPDIR/bogus" package
  run "$SCRIPTS/install.sh" --release "$BATS_TEST_TMPDIR/bogus.tgz"
  [ "$status" -ne 0 ]
  [[ $output == *"dist/cli/main.js"* ]]
  [ ! -e "$ROOT/opt/roadside-agent/current" ]
  [ -z "$(find "$ROOT/opt/roadside-agent/releases" -mindepth 1 -maxdepth 1)" ]
}

@test "the generated unit passes systemd-analyze verify" {
  command -v systemd-analyze >/dev/null || skip "systemd-analyze not installed"
  "$SCRIPTS/install.sh" --release "$(make_release 0.1.0)" --no-start
  # verify resolves ExecStart's binary: copy the unit out with NODE_BIN left as is (/usr/bin/node or the host's).
  cp "$ROOT/etc/systemd/system/roadside-agent.service" "$BATS_TEST_TMPDIR/roadside-agent.service"
  sed -i "s#^ExecStart=/usr/bin/node #ExecStart=$(command -v node) #" "$BATS_TEST_TMPDIR/roadside-agent.service"
  run systemd-analyze verify "$BATS_TEST_TMPDIR/roadside-agent.service"
  echo "$output"
  if [[ $output == *"Failed to "*"ystem"* || $output == *"System has not been booted with systemd"* ]]; then skip "systemd-analyze cannot run here"; fi
  # Lines about the missing user/paths of the box are expected in a test root; unknown or bad settings are not.
  run ! grep -Ei 'unknown (key|section)|invalid|failed to parse|assignment outside' <<<"$output"
}

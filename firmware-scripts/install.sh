#!/usr/bin/env bash
# Installs roadside-agent on a Debian box: system user, directories, the release under
# /opt/roadside-agent/releases/<version> with a `current` symlink, the systemd unit, a journald drop-in and
# the `roadside-agent` CLI wrapper. Safe to run again (repairs the unit and directories; keeps config and data).
#
#   sudo ./install.sh --release roadside-agent-0.1.0-arm64.tar.gz [--watchdog-sec 60] [--no-start]
#
# Then: roadside-agent provision ... (writes /etc/roadside-agent/agent.yaml), systemctl start roadside-agent.
# Paths and commands are overridable for tests: see lib.sh (ROOT=, SYSTEMCTL=, USERADD=, GETENT=, CHOWN=).
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
  cat <<EOF
usage: $0 --release FILE.tar.gz|DIR [--version V] [--watchdog-sec N] [--no-start]
  --release       release tarball (one top-level directory, as npm pack makes) or unpacked directory
  --version       release version (default: from its package.json)
  --watchdog-sec  systemd WatchdogSec= (default 60; 0 disables the watchdog)
  --no-start      do not (re)start the service, even if a config exists
EOF
}

release=
version=
watchdog_sec=60
start=1
while [ $# -gt 0 ]; do
  case $1 in
    --release) release=${2:?--release needs a value}; shift 2 ;;
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --watchdog-sec) watchdog_sec=${2:?--watchdog-sec needs a value}; shift 2 ;;
    --no-start) start=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 64 ;;
  esac
done
[ -n "$release" ] || { usage >&2; exit 64; }
[[ $watchdog_sec =~ ^[0-9]+$ ]] || die "--watchdog-sec must be a whole number of seconds"
require_root
# Node 20.11+ runs the agent (Debian 12's own nodejs is 18: use a Node 20 package, see docs/operations.md).
if node_version=$("$NODE_BIN" -p 'process.versions.node' 2>/dev/null); then
  [ "${node_version%%.*}" -ge 20 ] || say "warning: $NODE_BIN is Node $node_version; the agent needs Node 20.11 or newer"
else
  say "warning: $NODE_BIN does not run: install Node 20 or set NODE_BIN=/path/to/node"
fi

# 1. System user (no login, no home of its own beyond the data directory).
if user_exists; then
  say "user $AGENT_USER exists"
else
  "$USERADD" --system --user-group --home-dir "$SYS_DATA" --no-create-home --shell /usr/sbin/nologin \
    --comment "roadside-agent" "$AGENT_USER"
  say "created system user $AGENT_USER"
fi

# 2. Directories: config and data readable by the agent only (0750); releases world-readable, root-owned.
mkdir -p "$ETC_DIR" "$DATA_DIR" "$RELEASES_DIR" "$(dirname "$UNIT_FILE")" "$(dirname "$JOURNALD_DROPIN")" "$(dirname "$WRAPPER")"
chmod 0750 "$ETC_DIR" "$DATA_DIR"
chmod 0755 "$OPT_DIR" "$RELEASES_DIR"
"$CHOWN" "$AGENT_USER:$AGENT_USER" "$ETC_DIR" "$DATA_DIR"

# 3. The release, side by side with any others, and the `current` symlink.
cur=$(current_version)
unpack_release "$release" "$version"
if [ -n "$cur" ] && [ "$cur" != "$RELEASE_VERSION" ]; then
  [ "$RELEASE_EXISTED" -eq 1 ] || rm -rf "${RELEASES_DIR:?}/$RELEASE_VERSION"
  die "release $cur is installed: use update.sh --release $release to switch (with health check and rollback)"
fi
if [ "$RELEASE_EXISTED" -eq 1 ]; then
  [ "$cur" = "$RELEASE_VERSION" ] || die "releases/$RELEASE_VERSION exists but is not current: use update.sh to switch releases"
  say "release $RELEASE_VERSION already installed"
else
  say "unpacked release $RELEASE_VERSION"
fi
set_link current "$RELEASE_VERSION"

# 4. systemd unit. Type=simple: systemd counts the agent as started once its process runs (update.sh checks
# /healthz for real readiness). WatchdogSec=: the agent sends WATCHDOG=1 while NOTIFY_SOCKET/WATCHDOG_USEC are
# set; NotifyAccess=all lets a helper child (systemd-notify) send it, since Node has no AF_UNIX datagram socket.
watchdog_lines=
if [ "$watchdog_sec" -gt 0 ]; then
  watchdog_lines="WatchdogSec=${watchdog_sec}s
NotifyAccess=all"
fi
cat >"$UNIT_FILE.tmp" <<EOF
# Installed by roadside-agent firmware-scripts/install.sh; local changes belong in a drop-in:
#   systemctl edit $UNIT
[Unit]
Description=roadside-agent (traffic camera edge agent)
Wants=network-online.target time-sync.target
After=network-online.target time-sync.target
StartLimitIntervalSec=10min
StartLimitBurst=20

[Service]
Type=simple
User=$AGENT_USER
Group=$AGENT_USER
WorkingDirectory=$SYS_DATA
EnvironmentFile=-$SYS_SECRETS
Environment=NODE_ENV=production
# The agent's runtime environment (core/runtime-env.ts AGENT_RUNTIME_ENV; a test keeps the values equal; why and
# what each saves: docs/performance.md): two malloc arenas, blocks of 64 KiB and more always mmapped (returned to
# the system when freed), a 1 MB young generation per V8 isolate, ONNX Runtime's telemetry off; and its V8 flags
# (AGENT_NODE_FLAGS: the interpreter only, ~9 MB less).
Environment=MALLOC_ARENA_MAX=2
Environment=MALLOC_MMAP_THRESHOLD_=65536
Environment=NODE_OPTIONS=--max-semi-space-size=1
Environment=ORT_DISABLE_TELEMETRY=1
ExecStart=$NODE_BIN --lite-mode --no-expose-wasm $SYS_OPT/current/dist/cli/main.js run --config $SYS_CONFIG
Restart=on-failure
RestartSec=5s
# 64 usage, 78 invalid configuration: restarting cannot fix these.
RestartPreventExitStatus=64 78
$watchdog_lines
# SIGTERM to the agent only (it stops its ffmpeg children itself), SIGKILL to everything left after the timeout.
KillMode=mixed
TimeoutStopSec=30s
SyslogIdentifier=$APP
LogRateLimitIntervalSec=30s
LogRateLimitBurst=5000

# Hardening. Not set, on purpose: PrivateDevices (hardware decoders need /dev/dri, /dev/video*, /dev/mpp_service)
# and MemoryDenyWriteExecute (V8's JIT needs writable+executable memory).
NoNewPrivileges=yes
ProtectSystem=strict
# The config directory too: config-apply writes agent.yaml (and agent.yaml.prev) atomically beside it.
ReadWritePaths=$SYS_DATA $SYS_ETC
ProtectHome=yes
PrivateTmp=yes
UMask=0027
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
EOF
mv -f "$UNIT_FILE.tmp" "$UNIT_FILE"
chmod 0644 "$UNIT_FILE"

# 5. journald: bounded, persistent logs that spare the SD card (batched syncs; crit and worse sync at once).
cat >"$JOURNALD_DROPIN" <<EOF
# Installed by roadside-agent firmware-scripts/install.sh
[Journal]
Storage=persistent
SystemMaxUse=200M
SystemKeepFree=1G
SystemMaxFileSize=20M
MaxRetentionSec=1month
SyncIntervalSec=5m
RateLimitIntervalSec=30s
RateLimitBurst=10000
EOF
chmod 0644 "$JOURNALD_DROPIN"

# 6. The CLI on PATH (provision, config check, doctor) always runs the current release.
cat >"$WRAPPER" <<EOF
#!/bin/sh
# Installed by roadside-agent firmware-scripts/install.sh
exec $NODE_BIN $SYS_OPT/current/dist/cli/main.js "\$@"
EOF
chmod 0755 "$WRAPPER"

"$SYSTEMCTL" daemon-reload
"$SYSTEMCTL" restart systemd-journald.service || say "warning: could not restart systemd-journald (drop-in applies at next boot)"
"$SYSTEMCTL" enable "$UNIT"

if [ "$start" -eq 0 ]; then
  say "installed $RELEASE_VERSION (not started: --no-start)"
elif [ -f "$ETC_DIR/agent.yaml" ]; then
  "$SYSTEMCTL" restart "$UNIT"
  say "installed $RELEASE_VERSION and (re)started $UNIT"
else
  say "installed $RELEASE_VERSION. Next: roadside-agent provision ... (see docs/field-guide.md), then: systemctl start $APP"
fi

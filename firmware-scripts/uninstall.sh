#!/usr/bin/env bash
# Removes roadside-agent: stops and disables the service, removes the unit, the journald drop-in, the CLI
# wrapper and every release under /opt/roadside-agent. Keeps the configuration (/etc/roadside-agent) and the
# data (/var/lib/roadside-agent: the outbox with unsent events, evidence) unless --purge is given, which also
# removes them and the system user.
#
#   sudo ./uninstall.sh            # keep config and data
#   sudo ./uninstall.sh --purge    # remove everything
#
# Paths and commands are overridable for tests: see lib.sh (ROOT=, SYSTEMCTL=, USERDEL=, GETENT=).
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

purge=0
while [ $# -gt 0 ]; do
  case $1 in
    --purge) purge=1; shift ;;
    -h | --help) echo "usage: $0 [--purge]"; exit 0 ;;
    *) echo "usage: $0 [--purge]" >&2; exit 64 ;;
  esac
done
require_root

"$SYSTEMCTL" disable --now "$UNIT" || say "warning: could not stop/disable $UNIT (not installed?)"
rm -f "$UNIT_FILE" "$JOURNALD_DROPIN" "$WRAPPER"
"$SYSTEMCTL" daemon-reload || true
"$SYSTEMCTL" reset-failed "$UNIT" 2>/dev/null || true
"$SYSTEMCTL" restart systemd-journald.service || true
# Releases are code only; -- after `cd /` so a script running from a release does not hold its directory.
cd /
rm -rf "${OPT_DIR:?}"
say "removed $SYS_OPT, the unit and the journald drop-in"

if [ "$purge" -eq 1 ]; then
  rm -rf "${ETC_DIR:?}" "${DATA_DIR:?}"
  if user_exists; then "$USERDEL" "$AGENT_USER" || say "warning: could not remove user $AGENT_USER"; fi
  say "purged $SYS_ETC, $SYS_DATA and the user $AGENT_USER"
else
  say "kept $SYS_ETC (config, secrets, keys) and $SYS_DATA (outbox, evidence): --purge removes them"
fi

#!/usr/bin/env bash
# Updates roadside-agent to a new release with automatic rollback:
#   1. unpack the release beside the running one (releases/<version>),
#   2. point `current` at it (atomic symlink swap) and restart the service,
#   3. wait until healthcheck.sh passes HEALTH_PASSES times in a row, within --health-timeout seconds,
#   4. on failure, point `current` back at the previous release, restart again, and remove the failed release,
#   5. on success, keep the newest --keep releases (never the current or previous one).
#
#   sudo ./update.sh --release roadside-agent-0.2.0-arm64.tar.gz [--keep 3] [--health-timeout 90]
#   sudo ./update.sh --rollback        # back to the previous release, with the same health check
#
# Exit: 0 updated; 1 failed and rolled back (the previous release is healthy); 2 failed and the rollback is
# unhealthy too (look at journalctl -u roadside-agent); 64 usage.
# Environment: HEALTHCHECK (command, default healthcheck.sh beside this script), HEALTH_INTERVAL (seconds
# between checks, default 2), HEALTH_PASSES (consecutive passes needed, default 3); ROOT=, SYSTEMCTL= etc.: lib.sh.
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

HEALTHCHECK=${HEALTHCHECK:-$SCRIPT_DIR/healthcheck.sh}
HEALTH_INTERVAL=${HEALTH_INTERVAL:-2}
HEALTH_PASSES=${HEALTH_PASSES:-3}

usage() {
  cat <<EOF
usage: $0 --release FILE.tar.gz|DIR [--version V] [--keep N] [--health-timeout S]
       $0 --rollback [--health-timeout S]
  --release         new release tarball (one top-level directory) or unpacked directory
  --version         release version (default: from its package.json)
  --keep            releases kept on disk after a successful update, current included (default 3, minimum 2)
  --health-timeout  seconds the new release has to become healthy (default 90)
  --rollback        switch back to the previous release
EOF
}

release=
version=
keep=3
health_timeout=90
rollback=0
unpacked_now=0
while [ $# -gt 0 ]; do
  case $1 in
    --release) release=${2:?--release needs a value}; shift 2 ;;
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --keep) keep=${2:?--keep needs a value}; shift 2 ;;
    --health-timeout) health_timeout=${2:?--health-timeout needs a value}; shift 2 ;;
    --rollback) rollback=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 64 ;;
  esac
done
if [ "$rollback" -eq 1 ] && [ -n "$release" ]; then usage >&2; exit 64; fi
if [ "$rollback" -eq 0 ] && [ -z "$release" ]; then usage >&2; exit 64; fi
if ! [[ $keep =~ ^[0-9]+$ ]] || [ "$keep" -lt 2 ]; then die "--keep must be a number >= 2"; fi
[[ $health_timeout =~ ^[0-9]+$ ]] || die "--health-timeout must be a whole number of seconds"
require_root

[ -d "$RELEASES_DIR" ] || die "not installed ($RELEASES_DIR missing): run install.sh first"
# One update at a time.
exec 9>"$OPT_DIR/.update.lock"
flock -n 9 || die "another update is running"

old=$(current_version)
orig_previous=$(previous_version)
if [ -z "$old" ] || [ ! -d "$RELEASES_DIR/$old" ]; then die "no current release: run install.sh first"; fi

# The release this script runs from is never pruned while it runs.
self_release=
case $SCRIPT_DIR in "$(cd "$RELEASES_DIR" && pwd -P)"/*) self_release=${SCRIPT_DIR#"$(cd "$RELEASES_DIR" && pwd -P)"/}; self_release=${self_release%%/*} ;; esac

# wait_healthy TIMEOUT: HEALTH_PASSES consecutive passes of the health check before TIMEOUT seconds pass.
wait_healthy() {
  local deadline=$((SECONDS + $1)) passes=0
  while :; do
    if "$HEALTHCHECK" >/dev/null 2>&1 9>&-; then
      passes=$((passes + 1))
      [ "$passes" -ge "$HEALTH_PASSES" ] && return 0
    else
      passes=0
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep "$HEALTH_INTERVAL"
  done
}

prune() {
  local n=0 v prev
  prev=$(previous_version)
  while IFS= read -r v; do
    n=$((n + 1))
    if [ "$v" = "$RELEASE_VERSION" ] || [ "$v" = "$prev" ] || [ "$v" = "$self_release" ]; then continue; fi
    if [ "$n" -gt "$keep" ]; then
      rm -rf "${RELEASES_DIR:?}/$v"
      say "removed old release $v"
    fi
  done < <(list_releases)
}

if [ "$rollback" -eq 1 ]; then
  RELEASE_VERSION=$(previous_version)
  if [ -z "$RELEASE_VERSION" ] || [ ! -d "$RELEASES_DIR/$RELEASE_VERSION" ]; then die "no previous release to roll back to"; fi
  [ "$RELEASE_VERSION" != "$old" ] || die "previous and current release are both $old"
else
  unpack_release "$release" "$version"
  if [ "$RELEASE_EXISTED" -eq 1 ]; then
    [ "$RELEASE_VERSION" != "$old" ] || die "release $old is already the current one"
    say "release $RELEASE_VERSION is already unpacked: switching to it"
  else
    unpacked_now=1
  fi
fi
new=$RELEASE_VERSION

say "switching $old -> $new"
set_link current "$new"
set_link previous "$old"
"$SYSTEMCTL" restart "$UNIT" 9>&- || say "warning: systemctl restart failed"
if wait_healthy "$health_timeout"; then
  say "release $new is healthy"
  if [ "$rollback" -eq 0 ]; then prune; fi
  exit 0
fi

say "release $new did not become healthy within ${health_timeout}s: rolling back to $old"
set_link current "$old"
set_link previous "$new"
"$SYSTEMCTL" restart "$UNIT" 9>&- || say "warning: systemctl restart failed"
if [ "$rollback" -eq 0 ]; then
  if [ -n "$orig_previous" ] && [ -d "$RELEASES_DIR/$orig_previous" ]; then set_link previous "$orig_previous"; else rm -f "$OPT_DIR/previous"; fi
  # A release unpacked by this run goes; one that was already on disk (an older kept release) stays.
  if [ "$unpacked_now" -eq 1 ]; then
    rm -rf "${RELEASES_DIR:?}/$new"
    say "removed the failed release $new"
  fi
fi
if wait_healthy "$health_timeout"; then
  say "rolled back to $old, which is healthy"
  exit 1
fi
say "rolled back to $old, but it is not healthy either: see journalctl -u $APP"
exit 2

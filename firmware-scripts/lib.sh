# shellcheck shell=bash disable=SC2034 # variables used by the scripts that source this file
# Shared by install.sh, update.sh and uninstall.sh (sourced, not run). Every system path and command can be
# overridden from the environment, so the scripts can be tested in a temporary root with stub commands:
#
#   ROOT=/tmp/x        prefix of every path the scripts touch (default: none, i.e. the real system)
#   SYSTEMCTL USERADD USERDEL GETENT CHOWN   commands (default: the real ones)
#   NODE_BIN           Node binary written into the unit and the CLI wrapper (default: `command -v node`)
#   AGENT_USER         system user the agent runs as (default: roadside)
#
# Paths written INTO files (the unit, the wrapper) are the box's own paths, without ROOT.

APP=roadside-agent
UNIT=$APP.service
ROOT=${ROOT:-}
ROOT=${ROOT%/}
AGENT_USER=${AGENT_USER:-roadside}

# The box's paths (what the unit and the agent see).
SYS_ETC=/etc/$APP
SYS_DATA=/var/lib/$APP
SYS_OPT=/opt/$APP
SYS_CONFIG=$SYS_ETC/agent.yaml
SYS_SECRETS=$SYS_ETC/secrets.env

# Where this script writes (ROOT-prefixed).
ETC_DIR=$ROOT$SYS_ETC
DATA_DIR=$ROOT$SYS_DATA
OPT_DIR=$ROOT$SYS_OPT
RELEASES_DIR=$OPT_DIR/releases
UNIT_FILE=$ROOT/etc/systemd/system/$UNIT
JOURNALD_DROPIN=$ROOT/etc/systemd/journald.conf.d/50-$APP.conf
WRAPPER=$ROOT/usr/local/bin/$APP

SYSTEMCTL=${SYSTEMCTL:-systemctl}
USERADD=${USERADD:-useradd}
USERDEL=${USERDEL:-userdel}
GETENT=${GETENT:-getent}
CHOWN=${CHOWN:-chown}
NODE_BIN=${NODE_BIN:-$(command -v node || echo /usr/bin/node)}

SCRIPT_NAME=$(basename "$0" .sh)
say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# Real installs must run as root; a test root (ROOT=...) may not.
require_root() {
  if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then die "run as root (sudo $0 ...)"; fi
}

user_exists() { "$GETENT" passwd "$AGENT_USER" >/dev/null 2>&1; }

# Version of an unpacked release, from its package.json (the first "version" key is the package's own).
release_version() {
  grep -o '"version"[[:space:]]*:[[:space:]]*"[^"]*"' "$1/package.json" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/'
}

valid_version() { [[ $1 =~ ^[0-9A-Za-z][0-9A-Za-z._+-]*$ ]]; }

# Release a symlink points to (its directory name), or nothing.
link_version() {
  local target
  target=$(readlink "$OPT_DIR/$1" 2>/dev/null) || return 0
  basename "$target"
}
current_version() { link_version current; }
previous_version() { link_version previous; }

# set_link NAME VERSION: atomically points $OPT_DIR/NAME at releases/VERSION (relative, so ROOT moves work).
set_link() {
  ln -sfn "releases/$2" "$OPT_DIR/.$1.tmp"
  mv -Tf "$OPT_DIR/.$1.tmp" "$OPT_DIR/$1"
}

# unpack_release SRC [VERSION]: SRC is a .tar.gz (one top-level directory, as `npm pack` makes, or flat) or a
# directory. Unpacks into a staging directory beside the releases, checks it, moves it to releases/VERSION.
# Sets RELEASE_VERSION, and RELEASE_EXISTED=1 (nothing unpacked) if that version is already there: the caller
# decides what that means. Call it plainly, not in an `if`/`||` list, so that errexit stays on inside.
unpack_release() {
  local src=$1 version=${2:-} stage root
  RELEASE_EXISTED=0
  [ -e "$src" ] || die "release not found: $src"
  mkdir -p "$RELEASES_DIR"
  stage=$(mktemp -d "$RELEASES_DIR/.incoming.XXXXXX")
  # shellcheck disable=SC2064 # expand $stage now: the trap must remove this staging directory
  trap "rm -rf '$stage'" EXIT
  if [ -d "$src" ]; then
    cp -a "$src/." "$stage/"
  else
    tar -xzf "$src" -C "$stage" --no-same-owner --no-same-permissions || die "cannot unpack $src"
  fi
  root=$stage
  if [ ! -f "$stage/package.json" ]; then
    local entries=("$stage"/*)
    if [ ${#entries[@]} -eq 1 ] && [ -d "${entries[0]}" ]; then root=${entries[0]}; fi
  fi
  [ -f "$root/package.json" ] || die "$src: no package.json (not a roadside-agent release)"
  [ -f "$root/dist/cli/main.js" ] || die "$src: no dist/cli/main.js (not a built release)"
  [ -d "$root/node_modules" ] || say "warning: $src has no node_modules/: the release must bring its production dependencies"
  [ -n "$version" ] || version=$(release_version "$root")
  valid_version "$version" || die "$src: bad or missing version \"$version\""
  if [ -e "$RELEASES_DIR/$version" ]; then
    rm -rf "$stage"
    trap - EXIT
    RELEASE_VERSION=$version
    RELEASE_EXISTED=1
    return 0
  fi
  chmod -R u+rwX,go+rX,go-w "$root"
  mv "$root" "$RELEASES_DIR/$version"
  rm -rf "$stage"
  trap - EXIT
  touch "$RELEASES_DIR/$version"
  RELEASE_VERSION=$version
}

# Releases, newest first (by the time they were unpacked).
list_releases() {
  [ -d "$RELEASES_DIR" ] || return 0
  find "$RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %f\n' | sort -rn | cut -d' ' -f2-
}

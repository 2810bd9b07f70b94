#!/usr/bin/env bash
# Asks the agent's local status server whether it is healthy: exit 0 on a 2xx answer from /healthz, 1 otherwise
# (connection refused, timeout, 503 ...). Uses curl, else wget, else bash's /dev/tcp (no extra package needed).
#
#   ./healthcheck.sh [URL]        # default http://127.0.0.1:8080/healthz
#
# Environment: HEALTH_URL (default URL), HEALTHCHECK_TIMEOUT (seconds per request, default 5),
# HEALTHCHECK_CLIENT (auto|curl|wget|tcp, default auto), HEALTHCHECK_QUIET=1 (no message).
# The /dev/tcp client speaks plain HTTP only; a token-protected status server needs curl or wget with a header,
# which this script does not send (the status server stays on loopback without a token by default).
set -euo pipefail

url=${1:-${HEALTH_URL:-http://127.0.0.1:8080/healthz}}
timeout_s=${HEALTHCHECK_TIMEOUT:-5}
client=${HEALTHCHECK_CLIENT:-auto}

report() { [ "${HEALTHCHECK_QUIET:-0}" = 1 ] || printf 'healthcheck: %s\n' "$*" >&2; }

# Internal: `healthcheck.sh __tcp HOST PORT PATH` does one HTTP/1.0 GET and prints the status code.
if [ "${1:-}" = __tcp ]; then
  host=$2 port=$3 path=$4
  exec 3<>"/dev/tcp/$host/$port"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
  IFS=' ' read -r _proto code _rest <&3 || exit 1
  printf '%s\n' "$code"
  exit 0
fi

if [ "$client" = auto ]; then
  if command -v curl >/dev/null 2>&1; then client=curl
  elif command -v wget >/dev/null 2>&1; then client=wget
  else client=tcp
  fi
fi

case $client in
  curl)
    if code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time "$timeout_s" "$url" 2>/dev/null); then :; else code=000; fi
    ;;
  wget)
    # wget exits 8 on an HTTP error status; -S prints the status line on stderr.
    if out=$(wget -q -S -O /dev/null -T "$timeout_s" -t 1 "$url" 2>&1); then :; fi
    code=$(printf '%s\n' "$out" | sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' | tail -n 1)
    code=${code:-000}
    ;;
  tcp)
    [[ $url =~ ^http://([^/:]+)(:([0-9]+))?(/.*)?$ ]] || { report "unhealthy: the tcp client only speaks http:// ($url)"; exit 1; }
    host=${BASH_REMATCH[1]} port=${BASH_REMATCH[3]:-80} path=${BASH_REMATCH[4]:-/}
    if code=$(timeout "$timeout_s" bash "${BASH_SOURCE[0]}" __tcp "$host" "$port" "$path" 2>/dev/null); then :; else code=000; fi
    code=${code//$'\r'/}
    ;;
  *)
    report "unknown HEALTHCHECK_CLIENT \"$client\" (auto, curl, wget or tcp)"
    exit 1
    ;;
esac

if [[ $code =~ ^2[0-9][0-9]$ ]]; then
  report "healthy ($code from $url via $client)"
  exit 0
fi
if [ "$code" = 000 ]; then report "unhealthy: no answer from $url via $client"; else report "unhealthy: $code from $url via $client"; fi
exit 1

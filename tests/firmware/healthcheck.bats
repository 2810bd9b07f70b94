#!/usr/bin/env bats
# firmware-scripts/healthcheck.sh with each HTTP client against a real local server.

load helpers

setup_file() {
  AGENT_PORT=$(free_port)
  export AGENT_PORT
  node "$BATS_TEST_DIRNAME/fake-agent.js" </dev/null >/dev/null 2>&1 3>&- &
  echo $! >"$BATS_FILE_TMPDIR/server.pid"
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$AGENT_PORT/healthz" && break; sleep 0.1; done
  CLOSED_PORT=$(free_port)
  export CLOSED_PORT
}
teardown_file() { kill "$(cat "$BATS_FILE_TMPDIR/server.pid")" 2>/dev/null || true; }

check_client() {
  local client=$1
  HEALTHCHECK_CLIENT=$client run "$SCRIPTS/healthcheck.sh" "http://127.0.0.1:$AGENT_PORT/healthz"
  echo "$client healthy: $output"
  [ "$status" -eq 0 ]
  HEALTHCHECK_CLIENT=$client run "$SCRIPTS/healthcheck.sh" "http://127.0.0.1:$AGENT_PORT/sick"
  echo "$client sick: $output"
  [ "$status" -eq 1 ]
  [[ $output == *503* ]]
  HEALTHCHECK_CLIENT=$client HEALTHCHECK_TIMEOUT=2 run "$SCRIPTS/healthcheck.sh" "http://127.0.0.1:$CLOSED_PORT/healthz"
  echo "$client closed: $output"
  [ "$status" -eq 1 ]
}

@test "healthcheck with curl: 200 is healthy, 503 and no server are not" { check_client curl; }
@test "healthcheck with wget: 200 is healthy, 503 and no server are not" { check_client wget; }
@test "healthcheck with bash /dev/tcp: 200 is healthy, 503 and no server are not" { check_client tcp; }

@test "healthcheck defaults to 127.0.0.1:8080/healthz and takes HEALTH_URL" {
  grep -q 'http://127.0.0.1:8080/healthz' "$SCRIPTS/healthcheck.sh"
  HEALTH_URL="http://127.0.0.1:$AGENT_PORT/healthz" run "$SCRIPTS/healthcheck.sh"
  [ "$status" -eq 0 ]
}

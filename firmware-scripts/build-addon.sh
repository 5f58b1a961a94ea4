#!/usr/bin/env bash
# Builds the AF_PACKET addon (native/af_packet.c) with node-gyp for this machine and, with
# Debian's gcc-aarch64-linux-gnu, for linux-arm64, and puts both in prebuilds/<platform>-<arch>/
# (committed; the agent bundle ships the one for its target as ./af_packet.node).
#
# Each build runs in a scratch copy of native/ and binding.gyp, so build/ (the npm install
# build used during development) is left alone. The addon uses only Node-API version 8, so
# one binary serves Node 20 and later.
#
# Usage: firmware-scripts/build-addon.sh [native|arm64|all]   (default: all; only "all"
#        records the source checksums in prebuilds/SOURCES.sha256)
# Env:   NODEDIR  folder with include/node (default: npm's nodedir, else /usr)
#        CROSS    cross-compiler prefix for arm64 (default: aarch64-linux-gnu-)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
what=${1:-all}
NODEDIR=${NODEDIR:-$(npm config get nodedir 2>/dev/null || true)}
if [ -z "$NODEDIR" ] || [ "$NODEDIR" = undefined ] || [ "$NODEDIR" = null ]; then NODEDIR=/usr; fi
CROSS=${CROSS:-aarch64-linux-gnu-}
GYP="$root/node_modules/.bin/node-gyp"
[ -x "$GYP" ] || { echo "Cannot build the addon: $GYP is missing; run npm ci first" >&2; exit 1; }
[ -f "$NODEDIR/include/node/node_api.h" ] || { echo "Cannot build the addon: no Node headers in $NODEDIR/include/node (set NODEDIR)" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# build <platform-arch> <node-gyp arch> <strip tool> [env assignments...]
build() {
  local target=$1 arch=$2 strip=$3; shift 3
  local dir="$scratch/$target"
  mkdir -p "$dir"
  cp -r native binding.gyp "$dir/"
  (cd "$dir" && env "$@" "$GYP" rebuild --arch="$arch" --nodedir="$NODEDIR" --loglevel=warn)
  mkdir -p "prebuilds/$target"
  "$strip" --strip-unneeded -o "prebuilds/$target/af_packet.node" "$dir/build/Release/af_packet.node"
  file "prebuilds/$target/af_packet.node"
}

host_arch=$(node -p process.arch)
if [ "$what" = native ] || [ "$what" = all ]; then
  build "linux-$host_arch" "$host_arch" strip
fi
if [ "$what" = all ]; then
  # Which source the committed prebuilds were built from; a unit test compares it.
  sha256sum native/af_packet.c binding.gyp > prebuilds/SOURCES.sha256
fi
if [ "$what" = arm64 ] || [ "$what" = all ]; then
  command -v "${CROSS}gcc" >/dev/null || { echo "Cannot cross-build for arm64: ${CROSS}gcc not found (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 1; }
  # The addon is plain C: the C compiler also links it, so no aarch64 g++ is needed.
  build linux-arm64 arm64 "${CROSS}strip" CC="${CROSS}gcc" CXX="${CROSS}gcc" LINK="${CROSS}gcc" AR="${CROSS}ar"
  file "prebuilds/linux-arm64/af_packet.node" | grep -q 'ARM aarch64' \
    || { echo "Cannot verify the arm64 addon: file(1) does not report ARM aarch64" >&2; exit 1; }
fi

#!/usr/bin/env bash
# Builds the .deb packages the Debian way (dpkg-buildpackage, debhelper 13)
# and a local apt repository of them.
#   packaging/build-deb.sh [OUT]        (default target/deb)
# Env: AZTEC_PROVER_BIN_DIR  binaries already built (default: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(realpath -m "${1:-target/deb}")
BIN_DIR=${AZTEC_PROVER_BIN_DIR:-}
if [ -z "$BIN_DIR" ]; then
  echo "build-deb: cargo build --release (the binary and both backends)"
  cargo build --release --locked --workspace
  BIN_DIR=$ROOT/target/release
fi
BIN_DIR=$(realpath "$BIN_DIR")
for f in aztec-prover libaztec_backend_cpu.so libaztec_backend_wgpu.so; do
  [ -f "$BIN_DIR/$f" ] || { echo "build-deb: $BIN_DIR/$f is missing" >&2; exit 1; }
done
VERSION=$(dpkg-parsechangelog -l debian/changelog -S Version)
SRC=$OUT/src/aztec-prover-$VERSION
rm -rf "$OUT" && mkdir -p "$SRC"
cp -a debian systemd etc "$SRC/"
mkdir -p "$SRC/packaging" && cp -a packaging/monitoring "$SRC/packaging/"
( cd "$SRC" && AZTEC_PROVER_BIN_DIR=$BIN_DIR dpkg-buildpackage -b -us -uc -d >"$OUT/build.log" 2>&1 ) \
  || { tail -30 "$OUT/build.log"; exit 1; }
mkdir -p "$OUT/repo"
mv "$OUT"/src/*.deb "$OUT/repo/"
( cd "$OUT/repo" && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null && gzip -kf Packages )
if command -v lintian >/dev/null 2>&1; then
  echo "build-deb: lintian (errors and warnings fail; overrides in debian/*.lintian-overrides)"
  lint=0; out=$(lintian --fail-on error,warning "$OUT"/repo/*.deb 2>&1) || lint=$?
  grep -v "running with root privileges" <<<"$out" || true
  [ "$lint" -eq 0 ] || { echo "build-deb: lintian found errors or warnings" >&2; exit 1; }
fi
echo "build-deb: packages in $OUT/repo (an apt source: deb [trusted=yes] file:$OUT/repo ./)"
ls -l "$OUT/repo"

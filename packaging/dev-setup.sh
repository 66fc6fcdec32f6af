#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test
# aztec-prover from source. Idempotent: installs only what is missing.
# Used by README's two commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# apt packages: compilers for the C parts (LMDB), the systemd and D-Bus
# tools the tests drive (systemd-socket-activate, busctl, dbus-daemon,
# systemd-analyze), curl for health checks, and Mesa's lavapipe (CPU
# Vulkan) with the Vulkan loader for the wgpu backend's tests.
# The .deb test (tests/deb.rs) builds the packages the Debian way, runs
# lintian, and boots a Debian 12 container with systemd-nspawn.
APT_PACKAGES=(build-essential pkg-config ca-certificates curl git dbus systemd mesa-vulkan-drivers libvulkan1
  debhelper dpkg-dev fakeroot lintian debootstrap systemd-container zstd
  prometheus)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "dev-setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node.js for the L1 tools: solc-js compiles the contracts, and the npm
# package of anvil (the L1 devnet node) is the simplest way to get it.
if ! command -v npm >/dev/null 2>&1; then
  echo "dev-setup: installing nodejs and npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
L1_TOOLS=daemons/l1/node_modules
if [ ! -x "$L1_TOOLS/@foundry-rs/anvil-linux-amd64/bin/anvil" ] || [ ! -d "$L1_TOOLS/solc" ]; then
  echo "dev-setup: installing anvil and solc-js (npm, daemons/l1)"
  npm ci --prefix daemons/l1 --no-audit --no-fund --loglevel=error
fi

# Aztec's own prover client (@aztec/prover-client 4.1.2, pinned in
# tests/aztec/package-lock.json): tests/aztec.rs drives our broker with its
# broker client, agent and node facade. Install scripts are skipped: its
# native parts (bb.js, LMDB) do not load on Debian 12 and are not needed.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)'; then
  echo "dev-setup: Node.js $(node --version) is older than 20.10, which Aztec's prover client needs (tests/aztec.rs will say so); install Node.js 20 (e.g. from NodeSource)" >&2
fi
AZTEC_CLIENT=tests/aztec/node_modules/@aztec/prover-client/package.json
if [ ! -f "$AZTEC_CLIENT" ]; then
  echo "dev-setup: installing Aztec's prover client 4.1.2 (npm, tests/aztec)"
  # `npm install` with the committed lock installs exactly the locked tree;
  # `npm ci` refuses this lock, whose optional native packages for other
  # platforms (macOS, Windows builds of a KZG library) the registry lacks.
  npm install --prefix tests/aztec --ignore-scripts --no-save --no-audit --no-fund --loglevel=error
fi

# Rust toolchain and the test runner.
if ! command -v cargo >/dev/null 2>&1; then
  echo "dev-setup: cargo is missing; install Rust (https://rustup.rs) and rerun" >&2
  exit 1
fi
# CI checks formatting and lints before the tests.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    echo "dev-setup: installing rustfmt and clippy"
    rustup component add rustfmt clippy
  else
    echo "dev-setup: cargo fmt and cargo clippy are missing; install the rustfmt and clippy components" >&2
    exit 1
  fi
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "dev-setup: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
echo "dev-setup: ready"

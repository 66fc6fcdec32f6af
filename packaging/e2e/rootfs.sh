#!/usr/bin/env bash
# A cached Debian 12 rootfs that boots under systemd-nspawn --boot, with what
# the package and the in-guest checks need preinstalled (apt then installs
# offline from the local repository).
#   packaging/e2e/rootfs.sh DIR
set -euo pipefail
ROOT=$1
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit} /^deb /{print $2; exit}' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
INCLUDE=systemd,systemd-sysv,dbus,ca-certificates,curl,util-linux,libvulkan1
rm -rf "$ROOT"
debootstrap --variant=minbase --include=$INCLUDE bookworm "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 \
  || { tail -20 "$ROOT.log"; exit 1; }
echo aztec-prover-e2e > "$ROOT/etc/hostname"
rm -f "$ROOT/etc/systemd/system/getty.target.wants/"* 2>/dev/null || true
chroot "$ROOT" apt-get clean

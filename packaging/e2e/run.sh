#!/usr/bin/env bash
# End-to-end test of the .deb under a real booted systemd: boots a throw-away
# overlay of a cached Debian 12 rootfs with `systemd-nspawn --boot` (PID 1 of
# this machine need not be systemd) and runs in-guest.sh inside it.
#   packaging/e2e/run.sh [REPO]     (default target/deb/repo, from build-deb.sh)
# Env: AZTEC_PROVER_E2E_CACHE  rootfs cache (default ~/.cache/aztec-prover/e2e)
# Prints the in-guest checks and "N passed, M failed"; exits 1 on a failed
# check and 77 when this machine cannot boot a container (not root, no
# systemd-nspawn or debootstrap, no overlayfs, no Debian mirror).
set -euo pipefail
cannot() { echo "e2e: cannot run here: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || cannot "needs root (mount, systemd-nspawn)"
for t in systemd-nspawn debootstrap nsenter; do
  command -v $t >/dev/null 2>&1 || cannot "$t is missing (apt install systemd-container debootstrap)"
done
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(realpath "${1:-$HERE/../../target/deb/repo}")
CACHE=${AZTEC_PROVER_E2E_CACHE:-$HOME/.cache/aztec-prover/e2e}
T0=$(date +%s.%N); el(){ awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{printf "%.1f", a-b}'; }

KEY=$(sha256sum "$HERE/rootfs.sh" | cut -c1-16)
ROOTFS=$CACHE/rootfs-$KEY
mkdir -p "$CACHE"
if [ ! -f "$ROOTFS.done" ]; then
  echo "e2e: building the Debian 12 rootfs (once; cached in $CACHE)"
  "$HERE/rootfs.sh" "$ROOTFS" || cannot "debootstrap of Debian 12 failed (see $ROOTFS.log)"
  touch "$ROOTFS.done"
fi
echo "e2e: rootfs ready after $(el) s"

NAME=aztec-prover-e2e-$$
WORK=$(mktemp -d /var/tmp/aztec-prover-e2e.XXXXXX)
mkdir -p "$WORK/upper" "$WORK/ovl" "$WORK/root" "$WORK/shared"
mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$WORK/upper,workdir=$WORK/ovl" "$WORK/root" \
  || { rm -rf "$WORK"; cannot "overlayfs mount failed"; }
cp -a "$REPO" "$WORK/shared/repo"
cp "$HERE/in-guest.sh" "$WORK/shared/"

setsid systemd-nspawn -D "$WORK/root" --boot --register=no --keep-unit -M "$NAME" \
  --console=pipe --bind="$WORK/shared:/srv/shared" </dev/null >"$WORK/console.log" 2>&1 &
NSPAWN=$!
cleanup() {
  kill -0 $NSPAWN 2>/dev/null && kill -TERM $NSPAWN 2>/dev/null
  for _ in $(seq 50); do kill -0 $NSPAWN 2>/dev/null || break; sleep 0.2; done
  kill -KILL $NSPAWN 2>/dev/null || true
  mountpoint -q "$WORK/root" && umount "$WORK/root"
  rm -rf "$WORK" "/run/systemd/nspawn/propagate/$NAME"
}
trap cleanup EXIT
LEADER=
for _ in $(seq 100); do LEADER=$(pgrep -P $NSPAWN -x systemd || true); [ -n "$LEADER" ] && break; sleep 0.1; done
[ -n "$LEADER" ] || { cat "$WORK/console.log"; cannot "the container did not boot"; }
IN=(nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb)
for _ in $(seq 300); do "${IN[@]}" test -S /run/systemd/private 2>/dev/null && break; sleep 0.1; done
"${IN[@]}" systemctl is-system-running --wait >/dev/null 2>&1 || true
echo "e2e: booted after $(el) s"
rc=0
"${IN[@]}" bash /srv/shared/in-guest.sh || rc=$?
"${IN[@]}" systemctl poweroff >/dev/null 2>&1 || true
for _ in $(seq 100); do kill -0 $NSPAWN 2>/dev/null || break; sleep 0.1; done
echo "e2e: done after $(el) s"
exit $rc

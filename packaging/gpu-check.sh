#!/usr/bin/env bash
# Checks and times the wgpu backend on a GPU machine from binaries built
# elsewhere (a GPU box without a toolchain, or without internet):
#
#   packaging/gpu-check.sh pack DIR   # here: build, and put what the check needs in DIR
#   DIR/gpu-check.sh run              # there: kernel tests on that GPU, then the bench table and a profile
#   DIR/gpu-check.sh sweep            # there: only the MSM tuning sweep (the end of `run`)
#
# DIR holds the two backend libraries, the bench binary and the kernel test
# binary (about 20 MB). `run` prints the adapter, runs every kernel test
# against arkworks on the GPU wgpu picks (WGPU_BACKEND and
# AZTEC_PROVER_WGPU_ADAPTER choose another), then `bench kernels` at 2^16 to
# 2^22 against arkworks and the CPU backend (G2 on the GPU), then a
# per-kernel profile of one MSM of 2^20 points, and the same MSM with the
# narrow (13-bit) field layout for comparison with the default wide one,
# and last a sweep of the MSM's tuning at 2^20 (window bits : buckets per
# bucket_sums thread; "-" is the default) to pick the device's best.
# GPU_CHECK_SIZES, GPU_CHECK_REPS and GPU_CHECK_THREADS change the table
# (defaults 16,18,20,22, 5, and every core); GPU_CHECK_SWEEP the sweep.
set -euo pipefail

pack() {
  local dir
  dir=$(realpath -m "$1")
  cd "$(dirname "$0")/.."
  cargo build --release -p aztec-backend-cpu -p aztec-backend-wgpu --lib --example bench_kernels
  local test_bin
  test_bin=$(cargo test --release -p aztec-backend-wgpu --test kernels --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*kernels[^"]*\)".*/\1/p' | tail -1)
  if [ -z "$test_bin" ]; then
    echo "gpu-check: the kernel test binary was not built" >&2
    exit 1
  fi
  mkdir -p "$dir/deps"
  cp target/release/libaztec_backend_cpu.so target/release/libaztec_backend_wgpu.so \
    target/release/examples/bench_kernels "$dir/"
  # The ABI test looks for the library one folder above the test binary.
  cp "$test_bin" "$dir/deps/kernels"
  cp packaging/gpu-check.sh "$dir/"
  echo "gpu-check: packed into $dir ($(du -sh "$dir" | cut -f1)); there, run: $dir/gpu-check.sh run"
}

run() {
  cd "$(dirname "$0")"
  export AZTEC_PROVER_BACKEND_DIR=$PWD
  local sizes=${GPU_CHECK_SIZES:-16,18,20,22} reps=${GPU_CHECK_REPS:-5}
  local threads=${GPU_CHECK_THREADS:-$(nproc)}
  echo "== kernel tests against arkworks"
  # One test at a time: the child-process tests start GPUs of their own.
  ./deps/kernels --test-threads 1
  echo "== bench kernels ($sizes, median of $reps, $threads threads)"
  ./bench_kernels "$sizes" msm_g1,msm_g1_prepared,msm_g2,ntt "$reps" "$threads"
  echo "== profile of one MSM of 2^20 points (AZTEC_PROVER_WGPU_TRACE)"
  AZTEC_PROVER_WGPU_TRACE=1 ./bench_kernels 20 msm_g1_prepared 2 "$threads" 2>&1 | grep -E "trace|msm|limbs"
  echo "== the narrow field layout (AZTEC_PROVER_WGPU_LIMBS=13), 2^20 and 2^22"
  AZTEC_PROVER_WGPU_LIMBS=13 ./bench_kernels 20,22 msm_g1_prepared,ntt 3 "$threads"
  sweep
}

# The MSM at 2^GPU_CHECK_SWEEP_LOG (default 20) under each tuning of
# GPU_CHECK_SWEEP ("window:segment" pairs, "-" for the default).
sweep() {
  cd "$(dirname "$0")"
  export AZTEC_PROVER_BACKEND_DIR=$PWD
  local threads=${GPU_CHECK_THREADS:-$(nproc)} log=${GPU_CHECK_SWEEP_LOG:-20}
  local points=${GPU_CHECK_SWEEP:-"-:- -:8 -:16 -:64 15:- 15:16 17:- 17:16"}
  echo "== MSM tuning at 2^$log, median of 3 (AZTEC_PROVER_WGPU_WINDOW:AZTEC_PROVER_WGPU_SEGMENT)"
  local point window segment out row
  for point in $points; do
    window=${point%%:*}
    segment=${point##*:}
    [ "$window" = - ] && window=
    [ "$segment" = - ] && segment=
    out=$(AZTEC_PROVER_WGPU_WINDOW=$window AZTEC_PROVER_WGPU_SEGMENT=$segment \
      ./bench_kernels "$log" msm_g1_prepared 3 "$threads" 2>&1 || true)
    row=$(grep '^msm_g1_prepared' <<<"$out" || true)
    # The row, or why there is none (the last line said).
    printf '%-8s %s\n' "$point" "${row:-$(tail -n 1 <<<"$out")}"
  done
}

case "${1:-}" in
  pack) pack "${2:?usage: gpu-check.sh pack DIR}" ;;
  run) run ;;
  sweep) sweep ;;
  *)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

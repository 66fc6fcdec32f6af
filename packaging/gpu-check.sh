#!/usr/bin/env bash
# Checks and times the wgpu backend on a GPU machine from binaries built
# elsewhere (a GPU box without a toolchain, or without internet):
#
#   packaging/gpu-check.sh pack DIR   # here: build, and put what the check needs in DIR
#   DIR/gpu-check.sh run              # there: every measurement below, in one go
#   DIR/gpu-check.sh sweep            # there: only the MSM tuning sweep
#   DIR/gpu-check.sh split            # there: only transfers against kernels per size
#   DIR/gpu-check.sh prove            # there: only the production proof, wgpu against cpu
#   DIR/gpu-check.sh cpu              # there: the CPU backend alone on every host core
#
# DIR holds the two backend libraries, the kernel benches (bench_gpu_kernels:
# wgpu against the CPU backend; bench_kernels: the CPU backend on one path
# against arkworks and halo2curves), the prove bench and the kernel test
# binary (about 25 MB). `run` prints the adapter, runs every
# kernel test against arkworks on the GPU wgpu picks (WGPU_BACKEND and
# AZTEC_PROVER_WGPU_ADAPTER choose another), then `bench kernels` at 2^16 to
# 2^22 against arkworks and the CPU backend (G2 on the GPU, to 2^20), then
# each size's time split into transfers and kernels from the per-dispatch
# trace, the (13-bit) field layout at 2^20 for comparison with the wide one, a
# sweep of the MSM's tuning at 2^20 (window bits : buckets per bucket_sums
# thread; "-" is the default), and last a production base-rollup proof on
# the GPU against the CPU backend on every core, in each way a proof can use
# the GPU (G2 beside or after, the QAP's vectors kept or sent). `cpu` (not
# part of `run`) times the CPU backend alone on every host core, on each
# path the host has (ifma, adx, portable), MSM G1 and NTT against arkworks
# and halo2curves, MSM G2 against arkworks, at 2^16..2^20, then the
# production proof against ark-groth16 on the IFMA and ADX paths.
# GPU_CHECK_SIZES, GPU_CHECK_REPS and GPU_CHECK_THREADS change the table
# (defaults 16,18,20,22, 5, and every core); GPU_CHECK_SWEEP the sweep;
# GPU_CHECK_TEST_TIMEOUT bounds the kernel tests (seconds, default 300).
set -euo pipefail

# Where this script and the packed binaries are (each command runs there).
here=$(cd "$(dirname "$0")" && pwd)

# The host's cores, CPU model and whether it has AVX-512 IFMA.
host() {
  echo "== host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(grep -o -m1 avx512ifma /proc/cpuinfo || echo 'no avx512ifma')"
}

pack() {
  local dir
  dir=$(realpath -m "$1")
  cd "$(dirname "$0")/.."
  cargo build --release -p aztec-backend-cpu -p aztec-backend-wgpu --lib --example bench_kernels \
    --example bench_gpu_kernels
  cargo build --release -p aztec-prover-rollup --features bench --example bench_prove
  local test_bin
  test_bin=$(cargo test --release -p aztec-backend-wgpu --test kernels --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*kernels[^"]*\)".*/\1/p' | tail -1)
  if [ -z "$test_bin" ]; then
    echo "gpu-check: the kernel test binary was not built" >&2
    exit 1
  fi
  mkdir -p "$dir/deps"
  cp target/release/libaztec_backend_cpu.so target/release/libaztec_backend_wgpu.so \
    target/release/examples/bench_kernels target/release/examples/bench_gpu_kernels \
    target/release/examples/bench_prove "$dir/"
  # The ABI test looks for the library one folder above the test binary.
  cp "$test_bin" "$dir/deps/kernels"
  cp packaging/gpu-check.sh "$dir/"
  echo "gpu-check: packed into $dir ($(du -sh "$dir" | cut -f1)); there, run: $dir/gpu-check.sh run"
}

run() {
  cd "$here"
  export AZTEC_PROVER_BACKEND_DIR=$PWD
  local sizes=${GPU_CHECK_SIZES:-16,18,20,22} reps=${GPU_CHECK_REPS:-5}
  local threads=${GPU_CHECK_THREADS:-$(nproc)}
  local g2_sizes=${sizes%,22}
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  host
  echo "== kernel tests against arkworks"
  # One test at a time: the child-process tests start GPUs of their own.
  timeout "${GPU_CHECK_TEST_TIMEOUT:-300}" ./deps/kernels --test-threads 1 ||
    echo "gpu-check: the kernel tests FAILED or ran out of time (status $?)"
  echo "== bench kernels ($sizes, median of $reps, $threads threads)"
  ./bench_gpu_kernels "$sizes" msm_g1,msm_g1_prepared,ntt,ntt_kept "$reps" "$threads"
  echo "== bench kernels, G2 on the GPU ($g2_sizes, median of 3)"
  ./bench_gpu_kernels "$g2_sizes" msm_g2 3 "$threads"
  split
  echo "== the narrow field layout (AZTEC_PROVER_WGPU_LIMBS=13), 2^20"
  AZTEC_PROVER_WGPU_LIMBS=13 ./bench_gpu_kernels 20 msm_g1_prepared,ntt 3 "$threads"
  sweep
  prove
}

# Each size's last call of each kernel, from the per-dispatch trace
# (AZTEC_PROVER_WGPU_TRACE, every dispatch waited for on its own): host
# copies and their wait (upload), kernels, and the readback (transfers).
split() {
  cd "$here"
  export AZTEC_PROVER_BACKEND_DIR=$PWD
  local sizes=${GPU_CHECK_SIZES:-16,18,20,22} threads=${GPU_CHECK_THREADS:-$(nproc)}
  echo "== transfers and kernels per call (trace of the last of 2 calls; ms)"
  printf '%-16s %6s %10s %10s %10s %10s\n' call elements upload kernels readback other
  AZTEC_PROVER_WGPU_TRACE=1 ./bench_gpu_kernels "$sizes" msm_g1_prepared,ntt 2 "$threads" 2>&1 >/dev/null |
    awk '
      function flush() {
        if (name != "") last[name " " n] = sprintf("%-16s %6s %10.2f %10.2f %10.2f %10.2f", name, "2^" int(log(n) / log(2) + 0.5), up, k, rb, other)
        if (name != "" && !(name " " n in seen)) { seen[name " " n] = 1; order[++count] = name " " n }
      }
      /differs|rror/ { print }
      / call / { flush(); name = $4; n = $6; up = 0; k = 0; rb = 0; other = 0; next }
      /host upload of/ { up += $(NF - 1); next }
      /wgpu trace: uploads / { up += $(NF - 1); next }
      /wgpu trace: readback/ { rb += $(NF - 1); next }
      / threads / { k += $(NF - 1); next }
      /wgpu trace: host / { other += $(NF - 1); next }
      END { flush(); for (i = 1; i <= count; i++) print last[order[i]] }'
}

# The production base-rollup proof on the GPU against the CPU backend
# (and ark-groth16), on every core, median of GPU_CHECK_PROVE_REPS (3).
prove() {
  cd "$here"
  export AZTEC_PROVER_BACKEND_DIR=$PWD
  local threads=${GPU_CHECK_THREADS:-$(nproc)}
  echo "== production base-rollup proof, wgpu against cpu, $threads threads"
  BENCH_PROVE_WAYS=1 ./bench_prove wgpu production base-rollup "${GPU_CHECK_PROVE_REPS:-3}" "$threads"
}

# The CPU backend alone on every host core (GPU_CHECK_THREADS), on each
# path the host has (a path it lacks runs the best it has; the header names
# the path that ran), then the production proof against ark-groth16 on the
# IFMA and ADX paths (GPU_CHECK_CPU_SIZES, default 16,18,20; median of 3).
cpu() {
  cd "$here"
  export AZTEC_PROVER_BACKEND_DIR=$PWD
  local threads=${GPU_CHECK_THREADS:-$(nproc)} sizes=${GPU_CHECK_CPU_SIZES:-16,18,20} path
  host
  for path in ifma adx portable; do
    echo "== CPU backend, $path path, $threads threads ($sizes, median of 3)"
    AZTEC_PROVER_CPU_PATH=$path ./bench_kernels "$sizes" msm_g1,msm_g2,ntt 3 "$threads" ||
      echo "gpu-check: the $path table failed (status $?)"
  done
  for path in ifma adx; do
    echo "== production base-rollup proof, CPU backend on the $path path against ark-groth16, $threads threads"
    AZTEC_PROVER_CPU_PATH=$path ./bench_prove cpu production base-rollup 3 "$threads" ||
      echo "gpu-check: the $path proof failed (status $?)"
  done
}

# The MSM at 2^GPU_CHECK_SWEEP_LOG (default 20) under each tuning of
# GPU_CHECK_SWEEP ("window:segment" pairs, "-" for the default).
sweep() {
  cd "$here"
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
      ./bench_gpu_kernels "$log" msm_g1_prepared 3 "$threads" 2>&1 || true)
    row=$(grep '^msm_g1_prepared' <<<"$out" || true)
    # The row, or why there is none (the last line said).
    printf '%-8s %s\n' "$point" "${row:-$(tail -n 1 <<<"$out")}"
  done
}

case "${1:-}" in
  pack) pack "${2:?usage: gpu-check.sh pack DIR}" ;;
  run) run ;;
  sweep) sweep ;;
  split) split ;;
  prove) prove ;;
  cpu) cpu ;;
  *)
    sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

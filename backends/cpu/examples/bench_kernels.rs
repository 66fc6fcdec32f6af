//! The `bench kernels` table for the CPU backend without the whole CLI, in
//! a release build of this crate alone:
//! `bench_kernels [log sizes, comma-separated] [kernels] [reps] [threads]`,
//! the library found through `AZTEC_PROVER_BACKEND_DIR` (the release
//! directory), the path forced with `AZTEC_PROVER_CPU_PATH`.

use aztec_backend_abi::Backend;
use aztec_backend_abi::bench::{KernelBenchOptions, run};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: usize, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
    let opts = KernelBenchOptions {
        log_sizes: arg(1, "16,18,20")
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        kernels: arg(2, "msm_g1,ntt")
            .split(',')
            .map(str::to_string)
            .collect(),
        reps: arg(3, "3").parse().unwrap_or(3),
        threads: arg(4, "0")
            .parse()
            .ok()
            .filter(|t| *t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        json: std::env::var("BENCH_JSON").is_ok_and(|v| v == "1"),
    };
    let mut cpu = match Backend::load("cpu") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = run(&mut cpu, None, &opts) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

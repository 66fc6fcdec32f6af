//! The `bench kernels` table for the wgpu backend without the whole CLI
//! (a small binary to carry to a GPU machine):
//! `bench_kernels [log sizes, comma-separated] [kernels] [reps] [threads]`,
//! with both backend libraries found through `AZTEC_PROVER_BACKEND_DIR`.

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
        json: false,
    };
    let mut gpu = match Backend::load("wgpu") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut cpu = Backend::load("cpu").ok();
    if let Err(e) = run(&mut gpu, cpu.as_mut(), &opts) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

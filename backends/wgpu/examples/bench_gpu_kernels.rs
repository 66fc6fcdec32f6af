//! The `bench kernels` table for the wgpu backend without the whole CLI
//! (a small binary to carry to a GPU machine):
//! `bench_gpu_kernels [log sizes, comma-separated] [kernels] [reps] [threads]`,
//! with both backend libraries found through `AZTEC_PROVER_BACKEND_DIR`.

use aztec_backend_abi::Backend;
use aztec_backend_abi::bench::{KernelBenchOptions, run};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opts = KernelBenchOptions::from_args(&args);
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

//! The `bench kernels` table for the CPU backend without the whole CLI, in
//! a release build of this crate alone:
//! `bench_kernels [log sizes, comma-separated] [kernels] [reps] [threads]`,
//! the library found through `AZTEC_PROVER_BACKEND_DIR` (the release
//! directory), the path forced with `AZTEC_PROVER_CPU_PATH`.

use aztec_backend_abi::Backend;
use aztec_backend_abi::bench::{KernelBenchOptions, run};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut opts = KernelBenchOptions::from_args(&args);
    opts.json = std::env::var("BENCH_JSON").is_ok_and(|v| v == "1");
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

//! `bench prove` without the whole CLI (a small binary to carry to a GPU
//! machine): `bench_prove [backend] [params] [circuits] [reps] [threads]
//! [other backends]`, the backend libraries found through
//! `AZTEC_PROVER_BACKEND_DIR`. The proof is also made on each of the other
//! backends (comma-separated names or paths; by default `cpu` when the
//! backend is another), from the same key, in the same run. With
//! `BENCH_PROVE_WAYS=1` the backend is also timed in each way a proof can
//! use it (G2 beside or after, vectors kept or sent).

use aztec_backend_abi::Backend;
use aztec_prover_rollup::bench::{ProveBenchOptions, run};
use aztec_zk::CircuitId;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: usize, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
    let fail = |e: String| -> ! {
        eprintln!("bench_prove: {e}");
        std::process::exit(1)
    };
    let params_name = arg(2, "production");
    let params = aztec_zk::RollupParams::preset(&params_name)
        .unwrap_or_else(|| fail(format!("{params_name:?} is not test, devnet or production")));
    let circuits = arg(3, "base-rollup")
        .split(',')
        .map(|s| {
            CircuitId::from_name(s.trim()).unwrap_or_else(|| fail(format!("no circuit {s:?}")))
        })
        .collect();
    let opts = ProveBenchOptions {
        circuits,
        params,
        params_name,
        reps: arg(4, "3").parse().unwrap_or(3),
        threads: arg(5, "0")
            .parse()
            .ok()
            .filter(|t| *t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        json: false,
        ways: std::env::var("BENCH_PROVE_WAYS").is_ok_and(|v| v == "1"),
    };
    let spec = arg(1, "cpu");
    let backend = Backend::load(&spec).unwrap_or_else(|e| fail(e.to_string()));
    let default_others = if backend.info().name == "cpu" {
        ""
    } else {
        "cpu"
    };
    let others: Vec<Backend> = arg(6, default_others)
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Backend::load(s.trim()).unwrap_or_else(|e| fail(e.to_string())))
        .collect();
    if let Err(e) = run(&backend, &others, &opts) {
        fail(e);
    }
}

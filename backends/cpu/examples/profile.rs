//! Runs one kernel repeatedly through the Rust API, for profilers:
//! `cargo run --release --example profile -- msm_g1 20 3`.

// A benchmark binary: a panic is its report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ark_std::rand::{SeedableRng, rngs::StdRng};
use aztec_backend_abi::reference as r;
use aztec_backend_cpu::curve::{G1, G2};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kernel = args.get(1).map(String::as_str).unwrap_or("msm_g1");
    let log_n: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let reps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let n = 1usize << log_n;
    let mut rng = StdRng::seed_from_u64(1);
    let sb = r::encode_fr(&r::sample_fr(n, &mut rng));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    match kernel {
        "msm_g1" => {
            let pb = r::encode_g1(&r::sample_g1(n, &mut rng));
            for _ in 0..reps {
                let t = std::time::Instant::now();
                let mut out = [0u8; 64];
                pool.install(|| {
                    aztec_backend_cpu::msm::msm_bytes::<G1>(&pb, &sb, threads, &mut out)
                })
                .expect("msm");
                println!("msm_g1 2^{log_n}: {:?}", t.elapsed());
            }
        }
        "msm_g2" => {
            let pb = r::encode_g2(&r::sample_g2(n, &mut rng));
            for _ in 0..reps {
                let t = std::time::Instant::now();
                let mut out = [0u8; 128];
                pool.install(|| {
                    aztec_backend_cpu::msm::msm_bytes::<G2>(&pb, &sb, threads, &mut out)
                })
                .expect("msm");
                println!("msm_g2 2^{log_n}: {:?}", t.elapsed());
            }
        }
        _ => {
            let mut data = sb.clone();
            for _ in 0..reps {
                let t = std::time::Instant::now();
                pool.install(|| aztec_backend_cpu::ntt::ntt_bytes(&mut data, log_n, false, None));
                println!("ntt 2^{log_n}: {:?}", t.elapsed());
            }
        }
    }
}

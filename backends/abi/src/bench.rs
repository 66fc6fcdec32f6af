//! `aztec-prover bench kernels`: times a loaded backend's MSM and NTT against
//! arkworks 0.5 (`VariableBaseMSM::msm`, ark-poly's radix-2 domain) in the
//! same process, on the same number of threads, and prints the ratio
//! arkworks/ours. With a baseline backend (the CPU backend when a GPU backend
//! is measured) its time and the ratio baseline/ours are printed too. MSM G1
//! and NTT are also timed with halo2curves 0.10 (its assembly arithmetic,
//! `msm_best`, `best_fft`), the ratio halo2curves/ours beside. Inputs are
//! random; every result is checked against arkworks.

use std::time::Instant;

use ark_std::rand::{SeedableRng, rngs::StdRng};

use crate::Backend;
use crate::reference as r;

/// What to run.
#[derive(Debug, Clone)]
pub struct KernelBenchOptions {
    /// Sizes, as log2.
    pub log_sizes: Vec<u32>,
    /// Repetitions per measurement (the median is reported).
    pub reps: usize,
    /// Threads for both sides.
    pub threads: usize,
    /// Kernels: `msm_g1`, `msm_g1_prepared` (bases prepared in the backend
    /// first, untimed), `msm_g2`, `ntt`, `ntt_kept` (the vector kept in the
    /// backend, on a GPU's device, uploaded before the timing: the NTT
    /// alone, as the prover runs it on a backend with kept vectors).
    pub kernels: Vec<String>,
    /// JSON lines instead of a table.
    pub json: bool,
}

impl KernelBenchOptions {
    /// The options of the small bench binaries:
    /// `[log sizes, comma-separated] [kernels] [reps] [threads]` (`args[0]`
    /// is the program), defaults 16,18,20, msm_g1,ntt, 3 and every core.
    pub fn from_args(args: &[String]) -> KernelBenchOptions {
        let arg = |k: usize, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
        KernelBenchOptions {
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
        }
    }
}

/// One measured row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Kernel name.
    pub kernel: &'static str,
    /// Size (log2).
    pub log_n: u32,
    /// Our median time.
    pub ours_ms: f64,
    /// The reference's median time.
    pub reference_ms: f64,
    /// The baseline backend's median time, when one was given.
    pub baseline_ms: Option<f64>,
    /// halo2curves' median time (MSM G1 and NTT).
    pub halo2curves_ms: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // `reps.max(1)` iterations ran, so `last` is set.
    (median(times), last.unwrap_or_else(|| unreachable!()))
}

/// The root of unity of order `n` arkworks' radix-2 domain uses, encoded.
fn root_of_unity(n: usize) -> Result<Vec<u8>, String> {
    use ark_poly::EvaluationDomain;
    let d = ark_poly::Radix2EvaluationDomain::<ark_bn254::Fr>::new(n)
        .ok_or_else(|| format!("no radix-2 domain of size {n}"))?;
    Ok(r::encode_fr(&[d.group_gen]))
}

/// Runs the benchmark on `backend` (and `baseline`, if given), printing as it
/// goes; returns the rows.
pub fn run(
    backend: &mut Backend,
    mut baseline: Option<&mut Backend>,
    o: &KernelBenchOptions,
) -> Result<Vec<Row>, String> {
    backend
        .configure(o.threads as u32, &[])
        .map_err(|e| e.to_string())?;
    if let Some(b) = baseline.as_deref_mut() {
        b.configure(o.threads as u32, &[])
            .map_err(|e| e.to_string())?;
    }
    let base_name = baseline.as_ref().map(|b| format!("{} ms", b.info().name));
    let detail = backend.refresh_info().detail.clone();
    let path = detail.split(',').next().unwrap_or("").trim().to_string();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(o.threads)
        .build()
        .map_err(|e| format!("cannot build the reference thread pool: {e}"))?;
    let mut rng = StdRng::seed_from_u64(0xbe7c4);
    let mut rows = Vec::new();
    if !o.json {
        println!(
            "backend {} ({detail}) vs arkworks 0.5, {} threads each, median of {} runs",
            backend.info().name,
            o.threads,
            o.reps
        );
        match &base_name {
            None => println!(
                "{:<15} {:>6} {:>12} {:>14} {:>8} {:>14} {:>8}",
                "kernel", "log_n", "ours ms", "arkworks ms", "ratio", "halo2curves ms", "ratio"
            ),
            Some(b) => println!(
                "{:<15} {:>6} {:>12} {:>14} {:>8} {:>14} {:>8} {:>12} {:>8}",
                "kernel",
                "log_n",
                "ours ms",
                "arkworks ms",
                "ratio",
                "halo2curves ms",
                "ratio",
                b,
                "ratio"
            ),
        }
    }
    for &log_n in &o.log_sizes {
        let n = 1usize << log_n;
        let scalars = r::sample_fr(n, &mut rng);
        let sb = r::encode_fr(&scalars);
        for kernel in &o.kernels {
            let row = match kernel.as_str() {
                kind @ ("msm_g1" | "msm_g1_prepared") => {
                    let pts = r::sample_g1(n, &mut rng);
                    let pb = r::encode_g1(&pts);
                    let (ref_ms, want) =
                        time(o.reps, || pool.install(|| r::msm_g1_native(&pts, &scalars)));
                    let want = r::g1_bytes(&want);
                    let h = crate::halo2::Msm::new(&pb, &sb)?;
                    let (h_ms, h_got) = time(o.reps, || pool.install(|| h.run()));
                    if h_got != want {
                        return Err(format!(
                            "halo2curves' msm_g1 2^{log_n} differs from arkworks"
                        ));
                    }
                    let prepared = kind == "msm_g1_prepared";
                    let mut measure = |b: &mut Backend| -> Result<f64, String> {
                        let (ms, got) = if prepared {
                            let bases = b.prepare_g1(&pb).map_err(|e| e.to_string())?;
                            time(o.reps, || bases.msm(&sb))
                        } else {
                            time(o.reps, || b.msm_g1(&pb, &sb))
                        };
                        if got.map_err(|e| e.to_string())? != want {
                            return Err(format!("{kind} 2^{log_n}: result differs from arkworks"));
                        }
                        Ok(ms)
                    };
                    Row {
                        kernel: if prepared {
                            "msm_g1_prepared"
                        } else {
                            "msm_g1"
                        },
                        log_n,
                        ours_ms: measure(backend)?,
                        reference_ms: ref_ms,
                        baseline_ms: baseline.as_deref_mut().map(&mut measure).transpose()?,
                        halo2curves_ms: Some(h_ms),
                    }
                }
                "msm_g2" => {
                    let pts = r::sample_g2(n, &mut rng);
                    let pb = r::encode_g2(&pts);
                    let (ref_ms, want) =
                        time(o.reps, || pool.install(|| r::msm_g2_native(&pts, &scalars)));
                    let want = r::g2_bytes(&want);
                    let mut measure = |b: &mut Backend| -> Result<f64, String> {
                        let (ms, got) = time(o.reps, || b.msm_g2(&pb, &sb));
                        if got.map_err(|e| e.to_string())? != want {
                            return Err(format!("msm_g2 2^{log_n}: result differs from arkworks"));
                        }
                        Ok(ms)
                    };
                    Row {
                        kernel: "msm_g2",
                        log_n,
                        ours_ms: measure(backend)?,
                        reference_ms: ref_ms,
                        baseline_ms: baseline.as_deref_mut().map(&mut measure).transpose()?,
                        halo2curves_ms: None,
                    }
                }
                "ntt" => {
                    let (ref_ms, want) = time(o.reps, || {
                        let mut v = scalars.clone();
                        pool.install(|| r::ntt_native(&mut v, false, None));
                        v
                    });
                    let want = r::encode_fr(&want);
                    let h = crate::halo2::Ntt::new(&sb, &root_of_unity(n)?, log_n)?;
                    let (h_ms, h_got) = time(o.reps, || pool.install(|| h.run()));
                    if crate::halo2::Ntt::bytes(&h_got) != want {
                        return Err(format!("halo2curves' ntt 2^{log_n} differs from arkworks"));
                    }
                    let mut measure = |b: &mut Backend| -> Result<f64, String> {
                        let mut buf = sb.clone();
                        let (ms, got) = time(o.reps, || {
                            buf.copy_from_slice(&sb);
                            b.ntt(&mut buf, log_n, false, None)
                        });
                        got.map_err(|e| e.to_string())?;
                        if buf != want {
                            return Err(format!("ntt 2^{log_n}: result differs from arkworks"));
                        }
                        Ok(ms)
                    };
                    Row {
                        kernel: "ntt",
                        log_n,
                        ours_ms: measure(backend)?,
                        reference_ms: ref_ms,
                        baseline_ms: baseline.as_deref_mut().map(&mut measure).transpose()?,
                        halo2curves_ms: Some(h_ms),
                    }
                }
                "ntt_kept" => {
                    let (ref_ms, want) = time(o.reps, || {
                        let mut v = scalars.clone();
                        pool.install(|| r::ntt_native(&mut v, false, None));
                        v
                    });
                    let want = r::encode_fr(&want);
                    let measure = |b: &mut Backend| -> Result<f64, String> {
                        let kept = b.upload_vec(&sb).map_err(|e| e.to_string())?;
                        kept.ntt(log_n, false, None).map_err(|e| e.to_string())?;
                        if kept.download(0, n).map_err(|e| e.to_string())? != want {
                            return Err(format!(
                                "ntt_kept 2^{log_n}: result differs from arkworks"
                            ));
                        }
                        // Timed on the same vector: its values change, its size does not.
                        let (ms, got) = time(o.reps, || kept.ntt(log_n, false, None));
                        got.map_err(|e| e.to_string())?;
                        Ok(ms)
                    };
                    Row {
                        kernel: "ntt_kept",
                        log_n,
                        ours_ms: measure(backend)?,
                        reference_ms: ref_ms,
                        baseline_ms: baseline.as_deref_mut().map(measure).transpose()?,
                        halo2curves_ms: None,
                    }
                }
                other => {
                    return Err(format!(
                        "unknown kernel {other:?} (msm_g1, msm_g1_prepared, msm_g2, ntt, ntt_kept)"
                    ));
                }
            };
            let ratio = row.reference_ms / row.ours_ms;
            let base = row
                .baseline_ms
                .map(|b| (b, b / row.ours_ms))
                .zip(base_name.as_ref());
            let halo2 = row.halo2curves_ms.map(|h| (h, h / row.ours_ms));
            if o.json {
                let mut extra = base
                    .map(|((b, x), _)| format!(",\"baseline_ms\":{b:.3},\"baseline_ratio\":{x:.3}"))
                    .unwrap_or_default();
                if let Some((h, x)) = halo2 {
                    extra.push_str(&format!(
                        ",\"halo2curves_ms\":{h:.3},\"ratio_halo2curves\":{x:.3}"
                    ));
                }
                println!(
                    "{{\"kernel\":\"{}\",\"log_n\":{},\"ours_ms\":{:.3},\"reference_ms\":{:.3},\"ratio\":{:.3}{extra},\"path\":\"{}\",\"threads\":{}}}",
                    row.kernel, row.log_n, row.ours_ms, row.reference_ms, ratio, path, o.threads
                );
            } else {
                let extra = base
                    .map(|((b, x), _)| format!(" {b:>12.2} {x:>7.2}x"))
                    .unwrap_or_default();
                let h = match halo2 {
                    Some((h, x)) => format!(" {h:>14.2} {x:>7.2}x"),
                    None => format!(" {:>14} {:>8}", "-", "-"),
                };
                println!(
                    "{:<15} {:>6} {:>12.2} {:>14.2} {:>7.2}x{h}{extra}",
                    row.kernel, row.log_n, row.ours_ms, row.reference_ms, ratio
                );
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

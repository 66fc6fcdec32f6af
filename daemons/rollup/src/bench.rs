//! `aztec-prover bench prove`: one circuit, proven by our Groth16 prover on
//! a backend and by ark-groth16's prover, from the same synthesized
//! assignment, on the same threads, in the same run. With other backends
//! (the CPU backend when a GPU backend is measured, or another build of the
//! same one) our prover runs on each too, from the same key and assignment,
//! and its time and ratio are printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_bn254::{Bn254, Fr};
use ark_ff::UniformRand;
use ark_groth16::Groth16;
use aztec_backend_abi::Backend;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::plan::{BlockSpec, plan_epoch};
use crate::world::{World, synthetic_tx};
use aztec_zk::circuits::{CircuitId, Inputs};
use aztec_zk::groth16::verify::verify;
use aztec_zk::groth16::{ProveWay, ProverKey, prove_assignment, prove_assignment_with};
use aztec_zk::keys;
use aztec_zk::params::RollupParams;
use aztec_zk::synth::assign;

/// What to measure.
#[derive(Debug, Clone)]
pub struct ProveBenchOptions {
    /// Circuits.
    pub circuits: Vec<CircuitId>,
    /// Sizes.
    pub params: RollupParams,
    /// Name of the sizes (for the report).
    pub params_name: String,
    /// Repetitions (median reported).
    pub reps: usize,
    /// Threads for both provers.
    pub threads: usize,
    /// One JSON object per line.
    pub json: bool,
    /// Also time the measured backend in each way a proof can use it (G2
    /// beside or after, the QAP's vectors kept or sent), whatever its
    /// capabilities say: what each way is worth on this machine.
    pub ways: bool,
}

/// Our prover on another backend, from the same key and assignment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OtherRow {
    /// Backend name and path.
    pub backend: String,
    /// Median.
    pub ms: f64,
    /// `ms / ours_ms`: how many times faster the measured backend is.
    pub ratio: f64,
}

/// Named medians as rows against `ours_ms`.
fn against(medians: Vec<(String, f64)>, ours_ms: f64) -> Vec<OtherRow> {
    medians
        .into_iter()
        .map(|(backend, ms)| OtherRow {
            backend,
            ms,
            ratio: ms / ours_ms,
        })
        .collect()
}

/// One circuit's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProveRow {
    /// Circuit name.
    pub circuit: String,
    /// Sizes preset.
    pub params: String,
    /// Constraints.
    pub constraints: usize,
    /// Public inputs.
    pub public_inputs: usize,
    /// Key generation (ark-groth16 setup), once.
    pub setup_ms: f64,
    /// Synthesizing the witness (median).
    pub witness_ms: f64,
    /// Our prover from the assignment (median): QAP and MSMs on the backend.
    pub ours_ms: f64,
    /// Our first proof, which prepares the key's bases in the backend (and
    /// on a GPU builds its programs): what an agent's first job pays.
    pub first_ms: f64,
    /// of which QAP (constraint evaluation and NTTs).
    pub ours_qap_ms: f64,
    /// of which MSMs.
    pub ours_msm_ms: f64,
    /// ark-groth16 from the same assignment (median).
    pub reference_ms: f64,
    /// `reference_ms / ours_ms`.
    pub ratio: f64,
    /// Our prover on each other backend given (median).
    pub others: Vec<OtherRow>,
    /// With [`ProveBenchOptions::ways`], the measured backend in each way
    /// (named `g2 beside|after, vectors kept|sent`).
    pub ways: Vec<OtherRow>,
    /// Verifying one proof.
    pub verify_ms: f64,
    /// Peak resident memory of the process after our prover ran (keys, matrices, one proof).
    pub peak_rss_ours_mib: f64,
    /// Peak resident memory after ark-groth16 ran too.
    pub peak_rss_total_mib: f64,
    /// Backend name and path.
    pub backend: String,
    /// Threads.
    pub threads: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Peak resident set size of this process (VmHWM), MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Realistic inputs of `circuit`: the first job of that circuit in an epoch
/// of two blocks of full synthetic transactions.
pub fn sample_inputs(circuit: CircuitId, params: &RollupParams) -> Result<Inputs, String> {
    let mut rng = StdRng::seed_from_u64(42);
    let mut world = World::genesis(params.clone());
    let mut scratch = world.clone();
    let mut blocks = Vec::new();
    // Two blocks have every circuit but a block merge (their roots are the
    // root rollup's children); three have one.
    let count = if circuit == CircuitId::BlockMerge {
        3
    } else {
        2
    };
    for b in 0..count {
        let mut txs = Vec::new();
        for _ in 0..params.txs_per_block() {
            let tx = synthetic_tx(&scratch, &mut rng).map_err(|e| e.to_string())?;
            scratch.apply_tx(&tx).map_err(|e| e.to_string())?;
            txs.push(tx);
        }
        let messages = (0..params.messages_per_block() as u64)
            .map(|i| aztec_zk::Felt::from_u64(b * 1000 + i + 1))
            .collect();
        blocks.push(BlockSpec {
            txs,
            messages,
            slot: 100 + b,
        });
    }
    let plan = plan_epoch(&mut world, 1, aztec_zk::Felt::from_u64(1), &blocks)
        .map_err(|e| e.to_string())?;
    if let Some(j) = plan.jobs.iter().find(|j| j.circuit() == circuit) {
        return Ok(j.inputs.clone());
    }
    // With two transactions per block there are no tx merges: merge a block's two halves.
    plan.jobs
        .iter()
        .find_map(|j| match (&j.inputs, circuit) {
            (Inputs::BlockRoot(b), CircuitId::MergeRollup) => Some(Inputs::MergeRollup(
                aztec_zk::circuits::merge::MergeInputs {
                    left: b.left,
                    right: b.right,
                },
            )),
            _ => None,
        })
        .ok_or_else(|| format!("an epoch of {count} blocks has no {circuit}"))
}

/// A backend's name and file, as the report prints it.
fn label(b: &Backend) -> String {
    format!("{} ({})", b.info().name, b.info().path.display())
}

/// Runs the benchmark, printing as it goes; with `others`, our prover on
/// each of those backends too.
pub fn run(
    backend: &Backend,
    others: &[Backend],
    o: &ProveBenchOptions,
) -> Result<Vec<ProveRow>, String> {
    for b in std::iter::once(backend).chain(others) {
        b.configure(o.threads as u32, &[])
            .map_err(|e| e.to_string())?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(o.threads)
        .build()
        .map_err(|e| e.to_string())?;
    let info = backend.info();
    if !o.json {
        println!(
            "prove: backend {} ({}), {} threads, sizes {}, {} repetitions, medians",
            info.name,
            info.path.display(),
            o.threads,
            o.params_name,
            o.reps
        );
        for b in others {
            println!("also: our prover on backend {}", label(b));
        }
        println!(
            "{:<20} {:>9} {:>9} {:>10} {:>10} {:>10} {:>7} {:>9} {:>9}",
            "circuit",
            "constr.",
            "setup ms",
            "witness ms",
            "ours ms",
            "ark ms",
            "ratio",
            "verify ms",
            "peak MiB"
        );
    }
    let mut rows = Vec::new();
    for &c in &o.circuits {
        let row = pool.install(|| one(backend, others, c, o))?;
        if o.json {
            println!("{}", serde_json::to_string(&row).unwrap_or_default());
        } else {
            println!(
                "{:<20} {:>9} {:>9.0} {:>10.1} {:>10.1} {:>10.1} {:>6.2}x {:>9.2} {:>9.0}",
                row.circuit,
                row.constraints,
                row.setup_ms,
                row.witness_ms,
                row.ours_ms,
                row.reference_ms,
                row.ratio,
                row.verify_ms,
                row.peak_rss_total_mib
            );
            println!(
                "{:<20} ours = {:.1} ms QAP + {:.1} ms MSM; first proof {:.1} ms; peak RSS after ours {:.0} MiB",
                "", row.ours_qap_ms, row.ours_msm_ms, row.first_ms, row.peak_rss_ours_mib
            );
            for other in &row.others {
                println!(
                    "{:<20} on {}: {:.1} ms ({} is {:.2}x as fast)",
                    "", other.backend, other.ms, row.backend, other.ratio
                );
            }
            for way in &row.ways {
                println!(
                    "{:<20} {} with {}: {:.1} ms ({:.2}x the default way's time)",
                    "",
                    row.backend,
                    way.backend,
                    way.ms,
                    way.ms / row.ours_ms
                );
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn one(
    backend: &Backend,
    others: &[Backend],
    c: CircuitId,
    o: &ProveBenchOptions,
) -> Result<ProveRow, String> {
    let p = &o.params;
    let inputs = sample_inputs(c, p)?;
    let t = Instant::now();
    let g = keys::generate(c, p, &mut keys::seeded_rng("bench", c)).map_err(|e| e.to_string())?;
    let setup_ms = ms(t.elapsed());
    let matrices = Arc::new(g.matrices);
    let key = ProverKey::new(c, p.clone(), &g.pk, matrices.clone()).map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(7);
    let reps = o.reps.max(1);

    let mut witness = Vec::new();
    let mut assignment = None;
    for _ in 0..reps {
        let t = Instant::now();
        let a = assign(p, &inputs).map_err(|e| e.to_string())?;
        witness.push(ms(t.elapsed()));
        assignment = Some(a);
    }
    let a = assignment.ok_or("no assignment")?;

    let (mut ours, mut qap, mut msm) = (Vec::new(), Vec::new(), Vec::new());
    let mut proof = None;
    for _ in 0..reps {
        let t = Instant::now();
        let (pr, tm) = prove_assignment(backend, &key, &a, Fr::rand(&mut rng), Fr::rand(&mut rng))
            .map_err(|e| e.to_string())?;
        ours.push(ms(t.elapsed()));
        qap.push(ms(tm.qap));
        msm.push(ms(tm.msm));
        proof = Some(pr);
    }
    let proof = proof.ok_or("no proof")?;
    let peak_ours = peak_rss_mib();
    let mut other_ms = Vec::new();
    for b in others {
        let mut times = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            let (pr, _) = prove_assignment(b, &key, &a, Fr::rand(&mut rng), Fr::rand(&mut rng))
                .map_err(|e| e.to_string())?;
            times.push(ms(t.elapsed()));
            if !verify(&key.vk, &a.public_inputs(), &pr).map_err(|e| e.to_string())? {
                return Err(format!("{c}: the proof on {} does not verify", label(b)));
            }
        }
        other_ms.push((label(b), median(times)));
    }
    let mut way_ms = Vec::new();
    if o.ways {
        for (g2_beside, kept_vectors) in
            [(false, false), (true, false), (false, true), (true, true)]
        {
            let way = ProveWay {
                g2_beside,
                kept_vectors,
            };
            let mut times = Vec::new();
            for _ in 0..reps {
                let t = Instant::now();
                prove_assignment_with(
                    backend,
                    &key,
                    &a,
                    Fr::rand(&mut rng),
                    Fr::rand(&mut rng),
                    way,
                )
                .map_err(|e| e.to_string())?;
                times.push(ms(t.elapsed()));
            }
            let name = format!(
                "g2 {}, vectors {}",
                if g2_beside { "beside" } else { "after" },
                if kept_vectors { "kept" } else { "sent" }
            );
            way_ms.push((name, median(times)));
        }
    }
    let public = a.public_inputs();
    let t = Instant::now();
    let ok = verify(&key.vk, &public, &proof).map_err(|e| e.to_string())?;
    let verify_ms = ms(t.elapsed());
    if !ok {
        return Err(format!("{c}: our proof does not verify"));
    }

    let mut reference = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let pr = Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
            &g.pk,
            Fr::rand(&mut rng),
            Fr::rand(&mut rng),
            &matrices,
            a.num_instance,
            a.num_constraints,
            &a.full,
        )
        .map_err(|e| e.to_string())?;
        reference.push(ms(t.elapsed()));
        if !verify(&key.vk, &public, &pr).map_err(|e| e.to_string())? {
            return Err(format!("{c}: ark-groth16's proof does not verify"));
        }
    }
    let first_ms = ours.first().copied().unwrap_or(0.0);
    let (ours_ms, reference_ms) = (median(ours), median(reference));
    Ok(ProveRow {
        circuit: c.name().into(),
        params: o.params_name.clone(),
        constraints: matrices.num_constraints,
        public_inputs: public.len(),
        setup_ms,
        witness_ms: median(witness),
        ours_ms,
        first_ms,
        ours_qap_ms: median(qap),
        ours_msm_ms: median(msm),
        reference_ms,
        ratio: reference_ms / ours_ms,
        others: against(other_ms, ours_ms),
        ways: against(way_ms, ours_ms),
        verify_ms,
        peak_rss_ours_mib: peak_ours,
        peak_rss_total_mib: peak_rss_mib(),
        backend: backend.info().name.clone(),
        threads: o.threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bench prove --circuit all` finds inputs of every circuit.
    #[test]
    fn every_circuit_has_sample_inputs() {
        let params = RollupParams::test();
        for c in CircuitId::ALL {
            let inputs = sample_inputs(c, &params).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(inputs.circuit(), c);
        }
    }
}

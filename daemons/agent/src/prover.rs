//! One job, start to end, without I/O: decode the inputs, check they are
//! for the job's circuit, prove (or simulate) on the backend, encode the
//! result. Keys are loaded on first use of each circuit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aztec_backend_abi::Backend;

use crate::metrics::Phases;
use aztec_prover_protocol::JobType;
use aztec_zk::circuits::Inputs;
use aztec_zk::groth16::{ProveError, ProverKey, prove};
use aztec_zk::synth::{SynthError, simulate};
use aztec_zk::wire::{ProofResult, decode_inputs, encode_result};
use aztec_zk::{CircuitId, Felt, RollupParams, keys};

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFailure {
    /// Another attempt (maybe on another agent) may succeed.
    Retryable(String),
    /// The job itself is bad: no agent can prove it.
    Fatal(String),
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobFailure::Retryable(s) | JobFailure::Fatal(s) => f.write_str(s),
        }
    }
}

/// Proves jobs.
pub struct ProverCore {
    params: RollupParams,
    keys_dir: PathBuf,
    real: bool,
    prover_id: Felt,
    keys: Mutex<HashMap<CircuitId, Arc<ProverKey>>>,
}

impl ProverCore {
    /// Reads the circuit sizes from the keys directory.
    pub fn new(keys_dir: PathBuf, real: bool, prover_id: Felt) -> Result<ProverCore, String> {
        let params = keys::read_params(&keys_dir).map_err(|e| {
            format!(
                "{e} (generate keys with `aztec-prover keys generate --out {}`)",
                keys_dir.display()
            )
        })?;
        Ok(ProverCore {
            params,
            keys_dir,
            real,
            prover_id,
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// The circuit sizes.
    pub fn params(&self) -> &RollupParams {
        &self.params
    }

    /// Whether proofs are real.
    pub fn real(&self) -> bool {
        self.real
    }

    fn key(&self, c: CircuitId) -> Result<Arc<ProverKey>, JobFailure> {
        let mut keys = self
            .keys
            .lock()
            .map_err(|_| JobFailure::Retryable("key cache poisoned".into()))?;
        if let Some(k) = keys.get(&c) {
            return Ok(k.clone());
        }
        let t = Instant::now();
        let (header, key) =
            keys::load_prover_key(&self.keys_dir, c, &self.params).map_err(|e| {
                let text = format!("cannot load the {c} proving key: {e}");
                match e {
                    // The files are there but wrong (another setup, other
                    // sizes, corrupt): this agent cannot prove the circuit, and
                    // saying so at once points the operator at the file.
                    keys::KeyError::Invalid { .. } => JobFailure::Fatal(text),
                    _ => JobFailure::Retryable(text),
                }
            })?;
        if header.insecure {
            tracing::warn!(
                "the {c} proving key was derived from a public seed: INSECURE, for devnets only"
            );
        }
        tracing::info!(
            "loaded the {c} proving key ({} constraints) in {} ms",
            key.num_constraints(),
            t.elapsed().as_millis()
        );
        let key = Arc::new(key);
        keys.insert(c, key.clone());
        Ok(key)
    }

    /// Proves (or simulates) a job; returns the encoded result, and for a
    /// real proof where its time went.
    pub fn prove_job(
        &self,
        backend: &Backend,
        job_type: JobType,
        inputs: &[u8],
    ) -> Result<(Vec<u8>, Option<Phases>), JobFailure> {
        let inputs = decode_inputs(inputs).map_err(JobFailure::Fatal)?;
        let circuit = aztec_zk::wire::circuit(job_type);
        if inputs.circuit() != circuit {
            return Err(JobFailure::Fatal(format!(
                "a {job_type} job carries inputs for {}",
                inputs.circuit()
            )));
        }
        if let Inputs::RootRollup(r) = &inputs
            && self.prover_id != Felt::ZERO
            && r.prover_id != self.prover_id
        {
            return Err(JobFailure::Fatal(format!(
                "root rollup for prover {}, this agent proves for {}",
                r.prover_id.to_hex(),
                self.prover_id.to_hex()
            )));
        }
        inputs
            .check_shape(&self.params)
            .map_err(|e| JobFailure::Fatal(e.to_string()))?;
        let mut phases = None;
        let result = if self.real {
            let key = self.key(circuit)?;
            let out =
                prove(backend, &key, &inputs, &mut rand::thread_rng()).map_err(|e| match e {
                    ProveError::Synth(s) => JobFailure::Fatal(s.to_string()),
                    other => JobFailure::Retryable(other.to_string()),
                })?;
            tracing::debug!(
                "{circuit}: witness {} ms, QAP {} ms, MSM {} ms",
                out.timings.witness.as_millis(),
                out.timings.qap.as_millis(),
                out.timings.msm.as_millis()
            );
            // The proof is checked before it leaves (about 3 ms): one that
            // does not verify would only be refused by the node later.
            match aztec_zk::groth16::verify::verify(&key.vk, &out.public_inputs, &out.proof) {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    return Err(JobFailure::Fatal(format!(
                        "the {circuit} proof made with {} does not verify against {}: \
                         the keys are not of one setup, or the backend computes wrong results",
                        keys::key_path(&self.keys_dir, circuit, keys::KeyKind::Proving).display(),
                        keys::key_path(&self.keys_dir, circuit, keys::KeyKind::Verifying).display()
                    )));
                }
            }
            phases = Some(Phases {
                qap: out.timings.qap,
                msm: out.timings.msm,
            });
            ProofResult::real(circuit, out.public_inputs, &out.proof)
        } else {
            let public_inputs = simulate(&self.params, &inputs).map_err(|e| match e {
                SynthError::Synthesis { .. } => JobFailure::Retryable(e.to_string()),
                other => JobFailure::Fatal(other.to_string()),
            })?;
            ProofResult {
                circuit,
                public_inputs,
                proof: Vec::new(),
                simulated: true,
            }
        };
        Ok((encode_result(&result), phases))
    }
}

//! The orchestrator: hands an epoch's job tree to the broker and collects
//! the proofs. Every job's inputs exist once the epoch is re-executed (a
//! parent restates its children's outputs; it does not consume their
//! proofs), so all jobs are enqueued at once and the broker serves them by
//! priority. Job ids are digests of the inputs: a restarted node enqueues
//! the same ids and re-attaches to the jobs already queued or proven.
//! Every returned proof is verified, and the tree's links checked, before
//! anything goes to L1. A result that fails checking (undecodable, for
//! another circuit, simulated where a proof is needed, or a proof that does
//! not verify) is refused, logged with the agent that sent it, and handed
//! back to the broker (`refuseProvingJobResult`), which queues the job
//! again under the same id as a failed attempt, up to its retry limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aztec_prover_protocol::uri::{ProofUri, UriKind};
use aztec_prover_protocol::{
    EnqueueRequest, JobId, JobType, ProvingBrokerApiClient, ProvingJobStatus,
};
use aztec_zk::CircuitId;
use aztec_zk::circuits::links;
use aztec_zk::groth16::VerifyingKey;
use aztec_zk::plan::EpochPlan;
use aztec_zk::wire::{decode_result, encode_inputs, job_type};
use jsonrpsee::http_client::HttpClient;

use crate::epoch::ProvenJob;

/// A result the orchestrator refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The job whose result it was.
    pub job: JobId,
    /// The agent that reported it (as the broker knows it).
    pub agent: String,
    /// What was wrong.
    pub reason: String,
}

/// Progress of an epoch, for logs and progress bars.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Jobs in the tree.
    pub total: usize,
    /// Proven and checked.
    pub proven: usize,
    /// Per circuit: (proven, total).
    pub per_circuit: Vec<(CircuitId, usize, usize)>,
    /// Results refused so far, each followed by a new attempt.
    pub refused: Vec<Refusal>,
    /// Jobs found in the broker when they were enqueued (a restarted node
    /// re-attaching): already proven, and queued or being proven.
    pub reattached: (usize, usize),
}

/// How the orchestrator checks results.
pub enum Checking {
    /// Verify every proof with these keys.
    Proofs(HashMap<CircuitId, VerifyingKey>),
    /// `PROVER_REAL_PROOFS=false`: results carry public inputs only.
    Simulated,
}

async fn fetch(broker: &HttpClient, uri: &ProofUri) -> Result<Vec<u8>, String> {
    match uri.kind().map_err(|e| e.to_string())? {
        UriKind::Inline(b) => Ok(b),
        UriKind::Blob(_) => {
            let text = broker
                .get_proof_data(uri.clone())
                .await
                .map_err(|e| format!("fetching {uri}: {e}"))?;
            aztec_prover_protocol::uri::from_base64(&text)
                .map_err(|e| format!("proof data of {uri}: {e}"))
        }
        UriKind::External => Err(format!("{uri}: external proof URIs are not supported")),
    }
}

/// Enqueues a job; returns the broker's answer (a job it already holds is
/// left as it is and its status returned).
async fn enqueue(
    broker: &HttpClient,
    epoch: u64,
    id: &JobId,
    t: JobType,
    bytes: &[u8],
) -> Result<ProvingJobStatus, String> {
    broker
        .enqueue_proving_job(EnqueueRequest {
            id: Some(id.clone()),
            job_type: t,
            epoch_number: epoch,
            inputs_uri: ProofUri::inline(bytes),
        })
        .await
        .map_err(|e| format!("enqueueing {id}: {e}"))
}

/// Checks one result against its job: `Err` says why it is refused.
fn check_result(
    bytes: &[u8],
    job: &aztec_zk::plan::PlannedJob,
    checking: &Checking,
) -> Result<ProvenJob, String> {
    let r = decode_result(bytes).map_err(|e| format!("not a proof result: {e}"))?;
    if r.circuit != job.circuit() {
        return Err(format!(
            "a result for {} instead of {}",
            r.circuit,
            job.circuit()
        ));
    }
    let proof = match checking {
        Checking::Simulated => [[0u8; 32]; 8],
        Checking::Proofs(vks) => {
            let pr = r.proof()?.ok_or_else(|| {
                "a simulated result where a proof is needed (is the agent running with PROVER_REAL_PROOFS=false?)"
                    .to_string()
            })?;
            let vk = vks
                .get(&r.circuit)
                .ok_or_else(|| format!("no verifying key for {}", r.circuit))?;
            if !aztec_zk::groth16::verify::verify(vk, &r.public_inputs, &pr)
                .map_err(|e| e.to_string())?
            {
                return Err("the proof does not verify".into());
            }
            aztec_zk::groth16::evm::proof_words(&pr)
        }
    };
    Ok(ProvenJob {
        circuit: r.circuit,
        children: job.children.clone(),
        public_inputs: r.public_inputs,
        proof,
    })
}

/// Proves `plan` through the broker and returns the checked proofs in plan order.
pub async fn prove_epoch(
    broker: &HttpClient,
    epoch: u64,
    plan: &EpochPlan,
    checking: &Checking,
    timeout: Duration,
    mut progress: impl FnMut(&Progress),
) -> Result<Vec<ProvenJob>, String> {
    let mut ids = Vec::with_capacity(plan.jobs.len());
    let (mut proven_before, mut pending_before) = (0, 0);
    for j in &plan.jobs {
        let bytes = encode_inputs(&j.inputs);
        let t = job_type(j.circuit());
        let id = JobId::for_inputs(epoch, t, &bytes);
        match enqueue(broker, epoch, &id, t, &bytes).await? {
            ProvingJobStatus::Fulfilled { .. } => proven_before += 1,
            ProvingJobStatus::InProgress => pending_before += 1,
            _ => {}
        }
        ids.push(id);
    }
    if proven_before + pending_before > 0 {
        tracing::info!(
            EPOCH = epoch,
            "enqueued {} jobs: re-attached to {} already proven and {} being proven in the broker",
            ids.len(),
            proven_before,
            pending_before
        );
    } else {
        tracing::info!(EPOCH = epoch, "enqueued {} jobs", ids.len());
    }
    let mut results: Vec<Option<ProvenJob>> = vec![None; ids.len()];
    let mut p = Progress {
        total: ids.len(),
        reattached: (proven_before, pending_before),
        ..Progress::default()
    };
    let deadline = Instant::now() + timeout;
    while p.proven < p.total {
        if Instant::now() > deadline {
            return Err(format!(
                "epoch {epoch}: {} of {} jobs proven after {timeout:?}",
                p.proven, p.total
            ));
        }
        for i in 0..ids.len() {
            if results[i].is_some() {
                continue;
            }
            let id = ids[i].clone();
            let status = match broker.get_proving_job_status(id.clone()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("broker: status of {id}: {e}");
                    continue;
                }
            };
            match status {
                ProvingJobStatus::Fulfilled { value, agent } => {
                    let job = &plan.jobs[i];
                    let bytes = fetch(broker, &value).await?;
                    match check_result(&bytes, job, checking) {
                        Ok(proven) => {
                            results[i] = Some(proven);
                            p.proven += 1;
                        }
                        Err(reason) => {
                            let agent = agent.unwrap_or_else(|| "unknown".into());
                            tracing::error!(
                                EPOCH = epoch,
                                JOB_ID = %id,
                                JOB_TYPE = job_type(job.circuit()).name(),
                                AGENT = %agent,
                                "refused the result of {id} from agent {agent}: {reason}; the broker queues it again"
                            );
                            broker
                                .refuse_proving_job_result(id.clone(), value, reason.clone())
                                .await
                                .map_err(|e| format!("refusing the result of {id}: {e}"))?;
                            p.refused.push(Refusal {
                                job: id,
                                agent,
                                reason,
                            });
                        }
                    }
                }
                ProvingJobStatus::Rejected { reason } => {
                    return Err(format!("{id} failed for good: {reason}"));
                }
                ProvingJobStatus::NotFound => {
                    return Err(format!("the broker lost {id}"));
                }
                _ => {}
            }
        }
        p.per_circuit = CircuitId::ALL
            .iter()
            .map(|c| {
                let total = plan.jobs.iter().filter(|j| j.circuit() == *c).count();
                let done = plan
                    .jobs
                    .iter()
                    .zip(&results)
                    .filter(|(j, r)| j.circuit() == *c && r.is_some())
                    .count();
                (*c, done, total)
            })
            .collect();
        progress(&p);
        if p.proven < p.total {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let jobs: Vec<ProvenJob> = results.into_iter().flatten().collect();
    for (i, j) in jobs.iter().enumerate() {
        let children: Vec<(CircuitId, &[aztec_zk::Felt])> = j
            .children
            .iter()
            .map(|c| (jobs[*c].circuit, jobs[*c].public_inputs.as_slice()))
            .collect();
        links::check_children(j.circuit, &j.public_inputs, &children)
            .map_err(|e| format!("job {i}: {e}"))?;
    }
    Ok(jobs)
}

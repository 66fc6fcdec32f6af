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
//! A broker that does not answer (down, restarting, out of reach) is waited
//! for, with a growing pause, until the epoch's deadline; a broker that
//! answers with an error ends the epoch naming the call.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aztec_prover_protocol::uri::{ProofUri, UriKind};
use aztec_prover_protocol::{EnqueueRequest, JobId, JobType, ProvingJobStatus};
use aztec_prover_rollup::plan::EpochPlan;
use aztec_zk::circuits::links;
use aztec_zk::groth16::VerifyingKey;
use aztec_zk::wire::{decode_result, encode_inputs, job_type};
use aztec_zk::{CircuitId, Felt};

use crate::broker::{CallError, JobBroker};
use crate::error::NodeError;

/// One proven job of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenJob {
    /// Its circuit.
    pub circuit: CircuitId,
    /// Its children in the tree, as indices of earlier jobs.
    pub children: Vec<usize>,
    /// Its public inputs.
    pub public_inputs: Vec<Felt>,
    /// The proof in the precompiles' order (`groth16::evm::proof_words`);
    /// zeros for simulated jobs (mock verifier).
    pub proof: [[u8; 32]; 8],
}

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

/// The longest pause between calls to a broker that does not answer.
pub const MAX_BROKER_PAUSE: Duration = Duration::from_secs(10);

/// Waits for a broker that does not answer, within an epoch's time.
struct Patience {
    epoch: u64,
    deadline: Instant,
    pause: Duration,
    /// Since when the broker has not answered (logged once per outage).
    away_since: Option<Instant>,
}

impl Patience {
    fn new(epoch: u64, deadline: Instant) -> Patience {
        Patience {
            epoch,
            deadline,
            pause: POLL,
            away_since: None,
        }
    }

    /// The broker answered.
    fn answered(&mut self) {
        if let Some(since) = self.away_since.take() {
            tracing::info!(
                EPOCH = self.epoch,
                "broker: answering again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
        self.pause = POLL;
    }

    /// A call failed with `e`: waits and returns true when it is worth
    /// trying again before the deadline, else false.
    async fn wait(&mut self, what: &str, e: &CallError) -> bool {
        if !matches!(e, CallError::Transient(_)) || Instant::now() + self.pause >= self.deadline {
            return false;
        }
        if self.away_since.is_none() {
            self.away_since = Some(Instant::now());
            tracing::warn!(
                EPOCH = self.epoch,
                "broker: {what}: {e}; waiting for it (until the epoch's deadline)"
            );
        } else {
            tracing::debug!(EPOCH = self.epoch, "broker: {what}: {e}");
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(MAX_BROKER_PAUSE);
        true
    }

    /// Runs `call` until the broker answers, or the answer is an error, or
    /// waiting longer would pass the deadline.
    async fn call<T, F, Fut>(&mut self, id: &JobId, what: &str, mut call: F) -> Result<T, NodeError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        loop {
            match call().await {
                Ok(v) => {
                    self.answered();
                    return Ok(v);
                }
                Err(e) => {
                    if !self.wait(&format!("{what} {id}"), &e).await {
                        return Err(NodeError::broker(Some(id), format!("{what}: {e}")));
                    }
                }
            }
        }
    }
}

/// The bytes of a result: inline in its URI, or fetched from the broker.
/// `Err` is a result that cannot be read, which is refused like a bad one.
async fn fetch(
    broker: &impl JobBroker,
    patience: &mut Patience,
    id: &JobId,
    uri: &ProofUri,
) -> Result<Result<Vec<u8>, String>, NodeError> {
    Ok(match uri.kind() {
        Err(e) => Err(format!("its URI {uri}: {e}")),
        Ok(UriKind::Inline(b)) => Ok(b),
        Ok(UriKind::Blob(_)) => {
            let text = patience
                .call(id, &format!("fetching {uri}"), || {
                    broker.proof_data(uri.clone())
                })
                .await?;
            aztec_prover_protocol::uri::from_base64(&text)
                .map_err(|e| format!("its proof data {uri}: {e}"))
        }
        Ok(UriKind::External) => Err(format!("{uri}: external proof URIs are not supported")),
    })
}

/// Enqueues a job; returns the broker's answer (a job it already holds is
/// left as it is and its status returned).
async fn enqueue(
    broker: &impl JobBroker,
    patience: &mut Patience,
    epoch: u64,
    id: &JobId,
    t: JobType,
    bytes: &[u8],
) -> Result<ProvingJobStatus, NodeError> {
    patience
        .call(id, "enqueueing", || {
            broker.enqueue(EnqueueRequest {
                id: Some(id.clone()),
                job_type: t,
                epoch_number: epoch,
                inputs_uri: ProofUri::inline(bytes),
            })
        })
        .await
}

/// Checks one result against its job: `Err` says why it is refused.
fn check_result(
    bytes: &[u8],
    job: &aztec_prover_rollup::plan::PlannedJob,
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

/// How often the orchestrator asks the broker about the jobs not yet proven.
const POLL: Duration = Duration::from_millis(200);

/// Proves `plan` through the broker and returns the checked proofs in plan order.
pub async fn prove_epoch(
    broker: &impl JobBroker,
    epoch: u64,
    plan: &EpochPlan,
    checking: &Checking,
    timeout: Duration,
    progress: impl FnMut(&Progress),
) -> Result<Vec<ProvenJob>, NodeError> {
    prove_epoch_with(broker, epoch, plan, checking, timeout, progress, |_, _| {}).await
}

/// [`prove_epoch`], also handing each job to `proven` (its position in the
/// plan, and the checked proof) as soon as it is checked.
pub async fn prove_epoch_with(
    broker: &impl JobBroker,
    epoch: u64,
    plan: &EpochPlan,
    checking: &Checking,
    timeout: Duration,
    mut progress: impl FnMut(&Progress),
    mut proven: impl FnMut(usize, &ProvenJob),
) -> Result<Vec<ProvenJob>, NodeError> {
    let deadline = Instant::now() + timeout;
    let mut patience = Patience::new(epoch, deadline);
    let mut ids = Vec::with_capacity(plan.jobs.len());
    let (mut proven_before, mut pending_before) = (0, 0);
    // Jobs with the same inputs (two blocks' identical parity jobs) are one
    // job in the broker: enqueued once, not counted as found there.
    let mut sent = std::collections::HashSet::new();
    for j in &plan.jobs {
        let bytes = encode_inputs(&j.inputs);
        let t = job_type(j.circuit());
        let id = JobId::for_inputs(epoch, t, &bytes);
        if sent.insert(id.clone()) {
            match enqueue(broker, &mut patience, epoch, &id, t, &bytes).await? {
                ProvingJobStatus::Fulfilled { .. } => proven_before += 1,
                ProvingJobStatus::InProgress => pending_before += 1,
                _ => {}
            }
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
    while p.proven < p.total {
        if Instant::now() > deadline {
            return Err(NodeError::Timeout {
                epoch,
                proven: p.proven,
                total: p.total,
                after: timeout,
            });
        }
        for i in 0..ids.len() {
            if results[i].is_some() {
                continue;
            }
            let id = ids[i].clone();
            let status = match broker.status(id.clone()).await {
                Ok(s) => {
                    patience.answered();
                    s
                }
                Err(e @ CallError::Transient(_)) => {
                    // Asked again on the next round (the deadline above
                    // bounds the wait); the other jobs' calls would fail alike.
                    patience.wait(&format!("status of {id}"), &e).await;
                    break;
                }
                Err(e) => {
                    return Err(NodeError::broker(Some(&id), format!("its status: {e}")));
                }
            };
            match status {
                ProvingJobStatus::Fulfilled { value, agent } => {
                    let job = &plan.jobs[i];
                    let checked = fetch(broker, &mut patience, &id, &value)
                        .await?
                        .and_then(|bytes| check_result(&bytes, job, checking));
                    match checked {
                        Ok(checked_job) => {
                            proven(i, &checked_job);
                            results[i] = Some(checked_job);
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
                            patience
                                .call(&id, "refusing its result", || {
                                    broker.refuse(id.clone(), value.clone(), reason.clone())
                                })
                                .await?;
                            p.refused.push(Refusal {
                                job: id,
                                agent,
                                reason,
                            });
                        }
                    }
                }
                ProvingJobStatus::Rejected { reason } => {
                    return Err(NodeError::JobFailed { job: id, reason });
                }
                ProvingJobStatus::NotFound => return Err(NodeError::JobLost(id)),
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
            tokio::time::sleep(POLL).await;
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
            .map_err(|e| NodeError::Links(format!("job {i}: {e}")))?;
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    //! The orchestrator against an in-process broker double: a queue that
    //! "proves" a job (simulates its circuit) when the node asks about it,
    //! can hand back a forged result once, can already hold results (a
    //! restarted node), or never prove anything (a timeout).

    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use aztec_prover_protocol::{EnqueueRequest, JobId, ProofUri, ProvingJobStatus};
    use aztec_prover_rollup::plan::{BlockSpec, EpochPlan, plan_epoch};
    use aztec_prover_rollup::world::{World, synthetic_tx};
    use aztec_zk::synth::simulate;
    use aztec_zk::wire::{ProofResult, decode_inputs, encode_result};
    use aztec_zk::{Felt, RollupParams};
    use rand::SeedableRng;

    use super::*;

    #[derive(Default)]
    struct Held {
        /// Ids in the order they were first enqueued.
        order: Vec<JobId>,
        /// Every enqueue call, repeats included.
        calls: usize,
        inputs: HashMap<JobId, Vec<u8>>,
        results: HashMap<JobId, ProofUri>,
        /// Jobs whose next result is for another circuit.
        forge: HashSet<JobId>,
        /// Calls still to go unanswered (the broker is away).
        away: usize,
        /// Calls that went unanswered.
        unanswered: usize,
        /// Answer every enqueue with this error.
        refuse_enqueues: Option<String>,
        /// Go away for this many calls at the first status call.
        away_at_first_status: usize,
        refused: Vec<(JobId, String)>,
    }

    struct Double {
        params: RollupParams,
        proves: bool,
        held: Mutex<Held>,
    }

    impl Double {
        fn new(proves: bool) -> Double {
            Double {
                params: RollupParams::test(),
                proves,
                held: Mutex::default(),
            }
        }

        fn held(&self) -> std::sync::MutexGuard<'_, Held> {
            self.held.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// Fails this call as a broker that is away would.
        fn away(&self) -> Result<(), CallError> {
            let mut h = self.held();
            if h.away > 0 {
                h.away -= 1;
                h.unanswered += 1;
                return Err(CallError::Transient("connection refused".into()));
            }
            Ok(())
        }

        /// What an honest agent returns for `inputs` (simulated), or one
        /// for another circuit when forging.
        fn result(&self, inputs: &[u8], forged: bool) -> ProofUri {
            let inputs = decode_inputs(inputs).expect("inputs the node encoded");
            let circuit = if forged {
                CircuitId::RootRollup
            } else {
                inputs.circuit()
            };
            let public_inputs = simulate(&self.params, &inputs).expect("a valid job");
            ProofUri::inline(&encode_result(&ProofResult {
                circuit,
                public_inputs,
                proof: Vec::new(),
                simulated: true,
            }))
        }
    }

    impl JobBroker for Double {
        async fn enqueue(&self, job: EnqueueRequest) -> Result<ProvingJobStatus, CallError> {
            self.away()?;
            let refused = |e: &str| CallError::Refused(e.to_string());
            let id = job.id.ok_or_else(|| refused("the node names its jobs"))?;
            let mut h = self.held();
            if let Some(e) = &h.refuse_enqueues {
                return Err(refused(e));
            }
            h.calls += 1;
            if let Some(value) = h.results.get(&id) {
                return Ok(ProvingJobStatus::Fulfilled {
                    value: value.clone(),
                    agent: Some("agent-1".into()),
                });
            }
            if h.inputs.contains_key(&id) {
                return Ok(ProvingJobStatus::InProgress);
            }
            let bytes = match job.inputs_uri.kind().map_err(|e| refused(&e.to_string()))? {
                UriKind::Inline(b) => b,
                _ => return Err(refused("inline inputs expected")),
            };
            h.order.push(id.clone());
            h.inputs.insert(id, bytes);
            Ok(ProvingJobStatus::InQueue)
        }

        async fn status(&self, id: JobId) -> Result<ProvingJobStatus, CallError> {
            {
                let mut h = self.held();
                h.away += std::mem::take(&mut h.away_at_first_status);
            }
            self.away()?;
            let mut h = self.held();
            if !h.results.contains_key(&id) {
                let Some(inputs) = h.inputs.get(&id).cloned() else {
                    return Ok(ProvingJobStatus::NotFound);
                };
                if !self.proves {
                    return Ok(ProvingJobStatus::InProgress);
                }
                let forged = h.forge.remove(&id);
                let value = self.result(&inputs, forged);
                h.results.insert(id.clone(), value);
            }
            let value = h.results[&id].clone();
            Ok(ProvingJobStatus::Fulfilled {
                value,
                agent: Some("agent-1".into()),
            })
        }

        async fn proof_data(&self, uri: ProofUri) -> Result<String, CallError> {
            Err(CallError::Refused(format!(
                "{uri}: results are inline here"
            )))
        }

        async fn refuse(
            &self,
            id: JobId,
            value: ProofUri,
            reason: String,
        ) -> Result<ProvingJobStatus, CallError> {
            self.away()?;
            let mut h = self.held();
            if h.results.get(&id) == Some(&value) {
                h.results.remove(&id);
            }
            h.refused.push((id, reason));
            Ok(ProvingJobStatus::InQueue)
        }
    }

    /// An epoch of two blocks of two synthetic txs at test sizes.
    fn an_epoch() -> EpochPlan {
        let params = RollupParams::test();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut world = World::genesis(params.clone());
        let mut scratch = world.clone();
        let blocks: Vec<BlockSpec> = (0..2u64)
            .map(|b| {
                let txs = (0..2)
                    .map(|_| {
                        let tx = synthetic_tx(&scratch, &mut rng).expect("a tx");
                        scratch.apply_tx(&tx).expect("it applies");
                        tx
                    })
                    .collect();
                BlockSpec {
                    txs,
                    messages: vec![Felt::from_u64(b + 1)],
                    slot: 10 + b,
                }
            })
            .collect();
        plan_epoch(&mut world, 3, Felt::from_u64(9), &blocks).expect("a plan")
    }

    fn ids(plan: &EpochPlan) -> Vec<JobId> {
        plan.jobs
            .iter()
            .map(|j| JobId::for_inputs(3, job_type(j.circuit()), &encode_inputs(&j.inputs)))
            .collect()
    }

    /// The ids in plan order, each once: jobs with the same inputs (two
    /// blocks' identical parity jobs) are one job in the broker.
    fn distinct(ids: Vec<JobId>) -> Vec<JobId> {
        let mut seen = HashSet::new();
        ids.into_iter().filter(|i| seen.insert(i.clone())).collect()
    }

    async fn prove(
        broker: &Double,
        plan: &EpochPlan,
        timeout: Duration,
    ) -> (Result<Vec<ProvenJob>, NodeError>, Progress) {
        let mut last = Progress::default();
        let r = prove_epoch(broker, 3, plan, &Checking::Simulated, timeout, |p| {
            last = p.clone()
        })
        .await;
        (r, last)
    }

    #[tokio::test]
    async fn every_job_is_enqueued_in_plan_order_and_the_tree_comes_back_checked() {
        let plan = an_epoch();
        let broker = Double::new(true);
        let (r, p) = prove(&broker, &plan, Duration::from_secs(60)).await;
        let jobs = r.expect("proven");
        assert_eq!(
            broker.held().order,
            distinct(ids(&plan)),
            "children before parents, as planned"
        );
        assert_eq!(jobs.len(), plan.jobs.len());
        for (j, planned) in jobs.iter().zip(&plan.jobs) {
            assert_eq!(j.circuit, planned.circuit());
            assert_eq!(j.children, planned.children);
        }
        assert_eq!((p.proven, p.total), (plan.jobs.len(), plan.jobs.len()));
        assert!(p.refused.is_empty() && p.reattached == (0, 0));
        let per: usize = p.per_circuit.iter().map(|(_, done, _)| done).sum();
        assert_eq!(per, plan.jobs.len());
    }

    #[tokio::test]
    async fn a_refused_result_is_handed_back_and_the_job_proven_again() {
        let plan = an_epoch();
        let broker = Double::new(true);
        let forged = ids(&plan)[2].clone();
        broker.held().forge.insert(forged.clone());
        let (r, p) = prove(&broker, &plan, Duration::from_secs(60)).await;
        assert_eq!(r.expect("proven in the end").len(), plan.jobs.len());
        assert_eq!(p.refused.len(), 1);
        assert_eq!(p.refused[0].job, forged);
        assert_eq!(p.refused[0].agent, "agent-1");
        assert!(
            p.refused[0].reason.contains("instead of"),
            "{:?}",
            p.refused
        );
        assert_eq!(broker.held().refused.len(), 1, "the broker was told");
    }

    #[tokio::test]
    async fn a_restarted_node_reattaches_to_the_jobs_already_in_the_broker() {
        let plan = an_epoch();
        let broker = Double::new(true);
        let (first, _) = prove(&broker, &plan, Duration::from_secs(60)).await;
        let calls = broker.held().calls;
        // The node restarts and proves the same epoch: same ids, nothing new queued.
        let (again, p) = prove(&broker, &plan, Duration::from_secs(60)).await;
        assert_eq!(again.expect("proven"), first.expect("proven"));
        let distinct = distinct(ids(&plan));
        assert_eq!(p.reattached, (distinct.len(), 0));
        let h = broker.held();
        assert_eq!(h.order, distinct, "no job was queued twice");
        assert_eq!(h.calls, calls + distinct.len());
    }

    #[tokio::test]
    async fn an_epoch_not_proven_in_time_is_a_timeout_with_its_count() {
        let plan = an_epoch();
        let broker = Double::new(false);
        let (r, _) = prove(&broker, &plan, Duration::from_millis(300)).await;
        match r {
            Err(NodeError::Timeout {
                epoch,
                proven,
                total,
                ..
            }) => assert_eq!((epoch, proven, total), (3, 0, plan.jobs.len())),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_job_the_broker_lost_or_rejected_ends_the_epoch_naming_it() {
        let plan = an_epoch();
        let broker = Double::new(false);
        let lost = ids(&plan)[0].clone();
        let (r, _) = {
            let mut first = true;
            let r = prove_epoch(
                &broker,
                3,
                &plan,
                &Checking::Simulated,
                Duration::from_secs(60),
                |_| {
                    if first {
                        // The broker forgets a job after it was enqueued.
                        broker.held().inputs.remove(&lost);
                        first = false;
                    }
                },
            )
            .await;
            (r, ())
        };
        match r {
            Err(NodeError::JobLost(id)) => assert_eq!(id, lost),
            other => panic!("expected the lost job, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_broker_that_does_not_answer_is_waited_for_within_the_deadline() {
        let plan = an_epoch();
        // Away for three calls while the jobs are enqueued, and again while
        // they are proven: the epoch is proven all the same.
        let broker = Double::new(true);
        broker.held().away = 3;
        let (r, _) = prove(&broker, &plan, Duration::from_secs(60)).await;
        assert_eq!(r.expect("proven").len(), plan.jobs.len());
        assert_eq!(broker.held().unanswered, 3);
        assert_eq!(
            broker.held().order,
            distinct(ids(&plan)),
            "each enqueued once"
        );
        let broker = Double::new(true);
        broker.held().away_at_first_status = 3;
        let (r, _) = prove(&broker, &plan, Duration::from_secs(60)).await;
        assert_eq!(r.expect("proven").len(), plan.jobs.len());
        assert_eq!(broker.held().unanswered, 3);
        // Away for good: the epoch ends at its deadline, naming the call.
        let broker = Double::new(true);
        broker.held().away = usize::MAX;
        let (r, _) = prove(&broker, &plan, Duration::from_millis(700)).await;
        match r {
            Err(NodeError::Broker { message, .. }) => {
                assert!(
                    message.contains("enqueueing: connection refused"),
                    "{message}"
                )
            }
            other => panic!("expected the broker's error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_broker_that_answers_with_an_error_ends_the_epoch_at_once() {
        let plan = an_epoch();
        let broker = Double::new(true);
        broker.held().refuse_enqueues = Some("epoch too far ahead".into());
        let started = Instant::now();
        let (r, _) = prove(&broker, &plan, Duration::from_secs(60)).await;
        match r {
            Err(NodeError::Broker { message, .. }) => {
                assert!(message.contains("epoch too far ahead"), "{message}")
            }
            other => panic!("expected the broker's error, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "not retried");
        assert_eq!(broker.held().calls, 0);
    }
}

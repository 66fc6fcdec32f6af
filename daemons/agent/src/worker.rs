//! One agent's loop: take a job, fetch its inputs, prove, report; heartbeat
//! while proving; back off while the broker is away; drain on stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aztec_prover_protocol::broker_api::error_code::STALE_LEASE;
use aztec_prover_protocol::{
    GetProvingJobResponse, JobId, ProofUri, ProvingBrokerApiClient, ProvingJobFilter, UriKind,
};
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::HttpClient;

use crate::control::{Control, Event};
use crate::metrics::{AgentMetrics, Outcome, Phases};
use crate::numa::Placement;
use crate::prover::{JobFailure, ProverCore};

/// Timings of the loop.
#[derive(Debug, Clone, Copy)]
pub struct LoopTimings {
    /// Heartbeat period while proving.
    pub heartbeat: Duration,
    /// How long a job may run on after SIGTERM before it is handed back.
    pub stop_timeout: Duration,
}

/// One agent.
pub struct Worker {
    /// Its index in the process.
    pub index: usize,
    /// Its name, as the broker sees it.
    pub name: String,
    /// Shared state.
    pub control: Arc<Control>,
    /// The prover.
    pub core: Arc<ProverCore>,
    /// The broker.
    pub client: HttpClient,
    /// The broker's URL (for messages).
    pub url: String,
    /// Where threads run.
    pub placement: Arc<Placement>,
    /// Timings.
    pub timings: LoopTimings,
    /// Where job counts and times go.
    pub metrics: AgentMetrics,
}

struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_millis(250))
    }
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        d
    }
    fn reset(&mut self) {
        *self = Backoff::new();
    }
}

fn stale(e: &ClientError) -> bool {
    matches!(e, ClientError::Call(obj) if obj.code() == STALE_LEASE)
}

impl Worker {
    async fn pause_for(&self, d: Duration) {
        let changed = self.control.changed.notified();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = changed => {}
        }
    }

    /// Runs until the process stops.
    pub async fn run(self) {
        let mut backoff = Backoff::new();
        let mut was_down = false;
        let mut idle_since = Instant::now();
        while !self.control.stopping() {
            if self.control.paused() {
                self.pause_for(Duration::from_millis(self.control.poll_interval_ms()))
                    .await;
                continue;
            }
            let filter = ProvingJobFilter {
                allow_list: self.control.allowed(),
            };
            match self
                .client
                .get_proving_job(Some(filter), Some(self.name.clone()))
                .await
            {
                Err(e) => {
                    let d = backoff.next();
                    tracing::warn!(
                        "broker at {} unreachable or failing ({e}); retrying in {} ms",
                        self.url,
                        d.as_millis()
                    );
                    was_down = true;
                    self.pause_for(d).await;
                }
                Ok(None) => {
                    self.back_up(&mut was_down);
                    backoff.reset();
                    self.pause_for(Duration::from_millis(self.control.poll_interval_ms()))
                        .await;
                }
                Ok(Some(resp)) => {
                    self.back_up(&mut was_down);
                    backoff.reset();
                    self.metrics.idle(idle_since.elapsed());
                    self.handle(resp).await;
                    idle_since = Instant::now();
                }
            }
        }
    }

    fn back_up(&self, was_down: &mut bool) {
        if *was_down {
            tracing::info!("broker at {} answers again", self.url);
            *was_down = false;
        }
    }

    async fn fetch(&self, uri: &ProofUri) -> Result<Vec<u8>, JobFailure> {
        match uri.kind() {
            Err(e) => Err(JobFailure::Fatal(e.to_string())),
            Ok(UriKind::Inline(b)) => Ok(b),
            Ok(UriKind::External) => Err(JobFailure::Fatal(format!(
                "inputs at {uri}: external URIs are not supported by this agent"
            ))),
            Ok(UriKind::Blob(_)) => {
                let mut backoff = Backoff::new();
                for attempt in 1..=5 {
                    match self.client.get_proof_data(uri.clone()).await {
                        Ok(b64) => {
                            return aztec_prover_protocol::uri::from_base64(&b64).map_err(|e| {
                                JobFailure::Fatal(format!("inputs at {uri} are not base64: {e}"))
                            });
                        }
                        Err(ClientError::Call(e)) if !says_later(e.code()) => {
                            return Err(JobFailure::Fatal(format!(
                                "inputs at {uri}: {}",
                                e.message()
                            )));
                        }
                        Err(e) => {
                            let d = backoff.next();
                            tracing::warn!(
                                "fetching inputs {uri} failed (attempt {attempt}): {e}; retrying in {} ms",
                                d.as_millis()
                            );
                            tokio::time::sleep(d).await;
                        }
                    }
                }
                Err(JobFailure::Retryable(format!(
                    "could not fetch inputs {uri} from the broker"
                )))
            }
        }
    }

    async fn report_error(&self, id: &JobId, started_at: u64, reason: String, retry: bool) -> bool {
        let mut backoff = Backoff::new();
        for _ in 0..5 {
            match self
                .client
                .report_proving_job_error(id.clone(), started_at, reason.clone(), retry, None)
                .await
            {
                Ok(_) => return true,
                Err(ClientError::Call(e)) if !says_later(e.code()) => {
                    tracing::warn!(JOB_ID = %id, "the broker refused the error report: {}", e.message());
                    return false;
                }
                Err(e) => {
                    tracing::warn!(JOB_ID = %id, "reporting the error failed: {e}; retrying");
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        }
        false
    }

    async fn report_success(&self, id: &JobId, started_at: u64, result: &[u8]) -> bool {
        let uri = ProofUri::inline(result);
        let mut backoff = Backoff::new();
        for _ in 0..8 {
            match self
                .client
                .report_proving_job_success(id.clone(), started_at, uri.clone(), None)
                .await
            {
                Ok(_) => return true,
                Err(ClientError::Call(e)) if !says_later(e.code()) => {
                    tracing::warn!(JOB_ID = %id, "the broker refused the proof: {}", e.message());
                    return false;
                }
                Err(e) => {
                    let d = backoff.next();
                    tracing::warn!(JOB_ID = %id, "returning the proof failed: {e}; retrying in {} ms", d.as_millis());
                    tokio::time::sleep(d).await;
                }
            }
        }
        false
    }

    async fn handle(&self, resp: GetProvingJobResponse) {
        let job = resp.job;
        let started_at = resp.time;
        let id = job.id.clone();
        let jt = job.job_type;
        let epoch = job.epoch_number;
        let t0 = Instant::now();
        self.control
            .set_current(self.index, Some(format!("{jt} {}", id.short())));
        let _ = self.control.events.send(Event::Started {
            id: id.to_string(),
            job_type: jt,
        });
        tracing::info!(EPOCH = epoch, JOB_ID = %id, JOB_TYPE = jt.name(), "proving {jt} job {}", id.short());

        let outcome = match self.fetch(&job.inputs_uri).await {
            Err(f) => Err(f),
            Ok(bytes) => self.prove(&id, started_at, jt, bytes).await,
        };
        let took = t0.elapsed();
        let ms = took.as_millis() as u64;
        let mut phases = None;
        let counted = match outcome {
            Ok(Some((result, p))) => {
                phases = p;
                if self.report_success(&id, started_at, &result).await {
                    tracing::info!(EPOCH = epoch, JOB_ID = %id, JOB_TYPE = jt.name(), "proved {jt} job {} in {ms} ms", id.short());
                    Outcome::Proven
                } else {
                    Outcome::NotTaken
                }
            }
            Ok(None) => Outcome::Dropped,
            Err(JobFailure::Fatal(reason)) => {
                tracing::error!(EPOCH = epoch, JOB_ID = %id, JOB_TYPE = jt.name(), "{jt} job {} cannot be proven: {reason}", id.short());
                self.report_error(&id, started_at, reason, false).await;
                Outcome::Fatal
            }
            Err(JobFailure::Retryable(reason)) => {
                tracing::warn!(EPOCH = epoch, JOB_ID = %id, JOB_TYPE = jt.name(), "{jt} job {} failed, handing it back: {reason}", id.short());
                self.report_error(&id, started_at, reason, true).await;
                Outcome::Retryable
            }
        };
        self.metrics.job(
            jt,
            &self.control.backend().backend.info().name,
            counted,
            took,
            phases,
        );
        let ok = counted == Outcome::Proven;
        self.control.count(ok);
        self.control.set_current(self.index, None);
        let _ = self.control.events.send(Event::Finished {
            id: id.to_string(),
            job_type: jt,
            ok,
            ms,
        });
    }

    /// Proves on a blocking thread while heartbeating. `Ok(None)`: the job
    /// was handed back or its lease lost, nothing to report.
    async fn prove(
        &self,
        id: &JobId,
        started_at: u64,
        jt: aztec_prover_protocol::JobType,
        bytes: Vec<u8>,
    ) -> Result<Option<(Vec<u8>, Option<Phases>)>, JobFailure> {
        // The kernels run on the backend's pool, sized from Threads before each job.
        if let Err(e) = self.control.configure_backend(&self.placement) {
            return Err(JobFailure::Retryable(format!(
                "cannot size the backend's threads: {e}"
            )));
        }
        let slot = self.control.backend();
        let core = self.core.clone();
        let cpus = if self.placement.pinned {
            self.placement.cpus.clone()
        } else {
            vec![]
        };
        let task = tokio::task::spawn_blocking(move || {
            if !cpus.is_empty() {
                pin_current_thread(&cpus);
            }
            // Called from a plain thread: synthesis runs on the process's
            // (pinned) rayon pool, the kernels on the backend's.
            core.prove_job(&slot.backend, jt, &bytes)
        });
        tokio::pin!(task);
        let mut heartbeat = tokio::time::interval(self.timings.heartbeat);
        heartbeat.tick().await;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let changed = self.control.changed.notified();
            tokio::select! {
                r = &mut task => {
                    return match r {
                        Ok(Ok(result)) => Ok(Some(result)),
                        Ok(Err(f)) => Err(f),
                        Err(e) => Err(JobFailure::Retryable(format!("the prover thread failed: {e}"))),
                    };
                }
                _ = heartbeat.tick() => {
                    match self.client.report_proving_job_progress(id.clone(), started_at).await {
                        Ok(()) => {}
                        Err(e) if stale(&e) => {
                            tracing::warn!(JOB_ID = %id, "lease lost (the broker gave the job to another agent); dropping it");
                            return Ok(None);
                        }
                        Err(e) => tracing::warn!(JOB_ID = %id, "heartbeat failed: {e}"),
                    }
                }
                _ = changed, if deadline.is_none() => {}
                _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } }, if deadline.is_some() => {
                    tracing::warn!(JOB_ID = %id, "stop timeout reached: handing the job back to the broker");
                    self.report_error(id, started_at, "agent stopping: job handed back".into(), true).await;
                    return Ok(None);
                }
            }
            if deadline.is_none() && self.control.stopping() {
                tracing::info!(JOB_ID = %id, "stopping: finishing the current job (at most {} ms)", self.timings.stop_timeout.as_millis());
                deadline = Some(tokio::time::Instant::now() + self.timings.stop_timeout);
            }
        }
    }
}

/// Pins the calling thread to `cpus` (the placement), so that what it
/// allocates stays on the node.
fn pin_current_thread(cpus: &[u32]) {
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        let _ = set.set(*c as usize);
    }
    if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        tracing::debug!("cannot pin the proving thread: {e}");
    }
}

/// Whether a broker's error answer means "try again later": it is
/// shutting down or too busy to hand out an answer now (-32011), or could
/// not store the change (-32010, a full disk; nothing was changed).
fn says_later(code: i32) -> bool {
    use aztec_prover_protocol::broker_api::error_code::{STORAGE, UNAVAILABLE};
    code == STORAGE || code == UNAVAILABLE
}

#[cfg(test)]
mod tests {
    use super::*;
    use aztec_prover_protocol::broker_api::error_code;

    #[test]
    fn a_busy_or_full_broker_is_asked_again_and_a_refusal_is_final() {
        assert!(says_later(error_code::UNAVAILABLE));
        assert!(says_later(error_code::STORAGE));
        for code in [
            error_code::STALE_LEASE,
            error_code::BLOB_NOT_FOUND,
            error_code::ALREADY_SETTLED,
            -32602,
        ] {
            assert!(!says_later(code), "{code}");
        }
    }
}

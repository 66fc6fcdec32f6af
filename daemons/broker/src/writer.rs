//! Runs the engine on one thread with group commit, and gives the rest of the
//! broker an async handle ([`Broker`]) to it.
//!
//! Every state change goes through the writer thread: it takes whatever
//! requests are waiting (up to the batch size), applies each in its own
//! nested transaction, commits the batch once (one fsync for many agents),
//! and only then answers. A request is therefore acknowledged only after it
//! is on disk, and concurrent agents share the cost of the sync.
//! Plain reads (status, blobs) use read transactions on the caller's thread.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aztec_prover_protocol::aztec::{AztecFilter, AztecJob, AztecLease};
use aztec_prover_protocol::{
    EnqueueRequest, Epoch, GetProvingJobResponse, JobId, ProofUri, ProvingJobFilter,
    ProvingJobStatus, QueueStats,
};
use aztec_prover_store::{Store, WriteTxn};
use tokio::sync::{oneshot, watch};

use crate::queue::{self, BrokerError, Event, Policy, Queue};
use crate::records::Tables;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

enum Op {
    Enqueue(EnqueueRequest),
    Lease {
        filter: ProvingJobFilter,
        agent: String,
    },
    Success {
        id: JobId,
        started_at: u64,
        result: ProofUri,
        next: Option<ProvingJobFilter>,
    },
    Error {
        id: JobId,
        started_at: u64,
        reason: String,
        retry: bool,
        next: Option<ProvingJobFilter>,
    },
    Heartbeat {
        id: JobId,
        started_at: u64,
    },
    Cancel(JobId),
    Refuse {
        id: JobId,
        value: ProofUri,
        reason: String,
    },
    CancelEpoch(Epoch),
    Completed(Vec<JobId>),
    Aztec(AztecOp),
    Tune(PolicyChange),
    Ping,
    Shutdown,
}

/// A call of the Aztec-compatible API; `agent` names the caller in logs
/// (Aztec's agents send no name).
enum AztecOp {
    Enqueue(AztecJob),
    Lease {
        filter: Option<AztecFilter>,
        agent: String,
    },
    Success {
        id: String,
        uri: String,
        next: Option<AztecFilter>,
        agent: String,
    },
    Error {
        id: String,
        reason: String,
        retry: bool,
        next: Option<AztecFilter>,
        agent: String,
    },
    Progress {
        id: String,
        started_at: u64,
        next: Option<AztecFilter>,
        agent: String,
    },
    Cancel(String),
    Completed(Vec<String>),
}

enum Reply {
    Status(ProvingJobStatus),
    Job(Option<GetProvingJobResponse>),
    AztecJob(Option<AztecLease>),
    Unit,
    Count(u64),
    Ids(Vec<JobId>),
    Texts(Vec<String>),
}

struct Command {
    op: Op,
    reply: oneshot::Sender<Result<Reply, BrokerError>>,
}

/// A change to some of the engine's [`Policy`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyChange {
    /// New lease timeout.
    pub job_timeout_ms: Option<u64>,
    /// New retry limit.
    pub max_retries: Option<u32>,
    /// New retention.
    pub keep_epochs: Option<u64>,
    /// New blob size limit.
    pub max_blob_bytes: Option<usize>,
}

impl PolicyChange {
    /// A change to every field.
    pub fn all(p: &Policy) -> PolicyChange {
        PolicyChange {
            job_timeout_ms: Some(p.job_timeout_ms),
            max_retries: Some(p.max_retries),
            keep_epochs: Some(p.keep_epochs),
            max_blob_bytes: Some(p.max_blob_bytes),
        }
    }

    fn apply_to(&self, p: &mut Policy) {
        if let Some(v) = self.job_timeout_ms {
            p.job_timeout_ms = v;
        }
        if let Some(v) = self.max_retries {
            p.max_retries = v;
        }
        if let Some(v) = self.keep_epochs {
            p.keep_epochs = v;
        }
        if let Some(v) = self.max_blob_bytes {
            p.max_blob_bytes = v;
        }
    }
}

/// How the writer runs.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Most requests committed together.
    pub batch_size: usize,
    /// How often leases and retention are checked.
    pub poll_interval: Duration,
    /// Most jobs deleted per retention pass (bounds the pause).
    pub cleanup_budget: usize,
    /// Where job counts and times go.
    pub metrics: aztec_prover_common::metrics::Metrics,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_size: 256,
            poll_interval: Duration::from_millis(1000),
            cleanup_budget: 10_000,
            metrics: aztec_prover_common::metrics::Metrics::off(),
        }
    }
}

/// A handle to a running broker engine. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    tx: Sender<Command>,
    store: Arc<Store>,
    t: Tables,
    stats: watch::Receiver<Arc<QueueStats>>,
}

/// What [`Broker::start`] found in the store.
#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    /// Jobs that were leased when the broker last stopped, now queued again.
    pub requeued: usize,
}

impl Broker {
    /// Opens the store in `dir`, recovers, and starts the writer thread.
    pub fn start(
        dir: &std::path::Path,
        map_size_bytes: usize,
        policy: Policy,
        options: WriterOptions,
    ) -> Result<(Broker, Recovery, std::thread::JoinHandle<()>), BrokerError> {
        let (store, t) = queue::open_store(dir, map_size_bytes)?;
        let store = Arc::new(store);
        let (q, requeued) = Queue::recover(&store, t, policy)?;
        let (stats_tx, stats_rx) = watch::channel(Arc::new(q.stats()));
        let (tx, rx) = channel();
        let thread_store = store.clone();
        let join = std::thread::Builder::new()
            .name("broker-writer".into())
            .spawn(move || run(thread_store, q, rx, stats_tx, options))
            .map_err(|e| BrokerError::Corrupt(format!("cannot start writer thread: {e}")))?;
        Ok((
            Broker {
                tx,
                store,
                t,
                stats: stats_rx,
            },
            Recovery { requeued },
            join,
        ))
    }

    async fn call(&self, op: Op) -> Result<Reply, BrokerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command { op, reply })
            .map_err(|_| BrokerError::Unavailable)?;
        rx.await.map_err(|_| BrokerError::Unavailable)?
    }

    /// Producer: enqueue (a no-op returning the status if the job exists).
    pub async fn enqueue(&self, req: EnqueueRequest) -> Result<ProvingJobStatus, BrokerError> {
        match self.call(Op::Enqueue(req)).await? {
            Reply::Status(s) => Ok(s),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Consumer: lease the best job the filter admits.
    pub async fn get_job(
        &self,
        filter: ProvingJobFilter,
        agent: String,
    ) -> Result<Option<GetProvingJobResponse>, BrokerError> {
        match self.call(Op::Lease { filter, agent }).await? {
            Reply::Job(j) => Ok(j),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Consumer: record a proof; with `next`, lease another job to the same agent.
    pub async fn report_success(
        &self,
        id: JobId,
        started_at: u64,
        result: ProofUri,
        next: Option<ProvingJobFilter>,
    ) -> Result<Option<GetProvingJobResponse>, BrokerError> {
        match self
            .call(Op::Success {
                id,
                started_at,
                result,
                next,
            })
            .await?
        {
            Reply::Job(j) => Ok(j),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Consumer: record a failed attempt; with `next`, lease another job.
    pub async fn report_error(
        &self,
        id: JobId,
        started_at: u64,
        reason: String,
        retry: bool,
        next: Option<ProvingJobFilter>,
    ) -> Result<Option<GetProvingJobResponse>, BrokerError> {
        match self
            .call(Op::Error {
                id,
                started_at,
                reason,
                retry,
                next,
            })
            .await?
        {
            Reply::Job(j) => Ok(j),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Consumer: heartbeat.
    pub async fn heartbeat(&self, id: JobId, started_at: u64) -> Result<(), BrokerError> {
        self.call(Op::Heartbeat { id, started_at })
            .await
            .map(|_| ())
    }

    /// Producer: a job's result failed the producer's checks; prove it again.
    pub async fn refuse_result(
        &self,
        id: JobId,
        value: ProofUri,
        reason: String,
    ) -> Result<ProvingJobStatus, BrokerError> {
        match self.call(Op::Refuse { id, value, reason }).await? {
            Reply::Status(s) => Ok(s),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Producer: cancel a job.
    pub async fn cancel(&self, id: JobId) -> Result<(), BrokerError> {
        self.call(Op::Cancel(id)).await.map(|_| ())
    }

    /// Cancels every unsettled job of an epoch; returns how many.
    pub async fn cancel_epoch(&self, epoch: Epoch) -> Result<u64, BrokerError> {
        match self.call(Op::CancelEpoch(epoch)).await? {
            Reply::Count(n) => Ok(n),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Producer: ids settled since the last call, plus settled ones of `ids`.
    pub async fn completed(&self, ids: Vec<JobId>) -> Result<Vec<JobId>, BrokerError> {
        match self.call(Op::Completed(ids)).await? {
            Reply::Ids(v) => Ok(v),
            _ => Err(BrokerError::Unavailable),
        }
    }

    async fn aztec_call(&self, op: AztecOp) -> Result<Reply, BrokerError> {
        self.call(Op::Aztec(op)).await
    }

    async fn aztec_job(&self, op: AztecOp) -> Result<Option<AztecLease>, BrokerError> {
        match self.aztec_call(op).await? {
            Reply::AztecJob(j) => Ok(j),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Aztec's `enqueueProvingJob`: the status before the call.
    pub async fn aztec_enqueue(&self, job: AztecJob) -> Result<ProvingJobStatus, BrokerError> {
        match self.aztec_call(AztecOp::Enqueue(job)).await? {
            Reply::Status(s) => Ok(s),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Aztec's `getProvingJobStatus` (read from the last committed state).
    pub fn aztec_status(&self, id: &str) -> Result<ProvingJobStatus, BrokerError> {
        let r = self.store.read()?;
        queue::aztec_status(&r, &self.t, id)
    }

    /// Aztec's `getProvingJob`.
    pub async fn aztec_lease(
        &self,
        filter: Option<AztecFilter>,
        agent: String,
    ) -> Result<Option<AztecLease>, BrokerError> {
        self.aztec_job(AztecOp::Lease { filter, agent }).await
    }

    /// Aztec's `reportProvingJobSuccess`.
    pub async fn aztec_success(
        &self,
        id: String,
        uri: String,
        next: Option<AztecFilter>,
        agent: String,
    ) -> Result<Option<AztecLease>, BrokerError> {
        self.aztec_job(AztecOp::Success {
            id,
            uri,
            next,
            agent,
        })
        .await
    }

    /// Aztec's `reportProvingJobError`.
    pub async fn aztec_error(
        &self,
        id: String,
        reason: String,
        retry: bool,
        next: Option<AztecFilter>,
        agent: String,
    ) -> Result<Option<AztecLease>, BrokerError> {
        self.aztec_job(AztecOp::Error {
            id,
            reason,
            retry,
            next,
            agent,
        })
        .await
    }

    /// Aztec's `reportProvingJobProgress`.
    pub async fn aztec_progress(
        &self,
        id: String,
        started_at: u64,
        next: Option<AztecFilter>,
        agent: String,
    ) -> Result<Option<AztecLease>, BrokerError> {
        self.aztec_job(AztecOp::Progress {
            id,
            started_at,
            next,
            agent,
        })
        .await
    }

    /// Aztec's `cancelProvingJob`.
    pub async fn aztec_cancel(&self, id: String) -> Result<(), BrokerError> {
        self.aztec_call(AztecOp::Cancel(id)).await.map(|_| ())
    }

    /// Aztec's `getCompletedJobs`.
    pub async fn aztec_completed(&self, ids: Vec<String>) -> Result<Vec<String>, BrokerError> {
        match self.aztec_call(AztecOp::Completed(ids)).await? {
            Reply::Texts(v) => Ok(v),
            _ => Err(BrokerError::Unavailable),
        }
    }

    /// Changes timeouts, retries, retention or limits at run time.
    pub async fn tune(&self, change: PolicyChange) -> Result<(), BrokerError> {
        self.call(Op::Tune(change)).await.map(|_| ())
    }

    /// Whether the writer thread answers (for the watchdog).
    pub async fn ping(&self) -> bool {
        self.call(Op::Ping).await.is_ok()
    }

    /// Stops the writer after it has committed everything it accepted.
    pub async fn shutdown(&self) {
        let _ = self.call(Op::Shutdown).await;
    }

    /// A job's status (read from the last committed state).
    pub fn status(&self, id: &JobId) -> Result<ProvingJobStatus, BrokerError> {
        let r = self.store.read()?;
        queue::status_of(&r, &self.t, id)
    }

    /// The bytes behind a `blob:` (or inline) URI.
    pub fn blob(&self, uri: &ProofUri) -> Result<Vec<u8>, BrokerError> {
        let r = self.store.read()?;
        queue::read_blob(&r, &self.t, uri)
    }

    /// The size in bytes of a blob `uri` names, without copying it.
    pub fn blob_len(&self, uri: &ProofUri) -> Result<usize, BrokerError> {
        let r = self.store.read()?;
        queue::with_blob(&r, &self.t, uri, |b| b.len())
    }

    /// A blob as base64, encoded straight from the store's pages.
    pub fn blob_base64(&self, uri: &ProofUri) -> Result<String, BrokerError> {
        let r = self.store.read()?;
        queue::with_blob(&r, &self.t, uri, aztec_prover_protocol::uri::to_base64)
    }

    /// The latest counters.
    pub fn stats(&self) -> Arc<QueueStats> {
        self.stats.borrow().clone()
    }

    /// A receiver that changes whenever the counters do.
    pub fn watch_stats(&self) -> watch::Receiver<Arc<QueueStats>> {
        self.stats.clone()
    }

    /// Size of the store on disk.
    pub fn disk_bytes(&self) -> Result<u64, BrokerError> {
        Ok(self.store.disk_bytes()?)
    }
}

/// Applies one operation.
fn apply(q: &mut Queue, txn: &mut WriteTxn<'_>, op: Op, now: u64) -> Result<Reply, BrokerError> {
    Ok(match op {
        Op::Enqueue(req) => Reply::Status(q.enqueue(txn, &req)?),
        Op::Lease { filter, agent } => Reply::Job(q.lease(txn, &filter, &agent, now)?),
        Op::Success {
            id,
            started_at,
            result,
            next,
        } => {
            let agent = q.report_success(txn, &id, started_at, &result)?;
            Reply::Job(match next {
                Some(f) => q.lease(txn, &f, &agent, now)?,
                None => None,
            })
        }
        Op::Error {
            id,
            started_at,
            reason,
            retry,
            next,
        } => {
            let agent = q.report_error(txn, &id, started_at, &reason, retry)?;
            Reply::Job(match next {
                Some(f) => q.lease(txn, &f, &agent, now)?,
                None => None,
            })
        }
        Op::Heartbeat { id, started_at } => {
            q.heartbeat(txn, &id, started_at, now)?;
            Reply::Unit
        }
        Op::Cancel(id) => {
            q.cancel(txn, &id)?;
            Reply::Unit
        }
        Op::Refuse { id, value, reason } => {
            Reply::Status(q.refuse_result(txn, &id, &value, &reason)?)
        }
        Op::CancelEpoch(e) => Reply::Count(q.cancel_epoch(txn, e)?),
        Op::Completed(ids) => Reply::Ids(q.completed(txn, &ids)?),
        Op::Aztec(op) => apply_aztec(q, txn, op, now)?,
        Op::Tune(c) => {
            let mut p = q.policy().clone();
            c.apply_to(&mut p);
            q.set_policy(p);
            Reply::Unit
        }
        Op::Ping | Op::Shutdown => Reply::Unit,
    })
}

/// Applies one call of the Aztec-compatible API.
fn apply_aztec(
    q: &mut Queue,
    txn: &mut WriteTxn<'_>,
    op: AztecOp,
    now: u64,
) -> Result<Reply, BrokerError> {
    Ok(match op {
        AztecOp::Enqueue(job) => Reply::Status(q.aztec_enqueue(txn, &job)?),
        AztecOp::Lease { filter, agent } => {
            Reply::AztecJob(q.aztec_lease(txn, filter.as_ref(), &agent, now)?)
        }
        AztecOp::Success {
            id,
            uri,
            next,
            agent,
        } => Reply::AztecJob(q.aztec_success(txn, &id, &uri, next.as_ref(), &agent, now)?),
        AztecOp::Error {
            id,
            reason,
            retry,
            next,
            agent,
        } => {
            Reply::AztecJob(q.aztec_error(txn, &id, &reason, retry, next.as_ref(), &agent, now)?)
        }
        AztecOp::Progress {
            id,
            started_at,
            next,
            agent,
        } => Reply::AztecJob(q.aztec_progress(txn, &id, started_at, next.as_ref(), &agent, now)?),
        AztecOp::Cancel(id) => {
            q.aztec_cancel(txn, &id)?;
            Reply::Unit
        }
        AztecOp::Completed(ids) => Reply::Texts(q.aztec_completed(txn, &ids)?),
    })
}

fn run(
    store: Arc<Store>,
    mut q: Queue,
    rx: Receiver<Command>,
    stats_tx: watch::Sender<Arc<QueueStats>>,
    options: WriterOptions,
) {
    let mut next_tick = Instant::now() + options.poll_interval;
    let mut job_metrics = crate::metrics::JobMetrics::new(&options.metrics);
    let mut shutdown = false;
    while !shutdown {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let mut batch = Vec::new();
        match rx.recv_timeout(wait) {
            Ok(cmd) => batch.push(cmd),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < options.batch_size.max(1) {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        shutdown = batch.iter().any(|c| matches!(c.op, Op::Shutdown));
        let tick_due = Instant::now() >= next_tick;
        if tick_due {
            next_tick = Instant::now() + options.poll_interval;
        }
        if batch.is_empty() && !tick_due {
            continue;
        }
        process(
            &store,
            &mut q,
            batch,
            tick_due,
            &stats_tx,
            &options,
            &mut job_metrics,
        );
    }
    tracing::debug!("broker writer stopped");
}

fn process(
    store: &Store,
    q: &mut Queue,
    batch: Vec<Command>,
    tick_due: bool,
    stats_tx: &watch::Sender<Arc<QueueStats>>,
    options: &WriterOptions,
    job_metrics: &mut crate::metrics::JobMetrics,
) {
    let mut txn = match store.write() {
        Ok(txn) => txn,
        Err(e) => {
            for cmd in batch {
                let _ = cmd.reply.send(Err(BrokerError::Storage(e.clone())));
            }
            return;
        }
    };
    let now = now_ms();
    let mut poisoned = None;
    let mut results = Vec::with_capacity(batch.len());
    let before = q.checkpoint();
    for cmd in batch {
        let mark = q.checkpoint();
        let result = match txn.nested() {
            Err(e) => Err(BrokerError::Storage(e)),
            Ok(mut nested) => match apply(q, &mut nested, cmd.op, now) {
                Ok(reply) => match nested.commit() {
                    Ok(()) => Ok(reply),
                    Err(e) => {
                        poisoned = Some(e.clone());
                        Err(BrokerError::Storage(e))
                    }
                },
                Err(e) => {
                    // The store forgets this request's writes; so does memory.
                    drop(nested);
                    q.roll_back(mark);
                    Err(e)
                }
            },
        };
        results.push((cmd.reply, result));
    }
    if tick_due && poisoned.is_none() {
        let pass = q
            .expire_leases(&mut txn, now)
            .and_then(|_| q.clean_old_epochs(&mut txn, options.cleanup_budget));
        match pass {
            Ok(_) => {}
            Err(BrokerError::Storage(e)) => poisoned = Some(e),
            Err(e) => tracing::error!("lease and retention pass failed: {e}"),
        }
    }
    let mut stats_changed = false;
    if poisoned.is_none() {
        match q.flush_stats(&mut txn) {
            Ok(changed) => stats_changed = changed,
            Err(BrokerError::Storage(e)) => poisoned = Some(e),
            Err(e) => tracing::error!("cannot write counters: {e}"),
        }
    }
    // A transaction with nothing written commits without touching the disk.
    let commit = match poisoned {
        Some(e) => Err(e),
        None => txn.commit(),
    };
    match commit {
        Ok(()) => {
            q.settle();
            let now = Instant::now();
            for e in q.take_events() {
                log_event(&e);
                job_metrics.observe(&e, now);
            }
            // Counters first, so a client that hears back sees its change
            // in getQueueStats.
            if stats_changed {
                stats_tx.send_replace(Arc::new(q.stats()));
            }
            for (reply, r) in results {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            // Nothing of this batch reached the store: undo it in memory
            // too, and only it (leases granted before stay held).
            q.roll_back(before);
            q.settle();
            tracing::error!(
                "broker store commit failed, {} requests refused, nothing else changed: {e}",
                results.len()
            );
            for (reply, _) in results {
                let _ = reply.send(Err(BrokerError::Storage(e.clone())));
            }
        }
    }
}

fn log_event(e: &Event) {
    match e {
        Event::Enqueued { id, ty } => {
            tracing::debug!(EPOCH = id.epoch(), JOB_ID = %id, JOB_TYPE = ty, "job enqueued")
        }
        Event::Cached { id, ty } => {
            tracing::debug!(EPOCH = id.epoch(), JOB_ID = %id, JOB_TYPE = ty, "job enqueued again (known)")
        }
        Event::Leased { id, ty, agent } => {
            tracing::debug!(EPOCH = id.epoch(), JOB_ID = %id, JOB_TYPE = ty, AGENT = %agent, "job leased")
        }
        Event::Fulfilled { id, ty, agent } => {
            tracing::info!(EPOCH = id.epoch(), JOB_ID = %id, JOB_TYPE = ty, AGENT = %agent, "job proven")
        }
        Event::Retried {
            id,
            ty,
            agent,
            failures,
            reason,
        } => tracing::warn!(
            EPOCH = id.epoch(), JOB_ID = %id, JOB_TYPE = ty, AGENT = %agent,
            "job attempt {failures} failed, queued again: {reason}"
        ),
        Event::Rejected {
            id,
            ty,
            agent,
            reason,
        } => tracing::warn!(
            EPOCH = id.epoch(), JOB_ID = %id, JOB_TYPE = ty, AGENT = %agent,
            "job failed for good: {reason}"
        ),
        Event::LeaseExpired { id, ty, agent } => tracing::warn!(
            EPOCH = id.epoch(), JOB_ID = %id, JOB_TYPE = ty, AGENT = %agent,
            "lease expired without heartbeat"
        ),
        Event::Cancelled { id, ty } => {
            tracing::info!(EPOCH = id.epoch(), JOB_ID = %id, JOB_TYPE = ty, "job cancelled")
        }
        Event::EpochCleaned { epoch, jobs } => {
            tracing::info!(
                EPOCH = *epoch,
                "retention: deleted {jobs} jobs of epoch {epoch}"
            )
        }
    }
}

//! The broker's JSON-RPC 2.0 API, shared by the broker (server) and by the
//! node and agents (clients). `daemons/protocol/broker-api.md` (below)
//! describes it for humans.
//!
//! Method names and meanings follow Aztec's proving broker. Parameters are
//! positional, as in Aztec. Our additions: a `startedAt` lease stamp on every
//! consumer report (so a report from an agent whose lease expired is refused),
//! an optional agent name on `getProvingJob`, `getProofData` to read blobs the
//! broker stores, and `getQueueStats`.
#![doc = include_str!("../broker-api.md")]

use std::collections::BTreeMap;

use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

use crate::job::{Epoch, JobId, JobType, ProvingJob, ProvingJobStatus};
use crate::uri::ProofUri;

/// JSON-RPC error codes the broker answers with, beyond the standard ones
/// (-32700 parse error, -32600 invalid request, -32601 unknown method,
/// -32602 invalid params).
pub mod error_code {
    /// The job id is unknown to the broker.
    pub const JOB_NOT_FOUND: i32 = -32001;
    /// The caller's lease on the job expired or was never granted.
    pub const STALE_LEASE: i32 = -32002;
    /// The job is already fulfilled or rejected.
    pub const ALREADY_SETTLED: i32 = -32003;
    /// The request names a job inconsistently (id does not match inputs, bad URI, ...).
    pub const INVALID_JOB: i32 = -32004;
    /// A payload is over the configured size limit.
    pub const TOO_LARGE: i32 = -32005;
    /// A `blob:` URI that the broker does not hold.
    pub const BLOB_NOT_FOUND: i32 = -32006;
    /// The broker could not commit to its store; nothing was changed.
    pub const STORAGE: i32 = -32010;
    /// The broker is shutting down.
    pub const UNAVAILABLE: i32 = -32011;
}

/// A job as a producer submits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnqueueRequest {
    /// The id the producer computed; checked against the inputs when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<JobId>,
    /// Which circuit.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// The epoch the job belongs to.
    pub epoch_number: Epoch,
    /// The inputs: a `data:` URI (the broker stores it as a blob), a `blob:`
    /// URI the broker already holds, or an external URI passed through.
    pub inputs_uri: ProofUri,
}

/// Which jobs an agent will take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvingJobFilter {
    /// Job types the agent accepts; empty means all.
    #[serde(default)]
    pub allow_list: Vec<JobType>,
}

impl ProvingJobFilter {
    /// Whether the filter admits `t`.
    pub fn allows(&self, t: JobType) -> bool {
        self.allow_list.is_empty() || self.allow_list.contains(&t)
    }
}

/// A leased job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetProvingJobResponse {
    /// The job.
    pub job: ProvingJob,
    /// The lease stamp (ms since the Unix epoch, unique per lease); the agent
    /// passes it back as `startedAt` in every report about this job.
    pub time: u64,
}

/// Counts of jobs in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateCounts {
    /// Waiting for an agent.
    pub queued: u64,
    /// Leased to an agent.
    pub in_progress: u64,
    /// Proven.
    pub fulfilled: u64,
    /// Failed for good.
    pub rejected: u64,
}

impl StateCounts {
    /// Adds another set of counts to this one.
    pub fn add(&mut self, other: &StateCounts) {
        self.queued += other.queued;
        self.in_progress += other.in_progress;
        self.fulfilled += other.fulfilled;
        self.rejected += other.rejected;
    }
}

/// A snapshot of the broker's queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Counts per epoch, then per job type.
    pub epochs: BTreeMap<Epoch, BTreeMap<JobType, StateCounts>>,
    /// Leases that expired and went back to the queue since start.
    pub timeouts: u64,
    /// Current lease timeout.
    pub job_timeout_ms: u64,
    /// Current retry limit.
    pub max_retries: u32,
    /// Counts of the jobs Aztec's node and agents brought (through the
    /// Aztec-compatible API), per epoch, then per Aztec job type name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aztec: BTreeMap<Epoch, BTreeMap<String, StateCounts>>,
}

impl QueueStats {
    /// Totals over all epochs and types, Aztec's jobs included.
    pub fn totals(&self) -> StateCounts {
        let mut t = StateCounts::default();
        for per_type in self.epochs.values() {
            for c in per_type.values() {
                t.add(c);
            }
        }
        for per_type in self.aztec.values() {
            for c in per_type.values() {
                t.add(c);
            }
        }
        t
    }

    /// Totals per Aztec job type name over all epochs.
    pub fn aztec_by_type(&self) -> BTreeMap<String, StateCounts> {
        let mut out: BTreeMap<String, StateCounts> = BTreeMap::new();
        for per_type in self.aztec.values() {
            for (t, c) in per_type {
                out.entry(t.clone()).or_default().add(c);
            }
        }
        out
    }

    /// Totals per job type over all epochs.
    pub fn by_type(&self) -> BTreeMap<JobType, StateCounts> {
        let mut out: BTreeMap<JobType, StateCounts> = BTreeMap::new();
        for per_type in self.epochs.values() {
            for (t, c) in per_type {
                out.entry(*t).or_default().add(c);
            }
        }
        out
    }
}

/// The broker's JSON-RPC API.
#[rpc(server, client)]
pub trait ProvingBrokerApi {
    /// Producer: enqueue a job. Enqueueing a job that exists is a no-op that
    /// returns its current status (a finished job's result at once).
    #[method(name = "enqueueProvingJob")]
    async fn enqueue_proving_job(&self, job: EnqueueRequest) -> RpcResult<ProvingJobStatus>;

    /// Producer: where a job stands.
    #[method(name = "getProvingJobStatus")]
    async fn get_proving_job_status(&self, id: JobId) -> RpcResult<ProvingJobStatus>;

    /// Producer: the result `value` of a fulfilled job failed the producer's
    /// checks (a proof that does not verify): the result is dropped and the
    /// job queued again in its old place, counted as a failed attempt (past
    /// the retry limit it is rejected). A no-op when the job's result is no
    /// longer `value` (already refused, or proven again), so a restarted
    /// producer may repeat it.
    #[method(name = "refuseProvingJobResult")]
    async fn refuse_proving_job_result(
        &self,
        id: JobId,
        value: ProofUri,
        reason: String,
    ) -> RpcResult<ProvingJobStatus>;

    /// Producer: cancel a job that has not settled; it is rejected with reason "cancelled".
    #[method(name = "cancelProvingJob")]
    async fn cancel_proving_job(&self, id: JobId) -> RpcResult<()>;

    /// Producer: ids of jobs settled since the previous call, plus those of
    /// `ids` that are settled.
    #[method(name = "getCompletedJobs")]
    async fn get_completed_jobs(&self, ids: Vec<JobId>) -> RpcResult<Vec<JobId>>;

    /// Consumer: lease the oldest job the filter admits (older epochs first,
    /// then types nearer the epoch root, then first come first served).
    #[method(name = "getProvingJob")]
    async fn get_proving_job(
        &self,
        filter: Option<ProvingJobFilter>,
        agent: Option<String>,
    ) -> RpcResult<Option<GetProvingJobResponse>>;

    /// Consumer: the job is proven; `result` is a `data:` URI (stored as a
    /// blob) or an external URI. With a filter, leases the next job.
    #[method(name = "reportProvingJobSuccess")]
    async fn report_proving_job_success(
        &self,
        id: JobId,
        started_at: u64,
        result: ProofUri,
        filter: Option<ProvingJobFilter>,
    ) -> RpcResult<Option<GetProvingJobResponse>>;

    /// Consumer: the job failed. With `retry` it goes back to the queue until
    /// the retry limit, otherwise it is rejected with `err` as the reason.
    #[method(name = "reportProvingJobError")]
    async fn report_proving_job_error(
        &self,
        id: JobId,
        started_at: u64,
        err: String,
        retry: bool,
        filter: Option<ProvingJobFilter>,
    ) -> RpcResult<Option<GetProvingJobResponse>>;

    /// Consumer: heartbeat for a leased job; extends the lease. A stale lease
    /// is answered with an error so the agent stops working on the job.
    #[method(name = "reportProvingJobProgress")]
    async fn report_proving_job_progress(&self, id: JobId, started_at: u64) -> RpcResult<()>;

    /// Reads a blob the broker stores, as base64. (The server's
    /// implementation also gets the request's extensions: it reserves the
    /// answer's memory in the front door's budget.)
    #[method(name = "getProofData", with_extensions)]
    async fn get_proof_data(&self, uri: ProofUri) -> RpcResult<String>;

    /// Queue depth per epoch and type, timeouts and settings.
    #[method(name = "getQueueStats")]
    async fn get_queue_stats(&self) -> RpcResult<QueueStats>;
}

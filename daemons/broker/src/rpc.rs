//! The broker's JSON-RPC adapter: translates calls to [`Broker`] methods and
//! errors to JSON-RPC error objects. No queue logic lives here.

use aztec_prover_common::front_door::{ANSWER_WAIT, AnswerBudget, AnswerSlot};
use aztec_prover_common::rpc::error;
use aztec_prover_protocol::broker_api::error_code;
use aztec_prover_protocol::{
    EnqueueRequest, GetProvingJobResponse, JobId, ProofUri, ProvingBrokerApiServer,
    ProvingJobFilter, ProvingJobStatus, QueueStats,
};
use jsonrpsee::Extensions;
use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::types::ErrorObjectOwned;

use crate::queue::BrokerError;
use crate::writer::Broker;

/// Serves the broker's API over a [`Broker`] handle.
pub struct RpcAdapter {
    broker: Broker,
    answers: AnswerBudget,
}

impl RpcAdapter {
    /// Wraps a handle; blobs read out at once take at most `answer_bytes`
    /// of memory.
    pub fn new(broker: Broker, answer_bytes: usize) -> RpcAdapter {
        RpcAdapter::with_budget(broker, AnswerBudget::new(answer_bytes))
    }

    /// Wraps a handle; blobs read out share `answers` (with the
    /// Aztec-compatible API's answers).
    pub fn with_budget(broker: Broker, answers: AnswerBudget) -> RpcAdapter {
        RpcAdapter { broker, answers }
    }
}

/// Memory an answer of a blob of `len` bytes takes while it is made and
/// sent: the base64 text and the JSON answer that holds it.
fn answer_bytes(len: usize) -> usize {
    len.div_ceil(3)
        .saturating_mul(4)
        .saturating_mul(2)
        .saturating_add(1024)
}

/// The JSON-RPC error for a broker error.
pub fn to_rpc(e: BrokerError) -> ErrorObjectOwned {
    let code = match &e {
        BrokerError::JobNotFound(_) => error_code::JOB_NOT_FOUND,
        BrokerError::StaleLease { .. } => error_code::STALE_LEASE,
        BrokerError::AlreadySettled { .. } => error_code::ALREADY_SETTLED,
        BrokerError::InvalidJob(_) => error_code::INVALID_JOB,
        BrokerError::TooLarge { .. } => error_code::TOO_LARGE,
        BrokerError::BlobNotFound(_) => error_code::BLOB_NOT_FOUND,
        BrokerError::Storage(_) | BrokerError::Corrupt(_) => {
            tracing::error!("{e}");
            error_code::STORAGE
        }
        BrokerError::Unavailable => error_code::UNAVAILABLE,
    };
    error(code, e.to_string())
}

fn agent_name(agent: Option<String>) -> String {
    match agent {
        Some(a) if !a.trim().is_empty() => a.chars().take(128).collect(),
        _ => "unnamed".into(),
    }
}

#[async_trait]
impl ProvingBrokerApiServer for RpcAdapter {
    async fn enqueue_proving_job(&self, job: EnqueueRequest) -> RpcResult<ProvingJobStatus> {
        self.broker.enqueue(job).await.map_err(to_rpc)
    }

    async fn get_proving_job_status(&self, id: JobId) -> RpcResult<ProvingJobStatus> {
        self.broker.status(&id).map_err(to_rpc)
    }

    async fn refuse_proving_job_result(
        &self,
        id: JobId,
        value: ProofUri,
        reason: String,
    ) -> RpcResult<ProvingJobStatus> {
        let reason: String = reason.chars().take(1000).collect();
        self.broker
            .refuse_result(id, value, reason)
            .await
            .map_err(to_rpc)
    }

    async fn cancel_proving_job(&self, id: JobId) -> RpcResult<()> {
        self.broker.cancel(id).await.map_err(to_rpc)
    }

    async fn get_completed_jobs(&self, ids: Vec<JobId>) -> RpcResult<Vec<JobId>> {
        self.broker.completed(ids).await.map_err(to_rpc)
    }

    async fn get_proving_job(
        &self,
        filter: Option<ProvingJobFilter>,
        agent: Option<String>,
    ) -> RpcResult<Option<GetProvingJobResponse>> {
        self.broker
            .get_job(filter.unwrap_or_default(), agent_name(agent))
            .await
            .map_err(to_rpc)
    }

    async fn report_proving_job_success(
        &self,
        id: JobId,
        started_at: u64,
        result: ProofUri,
        filter: Option<ProvingJobFilter>,
    ) -> RpcResult<Option<GetProvingJobResponse>> {
        self.broker
            .report_success(id, started_at, result, filter)
            .await
            .map_err(to_rpc)
    }

    async fn report_proving_job_error(
        &self,
        id: JobId,
        started_at: u64,
        err: String,
        retry: bool,
        filter: Option<ProvingJobFilter>,
    ) -> RpcResult<Option<GetProvingJobResponse>> {
        let reason: String = err.chars().take(4096).collect();
        self.broker
            .report_error(id, started_at, reason, retry, filter)
            .await
            .map_err(to_rpc)
    }

    async fn report_proving_job_progress(&self, id: JobId, started_at: u64) -> RpcResult<()> {
        self.broker.heartbeat(id, started_at).await.map_err(to_rpc)
    }

    async fn get_proof_data(&self, ext: &Extensions, uri: ProofUri) -> RpcResult<String> {
        let len = self.broker.blob_len(&uri).map_err(to_rpc)?;
        let reservation = self
            .answers
            .reserve(answer_bytes(len), ANSWER_WAIT)
            .await
            .ok_or_else(|| {
                error(
                    error_code::UNAVAILABLE,
                    format!(
                        "too many proofs are being read out at once; no room for {len} bytes within {} s, try again",
                        ANSWER_WAIT.as_secs()
                    ),
                )
            })?;
        let text = self.broker.blob_base64(&uri).map_err(to_rpc)?;
        // The door holds the reservation until the answer is sent; a caller
        // without a door (a test) drops it here.
        if let Some(slot) = ext.get::<AnswerSlot>() {
            slot.hold(reservation);
        }
        Ok(text)
    }

    async fn get_queue_stats(&self) -> RpcResult<QueueStats> {
        Ok((*self.broker.stats()).clone())
    }
}

//! What the node needs of a broker: enqueue a job, read a job's status and
//! its proof data, refuse a result. The node speaks to a real broker over
//! JSON-RPC ([`HttpClient`]); the orchestrator's tests use an in-process
//! double.

use std::future::Future;

use aztec_prover_protocol::{
    EnqueueRequest, JobId, ProofUri, ProvingBrokerApiClient, ProvingJobStatus,
};
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::HttpClient;

/// A broker call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No answer (the broker is down, restarting, out of reach, or refused
    /// the connection with HTTP 429), or an answer that says "later": it is
    /// shutting down, or could not store the change (a full disk). The same
    /// call may work later.
    #[error("{0}")]
    Transient(String),
    /// The broker answered with an error: the same call will fail again.
    #[error("{0}")]
    Refused(String),
}

impl From<ClientError> for CallError {
    fn from(e: ClientError) -> CallError {
        use aztec_prover_protocol::broker_api::error_code::{STORAGE, UNAVAILABLE};
        match &e {
            ClientError::Call(o) if [STORAGE, UNAVAILABLE].contains(&o.code()) => {
                CallError::Transient(e.to_string())
            }
            ClientError::Call(_)
            | ClientError::ParseError(_)
            | ClientError::InvalidRequestId(_) => CallError::Refused(e.to_string()),
            _ => CallError::Transient(e.to_string()),
        }
    }
}

/// The producer's side of the broker API.
pub trait JobBroker: Send + Sync {
    /// `enqueueProvingJob`: a job the broker already holds is left as it is
    /// and its status returned.
    fn enqueue(
        &self,
        job: EnqueueRequest,
    ) -> impl Future<Output = Result<ProvingJobStatus, CallError>> + Send;

    /// `getProvingJobStatus`.
    fn status(&self, id: JobId)
    -> impl Future<Output = Result<ProvingJobStatus, CallError>> + Send;

    /// `getProofData`: a stored result, base64.
    fn proof_data(&self, uri: ProofUri) -> impl Future<Output = Result<String, CallError>> + Send;

    /// `refuseProvingJobResult`: the job's result `value` failed the node's
    /// checks; the broker queues the job again as a failed attempt.
    fn refuse(
        &self,
        id: JobId,
        value: ProofUri,
        reason: String,
    ) -> impl Future<Output = Result<ProvingJobStatus, CallError>> + Send;
}

impl JobBroker for HttpClient {
    async fn enqueue(&self, job: EnqueueRequest) -> Result<ProvingJobStatus, CallError> {
        self.enqueue_proving_job(job).await.map_err(CallError::from)
    }

    async fn status(&self, id: JobId) -> Result<ProvingJobStatus, CallError> {
        self.get_proving_job_status(id)
            .await
            .map_err(CallError::from)
    }

    async fn proof_data(&self, uri: ProofUri) -> Result<String, CallError> {
        self.get_proof_data(uri).await.map_err(CallError::from)
    }

    async fn refuse(
        &self,
        id: JobId,
        value: ProofUri,
        reason: String,
    ) -> Result<ProvingJobStatus, CallError> {
        self.refuse_proving_job_result(id, value, reason)
            .await
            .map_err(CallError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aztec_prover_protocol::broker_api::error_code;
    use jsonrpsee::types::ErrorObjectOwned;

    fn answered(code: i32) -> CallError {
        ClientError::Call(ErrorObjectOwned::owned::<()>(code, "said so", None)).into()
    }

    #[test]
    fn only_answers_that_say_later_are_worth_waiting_for() {
        assert!(matches!(
            answered(error_code::STORAGE),
            CallError::Transient(_)
        ));
        assert!(matches!(
            answered(error_code::UNAVAILABLE),
            CallError::Transient(_)
        ));
        assert!(matches!(
            answered(error_code::INVALID_JOB),
            CallError::Refused(_)
        ));
        assert!(matches!(answered(-32602), CallError::Refused(_)));
        assert!(matches!(
            CallError::from(ClientError::RequestTimeout),
            CallError::Transient(_)
        ));
    }
}

//! What the node needs of a broker: enqueue a job, read a job's status and
//! its proof data, refuse a result. The node speaks to a real broker over
//! JSON-RPC ([`HttpClient`]); the orchestrator's tests use an in-process
//! double.

use std::future::Future;

use aztec_prover_protocol::{
    EnqueueRequest, JobId, ProofUri, ProvingBrokerApiClient, ProvingJobStatus,
};
use jsonrpsee::http_client::HttpClient;

/// The producer's side of the broker API.
pub trait JobBroker: Send + Sync {
    /// `enqueueProvingJob`: a job the broker already holds is left as it is
    /// and its status returned.
    fn enqueue(
        &self,
        job: EnqueueRequest,
    ) -> impl Future<Output = Result<ProvingJobStatus, String>> + Send;

    /// `getProvingJobStatus`.
    fn status(&self, id: JobId) -> impl Future<Output = Result<ProvingJobStatus, String>> + Send;

    /// `getProofData`: a stored result, base64.
    fn proof_data(&self, uri: ProofUri) -> impl Future<Output = Result<String, String>> + Send;

    /// `refuseProvingJobResult`: the job's result `value` failed the node's
    /// checks; the broker queues the job again as a failed attempt.
    fn refuse(
        &self,
        id: JobId,
        value: ProofUri,
        reason: String,
    ) -> impl Future<Output = Result<ProvingJobStatus, String>> + Send;
}

impl JobBroker for HttpClient {
    async fn enqueue(&self, job: EnqueueRequest) -> Result<ProvingJobStatus, String> {
        self.enqueue_proving_job(job)
            .await
            .map_err(|e| e.to_string())
    }

    async fn status(&self, id: JobId) -> Result<ProvingJobStatus, String> {
        self.get_proving_job_status(id)
            .await
            .map_err(|e| e.to_string())
    }

    async fn proof_data(&self, uri: ProofUri) -> Result<String, String> {
        self.get_proof_data(uri).await.map_err(|e| e.to_string())
    }

    async fn refuse(
        &self,
        id: JobId,
        value: ProofUri,
        reason: String,
    ) -> Result<ProvingJobStatus, String> {
        self.refuse_proving_job_result(id, value, reason)
            .await
            .map_err(|e| e.to_string())
    }
}

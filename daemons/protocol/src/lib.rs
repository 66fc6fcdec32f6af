//! Shared vocabulary of aztec-prover: proving jobs, their ids and statuses,
//! proof URIs, and (feature `rpc`, on by default) the broker's JSON-RPC API.
//!
//! Every daemon depends on this crate; it depends on none of them.

#![forbid(unsafe_code)]

pub mod aztec;
#[cfg(feature = "rpc")]
pub mod broker_api;
pub mod job;
pub mod uri;

#[cfg(feature = "rpc")]
pub use broker_api::{
    EnqueueRequest, GetProvingJobResponse, ProvingBrokerApiClient, ProvingBrokerApiServer,
    ProvingJobFilter, QueueStats, StateCounts,
};
pub use job::{Epoch, JobId, JobType, ProvingJob, ProvingJobStatus};
pub use uri::{ProofUri, UriKind};

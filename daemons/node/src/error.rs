//! Why the node could not prove an epoch: one type, so that callers branch
//! on what went wrong (L1, the broker, a job, time, the world state) rather
//! than on message text.

use std::time::Duration;

use aztec_prover_l1::L1Error;
use aztec_prover_protocol::JobId;

use crate::world_state::WorldStateError;

/// Why an epoch was not proven.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// L1 failed (after waiting for it as long as the epoch allowed, where
    /// the failure was worth waiting out).
    #[error("{what}: {source}")]
    L1 {
        /// What the node was doing.
        what: String,
        /// L1's error.
        source: L1Error,
    },
    /// The broker failed a call.
    #[error("broker: {}{message}", job.as_ref().map(|j| format!("{j}: ")).unwrap_or_default())]
    Broker {
        /// The job the call was about, if one.
        job: Option<JobId>,
        /// What the call said.
        message: String,
    },
    /// A job failed for good in the broker (its retries spent, or refused
    /// by every agent).
    #[error("{job} failed for good: {reason}")]
    JobFailed {
        /// The job.
        job: JobId,
        /// The broker's reason.
        reason: String,
    },
    /// The broker no longer knows a job the node enqueued.
    #[error("the broker lost {0}")]
    JobLost(JobId),
    /// The epoch's jobs were not all proven in time.
    #[error("epoch {epoch}: {proven} of {total} jobs proven after {after:?}")]
    Timeout {
        /// The epoch.
        epoch: u64,
        /// Jobs proven and checked.
        proven: usize,
        /// Jobs in the tree.
        total: usize,
        /// The time allowed.
        after: Duration,
    },
    /// The world state could not be read or kept.
    #[error(transparent)]
    WorldState(#[from] WorldStateError),
    /// The remote node did not give a tx the epoch needs.
    #[error("txs: {0}")]
    Txs(String),
    /// Re-executing the chain did not give what L1 recorded, or L1 lacks a
    /// block the epoch needs.
    #[error("re-execution: {0}")]
    Chain(String),
    /// The proven tree does not link (a result that verifies on its own but
    /// does not continue its children).
    #[error("the proven tree does not link: {0}")]
    Links(String),
}

impl NodeError {
    /// L1's `source` while doing `what`.
    pub fn l1(what: impl Into<String>, source: L1Error) -> NodeError {
        NodeError::L1 {
            what: what.into(),
            source,
        }
    }

    /// The broker's `message` about `job`.
    pub fn broker(job: Option<&JobId>, message: impl std::fmt::Display) -> NodeError {
        NodeError::Broker {
            job: job.cloned(),
            message: message.to_string(),
        }
    }
}

//! How the broker's state is laid out in its store: table names, key
//! encodings and the job record. Only `queue.rs` uses this.
//!
//! Tables:
//! - `jobs`:   job id -> [`JobRecord`]
//! - `queue`:  `[kind][epoch BE][seq BE]` -> job id, one entry per queued job
//!   (kind: our job type's id, or 64 + an Aztec job type's number)
//! - `leased`: job id -> empty, one entry per job leased to an agent
//! - `epochs`: `[epoch BE][job id]` -> empty, every job of an epoch (cleanup, cancel)
//! - `blobs`:  sha256 -> bytes; `blob_refs`: sha256 -> u32 LE reference count
//! - `stats`:  `[epoch BE][kind]` -> four u64 LE (queued, in progress, fulfilled, rejected)
//! - `meta`:   `seq` -> u64 LE next queue sequence; `newest_epoch` -> u64 LE
//!   (newest enqueued); `proven_epoch` -> u64 LE (newest with a proven job:
//!   the retention window); `schema` -> u32 LE; `aztec_version` -> the
//!   Aztec release whose type numbers the Aztec jobs' kinds use
//!
//! An Aztec job's key in `jobs` is its id after `aztec/`; its `inputs_uri`
//! (and a fulfilled one's `value`) is the producer's text, or empty when
//! that text was a `data:` URI, which is then held whole as the blob
//! `inputs_blob` (`result_blob`).

use aztec_prover_protocol::{Epoch, StateCounts};
use serde::{Deserialize, Serialize};

/// Table names, in the order [`Tables`] expects them.
pub const TABLE_NAMES: [&str; 8] = [
    "jobs",
    "queue",
    "leased",
    "epochs",
    "blobs",
    "blob_refs",
    "stats",
    "meta",
];

/// The schema version written to `meta`; a store with another version is refused.
pub const SCHEMA_VERSION: u32 = 1;

/// Handles to the broker's tables.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    pub jobs: aztec_prover_store::Table,
    pub queue: aztec_prover_store::Table,
    pub leased: aztec_prover_store::Table,
    pub epochs: aztec_prover_store::Table,
    pub blobs: aztec_prover_store::Table,
    pub blob_refs: aztec_prover_store::Table,
    pub stats: aztec_prover_store::Table,
    pub meta: aztec_prover_store::Table,
}

impl Tables {
    /// Builds from the handles [`aztec_prover_store::Store::open`] returned for [`TABLE_NAMES`].
    pub fn from_handles(h: &[aztec_prover_store::Table]) -> Option<Tables> {
        let [jobs, queue, leased, epochs, blobs, blob_refs, stats, meta] = h else {
            return None;
        };
        Some(Tables {
            jobs: *jobs,
            queue: *queue,
            leased: *leased,
            epochs: *epochs,
            blobs: *blobs,
            blob_refs: *blob_refs,
            stats: *stats,
            meta: *meta,
        })
    }
}

/// Where a stored job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// In the `queue` table.
    Queued,
    /// Leased; `started_at` is the lease stamp the agent must quote.
    InProgress {
        /// The lease stamp.
        started_at: u64,
        /// The agent's name, for logs.
        agent: String,
    },
    /// Proven.
    Fulfilled {
        /// Where the result is.
        value: String,
        /// The agent that reported it (empty for records from before v2).
        agent: String,
    },
    /// Failed for good.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job's kind (see `queue_key`): our type's id, or 64 + Aztec's number.
    pub job_type: u8,
    /// Epoch.
    pub epoch: Epoch,
    /// Where the inputs are.
    pub inputs_uri: String,
    /// Digest of the broker blob holding the inputs, if the broker holds them.
    pub inputs_blob: Option<[u8; 32]>,
    /// Digest of the broker blob holding the result, if any.
    pub result_blob: Option<[u8; 32]>,
    /// Position in its queue (FIFO within epoch and type); kept across retries.
    pub seq: u64,
    /// Failed attempts so far (errors reported with retry, and expired leases).
    pub failures: u32,
    /// Current state.
    pub state: JobState,
}

/// v2 added the agent to `Fulfilled`; v1 records are still read.
const RECORD_VERSION: u8 = 2;

/// The record layout before v2, read for stores written by older versions.
mod v1 {
    use serde::Deserialize;

    use aztec_prover_protocol::Epoch;

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub enum JobState {
        Queued,
        InProgress { started_at: u64, agent: String },
        Fulfilled { value: String },
        Rejected { reason: String },
    }

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct JobRecord {
        pub job_type: u8,
        pub epoch: Epoch,
        pub inputs_uri: String,
        pub inputs_blob: Option<[u8; 32]>,
        pub result_blob: Option<[u8; 32]>,
        pub seq: u64,
        pub failures: u32,
        pub state: JobState,
    }

    impl From<JobRecord> for super::JobRecord {
        fn from(r: JobRecord) -> Self {
            use super::JobState as S;
            super::JobRecord {
                job_type: r.job_type,
                epoch: r.epoch,
                inputs_uri: r.inputs_uri,
                inputs_blob: r.inputs_blob,
                result_blob: r.result_blob,
                seq: r.seq,
                failures: r.failures,
                state: match r.state {
                    JobState::Queued => S::Queued,
                    JobState::InProgress { started_at, agent } => {
                        S::InProgress { started_at, agent }
                    }
                    JobState::Fulfilled { value } => S::Fulfilled {
                        value,
                        agent: String::new(),
                    },
                    JobState::Rejected { reason } => S::Rejected { reason },
                },
            }
        }
    }
}

impl JobRecord {
    /// Serialises with a leading format version byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        // Encoding into a Vec cannot fail for this plain data.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// Parses a stored record; `None` if it is damaged or of another version.
    pub fn decode(bytes: &[u8]) -> Option<JobRecord> {
        match bytes.split_first() {
            Some((&RECORD_VERSION, rest)) => postcard::from_bytes(rest).ok(),
            Some((1, rest)) => postcard::from_bytes::<v1::JobRecord>(rest)
                .ok()
                .map(JobRecord::from),
            _ => None,
        }
    }
}

/// `[kind][epoch BE][seq BE]`.
pub fn queue_key(kind: u8, epoch: Epoch, seq: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = kind;
    k[1..9].copy_from_slice(&epoch.to_be_bytes());
    k[9..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The epoch of a queue key.
pub fn queue_key_epoch(k: &[u8]) -> Option<Epoch> {
    k.get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

/// The sequence number of a queue key.
pub fn queue_key_seq(k: &[u8]) -> Option<u64> {
    k.get(9..17)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

/// `[epoch BE][id]`.
pub fn epoch_key(epoch: Epoch, id: &str) -> Vec<u8> {
    let mut k = epoch.to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// `[epoch BE][kind]`.
pub fn stats_key(epoch: Epoch, kind: u8) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&epoch.to_be_bytes());
    k[8] = kind;
    k
}

/// Parses a stats key into the epoch and the kind byte.
pub fn parse_stats_key(k: &[u8]) -> Option<(Epoch, u8)> {
    if k.len() != 9 {
        return None;
    }
    let epoch = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    Some((epoch, *k.get(8)?))
}

/// Four u64 LE.
pub fn encode_counts(c: &StateCounts) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, v) in [c.queued, c.in_progress, c.fulfilled, c.rejected]
        .into_iter()
        .enumerate()
    {
        out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parses four u64 LE.
pub fn decode_counts(b: &[u8]) -> Option<StateCounts> {
    let get = |i: usize| {
        b.get(i * 8..i * 8 + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
    };
    Some(StateCounts {
        queued: get(0)?,
        in_progress: get(1)?,
        fulfilled: get(2)?,
        rejected: get(3)?,
    })
}

/// A u64 LE value.
pub fn decode_u64(b: &[u8]) -> Option<u64> {
    b.try_into().ok().map(u64::from_le_bytes)
}

/// A u32 LE value.
pub fn decode_u32(b: &[u8]) -> Option<u32> {
    b.try_into().ok().map(u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aztec_prover_protocol::JobType;

    #[test]
    fn record_round_trips_and_rejects_garbage() {
        let r = JobRecord {
            job_type: JobType::MergeRollup.id(),
            epoch: 7,
            inputs_uri: "blob:00".into(),
            inputs_blob: Some([1; 32]),
            result_blob: None,
            seq: 42,
            failures: 1,
            state: JobState::InProgress {
                started_at: 99,
                agent: "a1".into(),
            },
        };
        assert_eq!(JobRecord::decode(&r.encode()), Some(r));
        assert_eq!(JobRecord::decode(b""), None);
        assert_eq!(JobRecord::decode(&[9, 1, 2]), None);
    }

    #[test]
    fn v1_records_are_still_read() {
        let old = v1::JobRecord {
            job_type: JobType::BaseRollup.id(),
            epoch: 3,
            inputs_uri: "blob:01".into(),
            inputs_blob: None,
            result_blob: Some([2; 32]),
            seq: 5,
            failures: 0,
            state: v1::JobState::Fulfilled {
                value: "blob:02".into(),
            },
        };
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_stdvec(&old).unwrap());
        let r = JobRecord::decode(&bytes).unwrap();
        assert_eq!(
            r.state,
            JobState::Fulfilled {
                value: "blob:02".into(),
                agent: String::new()
            }
        );
        assert_eq!((r.epoch, r.seq, r.result_blob), (3, 5, Some([2; 32])));
    }

    #[test]
    fn queue_keys_sort_by_type_then_epoch_then_seq() {
        let a = queue_key(JobType::BaseRollup.id(), 1, 500);
        let b = queue_key(JobType::BaseRollup.id(), 2, 1);
        let c = queue_key(JobType::MergeRollup.id(), 0, 0);
        assert!(a < b && b < c);
        assert_eq!(queue_key_epoch(&b), Some(2));
        assert_eq!(queue_key_seq(&a), Some(500));
    }
}

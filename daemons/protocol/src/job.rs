//! Proving jobs as every daemon sees them: their types, ids, and statuses.
//!
//! Owns the vocabulary only. How jobs are queued (broker), proven (agent) or
//! produced (node) lives in those crates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::uri::ProofUri;

/// An epoch number of the rollup.
pub type Epoch = u64;

/// The circuits an agent can be asked to prove.
///
/// The wire form is the upper-case name (`"BASE_ROLLUP"`); parsing also
/// accepts lower case and dashes (`base-rollup`), which is what operators type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum JobType {
    /// A batch of L1-to-L2 messages hashed into a subtree root.
    BaseParity = 0,
    /// Base parity roots combined into the block's message subtree root.
    RootParity = 1,
    /// One transaction's state transition.
    BaseRollup = 2,
    /// Two consecutive base or merge outputs joined.
    MergeRollup = 3,
    /// A block: its transactions' tree, its messages, its header appended to the archive.
    BlockRootRollup = 4,
    /// Two consecutive block outputs joined.
    BlockMergeRollup = 5,
    /// The epoch: start and end archive, fees, prover id.
    RootRollup = 6,
}

impl JobType {
    /// Every job type, in wire-id order.
    pub const ALL: [JobType; 7] = [
        JobType::BaseParity,
        JobType::RootParity,
        JobType::BaseRollup,
        JobType::MergeRollup,
        JobType::BlockRootRollup,
        JobType::BlockMergeRollup,
        JobType::RootRollup,
    ];

    /// Job types in the order a broker hands them out within one epoch: the
    /// closer to the epoch's root, the sooner, so epochs finish rather than
    /// many epochs progressing at once.
    pub const PRIORITY_ORDER: [JobType; 7] = [
        JobType::BlockRootRollup,
        JobType::BlockMergeRollup,
        JobType::RootRollup,
        JobType::MergeRollup,
        JobType::BaseRollup,
        JobType::RootParity,
        JobType::BaseParity,
    ];

    /// The upper-case wire name.
    pub fn name(self) -> &'static str {
        match self {
            JobType::BaseParity => "BASE_PARITY",
            JobType::RootParity => "ROOT_PARITY",
            JobType::BaseRollup => "BASE_ROLLUP",
            JobType::MergeRollup => "MERGE_ROLLUP",
            JobType::BlockRootRollup => "BLOCK_ROOT_ROLLUP",
            JobType::BlockMergeRollup => "BLOCK_MERGE_ROLLUP",
            JobType::RootRollup => "ROOT_ROLLUP",
        }
    }

    /// The stable one-byte id used in storage keys.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The job type with the given storage id.
    pub fn from_id(id: u8) -> Option<JobType> {
        JobType::ALL.get(usize::from(id)).copied()
    }

    /// Rank in [`JobType::PRIORITY_ORDER`]; lower is served first.
    pub fn priority(self) -> u8 {
        let mut rank = 0u8;
        for t in JobType::PRIORITY_ORDER {
            if t == self {
                return rank;
            }
            rank += 1;
        }
        rank
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A job type name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job type {0:?} (expected one of BASE_PARITY, ROOT_PARITY, BASE_ROLLUP, MERGE_ROLLUP, BLOCK_ROOT_ROLLUP, BLOCK_MERGE_ROLLUP, ROOT_ROLLUP)"
)]
pub struct UnknownJobType(pub String);

impl FromStr for JobType {
    type Err = UnknownJobType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normal = s.trim().to_ascii_uppercase().replace('-', "_");
        JobType::ALL
            .into_iter()
            .find(|t| t.name() == normal)
            .ok_or_else(|| UnknownJobType(s.to_string()))
    }
}

impl Serialize for JobType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for JobType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A job's id: `<epoch>:<TYPE>:<sha256 of the inputs, hex>`.
///
/// Deterministic, so a producer that enqueues the same job twice (say after a
/// restart) gets the same id and the broker treats the second as a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl TryFrom<String> for JobId {
    type Error = MalformedJobId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        JobId::parse(&s)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

/// What the key of a foreign job ([`JobId::foreign`]) starts with; no id
/// of ours does (they start with a digit).
pub const FOREIGN_PREFIX: &str = "aztec/";

/// A string that is not a well-formed job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed job id {0:?} (expected <epoch>:<TYPE>:<64 hex digits>)")]
pub struct MalformedJobId(pub String);

impl JobId {
    /// The id of a job of `job_type` in `epoch` whose inputs hash to `inputs_digest`.
    pub fn new(epoch: Epoch, job_type: JobType, inputs_digest: &[u8; 32]) -> JobId {
        JobId(format!(
            "{epoch}:{}:{}",
            job_type.name(),
            hex::encode(inputs_digest)
        ))
    }

    /// The id of a job whose inputs are `inputs`.
    pub fn for_inputs(epoch: Epoch, job_type: JobType, inputs: &[u8]) -> JobId {
        JobId::new(epoch, job_type, &sha256(inputs))
    }

    /// Parses and checks an id received from outside.
    pub fn parse(s: &str) -> Result<JobId, MalformedJobId> {
        let bad = || MalformedJobId(s.chars().take(200).collect());
        let mut parts = s.splitn(3, ':');
        let (Some(epoch), Some(ty), Some(digest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        // One spelling per epoch: no sign, no leading zeros.
        let number = epoch.parse::<Epoch>().map_err(|_| bad())?;
        if number.to_string() != epoch {
            return Err(bad());
        }
        let ty: JobType = ty.parse().map_err(|_| bad())?;
        if ty.name() != parts_type(s) {
            return Err(bad());
        }
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad());
        }
        Ok(JobId(s.to_string()))
    }

    /// The key of a job another system named (Aztec's node): its own id
    /// text, kept whole, after [`FOREIGN_PREFIX`] so that it can never be
    /// taken for one of ours.
    pub fn foreign(raw: &str) -> JobId {
        JobId(format!("{FOREIGN_PREFIX}{raw}"))
    }

    /// The other system's id text of a [`JobId::foreign`] id.
    pub fn foreign_raw(&self) -> Option<&str> {
        self.0.strip_prefix(FOREIGN_PREFIX)
    }

    /// An id read back from the broker's own store: ours (checked as
    /// [`JobId::parse`] does) or a foreign one.
    pub fn from_stored(s: &str) -> Result<JobId, MalformedJobId> {
        if s.starts_with(FOREIGN_PREFIX) {
            Ok(JobId(s.to_string()))
        } else {
            JobId::parse(s)
        }
    }

    /// The epoch encoded in the id (foreign ids: the number before their
    /// first `:`, as Aztec writes them; 0 when there is none).
    pub fn epoch(&self) -> Epoch {
        self.foreign_raw()
            .unwrap_or(&self.0)
            .split(':')
            .next()
            .and_then(|e| e.parse().ok())
            .unwrap_or_default()
    }

    /// The job type encoded in the id.
    pub fn job_type(&self) -> Option<JobType> {
        if self.foreign_raw().is_some() {
            return None;
        }
        self.0.split(':').nth(1).and_then(|t| t.parse().ok())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for logs and status lines: epoch, type and 8 hex digits.
    pub fn short(&self) -> &str {
        let cut = self
            .0
            .rfind(':')
            .map_or(self.0.len(), |i| (i + 9).min(self.0.len()));
        &self.0[..cut]
    }
}

fn parts_type(s: &str) -> &str {
    s.split(':').nth(1).unwrap_or("")
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A job as handed to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvingJob {
    /// The job's id.
    pub id: JobId,
    /// Which circuit to prove.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// The epoch the job belongs to.
    pub epoch_number: Epoch,
    /// Where the inputs are.
    pub inputs_uri: ProofUri,
}

/// Where a job stands, as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ProvingJobStatus {
    /// Waiting for an agent.
    InQueue,
    /// Leased to an agent.
    InProgress,
    /// The broker does not know this id.
    NotFound,
    /// Proven; `value` locates the result.
    Fulfilled {
        /// Where the result is.
        value: ProofUri,
        /// The agent that reported it (the name it gave when it took the
        /// job), so that a result that fails checking can be traced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// Failed for good.
    Rejected {
        /// The last error an agent reported, or why the broker gave up.
        reason: String,
    },
}

impl ProvingJobStatus {
    /// Whether the job has reached a final state.
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            ProvingJobStatus::Fulfilled { .. } | ProvingJobStatus::Rejected { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_type_parses_operator_spellings() {
        assert_eq!("base-rollup".parse::<JobType>(), Ok(JobType::BaseRollup));
        assert_eq!(
            "BLOCK_MERGE_ROLLUP".parse::<JobType>(),
            Ok(JobType::BlockMergeRollup)
        );
        assert!("tube".parse::<JobType>().is_err());
    }

    #[test]
    fn job_type_ids_round_trip() {
        for t in JobType::ALL {
            assert_eq!(JobType::from_id(t.id()), Some(t));
        }
        assert_eq!(JobType::from_id(7), None);
    }

    #[test]
    fn job_id_is_deterministic_and_parses_back() {
        let a = JobId::for_inputs(12, JobType::MergeRollup, b"inputs");
        let b = JobId::for_inputs(12, JobType::MergeRollup, b"inputs");
        assert_eq!(a, b);
        assert_eq!(a.epoch(), 12);
        assert_eq!(a.job_type(), Some(JobType::MergeRollup));
        assert_eq!(JobId::parse(a.as_str()), Ok(a.clone()));
        assert!(a.short().starts_with("12:MERGE_ROLLUP:"));
        assert_eq!(a.short().len(), "12:MERGE_ROLLUP:".len() + 8);
    }

    #[test]
    fn malformed_job_ids_are_refused() {
        let zero = "0:BASE_ROLLUP:0000000000000000000000000000000000000000000000000000000000000000";
        assert!(JobId::parse(zero).is_ok());
        for bad in [
            "",
            "12",
            "x:BASE_ROLLUP:00",
            "1:NOPE:0000000000000000000000000000000000000000000000000000000000000000",
            "1:base-rollup:0000000000000000000000000000000000000000000000000000000000000000",
            "1:BASE_ROLLUP:zz00000000000000000000000000000000000000000000000000000000000000",
            "+10:BASE_ROLLUP:0000000000000000000000000000000000000000000000000000000000000000",
            "010:BASE_ROLLUP:0000000000000000000000000000000000000000000000000000000000000000",
            " 10:BASE_ROLLUP:0000000000000000000000000000000000000000000000000000000000000000",
            "18446744073709551616:BASE_ROLLUP:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn status_wire_form_matches_aztec() {
        let s = serde_json::to_string(&ProvingJobStatus::InQueue).unwrap();
        assert_eq!(s, r#"{"status":"in-queue"}"#);
        let r = ProvingJobStatus::Rejected {
            reason: "boom".into(),
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"status":"rejected","reason":"boom"}"#);
    }
}

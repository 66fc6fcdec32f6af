//! Aztec's own proving-broker API, as its prover node and agents speak it
//! (`@aztec/prover-client`): the vocabulary only. The broker serves it
//! beside ours (`daemons/broker/src/aztec_rpc.rs`);
//! `daemons/protocol/aztec-api.md` says what each call means there.
//!
//! Aztec's job types are numbers whose meaning changes between Aztec
//! versions, so they are read through a versioned table ([`AztecVersion`]):
//! adding a version is adding a table.
#![doc = include_str!("../aztec-api.md")]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::job::Epoch;

/// The JSON-RPC namespaces Aztec's clients put before each method name
/// (`proverBroker_getProvingJob`): the whole broker, the producer side and
/// the consumer side.
pub const NAMESPACES: [&str; 3] = ["proverBroker", "provingJobProducer", "provingJobConsumer"];

/// Methods of the producer side (the prover node's facade).
pub const PRODUCER_METHODS: [&str; 4] = [
    "enqueueProvingJob",
    "getProvingJobStatus",
    "cancelProvingJob",
    "getCompletedJobs",
];

/// Methods of the consumer side (agents).
pub const CONSUMER_METHODS: [&str; 4] = [
    "getProvingJob",
    "reportProvingJobSuccess",
    "reportProvingJobError",
    "reportProvingJobProgress",
];

/// Aztec's error code for parameters that fail its schema.
pub const INVALID_PARAMS: i32 = -32701;
/// Aztec's error code for a call the broker refused.
pub const CALL_FAILED: i32 = -32702;

/// Longest job id accepted, in bytes (Aztec's are about 110).
pub const MAX_ID_BYTES: usize = 256;

/// An Aztec release whose job type numbering the broker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AztecVersion {
    /// `@aztec/prover-client` 4.1.2 (`ProvingRequestType` of `@aztec/stdlib` 4.1.2).
    V4_1_2,
}

/// 4.1.2's `ProvingRequestType`, by number.
const NAMES_4_1_2: [&str; 18] = [
    "PUBLIC_VM",
    "PUBLIC_CHONK_VERIFIER",
    "PRIVATE_TX_BASE_ROLLUP",
    "PUBLIC_TX_BASE_ROLLUP",
    "TX_MERGE_ROLLUP",
    "BLOCK_ROOT_FIRST_ROLLUP",
    "BLOCK_ROOT_SINGLE_TX_FIRST_ROLLUP",
    "BLOCK_ROOT_EMPTY_TX_FIRST_ROLLUP",
    "BLOCK_ROOT_ROLLUP",
    "BLOCK_ROOT_SINGLE_TX_ROLLUP",
    "BLOCK_MERGE_ROLLUP",
    "CHECKPOINT_ROOT_ROLLUP",
    "CHECKPOINT_ROOT_SINGLE_BLOCK_ROLLUP",
    "CHECKPOINT_PADDING_ROLLUP",
    "CHECKPOINT_MERGE_ROLLUP",
    "ROOT_ROLLUP",
    "PARITY_BASE",
    "PARITY_ROOT",
];

/// 4.1.2's `PROOF_TYPES_IN_PRIORITY_ORDER`: the root first, the leaves last.
const PRIORITY_4_1_2: [u8; 18] = [15, 5, 6, 7, 8, 9, 10, 11, 12, 14, 13, 4, 3, 2, 0, 1, 17, 16];

/// A version name the broker has no table for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Aztec version {0:?} (this broker knows: 4.1.2)")]
pub struct UnknownAztecVersion(pub String);

impl AztecVersion {
    /// Every version with a table, oldest first.
    pub const ALL: [AztecVersion; 1] = [AztecVersion::V4_1_2];

    /// The version the broker speaks unless told otherwise.
    pub const DEFAULT: AztecVersion = AztecVersion::V4_1_2;

    /// Its release name.
    pub fn as_str(self) -> &'static str {
        match self {
            AztecVersion::V4_1_2 => "4.1.2",
        }
    }

    /// Names of the job types, indexed by number.
    pub fn type_names(self) -> &'static [&'static str] {
        match self {
            AztecVersion::V4_1_2 => &NAMES_4_1_2,
        }
    }

    /// Type numbers in the order a broker hands them out.
    pub fn priority_order(self) -> &'static [u8] {
        match self {
            AztecVersion::V4_1_2 => &PRIORITY_4_1_2,
        }
    }

    /// The name of type `n`, if this version has it.
    pub fn type_name(self, n: u8) -> Option<&'static str> {
        self.type_names().get(usize::from(n)).copied()
    }

    /// Whether this version has a type `n`.
    pub fn has_type(self, n: u8) -> bool {
        usize::from(n) < self.type_names().len()
    }

    /// Rank of type `n` in [`AztecVersion::priority_order`]; lower is served first.
    pub fn priority(self, n: u8) -> u8 {
        self.priority_order()
            .iter()
            .position(|t| *t == n)
            .map_or(u8::MAX, |p| p as u8)
    }

    /// Type numbers by name (Aztec's agent config lists names).
    pub fn type_by_name(self, name: &str) -> Option<u8> {
        self.type_names()
            .iter()
            .position(|t| *t == name)
            .map(|p| p as u8)
    }
}

impl fmt::Display for AztecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AztecVersion {
    type Err = UnknownAztecVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('v');
        AztecVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == t)
            .ok_or_else(|| UnknownAztecVersion(s.to_string()))
    }
}

/// A job as Aztec's producer sends it and its agents receive it. The id
/// and URI are the producer's own text, returned byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AztecJob {
    /// The producer's id (Aztec writes `<epoch>:<TYPE>:<inputs hash>`).
    pub id: String,
    /// The job type's number in the broker's [`AztecVersion`].
    #[serde(rename = "type")]
    pub job_type: u8,
    /// The epoch.
    pub epoch_number: Epoch,
    /// Where the inputs are (Aztec's inline store sends a `data:` URI).
    pub inputs_uri: String,
}

/// Which job types an Aztec agent takes (numbers; empty or absent: all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AztecFilter {
    /// Type numbers.
    #[serde(default)]
    pub allow_list: Vec<u8>,
}

/// A job leased to an Aztec agent: `time` is when (ms since the Unix
/// epoch); the agent sends it back with its heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AztecLease {
    /// The job.
    pub job: AztecJob,
    /// The lease's start.
    pub time: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_4_1_2_table_ranks_every_type_once() {
        let v = AztecVersion::V4_1_2;
        let mut seen = v.priority_order().to_vec();
        seen.sort_unstable();
        assert_eq!(seen, (0..18).collect::<Vec<u8>>());
        assert_eq!(v.type_name(15), Some("ROOT_ROLLUP"));
        assert_eq!(v.priority(15), 0);
        assert_eq!(v.priority(16), 17);
        assert_eq!(v.type_by_name("PARITY_ROOT"), Some(17));
        assert!(!v.has_type(18));
        assert_eq!("4.1.2".parse(), Ok(v));
        assert_eq!("v4.1.2".parse(), Ok(v));
        assert!("4.2.0".parse::<AztecVersion>().is_err());
    }

    #[test]
    fn jobs_and_leases_have_aztecs_wire_form() {
        let job = AztecJob {
            id: "3:PARITY_BASE:ab".into(),
            job_type: 16,
            epoch_number: 3,
            inputs_uri: "data:application/json;charset=utf-8,%7B%7D".into(),
        };
        let lease = serde_json::to_string(&AztecLease { job, time: 7 }).unwrap();
        assert_eq!(
            lease,
            r#"{"job":{"id":"3:PARITY_BASE:ab","type":16,"epochNumber":3,"inputsUri":"data:application/json;charset=utf-8,%7B%7D"},"time":7}"#
        );
        let f: AztecFilter = serde_json::from_str(r#"{"allowList":[2,3]}"#).unwrap();
        assert_eq!(f.allow_list, vec![2, 3]);
        assert!(serde_json::from_str::<AztecFilter>(r#"{"allowList":["x"]}"#).is_err());
    }
}

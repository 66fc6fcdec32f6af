//! The L1 side of aztec-prover: the Solidity contracts (`contracts/`), their
//! compiled artifacts (`artifacts/`, built by `compile.js` with solc-js) and
//! what the node and the devnet do with them over alloy.
#![forbid(unsafe_code)]

pub mod artifacts;
pub mod bindings;
pub mod chain;
pub mod failover;
pub mod quote;
pub mod quote_book;
pub mod remote;

pub use chain::{Deployment, L1, L1Error};
pub mod deploy;

use alloy::primitives::{B256, U256};
use aztec_zk::Felt;

/// A field element as the 32-byte word the contracts see (its value, big-endian).
pub fn felt_word(f: &Felt) -> B256 {
    B256::from(U256::from_le_bytes(f.to_bytes()))
}

/// A contract word as a field element; `None` when it is not below the field's modulus.
pub fn word_felt(w: &B256) -> Option<Felt> {
    Felt::from_bytes(&U256::from_be_bytes(w.0).to_le_bytes::<32>())
}

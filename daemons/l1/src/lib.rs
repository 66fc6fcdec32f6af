//! The L1 side of aztec-prover: the Solidity contracts (`contracts/`), their
//! compiled artifacts (`artifacts/`, built by `compile.js` with solc-js) and
//! what the node and the devnet do with them over alloy.
#![forbid(unsafe_code)]

pub mod artifacts;
pub mod bindings;

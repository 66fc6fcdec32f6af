//! What aztec-prover proves and how.
//!
//! - [`felt`], [`params`]: field elements and the circuits' sizes;
//! - [`poseidon`], [`merkle`], [`indexed`]: the hash and the tree gadgets,
//!   with the native hashing that witnesses need;
//! - [`roots`], [`circuits`]: the trees' roots as circuits see them, and the
//!   rollup's circuits (parity, base, merge, block root, block merge, root)
//!   with their inputs and public inputs;
//! - [`synth`]: synthesis and simulation (`PROVER_REAL_PROOFS=false`);
//! - [`groth16`]: the prover (MSMs and NTTs on a backend) and the verifier;
//! - [`keys`]: key files;
//! - [`wire`]: what a job carries (inputs, results) and the job type of
//!   each circuit.
//!
//! The rollup's state and its epochs (the world state's trees, the epoch
//! planner) are in `aztec-prover-rollup`, above this crate.
//!
//! # Public inputs
//!
//! | circuit | public inputs |
//! |---|---|
//! | base-parity | messages.., root |
//! | root-parity | base parity roots.., root |
//! | base-rollup | start, end, effects, fee |
//! | merge-rollup, block-merge-rollup | left.start, left.end, right.end, left.effects, left.fee, right.effects, right.fee, effects, fee |
//! | block-root-rollup | start, end, left.start, left.end, right.end, left.effects, left.fee, right.effects, right.fee, parity root, effects, fee, block number, slot, archive root, header hash |
//! | root-rollup | left.start, left.end, right.end, left.effects, left.fee, right.effects, right.fee, single, epoch, prover id, start archive root, end archive root, first block, last block, total fees, effects |
//!
//! "start"/"end" are state hashes: `H(TxState, ..)` below the block root,
//! `H(BlockState, ..)` from the block root up. The module of each circuit
//! documents what it checks.
#![forbid(unsafe_code)]

pub mod circuits;
pub mod felt;
pub mod groth16;
pub mod indexed;
pub mod keys;
pub mod merkle;
pub mod params;
pub mod poseidon;
pub mod roots;
pub mod synth;
pub mod wire;

pub use circuits::{CircuitId, Inputs};
pub use felt::Felt;
pub use params::RollupParams;

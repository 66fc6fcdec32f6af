//! The rollup's state and its epochs, above the proof system (`aztec_zk`,
//! which has the circuits and the primitives they are built from):
//!
//! - [`world`]: the world state's trees (notes, nullifiers, public data,
//!   messages, archive) over a store: in memory, a fork over a snapshot, or
//!   the node's LMDB; applying a tx gives the base rollup's inputs;
//! - [`plan`]: an epoch's blocks re-executed into its job tree, every job's
//!   circuit inputs;
//! - [`bench`] (feature `bench`): `aztec-prover bench prove`.
#![forbid(unsafe_code)]

#[cfg(feature = "bench")]
pub mod bench;
pub mod plan;
pub mod world;

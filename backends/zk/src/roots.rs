//! The roots of the rollup's trees, as the circuits see them: a tx-level
//! state (the trees a transaction touches) and a block-level state (those
//! plus the L1-to-L2 message tree and the archive of block headers). A
//! state enters public inputs as its tagged Poseidon hash.

use ark_bn254::Fr;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};
use serde::{Deserialize, Serialize};

use crate::felt::Felt;
use crate::poseidon::{Tag, hash, hash_var};

/// The trees a transaction changes: a root and next free leaf for the
/// append-only note hash tree and the indexed nullifier tree, and the root of
/// the public data tree (a sparse tree indexed by slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TxState {
    /// Note hash tree root.
    pub note_root: Felt,
    /// Next free note hash leaf.
    pub note_next: u64,
    /// Nullifier tree root.
    pub nullifier_root: Felt,
    /// Next free nullifier leaf.
    pub nullifier_next: u64,
    /// Public data tree root.
    pub public_root: Felt,
}

impl TxState {
    /// The fields in hashing order.
    pub fn fields(&self) -> [Fr; 5] {
        [
            self.note_root.0,
            Fr::from(self.note_next),
            self.nullifier_root.0,
            Fr::from(self.nullifier_next),
            self.public_root.0,
        ]
    }

    /// `H(TxState, fields)`.
    pub fn hash(&self) -> Fr {
        hash(Tag::TxState, &self.fields())
    }
}

/// A block boundary: the tx-level trees, the message tree and the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BlockState {
    /// The tx-level trees.
    pub tx: TxState,
    /// L1-to-L2 message tree root.
    pub message_root: Felt,
    /// Next free message leaf.
    pub message_next: u64,
    /// Archive root (block headers).
    pub archive_root: Felt,
    /// Next free archive leaf: the number of the next block.
    pub archive_next: u64,
}

impl BlockState {
    /// The fields in hashing order.
    pub fn fields(&self) -> [Fr; 9] {
        let t = self.tx.fields();
        [
            t[0],
            t[1],
            t[2],
            t[3],
            t[4],
            self.message_root.0,
            Fr::from(self.message_next),
            self.archive_root.0,
            Fr::from(self.archive_next),
        ]
    }

    /// `H(BlockState, fields)`.
    pub fn hash(&self) -> Fr {
        hash(Tag::BlockState, &self.fields())
    }
}

/// A state's fields as witnesses.
pub fn alloc_fields(
    cs: &ConstraintSystemRef<Fr>,
    fields: &[Fr],
) -> Result<Vec<FpVar<Fr>>, SynthesisError> {
    fields
        .iter()
        .map(|f| FpVar::new_witness(cs.clone(), || Ok(*f)))
        .collect()
}

/// `H(TxState, fields)` in constraints.
pub fn tx_state_hash_var(fields: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    hash_var(Tag::TxState, fields)
}

/// `H(BlockState, fields)` in constraints.
pub fn block_state_hash_var(fields: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    hash_var(Tag::BlockState, fields)
}

/// What a rollup proof (base, merge, block root, block merge) says about
/// its range: the state hash before and after, the effects hash and the
/// fees. Parents consume these from their children's public inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RollupOutput {
    /// State hash at the start.
    pub start: Felt,
    /// State hash at the end.
    pub end: Felt,
    /// Effects hash.
    pub effects: Felt,
    /// Fees.
    pub fee: Felt,
}

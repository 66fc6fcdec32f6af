//! The block root rollup: closes a block. It takes the block's two tx
//! ranges (base rollups or merges), appends the block's L1-to-L2 message
//! subtree (the root parity's output) to the message tree, and appends the
//! block header's hash to the archive.
//!
//! Public inputs, in order:
//! 0. `H(BlockState, start)`; 1. `H(BlockState, end)`;
//! 2. `left.start` (must be the tx-level part of `start`); 3. `left.end`
//!    (must equal `right.start`); 4. `right.end`; 5. `left.effects`;
//!    6. `left.fee`; 7. `right.effects`; 8. `right.fee`;
//! 9. the message subtree root (the root parity's output);
//! 10. the block's effects hash `H(MergeEffects, left.effects, right.effects)`;
//! 11. the block's fees; 12. the block number (`start.archive_next`);
//! 13. the L2 slot; 14. the archive root after the block; 15. the header hash,
//!     `H(BlockHeader, number, slot, previous archive root, end tx state..,
//!     message root, message next, effects, fees)`.
//!
//! As a child of a block merge or the root, a block root's output is
//! `[0, 1, 10, 11]`: start, end, effects, fees.

use ark_bn254::Fr;
use ark_r1cs_std::eq::EqGadget;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};
use serde::{Deserialize, Serialize};

use super::{expect_len, publish_all, witness};
use crate::felt::Felt;
use crate::indexed::enforce_bits;
use crate::merkle::{append_subtree_var, witness_vec};
use crate::params::RollupParams;
use crate::poseidon::{Tag, hash, hash_var};
use crate::roots::{
    BlockState, RollupOutput, TxState, alloc_fields, block_state_hash_var, tx_state_hash_var,
};

/// Public inputs of a block root.
pub const NUM_PUBLIC: usize = 16;

/// Inputs of a block root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRootInputs {
    /// The state at the start of the block.
    pub start: BlockState,
    /// The first half of the block's transactions.
    pub left: RollupOutput,
    /// The second half.
    pub right: RollupOutput,
    /// The tx-level state after the last transaction (`right.end`'s preimage).
    pub end_tx: TxState,
    /// The root parity's output.
    pub parity_root: Felt,
    /// Path of the message subtree's position.
    pub message_siblings: Vec<Felt>,
    /// The L2 slot of the block.
    pub slot: u64,
    /// Path of the archive leaf `start.archive_next`.
    pub archive_siblings: Vec<Felt>,
}

impl BlockRootInputs {
    /// All-zero inputs of the right shape.
    pub fn blank(p: &RollupParams) -> BlockRootInputs {
        BlockRootInputs {
            start: BlockState::default(),
            left: RollupOutput::default(),
            right: RollupOutput::default(),
            end_tx: TxState::default(),
            parity_root: Felt::ZERO,
            message_siblings: vec![
                Felt::ZERO;
                (p.message_depth - p.log_messages_per_block()) as usize
            ],
            slot: 0,
            archive_siblings: vec![Felt::ZERO; p.archive_depth as usize],
        }
    }

    pub(crate) fn check_shape(&self, p: &RollupParams) -> Result<(), String> {
        expect_len(
            "message_siblings",
            self.message_siblings.len(),
            (p.message_depth - p.log_messages_per_block()) as usize,
        )?;
        expect_len(
            "archive_siblings",
            self.archive_siblings.len(),
            p.archive_depth as usize,
        )
    }
}

/// The block header fields, hashed into the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Block number.
    pub number: u64,
    /// L2 slot.
    pub slot: u64,
    /// Archive root before the block.
    pub previous_archive_root: Felt,
    /// Tx-level trees after the block.
    pub end_tx: TxState,
    /// Message tree root after the block.
    pub message_root: Felt,
    /// Next free message leaf after the block.
    pub message_next: u64,
    /// The block's effects hash.
    pub effects: Felt,
    /// The block's fees.
    pub fee: Felt,
}

impl Header {
    /// `H(BlockHeader, ..)`.
    pub fn hash(&self) -> Fr {
        let mut v = vec![
            Fr::from(self.number),
            Fr::from(self.slot),
            self.previous_archive_root.0,
        ];
        v.extend(self.end_tx.fields());
        v.extend([
            self.message_root.0,
            Fr::from(self.message_next),
            self.effects.0,
            self.fee.0,
        ]);
        hash(Tag::BlockHeader, &v)
    }
}

pub(crate) fn block_root(
    cs: &ConstraintSystemRef<Fr>,
    p: &RollupParams,
    i: &BlockRootInputs,
) -> Result<(), SynthesisError> {
    let s = alloc_fields(cs, &i.start.fields())?;
    let start_hash = block_state_hash_var(&s)?;
    let w = |f: Felt| witness(cs, f.0);
    let (l_start, l_end, r_start, r_end) = (
        w(i.left.start)?,
        w(i.left.end)?,
        w(i.right.start)?,
        w(i.right.end)?,
    );
    let (l_eff, l_fee, r_eff, r_fee) = (
        w(i.left.effects)?,
        w(i.left.fee)?,
        w(i.right.effects)?,
        w(i.right.fee)?,
    );
    r_start.enforce_equal(&l_end)?;
    tx_state_hash_var(&s[..5])?.enforce_equal(&l_start)?;
    let e = alloc_fields(cs, &i.end_tx.fields())?;
    tx_state_hash_var(&e)?.enforce_equal(&r_end)?;

    let parity = witness(cs, i.parity_root.0)?;
    let message_siblings = witness_vec(
        cs,
        &i.message_siblings.iter().map(|f| f.0).collect::<Vec<_>>(),
    )?;
    let (message_root, message_next) = append_subtree_var(
        cs.clone(),
        p.message_depth,
        &s[5],
        &s[6],
        i.start.message_next,
        p.log_messages_per_block(),
        &parity,
        &message_siblings,
    )?;

    let effects = hash_var(Tag::MergeEffects, &[l_eff.clone(), r_eff.clone()])?;
    let fee = &l_fee + &r_fee;
    let slot = witness(cs, Fr::from(i.slot))?;
    enforce_bits(cs, &slot, 64)?;
    let number = s[8].clone();
    let mut header_fields = vec![number.clone(), slot.clone(), s[7].clone()];
    header_fields.extend(e.iter().cloned());
    header_fields.extend([
        message_root.clone(),
        message_next.clone(),
        effects.clone(),
        fee.clone(),
    ]);
    let header = hash_var(Tag::BlockHeader, &header_fields)?;
    let archive_siblings = witness_vec(
        cs,
        &i.archive_siblings.iter().map(|f| f.0).collect::<Vec<_>>(),
    )?;
    let (archive_root, archive_next) = append_subtree_var(
        cs.clone(),
        p.archive_depth,
        &s[7],
        &s[8],
        i.start.archive_next,
        0,
        &header,
        &archive_siblings,
    )?;

    let mut end = e;
    end.extend([
        message_root,
        message_next,
        archive_root.clone(),
        archive_next,
    ]);
    let end_hash = block_state_hash_var(&end)?;

    publish_all(
        cs,
        &[
            &start_hash,
            &end_hash,
            &l_start,
            &l_end,
            &r_end,
            &l_eff,
            &l_fee,
            &r_eff,
            &r_fee,
            &parity,
            &effects,
            &fee,
            &number,
            &slot,
            &archive_root,
            &header,
        ],
    )?;
    Ok(())
}

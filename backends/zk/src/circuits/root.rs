//! The root rollup: an epoch's proof. It joins the epoch's block range
//! (one block root or block merge, or two), and exposes what L1 checks.
//!
//! Public inputs, in order:
//! 0. `left.start`; 1. `left.end` (= `right.start`); 2. `right.end`;
//! 3. `left.effects`; 4. `left.fee`; 5. `right.effects`; 6. `right.fee`;
//! 7. `single`: 1 when the epoch is one child (`left`), and then `right` is
//!    `(left.end, left.end, 0, 0)`;
//! 8. the epoch number; 9. the prover id (who gets the fees);
//! 10. the archive root before the epoch; 11. the archive root after it;
//! 12. the epoch's first block number; 13. its last block number;
//! 14. the epoch's total fees; 15. its effects hash (`left.effects` when
//!     single, else `H(MergeEffects, left.effects, right.effects)`).

use ark_bn254::Fr;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};
use serde::{Deserialize, Serialize};

use super::{publish_all, witness};
use crate::felt::Felt;
use crate::indexed::enforce_bits;
use crate::poseidon::{Tag, hash_var};
use crate::roots::{BlockState, RollupOutput, alloc_fields, block_state_hash_var};

/// Public inputs of a root rollup.
pub const NUM_PUBLIC: usize = 16;

/// Inputs of a root rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RootInputs {
    /// The first (or only) block range.
    pub left: RollupOutput,
    /// The second block range (ignored-but-checked padding when `single`).
    pub right: RollupOutput,
    /// Whether the epoch is `left` alone.
    pub single: bool,
    /// The state before the epoch (`left.start`'s preimage).
    pub start: BlockState,
    /// The state after it (`right.end`'s preimage).
    pub end: BlockState,
    /// Epoch number.
    pub epoch: u64,
    /// The prover's id.
    pub prover_id: Felt,
}

impl RootInputs {
    /// The padding right child for a single-range epoch.
    pub fn padding_right(left: &RollupOutput) -> RollupOutput {
        RollupOutput {
            start: left.end,
            end: left.end,
            effects: Felt::ZERO,
            fee: Felt::ZERO,
        }
    }
}

pub(crate) fn root_rollup(
    cs: &ConstraintSystemRef<Fr>,
    i: &RootInputs,
) -> Result<(), SynthesisError> {
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
    let single = Boolean::new_witness(cs.clone(), || Ok(i.single))?;
    r_start.enforce_equal(&l_end)?;
    r_end.conditional_enforce_equal(&l_end, &single)?;
    r_eff.conditional_enforce_equal(&FpVar::zero(), &single)?;
    r_fee.conditional_enforce_equal(&FpVar::zero(), &single)?;

    let s = alloc_fields(cs, &i.start.fields())?;
    block_state_hash_var(&s)?.enforce_equal(&l_start)?;
    let e = alloc_fields(cs, &i.end.fields())?;
    block_state_hash_var(&e)?.enforce_equal(&r_end)?;

    let epoch = witness(cs, Fr::from(i.epoch))?;
    enforce_bits(cs, &epoch, 64)?;
    let prover = witness(cs, i.prover_id.0)?;
    let total = &l_fee + &r_fee;
    let merged = hash_var(Tag::MergeEffects, &[l_eff.clone(), r_eff.clone()])?;
    let effects = FpVar::conditionally_select(&single, &l_eff, &merged)?;
    let last_block = &e[8] - FpVar::one();

    publish_all(
        cs,
        &[
            &l_start,
            &l_end,
            &r_end,
            &l_eff,
            &l_fee,
            &r_eff,
            &r_fee,
            &FpVar::from(single),
            &epoch,
            &prover,
            &s[7],
            &e[7],
            &s[8],
            &last_block,
            &total,
            &effects,
        ],
    )?;
    Ok(())
}

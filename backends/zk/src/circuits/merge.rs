//! Merge rollup and block merge: two consecutive ranges joined into one.
//! The same constraints serve both levels (tx ranges inside a block, and
//! block ranges inside an epoch); they get separate keys.
//!
//! Public inputs, in order:
//! 0. `left.start`; 1. `left.end`, which must equal `right.start`;
//! 2. `right.end`; 3. `left.effects`; 4. `left.fee`; 5. `right.effects`;
//! 6. `right.fee`; 7. `H(MergeEffects, left.effects, right.effects)`;
//! 8. `left.fee + right.fee`.
//!
//! Items 0-6 restate the children's public inputs (a base rollup's or a
//! merge's `[start, end, effects, fee]`); 0, 2, 7, 8 are this range's output.

use ark_bn254::Fr;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};
use serde::{Deserialize, Serialize};

use super::{publish, witness};
use crate::felt::Felt;
use crate::poseidon::{Tag, hash, hash_var};
use crate::roots::RollupOutput;

/// Public inputs of a merge.
pub const NUM_PUBLIC: usize = 9;

/// The two children's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MergeInputs {
    /// The earlier range.
    pub left: RollupOutput,
    /// The later range.
    pub right: RollupOutput,
}

/// `H(MergeEffects, left, right)`.
pub fn merge_effects(left: Felt, right: Felt) -> Felt {
    Felt(hash(Tag::MergeEffects, &[left.0, right.0]))
}

impl MergeInputs {
    /// What the merge outputs.
    pub fn output(&self) -> RollupOutput {
        RollupOutput {
            start: self.left.start,
            end: self.right.end,
            effects: merge_effects(self.left.effects, self.right.effects),
            fee: Felt(self.left.fee.0 + self.right.fee.0),
        }
    }
}

pub(crate) fn input(cs: &ConstraintSystemRef<Fr>, v: Felt) -> Result<FpVar<Fr>, SynthesisError> {
    FpVar::new_input(cs.clone(), || Ok(v.0))
}

pub(crate) fn merge(cs: &ConstraintSystemRef<Fr>, i: &MergeInputs) -> Result<(), SynthesisError> {
    let _start = input(cs, i.left.start)?;
    let mid = input(cs, i.left.end)?;
    let _end = input(cs, i.right.end)?;
    let l_eff = input(cs, i.left.effects)?;
    let l_fee = input(cs, i.left.fee)?;
    let r_eff = input(cs, i.right.effects)?;
    let r_fee = input(cs, i.right.fee)?;
    witness(cs, i.right.start.0)?.enforce_equal(&mid)?;
    publish(cs, &hash_var(Tag::MergeEffects, &[l_eff, r_eff])?)?;
    publish(cs, &(l_fee + r_fee))?;
    Ok(())
}

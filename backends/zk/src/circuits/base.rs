//! The base rollup: one transaction applied to the tx-level trees.
//!
//! Public inputs, in order:
//! 0. `H(TxState, start)`: the trees before the transaction;
//! 1. `H(TxState, end)`: the trees after it;
//! 2. the transaction's effects hash, `H(TxEffects, notes.., nullifiers..,
//!    (enabled, slot, value).., fee)` (disabled writes contribute zeros);
//! 3. the fee it pays (below 2^64).
//!
//! What the circuit checks: its `2^log_notes_per_tx` note hashes (zero
//! padded) are appended as one aligned subtree at the note tree's next free
//! index; each nonzero nullifier is inserted into the indexed nullifier tree
//! (low-leaf non-membership, so a nullifier already present makes the
//! witness unsatisfiable); each enabled public write proves the old value at
//! its slot and sets the new one.

use ark_bn254::Fr;
use ark_ff::Zero;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};
use serde::{Deserialize, Serialize};

use super::{expect_len, publish, witness};
use crate::felt::Felt;
use crate::indexed::{InsertWitness, enforce_bits, insert_var};
use crate::merkle::{
    append_subtree_var, index_bits_var, root_from_path_var, subtree_root_var, witness_vec,
};
use crate::params::RollupParams;
use crate::poseidon::{Tag, hash, hash_var};
use crate::roots::{TxState, alloc_fields, tx_state_hash_var};

/// Public inputs of a base rollup.
pub const NUM_PUBLIC: usize = 4;

/// A write to the public data tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublicWrite {
    /// Whether this slot of the transaction is used.
    pub enabled: bool,
    /// The storage slot (a leaf index of the public data tree).
    pub slot: u64,
    /// The new value.
    pub value: Felt,
}

/// A transaction's effects on the trees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// Note hashes (zero padded to `notes_per_tx`).
    pub notes: Vec<Felt>,
    /// Nullifiers (zero: unused slot).
    pub nullifiers: Vec<Felt>,
    /// Public data writes.
    pub public_writes: Vec<PublicWrite>,
    /// Fee paid.
    pub fee: u64,
}

impl Tx {
    /// The tx's hash: sha256 of its postcard encoding. Block proposals on L1
    /// list txs by it, and whoever fetches a tx by hash checks it.
    pub fn hash(&self) -> [u8; 32] {
        use sha2::Digest;
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        sha2::Sha256::digest(&bytes).into()
    }

    /// The padding transaction: touches nothing, pays nothing.
    pub fn empty(p: &RollupParams) -> Tx {
        Tx {
            notes: vec![Felt::ZERO; p.notes_per_tx()],
            nullifiers: vec![Felt::ZERO; p.nullifiers_per_tx as usize],
            public_writes: vec![PublicWrite::default(); p.public_writes_per_tx as usize],
            fee: 0,
        }
    }

    /// The effects hash (public input 2).
    pub fn effects_hash(&self) -> Fr {
        let mut v: Vec<Fr> = self
            .notes
            .iter()
            .chain(&self.nullifiers)
            .map(|f| f.0)
            .collect();
        for w in &self.public_writes {
            if w.enabled {
                v.extend([Fr::from(1u64), Fr::from(w.slot), w.value.0]);
            } else {
                v.extend([Fr::zero(); 3]);
            }
        }
        v.push(Fr::from(self.fee));
        hash(Tag::TxEffects, &v)
    }

    /// Whether the tx has the shape `p` asks for (so many notes,
    /// nullifiers and public writes); the reason when not.
    pub fn check_shape(&self, p: &RollupParams) -> Result<(), String> {
        expect_len("notes", self.notes.len(), p.notes_per_tx())?;
        expect_len(
            "nullifiers",
            self.nullifiers.len(),
            p.nullifiers_per_tx as usize,
        )?;
        expect_len(
            "public_writes",
            self.public_writes.len(),
            p.public_writes_per_tx as usize,
        )?;
        for w in &self.public_writes {
            if w.slot >> p.public_data_depth != 0 {
                return Err(format!(
                    "public data slot {} is not below 2^{}",
                    w.slot, p.public_data_depth
                ));
            }
        }
        Ok(())
    }
}

/// The old value and path of a public write's slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicWriteWitness {
    /// The value before the write.
    pub old_value: Felt,
    /// The slot's path before the write.
    pub siblings: Vec<Felt>,
}

/// Inputs of a base rollup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRollupInputs {
    /// The trees before the transaction.
    pub start: TxState,
    /// The transaction.
    pub tx: Tx,
    /// Path of the note subtree position (from level `log_notes_per_tx` up).
    pub note_siblings: Vec<Felt>,
    /// One per nullifier slot.
    pub nullifier_witnesses: Vec<InsertWitness>,
    /// One per public write slot.
    pub public_witnesses: Vec<PublicWriteWitness>,
}

impl BaseRollupInputs {
    /// All-zero inputs of the right shape.
    pub fn blank(p: &RollupParams) -> BaseRollupInputs {
        BaseRollupInputs {
            start: TxState::default(),
            tx: Tx::empty(p),
            note_siblings: vec![Felt::ZERO; (p.note_depth - p.log_notes_per_tx) as usize],
            nullifier_witnesses: vec![
                InsertWitness::unused(p.nullifier_depth);
                p.nullifiers_per_tx as usize
            ],
            public_witnesses: vec![
                PublicWriteWitness {
                    old_value: Felt::ZERO,
                    siblings: vec![Felt::ZERO; p.public_data_depth as usize]
                };
                p.public_writes_per_tx as usize
            ],
        }
    }

    /// Whether the tx has the shape `p` asks for (so many notes,
    /// nullifiers and public writes); the reason when not.
    pub fn check_shape(&self, p: &RollupParams) -> Result<(), String> {
        self.tx.check_shape(p)?;
        expect_len(
            "note_siblings",
            self.note_siblings.len(),
            (p.note_depth - p.log_notes_per_tx) as usize,
        )?;
        expect_len(
            "nullifier_witnesses",
            self.nullifier_witnesses.len(),
            p.nullifiers_per_tx as usize,
        )?;
        for w in &self.nullifier_witnesses {
            expect_len(
                "nullifier low_siblings",
                w.low_siblings.len(),
                p.nullifier_depth as usize,
            )?;
            expect_len(
                "nullifier new_siblings",
                w.new_siblings.len(),
                p.nullifier_depth as usize,
            )?;
            if w.low_index >> p.nullifier_depth != 0 {
                return Err(format!(
                    "nullifier low leaf index {} is outside the tree",
                    w.low_index
                ));
            }
        }
        expect_len(
            "public_witnesses",
            self.public_witnesses.len(),
            p.public_writes_per_tx as usize,
        )?;
        for w in &self.public_witnesses {
            expect_len(
                "public write siblings",
                w.siblings.len(),
                p.public_data_depth as usize,
            )?;
        }
        Ok(())
    }
}

fn felts(v: &[Felt]) -> Vec<Fr> {
    v.iter().map(|f| f.0).collect()
}

pub(crate) fn base_rollup(
    cs: &ConstraintSystemRef<Fr>,
    p: &RollupParams,
    i: &BaseRollupInputs,
) -> Result<(), SynthesisError> {
    let s = alloc_fields(cs, &i.start.fields())?;
    publish(cs, &tx_state_hash_var(&s)?)?;

    // Note hashes: one aligned subtree.
    let notes = witness_vec(cs, &felts(&i.tx.notes))?;
    let sub = subtree_root_var(&notes)?;
    let note_siblings = witness_vec(cs, &felts(&i.note_siblings))?;
    let (note_root, note_next) = append_subtree_var(
        cs.clone(),
        p.note_depth,
        &s[0],
        &s[1],
        i.start.note_next,
        p.log_notes_per_tx,
        &sub,
        &note_siblings,
    )?;

    // Nullifiers, one insertion each.
    let mut null_root = s[2].clone();
    let mut null_next = s[3].clone();
    let mut next_value = i.start.nullifier_next;
    let mut nullifiers = Vec::with_capacity(i.tx.nullifiers.len());
    for (v, w) in i.tx.nullifiers.iter().zip(&i.nullifier_witnesses) {
        let var = witness(cs, v.0)?;
        (null_root, null_next) = insert_var(
            cs,
            p.nullifier_depth,
            &null_root,
            &null_next,
            next_value,
            &var,
            w,
        )?;
        if !v.0.is_zero() {
            next_value += 1;
        }
        nullifiers.push(var);
    }

    // Public data writes.
    let mut public_root = s[4].clone();
    let mut writes = Vec::with_capacity(3 * i.tx.public_writes.len());
    for (wr, ww) in i.tx.public_writes.iter().zip(&i.public_witnesses) {
        let enabled = Boolean::new_witness(cs.clone(), || Ok(wr.enabled))?;
        let (bits, slot) = index_bits_var(cs.clone(), wr.slot, p.public_data_depth)?;
        let value = witness(cs, wr.value.0)?;
        let old = witness(cs, ww.old_value.0)?;
        let siblings = witness_vec(cs, &felts(&ww.siblings))?;
        root_from_path_var(&old, &bits, &siblings)?
            .conditional_enforce_equal(&public_root, &enabled)?;
        let updated = root_from_path_var(&value, &bits, &siblings)?;
        public_root = FpVar::conditionally_select(&enabled, &updated, &public_root)?;
        writes.push(FpVar::from(enabled.clone()));
        writes.push(FpVar::conditionally_select(
            &enabled,
            &slot,
            &FpVar::zero(),
        )?);
        writes.push(FpVar::conditionally_select(
            &enabled,
            &value,
            &FpVar::zero(),
        )?);
    }

    let fee = witness(cs, Fr::from(i.tx.fee))?;
    enforce_bits(cs, &fee, 64)?;

    let end = [note_root, note_next, null_root, null_next, public_root];
    publish(cs, &tx_state_hash_var(&end)?)?;
    let mut effects: Vec<FpVar<Fr>> = notes;
    effects.extend(nullifiers);
    effects.extend(writes);
    effects.push(fee.clone());
    publish(cs, &hash_var(Tag::TxEffects, &effects)?)?;
    publish(cs, &fee)?;
    Ok(())
}

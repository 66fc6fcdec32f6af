//! The indexed Merkle tree of nullifiers: leaves form a sorted linked list
//! `(value, next_value, next_index)`, so non-membership of `v` is shown by the
//! "low leaf" whose value is below `v` and whose next value is above it (or
//! zero, the end of the list). Leaf 0 is `(0, 0, 0)`.
//!
//! Insertion of `v`: prove the low leaf, point it at `v`, and append
//! `(v, low.next_value, low.next_index)` at the next free index. Inserting a
//! value already present is impossible: no low leaf brackets it.
//!
//! Values are below 2^250 so that comparisons are range checks.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};
use serde::{Deserialize, Serialize};

use crate::felt::Felt;
use crate::merkle::{index_bits_var, root_from_path_var, witness_vec};
use crate::poseidon::{Tag, hash, hash_var};

/// Nullifier values are below 2^VALUE_BITS.
pub const VALUE_BITS: u32 = 250;

/// A leaf of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Leaf {
    /// Its value.
    pub value: Felt,
    /// The next larger value in the tree (zero: none).
    pub next_value: Felt,
    /// Where that value is.
    pub next_index: u64,
}

impl Leaf {
    /// The leaf's hash as stored in the tree.
    pub fn hash(&self) -> Fr {
        hash(
            Tag::NullifierLeaf,
            &[self.value.0, self.next_value.0, Fr::from(self.next_index)],
        )
    }
}

/// Everything a circuit needs to insert one nullifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertWitness {
    /// The low leaf before the insertion.
    pub low_leaf: Leaf,
    /// Its index.
    pub low_index: u64,
    /// Its path before the insertion.
    pub low_siblings: Vec<Felt>,
    /// The path of the new leaf's (empty) position after the low leaf's update.
    pub new_siblings: Vec<Felt>,
}

impl InsertWitness {
    /// The witness of an unused slot (nothing is inserted).
    pub fn unused(depth: u32) -> InsertWitness {
        let zeros = vec![Felt::ZERO; depth as usize];
        InsertWitness {
            low_leaf: Leaf::default(),
            low_index: 0,
            low_siblings: zeros.clone(),
            new_siblings: zeros,
        }
    }
}

/// Why a value cannot be inserted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// Zero marks an unused slot.
    #[error("nullifier zero is reserved")]
    Zero,
    /// Already in the tree: a double spend.
    #[error("nullifier {0} is already in the tree")]
    Duplicate(String),
    /// Too large for the comparisons.
    #[error("nullifier {0} is not below 2^250")]
    TooLarge(String),
    /// The tree is full.
    #[error("the nullifier tree is full")]
    Full,
}

/// Whether `v` is below 2^250.
pub fn in_range(v: &Fr) -> bool {
    v.into_bigint().num_bits() <= VALUE_BITS
}

/// Enforces `0 <= x < 2^bits`.
pub fn enforce_bits(
    cs: &ConstraintSystemRef<Fr>,
    x: &FpVar<Fr>,
    bits: u32,
) -> Result<(), SynthesisError> {
    let value = x.value().unwrap_or_default().into_bigint();
    let mut acc = FpVar::zero();
    let mut weight = Fr::from(1u64);
    for i in 0..bits {
        let b = Boolean::new_witness(cs.clone(), || Ok(value.get_bit(i as usize)))?;
        acc += FpVar::from(b) * weight;
        weight += weight;
    }
    acc.enforce_equal(x)
}

use ark_r1cs_std::R1CSVar;

/// Inserts `v` (when nonzero) into the tree `(root, next)`; zero leaves the
/// tree unchanged. Returns the new root and next index.
pub fn insert_var(
    cs: &ConstraintSystemRef<Fr>,
    depth: u32,
    root: &FpVar<Fr>,
    next: &FpVar<Fr>,
    next_value: u64,
    v: &FpVar<Fr>,
    w: &InsertWitness,
) -> Result<(FpVar<Fr>, FpVar<Fr>), SynthesisError> {
    let used = !v.is_zero()?;
    let lv = FpVar::new_witness(cs.clone(), || Ok(w.low_leaf.value.0))?;
    let lnv = FpVar::new_witness(cs.clone(), || Ok(w.low_leaf.next_value.0))?;
    let lni = FpVar::new_witness(cs.clone(), || Ok(Fr::from(w.low_leaf.next_index)))?;
    let (low_bits, _) = index_bits_var(cs.clone(), w.low_index, depth)?;
    let low_sib = witness_vec(cs, &w.low_siblings.iter().map(|f| f.0).collect::<Vec<_>>())?;
    let new_sib = witness_vec(cs, &w.new_siblings.iter().map(|f| f.0).collect::<Vec<_>>())?;
    // The low leaf is in the tree.
    let low_hash = hash_var(Tag::NullifierLeaf, &[lv.clone(), lnv.clone(), lni.clone()])?;
    root_from_path_var(&low_hash, &low_bits, &low_sib)?.conditional_enforce_equal(root, &used)?;
    // It brackets v: low.value < v, and v < low.next_value unless that is zero (end of list).
    enforce_bits(
        cs,
        &FpVar::conditionally_select(&used, &(v - &lv - FpVar::one()), &FpVar::zero())?,
        VALUE_BITS,
    )?;
    enforce_bits(cs, v, VALUE_BITS)?;
    let open_end = lnv.is_zero()?;
    let gap = FpVar::conditionally_select(
        &(open_end | !used.clone()),
        &FpVar::zero(),
        &(&lnv - v - FpVar::one()),
    )?;
    enforce_bits(cs, &gap, VALUE_BITS)?;
    // Point the low leaf at v (at index next).
    let updated = hash_var(Tag::NullifierLeaf, &[lv, v.clone(), next.clone()])?;
    let root1 = root_from_path_var(&updated, &low_bits, &low_sib)?;
    // Append (v, low.next_value, low.next_index) at next, which must be empty.
    let (new_bits, pos) = index_bits_var(cs.clone(), next_value, depth)?;
    pos.enforce_equal(next)?;
    root_from_path_var(&FpVar::zero(), &new_bits, &new_sib)?
        .conditional_enforce_equal(&root1, &used)?;
    let leaf = hash_var(Tag::NullifierLeaf, &[v.clone(), lnv, lni])?;
    let root2 = root_from_path_var(&leaf, &new_bits, &new_sib)?;
    let new_root = FpVar::conditionally_select(&used, &root2, root)?;
    let new_next = next + FpVar::from(used);
    Ok((new_root, new_next))
}

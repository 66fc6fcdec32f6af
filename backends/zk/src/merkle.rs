//! Poseidon Merkle trees: the hashing (empty subtrees, paths, subtree
//! roots) and the gadgets that check paths, appends and updates in
//! constraints. The trees themselves live in a store (`world::trees`).
//!
//! Leaves are field elements, empty leaves are zero, a node is
//! `hash2(left, right)`. Paths list siblings from the leaf level upwards.

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::Zero;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};

use crate::poseidon::{hash2, hash2_var};

/// Roots of empty subtrees: `E[0] = 0`, `E[i+1] = H(E[i], E[i])`, up to level 64.
pub fn empty_roots() -> &'static [Fr] {
    static ROOTS: OnceLock<Vec<Fr>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut v = vec![Fr::zero()];
        for i in 0..64 {
            let e = v[i];
            v.push(hash2(e, e));
        }
        v
    })
}

/// The root reached from `leaf` at `index` with `siblings`.
pub fn root_from_path(leaf: Fr, index: u64, siblings: &[Fr]) -> Fr {
    let mut cur = leaf;
    for (level, s) in siblings.iter().enumerate() {
        cur = if (index >> level) & 1 == 0 {
            hash2(cur, *s)
        } else {
            hash2(*s, cur)
        };
    }
    cur
}

/// The root of a full subtree over `leaves` (a power of two).
pub fn subtree_root(leaves: &[Fr]) -> Fr {
    let mut level: Vec<Fr> = leaves.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| hash2(p[0], p[1])).collect();
    }
    level.first().copied().unwrap_or_else(Fr::zero)
}

/// Allocates `index` as `bits` little-endian witness bits and returns them
/// with the index rebuilt from them (so the index is range-checked).
pub fn index_bits_var(
    cs: ConstraintSystemRef<Fr>,
    index: u64,
    bits: u32,
) -> Result<(Vec<Boolean<Fr>>, FpVar<Fr>), SynthesisError> {
    let mut out = Vec::with_capacity(bits as usize);
    let mut acc = FpVar::zero();
    let mut weight = Fr::from(1u64);
    for i in 0..bits {
        let b = Boolean::new_witness(cs.clone(), || Ok((index >> i) & 1 == 1))?;
        acc += FpVar::from(b.clone()) * weight;
        weight += weight;
        out.push(b);
    }
    Ok((out, acc))
}

/// The root reached from `leaf` along `siblings`, turning right where a bit is set.
pub fn root_from_path_var(
    leaf: &FpVar<Fr>,
    bits: &[Boolean<Fr>],
    siblings: &[FpVar<Fr>],
) -> Result<FpVar<Fr>, SynthesisError> {
    let mut cur = leaf.clone();
    for (bit, s) in bits.iter().zip(siblings) {
        let left = FpVar::conditionally_select(bit, s, &cur)?;
        let right = FpVar::conditionally_select(bit, &cur, s)?;
        cur = hash2_var(&left, &right)?;
    }
    Ok(cur)
}

/// The root of a full subtree over `leaves` (a power of two) in constraints.
pub fn subtree_root_var(leaves: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    let mut level: Vec<FpVar<Fr>> = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| hash2_var(&p[0], &p[1]))
            .collect::<Result<_, _>>()?;
    }
    Ok(level.pop().unwrap_or_else(FpVar::zero))
}

/// Appends a subtree of `2^log_k` leaves with root `sub` to an append-only
/// tree of `depth` at `next` (which must be a multiple of 2^log_k, checked);
/// `siblings` is the path of that subtree position. Returns the new root and next.
#[allow(clippy::too_many_arguments)]
pub fn append_subtree_var(
    cs: ConstraintSystemRef<Fr>,
    depth: u32,
    root: &FpVar<Fr>,
    next: &FpVar<Fr>,
    next_value: u64,
    log_k: u32,
    sub: &FpVar<Fr>,
    siblings: &[FpVar<Fr>],
) -> Result<(FpVar<Fr>, FpVar<Fr>), SynthesisError> {
    let k = 1u64 << log_k;
    let (bits, pos) = index_bits_var(cs, next_value >> log_k, depth - log_k)?;
    next.enforce_equal(&(pos * Fr::from(k)))?;
    let empty = FpVar::Constant(empty_roots()[log_k as usize]);
    root_from_path_var(&empty, &bits, siblings)?.enforce_equal(root)?;
    let new_root = root_from_path_var(sub, &bits, siblings)?;
    Ok((new_root, next + FpVar::Constant(Fr::from(k))))
}

/// Allocates a witness vector.
pub fn witness_vec(
    cs: &ConstraintSystemRef<Fr>,
    v: &[Fr],
) -> Result<Vec<FpVar<Fr>>, SynthesisError> {
    v.iter()
        .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)))
        .collect()
}

//! Poseidon Merkle trees: an in-memory sparse tree (witness generation and
//! tests; the node keeps its own trees in LMDB with the same hashing) and the
//! gadgets that check paths, appends and updates in constraints.
//!
//! Leaves are field elements, empty leaves are zero, a node is
//! `hash2(left, right)`. Paths list siblings from the leaf level upwards.

use std::collections::HashMap;
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

/// A sparse Merkle tree in memory: only non-empty nodes are stored.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    depth: u32,
    nodes: HashMap<(u32, u64), Fr>,
}

impl MerkleTree {
    /// An empty tree of `depth` levels (2^depth leaves).
    pub fn new(depth: u32) -> MerkleTree {
        MerkleTree {
            depth,
            nodes: HashMap::new(),
        }
    }

    /// Levels.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    fn node(&self, level: u32, index: u64) -> Fr {
        self.nodes
            .get(&(level, index))
            .copied()
            .unwrap_or(empty_roots()[level as usize])
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.node(self.depth, 0)
    }

    /// Leaf `index`.
    pub fn leaf(&self, index: u64) -> Fr {
        self.node(0, index)
    }

    /// Sets leaf `index` and rehashes its path.
    pub fn set(&mut self, index: u64, value: Fr) {
        let mut cur = value;
        let mut i = index;
        self.store(0, i, cur);
        for level in 0..self.depth {
            let sibling = self.node(level, i ^ 1);
            cur = if i & 1 == 0 {
                hash2(cur, sibling)
            } else {
                hash2(sibling, cur)
            };
            i >>= 1;
            self.store(level + 1, i, cur);
        }
    }

    fn store(&mut self, level: u32, index: u64, v: Fr) {
        if v == empty_roots()[level as usize] {
            self.nodes.remove(&(level, index));
        } else {
            self.nodes.insert((level, index), v);
        }
    }

    /// Siblings of leaf `index`, leaf level first.
    pub fn path(&self, index: u64) -> Vec<Fr> {
        (0..self.depth)
            .map(|level| self.node(level, (index >> level) ^ 1))
            .collect()
    }

    /// Siblings of the node at `level`, `index` (a subtree root), up to the root.
    pub fn path_from(&self, level: u32, index: u64) -> Vec<Fr> {
        (level..self.depth)
            .map(|l| self.node(l, (index >> (l - level)) ^ 1))
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ark_r1cs_std::R1CSVar;
    use ark_relations::r1cs::ConstraintSystem;

    #[test]
    fn sparse_tree_paths_lead_to_its_root() {
        let mut t = MerkleTree::new(8);
        assert_eq!(t.root(), empty_roots()[8]);
        for (i, v) in [(0u64, 5u64), (7, 9), (200, 1)] {
            t.set(i, Fr::from(v));
        }
        for i in [0u64, 7, 200, 3] {
            assert_eq!(root_from_path(t.leaf(i), i, &t.path(i)), t.root());
        }
        t.set(7, Fr::zero());
        t.set(0, Fr::zero());
        t.set(200, Fr::zero());
        assert_eq!(t.root(), empty_roots()[8]);
        assert!(t.nodes.is_empty());
    }

    #[test]
    fn subtree_append_gadget_matches_native_tree() {
        let depth = 6;
        let mut t = MerkleTree::new(depth);
        for i in 0..4 {
            t.set(i, Fr::from(i + 1));
        }
        let leaves = [Fr::from(10u64), Fr::from(11u64)];
        let next = 4u64;
        let siblings = t.path_from(1, next >> 1);
        let (old_root, _) = (t.root(), ());
        for (j, l) in leaves.iter().enumerate() {
            t.set(next + j as u64, *l);
        }
        let cs = ConstraintSystem::<Fr>::new_ref();
        let root = FpVar::new_witness(cs.clone(), || Ok(old_root)).unwrap();
        let nextv = FpVar::new_witness(cs.clone(), || Ok(Fr::from(next))).unwrap();
        let lv = witness_vec(&cs, &leaves).unwrap();
        let sub = subtree_root_var(&lv).unwrap();
        let sib = witness_vec(&cs, &siblings).unwrap();
        let (new_root, new_next) =
            append_subtree_var(cs.clone(), depth, &root, &nextv, next, 1, &sub, &sib).unwrap();
        assert_eq!(new_root.value().unwrap(), t.root());
        assert_eq!(new_next.value().unwrap(), Fr::from(6u64));
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn appending_at_an_occupied_position_is_unsatisfiable() {
        let depth = 4;
        let mut t = MerkleTree::new(depth);
        t.set(0, Fr::from(1u64));
        let cs = ConstraintSystem::<Fr>::new_ref();
        let root = FpVar::new_witness(cs.clone(), || Ok(t.root())).unwrap();
        let nextv = FpVar::new_witness(cs.clone(), || Ok(Fr::from(0u64))).unwrap();
        let sub = FpVar::new_witness(cs.clone(), || Ok(Fr::from(2u64))).unwrap();
        let sib = witness_vec(&cs, &t.path(0)).unwrap();
        let _ = append_subtree_var(cs.clone(), depth, &root, &nextv, 0, 0, &sub, &sib).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }
}

//! Tree operations over any store: reading nodes (an absent node is the
//! root of an empty subtree), setting a leaf and rehashing its path, the
//! sibling paths the circuits take, and inserting into the indexed
//! nullifier tree (module `indexed` documents its list of leaves).

use ark_bn254::Fr;
use ark_ff::{PrimeField, Zero};

use super::WorldError;
use super::store::{StorageError, Tree, TreeReader, TreeStore};
use aztec_zk::felt::Felt;
use aztec_zk::indexed::{InsertError, InsertWitness, Leaf, in_range};
use aztec_zk::merkle::empty_roots;
use aztec_zk::poseidon::hash2;

/// The node at `level`, `index` of `tree`.
pub fn node<S: TreeReader>(s: &S, tree: Tree, level: u32, index: u64) -> Result<Fr, StorageError> {
    Ok(s.node((tree, level, index))?
        .unwrap_or(empty_roots()[level as usize]))
}

/// Sets leaf `index` of `tree` (of `depth` levels) and rehashes its path;
/// returns the new root.
pub fn set_leaf<S: TreeStore>(
    s: &mut S,
    tree: Tree,
    depth: u32,
    index: u64,
    value: Fr,
) -> Result<Fr, StorageError> {
    let mut cur = value;
    let mut i = index;
    put(s, tree, 0, i, cur)?;
    for level in 0..depth {
        let sibling = node(s, tree, level, i ^ 1)?;
        cur = if i & 1 == 0 {
            hash2(cur, sibling)
        } else {
            hash2(sibling, cur)
        };
        i >>= 1;
        put(s, tree, level + 1, i, cur)?;
    }
    Ok(cur)
}

fn put<S: TreeStore>(
    s: &mut S,
    tree: Tree,
    level: u32,
    index: u64,
    v: Fr,
) -> Result<(), StorageError> {
    let empty = v == empty_roots()[level as usize];
    s.set_node((tree, level, index), (!empty).then_some(v))
}

/// Siblings of the node at `level`, `index` (a leaf at level 0, or a
/// subtree root) up to the root of a tree of `depth` levels.
pub fn path_from<S: TreeReader>(
    s: &S,
    tree: Tree,
    depth: u32,
    level: u32,
    index: u64,
) -> Result<Vec<Felt>, StorageError> {
    (level..depth)
        .map(|l| node(s, tree, l, (index >> (l - level)) ^ 1).map(Felt))
        .collect()
}

/// The leaf preimage at `index` of the nullifier tree.
fn leaf_at<S: TreeReader>(s: &S, index: u64) -> Result<Leaf, WorldError> {
    s.nullifier_leaf(index)?.ok_or_else(|| {
        WorldError::Storage(StorageError(format!(
            "nullifier leaf {index} is missing: the store is damaged"
        )))
    })
}

/// Whether nullifier `v` is in the tree.
pub fn has_nullifier<S: TreeReader>(s: &S, v: &Fr) -> Result<bool, StorageError> {
    Ok(s.nullifier_floor(v)?.is_some_and(|(f, _)| f == *v))
}

/// Inserts `v` into the nullifier tree of `depth` levels whose next free
/// leaf is `next`; returns the circuit's witness. On error nothing is changed.
pub fn insert_nullifier<S: TreeStore>(
    s: &mut S,
    depth: u32,
    next: u64,
    v: Fr,
) -> Result<InsertWitness, WorldError> {
    if v.is_zero() {
        return Err(InsertError::Zero.into());
    }
    if !in_range(&v) {
        return Err(InsertError::TooLarge(Felt(v).to_hex()).into());
    }
    if next >= 1u64 << depth {
        return Err(InsertError::Full.into());
    }
    let (low_value, low_index) = s.nullifier_floor(&v)?.ok_or_else(|| {
        WorldError::Storage(StorageError(
            "the nullifier tree has no zero leaf: the store is damaged".into(),
        ))
    })?;
    if low_value == v {
        return Err(InsertError::Duplicate(Felt(v).to_hex()).into());
    }
    let low_leaf = leaf_at(s, low_index)?;
    if low_leaf.value.0.into_bigint() != low_value.into_bigint() {
        return Err(WorldError::Storage(StorageError(format!(
            "nullifier leaf {low_index} does not hold the value indexed for it: the store is damaged"
        ))));
    }
    let low_siblings = path_from(s, Tree::Nullifiers, depth, 0, low_index)?;
    let updated = Leaf {
        value: low_leaf.value,
        next_value: Felt(v),
        next_index: next,
    };
    set_leaf(s, Tree::Nullifiers, depth, low_index, updated.hash())?;
    s.set_nullifier_leaf(low_index, updated)?;
    let new_siblings = path_from(s, Tree::Nullifiers, depth, 0, next)?;
    let new_leaf = Leaf {
        value: Felt(v),
        next_value: low_leaf.next_value,
        next_index: low_leaf.next_index,
    };
    set_leaf(s, Tree::Nullifiers, depth, next, new_leaf.hash())?;
    s.set_nullifier_leaf(next, new_leaf)?;
    s.add_nullifier(v, next)?;
    Ok(InsertWitness {
        low_leaf,
        low_index,
        low_siblings,
        new_siblings,
    })
}

/// Starts an empty nullifier tree: the zero leaf at index 0.
pub fn init_nullifiers<S: TreeStore>(s: &mut S, depth: u32) -> Result<(), StorageError> {
    let zero = Leaf::default();
    set_leaf(s, Tree::Nullifiers, depth, 0, zero.hash())?;
    s.set_nullifier_leaf(0, zero)?;
    s.add_nullifier(Fr::zero(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::store::MemStore;
    use aztec_zk::merkle::root_from_path;

    #[test]
    fn sparse_tree_paths_lead_to_its_root() {
        let mut s = MemStore::default();
        let t = Tree::Public;
        let mut root = empty_roots()[8];
        for (i, v) in [(0u64, 5u64), (7, 9), (200, 1)] {
            root = set_leaf(&mut s, t, 8, i, Fr::from(v)).unwrap();
        }
        assert_eq!(node(&s, t, 8, 0).unwrap(), root);
        for i in [0u64, 7, 200, 3] {
            let path: Vec<Fr> = path_from(&s, t, 8, 0, i)
                .unwrap()
                .into_iter()
                .map(|f| f.0)
                .collect();
            assert_eq!(root_from_path(node(&s, t, 0, i).unwrap(), i, &path), root);
        }
        for i in [7, 0, 200] {
            root = set_leaf(&mut s, t, 8, i, Fr::zero()).unwrap();
        }
        assert_eq!(root, empty_roots()[8]);
        assert_eq!(s.stored_nodes(), 0, "empty subtrees are not stored");
    }

    #[test]
    fn a_damaged_nullifier_index_is_an_error_not_a_wrong_witness() {
        let mut s = MemStore::default();
        init_nullifiers(&mut s, 8).unwrap();
        insert_nullifier(&mut s, 8, 1, Fr::from(10u64)).unwrap();
        // The index says 20 is leaf 1, whose preimage holds 10.
        s.add_nullifier(Fr::from(20u64), 1).unwrap();
        let err = insert_nullifier(&mut s, 8, 2, Fr::from(30u64)).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}

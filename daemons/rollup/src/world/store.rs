//! Where a world keeps its trees. A [`TreeReader`] answers for stored nodes,
//! the nullifier leaves' preimages, the sorted nullifier index and each
//! tree's next free leaf; a [`TreeStore`] also takes changes. Two stores
//! live here: [`MemStore`] (everything in memory: the devnet's sequencer,
//! tests, benchmarks) and [`Fork`] (changes kept in memory over any reader,
//! collected as [`Changes`] that a durable store commits at once). The node
//! keeps its base in LMDB (`daemons/node/src/world_state.rs`).

use std::collections::{BTreeMap, HashMap};

use ark_bn254::Fr;
use ark_ff::{BigInt, PrimeField};

use aztec_zk::indexed::Leaf;

/// The rollup's trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// Note hashes (append-only).
    Notes = 0,
    /// Nullifiers (indexed).
    Nullifiers = 1,
    /// Public data (sparse, by slot).
    Public = 2,
    /// L1-to-L2 messages (append-only).
    Messages = 3,
    /// Block headers (append-only).
    Archive = 4,
}

impl Tree {
    /// Every tree, in id order.
    pub const ALL: [Tree; 5] = [
        Tree::Notes,
        Tree::Nullifiers,
        Tree::Public,
        Tree::Messages,
        Tree::Archive,
    ];
}

/// A store that could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("world state storage: {0}")]
pub struct StorageError(pub String);

/// A node's place: tree, level (0: leaves) and index within the level.
pub type NodeKey = (Tree, u32, u64);

/// Reads of a world's trees.
pub trait TreeReader {
    /// The node at `key`; `None` where its subtree is empty.
    fn node(&self, key: NodeKey) -> Result<Option<Fr>, StorageError>;
    /// The nullifier leaf at `index`, if one was inserted there.
    fn nullifier_leaf(&self, index: u64) -> Result<Option<Leaf>, StorageError>;
    /// The largest nullifier at or below `v`, with its leaf index (the zero
    /// leaf is at or below everything once the tree exists).
    fn nullifier_floor(&self, v: &Fr) -> Result<Option<(Fr, u64)>, StorageError>;
    /// The next free leaf of `tree` (0 until set).
    fn next_leaf(&self, tree: Tree) -> Result<u64, StorageError>;
}

/// A reader that also takes changes.
pub trait TreeStore: TreeReader {
    /// Sets the node at `key` (`None`: its subtree is now empty).
    fn set_node(&mut self, key: NodeKey, value: Option<Fr>) -> Result<(), StorageError>;
    /// Sets the nullifier leaf at `index`.
    fn set_nullifier_leaf(&mut self, index: u64, leaf: Leaf) -> Result<(), StorageError>;
    /// Records that nullifier `v` is the leaf at `index`.
    fn add_nullifier(&mut self, v: Fr, index: u64) -> Result<(), StorageError>;
    /// Sets the next free leaf of `tree`.
    fn set_next_leaf(&mut self, tree: Tree, next: u64) -> Result<(), StorageError>;

    /// Writes every change in `changes`.
    fn apply(&mut self, changes: &Changes) -> Result<(), StorageError> {
        for (k, v) in &changes.nodes {
            self.set_node(*k, *v)?;
        }
        for (i, l) in &changes.nullifier_leaves {
            self.set_nullifier_leaf(*i, *l)?;
        }
        for (v, i) in &changes.nullifiers {
            let v = Fr::from_bigint(*v)
                .ok_or_else(|| StorageError(format!("nullifier {v} is not below r")))?;
            self.add_nullifier(v, *i)?;
        }
        for (t, n) in &changes.next_leaves {
            self.set_next_leaf(*t, *n)?;
        }
        Ok(())
    }
}

/// Changes to a world, as a [`Fork`] collects them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Nodes set (`None`: emptied).
    pub nodes: HashMap<NodeKey, Option<Fr>>,
    /// Nullifier leaves set.
    pub nullifier_leaves: BTreeMap<u64, Leaf>,
    /// Nullifiers added (canonical value to leaf index).
    pub nullifiers: BTreeMap<BigInt<4>, u64>,
    /// Next free leaves set.
    pub next_leaves: BTreeMap<Tree, u64>,
}

/// The largest entry of a sorted nullifier index at or below `v`.
fn floor_in(index: &BTreeMap<BigInt<4>, u64>, v: &Fr) -> Option<(Fr, u64)> {
    index
        .range(..=v.into_bigint())
        .next_back()
        .and_then(|(k, i)| Fr::from_bigint(*k).map(|f| (f, *i)))
}

/// A world's trees in memory.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    nodes: HashMap<NodeKey, Fr>,
    nullifier_leaves: HashMap<u64, Leaf>,
    nullifiers: BTreeMap<BigInt<4>, u64>,
    next_leaves: [u64; 5],
}

impl MemStore {
    /// Nodes held (empty subtrees are not).
    pub fn stored_nodes(&self) -> usize {
        self.nodes.len()
    }
}

impl TreeReader for MemStore {
    fn node(&self, key: NodeKey) -> Result<Option<Fr>, StorageError> {
        Ok(self.nodes.get(&key).copied())
    }
    fn nullifier_leaf(&self, index: u64) -> Result<Option<Leaf>, StorageError> {
        Ok(self.nullifier_leaves.get(&index).copied())
    }
    fn nullifier_floor(&self, v: &Fr) -> Result<Option<(Fr, u64)>, StorageError> {
        Ok(floor_in(&self.nullifiers, v))
    }
    fn next_leaf(&self, tree: Tree) -> Result<u64, StorageError> {
        Ok(self.next_leaves[tree as usize])
    }
}

impl TreeStore for MemStore {
    fn set_node(&mut self, key: NodeKey, value: Option<Fr>) -> Result<(), StorageError> {
        match value {
            Some(v) => self.nodes.insert(key, v),
            None => self.nodes.remove(&key),
        };
        Ok(())
    }
    fn set_nullifier_leaf(&mut self, index: u64, leaf: Leaf) -> Result<(), StorageError> {
        self.nullifier_leaves.insert(index, leaf);
        Ok(())
    }
    fn add_nullifier(&mut self, v: Fr, index: u64) -> Result<(), StorageError> {
        self.nullifiers.insert(v.into_bigint(), index);
        Ok(())
    }
    fn set_next_leaf(&mut self, tree: Tree, next: u64) -> Result<(), StorageError> {
        self.next_leaves[tree as usize] = next;
        Ok(())
    }
}

/// Changes kept in memory over a base that is only read: what a block or
/// an epoch does to the world, before it is kept (or dropped).
#[derive(Debug, Clone)]
pub struct Fork<'b, S: TreeReader> {
    base: &'b S,
    changes: Changes,
}

impl<'b, S: TreeReader> Fork<'b, S> {
    /// No changes yet over `base`.
    pub fn new(base: &'b S) -> Fork<'b, S> {
        Fork {
            base,
            changes: Changes::default(),
        }
    }

    /// What changed.
    pub fn into_changes(self) -> Changes {
        self.changes
    }
}

impl<S: TreeReader> TreeReader for Fork<'_, S> {
    fn node(&self, key: NodeKey) -> Result<Option<Fr>, StorageError> {
        match self.changes.nodes.get(&key) {
            Some(v) => Ok(*v),
            None => self.base.node(key),
        }
    }
    fn nullifier_leaf(&self, index: u64) -> Result<Option<Leaf>, StorageError> {
        match self.changes.nullifier_leaves.get(&index) {
            Some(l) => Ok(Some(*l)),
            None => self.base.nullifier_leaf(index),
        }
    }
    fn nullifier_floor(&self, v: &Fr) -> Result<Option<(Fr, u64)>, StorageError> {
        let ours = floor_in(&self.changes.nullifiers, v);
        let base = self.base.nullifier_floor(v)?;
        Ok(match (ours, base) {
            (Some(a), Some(b)) => Some(if a.0.into_bigint() >= b.0.into_bigint() {
                a
            } else {
                b
            }),
            (a, b) => a.or(b),
        })
    }
    fn next_leaf(&self, tree: Tree) -> Result<u64, StorageError> {
        match self.changes.next_leaves.get(&tree) {
            Some(n) => Ok(*n),
            None => self.base.next_leaf(tree),
        }
    }
}

impl<S: TreeReader> TreeStore for Fork<'_, S> {
    fn set_node(&mut self, key: NodeKey, value: Option<Fr>) -> Result<(), StorageError> {
        self.changes.nodes.insert(key, value);
        Ok(())
    }
    fn set_nullifier_leaf(&mut self, index: u64, leaf: Leaf) -> Result<(), StorageError> {
        self.changes.nullifier_leaves.insert(index, leaf);
        Ok(())
    }
    fn add_nullifier(&mut self, v: Fr, index: u64) -> Result<(), StorageError> {
        self.changes.nullifiers.insert(v.into_bigint(), index);
        Ok(())
    }
    fn set_next_leaf(&mut self, tree: Tree, next: u64) -> Result<(), StorageError> {
        self.changes.next_leaves.insert(tree, next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_reads_through_to_its_base_and_keeps_its_changes_apart() {
        let mut base = MemStore::default();
        base.set_node((Tree::Notes, 0, 1), Some(Fr::from(5u64)))
            .unwrap();
        base.add_nullifier(Fr::from(0u64), 0).unwrap();
        base.add_nullifier(Fr::from(100u64), 1).unwrap();
        let mut fork = Fork::new(&base);
        assert_eq!(
            fork.node((Tree::Notes, 0, 1)).unwrap(),
            Some(Fr::from(5u64))
        );
        fork.set_node((Tree::Notes, 0, 1), None).unwrap();
        fork.add_nullifier(Fr::from(50u64), 2).unwrap();
        assert_eq!(fork.node((Tree::Notes, 0, 1)).unwrap(), None);
        // The floor is the larger of the base's and the fork's.
        assert_eq!(
            fork.nullifier_floor(&Fr::from(70u64)).unwrap(),
            Some((Fr::from(50u64), 2))
        );
        assert_eq!(
            fork.nullifier_floor(&Fr::from(150u64)).unwrap(),
            Some((Fr::from(100u64), 1))
        );
        assert_eq!(
            fork.nullifier_floor(&Fr::from(40u64)).unwrap(),
            Some((Fr::from(0u64), 0))
        );
        let changes = fork.into_changes();
        assert_eq!(
            base.node((Tree::Notes, 0, 1)).unwrap(),
            Some(Fr::from(5u64))
        );
        base.apply(&changes).unwrap();
        assert_eq!(base.node((Tree::Notes, 0, 1)).unwrap(), None);
        assert_eq!(
            base.nullifier_floor(&Fr::from(70u64)).unwrap(),
            Some((Fr::from(50u64), 2))
        );
    }
}

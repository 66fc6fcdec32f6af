//! The rollup's world state and the circuit inputs it produces: applying a
//! transaction yields its base rollup inputs, closing a block yields its
//! parity and block root inputs.
//!
//! A [`World`] works over a store ([`store`]): in memory for the devnet's
//! sequencer, tests and benchmarks; over the node's LMDB base through a
//! [`store::Fork`], whose [`store::Changes`] the node commits in one
//! transaction once they are final. [`World::fork`] gives a world whose
//! changes stay apart from its base until they are kept.

pub mod store;
pub mod trees;

use ark_ff::Zero;
use serde::{Deserialize, Serialize};

use aztec_zk::circuits::base::{BaseRollupInputs, PublicWriteWitness, Tx};
use aztec_zk::circuits::block_root::{BlockRootInputs, Header};
use aztec_zk::circuits::merge::merge_effects;
use aztec_zk::circuits::parity::{BaseParityInputs, RootParityInputs};
use aztec_zk::felt::Felt;
use aztec_zk::indexed::{InsertError, InsertWitness, in_range};
use aztec_zk::merkle::subtree_root;
use aztec_zk::params::RollupParams;
use aztec_zk::roots::{BlockState, RollupOutput, TxState};
use store::{Changes, Fork, MemStore, StorageError, Tree, TreeReader, TreeStore};

/// Why a transaction or block cannot be applied, or the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// Vector lengths or slots do not match the parameters.
    #[error("{0}")]
    Shape(String),
    /// A nullifier cannot be inserted.
    #[error(transparent)]
    Nullifier(#[from] InsertError),
    /// A tree has no room left.
    #[error("the {0} tree is full")]
    Full(&'static str),
    /// The store could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The world state over a store. Roots and next free leaves are kept at
/// hand; everything else is read from the store when needed.
#[derive(Debug, Clone)]
pub struct World<S = MemStore> {
    params: RollupParams,
    store: S,
    roots: [Felt; 5],
    next: [u64; 5],
}

/// Everything needed to prove one block's closing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedBlock {
    /// One per base parity.
    pub base_parities: Vec<BaseParityInputs>,
    /// The root parity.
    pub root_parity: RootParityInputs,
    /// The block root.
    pub block_root: BlockRootInputs,
    /// The header appended to the archive.
    pub header: Header,
    /// The block-level output (start, end, effects, fees).
    pub output: RollupOutput,
}

/// A base rollup's output, computed natively.
pub fn base_output(i: &BaseRollupInputs, end: &TxState) -> RollupOutput {
    RollupOutput {
        start: Felt(i.start.hash()),
        end: Felt(end.hash()),
        effects: Felt(i.tx.effects_hash()),
        fee: Felt::from_u64(i.tx.fee),
    }
}

fn depth_of(p: &RollupParams, t: Tree) -> u32 {
    match t {
        Tree::Notes => p.note_depth,
        Tree::Nullifiers => p.nullifier_depth,
        Tree::Public => p.public_data_depth,
        Tree::Messages => p.message_depth,
        Tree::Archive => p.archive_depth,
    }
}

impl World<MemStore> {
    /// The genesis state in memory.
    pub fn genesis(params: RollupParams) -> World<MemStore> {
        // The in-memory store has no way to fail.
        World::create(params, MemStore::default())
            .unwrap_or_else(|e| unreachable!("in-memory world state: {e}"))
    }
}

impl<S: TreeReader> World<S> {
    /// The world a store holds.
    pub fn open(params: RollupParams, store: S) -> Result<World<S>, StorageError> {
        let mut w = World {
            params,
            store,
            roots: [Felt::ZERO; 5],
            next: [0; 5],
        };
        w.reload()?;
        Ok(w)
    }

    fn reload(&mut self) -> Result<(), StorageError> {
        for t in Tree::ALL {
            let d = depth_of(&self.params, t);
            self.roots[t as usize] = Felt(trees::node(&self.store, t, d, 0)?);
            self.next[t as usize] = self.store.next_leaf(t)?;
        }
        Ok(())
    }

    /// The sizes.
    pub fn params(&self) -> &RollupParams {
        &self.params
    }

    /// Its store, given up.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Whether this is a store no world was ever written to.
    pub fn is_empty(&self) -> bool {
        self.next.iter().all(|n| *n == 0)
    }

    /// A world whose changes stay in memory over this one.
    pub fn fork(&self) -> World<Fork<'_, S>> {
        World {
            params: self.params.clone(),
            store: Fork::new(&self.store),
            roots: self.roots,
            next: self.next,
        }
    }

    fn depth(&self, t: Tree) -> u32 {
        depth_of(&self.params, t)
    }

    /// The tx-level trees now.
    pub fn tx_state(&self) -> TxState {
        TxState {
            note_root: self.roots[Tree::Notes as usize],
            note_next: self.next[Tree::Notes as usize],
            nullifier_root: self.roots[Tree::Nullifiers as usize],
            nullifier_next: self.next[Tree::Nullifiers as usize],
            public_root: self.roots[Tree::Public as usize],
        }
    }

    /// The block-level state now.
    pub fn block_state(&self) -> BlockState {
        BlockState {
            tx: self.tx_state(),
            message_root: self.roots[Tree::Messages as usize],
            message_next: self.next[Tree::Messages as usize],
            archive_root: self.roots[Tree::Archive as usize],
            archive_next: self.next[Tree::Archive as usize],
        }
    }

    /// The value at a public data slot.
    pub fn public_value(&self, slot: u64) -> Result<Felt, StorageError> {
        trees::node(&self.store, Tree::Public, 0, slot).map(Felt)
    }

    /// Whether a nullifier is already spent.
    pub fn has_nullifier(&self, v: &Felt) -> Result<bool, StorageError> {
        trees::has_nullifier(&self.store, &v.0)
    }

    /// Checks a transaction applies (shape, fresh in-range distinct
    /// nullifiers, room in the trees) without changing anything.
    pub fn check_tx(&self, tx: &Tx) -> Result<(), WorldError> {
        tx.check_shape(&self.params).map_err(WorldError::Shape)?;
        let mut seen = std::collections::BTreeSet::new();
        let mut used = 0u64;
        for n in tx.nullifiers.iter().filter(|n| !n.0.is_zero()) {
            if !in_range(&n.0) {
                return Err(InsertError::TooLarge(n.to_hex()).into());
            }
            if self.has_nullifier(n)? || !seen.insert(*n) {
                return Err(InsertError::Duplicate(n.to_hex()).into());
            }
            used += 1;
        }
        let p = &self.params;
        if self.next[Tree::Nullifiers as usize] + used > 1u64 << p.nullifier_depth {
            return Err(WorldError::Full("nullifier"));
        }
        if self.next[Tree::Notes as usize] + p.notes_per_tx() as u64 > 1u64 << p.note_depth {
            return Err(WorldError::Full("note hash"));
        }
        Ok(())
    }
}

impl<S: TreeStore> World<S> {
    /// A fresh world in an empty store: empty trees, the nullifier tree's
    /// zero leaf, and block 0's header (all zeros) in the archive.
    pub fn create(params: RollupParams, store: S) -> Result<World<S>, StorageError> {
        let mut w = World::open(params, store)?;
        if !w.is_empty() {
            return Err(StorageError(
                "a world already exists in this store".to_string(),
            ));
        }
        let d = w.depth(Tree::Nullifiers);
        trees::init_nullifiers(&mut w.store, d)?;
        w.store.set_next_leaf(Tree::Nullifiers, 1)?;
        w.reload()?;
        let genesis = Header {
            number: 0,
            slot: 0,
            previous_archive_root: Felt::ZERO,
            end_tx: w.tx_state(),
            message_root: w.roots[Tree::Messages as usize],
            message_next: 0,
            effects: Felt::ZERO,
            fee: Felt::ZERO,
        };
        w.append(Tree::Archive, &[genesis.hash()])?;
        Ok(w)
    }

    /// Keeps the changes of a fork of this world.
    pub fn apply(&mut self, changes: &Changes) -> Result<(), StorageError> {
        self.store.apply(changes)?;
        self.reload()
    }

    fn set(&mut self, t: Tree, index: u64, value: ark_bn254::Fr) -> Result<(), StorageError> {
        let d = self.depth(t);
        self.roots[t as usize] = Felt(trees::set_leaf(&mut self.store, t, d, index, value)?);
        Ok(())
    }

    /// Appends `leaves` at the next free leaves of an append-only tree.
    fn append(&mut self, t: Tree, leaves: &[ark_bn254::Fr]) -> Result<(), StorageError> {
        let start = self.next[t as usize];
        for (j, v) in leaves.iter().enumerate() {
            self.set(t, start + j as u64, *v)?;
        }
        self.bump(t, leaves.len() as u64)
    }

    fn bump(&mut self, t: Tree, by: u64) -> Result<(), StorageError> {
        self.next[t as usize] += by;
        self.store.set_next_leaf(t, self.next[t as usize])
    }

    /// Applies a transaction; returns its base rollup inputs and output.
    /// On error the world may be half changed: apply to a fork.
    pub fn apply_tx(&mut self, tx: &Tx) -> Result<(BaseRollupInputs, RollupOutput), WorldError> {
        self.check_tx(tx)?;
        let start = self.tx_state();
        let log = self.params.log_notes_per_tx;
        let note_next = self.next[Tree::Notes as usize];
        let note_siblings = trees::path_from(
            &self.store,
            Tree::Notes,
            self.params.note_depth,
            log,
            note_next >> log,
        )?;
        let mut notes: Vec<ark_bn254::Fr> = tx.notes.iter().map(|n| n.0).collect();
        notes.resize(self.params.notes_per_tx(), ark_bn254::Fr::zero());
        self.append(Tree::Notes, &notes)?;
        let depth = self.params.nullifier_depth;
        let mut nullifier_witnesses = Vec::with_capacity(tx.nullifiers.len());
        for n in &tx.nullifiers {
            if n.0.is_zero() {
                nullifier_witnesses.push(InsertWitness::unused(depth));
            } else {
                let next = self.next[Tree::Nullifiers as usize];
                nullifier_witnesses.push(trees::insert_nullifier(
                    &mut self.store,
                    depth,
                    next,
                    n.0,
                )?);
                self.bump(Tree::Nullifiers, 1)?;
            }
        }
        self.roots[Tree::Nullifiers as usize] =
            Felt(trees::node(&self.store, Tree::Nullifiers, depth, 0)?);
        let mut public_witnesses = Vec::with_capacity(tx.public_writes.len());
        let public_depth = self.params.public_data_depth;
        for w in &tx.public_writes {
            if w.enabled {
                public_witnesses.push(PublicWriteWitness {
                    old_value: self.public_value(w.slot)?,
                    siblings: trees::path_from(&self.store, Tree::Public, public_depth, 0, w.slot)?,
                });
                self.set(Tree::Public, w.slot, w.value.0)?;
            } else {
                public_witnesses.push(PublicWriteWitness {
                    old_value: Felt::ZERO,
                    siblings: vec![Felt::ZERO; public_depth as usize],
                });
            }
        }
        let inputs = BaseRollupInputs {
            start,
            tx: tx.clone(),
            note_siblings,
            nullifier_witnesses,
            public_witnesses,
        };
        let output = base_output(&inputs, &self.tx_state());
        Ok((inputs, output))
    }

    /// Closes a block whose transactions (already applied since `start`)
    /// form the ranges `left` and `right`: inserts its messages (zero padded
    /// to the per-block count) and appends its header to the archive.
    pub fn close_block(
        &mut self,
        start: BlockState,
        left: RollupOutput,
        right: RollupOutput,
        messages: &[Felt],
        slot: u64,
    ) -> Result<ClosedBlock, WorldError> {
        let p = self.params.clone();
        let per_block = p.messages_per_block();
        if messages.len() > per_block {
            return Err(WorldError::Shape(format!(
                "{} messages, at most {per_block} per block",
                messages.len()
            )));
        }
        let message_next = self.next[Tree::Messages as usize];
        let archive_next = self.next[Tree::Archive as usize];
        if message_next + per_block as u64 > 1u64 << p.message_depth {
            return Err(WorldError::Full("message"));
        }
        if archive_next >= 1u64 << p.archive_depth {
            return Err(WorldError::Full("archive"));
        }
        let mut padded = messages.to_vec();
        padded.resize(per_block, Felt::ZERO);
        let base_parities: Vec<BaseParityInputs> = padded
            .chunks(p.messages_per_base_parity())
            .map(|c| BaseParityInputs {
                messages: c.to_vec(),
            })
            .collect();
        let root_parity = RootParityInputs {
            children: base_parities.iter().map(|b| b.root()).collect(),
        };
        let parity_root = root_parity.root();
        debug_assert_eq!(
            parity_root.0,
            subtree_root(&padded.iter().map(|f| f.0).collect::<Vec<_>>())
        );

        let log_m = p.log_messages_per_block();
        let message_siblings = trees::path_from(
            &self.store,
            Tree::Messages,
            p.message_depth,
            log_m,
            message_next >> log_m,
        )?;
        self.append(
            Tree::Messages,
            &padded.iter().map(|m| m.0).collect::<Vec<_>>(),
        )?;

        let end_tx = self.tx_state();
        let header = Header {
            number: archive_next,
            slot,
            previous_archive_root: self.roots[Tree::Archive as usize],
            end_tx,
            message_root: self.roots[Tree::Messages as usize],
            message_next: self.next[Tree::Messages as usize],
            effects: merge_effects(left.effects, right.effects),
            fee: Felt(left.fee.0 + right.fee.0),
        };
        let archive_siblings =
            trees::path_from(&self.store, Tree::Archive, p.archive_depth, 0, archive_next)?;
        self.append(Tree::Archive, &[header.hash()])?;
        let block_root = BlockRootInputs {
            start,
            left,
            right,
            end_tx,
            parity_root,
            message_siblings,
            slot,
            archive_siblings,
        };
        let output = RollupOutput {
            start: Felt(start.hash()),
            end: Felt(self.block_state().hash()),
            effects: header.effects,
            fee: header.fee,
        };
        Ok(ClosedBlock {
            base_parities,
            root_parity,
            block_root,
            header,
            output,
        })
    }
}

impl<S: TreeReader> World<Fork<'_, S>> {
    /// What this fork changed.
    pub fn into_changes(self) -> Changes {
        self.store.into_changes()
    }
}

/// A transaction that uses every slot: random note hashes, fresh random
/// nullifiers, writes to random public slots, a random fee. The devnet's
/// sequencer and the benchmarks make their traffic with it.
pub fn synthetic_tx<S: TreeReader, R: rand::Rng>(
    world: &World<S>,
    rng: &mut R,
) -> Result<Tx, StorageError> {
    use ark_ff::PrimeField;
    let p = world.params();
    let felt = |rng: &mut R| {
        Felt(ark_bn254::Fr::from_le_bytes_mod_order(
            &rng.r#gen::<[u8; 31]>(),
        ))
    };
    let notes = (0..p.notes_per_tx()).map(|_| felt(rng)).collect();
    let mut nullifiers: Vec<Felt> = Vec::with_capacity(p.nullifiers_per_tx as usize);
    while nullifiers.len() < p.nullifiers_per_tx as usize {
        let n = felt(rng);
        if !n.0.is_zero() && !world.has_nullifier(&n)? && !nullifiers.contains(&n) {
            nullifiers.push(n);
        }
    }
    let public_writes = (0..p.public_writes_per_tx)
        .map(|_| aztec_zk::circuits::base::PublicWrite {
            enabled: true,
            slot: rng.r#gen::<u64>() & ((1u64 << p.public_data_depth) - 1),
            value: felt(rng),
        })
        .collect();
    Ok(Tx {
        notes,
        nullifiers,
        public_writes,
        fee: rng.gen_range(1..1_000_000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_fork_changes_nothing_until_its_changes_are_applied() {
        let mut world = World::genesis(RollupParams::test());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let before = world.block_state();
        let tx = synthetic_tx(&world, &mut rng).unwrap();
        let (changes, after) = {
            let mut fork = world.fork();
            fork.apply_tx(&tx).unwrap();
            let after = fork.block_state();
            (fork.into_changes(), after)
        };
        assert_ne!(after, before);
        assert_eq!(world.block_state(), before);
        let mut direct = world.clone();
        direct.apply_tx(&tx).unwrap();
        world.apply(&changes).unwrap();
        assert_eq!(world.block_state(), after);
        assert_eq!(direct.block_state(), after);
        assert!(world.has_nullifier(&tx.nullifiers[0]).unwrap());
    }

    #[test]
    fn a_world_is_created_only_in_an_empty_store() {
        let w = World::genesis(RollupParams::test());
        assert_eq!(w.block_state().archive_next, 1);
        assert_eq!(w.block_state().tx.nullifier_next, 1);
        let err = World::create(RollupParams::test(), w.into_store()).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }
}

//! The node's world state in LMDB: the rollup's trees as of the last block
//! it keeps (blocks of the proven chain it has re-executed), so a restarted
//! node goes on from there instead of re-executing the chain from genesis.
//!
//! Proving an epoch never writes here directly: the epoch is planned on a
//! fork (`World::fork`, changes in memory over a read snapshot), and the
//! fork's changes are committed in one transaction only once L1 has
//! accepted the epoch. New blocks proposed meanwhile change nothing here.
//!
//! The state is derived from L1: one that belongs to another chain,
//! rollup or set of sizes, or that no longer matches L1 (L1 was reset),
//! is started again from genesis, with a log line saying why. A store that
//! cannot be read is an error naming its directory.
//!
//! Tables (keys big-endian so that LMDB's order is numeric):
//! - `nodes`:      `[tree][level][index u64]` -> node (32 bytes, LE canonical); empty subtrees absent
//! - `leaves`:     nullifier leaf index u64 -> value (32) | next value (32) | next index (u64)
//! - `nullifiers`: nullifier value (32 bytes BE) -> leaf index u64
//! - `meta`:       `block` -> u64; `next/<tree>` -> u64; `identity` -> JSON (schema, sizes' digest, chain id, rollup)

use std::path::{Path, PathBuf};

use aztec_prover_rollup::world::World;
use aztec_prover_rollup::world::store::{
    Changes, NodeKey, StorageError, Tree, TreeReader, TreeStore,
};
use aztec_prover_store::{Options, Reader, Store, StoreError, Table, WriteTxn};
use aztec_zk::Felt;
use aztec_zk::RollupParams;
use aztec_zk::indexed::Leaf;
use serde::{Deserialize, Serialize};

const TABLE_NAMES: [&str; 4] = ["nodes", "leaves", "nullifiers", "meta"];
const SCHEMA: u32 = 1;
const BLOCK: &[u8] = b"block";
const IDENTITY: &[u8] = b"identity";

/// Why the world state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorldStateError {
    /// LMDB failed.
    #[error("world state at {dir}: {error}")]
    Store {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        error: StoreError,
    },
    /// What is stored cannot be read back.
    #[error("world state at {dir}: {error}; remove the directory to rebuild it from L1")]
    Damaged {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        error: StorageError,
    },
    /// A block's changes were given out of order.
    #[error("world state is at block {at}; the changes of block {given} cannot be kept")]
    OutOfOrder {
        /// Where the state is.
        at: u64,
        /// The block given.
        given: u64,
    },
}

/// What a world state belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    /// Layout version of this file.
    schema: u32,
    /// The sizes' digest (hex).
    params: String,
    /// L1's chain id, once bound.
    chain_id: Option<u64>,
    /// The rollup contract, once bound.
    rollup: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Tables {
    nodes: Table,
    leaves: Table,
    nullifiers: Table,
    meta: Table,
}

/// The world state's store.
pub struct WorldState {
    store: Store,
    t: Tables,
    params: RollupParams,
    dir: PathBuf,
    identity: Identity,
    block: u64,
}

/// Trees read through an LMDB transaction (a snapshot, or the write
/// transaction that commits changes).
pub struct Lmdb<R> {
    txn: R,
    t: Tables,
}

/// The world as of the last kept block, read from one LMDB snapshot.
pub type Snapshot<'s> = Lmdb<aztec_prover_store::ReadTxn<'s>>;

fn storage(e: StoreError) -> StorageError {
    StorageError(e.to_string())
}

fn damaged(what: &str) -> StorageError {
    StorageError(format!("{what} cannot be read back"))
}

fn node_key((tree, level, index): NodeKey) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = tree as u8;
    k[1] = level as u8;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

fn felt_at(b: &[u8]) -> Option<Felt> {
    Felt::from_bytes(b.try_into().ok()?)
}

fn u64_at(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

fn value_key(v: &ark_bn254::Fr) -> [u8; 32] {
    let mut k = Felt(*v).to_bytes();
    k.reverse();
    k
}

fn next_key(t: Tree) -> [u8; 6] {
    let mut k = *b"next/\0";
    k[5] = t as u8;
    k
}

impl<R: Reader> TreeReader for Lmdb<R> {
    fn node(&self, key: NodeKey) -> Result<Option<ark_bn254::Fr>, StorageError> {
        match self
            .txn
            .get(self.t.nodes, &node_key(key))
            .map_err(storage)?
        {
            None => Ok(None),
            Some(b) => felt_at(b)
                .map(|f| Some(f.0))
                .ok_or_else(|| damaged("a tree node")),
        }
    }

    fn nullifier_leaf(&self, index: u64) -> Result<Option<Leaf>, StorageError> {
        let Some(b) = self
            .txn
            .get(self.t.leaves, &index.to_be_bytes())
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let leaf = (b.len() == 72)
            .then(|| {
                Some(Leaf {
                    value: felt_at(&b[..32])?,
                    next_value: felt_at(&b[32..64])?,
                    next_index: u64_at(&b[64..])?,
                })
            })
            .flatten();
        leaf.map(Some).ok_or_else(|| damaged("a nullifier leaf"))
    }

    fn nullifier_floor(
        &self,
        v: &ark_bn254::Fr,
    ) -> Result<Option<(ark_bn254::Fr, u64)>, StorageError> {
        let Some((k, i)) = self
            .txn
            .last_at_or_before(self.t.nullifiers, &value_key(v))
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let mut le: [u8; 32] = k
            .as_slice()
            .try_into()
            .map_err(|_| damaged("a nullifier"))?;
        le.reverse();
        match (Felt::from_bytes(&le), u64_at(&i)) {
            (Some(f), Some(i)) => Ok(Some((f.0, i))),
            _ => Err(damaged("a nullifier")),
        }
    }

    fn next_leaf(&self, tree: Tree) -> Result<u64, StorageError> {
        match self
            .txn
            .get(self.t.meta, &next_key(tree))
            .map_err(storage)?
        {
            None => Ok(0),
            Some(b) => u64_at(b).ok_or_else(|| damaged("a tree's size")),
        }
    }
}

impl TreeStore for Lmdb<WriteTxn<'_>> {
    fn set_node(&mut self, key: NodeKey, value: Option<ark_bn254::Fr>) -> Result<(), StorageError> {
        let k = node_key(key);
        match value {
            Some(v) => self.txn.put(self.t.nodes, &k, &Felt(v).to_bytes()),
            None => self.txn.del(self.t.nodes, &k).map(|_| ()),
        }
        .map_err(storage)
    }

    fn set_nullifier_leaf(&mut self, index: u64, leaf: Leaf) -> Result<(), StorageError> {
        let mut b = [0u8; 72];
        b[..32].copy_from_slice(&leaf.value.to_bytes());
        b[32..64].copy_from_slice(&leaf.next_value.to_bytes());
        b[64..].copy_from_slice(&leaf.next_index.to_be_bytes());
        self.txn
            .put(self.t.leaves, &index.to_be_bytes(), &b)
            .map_err(storage)
    }

    fn add_nullifier(&mut self, v: ark_bn254::Fr, index: u64) -> Result<(), StorageError> {
        self.txn
            .put(self.t.nullifiers, &value_key(&v), &index.to_be_bytes())
            .map_err(storage)
    }

    fn set_next_leaf(&mut self, tree: Tree, next: u64) -> Result<(), StorageError> {
        self.txn
            .put(self.t.meta, &next_key(tree), &next.to_be_bytes())
            .map_err(storage)
    }
}

fn params_digest(p: &RollupParams) -> String {
    alloy::hex::encode(p.digest())
}

impl WorldState {
    /// Opens the world state in `dir` (creating it at genesis), for `params`.
    pub fn open(dir: &Path, params: &RollupParams) -> Result<WorldState, WorldStateError> {
        let store_err = |error| WorldStateError::Store {
            dir: dir.to_path_buf(),
            error,
        };
        let (store, h) = Store::open(
            dir,
            &TABLE_NAMES,
            &Options {
                map_size_bytes: 64 << 30,
                max_readers: 64,
            },
        )
        .map_err(store_err)?;
        let [nodes, leaves, nullifiers, meta] = h[..] else {
            return Err(store_err(StoreError::Open {
                path: dir.to_path_buf(),
                message: "table set".into(),
            }));
        };
        let mut ws = WorldState {
            store,
            t: Tables {
                nodes,
                leaves,
                nullifiers,
                meta,
            },
            params: params.clone(),
            dir: dir.to_path_buf(),
            identity: Identity {
                schema: SCHEMA,
                params: params_digest(params),
                chain_id: None,
                rollup: None,
            },
            block: 0,
        };
        let (stored, block) = ws.read_meta()?;
        match stored {
            None => ws.restart(None)?,
            Some(id) if id.schema != SCHEMA || id.params != ws.identity.params => {
                tracing::warn!(
                    "world state at {} was written for other rollup sizes or by another version: \
                     starting it again from genesis",
                    dir.display()
                );
                ws.restart(None)?;
            }
            Some(id) => {
                ws.identity = id;
                ws.block = block;
                // The roots must read back: a damaged store is found now.
                ws.snapshot()?;
            }
        }
        Ok(ws)
    }

    fn read_meta(&self) -> Result<(Option<Identity>, u64), WorldStateError> {
        let r = self.store.read().map_err(|e| self.store_err(e))?;
        let identity = match r
            .get(self.t.meta, IDENTITY)
            .map_err(|e| self.store_err(e))?
        {
            None => None,
            Some(b) => {
                Some(serde_json::from_slice(b).map_err(|_| self.damaged(damaged("its identity")))?)
            }
        };
        let block = match r.get(self.t.meta, BLOCK).map_err(|e| self.store_err(e))? {
            None => 0,
            Some(b) => u64_at(b).ok_or_else(|| self.damaged(damaged("its block number")))?,
        };
        Ok((identity, block))
    }

    fn store_err(&self, error: StoreError) -> WorldStateError {
        WorldStateError::Store {
            dir: self.dir.clone(),
            error,
        }
    }

    fn damaged(&self, error: StorageError) -> WorldStateError {
        WorldStateError::Damaged {
            dir: self.dir.clone(),
            error,
        }
    }

    /// Empties the store and writes genesis, in one transaction.
    fn restart(&mut self, anchor: Option<(u64, String)>) -> Result<(), WorldStateError> {
        let mut w = self.store.write().map_err(|e| self.store_err(e))?;
        for t in [self.t.nodes, self.t.leaves, self.t.nullifiers, self.t.meta] {
            w.clear(t).map_err(|e| self.store_err(e))?;
        }
        let world = World::create(self.params.clone(), Lmdb { txn: w, t: self.t })
            .map_err(|e| self.damaged(e))?;
        let mut w = world.into_store().txn;
        self.identity.chain_id = anchor.as_ref().map(|a| a.0);
        self.identity.rollup = anchor.map(|a| a.1);
        let id = serde_json::to_vec(&self.identity).unwrap_or_default();
        w.put(self.t.meta, IDENTITY, &id)
            .and_then(|()| w.put(self.t.meta, BLOCK, &0u64.to_be_bytes()))
            .and_then(|()| w.commit())
            .map_err(|e| self.store_err(e))?;
        self.block = 0;
        Ok(())
    }

    /// Where it is kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last block whose changes are kept (0: genesis).
    pub fn block(&self) -> u64 {
        self.block
    }

    /// The sizes.
    pub fn params(&self) -> &RollupParams {
        &self.params
    }

    /// Ties the state to L1's chain and rollup; a state written for another
    /// one is started again from genesis. Returns whether that happened.
    pub fn bind(&mut self, chain_id: u64, rollup: &str) -> Result<bool, WorldStateError> {
        let rollup = rollup.to_lowercase();
        if self.identity.chain_id == Some(chain_id)
            && self.identity.rollup.as_deref() == Some(rollup.as_str())
        {
            return Ok(false);
        }
        if self.block > 0 {
            tracing::warn!(
                "world state at {} belongs to rollup {} on chain {}: starting it again from genesis for rollup {rollup} on chain {chain_id}",
                self.dir.display(),
                self.identity.rollup.as_deref().unwrap_or("?"),
                self.identity
                    .chain_id
                    .map_or("?".to_string(), |c| c.to_string()),
            );
        }
        self.restart(Some((chain_id, rollup)))?;
        Ok(true)
    }

    /// Starts again from genesis (keeping the chain and rollup), saying why.
    pub fn reset(&mut self, why: &str) -> Result<(), WorldStateError> {
        tracing::warn!(
            "world state at {} (block {}): {why}; starting it again from genesis",
            self.dir.display(),
            self.block
        );
        let anchor = self.identity.chain_id.zip(self.identity.rollup.clone());
        self.restart(anchor)
    }

    /// The world as of [`WorldState::block`], from one consistent snapshot.
    /// Fork it to apply blocks; keep the fork's changes with [`WorldState::commit`].
    pub fn snapshot(&self) -> Result<World<Snapshot<'_>>, WorldStateError> {
        let txn = self.store.read().map_err(|e| self.store_err(e))?;
        World::open(self.params.clone(), Lmdb { txn, t: self.t }).map_err(|e| self.damaged(e))
    }

    /// Keeps `changes`, the effect of the blocks after [`WorldState::block`]
    /// up to `block`, in one transaction (on disk when this returns).
    pub fn commit(&mut self, changes: &Changes, block: u64) -> Result<(), WorldStateError> {
        if block <= self.block {
            return Err(WorldStateError::OutOfOrder {
                at: self.block,
                given: block,
            });
        }
        let w = self.store.write().map_err(|e| self.store_err(e))?;
        let mut lmdb = Lmdb { txn: w, t: self.t };
        lmdb.apply(changes).map_err(|e| self.damaged(e))?;
        let mut w = lmdb.txn;
        w.put(self.t.meta, BLOCK, &block.to_be_bytes())
            .and_then(|()| w.commit())
            .map_err(|e| self.store_err(e))?;
        self.block = block;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aztec_prover_rollup::plan::{BlockSpec, plan_epoch};
    use aztec_prover_rollup::world::synthetic_tx;
    use rand::SeedableRng;

    fn block(world: &World<impl TreeReader>, rng: &mut rand::rngs::StdRng, slot: u64) -> BlockSpec {
        BlockSpec {
            txs: vec![synthetic_tx(world, rng).unwrap()],
            messages: vec![Felt::from_u64(slot + 1)],
            slot,
        }
    }

    /// Applies `spec` on a fork of the stored world and keeps it as block `n`.
    fn keep(ws: &mut WorldState, spec: &BlockSpec, n: u64) -> aztec_zk::roots::BlockState {
        let (changes, end) = {
            let base = ws.snapshot().unwrap();
            let mut fork = base.fork();
            let plan = plan_epoch(&mut fork, 0, Felt::ZERO, std::slice::from_ref(spec)).unwrap();
            (fork.into_changes(), plan.end)
        };
        ws.commit(&changes, n).unwrap();
        end
    }

    #[test]
    fn kept_blocks_survive_reopening_and_match_the_same_blocks_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let params = RollupParams::test();
        let mut mem = World::genesis(params.clone());
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let specs: Vec<BlockSpec> = (1..=3)
            .map(|s| {
                let b = block(&mem, &mut rng, s);
                plan_epoch(&mut mem, 0, Felt::ZERO, std::slice::from_ref(&b)).unwrap();
                b
            })
            .collect();
        {
            let mut ws = WorldState::open(dir.path(), &params).unwrap();
            assert_eq!(ws.block(), 0);
            assert_eq!(
                ws.snapshot().unwrap().block_state(),
                World::genesis(params.clone()).block_state()
            );
            keep(&mut ws, &specs[0], 1);
            keep(&mut ws, &specs[1], 2);
        }
        let mut ws = WorldState::open(dir.path(), &params).unwrap();
        assert_eq!(ws.block(), 2);
        let end = keep(&mut ws, &specs[2], 3);
        assert_eq!(end, mem.block_state());
        assert_eq!(ws.snapshot().unwrap().block_state(), mem.block_state());
        // The same block again is refused, not applied twice.
        let err = ws.commit(&Changes::default(), 3).unwrap_err();
        assert!(err.to_string().contains("at block 3"), "{err}");
    }

    #[test]
    fn a_fork_leaves_the_store_as_it_was_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let params = RollupParams::test();
        let ws = WorldState::open(dir.path(), &params).unwrap();
        let before = ws.snapshot().unwrap().block_state();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let base = ws.snapshot().unwrap();
        let mut fork = base.fork();
        let spec = block(&fork, &mut rng, 1);
        plan_epoch(&mut fork, 0, Felt::ZERO, &[spec]).unwrap();
        assert_ne!(fork.block_state(), before);
        drop(fork);
        assert_eq!(ws.snapshot().unwrap().block_state(), before);
    }

    #[test]
    fn another_rollup_or_other_sizes_start_the_state_again() {
        let dir = tempfile::tempdir().unwrap();
        let params = RollupParams::test();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        {
            let mut ws = WorldState::open(dir.path(), &params).unwrap();
            assert!(ws.bind(31337, "0xAbC").unwrap());
            let spec = block(&ws.snapshot().unwrap(), &mut rng, 1);
            keep(&mut ws, &spec, 1);
            assert!(!ws.bind(31337, "0xabc").unwrap(), "same rollup");
            assert_eq!(ws.block(), 1);
        }
        let mut ws = WorldState::open(dir.path(), &params).unwrap();
        assert_eq!(ws.block(), 1);
        assert!(ws.bind(31337, "0xdef").unwrap());
        assert_eq!(ws.block(), 0);
        assert_eq!(
            ws.snapshot().unwrap().block_state(),
            World::genesis(params.clone()).block_state()
        );
        let spec = block(&ws.snapshot().unwrap(), &mut rng, 1);
        keep(&mut ws, &spec, 1);
        drop(ws);
        let ws = WorldState::open(dir.path(), &RollupParams::devnet()).unwrap();
        assert_eq!(ws.block(), 0, "other sizes: genesis");
    }

    #[test]
    fn a_damaged_store_is_refused_with_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let params = RollupParams::test();
        drop(WorldState::open(dir.path(), &params).unwrap());
        // Corrupt one node in place, through the store.
        {
            let (store, h) = Store::open(dir.path(), &TABLE_NAMES, &Options::default()).unwrap();
            let mut w = store.write().unwrap();
            let root = node_key((Tree::Archive, params.archive_depth, 0));
            w.put(h[0], &root, &[0xff; 32]).unwrap();
            w.commit().unwrap();
        }
        let err = WorldState::open(dir.path(), &params)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("remove the directory"), "{err}");
        // A file that is no LMDB store at all.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("data.mdb"), vec![7u8; 8192]).unwrap();
        let err = WorldState::open(other.path(), &params)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("world state at"), "{err}");
    }
}

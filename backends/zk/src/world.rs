//! The rollup's world state in memory, and the circuit inputs it produces:
//! applying a transaction yields its base rollup inputs, closing a block
//! yields its parity and block root inputs. The node keeps the same trees
//! (and replays them from L1); tests and benchmarks build witnesses here.

use ark_ff::Zero;
use serde::{Deserialize, Serialize};

use crate::circuits::base::{BaseRollupInputs, PublicWriteWitness, Tx};
use crate::circuits::block_root::{BlockRootInputs, Header};
use crate::circuits::merge::merge_effects;
use crate::circuits::parity::{BaseParityInputs, RootParityInputs};
use crate::felt::Felt;
use crate::indexed::{IndexedTree, InsertError, in_range};
use crate::merkle::{MerkleTree, subtree_root};
use crate::params::RollupParams;
use crate::state::{BlockState, RollupOutput, TxState};

/// Why a transaction or block cannot be applied. Nothing is changed then.
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
}

/// The world state.
#[derive(Debug, Clone)]
pub struct World {
    params: RollupParams,
    notes: MerkleTree,
    note_next: u64,
    nullifiers: IndexedTree,
    public: MerkleTree,
    messages: MerkleTree,
    message_next: u64,
    archive: MerkleTree,
    archive_next: u64,
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

impl World {
    /// The genesis state: empty trees, block 0's header (all zeros) in the archive.
    pub fn genesis(params: RollupParams) -> World {
        let mut w = World {
            notes: MerkleTree::new(params.note_depth),
            note_next: 0,
            nullifiers: IndexedTree::new(params.nullifier_depth),
            public: MerkleTree::new(params.public_data_depth),
            messages: MerkleTree::new(params.message_depth),
            message_next: 0,
            archive: MerkleTree::new(params.archive_depth),
            archive_next: 0,
            params,
        };
        let genesis = Header {
            number: 0,
            slot: 0,
            previous_archive_root: Felt::ZERO,
            end_tx: w.tx_state(),
            message_root: Felt(w.messages.root()),
            message_next: 0,
            effects: Felt::ZERO,
            fee: Felt::ZERO,
        };
        w.archive.set(0, genesis.hash());
        w.archive_next = 1;
        w
    }

    /// The sizes.
    pub fn params(&self) -> &RollupParams {
        &self.params
    }

    /// The tx-level trees now.
    pub fn tx_state(&self) -> TxState {
        TxState {
            note_root: Felt(self.notes.root()),
            note_next: self.note_next,
            nullifier_root: Felt(self.nullifiers.root()),
            nullifier_next: self.nullifiers.next(),
            public_root: Felt(self.public.root()),
        }
    }

    /// The block-level state now.
    pub fn block_state(&self) -> BlockState {
        BlockState {
            tx: self.tx_state(),
            message_root: Felt(self.messages.root()),
            message_next: self.message_next,
            archive_root: Felt(self.archive.root()),
            archive_next: self.archive_next,
        }
    }

    /// The value at a public data slot.
    pub fn public_value(&self, slot: u64) -> Felt {
        Felt(self.public.leaf(slot))
    }

    /// Whether a nullifier is already spent.
    pub fn has_nullifier(&self, v: &Felt) -> bool {
        self.nullifiers.contains(&v.0)
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
            if self.nullifiers.contains(&n.0) || !seen.insert(*n) {
                return Err(InsertError::Duplicate(n.to_hex()).into());
            }
            used += 1;
        }
        if self.nullifiers.next() + used > 1u64 << self.params.nullifier_depth {
            return Err(WorldError::Full("nullifier"));
        }
        if self.note_next + self.params.notes_per_tx() as u64 > 1u64 << self.params.note_depth {
            return Err(WorldError::Full("note hash"));
        }
        Ok(())
    }

    /// Applies a transaction; returns its base rollup inputs and output.
    pub fn apply_tx(&mut self, tx: &Tx) -> Result<(BaseRollupInputs, RollupOutput), WorldError> {
        self.check_tx(tx)?;
        let start = self.tx_state();
        let log = self.params.log_notes_per_tx;
        let note_siblings: Vec<Felt> = self
            .notes
            .path_from(log, self.note_next >> log)
            .into_iter()
            .map(Felt)
            .collect();
        for (j, n) in tx.notes.iter().enumerate() {
            self.notes.set(self.note_next + j as u64, n.0);
        }
        self.note_next += self.params.notes_per_tx() as u64;
        let mut nullifier_witnesses = Vec::with_capacity(tx.nullifiers.len());
        for n in &tx.nullifiers {
            if n.0.is_zero() {
                nullifier_witnesses.push(crate::indexed::InsertWitness::unused(
                    self.params.nullifier_depth,
                ));
            } else {
                nullifier_witnesses.push(self.nullifiers.insert(n.0)?);
            }
        }
        let mut public_witnesses = Vec::with_capacity(tx.public_writes.len());
        for w in &tx.public_writes {
            if w.enabled {
                public_witnesses.push(PublicWriteWitness {
                    old_value: Felt(self.public.leaf(w.slot)),
                    siblings: self.public.path(w.slot).into_iter().map(Felt).collect(),
                });
                self.public.set(w.slot, w.value.0);
            } else {
                public_witnesses.push(PublicWriteWitness {
                    old_value: Felt::ZERO,
                    siblings: vec![Felt::ZERO; self.params.public_data_depth as usize],
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
        let p = &self.params;
        let per_block = p.messages_per_block();
        if messages.len() > per_block {
            return Err(WorldError::Shape(format!(
                "{} messages, at most {per_block} per block",
                messages.len()
            )));
        }
        if self.message_next + per_block as u64 > 1u64 << p.message_depth {
            return Err(WorldError::Full("message"));
        }
        if self.archive_next >= 1u64 << p.archive_depth {
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
        let message_siblings = self
            .messages
            .path_from(log_m, self.message_next >> log_m)
            .into_iter()
            .map(Felt)
            .collect();
        for (j, m) in padded.iter().enumerate() {
            self.messages.set(self.message_next + j as u64, m.0);
        }
        self.message_next += per_block as u64;

        let end_tx = self.tx_state();
        let header = Header {
            number: self.archive_next,
            slot,
            previous_archive_root: Felt(self.archive.root()),
            end_tx,
            message_root: Felt(self.messages.root()),
            message_next: self.message_next,
            effects: merge_effects(left.effects, right.effects),
            fee: Felt(left.fee.0 + right.fee.0),
        };
        let archive_siblings = self
            .archive
            .path(self.archive_next)
            .into_iter()
            .map(Felt)
            .collect();
        self.archive.set(self.archive_next, header.hash());
        self.archive_next += 1;
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

/// A transaction that uses every slot: random note hashes, fresh random
/// nullifiers, writes to random public slots, a random fee. The devnet's
/// sequencer and the benchmarks make their traffic with it.
pub fn synthetic_tx<R: rand::Rng>(world: &World, rng: &mut R) -> Tx {
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
        if !n.0.is_zero() && !world.has_nullifier(&n) && !nullifiers.contains(&n) {
            nullifiers.push(n);
        }
    }
    let public_writes = (0..p.public_writes_per_tx)
        .map(|_| crate::circuits::base::PublicWrite {
            enabled: true,
            slot: rng.r#gen::<u64>() & ((1u64 << p.public_data_depth) - 1),
            value: felt(rng),
        })
        .collect();
    Tx {
        notes,
        nullifiers,
        public_writes,
        fee: rng.gen_range(1..1_000_000),
    }
}

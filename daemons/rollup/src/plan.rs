//! An epoch's proof tree, planned natively: apply each block's transactions
//! to the world state, and list every proving job with its inputs and its
//! children. Because a parent consumes only its children's outputs (public
//! inputs computed here too), every job's inputs are known up front; the
//! orchestrator still proves children before parents so that it can check
//! the links.
//!
//! Shape: per block, a base parity per message chunk and a root parity; a
//! base rollup per transaction (padded with empty transactions to the
//! block's count), merged pairwise until two ranges are left for the block
//! root. Blocks are merged pairwise level by level (an odd one is carried
//! up) until one or two ranges are left for the root.

use serde::{Deserialize, Serialize};

use crate::world::store::TreeStore;
use crate::world::{World, WorldError};
use aztec_zk::circuits::base::Tx;
use aztec_zk::circuits::block_root::Header;
use aztec_zk::circuits::merge::MergeInputs;
use aztec_zk::circuits::root::RootInputs;
use aztec_zk::circuits::{CircuitId, Inputs};
use aztec_zk::felt::Felt;
use aztec_zk::roots::{BlockState, RollupOutput};

/// A block to prove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSpec {
    /// Its transactions (at most the block's count; padded).
    pub txs: Vec<Tx>,
    /// Its L1-to-L2 messages (at most the block's count; padded).
    pub messages: Vec<Felt>,
    /// Its L2 slot.
    pub slot: u64,
}

/// One proving job of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedJob {
    /// The circuit's inputs.
    pub inputs: Inputs,
    /// Indices of the children, in the order the parent restates them.
    pub children: Vec<usize>,
}

impl PlannedJob {
    /// The circuit.
    pub fn circuit(&self) -> CircuitId {
        self.inputs.circuit()
    }
}

/// The plan of an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochPlan {
    /// Every job; children come before their parents.
    pub jobs: Vec<PlannedJob>,
    /// The root job (last).
    pub root: usize,
    /// The state before the epoch.
    pub start: BlockState,
    /// The state after it.
    pub end: BlockState,
    /// The headers of the epoch's blocks.
    pub headers: Vec<Header>,
}

impl EpochPlan {
    /// How many jobs of each circuit.
    pub fn count(&self, c: CircuitId) -> usize {
        self.jobs.iter().filter(|j| j.circuit() == c).count()
    }
}

fn push(jobs: &mut Vec<PlannedJob>, inputs: Inputs, children: Vec<usize>) -> usize {
    jobs.push(PlannedJob { inputs, children });
    jobs.len() - 1
}

/// Pairs ranges level by level until at most two are left; `merge` makes the job of a pair.
fn reduce(
    jobs: &mut Vec<PlannedJob>,
    mut level: Vec<(usize, RollupOutput)>,
    merge: fn(MergeInputs) -> Inputs,
) -> Vec<(usize, RollupOutput)> {
    while level.len() > 2 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => {
                    let m = MergeInputs {
                        left: l.1,
                        right: r.1,
                    };
                    let id = push(jobs, merge(m), vec![l.0, r.0]);
                    next.push((id, m.output()));
                }
                [one] => next.push(*one),
                _ => {}
            }
        }
        level = next;
    }
    level
}

/// Applies `blocks` to `world` and plans the epoch's proofs. On error the
/// world is left as it was.
pub fn plan_epoch<S: TreeStore>(
    world: &mut World<S>,
    epoch: u64,
    prover_id: Felt,
    blocks: &[BlockSpec],
) -> Result<EpochPlan, WorldError> {
    let (plan, changes) = {
        let mut fork = world.fork();
        let plan = plan_inner(&mut fork, epoch, prover_id, blocks)?;
        (plan, fork.into_changes())
    };
    world.apply(&changes)?;
    Ok(plan)
}

fn plan_inner<S: TreeStore>(
    world: &mut World<S>,
    epoch: u64,
    prover_id: Felt,
    blocks: &[BlockSpec],
) -> Result<EpochPlan, WorldError> {
    let p = world.params().clone();
    if blocks.is_empty() {
        return Err(WorldError::Shape("an epoch has at least one block".into()));
    }
    let start = world.block_state();
    let mut jobs = Vec::new();
    let mut block_ranges = Vec::with_capacity(blocks.len());
    let mut headers = Vec::with_capacity(blocks.len());
    for (b, spec) in blocks.iter().enumerate() {
        if spec.txs.len() > p.txs_per_block() {
            return Err(WorldError::Shape(format!(
                "block {b} has {} txs, at most {}",
                spec.txs.len(),
                p.txs_per_block()
            )));
        }
        let block_start = world.block_state();
        let mut txs = spec.txs.clone();
        txs.resize(p.txs_per_block(), Tx::empty(&p));
        let mut level = Vec::with_capacity(txs.len());
        for tx in &txs {
            let (inputs, out) = world.apply_tx(tx)?;
            level.push((push(&mut jobs, Inputs::BaseRollup(inputs), vec![]), out));
        }
        let level = reduce(&mut jobs, level, Inputs::MergeRollup);
        let (left, right) = (level[0], level[1]);
        let closed = world.close_block(block_start, left.1, right.1, &spec.messages, spec.slot)?;
        let parities: Vec<usize> = closed
            .base_parities
            .iter()
            .map(|bp| push(&mut jobs, Inputs::BaseParity(bp.clone()), vec![]))
            .collect();
        let root_parity = push(
            &mut jobs,
            Inputs::RootParity(closed.root_parity.clone()),
            parities,
        );
        let block = push(
            &mut jobs,
            Inputs::BlockRoot(closed.block_root.clone()),
            vec![root_parity, left.0, right.0],
        );
        block_ranges.push((block, closed.output));
        headers.push(closed.header);
    }
    let level = reduce(&mut jobs, block_ranges, Inputs::BlockMerge);
    let end = world.block_state();
    let (root_inputs, children) = match level.as_slice() {
        [one] => (
            RootInputs {
                left: one.1,
                right: RootInputs::padding_right(&one.1),
                single: true,
                start,
                end,
                epoch,
                prover_id,
            },
            vec![one.0],
        ),
        [l, r] => (
            RootInputs {
                left: l.1,
                right: r.1,
                single: false,
                start,
                end,
                epoch,
                prover_id,
            },
            vec![l.0, r.0],
        ),
        _ => return Err(WorldError::Shape("no block ranges".into())),
    };
    let root = push(&mut jobs, Inputs::RootRollup(root_inputs), children);
    Ok(EpochPlan {
        jobs,
        root,
        start,
        end,
        headers,
    })
}

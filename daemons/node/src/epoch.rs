//! Re-execution: the chain's blocks replayed against the world state (to
//! bring it to an epoch's start), and an epoch planned into its job tree,
//! each checked against the archive L1 recorded.

use alloy::primitives::{Address, B256};
use aztec_prover_l1::chain::ProposedBlock;
use aztec_prover_l1::{felt_word, word_felt};
use aztec_prover_rollup::plan::{BlockSpec, EpochPlan, plan_epoch};
use aztec_prover_rollup::world::World;
use aztec_prover_rollup::world::store::TreeStore;
use aztec_zk::Felt;

use crate::error::NodeError;

/// The prover id the root rollup records: the prover's address as a number.
pub fn prover_id(prover: Address) -> Felt {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(prover.as_slice());
    word_felt(&B256::from(w)).unwrap_or(Felt::ZERO)
}

/// Re-executes `block` on `world` alone (to bring the world to an epoch's
/// start) and checks that the result is the archive L1 recorded.
pub fn replay<S: TreeStore>(
    world: &mut World<S>,
    epoch: u64,
    spec: &BlockSpec,
    b: &ProposedBlock,
) -> Result<(), NodeError> {
    let plan = plan_epoch(world, epoch, Felt::ZERO, std::slice::from_ref(spec))
        .map_err(|e| NodeError::Chain(format!("block {}: {e}", b.number)))?;
    check_archive(&plan, b)
}

fn check_archive(plan: &EpochPlan, last: &ProposedBlock) -> Result<(), NodeError> {
    let ours = felt_word(&plan.end.archive_root);
    if ours != last.archive {
        return Err(NodeError::Chain(format!(
            "re-executing up to block {} gives archive {ours}, L1 recorded {}",
            last.number, last.archive
        )));
    }
    Ok(())
}

/// The job tree of an epoch whose blocks are `specs` (`blocks` the matching
/// proposals), proven for `prover`. `world` must be at the epoch's start; it
/// ends at the epoch's end.
pub fn plan<S: TreeStore>(
    world: &mut World<S>,
    epoch: u64,
    prover: Address,
    specs: &[BlockSpec],
    blocks: &[&ProposedBlock],
) -> Result<EpochPlan, NodeError> {
    let last = blocks
        .last()
        .ok_or_else(|| NodeError::Chain(format!("epoch {epoch} has no blocks")))?;
    let plan = plan_epoch(world, epoch, prover_id(prover), specs)
        .map_err(|e| NodeError::Chain(format!("epoch {epoch}: {e}")))?;
    check_archive(&plan, last)?;
    Ok(plan)
}

/// The job tree of epoch `e` (blocks `first..=last`) for `prover`, from
/// genesis: every earlier block read from L1 and re-executed in memory.
/// For benchmarks and tests; the node keeps its world state instead.
pub async fn plan_from_genesis(
    l1: &aztec_prover_l1::L1,
    txs: &crate::txs::TxSource,
    params: &aztec_zk::RollupParams,
    e: u64,
    (first, last): (u64, u64),
    prover: Address,
) -> Result<EpochPlan, NodeError> {
    let l1_err = |what: &str, err| NodeError::l1(what, err);
    let cfg = l1
        .config()
        .await
        .map_err(|err| l1_err("reading the rollup's timing", err))?;
    let latest = l1
        .l1_block_number()
        .await
        .map_err(|err| l1_err("reading L1's block number", err))?;
    let mut blocks = std::collections::BTreeMap::new();
    for b in l1
        .proposed_blocks(0, latest)
        .await
        .map_err(|err| l1_err("reading the rollup's blocks", err))?
    {
        blocks.insert(b.number, b);
    }
    let block = |n: u64| {
        blocks
            .get(&n)
            .ok_or_else(|| NodeError::Chain(format!("block {n} is not on L1")))
    };
    let mut world = World::genesis(params.clone());
    for n in 1..first {
        let b = block(n)?;
        let spec = txs.block_spec(b).await?;
        replay(&mut world, cfg.epoch_of(b.slot), &spec, b)?;
    }
    let ours: Vec<&ProposedBlock> = (first..=last).map(block).collect::<Result<_, _>>()?;
    let mut specs = Vec::with_capacity(ours.len());
    for b in &ours {
        specs.push(txs.block_spec(b).await?);
    }
    plan(&mut world, e, prover, &specs, &ours)
}

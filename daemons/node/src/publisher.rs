//! The publisher: the proven tree of an epoch onto L1, once. The proofs
//! are encoded as `submitEpochRootProof` takes them; a submission L1 would
//! refuse is refused before sending; while L1 cannot be reached it tries
//! again, up to the epoch's timeout, and before each new attempt it asks L1
//! whether an earlier one landed, so an epoch is never submitted twice.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::rpc::types::TransactionReceipt;
use aztec_prover_l1::bindings::Rollup;
use aztec_prover_l1::{L1, L1Error, felt_word};
use aztec_prover_rollup::plan::EpochPlan;

use crate::error::NodeError;
use crate::orchestrator::ProvenJob;
use crate::retry::wait_for_l1;

/// The proofs as `submitEpochRootProof` takes them.
pub fn to_sol(jobs: &[ProvenJob]) -> Vec<Rollup::EpochProof> {
    jobs.iter()
        .map(|j| Rollup::EpochProof {
            circuit: aztec_zk::wire::verifier_number(j.circuit),
            children: j.children.iter().map(|c| *c as u32).collect(),
            publicInputs: j
                .public_inputs
                .iter()
                .map(|f| U256::from_be_bytes(felt_word(f).0))
                .collect(),
            proof: j.proof.map(U256::from_be_bytes),
        })
        .collect()
}

/// What the root proof claims about the chain.
pub fn root_args(
    plan: &EpochPlan,
    epoch: u64,
    first: u64,
    last: u64,
    fees: U256,
) -> Rollup::EpochProofArgs {
    Rollup::EpochProofArgs {
        epoch: U256::from(epoch),
        firstBlock: U256::from(first),
        lastBlock: U256::from(last),
        startArchive: felt_word(&plan.start.archive_root),
        endArchive: felt_word(&plan.end.archive_root),
        totalFees: fees,
    }
}

/// Submits the epoch proof. A proof the contract would refuse is refused
/// before sending, with the contract's reason (the node never pays gas for
/// a failing submission).
pub async fn submit(
    l1: &L1,
    args: Rollup::EpochProofArgs,
    jobs: &[ProvenJob],
) -> Result<TransactionReceipt, L1Error> {
    let epoch = args.epoch;
    let receipt = l1
        .send(
            "submitEpochRootProof",
            l1.rollup().submitEpochRootProof(args, to_sol(jobs)),
        )
        .await?;
    tracing::info!(
        "epoch {epoch} proof accepted on L1 in block {} ({} proofs, {} gas)",
        receipt.block_number.unwrap_or(0),
        jobs.len(),
        receipt.gas_used
    );
    Ok(receipt)
}

/// Publishes the epoch proof; returns the gas it took (0 when an earlier
/// attempt is found to have landed). While L1 cannot be reached it tries
/// again, with a growing pause, until `deadline`; before each new attempt
/// it asks L1 whether the epoch's last block is already proven, so a
/// submission whose answer was lost is never sent twice. A revert (the
/// proof window closed, a bad proof) ends it.
pub async fn publish(
    l1: &L1,
    plan: &EpochPlan,
    e: u64,
    first: u64,
    last: u64,
    jobs: &[ProvenJob],
    deadline: Instant,
) -> Result<u64, NodeError> {
    let mut pause = Duration::from_secs(1);
    for attempt in 1u32.. {
        if attempt > 1 && landed(l1, e, last).await {
            return Ok(0);
        }
        let sent = async {
            let fees = l1.fees_between(first, last).await?;
            submit(l1, root_args(plan, e, first, last, fees), jobs).await
        }
        .await;
        match sent {
            Ok(receipt) => return Ok(receipt.gas_used),
            Err(err) => {
                let what = format!("publishing epoch {e} (attempt {attempt})");
                if wait_for_l1(e, &what, &err, &mut pause, deadline).await {
                    continue;
                }
                // A submission whose answer was lost may have landed
                // since: then a later attempt reverts, and that is fine.
                if attempt > 1 && landed(l1, e, last).await {
                    return Ok(0);
                }
                return Err(NodeError::l1(what, err));
            }
        }
    }
    unreachable!("the attempts never run out")
}

/// Whether block `last` of epoch `e` is proven on L1 already (an earlier
/// submission landed).
async fn landed(l1: &L1, e: u64, last: u64) -> bool {
    let proven = matches!(l1.tips().await, Ok((_, p)) if p >= last);
    if proven {
        tracing::info!(
            EPOCH = e,
            "epoch {e}: block {last} is proven on L1: an earlier submission landed"
        );
    }
    proven
}

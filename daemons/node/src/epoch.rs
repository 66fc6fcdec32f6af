//! From an epoch on L1 to the proofs L1 accepts: the tx provider (tx objects
//! by hash from the remote node, checked against their hashes), re-execution
//! of the chain's blocks against the world state into the epoch's job tree,
//! and the publisher's encoding and submission of the proven tree.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::TransactionReceipt;
use aztec_prover_l1::bindings::Rollup;
use aztec_prover_l1::chain::ProposedBlock;
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_l1::{L1, L1Error, felt_word, word_felt};
use aztec_zk::circuits::base::Tx;
use aztec_zk::plan::{BlockSpec, EpochPlan, plan_epoch};
use aztec_zk::world::World;
use aztec_zk::world::store::TreeStore;
use aztec_zk::{CircuitId, Felt};

/// The prover id the root rollup records: the prover's address as a number.
pub fn prover_id(prover: Address) -> Felt {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(prover.as_slice());
    word_felt(&B256::from(w)).unwrap_or(Felt::ZERO)
}

/// Fetches a tx, retrying a node that fails `attempts` times; a node that
/// does not have it is an error at once.
pub async fn fetch_tx(remote: &RemoteNode, hash: B256, attempts: u32) -> Result<Tx, String> {
    let mut last = String::new();
    for i in 0..attempts.max(1) {
        match remote.tx(hash).await {
            Ok(Some(tx)) => return Ok(tx),
            Ok(None) => {
                return Err(format!(
                    "the remote node {} does not have tx {hash}",
                    remote.url()
                ));
            }
            Err(e) => {
                last = e;
                tokio::time::sleep(Duration::from_millis(200 << i.min(5))).await;
            }
        }
    }
    Err(format!("tx {hash} could not be fetched: {last}"))
}

/// A block proposal with its txs, ready to be re-executed.
pub async fn block_spec(remote: &RemoteNode, b: &ProposedBlock) -> Result<BlockSpec, String> {
    let mut txs = Vec::with_capacity(b.tx_hashes.len());
    for h in &b.tx_hashes {
        txs.push(fetch_tx(remote, *h, 5).await?);
    }
    let messages = b
        .messages
        .iter()
        .map(|m| {
            word_felt(m)
                .ok_or_else(|| format!("block {}: message {m} is not a field element", b.number))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BlockSpec {
        txs,
        messages,
        slot: b.slot,
    })
}

/// Re-executes `block` on `world` alone (to bring the world to an epoch's
/// start) and checks that the result is the archive L1 recorded.
pub fn replay<S: TreeStore>(
    world: &mut World<S>,
    epoch: u64,
    spec: &BlockSpec,
    b: &ProposedBlock,
) -> Result<(), String> {
    let plan = plan_epoch(world, epoch, Felt::ZERO, std::slice::from_ref(spec))
        .map_err(|e| format!("block {}: {e}", b.number))?;
    check_archive(&plan, b)
}

fn check_archive(plan: &EpochPlan, last: &ProposedBlock) -> Result<(), String> {
    let ours = felt_word(&plan.end.archive_root);
    if ours != last.archive {
        return Err(format!(
            "re-executing up to block {} gives archive {ours}, L1 recorded {}",
            last.number, last.archive
        ));
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
) -> Result<EpochPlan, String> {
    let last = blocks.last().ok_or("an epoch without blocks")?;
    let plan = plan_epoch(world, epoch, prover_id(prover), specs)
        .map_err(|e| format!("epoch {epoch}: {e}"))?;
    check_archive(&plan, last)?;
    Ok(plan)
}

/// One proven job of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenJob {
    /// Its circuit.
    pub circuit: CircuitId,
    /// Its children in the tree, as indices of earlier jobs.
    pub children: Vec<usize>,
    /// Its public inputs.
    pub public_inputs: Vec<Felt>,
    /// The proof in the precompiles' order (`groth16::evm::proof_words`);
    /// zeros for simulated jobs (mock verifier).
    pub proof: [[u8; 32]; 8],
}

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

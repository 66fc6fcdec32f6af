//! The publisher: the proven tree of an epoch onto L1, once, in as few
//! transactions as stay within a gas and a calldata budget.
//!
//! The tree's proofs are numbered by position (the plan's order: children
//! before parents, the root last) and cut into runs of consecutive
//! positions. Every run but the last goes to `submitEpochChunk`: L1 verifies
//! it and records the outputs its parents will consume; the last goes to
//! `submitEpochRootProof` with the root, which consumes what is left. A run
//! is sized with a gas model, then checked with `eth_estimateGas` and made
//! shorter until L1 agrees it fits. A submission L1 would refuse is refused
//! before sending, with the contract's reason. While L1 cannot be reached
//! the publisher tries again, up to the epoch's timeout; each attempt starts
//! by asking L1 which positions are verified already, so a chunk or a root
//! whose answer was lost is never sent twice, and a restarted node sends
//! only what is missing.

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::Ethereum;
use alloy::providers::DynProvider;

use alloy::primitives::U256;
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolCall;
use aztec_prover_l1::bindings::Rollup;
use aztec_prover_l1::{L1, L1Error, felt_word};
use aztec_prover_rollup::plan::EpochPlan;

use crate::error::NodeError;
use crate::orchestrator::ProvenJob;
use crate::retry::wait_for_l1;

/// What one L1 transaction of an epoch may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxBudget {
    /// Gas (Ethereum caps a transaction at 16,777,216: EIP-7825).
    pub gas: u64,
    /// Calldata bytes (L1 clients' pools refuse transactions over 128 KiB).
    pub calldata_bytes: usize,
}

impl Default for TxBudget {
    fn default() -> TxBudget {
        TxBudget {
            gas: 15_000_000,
            calldata_bytes: 120 << 10,
        }
    }
}

/// What publishing an epoch took on L1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Publication {
    /// Transactions this node sent (chunks and the root).
    pub txs: usize,
    /// Their gas.
    pub gas: u64,
    /// The most gas one of them used.
    pub max_gas: u64,
    /// Their calldata bytes.
    pub calldata_bytes: usize,
    /// The most calldata one of them carried.
    pub max_calldata_bytes: usize,
}

impl Publication {
    /// This and `other`, one after the other.
    pub fn and(mut self, other: Publication) -> Publication {
        self.txs += other.txs;
        self.gas += other.gas;
        self.max_gas = self.max_gas.max(other.max_gas);
        self.calldata_bytes += other.calldata_bytes;
        self.max_calldata_bytes = self.max_calldata_bytes.max(other.max_calldata_bytes);
        self
    }

    fn add(&mut self, gas: u64, bytes: usize) {
        self.txs += 1;
        self.gas += gas;
        self.max_gas = self.max_gas.max(gas);
        self.calldata_bytes += bytes;
        self.max_calldata_bytes = self.max_calldata_bytes.max(bytes);
    }
}

fn words(fs: &[aztec_zk::Felt]) -> Vec<U256> {
    fs.iter()
        .map(|f| U256::from_be_bytes(felt_word(f).0))
        .collect()
}

/// The proofs at `positions` as the rollup takes them.
pub fn to_sol(jobs: &[ProvenJob], positions: &[usize]) -> Vec<Rollup::EpochProof> {
    positions
        .iter()
        .map(|&p| {
            let j = &jobs[p];
            Rollup::EpochProof {
                position: p as u32,
                circuit: aztec_zk::wire::verifier_number(j.circuit),
                children: j.children.iter().map(|c| *c as u32).collect(),
                publicInputs: words(&j.public_inputs),
                proof: j.proof.map(U256::from_be_bytes),
            }
        })
        .collect()
}

/// The outputs at `positions`, restated for the parents that consume them.
pub fn outputs_sol(jobs: &[ProvenJob], positions: &[usize]) -> Vec<Rollup::VerifiedOutput> {
    positions
        .iter()
        .map(|&p| Rollup::VerifiedOutput {
            position: p as u32,
            circuit: aztec_zk::wire::verifier_number(jobs[p].circuit),
            publicInputs: words(&jobs[p].public_inputs),
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

/// One transaction's part of the tree: consecutive positions, and the
/// outputs of earlier chunks their proofs consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Positions proven in it, increasing.
    pub proofs: Vec<usize>,
    /// Children of those proofs verified by earlier chunks, increasing.
    pub consumed: Vec<usize>,
    /// Proofs whose parent is not in it: L1 records their outputs.
    pub recorded: usize,
}

impl Chunk {
    /// The chunk of `positions` of the tree `jobs`.
    pub fn of(jobs: &[ProvenJob], positions: &[usize]) -> Chunk {
        let inside: BTreeSet<usize> = positions.iter().copied().collect();
        let consumed: BTreeSet<usize> = positions
            .iter()
            .flat_map(|&p| jobs[p].children.iter().copied())
            .filter(|c| !inside.contains(c))
            .collect();
        let used: BTreeSet<usize> = positions
            .iter()
            .flat_map(|&p| jobs[p].children.iter().copied())
            .collect();
        Chunk {
            proofs: positions.to_vec(),
            consumed: consumed.into_iter().collect(),
            recorded: positions.iter().filter(|p| !used.contains(p)).count(),
        }
    }

    /// Whether it ends with the root (the last position of the tree).
    pub fn is_final(&self, jobs: &[ProvenJob]) -> bool {
        self.proofs.last() == Some(&(jobs.len() - 1))
    }

    /// Its calldata as a `submitEpochChunk` call (a root call is the same
    /// plus six words of arguments).
    pub fn calldata(&self, jobs: &[ProvenJob], epoch: u64) -> Vec<u8> {
        Rollup::submitEpochChunkCall {
            epoch: U256::from(epoch),
            size: U256::from(jobs.len()),
            proofs: to_sol(jobs, &self.proofs),
            consumed: outputs_sol(jobs, &self.consumed),
        }
        .abi_encode()
    }
}

/// Gas the rollup and the verifier spend besides calldata, measured on
/// anvil with the Groth16 verifier (L1's estimates of chunks at test sizes
/// were 0.92 to 1.05 times this model's). The publisher checks every chunk
/// with `eth_estimateGas` before sending: the model only picks its length.
mod cost {
    /// A transaction, and the rollup's checks and its call to the verifier.
    pub const TX: u64 = 21_000 + 110_000;
    /// The root's transaction also checks the chain, pays, unstakes and
    /// releases the chunks' storage.
    pub const ROOT: u64 = 150_000;
    /// Per circuit used in a chunk: three pairs of the pairing check, and
    /// the fold of its verifying key's points (one ecMul and ecAdd each).
    pub fn circuit(inputs: usize) -> u64 {
        3 * 38_000 + (inputs as u64 + 2) * 7_700 + 12_000
    }
    /// Per proof: its pair of the pairing, two ecMul, the folding of its
    /// inputs and the link checks.
    pub fn proof(inputs: usize, children: usize) -> u64 {
        38_000 + 2 * 7_100 + inputs as u64 * 560 + children as u64 * 2_300 + 9_000
    }
    /// Recording an output (a new storage slot and its hash).
    pub const RECORD: u64 = 25_000;
    /// Consuming one (its hash checked against the record, which is deleted).
    pub fn consume(inputs: usize) -> u64 {
        7_000 + inputs as u64 * 170
    }
}

/// Gas of calldata (EIP-2028, and EIP-7623's floor for data-heavy calls).
fn calldata_gas(data: &[u8]) -> u64 {
    let zeros = data.iter().filter(|b| **b == 0).count() as u64;
    let nonzero = data.len() as u64 - zeros;
    let tokens = zeros + 4 * nonzero;
    (4 * tokens).max(10 * tokens)
}

/// The model's gas for `chunk` of `jobs`, with its calldata `data`.
pub fn model_gas(jobs: &[ProvenJob], chunk: &Chunk, data: &[u8]) -> u64 {
    let mut circuits = BTreeSet::new();
    let mut gas = cost::TX + calldata_gas(data);
    if chunk.is_final(jobs) {
        gas += cost::ROOT;
    }
    for &p in &chunk.proofs {
        let j = &jobs[p];
        if circuits.insert(j.circuit) {
            gas += cost::circuit(j.public_inputs.len());
        }
        gas += cost::proof(j.public_inputs.len(), j.children.len());
    }
    gas += chunk.recorded as u64 * cost::RECORD;
    for &c in &chunk.consumed {
        gas += cost::consume(jobs[c].public_inputs.len());
    }
    // Memory for the call to the verifier: quadratic in its size.
    let w = data.len() as u64 / 32;
    gas + 3 * w + w * w / 512
}

/// How many of `remaining` (positions, increasing) the next chunk takes:
/// the longest run the model fits in `budget` (at least one).
pub fn next_run(jobs: &[ProvenJob], remaining: &[usize], epoch: u64, budget: &TxBudget) -> usize {
    let fits = |n: usize| {
        let chunk = Chunk::of(jobs, &remaining[..n]);
        let data = chunk.calldata(jobs, epoch);
        data.len() + 6 * 32 <= budget.calldata_bytes && model_gas(jobs, &chunk, &data) <= budget.gas
    };
    // The model grows with the run: the longest that fits, by bisection.
    let (mut lo, mut hi) = (1, remaining.len());
    if fits(hi) {
        return hi;
    }
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Submits the whole epoch in one transaction (no chunks): the path of
/// small epochs, and the comparison the benchmark makes.
pub async fn submit(
    l1: &L1,
    args: Rollup::EpochProofArgs,
    jobs: &[ProvenJob],
) -> Result<TransactionReceipt, L1Error> {
    let all: Vec<usize> = (0..jobs.len()).collect();
    let epoch = args.epoch;
    let receipt = l1
        .send(
            "submitEpochRootProof",
            l1.rollup().submitEpochRootProof(
                args,
                U256::from(jobs.len()),
                to_sol(jobs, &all),
                Vec::new(),
            ),
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

/// What became of a chunk.
enum Sent {
    /// On L1: the gas it used, the L1 block it landed in, its calldata size.
    Landed { gas: u64, block: u64, bytes: usize },
    /// Not sent: L1's estimate (or the calldata) is over the budget, by this
    /// factor (above 1).
    Over(f64),
}

/// Sends one chunk (the root's when it ends the tree). Before sending, L1
/// estimates it: a chunk over the budget is not sent, and the caller makes
/// it shorter.
async fn send_chunk(
    l1: &L1,
    jobs: &[ProvenJob],
    chunk: &Chunk,
    root: &Rollup::EpochProofArgs,
    budget: &TxBudget,
) -> Result<Sent, L1Error> {
    let size = U256::from(jobs.len());
    let proofs = to_sol(jobs, &chunk.proofs);
    let consumed = outputs_sol(jobs, &chunk.consumed);
    let data = chunk.calldata(jobs, 0);
    let model = model_gas(jobs, chunk, &data);
    let rollup = l1.rollup();
    if chunk.is_final(jobs) {
        let call = rollup.submitEpochRootProof(root.clone(), size, proofs, consumed);
        fit_and_send(l1, "submitEpochRootProof", model, call, budget).await
    } else {
        let call = rollup.submitEpochChunk(root.epoch, size, proofs, consumed);
        fit_and_send(l1, "submitEpochChunk", model, call, budget).await
    }
}

async fn fit_and_send<C>(
    l1: &L1,
    what: &str,
    model: u64,
    call: CallBuilder<&DynProvider, PhantomData<C>, Ethereum>,
    budget: &TxBudget,
) -> Result<Sent, L1Error>
where
    PhantomData<C>: CallDecoder,
{
    let bytes = call.calldata().len();
    if bytes > budget.calldata_bytes {
        return Ok(Sent::Over(bytes as f64 / budget.calldata_bytes as f64));
    }
    let estimate = call
        .estimate_gas()
        .await
        .map_err(|e| aztec_prover_l1::chain::classify(what, e))?;
    tracing::debug!(
        "{what}: L1 estimates {estimate} gas, the model {model} (budget {})",
        budget.gas
    );
    if estimate > budget.gas {
        return Ok(Sent::Over(estimate as f64 / budget.gas as f64));
    }
    let receipt = l1.send(what, call).await?;
    Ok(Sent::Landed {
        gas: receipt.gas_used,
        block: receipt.block_number.unwrap_or(0),
        bytes,
    })
}

/// Publishes the epoch proof in chunks within `budget`; returns what it
/// took, counting `already` (the chunks [`publish_early`] sent). While
/// L1 cannot be reached it tries again, with a growing pause, until
/// `deadline`; each attempt starts from what L1 has verified already. A
/// revert (the proof window closed, a bad proof) ends it.
#[allow(clippy::too_many_arguments)] // one epoch's facts, passed once
pub async fn publish(
    l1: &L1,
    plan: &EpochPlan,
    e: u64,
    first: u64,
    last: u64,
    jobs: &[ProvenJob],
    deadline: Instant,
    budget: &TxBudget,
    already: Publication,
) -> Result<Publication, NodeError> {
    let mut pause = Duration::from_secs(1);
    let mut done = already;
    for attempt in 1u32.. {
        if attempt > 1 && landed(l1, e, last).await {
            return Ok(done);
        }
        match publish_once(l1, plan, e, first, last, jobs, budget, &mut done).await {
            Ok(()) => return Ok(done),
            Err(err) => {
                let what = format!("publishing epoch {e} (attempt {attempt})");
                if wait_for_l1(e, &what, &err, &mut pause, deadline).await {
                    continue;
                }
                // A submission whose answer was lost may have landed
                // since: then a later attempt reverts, and that is fine.
                if attempt > 1 && landed(l1, e, last).await {
                    return Ok(done);
                }
                return Err(NodeError::l1(what, err));
            }
        }
    }
    unreachable!("the attempts never run out")
}

/// One attempt: asks L1 what is verified, then sends the rest.
#[allow(clippy::too_many_arguments)] // publish's, passed on
async fn publish_once(
    l1: &L1,
    plan: &EpochPlan,
    e: u64,
    first: u64,
    last: u64,
    jobs: &[ProvenJob],
    budget: &TxBudget,
    done: &mut Publication,
) -> Result<(), L1Error> {
    let (size, _, verified) = l1.epoch_chunks(e).await?;
    if size != 0 && size != jobs.len() {
        return Err(L1Error::Other(format!(
            "L1 holds chunks of a tree of {size} proofs for epoch {e}; this node's has {}",
            jobs.len()
        )));
    }
    let mut remaining: Vec<usize> = (0..jobs.len())
        .filter(|p| !verified.get(*p).copied().unwrap_or(false))
        .collect();
    if remaining.len() < jobs.len() {
        tracing::info!(
            EPOCH = e,
            "epoch {e}: {} of {} proofs are verified on L1 already; sending the other {}",
            jobs.len() - remaining.len(),
            jobs.len(),
            remaining.len()
        );
    }
    let fees = l1.fees_between(first, last).await?;
    let root = root_args(plan, e, first, last, fees);
    while !remaining.is_empty() {
        let mut take = next_run(jobs, &remaining, e, budget);
        let (chunk, gas, block, bytes) = loop {
            let chunk = Chunk::of(jobs, &remaining[..take]);
            let over = match send_chunk(l1, jobs, &chunk, &root, budget).await? {
                Sent::Landed { gas, block, bytes } => break (chunk, gas, block, bytes),
                Sent::Over(by) => by,
            };
            if take == 1 {
                return Err(L1Error::Other(format!(
                    "epoch {e}: the proof at position {} alone is over the transaction budget ({} gas, {} bytes)",
                    remaining[0], budget.gas, budget.calldata_bytes
                )));
            }
            // Shorter by what L1 found over, and a little more.
            let shorter = (take as f64 / (over * 1.02)).floor() as usize;
            take = shorter.clamp(1, take - 1);
        };
        done.add(gas, bytes);
        remaining.drain(..take);
        if chunk.is_final(jobs) {
            tracing::info!(
                "epoch {e} proof accepted on L1 in block {block} ({} proofs in {} transaction(s), {} gas, the most {} gas and {} bytes in one)",
                jobs.len(),
                done.txs,
                done.gas,
                done.max_gas,
                done.max_calldata_bytes
            );
        } else {
            tracing::info!(
                EPOCH = e,
                "epoch {e}: chunk of {} proofs (positions {}..={}) verified on L1 in block {block}: {gas} gas, {bytes} bytes, {} outputs kept for later, {} consumed",
                chunk.proofs.len(),
                chunk.proofs[0],
                chunk.proofs[chunk.proofs.len() - 1],
                chunk.recorded,
                chunk.consumed.len()
            );
        }
    }
    Ok(())
}

/// Sends chunks while the epoch is still being proven: each time the
/// proofs at the next positions are all in and make a chunk as long as the
/// budget allows, it goes to L1. Proofs arrive on `proven` (position and
/// proof) until the sender is dropped; the root and whatever did not make a
/// full chunk are left to [`publish`], which finds on L1 what these sent.
/// Best effort: an error stops it (logged) and leaves the rest to `publish`.
pub async fn publish_early(
    l1: &L1,
    plan: &EpochPlan,
    e: u64,
    mut proven: tokio::sync::mpsc::UnboundedReceiver<(usize, ProvenJob)>,
    budget: &TxBudget,
) -> Publication {
    let mut done = Publication::default();
    let n = plan.jobs.len();
    let verified = match l1.epoch_chunks(e).await {
        Ok((size, _, v)) if size == 0 || size == n => v,
        Ok((size, _, _)) => {
            tracing::warn!(
                EPOCH = e,
                "epoch {e}: L1 holds chunks of a tree of {size} proofs, ours has {n}: nothing sent early"
            );
            return done;
        }
        Err(err) => {
            tracing::warn!(EPOCH = e, "epoch {e}: no chunks sent early: {err}");
            return done;
        }
    };
    // The tree as planned; each job's outputs replace the plan's as they come.
    let mut jobs: Vec<ProvenJob> = plan
        .jobs
        .iter()
        .map(|j| ProvenJob {
            circuit: j.circuit(),
            children: j.children.clone(),
            public_inputs: Vec::new(),
            proof: [[0; 32]; 8],
        })
        .collect();
    let mut ready = vec![false; n];
    let next_unverified = (0..n).find(|p| !verified.get(*p).copied().unwrap_or(false));
    let mut next = next_unverified.unwrap_or(n);
    // Only a chunk's epoch is read: the root is never sent early.
    let root = Rollup::EpochProofArgs {
        epoch: U256::from(e),
        firstBlock: U256::ZERO,
        lastBlock: U256::ZERO,
        startArchive: Default::default(),
        endArchive: Default::default(),
        totalFees: U256::ZERO,
    };
    while let Some((i, job)) = proven.recv().await {
        if i >= n {
            continue;
        }
        jobs[i] = job;
        ready[i] = true;
        loop {
            // The proofs ready from `next` on, short of the root.
            let prefix = (next..n - 1).take_while(|p| ready[*p]).count();
            if prefix == 0 {
                break;
            }
            let remaining: Vec<usize> = (next..next + prefix).collect();
            let take = next_run(&jobs, &remaining, e, budget);
            if take == prefix {
                // Room for more: wait for the next proof.
                break;
            }
            let chunk = Chunk::of(&jobs, &remaining[..take]);
            if !chunk.consumed.iter().all(|c| ready[*c]) {
                // Outputs verified before a restart: restated once their
                // proofs come back from the broker.
                break;
            }
            match send_chunk(l1, &jobs, &chunk, &root, budget).await {
                Ok(Sent::Landed { gas, block, bytes }) => {
                    done.add(gas, bytes);
                    tracing::info!(
                        EPOCH = e,
                        "epoch {e}: chunk of {} proofs (positions {}..={}) verified on L1 while the rest is proven, in block {block}: {gas} gas, {bytes} bytes",
                        chunk.proofs.len(),
                        chunk.proofs[0],
                        chunk.proofs[chunk.proofs.len() - 1]
                    );
                    next += take;
                }
                Ok(Sent::Over(_)) => {
                    tracing::debug!(
                        "epoch {e}: an early chunk is over the budget; left to the end"
                    );
                    return done;
                }
                Err(err) => {
                    tracing::warn!(
                        EPOCH = e,
                        "epoch {e}: sending a chunk early: {err}; the rest goes when the epoch is proven"
                    );
                    return done;
                }
            }
        }
    }
    done
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

#[cfg(test)]
mod tests {
    use super::*;
    use aztec_zk::{CircuitId, Felt};

    fn job(circuit: CircuitId, children: &[usize], inputs: u64) -> ProvenJob {
        ProvenJob {
            circuit,
            children: children.to_vec(),
            public_inputs: (1..=inputs).map(Felt::from_u64).collect(),
            proof: [[7; 32]; 8],
        }
    }

    /// Two base rollups merged, a parity, and a root over both.
    fn tree() -> Vec<ProvenJob> {
        vec![
            job(CircuitId::BaseRollup, &[], 4),
            job(CircuitId::BaseRollup, &[], 4),
            job(CircuitId::MergeRollup, &[0, 1], 9),
            job(CircuitId::BaseParity, &[], 2),
            job(CircuitId::RootRollup, &[2, 3], 16),
        ]
    }

    #[test]
    fn a_chunk_consumes_the_children_before_it_and_records_what_it_leaves() {
        let jobs = tree();
        let first = Chunk::of(&jobs, &[0, 1]);
        assert_eq!((first.consumed.clone(), first.recorded), (vec![], 2));
        assert!(!first.is_final(&jobs));
        let last = Chunk::of(&jobs, &[2, 3, 4]);
        assert_eq!(last.consumed, vec![0, 1]);
        assert_eq!(last.recorded, 1, "only the root, which nothing consumes");
        assert!(last.is_final(&jobs));
        let whole = Chunk::of(&jobs, &[0, 1, 2, 3, 4]);
        assert_eq!((whole.consumed.len(), whole.recorded), (0, 1));
    }

    #[test]
    fn runs_are_as_long_as_the_budget_lets_them_be() {
        let jobs = tree();
        let all: Vec<usize> = (0..jobs.len()).collect();
        let roomy = TxBudget::default();
        assert_eq!(next_run(&jobs, &all, 3, &roomy), jobs.len());
        // A budget that holds one proof of a kind at a time.
        let one = model_gas(
            &jobs,
            &Chunk::of(&jobs, &[0]),
            &Chunk::of(&jobs, &[0]).calldata(&jobs, 3),
        );
        let tight = TxBudget {
            gas: one + 1,
            ..roomy
        };
        assert_eq!(next_run(&jobs, &all, 3, &tight), 1);
        // Never less than one, even when one is over.
        let none = TxBudget { gas: 1, ..roomy };
        assert_eq!(next_run(&jobs, &all, 3, &none), 1);
        // The model grows with the chunk, and calldata counts.
        let two = Chunk::of(&jobs, &[0, 1]);
        assert!(model_gas(&jobs, &two, &two.calldata(&jobs, 3)) > one);
        let small_calldata = TxBudget {
            calldata_bytes: Chunk::of(&jobs, &[0, 1]).calldata(&jobs, 3).len() + 6 * 32,
            ..roomy
        };
        assert_eq!(next_run(&jobs, &all, 3, &small_calldata), 2);
    }
}

//! Proving ahead of the claim (`PROVER_NODE_PROVE_AHEAD`): while an epoch is
//! still running, each block's own jobs (base rollups and their merges, the
//! parities, the block root) are enqueued as soon as the block is on L1.
//! They depend only on the chain before the block and on the block itself,
//! so they are the very jobs (same ids: digests of the inputs) the epoch's
//! full plan enqueues once it is claimed, which then finds them proven or
//! being proven and re-attaches: at the claim only the top of the tree is
//! left. If the epoch goes to another prover, or to nobody, the work is
//! dropped and counted.

use std::collections::{BTreeMap, BTreeSet};

use aztec_prover_l1::chain::ProposedBlock;
use aztec_prover_protocol::uri::ProofUri;
use aztec_prover_protocol::{EnqueueRequest, JobId};
use aztec_prover_rollup::plan::BlockSpec;
use aztec_zk::CircuitId;
use aztec_zk::wire::{encode_inputs, job_type};

use crate::broker::JobBroker;
use crate::epoch;
use crate::error::NodeError;
use crate::pipeline::Pipeline;

/// Work enqueued before its epoch was claimed.
#[derive(Debug, Default)]
pub struct Ahead {
    /// The newest block planned ahead.
    tip: u64,
    /// Per epoch, the jobs enqueued ahead.
    jobs: BTreeMap<u64, BTreeSet<JobId>>,
    /// Jobs dropped so far: their epoch was not ours to prove.
    dropped: usize,
    /// Blocks' txs, fetched once.
    specs: BTreeMap<u64, BlockSpec>,
}

/// Whether `c` is a job of one block alone (not of the epoch's top).
fn of_one_block(c: CircuitId) -> bool {
    !matches!(c, CircuitId::BlockMerge | CircuitId::RootRollup)
}

impl Ahead {
    /// Jobs dropped so far.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// `epoch` is claimed with our quote: its work ahead is used. Earlier
    /// epochs' work is dropped. Returns how many jobs were proven ahead.
    pub fn claimed(&mut self, epoch: u64) -> usize {
        self.drop_before(epoch);
        self.jobs.remove(&epoch).map_or(0, |s| s.len())
    }

    /// `epoch` went to another prover: its work is dropped. Returns how many jobs.
    pub fn not_ours(&mut self, epoch: u64) -> usize {
        self.drop_before(epoch);
        let n = self.jobs.remove(&epoch).map_or(0, |s| s.len());
        if n > 0 {
            tracing::info!(
                EPOCH = epoch,
                "epoch {epoch} went to another prover: {n} jobs proven ahead are dropped"
            );
        }
        self.dropped += n;
        n
    }

    fn drop_before(&mut self, epoch: u64) {
        let later = self.jobs.split_off(&epoch);
        for (e, s) in std::mem::replace(&mut self.jobs, later) {
            if !s.is_empty() {
                tracing::info!(
                    EPOCH = e,
                    "epoch {e} was not claimed with our quote: {} jobs proven ahead are dropped",
                    s.len()
                );
            }
            self.dropped += s.len();
        }
    }
}

impl<B: JobBroker> Pipeline<B> {
    /// Enqueues the jobs of the newest epoch's blocks that appeared on L1
    /// since the last call; returns how many. Does nothing while the kept
    /// world state is past the epoch's start.
    pub async fn prove_ahead(&mut self) -> Result<usize, NodeError> {
        self.sync_blocks().await?;
        let Some(tip) = self.newest_block() else {
            return Ok(0);
        };
        if tip.number <= self.ahead.tip {
            return Ok(0);
        }
        let e = self.config.epoch_of(tip.slot);
        let mut first = tip.number;
        while first > 1 {
            match self.known_block(first - 1) {
                Some(b) if self.config.epoch_of(b.slot) == e => first -= 1,
                _ => break,
            }
        }
        let kept = self.world_block();
        if kept >= first {
            return Ok(0);
        }
        for n in kept + 1..=tip.number {
            if !self.ahead.specs.contains_key(&n) {
                let b = self.proposed(n)?;
                let spec = self.txs.block_spec(&b).await?;
                self.ahead.specs.insert(n, spec);
            }
        }
        self.ahead.specs = self.ahead.specs.split_off(&(kept + 1));
        let blocks: Vec<ProposedBlock> = (kept + 1..=tip.number)
            .map(|n| self.proposed(n))
            .collect::<Result<_, _>>()?;
        let plan = {
            let base = self.world_snapshot()?;
            let mut fork = base.fork();
            // The blocks before the epoch, not kept yet (an epoch being
            // proven, or proven by others), then the epoch so far.
            let before = (first - kept - 1) as usize;
            for b in &blocks[..before] {
                let spec = &self.ahead.specs[&b.number];
                epoch::replay(&mut fork, self.config.epoch_of(b.slot), spec, b)?;
            }
            let ours: Vec<&ProposedBlock> = blocks[before..].iter().collect();
            let specs: Vec<BlockSpec> = ours
                .iter()
                .map(|b| self.ahead.specs[&b.number].clone())
                .collect();
            epoch::plan(&mut fork, e, self.l1.account, &specs, &ours)?
        };
        let mut enqueued = 0;
        for j in plan.jobs.iter().filter(|j| of_one_block(j.circuit())) {
            let bytes = encode_inputs(&j.inputs);
            let t = job_type(j.circuit());
            let id = JobId::for_inputs(e, t, &bytes);
            if self.ahead.jobs.get(&e).is_some_and(|s| s.contains(&id)) {
                continue;
            }
            self.broker
                .enqueue(EnqueueRequest {
                    id: Some(id.clone()),
                    job_type: t,
                    epoch_number: e,
                    inputs_uri: ProofUri::inline(&bytes),
                })
                .await
                .map_err(|err| NodeError::broker(Some(&id), format!("enqueueing ahead: {err}")))?;
            self.ahead.jobs.entry(e).or_default().insert(id);
            enqueued += 1;
        }
        self.ahead.tip = tip.number;
        if enqueued > 0 {
            tracing::info!(
                EPOCH = e,
                "epoch {e}: proving ahead of the claim: {enqueued} jobs of blocks {first}..={} enqueued",
                tip.number
            );
        }
        Ok(enqueued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> BTreeSet<JobId> {
        (0..n)
            .map(|i| JobId::for_inputs(1, aztec_prover_protocol::JobType::BaseRollup, &[i]))
            .collect()
    }

    #[test]
    fn work_ahead_is_used_when_ours_and_counted_as_dropped_when_not() {
        let mut a = Ahead::default();
        a.jobs.insert(3, ids(4));
        a.jobs.insert(4, ids(5));
        a.jobs.insert(5, ids(2));
        // Epoch 4 is ours: epoch 3's work (nobody claimed it for us) is dropped.
        assert_eq!(a.claimed(4), 5);
        assert_eq!(a.dropped(), 4);
        // Epoch 5 goes to another prover.
        assert_eq!(a.not_ours(5), 2);
        assert_eq!(a.dropped(), 6);
        assert!(a.jobs.is_empty());
        assert_eq!(a.claimed(6), 0);
    }
}

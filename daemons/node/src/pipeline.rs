//! The proving job of a claimed epoch, end to end: blocks and messages from
//! L1, txs from peers or the remote node ([`crate::txs`]), re-execution against the
//! world state (kept in LMDB, [`crate::world_state`]; [`crate::epoch`]), the
//! job tree proven through the broker ([`crate::orchestrator`]), and the
//! epoch proof published to L1 ([`crate::publisher`]). The epoch is planned on a fork of
//! the world state; its changes are kept once L1 has accepted the proof.
//! L1 that cannot be reached is waited for, up to the epoch's timeout.

use std::time::{Duration, Instant};

use aztec_prover_l1::chain::{ProposedBlock, RollupConfig};
use aztec_prover_l1::{L1, felt_word};
use aztec_prover_rollup::plan::{BlockSpec, EpochPlan};
use aztec_prover_rollup::world::store::Changes;
use aztec_zk::RollupParams;
use jsonrpsee::http_client::HttpClient;

use crate::archiver::Archiver;
use crate::broker::JobBroker;
use crate::error::NodeError;
use crate::orchestrator::{self, Checking, Progress};
use crate::retry::wait_for_l1;
use crate::world_state::WorldState;
use crate::{epoch, publisher};

/// What proving an epoch took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochReport {
    /// The epoch.
    pub epoch: u64,
    /// Its blocks.
    pub blocks: (u64, u64),
    /// Its txs.
    pub txs: usize,
    /// Proofs verified on L1 in one batch.
    pub proofs: usize,
    /// Gas of the submission (all its transactions).
    pub gas: u64,
    /// The submission's transactions, gas and calldata.
    pub l1: crate::publisher::Publication,
    /// Wall time from claim to L1 acceptance.
    pub took: Duration,
    /// Jobs of the epoch enqueued ahead of its claim.
    pub ahead: usize,
}

/// The node's proving side.
pub struct Pipeline<B: JobBroker = HttpClient> {
    /// L1, as the publisher.
    pub l1: L1,
    /// Tx objects.
    pub txs: crate::txs::TxSource,
    /// The broker.
    pub broker: B,
    /// How results are checked.
    pub checking: Checking,
    /// The rollup's timing.
    pub config: RollupConfig,
    /// Longest time an epoch's jobs may take.
    pub timeout: Duration,
    archiver: Archiver,
    world: WorldState,
    budget: crate::publisher::TxBudget,
    /// Work enqueued before its epoch was claimed.
    pub ahead: crate::ahead::Ahead,
}

/// Re-executes block `b` on a fork of the kept world state and keeps it.
fn keep_block(
    world: &mut WorldState,
    epoch: u64,
    spec: &BlockSpec,
    b: &ProposedBlock,
) -> Result<(), NodeError> {
    let changes = {
        let base = world.snapshot()?;
        let mut fork = base.fork();
        epoch::replay(&mut fork, epoch, spec, b)?;
        fork.into_changes()
    };
    Ok(world.commit(&changes, b.number)?)
}

/// Plans an epoch on a fork of the kept world state: the plan, and the
/// changes to keep once the epoch is proven.
fn plan_on_fork(
    world: &WorldState,
    e: u64,
    prover: alloy::primitives::Address,
    specs: &[BlockSpec],
    blocks: &[&ProposedBlock],
) -> Result<(EpochPlan, Changes), NodeError> {
    let base = world.snapshot()?;
    let mut fork = base.fork();
    let plan = epoch::plan(&mut fork, e, prover, specs, blocks)?;
    Ok((plan, fork.into_changes()))
}

impl<B: JobBroker> Pipeline<B> {
    /// A pipeline over the world state kept in `world`.
    pub fn new(
        l1: L1,
        txs: impl Into<crate::txs::TxSource>,
        broker: B,
        world: WorldState,
        checking: Checking,
        config: RollupConfig,
        timeout: Duration,
    ) -> Pipeline<B> {
        Pipeline {
            l1,
            txs: txs.into(),
            broker,
            checking,
            config,
            timeout,
            archiver: Archiver::default(),
            world,
            budget: crate::publisher::TxBudget::default(),
            ahead: crate::ahead::Ahead::default(),
        }
    }

    /// What each L1 transaction of an epoch may use.
    pub fn with_budget(mut self, budget: crate::publisher::TxBudget) -> Pipeline<B> {
        self.budget = budget;
        self
    }

    /// Reads L1's new proposals, waiting for an L1 that cannot be reached
    /// until `deadline`.
    async fn sync_archiver(&mut self, e: u64, deadline: Instant) -> Result<(), NodeError> {
        let mut pause = Duration::from_millis(500);
        loop {
            match self.archiver.sync(&self.l1).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    let what = format!("epoch {e}: reading the rollup's blocks");
                    if !wait_for_l1(e, &what, &err, &mut pause, deadline).await {
                        return Err(NodeError::l1(what, err));
                    }
                }
            }
        }
    }

    /// Makes sure the kept world state is this rollup's and still L1's
    /// chain up to its block, and at most at block `first - 1`; otherwise
    /// it is started again from genesis.
    fn check_world(&mut self, first: u64) -> Result<(), NodeError> {
        let rollup = self.l1.deployment.rollup.to_string();
        self.world.bind(self.l1.chain_id, &rollup)?;
        let at = self.world.block();
        if at == 0 {
            return Ok(());
        }
        let ours = felt_word(&self.world.snapshot()?.block_state().archive_root);
        let why = match self.archiver.block(at) {
            None => Some(format!("L1 has no block {at}: L1 was reset")),
            Some(b) if b.archive != ours => Some(format!(
                "its archive {ours} is not L1's {} for block {at}: L1 was reset",
                b.archive
            )),
            Some(_) if at >= first => Some(format!(
                "it is already past block {}, where the epoch to prove starts",
                first - 1
            )),
            Some(_) => None,
        };
        match why {
            Some(why) => Ok(self.world.reset(&why)?),
            None => Ok(()),
        }
    }

    /// Brings the kept world state to block `first - 1`, re-executing the
    /// blocks it lacks (proven on L1, by this node before or by others).
    async fn catch_up(&mut self, first: u64) -> Result<(), NodeError> {
        let from = self.world.block() + 1;
        if from < first {
            tracing::info!(
                "world state at block {}: re-executing blocks {from}..={} from L1",
                from - 1,
                first - 1
            );
        }
        while self.world.block() + 1 < first {
            let n = self.world.block() + 1;
            let b = self.block(n)?;
            let spec = self.txs.block_spec(&b).await?;
            keep_block(&mut self.world, self.config.epoch_of(b.slot), &spec, &b)?;
            if n.is_multiple_of(100) {
                tracing::info!("world state: re-executed up to block {n} of {}", first - 1);
            } else {
                tracing::debug!("world state: block {n} re-executed and kept");
            }
        }
        Ok(())
    }

    /// Proves blocks `first..=last` of `e` and publishes the proof.
    pub async fn prove(
        &mut self,
        e: u64,
        first: u64,
        last: u64,
        progress: impl FnMut(&Progress),
    ) -> Result<EpochReport, NodeError> {
        let started = Instant::now();
        let ahead = self.ahead.claimed(e);
        if ahead > 0 {
            tracing::info!(
                EPOCH = e,
                "epoch {e}: {ahead} jobs were enqueued ahead of the claim"
            );
        }
        self.sync_archiver(e, started + self.timeout).await?;
        self.check_world(first)?;
        self.catch_up(first).await?;
        let ours: Vec<ProposedBlock> = (first..=last)
            .map(|n| self.block(n))
            .collect::<Result<_, _>>()?;
        let mut specs = Vec::with_capacity(ours.len());
        for b in &ours {
            specs.push(self.txs.block_spec(b).await?);
        }
        let txs = specs.iter().map(|s| s.txs.len()).sum();
        let refs: Vec<&ProposedBlock> = ours.iter().collect();
        let (plan, changes) = plan_on_fork(&self.world, e, self.l1.account, &specs, &refs)?;
        tracing::info!(
            EPOCH = e,
            "epoch {e}: blocks {first}..={last}, {txs} txs, {} jobs",
            plan.jobs.len()
        );
        // Chunks of the tree go to L1 while the rest is proven.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let proving = orchestrator::prove_epoch_with(
            &self.broker,
            e,
            &plan,
            &self.checking,
            self.timeout,
            progress,
            move |i, j| {
                let _ = tx.send((i, j.clone()));
            },
        );
        let early = publisher::publish_early(&self.l1, &plan, e, rx, &self.budget);
        let (jobs, early) = tokio::join!(proving, early);
        let jobs = jobs?;
        let deadline = Instant::now() + self.timeout;
        let l1 = publisher::publish(
            &self.l1,
            &plan,
            e,
            first,
            last,
            &jobs,
            deadline,
            &self.budget,
            early,
        )
        .await?;
        // L1 took the proof: the epoch is done whatever happens to our copy
        // of the state. One that cannot be written (a full disk) stays at
        // its block and the next epoch re-executes the blocks after it.
        match self.world.commit(&changes, last) {
            Ok(()) => tracing::info!(
                EPOCH = e,
                "world state at block {last}, kept in {}",
                self.world.dir().display()
            ),
            Err(err) => tracing::error!(
                EPOCH = e,
                "epoch {e} is proven on L1, but the world state could not be kept at block {last}: {err}; it stays at block {} and the next epoch re-executes the blocks after it",
                self.world.block()
            ),
        }
        Ok(EpochReport {
            epoch: e,
            blocks: (first, last),
            txs,
            proofs: jobs.len(),
            gas: l1.gas,
            l1,
            took: started.elapsed(),
            ahead,
        })
    }

    /// Block `n` as L1 proposed it.
    /// Reads L1's new proposals (once; an L1 that cannot be reached is an error).
    pub(crate) async fn sync_blocks(&mut self) -> Result<(), NodeError> {
        self.archiver
            .sync(&self.l1)
            .await
            .map_err(|e| NodeError::l1("reading the rollup's blocks", e))
    }

    /// The newest block read from L1.
    pub(crate) fn newest_block(&self) -> Option<ProposedBlock> {
        self.archiver.last().cloned()
    }

    /// Block `n`, if read.
    pub(crate) fn known_block(&self, n: u64) -> Option<&ProposedBlock> {
        self.archiver.block(n)
    }

    /// Block `n`, which must have been read.
    pub(crate) fn proposed(&self, n: u64) -> Result<ProposedBlock, NodeError> {
        self.block(n)
    }

    /// The kept world state, from one snapshot.
    pub(crate) fn world_snapshot(
        &self,
    ) -> Result<aztec_prover_rollup::world::World<crate::world_state::Snapshot<'_>>, NodeError>
    {
        Ok(self.world.snapshot()?)
    }

    fn block(&self, n: u64) -> Result<ProposedBlock, NodeError> {
        self.archiver
            .block(n)
            .cloned()
            .ok_or_else(|| NodeError::Chain(format!("block {n} is not on L1")))
    }

    /// The circuit sizes.
    pub fn params(&self) -> &RollupParams {
        self.world.params()
    }

    /// The last block the kept world state is at.
    pub fn world_block(&self) -> u64 {
        self.world.block()
    }
}

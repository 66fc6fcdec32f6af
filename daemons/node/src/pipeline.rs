//! The proving job of a claimed epoch, end to end: blocks and messages from
//! L1, txs from the remote node, re-execution against the world state (kept
//! in LMDB, [`crate::world_state`]), the job tree proven through the broker,
//! and the epoch proof published to L1. The epoch is planned on a fork of
//! the world state; its changes are kept once L1 has accepted the proof.
//! L1 that cannot be reached is waited for, up to the epoch's timeout.

use std::time::{Duration, Instant};

use aztec_prover_l1::chain::{ProposedBlock, RollupConfig};
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_l1::{L1, L1Error, felt_word};
use aztec_zk::RollupParams;
use aztec_zk::plan::{BlockSpec, EpochPlan};
use aztec_zk::world::store::Changes;
use jsonrpsee::http_client::HttpClient;

use crate::archiver::Archiver;
use crate::epoch;
use crate::orchestrator::{self, Checking, Progress};
use crate::world_state::WorldState;

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
    /// Gas of the submission.
    pub gas: u64,
    /// Wall time from claim to L1 acceptance.
    pub took: Duration,
}

/// The node's proving side.
pub struct Pipeline {
    /// L1, as the publisher.
    pub l1: L1,
    /// Tx objects.
    pub remote: RemoteNode,
    /// The broker.
    pub broker: HttpClient,
    /// How results are checked.
    pub checking: Checking,
    /// The rollup's timing.
    pub config: RollupConfig,
    /// Longest time an epoch's jobs may take.
    pub timeout: Duration,
    archiver: Archiver,
    world: WorldState,
}

/// Longest pause between tries while L1 cannot be reached.
const MAX_L1_PAUSE: Duration = Duration::from_secs(10);

/// Waits out an L1 that cannot be reached: when `err` is worth trying
/// again and `pause` ends before `deadline`, says so, sleeps, doubles the
/// pause (up to [`MAX_L1_PAUSE`]) and returns true.
async fn wait_for_l1(
    e: u64,
    what: &str,
    err: &L1Error,
    pause: &mut Duration,
    deadline: Instant,
) -> bool {
    if !err.is_retryable() || Instant::now() + *pause >= deadline {
        return false;
    }
    tracing::warn!(
        EPOCH = e,
        "{what}: {err}; trying again in {} ms",
        pause.as_millis()
    );
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(MAX_L1_PAUSE);
    true
}

/// Why a world state error stops an epoch.
fn ws(e: crate::world_state::WorldStateError) -> String {
    e.to_string()
}

/// Re-executes block `b` on a fork of the kept world state and keeps it.
fn keep_block(
    world: &mut WorldState,
    epoch: u64,
    spec: &BlockSpec,
    b: &ProposedBlock,
) -> Result<(), String> {
    let changes = {
        let base = world.snapshot().map_err(ws)?;
        let mut fork = base.fork();
        epoch::replay(&mut fork, epoch, spec, b)?;
        fork.into_changes()
    };
    world.commit(&changes, b.number).map_err(ws)
}

/// Plans an epoch on a fork of the kept world state: the plan, and the
/// changes to keep once the epoch is proven.
fn plan_on_fork(
    world: &WorldState,
    e: u64,
    prover: alloy::primitives::Address,
    specs: &[BlockSpec],
    blocks: &[&ProposedBlock],
) -> Result<(EpochPlan, Changes), String> {
    let base = world.snapshot().map_err(ws)?;
    let mut fork = base.fork();
    let plan = epoch::plan(&mut fork, e, prover, specs, blocks)?;
    Ok((plan, fork.into_changes()))
}

impl Pipeline {
    /// A pipeline over the world state kept in `world`.
    pub fn new(
        l1: L1,
        remote: RemoteNode,
        broker: HttpClient,
        world: WorldState,
        checking: Checking,
        config: RollupConfig,
        timeout: Duration,
    ) -> Pipeline {
        Pipeline {
            l1,
            remote,
            broker,
            checking,
            config,
            timeout,
            archiver: Archiver::default(),
            world,
        }
    }

    /// Reads L1's new proposals, waiting for an L1 that cannot be reached
    /// until `deadline`.
    async fn sync_archiver(&mut self, e: u64, deadline: Instant) -> Result<(), String> {
        let mut pause = Duration::from_millis(500);
        loop {
            match self.archiver.sync(&self.l1).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    let what = format!("epoch {e}: reading the rollup's blocks");
                    if !wait_for_l1(e, &what, &err, &mut pause, deadline).await {
                        return Err(err.to_string());
                    }
                }
            }
        }
    }

    /// Makes sure the kept world state is this rollup's and still L1's
    /// chain up to its block, and at most at block `first - 1`; otherwise
    /// it is started again from genesis.
    fn check_world(&mut self, first: u64) -> Result<(), String> {
        let rollup = self.l1.deployment.rollup.to_string();
        self.world.bind(self.l1.chain_id, &rollup).map_err(ws)?;
        let at = self.world.block();
        if at == 0 {
            return Ok(());
        }
        let ours = felt_word(
            &self
                .world
                .snapshot()
                .map_err(ws)?
                .block_state()
                .archive_root,
        );
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
            Some(why) => self.world.reset(&why).map_err(ws),
            None => Ok(()),
        }
    }

    /// Brings the kept world state to block `first - 1`, re-executing the
    /// blocks it lacks (proven on L1, by this node before or by others).
    async fn catch_up(&mut self, first: u64) -> Result<(), String> {
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
            let b = self
                .archiver
                .block(n)
                .cloned()
                .ok_or_else(|| format!("block {n} is not on L1"))?;
            let spec = epoch::block_spec(&self.remote, &b).await?;
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
    ) -> Result<EpochReport, String> {
        let started = Instant::now();
        self.sync_archiver(e, started + self.timeout).await?;
        self.check_world(first)?;
        self.catch_up(first).await?;
        let ours: Vec<ProposedBlock> = (first..=last)
            .map(|n| {
                self.archiver
                    .block(n)
                    .cloned()
                    .ok_or_else(|| format!("block {n} is not on L1"))
            })
            .collect::<Result<_, _>>()?;
        let mut specs = Vec::with_capacity(ours.len());
        for b in &ours {
            specs.push(epoch::block_spec(&self.remote, b).await?);
        }
        let txs = specs.iter().map(|s| s.txs.len()).sum();
        let refs: Vec<&ProposedBlock> = ours.iter().collect();
        let (plan, changes) = plan_on_fork(&self.world, e, self.l1.account, &specs, &refs)?;
        tracing::info!(
            EPOCH = e,
            "epoch {e}: blocks {first}..={last}, {txs} txs, {} jobs",
            plan.jobs.len()
        );
        let jobs = orchestrator::prove_epoch(
            &self.broker,
            e,
            &plan,
            &self.checking,
            self.timeout,
            progress,
        )
        .await?;
        let gas = self.publish(&plan, e, first, last, &jobs).await?;
        self.world.commit(&changes, last).map_err(ws)?;
        tracing::info!(
            EPOCH = e,
            "world state at block {last}, kept in {}",
            self.world.dir().display()
        );
        Ok(EpochReport {
            epoch: e,
            blocks: (first, last),
            txs,
            proofs: jobs.len(),
            gas,
            took: started.elapsed(),
        })
    }

    /// Publishes the epoch proof; returns the gas it took (0 when an
    /// earlier attempt is found to have landed). While L1 cannot be reached
    /// it tries again, with a growing pause, for up to the epoch timeout;
    /// before each new attempt it asks L1 whether the epoch's last block is
    /// already proven, so a submission whose answer was lost is never sent
    /// twice. A revert (the proof window closed, a bad proof) ends it.
    async fn publish(
        &self,
        plan: &aztec_zk::plan::EpochPlan,
        e: u64,
        first: u64,
        last: u64,
        jobs: &[epoch::ProvenJob],
    ) -> Result<u64, String> {
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_secs(1);
        for attempt in 1u32.. {
            if attempt > 1 && self.landed(e, last).await {
                return Ok(0);
            }
            let sent = async {
                let fees = self.l1.fees_between(first, last).await?;
                epoch::submit(&self.l1, epoch::root_args(plan, e, first, last, fees), jobs).await
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
                    if attempt > 1 && self.landed(e, last).await {
                        return Ok(0);
                    }
                    return Err(err.to_string());
                }
            }
        }
        Err(format!("epoch {e}: publishing gave up"))
    }

    /// Whether block `last` of epoch `e` is proven on L1 already (an
    /// earlier submission landed).
    async fn landed(&self, e: u64, last: u64) -> bool {
        let proven = matches!(self.l1.tips().await, Ok((_, p)) if p >= last);
        if proven {
            tracing::info!(
                EPOCH = e,
                "epoch {e}: block {last} is proven on L1: an earlier submission landed"
            );
        }
        proven
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

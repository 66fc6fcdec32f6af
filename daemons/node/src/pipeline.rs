//! The proving job of a claimed epoch, end to end: blocks and messages from
//! L1, txs from the remote node, re-execution against the world state, the
//! job tree proven through the broker, and the epoch proof published to L1.
//!
//! Not yet: the world state lives in memory (it is rebuilt from L1 and the
//! remote node at start), not in LMDB.

use std::time::{Duration, Instant};

use aztec_prover_l1::L1;
use aztec_prover_l1::chain::RollupConfig;
use aztec_prover_l1::remote::RemoteNode;
use aztec_zk::RollupParams;
use aztec_zk::world::World;
use jsonrpsee::http_client::HttpClient;

use crate::archiver::Archiver;
use crate::epoch;
use crate::orchestrator::{self, Checking, Progress};

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
    /// Circuit sizes.
    pub params: RollupParams,
    /// How results are checked.
    pub checking: Checking,
    /// The rollup's timing.
    pub config: RollupConfig,
    /// Longest time an epoch's jobs may take.
    pub timeout: Duration,
    archiver: Archiver,
    world: World,
    world_block: u64,
}

impl Pipeline {
    /// A pipeline whose world starts at genesis.
    pub fn new(
        l1: L1,
        remote: RemoteNode,
        broker: HttpClient,
        params: RollupParams,
        checking: Checking,
        config: RollupConfig,
        timeout: Duration,
    ) -> Pipeline {
        let world = World::genesis(params.clone());
        Pipeline {
            l1,
            remote,
            broker,
            params,
            checking,
            config,
            timeout,
            archiver: Archiver::default(),
            world,
            world_block: 0,
        }
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
        self.archiver
            .sync(&self.l1)
            .await
            .map_err(|x| x.to_string())?;
        let blocks = &self.archiver;
        let get = |n: u64| {
            blocks
                .block(n)
                .ok_or_else(|| format!("block {n} is not on L1"))
        };
        while self.world_block + 1 < first {
            let b = get(self.world_block + 1)?;
            let spec = epoch::block_spec(&self.remote, b).await?;
            epoch::replay(&mut self.world, self.config.epoch_of(b.slot), &spec, b)?;
            self.world_block += 1;
        }
        let ours = (first..=last).map(get).collect::<Result<Vec<_>, _>>()?;
        let mut specs = Vec::with_capacity(ours.len());
        for b in &ours {
            specs.push(epoch::block_spec(&self.remote, b).await?);
        }
        let txs = specs.iter().map(|s| s.txs.len()).sum();
        let mut world = self.world.clone();
        let plan = epoch::plan(&mut world, e, self.l1.account, &specs, &ours)?;
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
        self.world = world;
        self.world_block = last;
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
            if attempt > 1
                && let Ok((_, proven)) = self.l1.tips().await
                && proven >= last
            {
                tracing::info!(
                    EPOCH = e,
                    "epoch {e}: block {last} is proven on L1: an earlier submission landed"
                );
                return Ok(0);
            }
            let sent = async {
                let fees = self.l1.fees_between(first, last).await?;
                epoch::submit(&self.l1, epoch::root_args(plan, e, first, last, fees), jobs).await
            }
            .await;
            match sent {
                Ok(receipt) => return Ok(receipt.gas_used),
                Err(err) if err.is_retryable() && Instant::now() + pause < deadline => {
                    tracing::warn!(
                        EPOCH = e,
                        "publishing epoch {e} (attempt {attempt}): {err}; trying again in {} s",
                        pause.as_secs()
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
                Err(err) => return Err(err.to_string()),
            }
        }
        Err(format!("epoch {e}: publishing gave up"))
    }

    /// The circuit sizes.
    pub fn params(&self) -> &RollupParams {
        &self.params
    }
}

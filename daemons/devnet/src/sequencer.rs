//! The devnet's sequencer: every L2 slot it builds a block of synthetic but
//! valid txs on its copy of the world state, proposes it to the rollup, and
//! keeps the tx objects for provers to fetch. At the start of each epoch it
//! claims the best quote it was sent for the epoch before. When the rollup
//! prunes, it rolls its world back to the proven tip.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alloy::primitives::{B256, U256};
use aztec_prover_l1::bindings::Rollup;
use aztec_prover_l1::chain::{L1, L1Error, RollupConfig};
use aztec_prover_l1::felt_word;
use aztec_prover_l1::quote::SignedEpochProofQuote;
use aztec_prover_rollup::plan::{BlockSpec, plan_epoch};
use aztec_prover_rollup::world::{World, synthetic_tx};
use aztec_zk::circuits::base::Tx;
use aztec_zk::{Felt, RollupParams};
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

/// What the sequencer shares with the RPC server.
#[derive(Default)]
pub struct Shared {
    txs: Mutex<HashMap<B256, Tx>>,
    quotes: Mutex<BTreeMap<u64, Vec<SignedEpochProofQuote>>>,
    stats: Mutex<Stats>,
}

/// Counters, for progress output and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Blocks proposed (including ones pruned later).
    pub blocks_proposed: u64,
    /// Txs proposed.
    pub txs_proposed: u64,
    /// Quotes received (over HTTP and by gossip).
    pub quotes_received: u64,
    /// Of those, by gossip.
    pub quotes_gossiped: u64,
    /// Claims made.
    pub claims: u64,
    /// Prunes seen.
    pub prunes: u64,
}

impl Shared {
    /// A tx by hash.
    pub fn tx(&self, h: &B256) -> Option<Tx> {
        self.txs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(h)
            .cloned()
    }

    /// Keeps a quote for its epoch (one per prover: a newer quote replaces an older one).
    pub fn add_quote(&self, q: SignedEpochProofQuote) {
        let mut m = self.quotes.lock().unwrap_or_else(PoisonError::into_inner);
        let v = m.entry(q.quote.epoch_number).or_default();
        v.retain(|o| o.quote.prover != q.quote.prover);
        v.push(q);
        self.stats_mut(|s| s.quotes_received += 1);
    }

    /// Keeps a quote that came by gossip (already checked by the quote book).
    pub fn add_gossiped_quote(&self, q: SignedEpochProofQuote) {
        self.stats_mut(|s| s.quotes_gossiped += 1);
        self.add_quote(q);
    }

    /// The quotes held for `epoch`.
    pub fn quotes(&self, epoch: u64) -> Vec<SignedEpochProofQuote> {
        self.quotes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&epoch)
            .cloned()
            .unwrap_or_default()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats_mut(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn drop_quote(&self, epoch: u64, prover: alloy::primitives::Address) {
        if let Some(v) = self
            .quotes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&epoch)
        {
            v.retain(|q| q.quote.prover != prover);
        }
    }
}

/// How blocks are made.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// Tree sizes and per-block counts.
    pub params: RollupParams,
    /// Txs per block: at least one, at most the block's capacity.
    pub max_txs_per_block: usize,
    /// Every block as full as `max_txs_per_block` allows (else a random count).
    pub full_blocks: bool,
    /// Seed of the synthetic traffic.
    pub seed: u64,
    /// Whether to claim quotes (a test may want to claim itself).
    pub claim_quotes: bool,
    /// Slots of the claim phase to let pass, collecting quotes, before claiming.
    pub claim_delay_slots: u64,
    /// The rules gossiped quotes are checked by, whose view of L1 the
    /// sequencer refreshes every step (with P2P).
    pub quote_book: Option<Arc<aztec_prover_l1::quote_book::QuoteBook>>,
}

/// Runs until `stop` turns true.
pub async fn run(
    l1: L1,
    cfg: SequencerConfig,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seq = match Sequencer::new(l1, cfg, shared).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("sequencer cannot start: {e}");
            return;
        }
    };
    let tick = Duration::from_millis((seq.config.slot_duration * 1000 / 8).clamp(100, 1000));
    loop {
        if let Err(e) = seq.step().await {
            if e.is_retryable() {
                tracing::warn!("sequencer: {e}; retrying");
            } else {
                tracing::warn!("sequencer: {e}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
    }
}

struct Sequencer {
    l1: L1,
    cfg: SequencerConfig,
    config: RollupConfig,
    shared: Arc<Shared>,
    /// World state after each pending block (0: genesis).
    worlds: BTreeMap<u64, World>,
    last_slot: Option<u64>,
    rng: rand::rngs::StdRng,
}

impl Sequencer {
    async fn new(l1: L1, cfg: SequencerConfig, shared: Arc<Shared>) -> Result<Sequencer, L1Error> {
        let config = l1.config().await?;
        let mut worlds = BTreeMap::new();
        worlds.insert(0, World::genesis(cfg.params.clone()));
        let rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        Ok(Sequencer {
            l1,
            cfg,
            config,
            shared,
            worlds,
            last_slot: None,
            rng,
        })
    }

    async fn step(&mut self) -> Result<(), L1Error> {
        let (pending, _) = self.l1.tips().await?;
        let tip = self.worlds.keys().next_back().copied().unwrap_or(0);
        if pending < tip {
            tracing::warn!(
                "the rollup pruned blocks {}..={tip}: rolling back to block {pending}",
                pending + 1
            );
            self.worlds.retain(|n, _| *n <= pending);
            self.shared.stats_mut(|s| s.prunes += 1);
        }
        // The next L1 block (interval mining) is where a proposal lands.
        let slot = self.config.slot_at(self.l1.l1_timestamp().await? + 1);
        if self.last_slot.is_none_or(|s| slot > s) {
            self.propose(slot).await?;
        }
        if let Some(book) = &self.cfg.quote_book {
            book.refresh(&self.l1, &self.config).await?;
        }
        if self.cfg.claim_quotes {
            self.claim(slot).await?;
        }
        Ok(())
    }

    async fn propose(&mut self, slot: u64) -> Result<(), L1Error> {
        let (&number, world) = self
            .worlds
            .iter()
            .next_back()
            .ok_or_else(|| L1Error::Other("no world state".into()))?;
        let mut next = world.clone();
        let capacity = self
            .cfg
            .params
            .txs_per_block()
            .min(self.cfg.max_txs_per_block)
            .max(1);
        let n = if self.cfg.full_blocks {
            capacity
        } else {
            self.rng.gen_range(1..=capacity)
        };
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            let tx = synthetic_tx(&next, &mut self.rng)
                .map_err(|e| L1Error::Other(format!("synthetic tx: {e}")))?;
            next.apply_tx(&tx)
                .map_err(|e| L1Error::Other(format!("synthetic tx: {e}")))?;
            txs.push(tx);
        }
        // apply_tx above only checked the txs; plan from the block's start.
        let mut next = world.clone();
        let messages: Vec<Felt> = (0..self.cfg.params.messages_per_block())
            .map(|_| Felt::from_u64(self.rng.r#gen::<u64>() | 1))
            .collect();
        let spec = BlockSpec {
            txs: txs.clone(),
            messages: messages.clone(),
            slot,
        };
        let epoch = self.config.epoch_of(slot);
        let plan = plan_epoch(&mut next, epoch, Felt::ZERO, &[spec])
            .map_err(|e| L1Error::Other(format!("building block: {e}")))?;
        let header = plan
            .headers
            .first()
            .ok_or_else(|| L1Error::Other("the plan has no header".into()))?;
        let fees: u64 = txs.iter().map(|t| t.fee).sum();
        let hashes: Vec<B256> = txs.iter().map(|t| B256::from(t.hash())).collect();
        let args = Rollup::ProposeArgs {
            slot: U256::from(slot),
            archive: felt_word(&plan.end.archive_root),
            headerHash: felt_word(&Felt(header.hash())),
            effectsHash: felt_word(&header.effects),
            fees: U256::from(fees),
            txHashes: hashes.clone(),
            l1ToL2Messages: messages.iter().map(felt_word).collect(),
        };
        // Txs are served before the proposal lands, so a prover never sees a
        // hash it cannot fetch.
        {
            let mut store = self
                .shared
                .txs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (h, t) in hashes.iter().zip(&txs) {
                store.insert(*h, t.clone());
            }
        }
        match self
            .l1
            .send("propose", self.l1.rollup().propose(args))
            .await
        {
            Ok(_) => {
                let block = number + 1;
                tracing::info!(
                    "proposed block {block} at slot {slot} (epoch {epoch}): {n} txs, fees {fees}"
                );
                self.worlds.insert(block, next);
                self.last_slot = Some(slot);
                self.shared.stats_mut(|s| {
                    s.blocks_proposed += 1;
                    s.txs_proposed += n as u64;
                });
                Ok(())
            }
            Err(L1Error::Reverted { reason, .. })
                if reason.contains("WrongSlot") || reason.contains("SlotAlreadyUsed") =>
            {
                tracing::debug!("slot {slot} missed: {reason}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn claim(&mut self, slot: u64) -> Result<(), L1Error> {
        let Some(e) = self.l1.epoch_to_prove().await? else {
            return Ok(());
        };
        let last_claim_slot = self.config.last_claim_slot(e.epoch);
        if e.epoch >= self.config.epoch_of(slot) || slot > last_claim_slot {
            return Ok(());
        }
        let first_claim_slot = (e.epoch + 1) * self.config.epoch_duration;
        if slot < first_claim_slot + self.cfg.claim_delay_slots && slot < last_claim_slot {
            return Ok(());
        }
        if self
            .l1
            .proof_claim()
            .await?
            .is_some_and(|c| c.epoch == e.epoch)
        {
            return Ok(());
        }
        let mut quotes: Vec<SignedEpochProofQuote> = self
            .shared
            .quotes(e.epoch)
            .into_iter()
            .filter(|q| {
                q.quote.valid_until_slot >= slot
                    && q.quote.epoch_init_block == e.first_block
                    && q.quote.epoch_final_block == e.last_block
            })
            .collect();
        // The cheapest share of fees wins; a bigger bond breaks ties.
        quotes.sort_by(|a, b| {
            a.quote
                .basis_point_fee
                .cmp(&b.quote.basis_point_fee)
                .then(b.quote.bond_amount.cmp(&a.quote.bond_amount))
        });
        for q in quotes {
            match self.l1.claim(&q).await {
                Ok(_) => {
                    tracing::info!(
                        "claimed epoch {} for prover {} ({} bps, bond {})",
                        e.epoch,
                        q.quote.prover,
                        q.quote.basis_point_fee,
                        q.quote.bond_amount
                    );
                    self.shared.stats_mut(|s| s.claims += 1);
                    return Ok(());
                }
                Err(L1Error::Reverted { reason, .. }) => {
                    tracing::warn!(
                        "quote of prover {} for epoch {} refused: {reason}",
                        q.quote.prover,
                        e.epoch
                    );
                    self.shared.drop_quote(e.epoch, q.quote.prover);
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
}

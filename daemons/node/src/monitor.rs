//! The epoch monitor (seed 004): once per poll it reads L1; when the last
//! completed epoch is unproven and unclaimed it makes sure the bond is in
//! the escrow, gets terms from the quote provider, signs a quote and sends
//! it out (gossip, or the coordination node over HTTP); when a claim names this prover it starts
//! the epoch's proving job (announced as [`NodeEvent::ClaimIsOurs`]).

use std::collections::BTreeSet;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use aztec_prover_l1::chain::RollupConfig;
use aztec_prover_l1::quote::EpochProofQuote;
use aztec_prover_l1::{L1, L1Error};
use tokio::sync::{broadcast, watch};

use crate::archiver::Archiver;
use crate::bond::ensure_bond_reporting;
use crate::quotes::{EpochSummary, QuoteOutbox, QuoteProvider, Terms};
use crate::status::StatusBoard;

/// What the monitor needs besides L1.
#[derive(Clone)]
pub struct MonitorConfig {
    /// Signs quotes (the publisher key; `L1`'s account).
    pub signer: PrivateKeySigner,
    /// Fee and bond.
    pub quotes: QuoteProvider,
    /// Where quotes go.
    pub coordination: QuoteOutbox,
    /// `PROVER_MINIMUM_ESCROW_AMOUNT`.
    pub minimum_escrow: U256,
    /// `PROVER_TARGET_ESCROW_AMOUNT`.
    pub target_escrow: U256,
    /// `PROVER_NODE_POLLING_INTERVAL_MS`.
    pub polling_interval: Duration,
}

/// What the monitor did, for the proving pipeline, logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// The escrow was topped up by this much.
    BondToppedUp(U256),
    /// A quote was sent.
    QuoteSent {
        /// For this epoch.
        epoch: u64,
        /// With these terms.
        terms: Terms,
    },
    /// No quote for the epoch, and why.
    NoQuote {
        /// The epoch.
        epoch: u64,
        /// Why.
        reason: String,
    },
    /// Our quote was claimed: prove the epoch.
    ClaimIsOurs {
        /// The epoch.
        epoch: u64,
        /// Its first block.
        first_block: u64,
        /// Its last block.
        last_block: u64,
        /// The slot in which the claim was seen.
        seen_at_slot: u64,
    },
    /// Another prover's quote was claimed.
    ClaimedByOther {
        /// The epoch.
        epoch: u64,
        /// The prover.
        prover: Address,
    },
}

/// The monitor's state.
pub struct Monitor {
    l1: L1,
    cfg: MonitorConfig,
    config: RollupConfig,
    archiver: Archiver,
    quoted: BTreeSet<u64>,
    claims_seen: BTreeSet<(u64, Address)>,
    events: broadcast::Sender<NodeEvent>,
    state: StatusBoard,
    told_paused: Option<u64>,
}

impl Monitor {
    /// Reads the rollup's parameters.
    pub async fn new(l1: L1, cfg: MonitorConfig) -> Result<Monitor, L1Error> {
        if cfg.signer.address() != l1.account {
            return Err(L1Error::Other(
                "the quote signer must be the L1 account".into(),
            ));
        }
        let config = l1.config().await?;
        let (events, _) = broadcast::channel(256);
        Ok(Monitor {
            l1,
            cfg,
            config,
            archiver: Archiver::default(),
            quoted: BTreeSet::new(),
            claims_seen: BTreeSet::new(),
            events,
            state: StatusBoard::new(),
            told_paused: None,
        })
    }

    /// Reports into `state` (the node's API reads it) and follows its
    /// paused flag: while paused, no quotes go out.
    pub fn with_status(mut self, state: StatusBoard) -> Monitor {
        self.state = state;
        self
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The rollup's parameters.
    pub fn rollup_config(&self) -> RollupConfig {
        self.config
    }

    fn emit(&self, e: NodeEvent) {
        let _ = self.events.send(e);
    }

    /// `ensureBond` as at start-up.
    pub async fn ensure_bond(&self) -> Result<(), L1Error> {
        let (added, deposit) =
            ensure_bond_reporting(&self.l1, self.cfg.minimum_escrow, self.cfg.target_escrow)
                .await?;
        if added > U256::ZERO {
            self.emit(NodeEvent::BondToppedUp(added));
        }
        self.state.set_bond(deposit.to_string());
        Ok(())
    }

    /// One look at L1.
    pub async fn step(&mut self) -> Result<(), L1Error> {
        self.archiver.sync(&self.l1).await?;
        let slot = self.config.slot_at(self.l1.l1_timestamp().await?);
        self.state.set_current_epoch(self.config.epoch_of(slot));
        let claim = self.l1.proof_claim().await?;
        let to_prove = self.l1.epoch_to_prove().await?;
        if let Some(c) = claim
            && self.claims_seen.insert((c.epoch, c.prover))
        {
            if c.prover == self.l1.account {
                let (first, last) = match to_prove {
                    Some(e) if e.epoch == c.epoch => (e.first_block, e.last_block),
                    _ => (0, 0),
                };
                tracing::info!(
                    "epoch {} is claimed with our quote ({} bps, bond {}): proving blocks {first}..={last}",
                    c.epoch,
                    c.basis_point_fee,
                    c.bond_amount
                );
                self.emit(NodeEvent::ClaimIsOurs {
                    epoch: c.epoch,
                    first_block: first,
                    last_block: last,
                    seen_at_slot: slot,
                });
            } else {
                tracing::info!("epoch {} was claimed by prover {}", c.epoch, c.prover);
                self.emit(NodeEvent::ClaimedByOther {
                    epoch: c.epoch,
                    prover: c.prover,
                });
            }
        }
        let Some(e) = to_prove else {
            return Ok(());
        };
        let last_claim_slot = self.config.last_claim_slot(e.epoch);
        let completed = e.epoch < self.config.epoch_of(slot);
        let claimed = claim.is_some_and(|c| c.epoch == e.epoch);
        if !completed || claimed || slot > last_claim_slot || self.quoted.contains(&e.epoch) {
            return Ok(());
        }
        if self.state.is_paused() {
            if self.told_paused != Some(e.epoch) {
                tracing::info!("quoting is paused: no quote for epoch {}", e.epoch);
                self.told_paused = Some(e.epoch);
            }
            return Ok(());
        }
        self.quote(e.epoch, e.first_block, e.last_block, last_claim_slot)
            .await
    }

    async fn quote(
        &mut self,
        epoch: u64,
        first: u64,
        last: u64,
        last_claim_slot: u64,
    ) -> Result<(), L1Error> {
        let Some(blocks) = self.archiver.range(first, last) else {
            tracing::debug!("epoch {epoch}: blocks {first}..={last} not read yet");
            return Ok(());
        };
        let tx_count: u64 = blocks.iter().map(|b| b.tx_hashes.len() as u64).sum();
        let total_fees: U256 = blocks.iter().map(|b| b.fees).sum();
        let summary = EpochSummary {
            epoch_number: epoch,
            from_block: first,
            end_block: last,
            tx_count,
            total_fees: total_fees.to_string(),
        };
        let terms = match self.cfg.quotes.terms(&summary).await {
            Ok(t) => t,
            Err(reason) => {
                tracing::warn!("no quote for epoch {epoch}: {reason}");
                self.quoted.insert(epoch);
                self.emit(NodeEvent::NoQuote { epoch, reason });
                return Ok(());
            }
        };
        // The bond must be there when the proposer claims.
        self.ensure_bond().await?;
        let quote = EpochProofQuote {
            prover: self.l1.account,
            epoch_number: epoch,
            epoch_init_block: first,
            epoch_final_block: last,
            total_fees,
            rollup_address: self.l1.deployment.rollup,
            basis_point_fee: terms.basis_point_fee,
            bond_amount: terms.bond_amount,
            valid_until_slot: terms.valid_until_slot.unwrap_or(last_claim_slot),
        };
        let signed = quote
            .sign(&self.cfg.signer, self.l1.chain_id)
            .map_err(L1Error::Other)?;
        self.cfg
            .coordination
            .send(&signed)
            .await
            .map_err(|message| L1Error::Rpc {
                what: "sending the quote".into(),
                message,
            })?;
        tracing::info!(
            "quoted epoch {epoch} (blocks {first}..={last}, {tx_count} txs, fees {total_fees}): \
             {} bps, bond {}, valid until slot {}",
            terms.basis_point_fee,
            terms.bond_amount,
            signed.quote.valid_until_slot
        );
        self.quoted.insert(epoch);
        self.state.quoted(epoch);
        self.emit(NodeEvent::QuoteSent { epoch, terms });
        Ok(())
    }
}

/// Polls until `stop` turns true: the bond first, then a step per interval.
/// L1 errors are logged and retried with a growing pause (up to 30 s); they
/// never end the loop.
/// `live` says whether the loop is alive (the watchdog asks it).
pub async fn run(
    mut m: Monitor,
    mut stop: watch::Receiver<bool>,
    live: std::sync::Arc<crate::engine::Liveness>,
) {
    let base = m.cfg.polling_interval;
    let mut pause = base;
    let mut bonded = false;
    loop {
        live.step_started();
        let r = if bonded {
            m.step().await
        } else {
            m.ensure_bond().await.map(|_| bonded = true)
        };
        match r {
            Ok(()) => pause = base,
            Err(e) => {
                tracing::warn!("epoch monitor: {e}; next try in {} ms", pause.as_millis());
                pause = (pause * 2).min(Duration::from_secs(30)).max(base);
            }
        }
        live.pausing(pause);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

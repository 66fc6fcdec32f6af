//! The node's metrics, from the engine's events and its status board (the
//! sources `proverNode_getStatus` and the logs read): Aztec's
//! `aztec.prover_node.*` for each proven epoch, and ours
//! (`aztec_prover.node.*`): epochs by outcome, quotes and claims, the bond,
//! L1 gas, each L1 endpoint's health, results refused from agents.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aztec_prover_common::metrics::Metrics;
use aztec_prover_l1::failover::EndpointHealth;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram};
use tokio::sync::broadcast;

use crate::engine::EngineEvent;
use crate::monitor::NodeEvent;
use crate::status::StatusBoard;

/// The node's instruments.
pub struct NodeMetrics {
    execution: Histogram<f64>,
    job: Histogram<f64>,
    blocks: Gauge<u64>,
    txs: Gauge<u64>,
    epochs: Counter<u64>,
    quotes: Counter<u64>,
    claims: Counter<u64>,
    l1_gas: Counter<u64>,
    l1_txs: Counter<u64>,
    l1_proofs: Counter<u64>,
    epoch_gas: Gauge<u64>,
    gas_per_proof: Gauge<f64>,
    refused: Counter<u64>,
    /// When each epoch being proven began, and how many refusals it had.
    proving: HashMap<u64, (Instant, Option<Duration>, usize)>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl NodeMetrics {
    /// Instruments on `metrics`; the gauges read `status`.
    pub fn new(metrics: &Metrics, status: &StatusBoard) -> NodeMetrics {
        let m = metrics.meter();
        let s = status.clone();
        m.f64_observable_gauge("aztec_prover.node.bond")
            .with_description(
                "The escrow's free deposit backing quotes' bonds (fee-asset base units)",
            )
            .with_callback(move |o| {
                if let Some(b) = s.snapshot().bond.and_then(|b| b.parse::<f64>().ok()) {
                    o.observe(b, &[]);
                }
            })
            .build();
        let s = status.clone();
        m.u64_observable_gauge("aztec_prover.node.l1_endpoint_up")
            .with_description("1 while an L1 endpoint is not failing, by endpoint (host only)")
            .with_callback(move |o| {
                for e in s.snapshot().l1_endpoints {
                    let up = u64::from(!matches!(e.state, EndpointHealth::Failing));
                    o.observe(up, &[KeyValue::new("endpoint", e.url)]);
                }
            })
            .build();
        let s = status.clone();
        m.u64_observable_gauge("aztec_prover.node.jobs_dropped_ahead")
            .with_description("Jobs proven ahead for epochs another prover (or nobody) claimed")
            .with_callback(move |o| o.observe(s.snapshot().jobs_dropped_ahead as u64, &[]))
            .build();
        let s = status.clone();
        m.u64_observable_gauge("aztec_prover.node.p2p.peers")
            .with_description("Connected P2P peers")
            .with_callback(move |o| {
                if let Some(p) = s.snapshot().p2p {
                    o.observe(p.peers.len() as u64, &[]);
                }
            })
            .build();
        let s = status.clone();
        m.u64_observable_counter("aztec_prover.node.p2p.gossip_messages")
            .with_description(
                "Gossiped quotes, by direction: in (accepted), out (published), rejected",
            )
            .with_callback(move |o| {
                if let Some(p) = s.snapshot().p2p {
                    for (d, n) in [
                        ("in", p.gossip_in),
                        ("out", p.gossip_out),
                        ("rejected", p.gossip_rejected),
                    ] {
                        o.observe(n, &[KeyValue::new("direction", d)]);
                    }
                }
            })
            .build();
        let s = status.clone();
        m.u64_observable_counter("aztec_prover.node.p2p.peers_banned")
            .with_description("Peers disconnected and banned for their score")
            .with_callback(move |o| {
                if let Some(p) = s.snapshot().p2p {
                    o.observe(p.peers_banned, &[]);
                }
            })
            .build();
        let hist = |name, what| metrics.ms_histogram(name, what);
        NodeMetrics {
            execution: hist(
                "aztec.prover_node.execution.duration",
                "Time from an epoch's claim to its last proof",
            ),
            job: hist(
                "aztec.prover_node.job_duration",
                "Time from an epoch's claim to its acceptance on L1",
            ),
            blocks: m
                .u64_gauge("aztec.prover_node.job_blocks")
                .with_description("Blocks of the last proven epoch")
                .build(),
            txs: m
                .u64_gauge("aztec.prover_node.job_transactions")
                .with_description("Transactions of the last proven epoch")
                .build(),
            epochs: m
                .u64_counter("aztec_prover.node.epochs")
                .with_description("Claimed epochs by outcome (proven, failed)")
                .build(),
            quotes: m
                .u64_counter("aztec_prover.node.quotes")
                .with_description("Epochs quoted for (sent) or not (not_sent)")
                .build(),
            claims: m
                .u64_counter("aztec_prover.node.claims")
                .with_description("Claims seen, by winner (ours: a quote won; other)")
                .build(),
            l1_gas: m
                .u64_counter("aztec_prover.node.l1_gas")
                .with_description("Gas of the transactions that published epoch proofs")
                .build(),
            l1_txs: m
                .u64_counter("aztec_prover.node.l1_transactions")
                .with_description("Transactions that published epoch proofs (chunks and roots)")
                .build(),
            l1_proofs: m
                .u64_counter("aztec_prover.node.l1_proofs")
                .with_description("Proofs verified on L1")
                .build(),
            epoch_gas: m
                .u64_gauge("aztec_prover.node.epoch_l1_gas")
                .with_description("L1 gas of the last proven epoch")
                .build(),
            gas_per_proof: m
                .f64_gauge("aztec_prover.node.epoch_l1_gas_per_proof")
                .with_description("L1 gas per proof of the last proven epoch")
                .build(),
            refused: m
                .u64_counter("aztec_prover.node.refused_results")
                .with_description("Results from agents the node refused (and had proven again)")
                .build(),
            proving: HashMap::new(),
        }
    }

    /// Records one engine event.
    pub fn observe(&mut self, e: &EngineEvent, now: Instant) {
        match e {
            EngineEvent::Monitor(NodeEvent::QuoteSent { .. }) => {
                self.quotes.add(1, &[KeyValue::new("outcome", "sent")]);
            }
            EngineEvent::Monitor(NodeEvent::NoQuote { .. }) => {
                self.quotes.add(1, &[KeyValue::new("outcome", "not_sent")]);
            }
            EngineEvent::Monitor(NodeEvent::ClaimIsOurs { .. }) => {
                self.claims.add(1, &[KeyValue::new("winner", "ours")]);
            }
            EngineEvent::Monitor(NodeEvent::ClaimedByOther { .. }) => {
                self.claims.add(1, &[KeyValue::new("winner", "other")]);
            }
            EngineEvent::Monitor(NodeEvent::BondToppedUp(_)) => {}
            EngineEvent::Proving { epoch, .. } => {
                self.proving.insert(*epoch, (now, None, 0));
            }
            EngineEvent::Progress { epoch, progress } => {
                if let Some((start, done, refused)) = self.proving.get_mut(epoch) {
                    if progress.refused.len() > *refused {
                        self.refused
                            .add((progress.refused.len() - *refused) as u64, &[]);
                        *refused = progress.refused.len();
                    }
                    if progress.total > 0 && progress.proven == progress.total && done.is_none() {
                        *done = Some(now - *start);
                    }
                }
            }
            EngineEvent::Proven(r) => {
                let proving = self.proving.remove(&r.epoch);
                let execution = proving.and_then(|(_, d, _)| d).unwrap_or(r.took);
                self.execution.record(ms(execution), &[]);
                self.job.record(ms(r.took), &[]);
                self.blocks
                    .record(r.blocks.1.saturating_sub(r.blocks.0) + 1, &[]);
                self.txs.record(r.txs as u64, &[]);
                self.epochs.add(1, &[KeyValue::new("outcome", "proven")]);
                self.l1_gas.add(r.l1.gas, &[]);
                self.l1_txs.add(r.l1.txs as u64, &[]);
                self.l1_proofs.add(r.proofs as u64, &[]);
                self.epoch_gas.record(r.l1.gas, &[]);
                if r.proofs > 0 {
                    self.gas_per_proof
                        .record(r.l1.gas as f64 / r.proofs as f64, &[]);
                }
            }
            EngineEvent::Failed { epoch, .. } => {
                self.proving.remove(epoch);
                self.epochs.add(1, &[KeyValue::new("outcome", "failed")]);
            }
        }
    }

    /// Records the engine's events until it stops.
    pub fn spawn(
        mut self,
        mut events: broadcast::Receiver<EngineEvent>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => self.observe(&e, Instant::now()),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!("metrics missed {n} engine events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }
}

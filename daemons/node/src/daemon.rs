//! `aztec-prover node`: the coordination loop as a systemd service. It
//! waits for L1 rather than failing when L1 is down at start, reports
//! READY once the rollup is found, and stops on SIGTERM.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use aztec_prover_common::systemd::{self, Request, Signals};
use aztec_prover_l1::chain::{self, Deployment};
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_l1::{L1, L1Error};
use tokio::sync::watch;

use crate::monitor::{self, Monitor, MonitorConfig, NodeEvent};
use crate::quotes::QuoteProvider;
use crate::settings::NodeSettings;

/// Why the node cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Settings that cannot work together or cannot be parsed.
    #[error("{0}")]
    Config(String),
    /// Signals could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
}

/// What the node is started with.
pub struct Launch {
    /// Its settings.
    pub node: NodeSettings,
}

/// Checks the settings that only make sense together and builds the pieces.
pub fn prepare(
    s: &NodeSettings,
) -> Result<(PrivateKeySigner, Address, QuoteProvider, RemoteNode), DaemonError> {
    let key_text = s.publisher_private_key.expose().trim();
    if key_text.is_empty() {
        return Err(DaemonError::Config(
            "PROVER_PUBLISHER_PRIVATE_KEY is not set: the node signs quotes and L1 transactions with it".into(),
        ));
    }
    let signer: PrivateKeySigner = key_text.parse().map_err(|_| {
        DaemonError::Config("PROVER_PUBLISHER_PRIVATE_KEY is not a 32-byte hex private key".into())
    })?;
    let rollup: Address = s.rollup_address.trim().parse().map_err(|_| {
        DaemonError::Config(format!(
            "ROLLUP_CONTRACT_ADDRESS {:?} is not an address (0x and 40 hex digits)",
            s.rollup_address
        ))
    })?;
    if s.coordination_node_url.trim().is_empty() {
        return Err(DaemonError::Config(
            "no way to send quotes: set PROVER_COORDINATION_NODE_URL (P2P gossip is not available in this version)"
                .into(),
        ));
    }
    let remote = RemoteNode::new(s.coordination_node_url.trim(), Duration::from_secs(10))
        .map_err(DaemonError::Config)?;
    let quotes = if s.quote_provider_url.trim().is_empty() {
        QuoteProvider::Fixed {
            basis_point_fee: s.quote_basis_point_fee,
            bond_amount: s.quote_bond_amount.map(U256::from),
        }
    } else {
        QuoteProvider::http(s.quote_provider_url.trim(), Duration::from_secs(10))
            .map_err(DaemonError::Config)?
    };
    Ok((signer, rollup, quotes, remote))
}

async fn connect(
    s: &NodeSettings,
    signer: &PrivateKeySigner,
    rollup: Address,
) -> Result<L1, L1Error> {
    let url = s
        .ethereum_hosts
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let provider = chain::connect(url, Some(signer.clone()), Duration::from_secs(10))?;
    let r = aztec_prover_l1::bindings::Rollup::new(rollup, provider.clone());
    let escrow = r
        .escrow()
        .call()
        .await
        .map_err(|e| chain::classify("Rollup.escrow", e))?;
    let fee_token = r
        .feeToken()
        .call()
        .await
        .map_err(|e| chain::classify("Rollup.feeToken", e))?;
    let verifier = r
        .verifier()
        .call()
        .await
        .map_err(|e| chain::classify("Rollup.verifier", e))?;
    let l1 = L1::new(
        provider,
        Deployment {
            rollup,
            escrow,
            fee_token,
            verifier,
        },
        signer.address(),
    )
    .await?;
    if l1.chain_id != s.l1_chain_id {
        return Err(L1Error::Other(format!(
            "L1 at {url} is chain {}, L1_CHAIN_ID says {}",
            l1.chain_id, s.l1_chain_id
        )));
    }
    Ok(l1)
}

/// Runs the node until SIGTERM.
pub async fn run(launch: Launch) -> Result<(), DaemonError> {
    let s = launch.node;
    let (signer, rollup, quotes, remote) = prepare(&s)?;
    let mut signals = Signals::install().map_err(DaemonError::Signals)?;
    let (stop, stop_rx) = watch::channel(false);

    // L1 may not be up yet: wait for it, never give up.
    let mut pause = Duration::from_millis(s.polling_interval_ms);
    let l1 = loop {
        match connect(&s, &signer, rollup).await {
            Ok(l1) => break l1,
            Err(L1Error::Other(e)) => return Err(DaemonError::Config(e)),
            Err(e) => {
                systemd::notify_status(&format!("waiting for L1: {e}"));
                tracing::warn!("waiting for L1: {e}; next try in {} ms", pause.as_millis());
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            r = signals.next() => if r == Request::Stop { return Ok(()) },
        }
    };
    let cfg = MonitorConfig {
        signer,
        quotes,
        coordination: remote,
        minimum_escrow: U256::from(s.minimum_escrow_amount),
        target_escrow: U256::from(s.target_escrow_amount),
        polling_interval: Duration::from_millis(s.polling_interval_ms),
    };
    let m = loop {
        match Monitor::new(l1.clone(), cfg.clone()).await {
            Ok(m) => break m,
            Err(e) => {
                tracing::warn!("reading the rollup's parameters: {e}");
                tokio::time::sleep(pause).await;
            }
        }
    };
    let rc = m.rollup_config();
    tracing::info!(
        "prover {} on rollup {} (chain {}): slots of {} s, epochs of {} slots, claims within {} slots, proofs within {}",
        l1.account,
        rollup,
        l1.chain_id,
        rc.slot_duration,
        rc.epoch_duration,
        rc.claim_duration_slots,
        rc.proof_window_slots
    );
    let mut events = m.subscribe();
    let task = tokio::spawn(monitor::run(m, stop_rx));
    systemd::notify_ready();
    systemd::notify_status("watching L1");
    loop {
        tokio::select! {
            r = signals.next() => if r == Request::Stop { break },
            e = events.recv() => match e {
                Ok(NodeEvent::ClaimIsOurs { epoch, first_block, last_block, .. }) => {
                    systemd::notify_status(&format!("epoch {epoch} claimed with our quote (blocks {first_block}..={last_block})"));
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    systemd::notify_stopping("stopping");
    let _ = stop.send(true);
    let _ = task.await;
    tracing::info!("node stopped");
    Ok(())
}

//! The devnet on the P2P network: a boot node (discovery only, as
//! `aztec-prover p2p bootnode`) and the sequencer as a peer that takes
//! gossiped quotes (checked by the quote book before they count or are
//! relayed) and answers peers' requests for txs by hash.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use aztec_prover_l1::quote_book::{Check, MAX_QUOTE_MESSAGE_BYTES, QuoteBook};
use aztec_prover_p2p::{Keypair, Multiaddr, Peers, PeersConfig, Verdict};

use crate::sequencer::Shared;

/// The devnet's two peers.
pub struct DevnetPeers {
    /// The boot node.
    pub boot: Peers,
    /// Where to dial it: its multiaddr with its peer id.
    pub boot_addr: Multiaddr,
    /// The sequencer's swarm.
    pub sequencer: Peers,
    /// The rules, whose view the sequencer keeps fresh.
    pub book: Arc<QuoteBook>,
}

fn loopback() -> Multiaddr {
    Multiaddr::from(std::net::Ipv4Addr::LOCALHOST)
        .with(aztec_prover_p2p::multiaddr::Protocol::Tcp(0))
}

async fn listen_addr(p: &Peers) -> Result<Multiaddr, String> {
    for _ in 0..100 {
        let s = p.status().await.map_err(|e| e.to_string())?;
        if let Some(a) = s.listen_addrs.first() {
            let a: Multiaddr = a.parse().map_err(|e| format!("{a}: {e}"))?;
            return Ok(a.with(aztec_prover_p2p::multiaddr::Protocol::P2p(p.peer_id())));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the swarm never listened".into())
}

impl DevnetPeers {
    /// Starts the boot node and the sequencer's swarm on loopback.
    pub async fn start(
        chain_id: u64,
        rollup: Address,
        shared: Arc<Shared>,
    ) -> Result<DevnetPeers, String> {
        let boot = Peers::start(
            Keypair::generate_ed25519(),
            PeersConfig {
                listen: loopback(),
                boot_nodes: vec![],
                topic: None,
                max_message_bytes: 16 * MAX_QUOTE_MESSAGE_BYTES,
                max_peers: 100,
                heartbeat: Duration::from_millis(700),
            },
            Arc::new(|_, _| Verdict::Ignore),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
        let boot_addr = listen_addr(&boot).await?;
        let book = Arc::new(QuoteBook::new(chain_id, rollup));
        let rules = book.clone();
        let quotes = shared.clone();
        let validator: aztec_prover_p2p::Validator = Arc::new(move |from, bytes| {
            match rules.check(bytes) {
                Check::Accept(q) => {
                    tracing::info!(
                        "gossiped quote from {} for epoch {}: {} bps, bond {}, valid until slot {} (via {from})",
                        q.quote.prover,
                        q.quote.epoch_number,
                        q.quote.basis_point_fee,
                        q.quote.bond_amount,
                        q.quote.valid_until_slot
                    );
                    quotes.add_gossiped_quote(q);
                    Verdict::Accept
                }
                Check::Reject(why) => {
                    tracing::info!("invalid quote from peer {from}: {why}");
                    Verdict::Reject
                }
                Check::Ignore(why) => {
                    tracing::debug!("quote from peer {from} not taken: {why}");
                    Verdict::Ignore
                }
            }
        });
        let txs = shared.clone();
        let provider: aztec_prover_p2p::Provider = Arc::new(move |key| {
            let h = B256::try_from(key).ok()?;
            serde_json::to_vec(&txs.tx(&h)?).ok()
        });
        let sequencer = Peers::start(
            Keypair::generate_ed25519(),
            PeersConfig {
                listen: loopback(),
                boot_nodes: vec![boot_addr.clone()],
                topic: Some(book.topic()),
                max_message_bytes: 16 * MAX_QUOTE_MESSAGE_BYTES,
                max_peers: 100,
                heartbeat: Duration::from_millis(700),
            },
            validator,
            Some(provider),
        )
        .await
        .map_err(|e| e.to_string())?;
        tracing::info!(
            "devnet P2P: boot node {boot_addr}, sequencer {}",
            sequencer.peer_id()
        );
        Ok(DevnetPeers {
            boot,
            boot_addr,
            sequencer,
            book,
        })
    }
}

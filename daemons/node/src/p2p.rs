//! The node on the P2P network (`P2P_ENABLED`, the prover guide): its
//! identity kept in the data directory, its peers found from the boot nodes,
//! its quotes gossiped on the rollup's quotes topic (every quote from a peer
//! checked by the [`QuoteBook`]'s rules before it is relayed), and the txs
//! it has fetched served to peers that ask by hash.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use aztec_prover_l1::L1;
use aztec_prover_l1::chain::RollupConfig;
use aztec_prover_l1::quote_book::{Check, MAX_QUOTE_MESSAGE_BYTES, QuoteBook};
use aztec_prover_p2p::{Multiaddr, Peers, PeersConfig, Verdict};

use crate::status::StatusBoard;
use crate::txs::TxCache;

/// Where and how to join.
#[derive(Debug, Clone)]
pub struct P2pOptions {
    /// The identity key's directory (the node's data directory).
    pub data_dir: PathBuf,
    /// `P2P_IP`.
    pub ip: IpAddr,
    /// `P2P_PORT` (0: any free port).
    pub port: u16,
    /// `BOOT_NODE_URL`.
    pub boot_nodes: Vec<Multiaddr>,
    /// `P2P_MAX_PEERS`.
    pub max_peers: u32,
}

/// A boot node's multiaddr, checked: it must name the peer.
pub fn boot_node(text: &str) -> Result<Multiaddr, String> {
    let a: Multiaddr = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a multiaddr ({e}); a boot node looks like /ip4/10.0.0.5/tcp/40400/p2p/12D3KooW..."))?;
    match a.iter().last() {
        Some(aztec_prover_p2p::multiaddr::Protocol::P2p(_)) => Ok(a),
        _ => Err(format!("{text:?} does not end in /p2p/<peer id>")),
    }
}

/// The node's part of the network.
#[derive(Clone)]
pub struct NodeP2p {
    /// The swarm.
    pub peers: Peers,
    /// The quotes seen and the rules they are checked by.
    pub book: Arc<QuoteBook>,
    /// Txs fetched, answered to peers.
    pub txs: Arc<TxCache>,
}

/// Joins: the identity (made on first start), the listener, the boot nodes,
/// the quotes topic of `rollup` on `chain_id`.
pub async fn start(opts: &P2pOptions, chain_id: u64, rollup: Address) -> Result<NodeP2p, String> {
    let (key, made) =
        aztec_prover_p2p::identity::load_or_create(&opts.data_dir).map_err(|e| e.to_string())?;
    let book = Arc::new(QuoteBook::new(chain_id, rollup));
    let txs = Arc::new(TxCache::default());
    let rules = book.clone();
    let validator: aztec_prover_p2p::Validator =
        Arc::new(move |from, bytes| match rules.check(bytes) {
            Check::Accept(q) => {
                tracing::debug!(
                    "P2P: quote of {} for epoch {} ({} bps) from {from}",
                    q.quote.prover,
                    q.quote.epoch_number,
                    q.quote.basis_point_fee
                );
                Verdict::Accept
            }
            Check::Reject(why) => {
                tracing::info!("P2P: invalid quote from {from}: {why}");
                Verdict::Reject
            }
            Check::Ignore(why) => {
                tracing::debug!("P2P: quote from {from} not relayed: {why}");
                Verdict::Ignore
            }
        });
    let cache = txs.clone();
    let provider: aztec_prover_p2p::Provider = Arc::new(move |key| cache.answer(key));
    let listen: Multiaddr = format!(
        "/{}/{}/tcp/{}",
        if opts.ip.is_ipv4() { "ip4" } else { "ip6" },
        opts.ip,
        opts.port
    )
    .parse()
    .map_err(|e| format!("P2P_IP/P2P_PORT: {e}"))?;
    let peers = Peers::start(
        key,
        PeersConfig {
            listen,
            boot_nodes: opts.boot_nodes.clone(),
            topic: Some(book.topic()),
            // Room for a few quotes and gossip's control messages per frame;
            // each quote's own limit is the book's.
            max_message_bytes: 16 * MAX_QUOTE_MESSAGE_BYTES,
            max_peers: opts.max_peers,
            heartbeat: Duration::from_millis(700),
        },
        validator,
        Some(provider),
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!(
        "P2P: peer id {} ({} identity in {}); quotes on {}; {} boot node(s)",
        peers.peer_id(),
        if made { "new" } else { "kept" },
        opts.data_dir.display(),
        book.topic(),
        opts.boot_nodes.len()
    );
    Ok(NodeP2p { peers, book, txs })
}

impl NodeP2p {
    /// Copies the network's state (peers, counters, scores) to the status
    /// board every second, from the start: before L1 is reached too.
    pub fn show_in(&self, state: StatusBoard) -> tokio::task::JoinHandle<()> {
        let peers = self.peers.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(s) = peers.status().await {
                    state.set_p2p(s);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// Keeps the quote rules' view of L1 fresh, every `interval`.
    pub fn watch_l1(
        &self,
        l1: L1,
        config: RollupConfig,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let book = self.book.clone();
        tokio::spawn(async move {
            let mut warned = false;
            loop {
                match book.refresh(&l1, &config).await {
                    Ok(_) => warned = false,
                    Err(e) if !warned => {
                        tracing::warn!("P2P: reading L1 for the quote rules: {e}");
                        warned = true;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(interval).await;
            }
        })
    }
}

//! The tx provider: a block's tx objects by hash, from peers over P2P
//! (each answer checked against its hash; a peer that sends another body is
//! penalised and the next one asked) and from the remote node over HTTP
//! (`AZTEC_NODE_URL`, else the coordination node), and the block's
//! messages, ready to be re-executed. Txs fetched are kept for a while and
//! served to peers that ask.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alloy::primitives::B256;
use aztec_prover_l1::chain::ProposedBlock;
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_l1::word_felt;
use aztec_prover_p2p::{PeerId, Peers};
use aztec_prover_rollup::plan::BlockSpec;
use aztec_zk::circuits::base::Tx;

use crate::error::NodeError;

/// How many txs a node keeps to answer peers (about 1 KB each).
const CACHE_TXS: usize = 16_384;

/// Txs this node has fetched, newest kept.
#[derive(Debug, Default)]
pub struct TxCache {
    inner: Mutex<(HashMap<B256, Tx>, VecDeque<B256>)>,
}

impl TxCache {
    /// Keeps `tx` under its hash.
    pub fn insert(&self, tx: Tx) {
        let h = B256::from(tx.hash());
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, order) = &mut *g;
        if map.insert(h, tx).is_none() {
            order.push_back(h);
        }
        while order.len() > CACHE_TXS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// The tx with hash `h`, if kept.
    pub fn get(&self, h: &B256) -> Option<Tx> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .get(h)
            .cloned()
    }

    /// The answer to a peer asking for the tx whose hash is `key`.
    pub fn answer(&self, key: &[u8]) -> Option<Vec<u8>> {
        let h = B256::try_from(key).ok()?;
        encode(&self.get(&h)?)
    }
}

/// A tx's bytes between peers.
pub fn encode(tx: &Tx) -> Option<Vec<u8>> {
    serde_json::to_vec(tx).ok()
}

/// Where txs come from: peers, the HTTP node, or both (peers first).
#[derive(Clone)]
pub struct TxSource {
    /// The P2P network, when on.
    pub peers: Option<Peers>,
    /// The remote node over HTTP, when set.
    pub http: Option<RemoteNode>,
    /// Txs fetched, served to peers.
    pub cache: Arc<TxCache>,
}

impl From<RemoteNode> for TxSource {
    fn from(r: RemoteNode) -> TxSource {
        TxSource {
            peers: None,
            http: Some(r),
            cache: Arc::default(),
        }
    }
}

/// Why one peer did not give the tx.
enum PeerMiss {
    NotThere,
    Failed(String),
}

impl TxSource {
    /// Asks `peer` for `hash`; a body of another hash (or not a tx) costs
    /// the peer points.
    async fn ask_peer(&self, peers: &Peers, peer: PeerId, hash: B256) -> Result<Tx, PeerMiss> {
        match peers.request(peer, hash.to_vec()).await {
            Ok(Some(body)) => {
                let tx = serde_json::from_slice::<Tx>(&body).ok();
                match tx {
                    Some(tx) if B256::from(tx.hash()) == hash => Ok(tx),
                    other => {
                        let what = match other {
                            Some(tx) => format!("a tx of hash {}", B256::from(tx.hash())),
                            None => "bytes that are not a tx".into(),
                        };
                        tracing::warn!("P2P: peer {peer} answered tx {hash} with {what}");
                        let _ = peers
                            .penalize(
                                peer,
                                aztec_prover_p2p::score::WRONG_ANSWER,
                                "a wrong tx body",
                            )
                            .await;
                        Err(PeerMiss::Failed(format!("{peer} sent {what}")))
                    }
                }
            }
            Ok(None) => Err(PeerMiss::NotThere),
            Err(e) => Err(PeerMiss::Failed(e.to_string())),
        }
    }

    /// One round over the peers, best scored first.
    async fn ask_peers(&self, peers: &Peers, hash: B256, why: &mut Vec<String>) -> Option<Tx> {
        let ids = peers.ranked_peers().await.ok()?;
        if ids.is_empty() {
            why.push("no peers connected".into());
        }
        for peer in ids {
            match self.ask_peer(peers, peer, hash).await {
                Ok(tx) => return Some(tx),
                Err(PeerMiss::NotThere) => {}
                Err(PeerMiss::Failed(e)) => why.push(e),
            }
        }
        None
    }

    /// Fetches a tx: peers first, then the HTTP node, `attempts` rounds;
    /// an HTTP node that says it does not have it is an error at once.
    pub async fn fetch_tx(&self, hash: B256, attempts: u32) -> Result<Tx, NodeError> {
        if let Some(tx) = self.cache.get(&hash) {
            return Ok(tx);
        }
        let mut why = Vec::new();
        for i in 0..attempts.max(1) {
            if let Some(peers) = &self.peers
                && let Some(tx) = self.ask_peers(peers, hash, &mut why).await
            {
                self.cache.insert(tx.clone());
                return Ok(tx);
            }
            if let Some(remote) = &self.http {
                match remote.tx(hash).await {
                    Ok(Some(tx)) => {
                        self.cache.insert(tx.clone());
                        return Ok(tx);
                    }
                    Ok(None) if self.peers.is_none() => {
                        return Err(NodeError::Txs(format!(
                            "the remote node {} does not have tx {hash}",
                            remote.url()
                        )));
                    }
                    Ok(None) => why.push(format!("{} does not have it", remote.url())),
                    Err(e) => why.push(e),
                }
            }
            tokio::time::sleep(Duration::from_millis(200 << i.min(5))).await;
        }
        why.dedup();
        let last: Vec<String> = why.into_iter().rev().take(3).collect();
        Err(NodeError::Txs(format!(
            "tx {hash} could not be fetched{}: {}",
            if self.peers.is_some() {
                " from peers"
            } else {
                ""
            },
            if last.is_empty() {
                "nobody had it".to_string()
            } else {
                last.join("; ")
            }
        )))
    }

    /// A block proposal with its txs, ready to be re-executed.
    pub async fn block_spec(&self, b: &ProposedBlock) -> Result<BlockSpec, NodeError> {
        let mut txs = Vec::with_capacity(b.tx_hashes.len());
        for h in &b.tx_hashes {
            txs.push(self.fetch_tx(*h, 5).await?);
        }
        let messages = b
            .messages
            .iter()
            .map(|m| {
                word_felt(m).ok_or_else(|| {
                    NodeError::Chain(format!(
                        "block {}: message {m} is not a field element",
                        b.number
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BlockSpec {
            txs,
            messages,
            slot: b.slot,
        })
    }
}

//! What the running node is doing, shared by the daemon loop (which writes
//! it) and the node's JSON-RPC API and D-Bus object (which read it, and may
//! pause quoting). One lock, held only to copy or change a few fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use aztec_prover_l1::failover::{EndpointState, Endpoints};
use serde::Serialize;
use tokio::sync::watch;

/// The life of an epoch's proving job (the names are Aztec's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    /// Claimed; waiting for the job before it to finish.
    Initialized,
    /// Reading blocks and txs, proving through the broker.
    Processing,
    /// Proven on L1.
    Completed,
    /// Given up (the error says why).
    Failed,
}

/// One epoch's proving job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochJob {
    /// A stable id: `epoch-<N>`.
    pub uuid: String,
    /// Its status.
    pub status: JobStatus,
    /// The epoch.
    pub epoch_number: u64,
    /// Its first block.
    pub first_block: u64,
    /// Its last block.
    pub last_block: u64,
    /// Broker jobs proven so far.
    pub jobs_proven: usize,
    /// Broker jobs in the epoch's tree (0 until planned).
    pub jobs_total: usize,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix seconds when it was claimed.
    pub claimed_at: u64,
    /// Unix seconds when it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
}

/// The last epoch proof L1 accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastProof {
    /// The epoch.
    pub epoch_number: u64,
    /// Its last block, now proven.
    pub proven_block: u64,
    /// Proofs verified on L1 in one batch.
    pub proofs: usize,
    /// Gas of the submission.
    pub gas: u64,
    /// Seconds from claim to acceptance.
    pub seconds: f64,
}

/// A snapshot of the node, as `proverNode_getStatus` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// What `systemctl status` shows.
    pub status: String,
    /// Whether L1 answered and the rollup was read.
    pub l1_connected: bool,
    /// The prover's address (the publisher key's).
    pub prover: String,
    /// The rollup contract.
    pub rollup: String,
    /// L1's chain id (0 until connected).
    pub chain_id: u64,
    /// The epoch of L1's current slot, once seen.
    pub current_epoch: Option<u64>,
    /// Epochs quoted for.
    pub quoted_epochs: Vec<u64>,
    /// Epochs claimed with this prover's quotes.
    pub claimed_epochs: Vec<u64>,
    /// The last proof L1 accepted from this node.
    pub last_proof: Option<LastProof>,
    /// The free escrow deposit backing the quotes' bonds, when last read.
    pub bond: Option<String>,
    /// Whether quoting is paused.
    pub paused: bool,
    /// The last block the world state kept on disk is at.
    pub world_state_block: Option<u64>,
    /// Each L1 endpoint (`ETHEREUM_HOSTS`) and its state, as listed.
    pub l1_endpoints: Vec<EndpointState>,
    /// Jobs proven ahead of a claim that did not come (the epoch went to
    /// another prover, or to nobody), since the node started.
    pub jobs_dropped_ahead: usize,
    /// The node on the P2P network (`P2P_ENABLED`): its peer id, peers,
    /// gossip counters and peer scores; absent when P2P is off.
    pub p2p: Option<aztec_prover_p2p::PeersStatus>,
}

#[derive(Default)]
struct Inner {
    status: NodeStatus,
    endpoints: Option<Endpoints>,
    jobs: BTreeMap<u64, EpochJob>,
}

/// The shared state. Cheap to clone.
#[derive(Clone)]
pub struct StatusBoard {
    inner: Arc<Mutex<Inner>>,
    paused: Arc<watch::Sender<bool>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard::new()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl StatusBoard {
    /// A node that has done nothing yet.
    pub fn new() -> StatusBoard {
        StatusBoard {
            inner: Arc::default(),
            paused: Arc::new(watch::channel(false).0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the status API down with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status line (also sent to systemd by the daemon).
    pub fn set_status(&self, text: &str) {
        self.lock().status.status = text.to_string();
    }

    /// L1 answered: who we are and where.
    pub fn connected(&self, prover: String, rollup: String, chain_id: u64) {
        let s = &mut self.lock().status;
        s.l1_connected = true;
        s.prover = prover;
        s.rollup = rollup;
        s.chain_id = chain_id;
    }

    /// The L1 endpoints whose state the snapshot shows.
    pub fn set_l1_endpoints(&self, endpoints: Endpoints) {
        self.lock().endpoints = Some(endpoints);
    }

    /// The P2P network's state now.
    pub fn set_p2p(&self, p2p: aztec_prover_p2p::PeersStatus) {
        self.lock().status.p2p = Some(p2p);
    }

    /// Jobs proven ahead and dropped so far.
    pub fn set_dropped_ahead(&self, jobs: usize) {
        self.lock().status.jobs_dropped_ahead = jobs;
    }

    /// The epoch of the current slot.
    pub fn set_current_epoch(&self, epoch: u64) {
        self.lock().status.current_epoch = Some(epoch);
    }

    /// The block the kept world state is at.
    pub fn set_world_state_block(&self, block: u64) {
        self.lock().status.world_state_block = Some(block);
    }

    /// The escrow deposit as last read.
    pub fn set_bond(&self, amount: String) {
        self.lock().status.bond = Some(amount);
    }

    /// A quote went out.
    pub fn quoted(&self, epoch: u64) {
        let s = &mut self.lock().status;
        if !s.quoted_epochs.contains(&epoch) {
            s.quoted_epochs.push(epoch);
        }
    }

    /// An epoch was claimed with our quote.
    pub fn claimed(&self, epoch: u64, first_block: u64, last_block: u64) {
        let mut g = self.lock();
        if !g.status.claimed_epochs.contains(&epoch) {
            g.status.claimed_epochs.push(epoch);
        }
        g.jobs.entry(epoch).or_insert(EpochJob {
            uuid: format!("epoch-{epoch}"),
            status: JobStatus::Initialized,
            epoch_number: epoch,
            first_block,
            last_block,
            jobs_proven: 0,
            jobs_total: 0,
            error: None,
            claimed_at: now(),
            finished_at: None,
        });
    }

    /// Proving of `epoch` has started or moved on.
    pub fn progress(&self, epoch: u64, proven: usize, total: usize) {
        if let Some(j) = self.lock().jobs.get_mut(&epoch) {
            j.status = JobStatus::Processing;
            j.jobs_proven = proven;
            j.jobs_total = total;
        }
    }

    /// `epoch` is proven on L1.
    pub fn completed(&self, proof: LastProof) {
        let mut g = self.lock();
        if let Some(j) = g.jobs.get_mut(&proof.epoch_number) {
            j.status = JobStatus::Completed;
            j.jobs_proven = j.jobs_total;
            j.finished_at = Some(now());
        }
        g.status.last_proof = Some(proof);
    }

    /// Proving `epoch` failed for good.
    pub fn failed(&self, epoch: u64, error: String) {
        if let Some(j) = self.lock().jobs.get_mut(&epoch) {
            j.status = JobStatus::Failed;
            j.error = Some(error);
            j.finished_at = Some(now());
        }
    }

    /// A snapshot of the node.
    pub fn snapshot(&self) -> NodeStatus {
        let g = self.lock();
        let mut s = g.status.clone();
        if let Some(e) = &g.endpoints {
            s.l1_endpoints = e.states();
        }
        drop(g);
        s.paused = self.is_paused();
        s
    }

    /// The proving jobs, oldest epoch first.
    pub fn jobs(&self) -> Vec<EpochJob> {
        self.lock().jobs.values().cloned().collect()
    }

    /// Stops (true) or restarts (false) quoting for new epochs. Epochs
    /// already claimed with our quotes are proven either way: their bond
    /// is at stake. Returns whether this changed anything.
    pub fn set_paused(&self, paused: bool) -> bool {
        self.paused.send_if_modified(|p| {
            let changed = *p != paused;
            *p = paused;
            changed
        })
    }

    /// Whether quoting is paused.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Follows the paused flag.
    pub fn watch_paused(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_job_goes_from_claim_to_completion() {
        let s = StatusBoard::new();
        s.claimed(3, 10, 14);
        s.claimed(3, 10, 14);
        assert_eq!(s.jobs().len(), 1);
        assert_eq!(s.jobs()[0].status, JobStatus::Initialized);
        s.progress(3, 4, 20);
        assert_eq!(
            (s.jobs()[0].status, s.jobs()[0].jobs_proven),
            (JobStatus::Processing, 4)
        );
        s.completed(LastProof {
            epoch_number: 3,
            proven_block: 14,
            proofs: 20,
            gas: 1,
            seconds: 2.0,
        });
        let j = &s.jobs()[0];
        assert_eq!((j.status, j.jobs_proven), (JobStatus::Completed, 20));
        assert_eq!(s.snapshot().claimed_epochs, vec![3]);
        s.set_world_state_block(14);
        assert_eq!(
            serde_json::to_value(s.snapshot()).unwrap()["worldStateBlock"],
            14
        );
        assert_eq!(s.snapshot().last_proof.unwrap().proven_block, 14);
        let json = serde_json::to_value(j).unwrap();
        assert_eq!(json["status"], "completed");
        assert_eq!(json["epochNumber"], 3);
        assert_eq!(json["uuid"], "epoch-3");
    }

    #[test]
    fn pausing_is_seen_by_watchers_and_reported_once() {
        let s = StatusBoard::new();
        let w = s.watch_paused();
        assert!(s.set_paused(true));
        assert!(!s.set_paused(true));
        assert!(*w.borrow());
        assert!(s.snapshot().paused);
        s.failed(9, "nothing".into());
        assert!(s.jobs().is_empty());
    }
}

// zbus's interface macro generates undocumented helpers for the signals.
#![allow(missing_docs)]
//! The node's D-Bus object: `org.aztec.ProverNode1` at
//! `/org/aztec/ProverNode`, owned as `org.aztec.ProverNode`. It reads the
//! shared [`StatusBoard`]; `Pause` and `Resume` stop and restart quoting for
//! new epochs (claimed epochs are proven either way: their bond is at stake).

use zbus::interface;

use crate::status::StatusBoard;

/// The well-known name.
pub const BUS_NAME: &str = "org.aztec.ProverNode";
/// The object path.
pub const OBJECT_PATH: &str = "/org/aztec/ProverNode";

/// The D-Bus object.
pub struct NodeBus {
    state: StatusBoard,
}

impl NodeBus {
    /// Wraps the shared state.
    pub fn new(state: StatusBoard) -> NodeBus {
        NodeBus { state }
    }

    /// Pauses or resumes quoting; logs and signals only a real change.
    async fn switch(
        &self,
        paused: bool,
        emitter: &zbus::object_server::SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        if self.state.set_paused(paused) {
            let what = if paused { "paused" } else { "resumed" };
            tracing::info!("quoting {what} over D-Bus");
            self.paused_changed(emitter).await?;
        }
        Ok(())
    }
}

#[interface(name = "org.aztec.ProverNode1")]
impl NodeBus {
    /// What the node is doing (as in `systemctl status`).
    #[zbus(property)]
    fn status(&self) -> String {
        self.state.snapshot().status
    }

    /// The epoch of L1's current slot; -1 until L1 has been read.
    #[zbus(property)]
    fn current_epoch(&self) -> i64 {
        self.state
            .snapshot()
            .current_epoch
            .and_then(|e| i64::try_from(e).ok())
            .unwrap_or(-1)
    }

    /// Epochs claimed with this prover's quotes.
    #[zbus(property)]
    fn claimed_epochs(&self) -> Vec<u64> {
        self.state.snapshot().claimed_epochs
    }

    /// The last proof L1 accepted: (epoch, proven block, proofs, gas);
    /// all zero before the first.
    #[zbus(property)]
    fn last_proof(&self) -> (u64, u64, u64, u64) {
        self.state
            .snapshot()
            .last_proof
            .map(|p| (p.epoch_number, p.proven_block, p.proofs as u64, p.gas))
            .unwrap_or_default()
    }

    /// The free escrow deposit behind the quotes' bonds, in base units of
    /// the fee asset (empty until read).
    #[zbus(property)]
    fn bond(&self) -> String {
        self.state.snapshot().bond.unwrap_or_default()
    }

    /// Each L1 endpoint as listed in `ETHEREUM_HOSTS`: (URL without
    /// credentials or path, `in-use` | `standby` | `failing`, requests
    /// answered, requests failed, the last failure's reason or "").
    #[zbus(property)]
    fn l1_endpoints(&self) -> Vec<(String, String, u64, u64, String)> {
        self.state
            .snapshot()
            .l1_endpoints
            .into_iter()
            .map(|e| {
                (
                    e.url,
                    e.state.name().to_string(),
                    e.answered,
                    e.failed,
                    e.last_error.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// This node's P2P peer id ("" when P2P is off).
    #[zbus(property)]
    fn peer_id(&self) -> String {
        self.state
            .snapshot()
            .p2p
            .map(|p| p.peer_id)
            .unwrap_or_default()
    }

    /// Connected peers' ids.
    #[zbus(property)]
    fn peers(&self) -> Vec<String> {
        self.state
            .snapshot()
            .p2p
            .map(|p| p.peers)
            .unwrap_or_default()
    }

    /// Gossip messages (in, out, rejected) since the node started.
    #[zbus(property)]
    fn gossip_messages(&self) -> (u64, u64, u64) {
        self.state
            .snapshot()
            .p2p
            .map(|p| (p.gossip_in, p.gossip_out, p.gossip_rejected))
            .unwrap_or_default()
    }

    /// Scores of the peers that have one other than zero (invalid messages
    /// and wrong answers take points off; at -50 a peer is disconnected).
    #[zbus(property)]
    fn peer_scores(&self) -> std::collections::HashMap<String, f64> {
        self.state
            .snapshot()
            .p2p
            .map(|p| p.scores.into_iter().collect())
            .unwrap_or_default()
    }

    /// Whether quoting is paused.
    #[zbus(property)]
    fn paused(&self) -> bool {
        self.state.is_paused()
    }

    /// Stops quoting for new epochs.
    async fn pause(
        &self,
        #[zbus(signal_emitter)] emitter: zbus::object_server::SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        self.switch(true, &emitter).await
    }

    /// Quotes again.
    async fn resume(
        &self,
        #[zbus(signal_emitter)] emitter: zbus::object_server::SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        self.switch(false, &emitter).await
    }
}

//! The broker's D-Bus adapter: `org.aztec.ProverBroker1` at
//! `/org/aztec/ProverBroker`, name `org.aztec.ProverBroker`.
//!
//! Reads come from the engine's published counters; writes become
//! [`Broker::tune`] and [`Broker::cancel_epoch`] calls. A new revision of the
//! interface gets a new name (`...ProverBroker2`); this one only grows.

use std::collections::HashMap;
use std::time::Duration;

use zbus::fdo;
use zbus::interface;
use zbus::object_server::SignalEmitter;

use crate::queue::Policy;
use crate::writer::{Broker, PolicyChange};

/// The well-known name.
pub const BUS_NAME: &str = "org.aztec.ProverBroker";
/// The object path.
pub const OBJECT_PATH: &str = "/org/aztec/ProverBroker";

/// The D-Bus object.
pub struct BrokerBus {
    broker: Broker,
}

impl BrokerBus {
    /// Wraps a handle.
    pub fn new(broker: Broker) -> BrokerBus {
        BrokerBus { broker }
    }
}

#[interface(name = "org.aztec.ProverBroker1")]
impl BrokerBus {
    /// Queued jobs per job type (Aztec's jobs under `aztec:<TYPE>`).
    #[zbus(property)]
    fn queue_depth(&self) -> HashMap<String, u64> {
        let stats = self.broker.stats();
        let ours = stats
            .by_type()
            .into_iter()
            .map(|(t, c)| (t.name().to_string(), c.queued));
        let aztec = stats
            .aztec_by_type()
            .into_iter()
            .map(|(t, c)| (format!("aztec:{t}"), c.queued));
        ours.chain(aztec).collect()
    }

    /// Per epoch and job type: (epoch, type, queued, in progress, fulfilled,
    /// rejected); Aztec's jobs under `aztec:<TYPE>`.
    #[zbus(property)]
    fn jobs_by_epoch(&self) -> Vec<(u64, String, u64, u64, u64, u64)> {
        let stats = self.broker.stats();
        let mut out = Vec::new();
        for (epoch, per_type) in &stats.aztec {
            for (t, c) in per_type {
                out.push((
                    *epoch,
                    format!("aztec:{t}"),
                    c.queued,
                    c.in_progress,
                    c.fulfilled,
                    c.rejected,
                ));
            }
        }
        for (epoch, per_type) in &stats.epochs {
            for (t, c) in per_type {
                out.push((
                    *epoch,
                    t.name().to_string(),
                    c.queued,
                    c.in_progress,
                    c.fulfilled,
                    c.rejected,
                ));
            }
        }
        out
    }

    /// Jobs leased to agents now.
    #[zbus(property)]
    fn in_flight(&self) -> u64 {
        self.broker.stats().totals().in_progress
    }

    /// Jobs proven (in the epochs still kept).
    #[zbus(property)]
    fn completed(&self) -> u64 {
        self.broker.stats().totals().fulfilled
    }

    /// Jobs failed for good (in the epochs still kept).
    #[zbus(property)]
    fn failed(&self) -> u64 {
        self.broker.stats().totals().rejected
    }

    /// Leases that expired since the broker started.
    #[zbus(property)]
    fn timeouts(&self) -> u64 {
        self.broker.stats().timeouts
    }

    /// Lease timeout without heartbeat, in ms.
    #[zbus(property)]
    fn job_timeout_ms(&self) -> u64 {
        self.broker.stats().job_timeout_ms
    }

    #[zbus(property)]
    async fn set_job_timeout_ms(&mut self, value: u64) -> fdo::Result<()> {
        Policy::check_job_timeout_ms(value)
            .map_err(|e| fdo::Error::InvalidArgs(format!("JobTimeoutMs {e}")))?;
        let change = PolicyChange {
            job_timeout_ms: Some(value),
            ..PolicyChange::default()
        };
        self.broker
            .tune(change)
            .await
            .map_err(|e| fdo::Error::Failed(e.to_string()))?;
        tracing::info!("JobTimeoutMs set to {value} over D-Bus");
        Ok(())
    }

    /// Attempts a job gets before it fails for good (Aztec's maxRetries).
    #[zbus(property)]
    fn max_retries(&self) -> u32 {
        self.broker.stats().max_retries
    }

    #[zbus(property)]
    async fn set_max_retries(&mut self, value: u32) -> fdo::Result<()> {
        Policy::check_max_retries(value)
            .map_err(|e| fdo::Error::InvalidArgs(format!("MaxRetries {e}")))?;
        let change = PolicyChange {
            max_retries: Some(value),
            ..PolicyChange::default()
        };
        self.broker
            .tune(change)
            .await
            .map_err(|e| fdo::Error::Failed(e.to_string()))?;
        tracing::info!("MaxRetries set to {value} over D-Bus");
        Ok(())
    }

    /// Cancels every unsettled job of an epoch; returns how many.
    async fn cancel_epoch(&self, epoch: u64) -> fdo::Result<u64> {
        let n = self
            .broker
            .cancel_epoch(epoch)
            .await
            .map_err(|e| fdo::Error::Failed(e.to_string()))?;
        tracing::info!(
            EPOCH = epoch,
            "cancelled {n} jobs of epoch {epoch} over D-Bus"
        );
        Ok(n)
    }
}

/// Emits PropertiesChanged for the counters when they change, at most twice a second.
pub fn spawn_change_signals(conn: zbus::Connection, broker: Broker) {
    let mut rx = broker.watch_stats();
    tokio::spawn(async move {
        let Ok(iface) = conn
            .object_server()
            .interface::<_, BrokerBus>(OBJECT_PATH)
            .await
        else {
            return;
        };
        while rx.changed().await.is_ok() {
            let emitter: &SignalEmitter<'_> = iface.signal_emitter();
            let bus = iface.get().await;
            let _ = bus.queue_depth_changed(emitter).await;
            let _ = bus.in_flight_changed(emitter).await;
            let _ = bus.completed_changed(emitter).await;
            let _ = bus.failed_changed(emitter).await;
            let _ = bus.jobs_by_epoch_changed(emitter).await;
            drop(bus);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

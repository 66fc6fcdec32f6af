// zbus's interface macro generates undocumented helpers for the signals.
#![allow(missing_docs)]
//! The agent's D-Bus object: `org.aztec.ProverAgent1` at
//! `/org/aztec/ProverAgent`, owned as `org.aztec.ProverAgent.Instance<N>`.
//! Properties read and write the shared [`Control`]; writes take effect
//! without a restart and out-of-range values are refused with an error
//! naming the limit.

use std::sync::Arc;

use zbus::fdo;
use zbus::interface;
use zbus::object_server::SignalEmitter;

use crate::control::{Control, Event};
use crate::settings::parse_job_types;

/// The object path.
pub const OBJECT_PATH: &str = "/org/aztec/ProverAgent";

/// The bus name of instance `n`.
pub fn bus_name(instance: u32) -> String {
    format!("org.aztec.ProverAgent.Instance{instance}")
}

/// The D-Bus object.
pub struct AgentBus {
    control: Arc<Control>,
}

impl AgentBus {
    /// Wraps the shared state.
    pub fn new(control: Arc<Control>) -> AgentBus {
        AgentBus { control }
    }
}

#[interface(name = "org.aztec.ProverAgent1")]
impl AgentBus {
    /// Proving threads per agent (from the next job).
    #[zbus(property)]
    fn threads(&self) -> u32 {
        self.control.threads()
    }

    #[zbus(property)]
    fn set_threads(&mut self, n: u32) -> fdo::Result<()> {
        self.control
            .set_threads(n)
            .map_err(fdo::Error::InvalidArgs)?;
        tracing::info!("Threads set to {n} over D-Bus (from the next job)");
        Ok(())
    }

    /// Whether the agent takes no new jobs.
    #[zbus(property)]
    fn paused(&self) -> bool {
        self.control.paused()
    }

    #[zbus(property)]
    fn set_paused(&mut self, p: bool) {
        self.control.set_paused(p);
        tracing::info!("{} over D-Bus", if p { "paused" } else { "resumed" });
    }

    /// The backend in use (name or path as selected).
    #[zbus(property)]
    fn backend(&self) -> String {
        self.control.backend().spec.clone()
    }

    #[zbus(property)]
    fn set_backend(&mut self, spec: String) -> fdo::Result<()> {
        let loaded = self
            .control
            .select_backend(&spec)
            .map_err(fdo::Error::InvalidArgs)?;
        tracing::info!("backend {loaded} selected over D-Bus (from the next job)");
        Ok(())
    }

    /// Job types this agent takes (empty: all).
    #[zbus(property)]
    fn allowed_job_types(&self) -> Vec<String> {
        self.control
            .allowed()
            .iter()
            .map(|t| t.name().to_string())
            .collect()
    }

    #[zbus(property)]
    fn set_allowed_job_types(&mut self, types: Vec<String>) -> fdo::Result<()> {
        let parsed = parse_job_types(&types).map_err(fdo::Error::InvalidArgs)?;
        tracing::info!("allowed job types set to {types:?} over D-Bus");
        self.control.set_allowed(parsed);
        Ok(())
    }

    /// Idle poll interval, ms.
    #[zbus(property)]
    fn poll_interval_ms(&self) -> u64 {
        self.control.poll_interval_ms()
    }

    #[zbus(property)]
    fn set_poll_interval_ms(&mut self, ms: u64) -> fdo::Result<()> {
        self.control
            .set_poll_interval_ms(ms)
            .map_err(fdo::Error::InvalidArgs)
    }

    /// Jobs proven since start.
    #[zbus(property(emits_changed_signal = "false"))]
    fn jobs_completed(&self) -> u64 {
        self.control.completed()
    }

    /// Jobs failed since start.
    #[zbus(property(emits_changed_signal = "false"))]
    fn jobs_failed(&self) -> u64 {
        self.control.failed()
    }

    /// The jobs in progress (`TYPE id`, comma separated; empty when idle).
    #[zbus(property(emits_changed_signal = "false"))]
    fn current_job(&self) -> String {
        self.control.current().join(", ")
    }

    /// Stops taking new jobs (the current ones go on).
    fn pause(&self) {
        self.control.set_paused(true);
        tracing::info!("paused over D-Bus");
    }

    /// Takes jobs again.
    fn resume(&self) {
        self.control.set_paused(false);
        tracing::info!("resumed over D-Bus");
    }

    /// Stops taking new jobs and lets the current ones finish; returns how
    /// many are still in progress (poll `CurrentJob` until it is empty).
    fn drain(&self) -> u32 {
        self.control.set_paused(true);
        let n = self.control.current().len() as u32;
        tracing::info!("draining over D-Bus: {n} job(s) in progress");
        n
    }

    /// Loads a backend (name or path) for the next jobs; returns what was loaded.
    fn select_backend(&self, spec: String) -> fdo::Result<String> {
        let loaded = self
            .control
            .select_backend(&spec)
            .map_err(fdo::Error::InvalidArgs)?;
        tracing::info!("backend {loaded} selected over D-Bus (from the next job)");
        Ok(loaded)
    }

    /// A job was taken.
    #[zbus(signal)]
    async fn job_started(emitter: &SignalEmitter<'_>, id: &str, job_type: &str)
    -> zbus::Result<()>;

    /// A job ended (`ok`: proven and accepted), after `ms` milliseconds.
    #[zbus(signal)]
    async fn job_finished(
        emitter: &SignalEmitter<'_>,
        id: &str,
        job_type: &str,
        ok: bool,
        ms: u64,
    ) -> zbus::Result<()>;
}

/// Forwards worker events as D-Bus signals.
pub fn spawn_signals(conn: zbus::Connection, control: Arc<Control>) -> tokio::task::JoinHandle<()> {
    let mut rx = control.events.subscribe();
    tokio::spawn(async move {
        let Ok(emitter) = SignalEmitter::new(&conn, OBJECT_PATH) else {
            return;
        };
        loop {
            match rx.recv().await {
                Ok(Event::Started { id, job_type }) => {
                    let _ = AgentBus::job_started(&emitter, &id, job_type.name()).await;
                }
                Ok(Event::Finished {
                    id,
                    job_type,
                    ok,
                    ms,
                }) => {
                    let _ = AgentBus::job_finished(&emitter, &id, job_type.name(), ok, ms).await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    })
}

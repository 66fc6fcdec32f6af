//! The broker as a daemon: opens the store, serves JSON-RPC (on the socket
//! systemd passed, or one it binds), registers on D-Bus, reports readiness
//! and status to systemd, reloads on SIGHUP and drains on SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use aztec_prover_common::config::ConfigError;
use aztec_prover_common::dbus::DbusError;
use aztec_prover_common::logging::LogHandle;
use aztec_prover_common::service::ServiceSettings;
use aztec_prover_common::systemd::{self, ListenOrigin, Request, Signals};
use aztec_prover_protocol::{ProvingBrokerApiServer, QueueStats};

use crate::dbus::{BUS_NAME, BrokerBus, OBJECT_PATH, spawn_change_signals};
use crate::queue::BrokerError;
use crate::rpc::RpcAdapter;
use crate::settings::BrokerSettings;
use crate::writer::{Broker, PolicyChange, WriterOptions};

/// Why the broker could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store could not be opened or recovered.
    #[error("cannot open the broker store in {dir}: {error}")]
    Store {
        /// The data directory.
        dir: String,
        /// Why.
        error: BrokerError,
    },
    /// Another broker holds the data directory.
    #[error("{0}")]
    Locked(String),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The JSON-RPC server could not start.
    #[error("cannot start the JSON-RPC server: {0}")]
    Rpc(std::io::Error),
    /// D-Bus registration failed on a bus the operator asked for.
    #[error(transparent)]
    Dbus(#[from] DbusError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The metrics exporters could not start.
    #[error("cannot start metrics: {0}")]
    Metrics(String),
}

/// Re-reads the configuration (file, environment, original flags) on SIGHUP.
pub type Reloader =
    Box<dyn Fn() -> Result<(ServiceSettings, BrokerSettings), ConfigError> + Send + Sync>;

/// Everything the daemon needs from the command line.
pub struct Launch {
    /// Shared daemon settings.
    pub service: ServiceSettings,
    /// Whether the D-Bus choice was explicit (then failing to register is fatal).
    pub dbus_required: bool,
    /// Broker settings.
    pub broker: BrokerSettings,
    /// Log level control.
    pub log: LogHandle,
    /// Configuration reload.
    pub reload: Reloader,
}

/// A one-line summary for `systemctl status`.
pub fn summary(stats: &QueueStats) -> String {
    let t = stats.totals();
    let head = match stats.epochs.iter().next_back() {
        Some((epoch, per_type)) => {
            let mut c = aztec_prover_protocol::StateCounts::default();
            per_type.values().for_each(|x| c.add(x));
            let all = c.queued + c.in_progress + c.fulfilled + c.rejected;
            format!("epoch {epoch}: {}/{all} jobs proven; ", c.fulfilled)
        }
        None => String::new(),
    };
    format!(
        "{head}{} queued, {} in progress, {} failed",
        t.queued, t.in_progress, t.rejected
    )
}

/// Runs the broker until SIGTERM/SIGINT.
pub async fn run(launch: Launch) -> Result<(), DaemonError> {
    let mut signals = Signals::install().map_err(DaemonError::Signals)?;
    let settings = &launch.broker;
    let dir = settings.data_directory.clone();
    // Before the store is read: a second broker on this directory must not
    // recover (and so requeue) the first one's leases.
    let _lock = aztec_prover_common::dirlock::DirLock::acquire(&dir, "broker")
        .map_err(DaemonError::Locked)?;
    let metrics = aztec_prover_common::metrics::Metrics::start(&settings.metrics_config())
        .map_err(DaemonError::Metrics)?;
    let (broker, recovery, writer) = Broker::start(
        &dir,
        settings.map_size_bytes(),
        settings.policy(),
        WriterOptions {
            metrics: metrics.clone(),
            ..settings.writer_options()
        },
    )
    .map_err(|error| DaemonError::Store {
        dir: dir.display().to_string(),
        error,
    })?;

    {
        let b = broker.clone();
        crate::metrics::register_gauges(
            &metrics,
            broker.watch_stats(),
            settings.map_size_bytes() as u64,
            move || b.disk_bytes().ok(),
        );
    }
    let addr = SocketAddr::new(settings.listen_address, settings.port);
    let (listener, origin) = systemd::tcp_listener(settings.listen_address, settings.port)
        .map_err(|error| DaemonError::Listen { addr, error })?;
    let local = listener.local_addr().map_err(DaemonError::Rpc)?;
    // D-Bus first, then the server, then READY: a request that starts the
    // broker through its socket waits in the backlog until the broker is
    // whole, and READY follows its answer by moments, not by a bus handshake.
    let bus = aztec_prover_common::dbus::serve(
        &launch.service.dbus,
        launch.dbus_required,
        BUS_NAME,
        OBJECT_PATH,
        BrokerBus::new(broker.clone()),
    )
    .await?;
    if let Some(conn) = &bus {
        spawn_change_signals(conn.clone(), broker.clone());
    }
    // Our API and Aztec's share the memory for large answers.
    let answers = aztec_prover_common::front_door::AnswerBudget::new(
        (settings.answer_memory_mib as usize) << 20,
    );
    let mut module = RpcAdapter::with_budget(broker.clone(), answers.clone()).into_rpc();
    module
        .merge(crate::aztec_rpc::module(
            broker.clone(),
            settings.policy().aztec_version,
            answers,
        ))
        .map_err(|e| DaemonError::Rpc(std::io::Error::other(e)))?;
    let token = settings.auth_token.expose().trim().to_string();
    if token.is_empty() && !local.ip().is_loopback() {
        tracing::warn!(
            "the broker listens on {local} without PROVER_BROKER_AUTH_TOKEN: anyone who can reach it can enqueue, take, cancel or fail jobs; set a token, or keep the port behind a firewall"
        );
    }
    let server = aztec_prover_common::rpc::serve(
        listener,
        module,
        aztec_prover_common::rpc::ServeOptions {
            token: Some(token),
            metrics: metrics.clone(),
            status_400_for: crate::aztec_rpc::PREFIXES,
            connections: aztec_prover_common::connections::Limits {
                total: settings.max_connections,
                per_peer: settings.max_connections_per_peer,
            },
            ..aztec_prover_common::rpc::ServeOptions::new(
                settings.max_body_bytes,
                "aztec-prover broker: ok",
            )
        },
    )
    .map_err(DaemonError::Rpc)?;

    let how = match origin {
        ListenOrigin::SocketActivation => "socket from systemd",
        ListenOrigin::Bound => "bound",
    };
    tracing::info!(
        "broker ready on {local} ({how}); store {}; {} leased jobs returned to the queue",
        dir.display(),
        recovery.requeued
    );
    systemd::notify_ready_listening(local);
    let status_task = spawn_status_updates(broker.clone());
    {
        let b = broker.clone();
        systemd::spawn_watchdog(move || {
            let b = b.clone();
            async move { b.ping().await }
        });
    }

    let mut current = launch.broker.clone();
    loop {
        match signals.next().await {
            Request::Stop => break,
            Request::Reload => {
                systemd::notify_reloading();
                match (launch.reload)() {
                    Ok((service, fresh)) => {
                        launch.log.set_level(service.log_level);
                        let policy = fresh.policy();
                        if let Err(e) = broker.tune(PolicyChange::all(&policy)).await {
                            tracing::error!("reload failed: {e}");
                        }
                        for (name, changed) in [
                            (
                                "listen_address/port",
                                fresh.listen_address != current.listen_address
                                    || fresh.port != current.port,
                            ),
                            (
                                "data_directory",
                                fresh.data_directory != current.data_directory,
                            ),
                            (
                                "batch_size/poll_interval_ms",
                                fresh.batch_size != current.batch_size
                                    || fresh.poll_interval_ms != current.poll_interval_ms,
                            ),
                        ] {
                            if changed {
                                tracing::warn!("{name} changed: takes effect after a restart");
                            }
                        }
                        tracing::info!(
                            "configuration reloaded: log level {:?}, job timeout {} ms, {} retries, keeping {} epochs",
                            service.log_level,
                            policy.job_timeout_ms,
                            policy.max_retries,
                            policy.keep_epochs
                        );
                        current = fresh;
                    }
                    Err(e) => {
                        tracing::error!("reload refused, keeping the running configuration: {e}")
                    }
                }
                systemd::notify_ready();
            }
        }
    }

    systemd::notify_stopping("draining: finishing requests in flight");
    tracing::info!("stopping: finishing requests in flight");
    let _ = server.stop();
    server.stopped().await;
    broker.shutdown().await;
    status_task.abort();
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    drop(bus);
    tracing::info!("broker stopped; every acknowledged change is on disk");
    Ok(())
}

fn spawn_status_updates(broker: Broker) -> tokio::task::JoinHandle<()> {
    let mut rx = broker.watch_stats();
    tokio::spawn(async move {
        loop {
            let stats: Arc<QueueStats> = rx.borrow_and_update().clone();
            systemd::notify_status(&summary(&stats));
            if rx.changed().await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    })
}

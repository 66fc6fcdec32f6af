//! The agent as a daemon: places itself (NUMA), loads the backend, starts
//! its agents against the broker, registers on D-Bus, reports readiness and
//! status to systemd, and drains on SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use aztec_backend_abi::Backend;
use aztec_prover_common::dbus::DbusError;
use aztec_prover_common::service::ServiceSettings;
use aztec_prover_common::systemd::{self, Request, Signals};
use aztec_prover_protocol::ProvingBrokerApiClient;
use aztec_zk::Felt;

use crate::control::{BackendSlot, Control};
use crate::dbus::{AgentBus, OBJECT_PATH, bus_name, spawn_signals};
use crate::metrics::AgentMetrics;
use crate::numa::{Affinity, Topology, place};
use crate::prover::ProverCore;
use crate::settings::{AgentSettings, parse_job_types};
use crate::worker::{LoopTimings, Worker};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A setting is unusable (checked again here for values that depend on the machine).
    #[error("{0}")]
    Config(String),
    /// The backend could not be loaded (its message names the library).
    #[error(transparent)]
    Backend(#[from] aztec_backend_abi::BackendError),
    /// The keys directory is unusable.
    #[error("keys: {0}")]
    Keys(String),
    /// The broker client could not be built.
    #[error("broker client for {url}: {reason}")]
    Client {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// D-Bus registration failed on a bus the operator asked for.
    #[error(transparent)]
    Dbus(#[from] DbusError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Everything the daemon needs from the command line.
pub struct Launch {
    /// Shared daemon settings.
    pub service: ServiceSettings,
    /// Whether the D-Bus choice was explicit (then failing to register is fatal).
    pub dbus_required: bool,
    /// Agent settings.
    pub agent: AgentSettings,
}

/// Runs the agents until SIGTERM/SIGINT.
pub async fn run(launch: Launch) -> Result<(), DaemonError> {
    let mut signals = Signals::install().map_err(DaemonError::Signals)?;
    let s = &launch.agent;

    let affinity = Affinity::parse(&s.cpu_affinity).map_err(DaemonError::Config)?;
    let topo = Topology::read(&s.sysfs_root);
    let placement = Arc::new(place(&affinity, &topo, s.instance));
    // A NUMA node's CPUs come from sysfs; pinning to one this process may
    // not run on would abort its threads, so it is a configuration error.
    let allowed = crate::numa::allowed_cpus();
    if placement.pinned
        && let Some(bad) = placement.cpus.iter().find(|c| !allowed.contains(c))
    {
        return Err(DaemonError::Config(format!(
            "cpu_affinity: the placement {} has CPU {bad}, which this agent may not run on",
            placement.describe()
        )));
    }
    let agents = s.agent_count as usize;
    let max_threads = placement.cpus.len().max(1) as u32;
    let threads = if s.threads == 0 {
        (max_threads / s.agent_count).max(1)
    } else {
        s.threads
    };
    if threads > max_threads {
        return Err(DaemonError::Config(format!(
            "threads = {threads} is more than the {max_threads} CPUs of this agent's placement ({})",
            placement.describe()
        )));
    }
    tracing::info!(
        "instance {}: {} NUMA node(s); placement {}; {agents} agent(s) x {threads} thread(s)",
        s.instance,
        topo.nodes.len(),
        placement.describe()
    );

    let options = s.backend_options();
    let backend = Backend::load_with(&s.backend, &options)?;
    // Witness synthesis and the prover's glue run on this process's rayon
    // pool: one thread per CPU of the placement, pinned there.
    let pin: Vec<usize> = if placement.pinned {
        placement.cpus.iter().map(|c| *c as usize).collect()
    } else {
        vec![]
    };
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(max_threads as usize)
        .thread_name(|i| format!("agent-prove-{i}"))
        .start_handler(move |i| {
            if !pin.is_empty() {
                core_affinity::set_for_current(core_affinity::CoreId {
                    id: pin[i % pin.len()],
                });
            }
        })
        .build_global();
    if let Err(e) = built {
        tracing::debug!("rayon's global pool was already built: {e}");
    }
    tracing::info!(
        "backend {} ({}) loaded",
        backend.info().name,
        backend.info().path.display()
    );

    let prover_id = Felt::from_hex(&s.prover_id)
        .ok_or_else(|| DaemonError::Config("prover_id is not a hex number".into()))?;
    let core = Arc::new(
        ProverCore::new(s.keys_directory.clone(), s.real_proofs, prover_id)
            .map_err(DaemonError::Keys)?,
    );
    if !s.real_proofs {
        tracing::warn!("PROVER_REAL_PROOFS=false: checking constraints only, no proofs are made");
    }
    let allowed = parse_job_types(&s.proof_types).map_err(DaemonError::Config)?;
    let control = Arc::new(Control::new(
        agents,
        threads,
        max_threads,
        s.poll_interval_ms,
        allowed,
        BackendSlot {
            spec: s.backend.clone(),
            backend,
        },
        options,
    ));
    control
        .configure_backend(&placement)
        .map_err(DaemonError::Config)?;

    let client = aztec_prover_common::rpc::client_with_token(
        &s.broker_url,
        Duration::from_secs(60),
        256 << 20,
        Some(s.broker_auth_token.expose().trim()),
    )
    .map_err(|e| DaemonError::Client {
        url: s.broker_url.clone(),
        reason: e.to_string(),
    })?;
    // A look at the broker for the log; a slow one must not hold the start
    // (systemd's start timeout): the workers retry with backoff anyway.
    match tokio::time::timeout(Duration::from_secs(5), client.get_queue_stats()).await {
        Ok(Ok(_)) => tracing::info!("broker at {} reached", s.broker_url),
        Ok(Err(e)) => tracing::warn!(
            "broker at {} not reachable yet ({e}); the agents retry with backoff",
            s.broker_url
        ),
        Err(_) => tracing::warn!(
            "broker at {} did not answer within 5 s; the agents retry with backoff",
            s.broker_url
        ),
    }

    let bus = aztec_prover_common::dbus::serve(
        &launch.service.dbus,
        launch.dbus_required,
        &bus_name(s.instance),
        OBJECT_PATH,
        AgentBus::new(control.clone()),
    )
    .await?;
    let signal_task = bus
        .as_ref()
        .map(|c| spawn_signals(c.clone(), control.clone()));

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "agent".into());
    let timings = LoopTimings {
        heartbeat: Duration::from_millis(s.heartbeat_interval_ms),
        stop_timeout: Duration::from_millis(s.stop_timeout_ms),
    };
    let metrics = aztec_prover_common::metrics::Metrics::start(&s.metrics_config())
        .map_err(DaemonError::Config)?;
    let agent_metrics = AgentMetrics::new(&metrics, &control);
    let metrics_server = serve_metrics(s, &metrics);
    let mut workers = Vec::with_capacity(agents);
    for index in 0..agents {
        let w = Worker {
            index,
            name: format!("{host}/{}/{}", s.instance, index + 1),
            control: control.clone(),
            core: core.clone(),
            client: client.clone(),
            url: s.broker_url.clone(),
            placement: placement.clone(),
            timings,
            metrics: agent_metrics.clone(),
        };
        workers.push(tokio::spawn(w.run()));
    }

    systemd::notify_ready();
    systemd::notify_status(&control.status_line());
    let status_task = {
        let c = control.clone();
        tokio::spawn(async move {
            let mut rx = c.events.subscribe();
            loop {
                systemd::notify_status(&c.status_line());
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = rx.recv().await {
                    return;
                }
            }
        })
    };
    {
        let c = control.clone();
        systemd::spawn_watchdog(move || {
            let c = c.clone();
            async move { !c.stopping() || !c.current().is_empty() }
        });
    }

    loop {
        match signals.next().await {
            Request::Stop => break,
            Request::Reload => tracing::info!(
                "SIGHUP: the agent is tuned over D-Bus (busctl set-property); nothing to reload"
            ),
        }
    }
    let in_progress = control.current().len();
    systemd::notify_stopping(&format!("draining: {in_progress} job(s) in progress"));
    tracing::info!(
        "stopping: {in_progress} job(s) in progress finish or are handed back within {} ms",
        s.stop_timeout_ms
    );
    control.stop();
    for w in workers {
        let _ = w.await;
    }
    status_task.abort();
    if let Some(t) = signal_task {
        t.abort();
    }
    drop(bus);
    if let Some(server) = metrics_server {
        let _ = server.stop();
    }
    tracing::info!(
        "agent stopped: {} proven, {} failed",
        control.completed(),
        control.failed()
    );
    Ok(())
}

/// Serves `GET /metrics` on the metrics port plus the instance number
/// (none when the port is 0). A port that cannot be bound is logged and
/// the agent proves on without it: metrics must not cost proofs.
fn serve_metrics(
    s: &AgentSettings,
    metrics: &aztec_prover_common::metrics::Metrics,
) -> Option<jsonrpsee::server::ServerHandle> {
    if s.metrics_port == 0 {
        return None;
    }
    let port = u32::from(s.metrics_port) + s.instance;
    let Ok(port) = u16::try_from(port) else {
        tracing::error!(
            "metrics_port {} + instance {} is past 65535: no metrics endpoint",
            s.metrics_port,
            s.instance
        );
        return None;
    };
    let addr = std::net::SocketAddr::new(s.metrics_host, port);
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(
                "cannot serve metrics on {addr}: {e}; proving goes on without the endpoint (PROVER_AGENT_METRICS_PORT sets the base port, 0 turns it off)"
            );
            return None;
        }
    };
    let served = aztec_prover_common::rpc::serve(
        listener,
        jsonrpsee::RpcModule::new(()),
        aztec_prover_common::rpc::ServeOptions {
            metrics: metrics.clone(),
            ..aztec_prover_common::rpc::ServeOptions::new(1 << 16, "aztec-prover agent: ok")
        },
    );
    match served {
        Ok(h) => {
            tracing::info!("metrics on http://{addr}/metrics");
            Some(h)
        }
        Err(e) => {
            tracing::error!("cannot serve metrics on {addr}: {e}");
            None
        }
    }
}

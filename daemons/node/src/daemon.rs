//! `aztec-prover node`: the node engine ([`crate::engine`]) as a systemd
//! service. It builds the engine's parts from its settings, waits for L1
//! rather than failing when L1 is down at start, reports READY once
//! configuration and keys are good (then STATUS shows the wait for L1 and
//! what the engine does), pings the watchdog while the engine is healthy,
//! and stops on SIGTERM. Its JSON-RPC API (on `AZTEC_PORT` or a socket from
//! systemd) and its D-Bus object report what it is doing from the engine's
//! [`StatusBoard`].

use std::time::Duration;

use crate::engine::{self, EngineEvent, LateProbe, ProgressLog};
use crate::monitor::{Monitor, MonitorConfig};
use crate::orchestrator::Checking;
use crate::pipeline::Pipeline;
use crate::quotes::QuoteProvider;
use crate::settings::NodeSettings;
use crate::status::StatusBoard;
use crate::world_state::WorldState;
use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use aztec_prover_common::dbus::DbusError;
use aztec_prover_common::service::ServiceSettings;
use aztec_prover_common::systemd::{self, ListenOrigin, Request, Signals};
use aztec_prover_l1::chain::{self, Deployment};
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_l1::{L1, L1Error};

/// Why the node cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Settings that cannot work together or cannot be parsed.
    #[error("{0}")]
    Config(String),
    /// Signals could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    /// The JSON-RPC API could not listen.
    #[error("node JSON-RPC API on {addr}: {error}")]
    Listen {
        /// Where.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
    /// The world state cannot be opened.
    #[error(transparent)]
    WorldState(#[from] crate::world_state::WorldStateError),
    /// D-Bus registration failed (only when a bus was asked for).
    #[error(transparent)]
    Dbus(Box<DbusError>),
}

/// What the node is started with.
pub struct Launch {
    /// Its settings.
    pub node: NodeSettings,
    /// Logging and D-Bus.
    pub service: ServiceSettings,
    /// Whether D-Bus was asked for explicitly (then failing to register is fatal).
    pub dbus_required: bool,
}

/// Serves the JSON-RPC API on the socket systemd passed, or on `AZTEC_PORT`
/// when set; none otherwise.
fn serve_api(
    s: &NodeSettings,
    state: &StatusBoard,
    metrics: &aztec_prover_common::metrics::Metrics,
) -> Result<Option<jsonrpsee::server::ServerHandle>, DaemonError> {
    let listen_error = |addr: String| move |error| DaemonError::Listen { addr, error };
    let (listener, origin) = match s.rpc_port {
        Some(port) => systemd::tcp_listener(s.rpc_listen_address, port).map_err(listen_error(
            std::net::SocketAddr::new(s.rpc_listen_address, port).to_string(),
        ))?,
        None => match systemd::passed_tcp_listener()
            .map_err(listen_error("the socket from systemd".into()))?
        {
            Some(l) => (l, ListenOrigin::SocketActivation),
            None => return Ok(None),
        },
    };
    let how = match origin {
        ListenOrigin::SocketActivation => "socket from systemd",
        ListenOrigin::Bound => "bound",
    };
    let local = listener
        .local_addr()
        .map_err(listen_error("the API socket".into()))?;
    if !local.ip().is_loopback() {
        tracing::warn!(
            "the node's read-only API listens on {local}, beyond loopback: anyone who can reach it sees the node's status"
        );
    }
    let handle = aztec_prover_common::rpc::serve(
        listener,
        crate::api::module(state.clone()).map_err(|e| DaemonError::Listen {
            addr: local.to_string(),
            error: std::io::Error::other(e),
        })?,
        aztec_prover_common::rpc::ServeOptions {
            metrics: metrics.clone(),
            ..aztec_prover_common::rpc::ServeOptions::new(1 << 20, "aztec-prover node: ok")
        },
    )
    .map_err(listen_error(local.to_string()))?;
    tracing::info!(
        "node API on http://{local} ({how}): {}, {}",
        crate::api::GET_STATUS,
        crate::api::GET_JOBS
    );
    Ok(Some(handle))
}

/// Shows `text` in `systemctl status` and in the node's API.
fn status(state: &StatusBoard, text: &str) {
    state.set_status(text);
    systemd::notify_status(text);
}

/// Checks the settings that only make sense together and builds the pieces.
pub fn prepare(
    s: &NodeSettings,
) -> Result<(PrivateKeySigner, Address, QuoteProvider, Option<RemoteNode>), DaemonError> {
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
    // With P2P on, quotes are gossiped: the coordination URL is the
    // guide's fallback "only used if P2P_ENABLED is false".
    let remote = if s.p2p_enabled {
        if !s.coordination_node_url.trim().is_empty() {
            tracing::info!(
                "P2P is on: quotes are gossiped, not sent to PROVER_COORDINATION_NODE_URL"
            );
        }
        None
    } else if s.coordination_node_url.trim().is_empty() {
        return Err(DaemonError::Config(
            "no way to send quotes: set P2P_ENABLED=true (with BOOT_NODE_URL) or PROVER_COORDINATION_NODE_URL"
                .into(),
        ));
    } else {
        Some(
            RemoteNode::new(s.coordination_node_url.trim(), Duration::from_secs(10))
                .map_err(DaemonError::Config)?,
        )
    };
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

/// Reads the rollup's contracts through `provider` and checks the chain.
async fn connect(
    s: &NodeSettings,
    provider: &DynProvider,
    signer: &PrivateKeySigner,
    rollup: Address,
) -> Result<L1, L1Error> {
    let provider = provider.clone();
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
            "L1 is chain {}, L1_CHAIN_ID says {}",
            l1.chain_id, s.l1_chain_id
        )));
    }
    Ok(l1)
}

/// The proving side: world state, broker client, tx provider, key checks.
struct ProvingSetup {
    /// One node per data directory, for the life of the process.
    _lock: aztec_prover_common::dirlock::DirLock,
    world: WorldState,
    checking: Checking,
    remote: Option<RemoteNode>,
    broker: jsonrpsee::http_client::HttpClient,
}

fn proving_setup(s: &NodeSettings) -> Result<ProvingSetup, DaemonError> {
    let params = aztec_zk::keys::read_params(&s.keys_directory)
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    let checking =
        engine::checking(&s.keys_directory, s.real_proofs, &params).map_err(DaemonError::Config)?;
    let tx_url = if s.tx_provider_url.trim().is_empty() {
        s.coordination_node_url.trim()
    } else {
        s.tx_provider_url.trim()
    };
    let remote = if tx_url.is_empty() {
        if !s.p2p_enabled {
            return Err(DaemonError::Config(
                "no way to fetch txs: set AZTEC_NODE_URL (or PROVER_COORDINATION_NODE_URL), or P2P_ENABLED=true"
                    .into(),
            ));
        }
        None
    } else {
        Some(RemoteNode::new(tx_url, Duration::from_secs(30)).map_err(DaemonError::Config)?)
    };
    let broker = aztec_prover_common::rpc::client_with_token(
        &s.broker_url,
        Duration::from_secs(30),
        64 << 20,
        Some(s.broker_auth_token.expose().trim()),
    )
    .map_err(|e| DaemonError::Config(format!("PROVER_BROKER_HOST {:?}: {e}", s.broker_url)))?;
    let lock = aztec_prover_common::dirlock::DirLock::acquire(&s.data_directory, "node")
        .map_err(DaemonError::Config)?;
    let world = WorldState::open(&s.data_directory.join("world-state"), &params)?;
    tracing::info!(
        "world state at block {} in {}",
        world.block(),
        world.dir().display()
    );
    Ok(ProvingSetup {
        _lock: lock,
        world,
        checking,
        remote,
        broker,
    })
}

/// Runs the node until SIGTERM.
pub async fn run(launch: Launch) -> Result<(), DaemonError> {
    let s = launch.node;
    let (signer, rollup, quotes, remote) = prepare(&s)?;
    let setup = proving_setup(&s)?;
    let p2p = match s.p2p_options().map_err(DaemonError::Config)? {
        None => None,
        Some(opts) => Some(
            crate::p2p::start(&opts, s.l1_chain_id, rollup)
                .await
                .map_err(DaemonError::Config)?,
        ),
    };
    let mut signals = Signals::install().map_err(DaemonError::Signals)?;
    let state = StatusBoard::new();
    let shown = p2p.as_ref().map(|p| p.show_in(state.clone()));
    let _bus = aztec_prover_common::dbus::serve(
        &launch.service.dbus,
        launch.dbus_required,
        crate::dbus::BUS_NAME,
        crate::dbus::OBJECT_PATH,
        crate::dbus::NodeBus::new(state.clone()),
    )
    .await
    .map_err(|e| DaemonError::Dbus(Box::new(e)))?;
    // The API serves once D-Bus is up, just before READY (as the broker).
    let metrics = aztec_prover_common::metrics::Metrics::start(&s.metrics_config())
        .map_err(DaemonError::Config)?;
    let api = serve_api(&s, &state, &metrics)?;
    // The node is ready once its configuration and keys are good: waiting for
    // an L1 that is down is its normal work, shown in STATUS, not a failed
    // start (boot would otherwise hang on a remote L1 node). The watchdog
    // asks the engine once it runs.
    systemd::notify_ready();
    let probe = LateProbe::default();
    let p = probe.clone();
    systemd::spawn_watchdog(move || {
        let healthy = p.healthy();
        async move { healthy }
    });

    // One client over every listed endpoint, for the life of the process:
    // their health is kept across requests and shown in the status.
    let (provider, endpoints) = chain::connect_all(
        &s.ethereum_hosts,
        Some(signer.clone()),
        Duration::from_secs(10),
    )
    .map_err(|e| DaemonError::Config(format!("ETHEREUM_HOSTS: {e}")))?;
    state.set_l1_endpoints(endpoints);
    // L1 may not be up yet: wait for it, never give up.
    let mut pause = Duration::from_millis(s.polling_interval_ms);
    let l1 = loop {
        match connect(&s, &provider, &signer, rollup).await {
            Ok(l1) => break l1,
            Err(L1Error::Other(e)) => return Err(DaemonError::Config(e)),
            Err(e) => {
                status(&state, &format!("waiting for L1: {e}"));
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
        coordination: match (&p2p, remote) {
            (Some(p), _) => crate::quotes::QuoteOutbox::Gossip(p.peers.clone()),
            (None, Some(r)) => r.into(),
            (None, None) => {
                return Err(DaemonError::Config(
                    "no way to send quotes: P2P is off and there is no coordination node".into(),
                ));
            }
        },
        minimum_escrow: U256::from(s.minimum_escrow_amount),
        target_escrow: U256::from(s.target_escrow_amount),
        polling_interval: Duration::from_millis(s.polling_interval_ms),
    };
    let m = loop {
        match Monitor::new(l1.clone(), cfg.clone()).await {
            Ok(m) => break m,
            Err(e) => {
                tracing::warn!("reading the rollup's parameters: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    r = signals.next() => if r == Request::Stop { return Ok(()) },
                }
            }
        }
    };
    let rc = m.rollup_config();
    state.connected(l1.account.to_string(), rollup.to_string(), l1.chain_id);
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
    let follower = p2p
        .as_ref()
        .map(|p| p.watch_l1(l1.clone(), rc, Duration::from_millis(s.polling_interval_ms)));
    let txs = crate::txs::TxSource {
        peers: p2p.as_ref().map(|p| p.peers.clone()),
        http: setup.remote,
        cache: p2p.as_ref().map(|p| p.txs.clone()).unwrap_or_default(),
    };
    let pipeline = Pipeline::new(
        l1.clone(),
        txs,
        setup.broker,
        setup.world,
        setup.checking,
        rc,
        Duration::from_millis(s.epoch_proving_timeout_ms),
    )
    .with_budget(crate::publisher::TxBudget {
        gas: s.publisher_max_tx_gas,
        calldata_bytes: s.publisher_max_tx_bytes,
    });
    let ahead = s
        .prove_ahead
        .then(|| Duration::from_millis(s.polling_interval_ms));
    let node = engine::start_with(m, pipeline, state.clone(), ProgressLog::Lines, ahead);
    probe.set(node.probe());
    let recorder = crate::metrics::NodeMetrics::new(&metrics, &state).spawn(node.subscribe());
    let mut events = node.subscribe();
    status(&state, "watching L1");
    loop {
        tokio::select! {
            r = signals.next() => if r == Request::Stop { break },
            e = events.recv() => match e {
                // systemd's STATUS follows the engine's status line.
                Ok(EngineEvent::Proving { .. } | EngineEvent::Proven(_) | EngineEvent::Failed { .. }) => {
                    systemd::notify_status(&state.snapshot().status);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    systemd::notify_stopping("stopping");
    node.stop().await;
    recorder.abort();
    for task in [follower, shown].into_iter().flatten() {
        task.abort();
    }
    if let Some(api) = api {
        let _ = api.stop();
    }
    tracing::info!("node stopped");
    Ok(())
}

//! `aztec-prover devnet`: the whole stack on one machine. anvil with the
//! contracts and a sequencer (in process), a broker and an agent (child
//! processes of this binary, as systemd would run them), and a prover node
//! (in process: the node daemon's engine, [`aztec_prover_node::engine`])
//! that quotes, gets claimed, proves each claimed epoch through the broker
//! and publishes it to L1. Stops after `--epochs` proven epochs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use anyhow::Context as _;
use aztec_prover_common::child::ChildDaemon;
use aztec_prover_devnet::{Devnet, DevnetOptions};
use aztec_prover_node::engine::{self, EngineEvent, ProgressLog};
use aztec_prover_node::orchestrator::Progress;
use aztec_prover_node::pipeline::Pipeline;
use aztec_prover_node::status::StatusBoard;
use aztec_prover_node::{Monitor, MonitorConfig, NodeEvent};
use aztec_zk::{CircuitId, RollupParams};
use indicatif::{ProgressBar, ProgressStyle};

/// What the run does (`devnet.p2p`: the node on the P2P network).
pub struct RunOptions {
    /// The devnet's shape.
    pub devnet: DevnetOptions,
    /// Epochs to prove before stopping (0: until Ctrl-C).
    pub epochs: u64,
    /// Real proofs (false: simulation and the mock verifier).
    pub real_proofs: bool,
    /// Agents.
    pub agents: u32,
    /// Where keys are kept (generated from a public seed when missing).
    pub keys_dir: PathBuf,
    /// Most gas one L1 transaction of an epoch proof may use.
    pub max_tx_gas: u64,
    /// Prove each block as soon as it is on L1, before the claim.
    pub prove_ahead: bool,
}

/// The seed the devnet's keys come from: public, so the keys are INSECURE.
const DEVNET_SEED: &str = "aztec-prover devnet";

/// The devnet's keys in `dir`, generated from its public seed when missing.
pub(crate) fn ensure_keys(dir: &std::path::Path, params: &RollupParams) -> anyhow::Result<()> {
    let have = CircuitId::ALL
        .iter()
        .all(|c| aztec_zk::keys::load_verifying_key(dir, *c, params).is_ok());
    if have {
        eprintln!(
            "keys: {} (derived from the public seed {DEVNET_SEED:?}: INSECURE, devnet only)",
            dir.display()
        );
        return Ok(());
    }
    eprintln!(
        "keys: generating into {} from the public seed {DEVNET_SEED:?}",
        dir.display()
    );
    eprintln!(
        "WARNING: these keys are INSECURE (anyone can derive them and forge proofs): devnet only"
    );
    aztec_zk::keys::generate_dir(
        dir,
        params,
        Some(DEVNET_SEED),
        &CircuitId::ALL,
        |c, g, t| {
            eprintln!(
                "  {:<20} {:>8} constraints {:>6.1} s",
                c.name(),
                g.matrices.num_constraints,
                t.as_secs_f64()
            );
        },
    )
    .map_err(|e| anyhow::anyhow!(e))
}

fn bar(total: usize) -> ProgressBar {
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("  [{elapsed_precise}] {bar:30} {pos}/{len} jobs  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

fn describe(p: &Progress) -> String {
    p.per_circuit
        .iter()
        .filter(|(_, _, total)| *total > 0)
        .map(|(c, done, total)| format!("{} {done}/{total}", c.name()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the whole stack until `epochs` epochs are proven on L1.
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let params = opts.devnet.params.clone();
    let exe = std::env::current_exe().context("finding this binary")?;
    let work = tempfile::tempdir().context("a work directory")?;
    if opts.real_proofs {
        std::fs::create_dir_all(&opts.keys_dir)
            .with_context(|| format!("creating {}", opts.keys_dir.display()))?;
        let (dir, p) = (opts.keys_dir.clone(), params.clone());
        tokio::task::spawn_blocking(move || ensure_keys(&dir, &p)).await??;
    }
    // Simulating agents need only the sizes (`params.json`), no keys.
    let agent_keys = if opts.real_proofs {
        opts.keys_dir.clone()
    } else {
        let dir = work.path().join("sizes");
        aztec_zk::keys::write_params(&dir, &params).map_err(|e| anyhow::anyhow!(e))?;
        dir
    };
    let mut devnet_opts = opts.devnet;
    devnet_opts.keys_dir = opts.real_proofs.then(|| opts.keys_dir.clone());
    let devnet = Devnet::start(devnet_opts).await?;
    let prover = devnet.provers[0].clone();
    eprintln!(
        "L1: anvil at {}, rollup {} ({} verifier)",
        devnet.l1_url(),
        devnet.deployment.rollup,
        if opts.real_proofs {
            "Groth16 batch"
        } else {
            "mock"
        }
    );

    // The broker and the agents, as their own processes.
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(["broker", "--config", "/dev/null", "--dbus", "none"])
        .args([
            "--proverBroker.proverBrokerListenAddress",
            "127.0.0.1",
            "--proverBroker.proverBrokerPort",
            "0",
        ])
        .arg("--proverBroker.dataDirectory")
        .arg(work.path().join("broker"))
        // A job whose agent died goes back to the queue after 10 s (agents
        // heartbeat every 2 s while they prove).
        .args(["--proverBroker.proverBrokerJobTimeoutMs", "10000"]);
    let broker = ChildDaemon::spawn(
        "broker",
        cmd,
        work.path(),
        &work.path().join("broker.log"),
        Duration::from_secs(60),
    )?;
    let broker_url = format!(
        "http://{}",
        broker
            .addr
            .context("the broker did not say where it listens")?
    );
    let mut agents = Vec::new();
    let mut metrics_urls = vec![("broker".to_string(), format!("{broker_url}/metrics"))];
    for i in 1..=opts.agents {
        // Each agent serves GET /metrics on base + instance: a base that
        // puts it on a port free now.
        let port = free_port()?;
        metrics_urls.push((
            format!("agent{i}"),
            format!("http://127.0.0.1:{port}/metrics"),
        ));
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "agent",
            "--config",
            "/dev/null",
            "--dbus",
            "none",
            "--instance",
            &i.to_string(),
        ])
        .env("PROVER_BROKER_HOST", &broker_url)
        .env("PROVER_AGENT_CPU_AFFINITY", "off")
        .env(
            "PROVER_AGENT_METRICS_PORT",
            (u32::from(port) - i).to_string(),
        )
        .env("PROVER_AGENT_METRICS_HOST", "127.0.0.1")
        .env("PROVER_AGENT_POLL_INTERVAL_MS", "100")
        .env("PROVER_AGENT_HEARTBEAT_INTERVAL_MS", "2000")
        .env("PROVER_REAL_PROOFS", opts.real_proofs.to_string())
        .env("PROVER_KEYS_DIRECTORY", &agent_keys)
        .env("PROVER_ID", format!("{}", prover.address()))
        // Their logs go to files, read back for the busy share below.
        .env("LOG_LEVEL", "info");
        let name = format!("agent{i}");
        agents.push(ChildDaemon::spawn(
            &name,
            cmd,
            work.path(),
            &work.path().join(format!("{name}.log")),
            Duration::from_secs(120),
        )?);
    }
    eprintln!(
        "broker at {broker_url}, {} agent(s); logs in {}",
        agents.len(),
        work.path().display()
    );

    // The node.
    let (l1, l1_endpoints) = devnet.watched_client(&prover).await?;
    let remote =
        aztec_prover_l1::remote::RemoteNode::new(&devnet.node_url, Duration::from_secs(10))
            .map_err(|e| anyhow::anyhow!(e))?;
    // With --p2p the node joins through the devnet's boot node, gossips its
    // quotes and fetches txs from peers only (no HTTP), as a node with
    // P2P_ENABLED=true and no AZTEC_NODE_URL does.
    let p2p = match &devnet.boot_node {
        None => None,
        Some(boot) => {
            let p = aztec_prover_node::p2p::start(
                &aztec_prover_node::p2p::P2pOptions {
                    data_dir: work.path().join("node"),
                    ip: std::net::Ipv4Addr::LOCALHOST.into(),
                    port: 0,
                    boot_nodes: vec![
                        aztec_prover_node::p2p::boot_node(boot).map_err(|e| anyhow::anyhow!(e))?,
                    ],
                    max_peers: 100,
                },
                devnet.chain_id(),
                devnet.deployment.rollup,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
            eprintln!(
                "P2P: boot node {boot}; the node is {}: quotes by gossip, txs from peers",
                p.peers.peer_id()
            );
            Some(p)
        }
    };
    let (outbox, txs): (
        aztec_prover_node::quotes::QuoteOutbox,
        aztec_prover_node::txs::TxSource,
    ) = match &p2p {
        Some(p) => (
            aztec_prover_node::quotes::QuoteOutbox::Gossip(p.peers.clone()),
            aztec_prover_node::txs::TxSource {
                peers: Some(p.peers.clone()),
                http: None,
                cache: p.txs.clone(),
            },
        ),
        None => (remote.clone().into(), remote.into()),
    };
    let monitor = Monitor::new(
        l1.clone(),
        MonitorConfig {
            signer: prover.clone(),
            quotes: aztec_prover_node::quotes::QuoteProvider::Fixed {
                basis_point_fee: Some(1_000),
                bond_amount: Some(U256::from(1_000u64)),
            },
            coordination: outbox,
            minimum_escrow: U256::from(1_000u64),
            target_escrow: U256::from(10_000u64),
            polling_interval: Duration::from_millis(500),
        },
    )
    .await?;
    let config = monitor.rollup_config();
    let checking = engine::checking(&opts.keys_dir, opts.real_proofs, &params)
        .map_err(|e| anyhow::anyhow!(e))?;
    let broker_client =
        aztec_prover_common::rpc::client(&broker_url, Duration::from_secs(30), 64 << 20)?;
    let window = Duration::from_secs(config.slot_duration * config.proof_window_slots);
    let world = aztec_prover_node::world_state::WorldState::open(
        &work.path().join("node").join("world-state"),
        &params,
    )?;
    let pipeline = Pipeline::new(
        l1.clone(),
        txs,
        broker_client,
        world,
        checking,
        config,
        window,
    )
    .with_budget(aztec_prover_node::publisher::TxBudget {
        gas: opts.max_tx_gas,
        ..Default::default()
    });
    eprintln!(
        "slots of {} s, epochs of {} slots; proving {} epoch(s) with {}",
        config.slot_duration,
        config.epoch_duration,
        if opts.epochs == 0 {
            "every".to_string()
        } else {
            opts.epochs.to_string()
        },
        if opts.real_proofs {
            "real Groth16 proofs"
        } else {
            "simulation (PROVER_REAL_PROOFS=false)"
        }
    );
    let opts_prove_ahead = opts.prove_ahead;
    let ahead = opts.prove_ahead.then(|| Duration::from_millis(500));
    let status = StatusBoard::new();
    status.set_l1_endpoints(l1_endpoints);
    let follower = p2p.as_ref().map(|p| {
        (
            p.watch_l1(l1.clone(), config, Duration::from_millis(500)),
            p.show_in(status.clone()),
        )
    });
    let node = engine::start_with(monitor, pipeline, status.clone(), ProgressLog::Quiet, ahead);
    let mut events = node.subscribe();
    // The node's metrics and API, as the node daemon serves them.
    let node_metrics = aztec_prover_common::metrics::Metrics::start(
        &aztec_prover_common::metrics::MetricsConfig {
            service: "aztec-prover-node".into(),
            ..Default::default()
        },
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let recorder = aztec_prover_node::metrics::NodeMetrics::new(&node_metrics, &status)
        .spawn(node.subscribe());
    let api_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let api_addr = api_listener.local_addr()?;
    let node_api = aztec_prover_common::rpc::serve(
        api_listener,
        aztec_prover_node::api::module(status.clone()).map_err(|e| anyhow::anyhow!(e))?,
        aztec_prover_common::rpc::ServeOptions {
            metrics: node_metrics.clone(),
            ..aztec_prover_common::rpc::ServeOptions::new(1 << 20, "aztec-prover node: ok")
        },
    )?;
    metrics_urls.push(("node".to_string(), format!("http://{api_addr}/metrics")));
    for (who, url) in &metrics_urls {
        eprintln!("metrics: {who} at {url}");
    }

    let mut signals = aztec_prover_common::systemd::Signals::install()?;
    let mut reports = Vec::new();
    let mut failure = None;
    let mut pb: Option<ProgressBar> = None;
    while opts.epochs == 0 || (reports.len() as u64) < opts.epochs {
        let ev = tokio::select! {
            r = signals.next() => if r == aztec_prover_common::systemd::Request::Stop { break } else { continue },
            e = events.recv() => e,
        };
        match ev {
            Ok(EngineEvent::Monitor(NodeEvent::QuoteSent { epoch, terms })) => {
                eprintln!(
                    "epoch {epoch}: quoted {} bps, bond {}",
                    terms.basis_point_fee, terms.bond_amount
                );
            }
            Ok(EngineEvent::Proving {
                epoch,
                first_block,
                last_block,
            }) => {
                eprintln!(
                    "epoch {epoch}: claimed with our quote; proving blocks {first_block}..={last_block}"
                );
            }
            Ok(EngineEvent::Progress { progress: p, .. }) => {
                let b = pb.get_or_insert_with(|| bar(p.total));
                b.set_position(p.proven as u64);
                b.set_message(describe(&p));
            }
            Ok(EngineEvent::Proven(rep)) => {
                if let Some(b) = pb.take() {
                    b.finish_and_clear();
                }
                eprintln!(
                    "epoch {}: PROVEN on L1 — blocks {}..={}, {} txs, {} proofs ({} enqueued ahead of the claim) verified in {} L1 transaction(s): {} gas ({} per proof, the most in one {}), {} calldata bytes (the most in one {}), {:.1} s from claim to L1",
                    rep.epoch,
                    rep.blocks.0,
                    rep.blocks.1,
                    rep.txs,
                    rep.proofs,
                    rep.ahead,
                    rep.l1.txs,
                    rep.gas,
                    rep.gas / rep.proofs.max(1) as u64,
                    rep.l1.max_gas,
                    rep.l1.calldata_bytes,
                    rep.l1.max_calldata_bytes,
                    rep.took.as_secs_f64()
                );
                reports.push(rep);
            }
            Ok(EngineEvent::Failed { epoch, error }) => {
                if let Some(b) = pb.take() {
                    b.finish_and_clear();
                }
                eprintln!("epoch {epoch}: FAILED: {error}");
                failure = Some(error);
                break;
            }
            Ok(EngineEvent::Monitor(_))
            | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    // The summary reads the daemons' own counters, as Prometheus would; the
    // recorder takes the engine's last events first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let node_text = node_metrics.render();
    let mut agents_text = String::new();
    for (who, url) in &metrics_urls {
        let addr = url
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix("/metrics"))
            .and_then(|a| a.parse().ok());
        if let (true, Some(addr)) = (who.starts_with("agent"), addr) {
            match crate::scrape::scrape(addr).await {
                Ok(t) => agents_text.push_str(&t),
                Err(e) => eprintln!("cannot read {who}'s metrics at {url}: {e}"),
            }
        }
    }
    node.stop().await;
    recorder.abort();
    if let Some((watch, show)) = follower {
        watch.abort();
        show.abort();
    }
    let _ = node_api.stop();
    let (_, proven) = l1.tips().await.unwrap_or((0, 0));
    let node_m = |name: &str, label: Option<&str>| crate::scrape::sum(&node_text, name, label);
    let epochs = node_m("aztec_prover_node_epochs_total", Some("outcome=\"proven\""));
    let proofs = node_m("aztec_prover_node_l1_proofs_total", None);
    let gas = node_m("aztec_prover_node_l1_gas_total", None);
    let txs = node_m("aztec_prover_node_l1_transactions_total", None);
    let refused = node_m("aztec_prover_node_refused_results_total", None);
    let to_l1_ms = node_m("aztec_prover_node_job_duration_milliseconds_sum", None);
    println!("summary (from the daemons' /metrics):");
    println!("  epochs proven:            {epochs}");
    println!("  proofs verified on L1:    {proofs}");
    println!("  proven block number:      {proven}");
    if epochs > 0.0 {
        println!(
            "  L1 transactions:          {txs} ({} per epoch at most)",
            reports.iter().map(|r| r.l1.txs).max().unwrap_or(0)
        );
        println!(
            "  L1 gas:                   {gas} ({:.0} per proof; the most in one transaction {}, cap 16777216)",
            gas / proofs.max(1.0),
            reports.iter().map(|r| r.l1.max_gas).max().unwrap_or(0)
        );
        println!(
            "  L1 calldata:              {} bytes (the most in one transaction {})",
            reports.iter().map(|r| r.l1.calldata_bytes).sum::<usize>(),
            reports
                .iter()
                .map(|r| r.l1.max_calldata_bytes)
                .max()
                .unwrap_or(0)
        );
        println!(
            "  time per epoch:           {:.1} s (claim to L1; {})",
            to_l1_ms / 1000.0 / epochs,
            if opts_prove_ahead {
                "blocks proven ahead of the claim; --prove-ahead false to compare"
            } else {
                "nothing proven ahead; --prove-ahead true to compare"
            }
        );
    }
    let busy_ms = crate::scrape::sum(
        &agents_text,
        "aztec_prover_agent_proof_duration_milliseconds_sum",
        None,
    );
    let capacity = started.elapsed().as_millis().max(1) as f64 * agents.len().max(1) as f64;
    println!(
        "  agents busy:              {:.1} s proving, {:.0}% of the wall time ({} agent(s))",
        busy_ms / 1000.0,
        100.0 * busy_ms / capacity,
        agents.len()
    );
    println!("  results refused:          {refused} (each proven again)");
    if let Some(p) = &p2p {
        let seq = devnet.shared.stats();
        let s = p.peers.status().await.unwrap_or_default();
        let served = match &devnet.p2p {
            Some(d) => d
                .sequencer
                .status()
                .await
                .map(|s| s.requests_served)
                .unwrap_or(0),
            None => 0,
        };
        let kib = (s.bytes_in + s.bytes_out) as f64 / 1024.0;
        println!(
            "  P2P:                      {} peer(s); {} quote(s) gossiped, {} reached the sequencer by gossip ({} rejected); {} tx(s) fetched from peers; {:.1} KiB on the wire ({:.1} KiB per epoch)",
            s.peers.len(),
            s.gossip_out,
            seq.quotes_gossiped,
            s.gossip_rejected,
            served,
            kib,
            kib / (reports.len().max(1) as f64)
        );
    }
    println!(
        "  wall time:                {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for mut a in agents {
        let _ = a.terminate(Duration::from_secs(30));
    }
    let mut broker = broker;
    let _ = broker.terminate(Duration::from_secs(30));
    devnet.stop().await;
    match failure {
        Some(e) => Err(anyhow::anyhow!("{e}")),
        None => Ok(()),
    }
}

/// A TCP port free on loopback now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

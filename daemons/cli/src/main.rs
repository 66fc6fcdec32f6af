//! `aztec-prover`: the one binary of the suite. Each subcommand loads its
//! configuration (defaults < file < environment < flags), sets up logging,
//! and hands over to a daemon crate; nothing here holds daemon logic.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context as _;
use aztec_prover_agent::settings::AgentSettings;
use aztec_prover_broker::BrokerSettings;
use aztec_prover_common::config::{Settings, show};
use aztec_prover_common::logging;
use aztec_prover_common::service::ServiceSettings;
use aztec_prover_node::NodeSettings;
use clap::{Arg, ArgAction, ArgMatches, Command};

mod bench;
mod devnet;
mod flags;
mod scrape;

/// Exit code for configuration and usage errors (before any state is touched).
const EXIT_CONFIG: u8 = 2;
/// Exit code for failures at run time.
const EXIT_FAILURE: u8 = 1;

fn broker_groups() -> (ServiceSettings, BrokerSettings) {
    (ServiceSettings::default(), BrokerSettings::default())
}

fn agent_groups() -> (ServiceSettings, AgentSettings) {
    (ServiceSettings::default(), AgentSettings::default())
}

fn node_groups() -> (ServiceSettings, NodeSettings) {
    (ServiceSettings::default(), NodeSettings::default())
}

fn cli() -> Command {
    let (s, b) = broker_groups();
    let a = AgentSettings::default();
    let n = NodeSettings::default();
    let node = flags::with_settings(
        Command::new("node")
            .about("Run the prover node: watch L1, keep the bond, quote for epochs, detect claims")
            .long_about(
                "Run the prover node: watch the rollup at ROLLUP_CONTRACT_ADDRESS on L1 (ETHEREUM_HOSTS), keep \
                 the escrow deposit between PROVER_MINIMUM_ESCROW_AMOUNT and PROVER_TARGET_ESCROW_AMOUNT, send an \
                 EIP-712-signed quote for every completed unproven epoch to PROVER_COORDINATION_NODE_URL (fee and \
                 bond from QUOTE_PROVIDER_URL or QUOTE_PROVIDER_BASIS_POINT_FEE/QUOTE_PROVIDER_BOND_AMOUNT), and \
                 detect claims of its quotes at least once per slot (PROVER_NODE_POLLING_INTERVAL_MS).",
            ),
        &[&s, &n],
    );
    let devnet = Command::new("devnet")
        .about("Run the whole stack on a local devnet and prove epochs for real (the main job)")
        .long_about(
            "Run the whole stack on one machine: anvil as L1 with the fee token, escrow, rollup and epoch \
             verifier deployed; a sequencer proposing blocks of synthetic txs every slot and claiming the best \
             quote; a broker and agents (child processes); and a prover node that quotes, proves each claimed \
             epoch through the broker and publishes it to L1, where all its proofs are verified in one batched \
             pairing check. Stops after --epochs proven epochs with a summary.\n\n\
             Keys for real proofs are derived from a public seed (INSECURE, devnet only) and cached. \
             PROVER_REAL_PROOFS=false checks constraints only and uses the mock verifier: a fast run. \
             With --l1-only only L1 and the sequencer run, and the settings for an external node are printed.",
        )
        .arg(num_arg("epochs", "2", "Epochs to prove, then stop (0: until Ctrl-C)"))
        .arg(num_arg("agents", "1", "Prover agents (child processes)"))
        .arg(
            Arg::new("real-proofs")
                .long("real-proofs")
                .value_name("BOOL")
                .env("PROVER_REAL_PROOFS")
                .default_value("true")
                .value_parser(clap::builder::BoolishValueParser::new())
                .help("Real Groth16 proofs (false: constraints checked only, mock verifier on L1)"),
        )
        .arg(num_arg("slot-seconds", "6", "Seconds per L2 slot"))
        .arg(num_arg("epoch-slots", "2", "Slots per epoch"))
        .arg(num_arg("claim-slots", "2", "Slots after an epoch during which it can be claimed"))
        .arg(num_arg("proof-window-slots", "30", "Slots after an epoch within which it must be proven"))
        .arg(num_arg("anvil-port", "0", "anvil's port (0: any free one)"))
        .arg(num_arg("node-port", "0", "Port of the sequencer's JSON-RPC endpoint, txs and quotes (0: any free one)"))
        .arg(num_arg("max-txs-per-block", "2", "Txs per block at most"))
        .arg(Arg::new("prove-ahead").long("prove-ahead").value_name("BOOL").default_value("true").value_parser(["true", "false"]).help("Prove each block as soon as it is on L1, before the epoch is claimed (PROVER_NODE_PROVE_AHEAD)"))
        .arg(num_arg("max-tx-gas", "15000000", "Most gas one L1 transaction of an epoch proof may use (PROVER_PUBLISHER_MAX_TX_GAS): the proofs go in as many chunks as needed"))
        .arg(Arg::new("params").long("params").value_name("PRESET").default_value("test").help("Circuit sizes: test, devnet, production"))
        .arg(Arg::new("keys").long("keys").value_name("DIR").help("Key directory [default: ~/.cache/aztec-prover/devnet-keys-<params>]"))
        .arg(Arg::new("l1-only").long("l1-only").action(ArgAction::SetTrue).help("Run only L1 and the sequencer; print what an external node needs"))
        .arg(Arg::new("p2p").long("p2p").action(ArgAction::SetTrue).help("P2P as with P2P_ENABLED=true: a boot node; the sequencer and the node peers; quotes gossiped, txs fetched from peers"));
    let agent = flags::with_settings(
        Command::new("agent")
            .about("Run prover agents: take jobs from the broker, prove them on a backend, return the proofs")
            .long_about(
                "Run prover agents: take jobs from the broker at PROVER_BROKER_HOST, prove them on a backend \
                 (--backend cpu|wgpu|/path/to/lib.so) with the keys in PROVER_KEYS_DIRECTORY, return the proofs.\n\n\
                 PROVER_AGENT_COUNT agents run in one process. Instance N of the template unit (--instance N) \
                 pins its threads to NUMA node (N-1) mod nodes. Registers org.aztec.ProverAgent.Instance<N> on \
                 D-Bus: tune it with busctl set-property (Threads, Paused, Backend, AllowedJobTypes, PollIntervalMs).",
            ),
        &[&s, &a],
    );
    let broker = flags::with_settings(
        Command::new("broker")
            .about("Run the prover broker: the durable job queue between node and agents")
            .long_about(
                "Run the prover broker: the durable job queue between the prover node and the agents.\n\n\
                 Serves JSON-RPC on port 8080 (or the socket systemd passes), stores jobs in LMDB under \
                 PROVER_BROKER_DATA_DIRECTORY, registers org.aztec.ProverBroker on D-Bus.",
            ),
        &[&s, &b],
    );
    let start = flags::with_settings(
        Command::new("start")
            .about("Start components Aztec-style (`start --prover-broker ...`)")
            .arg(
                Arg::new("prover-broker")
                    .long("prover-broker")
                    .action(ArgAction::SetTrue)
                    .help("Start the prover broker"),
            )
            .arg(
                Arg::new("prover-agent")
                    .long("prover-agent")
                    .action(ArgAction::SetTrue)
                    .help("Start prover agents"),
            )
            .arg(
                Arg::new("prover-node")
                    .long("prover-node")
                    .action(ArgAction::SetTrue)
                    .help("Start the prover node"),
            )
            .arg(
                Arg::new("archiver")
                    .long("archiver")
                    .action(ArgAction::SetTrue)
                    .help("Start the archiver (part of the prover node)"),
            ),
        &[&s, &b, &a, &n],
    );
    let config_show = Command::new("show")
        .about("Print the effective configuration of a daemon, with where each value came from (secrets redacted)")
        .subcommand_required(true)
        .subcommand(flags::with_settings(Command::new("broker").about("The broker's configuration"), &[&s, &b]))
        .subcommand(flags::with_settings(Command::new("agent").about("The agent's configuration"), &[&s, &a]))
        .subcommand(flags::with_settings(Command::new("node").about("The node's configuration"), &[&s, &n]));
    let bench = Command::new("bench")
        .about("Benchmarks that print figures against a reference measured in the same run")
        .subcommand_required(true)
        .subcommand(
            Command::new("broker")
                .about("Enqueue and complete many small jobs with many consumers over loopback, durably")
                .arg(num_arg("jobs", "100000", "Jobs to enqueue and complete"))
                .arg(num_arg("consumers", "64", "Concurrent consumers (agents)"))
                .arg(num_arg("queued", "1000000", "Jobs queued for the start-up and memory measurement (0 skips it)"))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print one JSON object per figure"))
                .arg(
                    Arg::new("dir")
                        .long("dir")
                        .value_name("DIR")
                        .help("Where the broker stores its data [default: a temporary directory]"),
                ),
        );
    let bench = bench.subcommand(
        Command::new("kernels")
            .about("Time a backend's MSM and NTT against arkworks in the same run, on the same threads")
            .arg(Arg::new("backend").long("backend").value_name("NAME|PATH").default_value("cpu").help("Backend name (cpu, wgpu) or library path"))
            .arg(Arg::new("sizes").long("sizes").value_name("LOG2,...").default_value("16,18,20").help("Sizes as powers of two"))
            .arg(Arg::new("kernels").long("kernels").value_name("LIST").default_value("msm_g1,ntt").help("Kernels: msm_g1, msm_g1_prepared (bases kept in the backend first), msm_g2, ntt, ntt_kept (the vector kept in the backend first)"))
            .arg(num_arg("reps", "3", "Repetitions per measurement (median reported)"))
            .arg(Arg::new("threads").long("threads").value_name("N").value_parser(clap::value_parser!(u64)).help("Threads for both sides [default: all CPUs]"))
            .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("One JSON object per line")),
    );
    let bench = bench.subcommand(
        Command::new("prove")
            .about("Prove circuits with our Groth16 prover on a backend and with ark-groth16 (and on the CPU backend when another is measured), from the same witness, in the same run")
            .arg(Arg::new("circuit").long("circuit").value_name("LIST").default_value("base-rollup").help(circuit_help()))
            .arg(Arg::new("params").long("params").value_name("PRESET").default_value("production").help("Circuit sizes: test, devnet, production"))
            .arg(Arg::new("backend").long("backend").value_name("NAME|PATH").default_value("cpu").help("Backend name (cpu, wgpu) or library path"))
            .arg(num_arg("reps", "3", "Repetitions per measurement (median reported)"))
            .arg(Arg::new("threads").long("threads").value_name("N").value_parser(clap::value_parser!(u64)).help("Threads for both provers [default: all CPUs]"))
            .arg(Arg::new("ways").long("ways").action(ArgAction::SetTrue).help("Also time each way a proof can use the backend (G2 MSM beside or after the rest, the QAP's vectors kept in the backend or sent)"))
            .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("One JSON object per line")),
    );
    let bench = bench.subcommand(
        Command::new("epoch")
            .about("One epoch of full blocks end to end on a local anvil with the EIP-7825 gas cap: real proofs, chunked submission; against the single transaction it would need")
            .arg(Arg::new("params").long("params").value_name("PRESET").default_value("production").help("Circuit sizes: test, devnet, production"))
            .arg(num_arg("blocks", "32", "Full blocks in the epoch"))
            .arg(num_arg("agents", "1", "Proofs made at once"))
            .arg(num_arg("max-tx-gas", "15000000", "Most gas per L1 transaction (PROVER_PUBLISHER_MAX_TX_GAS)"))
            .arg(num_arg("slot-seconds", "4", "Seconds per L2 slot (each block is built in one)"))
            .arg(Arg::new("keys").long("keys").value_name("DIR").help("Key directory [default: ~/.cache/aztec-prover/devnet-keys-<params>]"))
            .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("One JSON object")),
    );
    let bench = bench.subcommand(
        Command::new("gossip")
            .about("Quote delivery to the proposer over P2P, direct and relayed, against HTTP in the same run; bytes on the wire per quote and while idle")
            .arg(num_arg("quotes", "200", "Quotes sent on each path"))
            .arg(num_arg("interval-ms", "20", "Pause between quotes (ms)"))
            .arg(num_arg("idle-seconds", "10", "Quiet time over which idle traffic is measured (s)"))
            .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("One JSON object")),
    );
    let bench = bench.subcommand(
        Command::new("world-state")
            .about("Re-execute blocks against the node's world state in LMDB and in memory, in the same run; time a restart")
            .arg(num_arg("blocks", "100", "Full blocks of synthetic txs to re-execute"))
            .arg(Arg::new("params").long("params").value_name("PRESET").default_value("production").help("Tree sizes: test, devnet, production"))
            .arg(Arg::new("dir").long("dir").value_name("DIR").help("Where the store goes (world-state/ under it) [default: a temporary directory]"))
            .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("One JSON object")),
    );
    let keys = Command::new("keys").about("Proving and verifying keys").subcommand_required(true).subcommand(
        Command::new("generate")
            .about("Run the Groth16 setup of every circuit and write <circuit>.pk, <circuit>.vk and params.json")
            .arg(Arg::new("out").long("out").value_name("DIR").required(true).help("Directory for the key files (created)"))
            .arg(Arg::new("seed").long("seed").value_name("S").help(
                "Derive the keys from this public seed: reproducible and INSECURE (anyone with the seed can forge proofs); for devnets only",
            ))
            .arg(Arg::new("params").long("params").value_name("PRESET").default_value("devnet").help("Circuit sizes: test, devnet, production"))
            .arg(Arg::new("circuit").long("circuit").value_name("LIST").default_value("all").help(circuit_help())),
    );
    let status = Command::new("status")
        .about("Show the broker's queue: jobs per epoch and type")
        .arg(
            Arg::new("broker")
                .long("broker")
                .value_name("URL")
                .env("PROVER_BROKER_HOST")
                .default_value("http://127.0.0.1:8080")
                .help("The broker's URL"),
        );
    Command::new("aztec-prover")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Prove a rollup's epochs: prover node, prover broker and prover agents")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(broker)
        .subcommand(agent)
        .subcommand(node)
        .subcommand(devnet)
        .subcommand(start)
        .subcommand(
            Command::new("config")
                .about("Inspect configuration")
                .subcommand_required(true)
                .subcommand(config_show),
        )
        .subcommand(bench)
        .subcommand(keys)
        .subcommand(status)
        .subcommand(
            Command::new("p2p")
                .about("Peer-to-peer tools")
                .subcommand_required(true)
                .subcommand(
                    Command::new("bootnode")
                        .about("Run a P2P boot node: it helps prover nodes and sequencers find each other (Kademlia) and relays no gossip")
                        .arg(Arg::new("p2pIp").long("p2p.p2pIp").env("P2P_IP").value_name("IP").default_value("0.0.0.0").value_parser(clap::value_parser!(std::net::IpAddr)).help("Address to listen on"))
                        .arg(Arg::new("p2pPort").long("p2p.p2pPort").env("P2P_PORT").value_name("PORT").default_value("40400").value_parser(clap::value_parser!(u16)).help("TCP port to listen on"))
                        .arg(Arg::new("maxPeers").long("p2p.maxPeers").env("P2P_MAX_PEERS").value_name("N").default_value("100").value_parser(clap::value_parser!(u32).range(1..=10000)).help("Peers kept connected at most"))
                        .arg(Arg::new("dataDirectory").long("dataDirectory").env("DATA_DIRECTORY").value_name("DIR").default_value("/var/lib/aztec-prover/bootnode").help("Where the node's identity key is kept (p2p-identity.key, made on first start)")),
                ),
        )
        .subcommand(
            Command::new("manpage")
                .about("Print the man page (roff) of aztec-prover and its subcommands")
                .hide(true),
        )
        .subcommand(
            Command::new("completions")
                .about("Print shell completions")
                .arg(
                    Arg::new("shell")
                        .required(true)
                        .value_parser(clap::value_parser!(clap_complete::Shell))
                        .help("bash, zsh, fish, elvish or powershell"),
                ),
        )
}

/// Runs a boot node until SIGTERM: discovery only (no gossip topic).
fn run_bootnode(m: &ArgMatches) -> Result<(), Failure> {
    let service = ServiceSettings::default();
    logging::init(&service, "aztec-prover-bootnode");
    let ip = *m
        .get_one::<std::net::IpAddr>("p2pIp")
        .ok_or_else(|| config_failure(anyhow::anyhow!("--p2p.p2pIp")))?;
    let port = *m
        .get_one::<u16>("p2pPort")
        .ok_or_else(|| config_failure(anyhow::anyhow!("--p2p.p2pPort")))?;
    let max_peers = *m
        .get_one::<u32>("maxPeers")
        .ok_or_else(|| config_failure(anyhow::anyhow!("--p2p.maxPeers")))?;
    let dir = std::path::PathBuf::from(
        m.get_one::<String>("dataDirectory")
            .ok_or_else(|| config_failure(anyhow::anyhow!("--dataDirectory")))?,
    );
    let (key, made) = aztec_prover_p2p::identity::load_or_create(&dir).map_err(config_failure)?;
    let listen: aztec_prover_p2p::Multiaddr = format!(
        "/{}/{ip}/tcp/{port}",
        if ip.is_ipv4() { "ip4" } else { "ip6" }
    )
    .parse()
    .map_err(config_failure)?;
    runtime()?.block_on(async move {
        let mut signals = aztec_prover_common::systemd::Signals::install()?;
        let peers = aztec_prover_p2p::Peers::start(
            key,
            aztec_prover_p2p::PeersConfig {
                listen,
                boot_nodes: vec![],
                topic: None,
                max_message_bytes: 64 << 10,
                max_peers,
                heartbeat: std::time::Duration::from_secs(1),
            },
            std::sync::Arc::new(|_, _| aztec_prover_p2p::Verdict::Ignore),
            None,
        )
        .await?;
        let id = peers.peer_id();
        tracing::info!(
            "boot node {id} ({} identity in {}); others dial /ip4/<this host>/tcp/{port}/p2p/{id}",
            if made { "new" } else { "kept" },
            dir.display()
        );
        aztec_prover_common::systemd::notify_ready();
        {
            // Healthy while the swarm's task answers.
            let p = peers.clone();
            aztec_prover_common::systemd::spawn_watchdog(move || {
                let p = p.clone();
                async move { p.status().await.is_ok() }
            });
        }
        loop {
            if signals.next().await == aztec_prover_common::systemd::Request::Stop {
                break;
            }
        }
        tracing::info!("boot node stopped");
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(())
}

/// The man page: the top command's page, then one section per subcommand.
fn manpage() -> Result<(), Failure> {
    let cmd = cli();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("aztec-prover-{}", sub.get_name());
        let page = clap_mangen::Man::new(sub.clone().name(name));
        out.extend_from_slice(b".SH \"");
        out.extend_from_slice(format!("AZTEC-PROVER {}", sub.get_name().to_uppercase()).as_bytes());
        out.extend_from_slice(b"\"\n");
        page.render_description_section(&mut out)?;
        page.render_options_section(&mut out)?;
        if sub.has_subcommands() {
            page.render_subcommands_section(&mut out)?;
        }
    }
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(())
}

fn num_arg(name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("N")
        .default_value(default)
        .value_parser(clap::value_parser!(u64))
        .help(help)
}

/// A failure with the exit code it deserves.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            code: EXIT_FAILURE,
            error: e.into(),
        }
    }
}

fn config_failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_CONFIG,
        error: e.into(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?)
}

fn broker_launch(
    m: &ArgMatches,
    identifier: &str,
) -> Result<aztec_prover_broker::daemon::Launch, Failure> {
    let (mut service, mut broker) = broker_groups();
    let inputs = flags::inputs("broker", m, &[&service, &broker]);
    let provenance =
        flags::load(&mut [&mut service, &mut broker], &inputs).map_err(config_failure)?;
    let dbus_required = provenance
        .get("dbus")
        .is_some_and(|s| *s != aztec_prover_common::config::Source::Default);
    let (log, _) = logging::init(&service, identifier);
    #[allow(clippy::result_large_err)] // as config::load: once per reload
    let reload: aztec_prover_broker::daemon::Reloader = Box::new(move || {
        let (mut s, mut b) = broker_groups();
        let fresh = aztec_prover_common::config::Inputs::from_process(
            inputs.file.clone(),
            inputs.file_required,
            inputs.flags.clone(),
        );
        flags::load(&mut [&mut s, &mut b], &fresh)?;
        Ok((s, b))
    });
    Ok(aztec_prover_broker::daemon::Launch {
        service,
        dbus_required,
        broker,
        log,
        reload,
    })
}

fn run_broker(m: &ArgMatches) -> Result<(), Failure> {
    let launch = broker_launch(m, "aztec-prover-broker")?;
    runtime()?.block_on(aztec_prover_broker::daemon::run(launch))?;
    Ok(())
}

fn agent_launch(
    m: &ArgMatches,
    identifier: &str,
) -> Result<aztec_prover_agent::daemon::Launch, Failure> {
    let (mut service, mut agent) = agent_groups();
    let inputs = flags::inputs("agent", m, &[&service, &agent]);
    let provenance =
        flags::load(&mut [&mut service, &mut agent], &inputs).map_err(config_failure)?;
    let dbus_required = provenance
        .get("dbus")
        .is_some_and(|s| *s != aztec_prover_common::config::Source::Default);
    if !identifier.is_empty() {
        logging::init(&service, identifier);
    }
    Ok(aztec_prover_agent::daemon::Launch {
        service,
        dbus_required,
        agent,
    })
}

fn run_agent(m: &ArgMatches) -> Result<(), Failure> {
    let launch = agent_launch(m, "aztec-prover-agent")?;
    runtime()?
        .block_on(aztec_prover_agent::daemon::run(launch))
        .map_err(|e| match e {
            aztec_prover_agent::daemon::DaemonError::Config(_)
            | aztec_prover_agent::daemon::DaemonError::Backend(_)
            | aztec_prover_agent::daemon::DaemonError::Keys(_) => config_failure(e),
            other => other.into(),
        })?;
    Ok(())
}

fn run_node(m: &ArgMatches) -> Result<(), Failure> {
    let (mut service, mut node) = node_groups();
    let inputs = flags::inputs("node", m, &[&service, &node]);
    let provenance =
        flags::load(&mut [&mut service, &mut node], &inputs).map_err(config_failure)?;
    let dbus_required = provenance
        .get("dbus")
        .is_some_and(|s| *s != aztec_prover_common::config::Source::Default);
    logging::init(&service, "aztec-prover-node");
    runtime()?
        .block_on(aztec_prover_node::daemon::run(
            aztec_prover_node::daemon::Launch {
                node,
                service,
                dbus_required,
            },
        ))
        .map_err(|e| match e {
            aztec_prover_node::daemon::DaemonError::Config(_) => config_failure(e),
            other => other.into(),
        })?;
    Ok(())
}

fn run_devnet(m: &ArgMatches) -> Result<(), Failure> {
    use aztec_prover_devnet::{Devnet, DevnetOptions};
    let (params_name, params) = params_arg(m)?;
    let get = |n: &str| m.get_one::<u64>(n).copied().unwrap_or(0);
    let port = |n: &str| {
        u16::try_from(get(n)).map_err(|_| config_failure(anyhow::anyhow!("--{n} is not a port")))
    };
    let service = ServiceSettings::default();
    logging::init(&service, "aztec-prover-devnet");
    let opts = DevnetOptions {
        anvil_port: port("anvil-port")?,
        node_listen: std::net::SocketAddr::from(([127, 0, 0, 1], port("node-port")?)),
        params,
        slot_duration: get("slot-seconds").max(1),
        epoch_duration: get("epoch-slots").max(1),
        claim_duration_slots: get("claim-slots").max(1),
        proof_window_slots: get("proof-window-slots").max(get("claim-slots").max(1)),
        max_txs_per_block: usize::try_from(get("max-txs-per-block").max(1)).unwrap_or(1),
        p2p: m.get_flag("p2p"),
        ..DevnetOptions::default()
    };
    let keys_dir = match m.get_one::<String>("keys") {
        Some(k) => std::path::PathBuf::from(k),
        None => devnet_keys_dir(&params_name),
    };
    if !m.get_flag("l1-only") {
        let run = devnet::RunOptions {
            devnet: opts,
            epochs: get("epochs"),
            real_proofs: m.get_one::<bool>("real-proofs").copied().unwrap_or(true),
            agents: u32::try_from(get("agents").max(1)).unwrap_or(1),
            keys_dir,
            max_tx_gas: get("max-tx-gas"),
            prove_ahead: m
                .get_one::<String>("prove-ahead")
                .is_none_or(|v| v != "false"),
        };
        runtime()?.block_on(devnet::run(run))?;
        return Ok(());
    }
    runtime()?.block_on(async move {
        let devnet = Devnet::start(opts).await?;
        let prover = devnet.provers[0].clone();
        println!("devnet running; a prover node needs:");
        println!("  ETHEREUM_HOSTS={}", devnet.l1_url());
        println!("  L1_CHAIN_ID={}", devnet.chain_id());
        println!("  ROLLUP_CONTRACT_ADDRESS={}", devnet.deployment.rollup);
        match &devnet.boot_node {
            Some(boot) => {
                println!("  P2P_ENABLED=true");
                println!("  BOOT_NODE_URL={boot}");
                println!(
                    "  AZTEC_NODE_URL={}   # optional: txs come from peers",
                    devnet.node_url
                );
            }
            None => println!("  PROVER_COORDINATION_NODE_URL={}", devnet.node_url),
        }
        println!(
            "  PROVER_PUBLISHER_PRIVATE_KEY=0x{}   # anvil account 1: a public test key",
            alloy::hex::encode(prover.to_bytes())
        );
        println!("Ctrl-C (or SIGTERM) stops it");
        // Stopping must run drop (anvil is a child process).
        let mut signals = aztec_prover_common::systemd::Signals::install()?;
        while signals.next().await != aztec_prover_common::systemd::Request::Stop {}
        let s = devnet.shared.stats();
        println!(
            "devnet stopped: {} blocks, {} txs proposed, {} quotes received, {} claims, {} prunes",
            s.blocks_proposed, s.txs_proposed, s.quotes_received, s.claims, s.prunes
        );
        devnet.stop().await;
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(())
}

fn run_start(m: &ArgMatches) -> Result<(), Failure> {
    let wants = |f: &str| m.get_flag(f);
    if wants("prover-node") || wants("archiver") {
        if wants("prover-broker") || wants("prover-agent") {
            return Err(config_failure(anyhow::anyhow!(
                "--prover-node runs alone in this build: start the broker and agents as their own processes"
            )));
        }
        return run_node(m);
    }
    match (wants("prover-broker"), wants("prover-agent")) {
        (true, false) => run_broker(m),
        (false, true) => run_agent(m),
        (true, true) => {
            // Both in one process, as Aztec's `start --prover-broker --prover-agent`.
            let launch = broker_launch(m, "aztec-prover")?;
            let mut agent = agent_launch(m, "")?;
            // One process registers one D-Bus name: the broker's.
            agent.service.dbus = aztec_prover_common::service::BusChoice::Disabled;
            runtime()?.block_on(async move {
                tokio::try_join!(
                    async {
                        aztec_prover_broker::daemon::run(launch)
                            .await
                            .map_err(anyhow::Error::from)
                    },
                    async {
                        aztec_prover_agent::daemon::run(agent)
                            .await
                            .map_err(anyhow::Error::from)
                    },
                )
            })?;
            Ok(())
        }
        (false, false) => Err(config_failure(anyhow::anyhow!(
            "nothing to start: pass --prover-broker and/or --prover-agent"
        ))),
    }
}

fn config_show(m: &ArgMatches) -> Result<(), Failure> {
    match m.subcommand() {
        Some(("node", sub)) => {
            let (mut service, mut node) = node_groups();
            print_config("node", sub, &mut [&mut service, &mut node])?;
            if node.p2p_enabled {
                let dir = &node.data_directory;
                match aztec_prover_p2p::identity::load(dir) {
                    Ok(Some(key)) => println!(
                        "# P2P peer id: {} (key in {})",
                        aztec_prover_p2p::identity::peer_id(&key),
                        dir.join(aztec_prover_p2p::identity::KEY_FILE).display()
                    ),
                    Ok(None) => println!(
                        "# P2P peer id: none yet (made at the node's first start in {})",
                        dir.display()
                    ),
                    Err(e) => println!("# P2P peer id: unreadable: {e}"),
                }
            }
            Ok(())
        }
        Some(("agent", sub)) => {
            let (mut service, mut agent) = agent_groups();
            print_config("agent", sub, &mut [&mut service, &mut agent])
        }
        Some(("broker", sub)) => {
            let (mut service, mut broker) = broker_groups();
            print_config("broker", sub, &mut [&mut service, &mut broker])
        }
        _ => Err(config_failure(anyhow::anyhow!("unknown daemon"))),
    }
}

/// Loads `groups` as `daemon` would and prints each value with its source.
fn print_config(
    daemon: &str,
    sub: &ArgMatches,
    groups: &mut [&mut dyn Settings],
) -> Result<(), Failure> {
    let views: Vec<&dyn Settings> = groups.iter().map(|g| &**g as &dyn Settings).collect();
    let inputs = flags::inputs(daemon, sub, &views);
    let provenance = flags::load(groups, &inputs).map_err(config_failure)?;
    let views: Vec<&dyn Settings> = groups.iter().map(|g| &**g as &dyn Settings).collect();
    println!("# aztec-prover {daemon}: effective configuration (value  # source)");
    print!("{}", show(&views, &provenance));
    Ok(())
}

fn bench_broker(m: &ArgMatches) -> Result<(), Failure> {
    let get = |n: &str| m.get_one::<u64>(n).copied().unwrap_or(0);
    let opts = bench::broker::BenchOptions {
        binary: std::env::current_exe().context("cannot find our own executable")?,
        jobs: get("jobs"),
        consumers: get("consumers").max(1),
        queued: get("queued"),
        dir: m.get_one::<String>("dir").map(Into::into),
        json: m.get_flag("json"),
    };
    runtime()?
        .block_on(bench::broker::run(opts))
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(())
}

fn bench_kernels(m: &ArgMatches) -> Result<(), Failure> {
    let list = |name: &str| -> Vec<String> {
        m.get_one::<String>(name)
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let log_sizes = list("sizes")
        .iter()
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| config_failure(anyhow::anyhow!("--sizes: {s:?} is not a number")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let threads = threads_arg(m);
    let spec = m
        .get_one::<String>("backend")
        .cloned()
        .unwrap_or_else(|| "cpu".into());
    let mut backend = aztec_backend_abi::Backend::load(&spec).map_err(config_failure)?;
    let opts = aztec_backend_abi::bench::KernelBenchOptions {
        log_sizes,
        reps: m.get_one::<u64>("reps").copied().unwrap_or(3) as usize,
        threads,
        kernels: list("kernels"),
        json: m.get_flag("json"),
    };
    let mut baseline = cpu_baseline(&backend);
    aztec_backend_abi::bench::run(&mut backend, baseline.as_mut(), &opts)
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(())
}

/// A backend other than the CPU one is also compared with the CPU backend.
fn cpu_baseline(backend: &aztec_backend_abi::Backend) -> Option<aztec_backend_abi::Backend> {
    if backend.info().name == "cpu" {
        return None;
    }
    match aztec_backend_abi::Backend::load("cpu") {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("note: no CPU backend to compare with: {e}");
            None
        }
    }
}

fn circuit_help() -> String {
    let names: Vec<&str> = aztec_zk::CircuitId::ALL.iter().map(|c| c.name()).collect();
    format!("Comma-separated circuits, or all: {}", names.join(", "))
}

fn circuits_arg(m: &ArgMatches) -> Result<Vec<aztec_zk::CircuitId>, Failure> {
    let list = m.get_one::<String>("circuit").cloned().unwrap_or_default();
    if list.trim() == "all" {
        return Ok(aztec_zk::CircuitId::ALL.to_vec());
    }
    list.split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            aztec_zk::CircuitId::from_name(s).ok_or_else(|| {
                config_failure(anyhow::anyhow!(
                    "--circuit: unknown circuit {s:?} ({})",
                    circuit_help()
                ))
            })
        })
        .collect()
}

fn params_arg(m: &ArgMatches) -> Result<(String, aztec_zk::RollupParams), Failure> {
    let name = m.get_one::<String>("params").cloned().unwrap_or_default();
    let p = aztec_zk::RollupParams::preset(&name).ok_or_else(|| {
        config_failure(anyhow::anyhow!(
            "--params: {name:?} is not one of test, devnet, production"
        ))
    })?;
    Ok((name, p))
}

fn threads_arg(m: &ArgMatches) -> usize {
    m.get_one::<u64>("threads")
        .map(|t| *t as usize)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// Where the devnet keeps the keys of `params` unless told.
fn devnet_keys_dir(params: &str) -> std::path::PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("aztec-prover")
        .join(format!("devnet-keys-{params}"))
}

fn bench_epoch(m: &ArgMatches) -> Result<(), Failure> {
    let get = |n: &str| m.get_one::<u64>(n).copied().unwrap_or(0);
    let params = m
        .get_one::<String>("params")
        .cloned()
        .unwrap_or_else(|| "production".into());
    let keys_dir = match m.get_one::<String>("keys") {
        Some(k) => std::path::PathBuf::from(k),
        None => devnet_keys_dir(&params),
    };
    let service = ServiceSettings::default();
    logging::init(&service, "aztec-prover-bench");
    let opts = bench::epoch::EpochBenchOptions {
        params,
        blocks: get("blocks"),
        agents: usize::try_from(get("agents").max(1)).unwrap_or(1),
        keys_dir,
        budget: aztec_prover_node::publisher::TxBudget {
            gas: get("max-tx-gas"),
            ..Default::default()
        },
        slot_seconds: get("slot-seconds"),
        json: m.get_flag("json"),
    };
    runtime()?.block_on(bench::epoch::run(opts))?;
    Ok(())
}

fn bench_gossip(m: &ArgMatches) -> Result<(), Failure> {
    let get = |n: &str| m.get_one::<u64>(n).copied().unwrap_or(0);
    let opts = bench::gossip::GossipBenchOptions {
        quotes: get("quotes") as usize,
        interval_ms: get("interval-ms"),
        idle_seconds: get("idle-seconds"),
        json: m.get_flag("json"),
    };
    runtime()?.block_on(bench::gossip::run(opts))?;
    Ok(())
}

fn bench_world_state(m: &ArgMatches) -> Result<(), Failure> {
    let (params_name, params) = params_arg(m)?;
    let opts = bench::world_state::WorldStateBenchOptions {
        blocks: m.get_one::<u64>("blocks").copied().unwrap_or(100) as usize,
        params,
        params_name,
        dir: m.get_one::<String>("dir").map(std::path::PathBuf::from),
        json: m.get_flag("json"),
    };
    bench::world_state::run(&opts).map_err(|e| anyhow::anyhow!(e))?;
    Ok(())
}

fn bench_prove(m: &ArgMatches) -> Result<(), Failure> {
    let (params_name, params) = params_arg(m)?;
    let spec = m
        .get_one::<String>("backend")
        .cloned()
        .unwrap_or_else(|| "cpu".into());
    let backend = aztec_backend_abi::Backend::load(&spec).map_err(config_failure)?;
    let opts = aztec_prover_rollup::bench::ProveBenchOptions {
        circuits: circuits_arg(m)?,
        params,
        params_name,
        reps: m.get_one::<u64>("reps").copied().unwrap_or(3) as usize,
        threads: threads_arg(m),
        json: m.get_flag("json"),
        ways: m.get_flag("ways"),
    };
    let others: Vec<_> = cpu_baseline(&backend).into_iter().collect();
    aztec_prover_rollup::bench::run(&backend, &others, &opts).map_err(|e| anyhow::anyhow!(e))?;
    Ok(())
}

fn keys_generate(m: &ArgMatches) -> Result<(), Failure> {
    let (params_name, params) = params_arg(m)?;
    let circuits = circuits_arg(m)?;
    let out = std::path::PathBuf::from(m.get_one::<String>("out").cloned().unwrap_or_default());
    let seed = m.get_one::<String>("seed").cloned();
    if let Some(s) = &seed {
        eprintln!(
            "WARNING: keys derived from the public seed {s:?} are INSECURE: anyone who knows the seed can forge proofs."
        );
        eprintln!(
            "WARNING: use them on a local devnet only; production keys come from `keys generate` without --seed."
        );
    }
    eprintln!(
        "generating keys for {} circuit(s), sizes {params_name}, into {}",
        circuits.len(),
        out.display()
    );
    aztec_zk::keys::generate_dir(&out, &params, seed.as_deref(), &circuits, |c, g, took| {
        eprintln!(
            "  {:<20} {:>9} constraints  {:>7.1} s  -> {}",
            c.name(),
            g.matrices.num_constraints,
            took.as_secs_f64(),
            aztec_zk::keys::key_path(&out, c, aztec_zk::keys::KeyKind::Proving).display()
        );
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    eprintln!("done");
    Ok(())
}

fn status(m: &ArgMatches) -> Result<(), Failure> {
    let url = m.get_one::<String>("broker").cloned().unwrap_or_default();
    runtime()?.block_on(async move {
        use aztec_prover_protocol::ProvingBrokerApiClient as _;
        // The broker's token, if it asks for one, from the same variable.
        let token = std::env::var("PROVER_BROKER_AUTH_TOKEN").ok();
        let client = aztec_prover_common::rpc::client_with_token(
            &url,
            std::time::Duration::from_secs(10),
            1 << 20,
            token.as_deref().map(str::trim),
        )
        .with_context(|| format!("bad broker URL {url}"))?;
        let stats = client
            .get_queue_stats()
            .await
            .with_context(|| format!("broker at {url} did not answer"))?;
        println!(
            "broker {url}: {}",
            aztec_prover_broker::daemon::summary(&stats)
        );
        println!(
            "{:>8}  {:<20} {:>9} {:>12} {:>10} {:>9}",
            "epoch", "job type", "queued", "in progress", "proven", "failed"
        );
        for (epoch, per_type) in &stats.epochs {
            for (t, c) in per_type {
                println!(
                    "{epoch:>8}  {:<20} {:>9} {:>12} {:>10} {:>9}",
                    t.name(),
                    c.queued,
                    c.in_progress,
                    c.fulfilled,
                    c.rejected
                );
            }
        }
        // Jobs of Aztec's own node and agents (the Aztec-compatible API).
        for (epoch, per_type) in &stats.aztec {
            for (t, c) in per_type {
                println!(
                    "{epoch:>8}  {:<20} {:>9} {:>12} {:>10} {:>9}",
                    format!("aztec:{t}"),
                    c.queued,
                    c.in_progress,
                    c.fulfilled,
                    c.rejected
                );
            }
        }
        println!(
            "lease timeout {} ms, {} retries, {} leases expired",
            stats.job_timeout_ms, stats.max_retries, stats.timeouts
        );
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(())
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    let result = match matches.subcommand() {
        Some(("broker", m)) => run_broker(m),
        Some(("agent", m)) => run_agent(m),
        Some(("node", m)) => run_node(m),
        Some(("devnet", m)) => run_devnet(m),
        Some(("start", m)) => run_start(m),
        Some(("config", m)) => match m.subcommand() {
            Some(("show", m)) => config_show(m),
            _ => Err(config_failure(anyhow::anyhow!("unknown config command"))),
        },
        Some(("bench", m)) => match m.subcommand() {
            Some(("broker", m)) => bench_broker(m),
            Some(("kernels", m)) => bench_kernels(m),
            Some(("prove", m)) => bench_prove(m),
            Some(("epoch", m)) => bench_epoch(m),
            Some(("world-state", m)) => bench_world_state(m),
            Some(("gossip", m)) => bench_gossip(m),
            _ => Err(config_failure(anyhow::anyhow!("unknown bench"))),
        },
        Some(("keys", m)) => match m.subcommand() {
            Some(("generate", m)) => keys_generate(m),
            _ => Err(config_failure(anyhow::anyhow!("unknown keys command"))),
        },
        Some(("status", m)) => status(m),
        Some(("p2p", m)) => match m.subcommand() {
            Some(("bootnode", m)) => run_bootnode(m),
            _ => Err(config_failure(anyhow::anyhow!("unknown p2p command"))),
        },
        Some(("manpage", _)) => manpage(),
        Some(("completions", m)) => {
            let shell = m
                .get_one::<clap_complete::Shell>("shell")
                .copied()
                .unwrap_or(clap_complete::Shell::Bash);
            clap_complete::generate(shell, &mut cli(), "aztec-prover", &mut std::io::stdout());
            Ok(())
        }
        _ => Err(config_failure(anyhow::anyhow!("unknown command"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("aztec-prover: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

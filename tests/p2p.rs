//! P2P with real processes on loopback. `aztec-prover p2p bootnode`: it
//! keeps its peer id across a restart (the key in its data directory), and
//! two nodes that dial only it find each other and gossip directly. A
//! devnet with P2P on: two prover node daemons gossip their quotes to the
//! sequencer (one of them through the other), the best is claimed, and
//! that node proves the epoch with txs it fetched from peers (no HTTP).

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use aztec_prover_p2p::{Keypair, Multiaddr, Peers, PeersConfig, PeersEvent, Verdict};

/// Starts a boot node on `port` with its key in `dir`; returns it and the
/// peer id it logged.
fn bootnode(dir: &std::path::Path, port: u16) -> (std::process::Child, String) {
    let mut child = support::command(&[
        "p2p",
        "bootnode",
        "--p2p.p2pIp",
        "127.0.0.1",
        "--p2p.p2pPort",
        &port.to_string(),
        "--dataDirectory",
    ])
    .arg(dir)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let log = support::collect(child.stderr.take().unwrap());
    let mut id = None;
    assert!(
        support::eventually(Duration::from_secs(20), || {
            id = log
                .lock()
                .unwrap()
                .split("boot node ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next().map(str::to_string));
            id.is_some()
        }),
        "{}",
        log.lock().unwrap()
    );
    (child, id.unwrap())
}

fn stop(mut c: std::process::Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = c.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boot_node_keeps_its_peer_id_and_introduces_nodes_to_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let (first, id) = bootnode(dir.path(), port);
    stop(first);
    let (boot, again) = bootnode(dir.path(), port);
    assert_eq!(id, again, "a restarted boot node keeps its peer id");

    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{id}")
        .parse()
        .unwrap();
    let config = PeersConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        boot_nodes: vec![addr],
        topic: Some("/aztec-prover/test/1".into()),
        max_message_bytes: 1024,
        max_peers: 10,
        heartbeat: Duration::from_millis(200),
    };
    let accept: aztec_prover_p2p::Validator = Arc::new(|_, _| Verdict::Accept);
    let a = Peers::start(
        Keypair::generate_ed25519(),
        config.clone(),
        accept.clone(),
        None,
    )
    .await
    .unwrap();
    let b = Peers::start(Keypair::generate_ed25519(), config, accept, None)
        .await
        .unwrap();
    let mut events = b.subscribe();
    let b_id = b.peer_id().to_string();
    let mut met = false;
    for _ in 0..300 {
        if a.status().await.unwrap().peers.contains(&b_id) {
            met = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(met, "A never met B: {:?}", a.status().await.unwrap());
    let mut sent = false;
    for _ in 0..200 {
        if a.publish(b"hello".to_vec()).await.is_ok() {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent);
    let from = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(PeersEvent::Gossip { from, .. }) = events.recv().await {
                return from;
            }
        }
    })
    .await
    .expect("B did not get A's message");
    assert_eq!(from, a.peer_id());
    stop(boot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_p2p_both_quotes_reach_the_sequencer_by_gossip_and_the_best_is_claimed_and_proven() {
    use aztec_prover_devnet::{Devnet, DevnetOptions};
    use aztec_prover_p2p::identity;
    let dir = tempfile::tempdir().unwrap();
    let sizes = dir.path().join("sizes");
    aztec_zk::keys::write_params(&sizes, &aztec_zk::RollupParams::test()).unwrap();
    let devnet = Devnet::start(DevnetOptions {
        slot_duration: 3,
        epoch_duration: 2,
        claim_duration_slots: 4,
        proof_window_slots: 20,
        max_txs_per_block: 2,
        // The sequencer collects quotes for a slot, then claims the best.
        claim_delay_slots: 1,
        p2p: true,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let boot = devnet.boot_node.clone().unwrap();
    let broker = support::start_broker(dir.path(), &[]);
    let broker_url = format!("http://{}", broker.addr.unwrap());
    let _agent = support::spawn_in(
        dir.path(),
        "agent",
        support::agent_command(&broker_url, &sizes),
    );
    // The nodes' identities, made here: the daemons must keep them.
    let (a_data, b_data) = (dir.path().join("a"), dir.path().join("b"));
    let a_id = identity::peer_id(&identity::load_or_create(&a_data).unwrap().0).to_string();
    let b_id = identity::peer_id(&identity::load_or_create(&b_data).unwrap().0).to_string();
    let (a_port, api) = (support::free_port(), support::free_port());
    // Quotes go by gossip, txs come from peers: no HTTP endpoint at all.
    let node = |key, data: &std::path::Path, fee: &str, port: u16, boot: &str, max_peers: &str| {
        let mut c = support::node_command(&devnet, key, &broker_url, &sizes, data);
        c.env_remove("PROVER_COORDINATION_NODE_URL")
            .env_remove("AZTEC_NODE_URL")
            .env("P2P_ENABLED", "true")
            .env("P2P_IP", "127.0.0.1")
            .env("P2P_PORT", port.to_string())
            .env("BOOT_NODE_URL", boot)
            .env("P2P_MAX_PEERS", max_peers)
            .env("QUOTE_PROVIDER_BASIS_POINT_FEE", fee);
        c
    };
    // A dials the boot node and asks less; B dials only A and keeps one
    // peer, so its quote reaches the sequencer relayed by A.
    let mut a_cmd = node(&devnet.provers[0], &a_data, "100", a_port, &boot, "50");
    a_cmd.env("AZTEC_PORT", api.to_string());
    let a = support::spawn_in(dir.path(), "node-a", a_cmd);
    let b = support::spawn_in(
        dir.path(),
        "node-b",
        node(
            &devnet.provers[1],
            &b_data,
            "200",
            support::free_port(),
            &format!("/ip4/127.0.0.1/tcp/{a_port}/p2p/{a_id}"),
            "1",
        ),
    );

    let l1 = devnet.client(&devnet.proposer).await.unwrap();
    let mut claim = None;
    for _ in 0..300 {
        claim = l1.proof_claim().await.unwrap();
        if claim.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let claim =
        claim.unwrap_or_else(|| panic!("no claim:\n{}\n{}", a.log_tail(20), b.log_tail(20)));
    assert_eq!(
        claim.prover,
        devnet.provers[0].address(),
        "the cheaper quote wins"
    );
    let quotes = devnet.shared.quotes(claim.epoch);
    let provers: Vec<_> = quotes.iter().map(|q| q.quote.prover).collect();
    assert!(
        provers.contains(&devnet.provers[0].address())
            && provers.contains(&devnet.provers[1].address()),
        "both quotes reached the sequencer: {provers:?}\n{}",
        b.log_tail(20)
    );
    let stats = devnet.shared.stats();
    assert_eq!(stats.quotes_received, stats.quotes_gossiped, "{stats:?}");
    let p2p = devnet.p2p.as_ref().unwrap();
    let seq = p2p.sequencer.status().await.unwrap();
    assert!(
        !seq.peers.contains(&b_id),
        "B is not the sequencer's peer: {seq:?}"
    );

    // A proves the epoch with txs from peers.
    let proven = support::proven_past(&l1, 0).await;
    assert!(proven > 0, "the epoch was not proven:\n{}", a.log_tail(30));
    assert!(p2p.sequencer.status().await.unwrap().requests_served > 0);
    let call = |method: &str| {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":[]}}"#);
        let (code, text) = support::raw_post(
            std::net::SocketAddr::from(([127, 0, 0, 1], api)),
            body.as_bytes(),
        );
        assert_eq!(code, 200, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["result"].clone()
    };
    let status = call("proverNode_getStatus");
    let net = &status["p2p"];
    assert_eq!(net["peerId"], a_id.as_str(), "{status}");
    assert!(
        net["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == b_id.as_str()),
        "{status}"
    );
    assert!(net["gossipOut"].as_u64().unwrap() >= 1, "{status}");
    assert!(
        net["gossipIn"].as_u64().unwrap() >= 1,
        "B's quote came through A: {status}"
    );
    assert!(net["bytesIn"].as_u64().unwrap() > 0, "{status}");
    assert!(
        a.log().contains(&format!("peer id {a_id} (kept identity")),
        "{}",
        a.log_tail(30)
    );
}

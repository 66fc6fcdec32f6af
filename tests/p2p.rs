//! `aztec-prover p2p bootnode` as a real process: it keeps its peer id
//! across a restart (the key in its data directory), and two nodes that
//! dial only it find each other and gossip directly.

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

//! Three real swarms on loopback: a boot node and two nodes that dial only
//! it. A message one node gossips reaches the other through the boot node;
//! one the validator rejects stops at the first hop.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aztec_prover_p2p::{Peers, PeersConfig, PeersEvent, Verdict};
use libp2p::Multiaddr;
use libp2p::identity::Keypair;

fn config(boot: Vec<Multiaddr>) -> PeersConfig {
    PeersConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        boot_nodes: boot,
        topic: Some("/aztec-prover/quotes/1/31337/0xtest".into()),
        max_message_bytes: 4096,
        // Each node keeps one peer: the two nodes meet only through the boot node.
        max_peers: 1,
        heartbeat: Duration::from_millis(200),
    }
}

fn validator() -> aztec_prover_p2p::Validator {
    Arc::new(|_, data: &[u8]| {
        if data.starts_with(b"ok") {
            Verdict::Accept
        } else {
            Verdict::Reject
        }
    })
}

async fn start(boot: Vec<Multiaddr>) -> Peers {
    Peers::start(Keypair::generate_ed25519(), config(boot), validator(), None)
        .await
        .unwrap()
}

async fn until<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut f: impl FnMut() -> F,
) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_is_relayed_through_the_boot_node_and_rejected_messages_stop_there() {
    let mut boot_cfg = config(vec![]);
    boot_cfg.max_peers = 50;
    let boot = Peers::start(Keypair::generate_ed25519(), boot_cfg, validator(), None)
        .await
        .unwrap();
    assert!(
        until(Duration::from_secs(5), || async {
            !boot.status().await.unwrap().listen_addrs.is_empty()
        })
        .await
    );
    let listen: Multiaddr = boot.status().await.unwrap().listen_addrs[0]
        .parse()
        .unwrap();
    let boot_addr = listen.with(libp2p::multiaddr::Protocol::P2p(boot.peer_id()));

    let a = start(vec![boot_addr.clone()]).await;
    let b = start(vec![boot_addr]).await;
    let mut b_events = b.subscribe();
    // The mesh forms within a few heartbeats of each connection: the boot
    // node relays in full only to the peers of its mesh, so wait for both
    // before publishing (on a loaded machine B may join well after A).
    let (a_id, b_id) = (a.peer_id().to_string(), b.peer_id().to_string());
    let boot_id = boot.peer_id().to_string();
    assert!(
        until(Duration::from_secs(60), || async {
            let mesh = boot.status().await.unwrap().mesh_peers;
            mesh.contains(&a_id)
                && mesh.contains(&b_id)
                && a.status().await.unwrap().mesh_peers.contains(&boot_id)
                && b.status().await.unwrap().mesh_peers.contains(&boot_id)
        })
        .await,
        "the mesh never formed: boot {:?}",
        boot.status().await.unwrap()
    );
    a.publish(b"ok-1".to_vec()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(PeersEvent::Gossip { from, data }) = b_events.recv().await {
                return (from, data);
            }
        }
    })
    .await
    .expect("node B did not get A's message");
    assert_eq!(got.1, b"ok-1");
    assert_eq!(
        got.0,
        boot.peer_id(),
        "the message came through the boot node"
    );
    let b_status = b.status().await.unwrap();
    assert_eq!(
        b_status.peers,
        vec![boot.peer_id().to_string()],
        "B is connected to the boot node only"
    );

    // An invalid message: the boot node's validator rejects it, so B never sees it.
    a.publish(b"forged".to_vec()).await.unwrap();
    a.publish(b"ok-2".to_vec()).await.unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(PeersEvent::Gossip { data, .. }) = b_events.recv().await {
                let done = data == b"ok-2";
                seen.push(data);
                if done {
                    return;
                }
            }
        }
    })
    .await;
    assert_eq!(
        seen,
        vec![b"ok-2".to_vec()],
        "only the valid message arrives"
    );
    assert!(
        until(Duration::from_secs(5), || async {
            boot.status().await.unwrap().gossip_rejected >= 1
        })
        .await,
        "{:?}",
        boot.status().await.unwrap()
    );
    let a_status = a.status().await.unwrap();
    assert_eq!(a_status.gossip_out, 3);
    assert_eq!(b.status().await.unwrap().gossip_in, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_find_each_other_through_a_discovery_only_boot_node() {
    let mut boot_cfg = config(vec![]);
    boot_cfg.topic = None;
    boot_cfg.max_peers = 50;
    let boot = Peers::start(Keypair::generate_ed25519(), boot_cfg, validator(), None)
        .await
        .unwrap();
    assert!(
        boot.publish(b"ok".to_vec()).await.is_err(),
        "a boot node has no topic"
    );
    assert!(
        until(Duration::from_secs(5), || async {
            !boot.status().await.unwrap().listen_addrs.is_empty()
        })
        .await
    );
    let listen: Multiaddr = boot.status().await.unwrap().listen_addrs[0]
        .parse()
        .unwrap();
    let boot_addr = listen.with(libp2p::multiaddr::Protocol::P2p(boot.peer_id()));
    let mut cfg = config(vec![boot_addr]);
    cfg.max_peers = 10;
    let a = Peers::start(Keypair::generate_ed25519(), cfg.clone(), validator(), None)
        .await
        .unwrap();
    let b = Peers::start(Keypair::generate_ed25519(), cfg, validator(), None)
        .await
        .unwrap();
    let mut b_events = b.subscribe();
    // A learns of B from the boot node (Kademlia) and dials it.
    let b_id = b.peer_id().to_string();
    assert!(
        until(Duration::from_secs(60), || async {
            a.status().await.unwrap().peers.contains(&b_id)
        })
        .await,
        "A never found B: {:?}",
        a.status().await.unwrap()
    );
    assert!(
        until(Duration::from_secs(20), || async {
            a.publish(b"ok-direct".to_vec()).await.is_ok()
        })
        .await
    );
    let from = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(PeersEvent::Gossip { from, .. }) = b_events.recv().await {
                return from;
            }
        }
    })
    .await
    .expect("B did not get A's message");
    assert_eq!(
        from,
        a.peer_id(),
        "straight from A, not through the boot node"
    );
}

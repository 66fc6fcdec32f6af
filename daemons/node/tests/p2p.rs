//! The node's side of the P2P network with real swarms on loopback (no L1:
//! the quote rules' view is set by hand). Invalid quotes stop at the first
//! honest node and cost their sender its connection while honest quotes
//! still arrive; a peer that serves a wrong tx body is penalised and the tx
//! is fetched from another; a node serves the txs it has fetched.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use aztec_prover_l1::quote::{EpochProofQuote, SignedEpochProofQuote};
use aztec_prover_l1::quote_book::View;
use aztec_prover_node::p2p::{self, NodeP2p, P2pOptions};
use aztec_prover_node::txs::TxSource;
use aztec_prover_p2p::{Keypair, Multiaddr, Peers, PeersConfig, Provider, Verdict};
use aztec_zk::circuits::base::Tx;

const CHAIN: u64 = 31337;

fn rollup() -> Address {
    Address::repeat_byte(0x42)
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

/// A node as the daemon starts it, with the quote rules looking at epoch 4
/// (blocks 9..=12) in its claim phase.
async fn honest_node(dir: &std::path::Path) -> (NodeP2p, Multiaddr) {
    let node = p2p::start(
        &P2pOptions {
            data_dir: dir.to_path_buf(),
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            boot_nodes: vec![],
            max_peers: 10,
        },
        CHAIN,
        rollup(),
    )
    .await
    .unwrap();
    node.book.set_view(View::in_claim_phase(4, 9, 12, 36));
    let mut addr = None;
    for _ in 0..100 {
        addr = node
            .peers
            .status()
            .await
            .unwrap()
            .listen_addrs
            .first()
            .cloned();
        if addr.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let addr: Multiaddr = addr.expect("the node never listened").parse().unwrap();
    let addr = addr.with(aztec_prover_p2p::multiaddr::Protocol::P2p(
        node.peers.peer_id(),
    ));
    (node, addr)
}

/// A plain swarm on the quotes topic that dials only `boot`.
async fn peer(
    boot: &Multiaddr,
    topic: &str,
    validator: aztec_prover_p2p::Validator,
    provider: Option<Provider>,
) -> Peers {
    Peers::start(
        Keypair::generate_ed25519(),
        PeersConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            boot_nodes: vec![boot.clone()],
            topic: Some(topic.to_string()),
            // Large enough to send what the honest node must refuse.
            max_message_bytes: 64 << 10,
            max_peers: 1,
            heartbeat: Duration::from_millis(200),
        },
        validator,
        provider,
    )
    .await
    .unwrap()
}

fn quote(key: &PrivateKeySigner, fee: u32) -> EpochProofQuote {
    EpochProofQuote {
        prover: key.address(),
        epoch_number: 4,
        epoch_init_block: 9,
        epoch_final_block: 12,
        total_fees: U256::from(777u64),
        rollup_address: rollup(),
        basis_point_fee: fee,
        bond_amount: U256::from(100u64),
        valid_until_slot: 22,
    }
}

fn signed(key: &PrivateKeySigner, q: EpochProofQuote) -> SignedEpochProofQuote {
    q.sign(key, CHAIN).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_quotes_stop_at_the_first_honest_node_and_a_flooder_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let (honest, addr) = honest_node(dir.path()).await;
    let topic = honest.book.topic();
    // The proposer's side: takes whatever reaches it.
    let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let seen = got.clone();
    let proposer = peer(
        &addr,
        &topic,
        Arc::new(move |_, b: &[u8]| {
            seen.lock().unwrap().push(b.to_vec());
            Verdict::Accept
        }),
        None,
    )
    .await;
    // A flooder that relays anything.
    let flooder = peer(&addr, &topic, Arc::new(|_, _| Verdict::Accept), None).await;
    let (h, p, f) = (
        honest.peers.peer_id().to_string(),
        proposer.peer_id().to_string(),
        flooder.peer_id().to_string(),
    );
    assert!(
        until(Duration::from_secs(60), || async {
            let mesh = honest.peers.status().await.unwrap().mesh_peers;
            mesh.contains(&p)
                && mesh.contains(&f)
                && flooder.status().await.unwrap().mesh_peers.contains(&h)
                && proposer.status().await.unwrap().mesh_peers.contains(&h)
        })
        .await,
        "the mesh never formed: {:?}",
        honest.peers.status().await.unwrap()
    );
    assert_eq!(
        proposer.status().await.unwrap().peers,
        vec![h.clone()],
        "the proposer hears only the honest node"
    );

    // A valid quote relayed by the flooder goes through, once.
    let (alice, bob) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let first = signed(&alice, quote(&alice, 300));
    flooder.publish(first.to_bytes()).await.unwrap();
    assert!(
        until(Duration::from_secs(20), || async {
            got.lock().unwrap().len() == 1
        })
        .await
    );
    // The same bytes again, from the honest node: a duplicate.
    assert!(honest.peers.publish(first.to_bytes()).await.is_err());

    // Five invalid ones: each refused by the honest node, the fifth costs
    // the flooder its connection.
    let mut forged = signed(&bob, quote(&bob, 10));
    forged.quote.prover = alice.address();
    let mut expired = quote(&alice, 300);
    expired.valid_until_slot = 5;
    let mut other_rollup = quote(&alice, 300);
    other_rollup.rollup_address = Address::repeat_byte(0x43);
    let invalid = [
        forged.to_bytes(),
        signed(&alice, expired).to_bytes(),
        signed(&alice, other_rollup).to_bytes(),
        vec![7u8; 2048],
        b"not a quote".to_vec(),
    ];
    for m in &invalid {
        flooder.publish(m.clone()).await.unwrap();
    }
    assert!(
        until(Duration::from_secs(30), || async {
            let s = honest.peers.status().await.unwrap();
            s.peers_banned == 1 && !s.peers.contains(&f)
        })
        .await,
        "the flooder is still connected: {:?}",
        honest.peers.status().await.unwrap()
    );
    let s = honest.peers.status().await.unwrap();
    assert_eq!(s.gossip_rejected, 5, "{s:?}");

    // An honest quote still arrives; nothing invalid ever did.
    let second = signed(&bob, quote(&bob, 250));
    honest.peers.publish(second.to_bytes()).await.unwrap();
    assert!(
        until(Duration::from_secs(20), || async {
            got.lock().unwrap().len() == 2
        })
        .await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        *got.lock().unwrap(),
        vec![first.to_bytes(), second.to_bytes()]
    );
    // The flooder cannot come back while banned.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!honest.peers.status().await.unwrap().peers.contains(&f));
}

fn two_txs() -> (Tx, Tx) {
    use rand::SeedableRng;
    let world = aztec_prover_rollup::world::World::genesis(aztec_zk::RollupParams::test());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let a = aztec_prover_rollup::world::synthetic_tx(&world, &mut rng).unwrap();
    let b = aztec_prover_rollup::world::synthetic_tx(&world, &mut rng).unwrap();
    assert_ne!(a.hash(), b.hash());
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_serves_a_wrong_tx_body_is_penalised_and_the_tx_fetched_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = honest_node(dir.path()).await;
    let topic = node.book.topic();
    let (wanted, other) = two_txs();
    let hash = B256::from(wanted.hash());
    let source = TxSource {
        peers: Some(node.peers.clone()),
        http: None,
        cache: node.txs.clone(),
    };
    // A liar answers every request with another tx.
    let lie = serde_json::to_vec(&other).unwrap();
    let liar = peer(
        &addr,
        &topic,
        Arc::new(|_, _| Verdict::Ignore),
        Some(Arc::new(move |_| Some(lie.clone()))),
    )
    .await;
    let liar_id = liar.peer_id().to_string();
    assert!(
        until(Duration::from_secs(20), || async {
            node.peers.status().await.unwrap().peers.contains(&liar_id)
        })
        .await
    );
    let e = source.fetch_tx(hash, 1).await.unwrap_err().to_string();
    assert!(e.contains("sent a tx of hash"), "{e}");
    assert_eq!(
        node.peers.status().await.unwrap().scores.get(&liar_id),
        Some(&-20.0)
    );

    // An honest peer joins: asked first (its score is higher), it gives the tx.
    let body = serde_json::to_vec(&wanted).unwrap();
    let want = hash;
    let honest = peer(
        &addr,
        &topic,
        Arc::new(|_, _| Verdict::Ignore),
        Some(Arc::new(move |k: &[u8]| {
            (k == want.as_slice()).then(|| body.clone())
        })),
    )
    .await;
    let honest_id = honest.peer_id().to_string();
    assert!(
        until(Duration::from_secs(20), || async {
            node.peers
                .status()
                .await
                .unwrap()
                .peers
                .contains(&honest_id)
        })
        .await
    );
    assert_eq!(source.fetch_tx(hash, 1).await.unwrap(), wanted);
    let s = node.peers.status().await.unwrap();
    assert!(s.scores.get(&liar_id).is_some_and(|v| *v <= -20.0), "{s:?}");
    assert_eq!(s.scores.get(&honest_id), None, "{s:?}");

    // The node now serves the tx it fetched to whoever asks.
    let answer = honest
        .request(node.peers.peer_id(), hash.to_vec())
        .await
        .unwrap();
    assert_eq!(answer, Some(serde_json::to_vec(&wanted).unwrap()));
    assert_eq!(
        honest
            .request(node.peers.peer_id(), B256::ZERO.to_vec())
            .await
            .unwrap(),
        None
    );
}

//! `aztec-prover bench gossip`: how long a quote takes from a prover node to
//! the proposer over P2P, directly and relayed by another node, against the
//! HTTP path (`node_addEpochProofQuote`) measured in the same run; and the
//! bytes the nodes put on the wire per quote and while idle, from which the
//! bandwidth of an epoch follows.
//!
//! Every node here is the node daemon's P2P side ([`aztec_prover_node::p2p`]),
//! with its quote rules looking at an epoch in its claim phase; each quote
//! is signed by a prover key of its own, so every one is new and valid.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context as _;
use aztec_prover_l1::quote::EpochProofQuote;
use aztec_prover_l1::quote_book::View;
use aztec_prover_node::p2p::{self, NodeP2p, P2pOptions};
use aztec_prover_p2p::{Multiaddr, PeersEvent};
use tokio::sync::mpsc;

/// What to measure.
pub struct GossipBenchOptions {
    /// Quotes sent on each path.
    pub quotes: usize,
    /// Pause between two quotes (ms).
    pub interval_ms: u64,
    /// Quiet time over which idle traffic is measured (s).
    pub idle_seconds: u64,
    /// One JSON object instead of text.
    pub json: bool,
}

const CHAIN: u64 = 31337;

fn rollup() -> Address {
    Address::repeat_byte(0x42)
}

/// A node's P2P side on loopback whose rules see epoch 4 claimable now.
async fn node(
    dir: &std::path::Path,
    boot: Vec<Multiaddr>,
    max_peers: u32,
) -> anyhow::Result<(NodeP2p, Multiaddr)> {
    let n = p2p::start(
        &P2pOptions {
            data_dir: dir.to_path_buf(),
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            boot_nodes: boot,
            max_peers,
        },
        CHAIN,
        rollup(),
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    n.book.set_view(View::in_claim_phase(4, 9, 12, 36));
    for _ in 0..100 {
        let s = n.peers.status().await?;
        if let Some(a) = s.listen_addrs.first() {
            let a: Multiaddr = a.parse()?;
            let a = a.with(aztec_prover_p2p::multiaddr::Protocol::P2p(
                n.peers.peer_id(),
            ));
            return Ok((n, a));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("a node never listened")
}

fn fresh_quote() -> anyhow::Result<(Vec<u8>, aztec_prover_l1::quote::SignedEpochProofQuote)> {
    let key = PrivateKeySigner::random();
    let q = EpochProofQuote {
        prover: key.address(),
        epoch_number: 4,
        epoch_init_block: 9,
        epoch_final_block: 12,
        total_fees: U256::from(1_000_000u64),
        rollup_address: rollup(),
        basis_point_fee: 500,
        bond_amount: U256::from(1_000u64),
        valid_until_slot: 22,
    }
    .sign(&key, CHAIN)
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok((q.to_bytes(), q))
}

/// Median, 99th percentile and largest of `v` (ms), sorted in place.
fn spread(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

/// Runs the benchmark.
pub async fn run(opts: GossipBenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(opts.quotes > 0, "--quotes must be at least 1");
    let dir = tempfile::tempdir().context("a work directory")?;
    // The proposer; A dials it; B dials only A (one peer): B's quotes are relayed.
    let (proposer, p_addr) = node(&dir.path().join("proposer"), vec![], 50).await?;
    let (a, a_addr) = node(&dir.path().join("a"), vec![p_addr], 50).await?;
    let (b, _) = node(&dir.path().join("b"), vec![a_addr], 1).await?;
    let (p_id, a_id) = (
        proposer.peers.peer_id().to_string(),
        a.peers.peer_id().to_string(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ps, as_, bs) = (
            proposer.peers.status().await?,
            a.peers.status().await?,
            b.peers.status().await?,
        );
        if ps.mesh_peers.contains(&a_id)
            && as_.mesh_peers.contains(&p_id)
            && bs.mesh_peers.contains(&a_id)
        {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the mesh did not form in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Arrivals at the proposer, by the quote's bytes.
    let (tx, mut arrivals) = mpsc::unbounded_channel::<(B256, Instant)>();
    let mut events = proposer.peers.subscribe();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let PeersEvent::Gossip { data, .. } = e {
                let _ = tx.send((alloy::primitives::keccak256(&data), Instant::now()));
            }
        }
    });
    // The HTTP path: the devnet's coordination endpoint, on loopback.
    let shared = Arc::new(aztec_prover_devnet::Shared::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = aztec_prover_devnet::server::serve(listener, shared.clone(), CHAIN, rollup())?;
    let http = aztec_prover_l1::remote::RemoteNode::new(&url, Duration::from_secs(10))
        .map_err(|e| anyhow::anyhow!(e))?;

    let before = |n: &NodeP2p| {
        let p = n.peers.clone();
        async move { p.status().await.map(|s| (s.bytes_in, s.bytes_out)) }
    };
    let wire_start = (
        before(&proposer).await?,
        before(&a).await?,
        before(&b).await?,
    );
    let mut paths: Vec<(&str, Vec<f64>)> = vec![
        ("HTTP", vec![]),
        ("gossip, 1 hop", vec![]),
        ("gossip, 2 hops", vec![]),
    ];
    let sending_started = Instant::now();
    for _ in 0..opts.quotes {
        let (_, q) = fresh_quote()?;
        let t = Instant::now();
        http.add_quote(&q).await.map_err(|e| anyhow::anyhow!(e))?;
        paths[0].1.push(t.elapsed().as_secs_f64() * 1e3);
        for (i, from) in [(1, &a), (2, &b)] {
            let (bytes, _) = fresh_quote()?;
            let id = alloy::primitives::keccak256(&bytes);
            let t = Instant::now();
            from.peers.publish(bytes).await?;
            let got = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some((h, at)) = arrivals.recv().await {
                    if h == id {
                        return Some(at);
                    }
                }
                None
            })
            .await
            .ok()
            .flatten()
            .context("a quote did not reach the proposer within 10 s")?;
            paths[i].1.push(got.duration_since(t).as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(opts.interval_ms)).await;
    }
    let wire_sent = (
        before(&proposer).await?,
        before(&a).await?,
        before(&b).await?,
    );
    let elapsed_sending = sending_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(opts.idle_seconds)).await;
    let wire_idle = (
        before(&proposer).await?,
        before(&a).await?,
        before(&b).await?,
    );
    let _ = server.stop();

    // Bytes: per quote (2 quotes per round: 1 and 2 hops), per node; idle per second.
    let quotes = (2 * opts.quotes) as f64;
    let per = |s: (u64, u64), e: (u64, u64)| (e.0 - s.0 + e.1 - s.1) as f64;
    let sending = [
        per(wire_start.0, wire_sent.0),
        per(wire_start.1, wire_sent.1),
        per(wire_start.2, wire_sent.2),
    ];
    let idle = [
        per(wire_sent.0, wire_idle.0),
        per(wire_sent.1, wire_idle.1),
        per(wire_sent.2, wire_idle.2),
    ];
    let idle_s = opts.idle_seconds.max(1) as f64;
    // A node's share while quotes flow: what it moved, less its idle rate
    // over that time, per quote.
    let per_quote: Vec<f64> = sending
        .iter()
        .zip(&idle)
        .map(|(s, i)| ((s - i / idle_s * elapsed_sending) / quotes).max(0.0))
        .collect();
    let idle_rate: Vec<f64> = idle.iter().map(|i| i / idle_s).collect();
    let mut out = Vec::new();
    for (name, v) in &mut paths {
        let (median, p99, max) = spread(v);
        out.push(
            serde_json::json!({"path": name, "median_ms": median, "p99_ms": p99, "max_ms": max}),
        );
    }
    let (http_median, gossip_median) = (
        out[0]["median_ms"].as_f64().unwrap_or(0.0),
        out[2]["median_ms"].as_f64().unwrap_or(0.0),
    );
    // An epoch as Aztec runs it: 32 slots of 36 s; 20 provers quote once.
    let (epoch_s, provers) = (32.0 * 36.0, 20.0);
    let epoch_bytes: Vec<f64> = (0..3)
        .map(|i| idle_rate[i] * epoch_s + per_quote[i] * provers)
        .collect();
    if opts.json {
        println!(
            "{}",
            serde_json::json!({
                "quotes_per_path": opts.quotes,
                "latency": out,
                "gossip_2_hops_vs_http_median": gossip_median / http_median.max(1e-9),
                "bytes_per_quote": {"proposer": per_quote[0], "relay": per_quote[1], "sender": per_quote[2]},
                "idle_bytes_per_s": {"proposer": idle_rate[0], "relay": idle_rate[1], "sender": idle_rate[2]},
                "epoch_bytes_32x36s_20_quotes": {"proposer": epoch_bytes[0], "relay": epoch_bytes[1], "sender": epoch_bytes[2]},
            })
        );
        return Ok(());
    }
    println!(
        "quote delivery to the proposer, {} quotes per path (loopback):",
        opts.quotes
    );
    for o in &out {
        println!(
            "  {:<16} median {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
            o["path"].as_str().unwrap_or(""),
            o["median_ms"].as_f64().unwrap_or(0.0),
            o["p99_ms"].as_f64().unwrap_or(0.0),
            o["max_ms"].as_f64().unwrap_or(0.0)
        );
    }
    println!(
        "  gossip over 2 hops / HTTP (median): {:.2}x",
        gossip_median / http_median.max(1e-9)
    );
    println!("bytes on the wire (after Noise and Yamux, both directions):");
    for (i, who) in ["proposer", "relay (A)", "sender (B)"].iter().enumerate() {
        println!(
            "  {:<11} {:>7.0} B per quote   {:>7.0} B/s idle   ~{:>8.1} KiB per epoch (32 slots of 36 s, 20 quotes)",
            who,
            per_quote[i],
            idle_rate[i],
            epoch_bytes[i] / 1024.0
        );
    }
    Ok(())
}

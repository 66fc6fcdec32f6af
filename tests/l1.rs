//! The L1 contracts and the node's coordination, against a real anvil with
//! the contracts deployed by the devnet: quotes, claims, bonds, pruning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use aztec_prover_devnet::{Devnet, DevnetOptions};
use aztec_prover_l1::quote::EpochProofQuote;
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_l1::{L1, L1Error};
use aztec_prover_node::quotes::{EpochSummary, QuoteProvider};
use aztec_prover_node::{Monitor, MonitorConfig, NodeEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info".into())
                .add_directive("r1cs=off".parse().unwrap()),
        )
        .try_init();
}

/// Slots of 2 s, epochs of 2 slots; claims within 4 slots, proofs within 6.
fn fast() -> DevnetOptions {
    DevnetOptions {
        slot_duration: 2,
        epoch_duration: 2,
        claim_duration_slots: 4,
        proof_window_slots: 6,
        ..DevnetOptions::default()
    }
}

/// Waits until the first unproven epoch is over; returns it.
async fn completed_epoch(l1: &L1) -> aztec_prover_l1::chain::EpochToProve {
    let cfg = l1.config().await.unwrap();
    for _ in 0..300 {
        let slot = l1.current_slot().await.unwrap();
        if let Some(e) = l1.epoch_to_prove().await.unwrap()
            && e.epoch < cfg.epoch_of(slot)
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no epoch completed within a minute");
}

/// Every position of an epoch's tree.
fn all(jobs: &[aztec_prover_node::orchestrator::ProvenJob]) -> Vec<usize> {
    (0..jobs.len()).collect()
}

fn reason(e: L1Error) -> String {
    match e {
        L1Error::Reverted { reason, .. } => reason,
        other => panic!("expected a revert, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_signed_by_the_prover_are_claimed_and_forged_or_expired_ones_refused() {
    init_logs();
    // Seven claims are tried in turn: windows wide enough that a loaded
    // machine does not see the claim phase or the quote run out meanwhile.
    let devnet = Devnet::start(DevnetOptions {
        claim_quotes: false,
        claim_duration_slots: 30,
        proof_window_slots: 40,
        ..fast()
    })
    .await
    .unwrap();
    let proposer = devnet.client(&devnet.proposer).await.unwrap();
    let prover_key = devnet.provers[0].clone();
    let prover = devnet.client(&prover_key).await.unwrap();
    let bond = U256::from(500u64);
    prover.deposit_bond(U256::from(1_000u64)).await.unwrap();

    let e = completed_epoch(&proposer).await;
    let slot = proposer.current_slot().await.unwrap();
    let fees = proposer
        .fees_between(e.first_block, e.last_block)
        .await
        .unwrap();
    let quote = EpochProofQuote {
        prover: prover_key.address(),
        epoch_number: e.epoch,
        epoch_init_block: e.first_block,
        epoch_final_block: e.last_block,
        total_fees: fees,
        rollup_address: devnet.deployment.rollup,
        basis_point_fee: 1_500,
        bond_amount: bond,
        valid_until_slot: slot + 25,
    };
    // Our EIP-712 digest is the contract's.
    let onchain = proposer
        .read(
            "quoteToDigest",
            proposer.rollup().quoteToDigest(quote.to_sol()),
        )
        .await
        .unwrap();
    assert_eq!(onchain, quote.signing_hash(devnet.chain_id()));

    // Signed by someone else than the prover it names.
    let forger = devnet.provers[1].clone();
    let mut forged = quote.clone().sign(&prover_key, devnet.chain_id()).unwrap();
    forged.signature = {
        let mut q = quote.clone();
        q.prover = forger.address();
        let mut s = q.sign(&forger, devnet.chain_id()).unwrap();
        s.quote = quote.clone();
        s.signature
    };
    let r = reason(proposer.claim(&forged).await.unwrap_err());
    assert!(r.contains("InvalidSignature"), "{r}");
    // Tampered terms after signing.
    let mut tampered = quote.clone().sign(&prover_key, devnet.chain_id()).unwrap();
    tampered.quote.basis_point_fee = 10;
    let r = reason(proposer.claim(&tampered).await.unwrap_err());
    assert!(r.contains("InvalidSignature"), "{r}");
    // Expired.
    let expired = EpochProofQuote {
        valid_until_slot: slot - 1,
        ..quote.clone()
    }
    .sign(&prover_key, devnet.chain_id())
    .unwrap();
    let r = reason(proposer.claim(&expired).await.unwrap_err());
    assert!(r.contains("QuoteExpired"), "{r}");
    // For another epoch.
    let wrong = EpochProofQuote {
        epoch_number: e.epoch + 1,
        ..quote.clone()
    }
    .sign(&prover_key, devnet.chain_id())
    .unwrap();
    let r = reason(proposer.claim(&wrong).await.unwrap_err());
    assert!(r.contains("QuoteWrongEpoch"), "{r}");
    // Only the proposer claims.
    let good = quote.clone().sign(&prover_key, devnet.chain_id()).unwrap();
    let r = reason(prover.claim(&good).await.unwrap_err());
    assert!(r.contains("NotProposer"), "{r}");

    proposer.claim(&good).await.unwrap();
    let claim = proposer.proof_claim().await.unwrap().unwrap();
    assert_eq!(claim.epoch, e.epoch);
    assert_eq!(claim.prover, prover_key.address());
    assert_eq!(claim.bond_amount, bond);
    assert_eq!(claim.basis_point_fee, 1_500);
    let staked = prover
        .read("staked", prover.escrow().staked(prover_key.address()))
        .await
        .unwrap();
    assert_eq!(staked, bond);
    assert_eq!(
        prover.escrow_deposit(prover_key.address()).await.unwrap(),
        U256::from(500u64)
    );
    let r = reason(proposer.claim(&good).await.unwrap_err());
    assert!(r.contains("AlreadyClaimed"), "{r}");
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bond_is_topped_up_exactly_when_under_the_minimum() {
    init_logs();
    let devnet = Devnet::start(DevnetOptions {
        claim_quotes: false,
        ..fast()
    })
    .await
    .unwrap();
    let key = devnet.provers[2].clone();
    let l1 = devnet.client(&key).await.unwrap();
    let (min, target) = (U256::from(100u64), U256::from(250u64));
    let ensure = || aztec_prover_node::bond::ensure_bond(&l1, min, target);
    assert_eq!(ensure().await.unwrap(), U256::from(250u64));
    assert_eq!(l1.escrow_deposit(key.address()).await.unwrap(), target);
    // At or over the minimum: nothing.
    assert_eq!(ensure().await.unwrap(), U256::ZERO);
    l1.send(
        "startWithdraw",
        l1.escrow().startWithdraw(U256::from(150u64)),
    )
    .await
    .unwrap();
    assert_eq!(l1.escrow_deposit(key.address()).await.unwrap(), min);
    assert_eq!(ensure().await.unwrap(), U256::ZERO);
    // Under it: back to the target.
    l1.send("startWithdraw", l1.escrow().startWithdraw(U256::from(1u64)))
        .await
        .unwrap();
    assert_eq!(ensure().await.unwrap(), U256::from(151u64));
    assert_eq!(l1.escrow_deposit(key.address()).await.unwrap(), target);
    // Withdrawals wait for their delay.
    let r = reason(
        l1.send("executeWithdraw", l1.escrow().executeWithdraw())
            .await
            .unwrap_err(),
    );
    assert!(r.contains("WithdrawalNotReady"), "{r}");
    // Not enough tokens for the target: a clear error, nothing sent.
    let poor = PrivateKeySigner::random();
    let poor_l1 = L1::new(
        aztec_prover_l1::chain::connect(
            &devnet.l1_url(),
            Some(poor.clone()),
            Duration::from_secs(5),
        )
        .unwrap(),
        devnet.deployment,
        poor.address(),
    )
    .await
    .unwrap();
    let e = aztec_prover_node::bond::ensure_bond(&poor_l1, min, target)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("holds only 0"), "{e}");
    devnet.stop().await;
}

/// A one-shot-per-connection HTTP server answering every POST with `answer`
/// and recording the bodies it was sent.
async fn quote_server(
    answer: &'static str,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/quote", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let body: serde_json::Value =
                                serde_json::from_slice(&buf[end + 4..end + 4 + len])
                                    .unwrap_or_default();
                            let _ = tx.send(body);
                            let resp = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                                answer.len()
                            );
                            let _ = s.write_all(resp.as_bytes()).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

async fn monitor(devnet: &Devnet, key: &PrivateKeySigner, quotes: QuoteProvider) -> Monitor {
    let l1 = devnet.client(key).await.unwrap();
    Monitor::new(
        l1,
        MonitorConfig {
            signer: key.clone(),
            quotes,
            coordination: RemoteNode::new(&devnet.node_url, Duration::from_secs(5))
                .unwrap()
                .into(),
            minimum_escrow: U256::from(1_000u64),
            target_escrow: U256::from(2_000u64),
            polling_interval: Duration::from_millis(200),
        },
    )
    .await
    .unwrap()
}

async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    within: Duration,
    f: impl Fn(&NodeEvent) -> bool,
) -> NodeEvent {
    tokio::time::timeout(within, async {
        loop {
            match rx.recv().await {
                Ok(e) if f(&e) => return e,
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("the event did not come in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_quote_provider_is_used_and_an_answer_without_a_fee_gives_no_quote() {
    init_logs();
    let devnet = Devnet::start(DevnetOptions {
        claim_quotes: false,
        ..fast()
    })
    .await
    .unwrap();
    let (url, mut bodies) = quote_server(r#"{"basisPointFee": 321, "bondAmount": "777"}"#).await;
    let key = devnet.provers[0].clone();
    let m = monitor(
        &devnet,
        &key,
        QuoteProvider::http(&url, Duration::from_secs(5)).unwrap(),
    )
    .await;
    let mut events = m.subscribe();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(aztec_prover_node::monitor::run(
        m,
        stop_rx,
        Default::default(),
    ));
    let sent = next_event(&mut events, Duration::from_secs(40), |e| {
        matches!(e, NodeEvent::QuoteSent { .. })
    })
    .await;
    let NodeEvent::QuoteSent { epoch, terms } = sent else {
        unreachable!()
    };
    assert_eq!(terms.basis_point_fee, 321);
    assert_eq!(terms.bond_amount, U256::from(777u64));
    let body = bodies.recv().await.unwrap();
    assert_eq!(body["epochNumber"], epoch);
    for field in ["fromBlock", "endBlock", "txCount", "totalFees"] {
        assert!(body.get(field).is_some(), "{field} missing from {body}");
    }
    // The coordination node holds it, signed by the prover.
    let held = devnet.shared.quotes(epoch);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].signer(devnet.chain_id()), Some(key.address()));
    assert_eq!(held[0].quote.basis_point_fee, 321);
    let _ = stop.send(true);
    task.await.unwrap();

    // An answer without a fee: no quote, and the reason.
    let (url, _bodies) = quote_server(r#"{"bondAmount": 5}"#).await;
    let provider = QuoteProvider::http(&url, Duration::from_secs(5)).unwrap();
    let summary = EpochSummary {
        epoch_number: 1,
        from_block: 1,
        end_block: 2,
        tx_count: 3,
        total_fees: "4".into(),
    };
    let why = provider.terms(&summary).await.unwrap_err();
    assert!(why.contains("basisPointFee"), "{why}");
    let fixed = QuoteProvider::Fixed {
        basis_point_fee: Some(10),
        bond_amount: None,
    };
    assert!(
        fixed
            .terms(&summary)
            .await
            .unwrap_err()
            .contains("QUOTE_PROVIDER_BOND_AMOUNT")
    );
    devnet.stop().await;
}

/// Paused (over D-Bus, through the node's state), the monitor watches L1
/// but sends no quote; resumed, it quotes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_sends_no_quotes_until_resumed() {
    init_logs();
    let devnet = Devnet::start(DevnetOptions {
        claim_quotes: false,
        ..fast()
    })
    .await
    .unwrap();
    let key = devnet.provers[0].clone();
    let fixed = QuoteProvider::Fixed {
        basis_point_fee: Some(10),
        bond_amount: Some(U256::from(100u64)),
    };
    let state = aztec_prover_node::status::StatusBoard::new();
    assert!(state.set_paused(true));
    let m = monitor(&devnet, &key, fixed)
        .await
        .with_status(state.clone());
    let mut events = m.subscribe();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(aztec_prover_node::monitor::run(
        m,
        stop_rx,
        Default::default(),
    ));
    // Two epochs go by (4 s each) with the first one quotable all along.
    let quiet = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::QuoteSent { epoch, .. }) => return epoch,
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "a paused node quoted epoch {quiet:?}");
    assert!(devnet.shared.quotes(1).is_empty());
    assert!(state.snapshot().current_epoch.is_some_and(|e| e >= 2));
    assert!(state.snapshot().quoted_epochs.is_empty());
    state.set_paused(false);
    let sent = next_event(&mut events, Duration::from_secs(40), |e| {
        matches!(e, NodeEvent::QuoteSent { .. })
    })
    .await;
    let NodeEvent::QuoteSent { epoch, .. } = sent else {
        unreachable!()
    };
    assert_eq!(state.snapshot().quoted_epochs, vec![epoch]);
    assert!(state.snapshot().bond.is_some());
    let _ = stop.send(true);
    task.await.unwrap();
    devnet.stop().await;
}

/// A monitor quoting fixed terms for `key`, run until our quote is claimed.
struct Claimed {
    cfg: aztec_prover_l1::chain::RollupConfig,
    epoch: u64,
    seen_at_slot: u64,
    first_block: u64,
    last_block: u64,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Claimed {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
    }
}

async fn until_our_claim(devnet: &Devnet, key: &PrivateKeySigner, bps: u32, bond: u64) -> Claimed {
    let fixed = QuoteProvider::Fixed {
        basis_point_fee: Some(bps),
        bond_amount: Some(U256::from(bond)),
    };
    let m = monitor(devnet, key, fixed).await;
    let cfg = m.rollup_config();
    let mut events = m.subscribe();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(aztec_prover_node::monitor::run(
        m,
        stop_rx,
        Default::default(),
    ));
    let ev = next_event(&mut events, Duration::from_secs(60), |e| {
        matches!(e, NodeEvent::ClaimIsOurs { .. })
    })
    .await;
    let NodeEvent::ClaimIsOurs {
        epoch,
        seen_at_slot,
        first_block,
        last_block,
    } = ev
    else {
        unreachable!()
    };
    Claimed {
        cfg,
        epoch,
        seen_at_slot,
        first_block,
        last_block,
        stop,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_seen_within_a_slot_and_an_unproven_epoch_is_pruned_and_its_bond_slashed() {
    init_logs();
    let devnet = Devnet::start(fast()).await.unwrap();
    let key = devnet.provers[0].clone();
    let claimed = until_our_claim(&devnet, &key, 2_000, 600).await;
    let (cfg, epoch, seen_at_slot) = (claimed.cfg, claimed.epoch, claimed.seen_at_slot);
    let (first_block, last_block) = (claimed.first_block, claimed.last_block);
    assert!(
        first_block >= 1 && last_block >= first_block,
        "{first_block}..={last_block}"
    );
    let l1 = devnet.client(&key).await.unwrap();
    let claims = l1
        .rollup()
        .EpochProofRightClaimed_filter()
        .from_block(0)
        .query()
        .await
        .unwrap();
    let (c, _) = claims
        .iter()
        .find(|(c, _)| c.epoch == U256::from(epoch))
        .unwrap();
    let claim_slot = u64::try_from(c.slot).unwrap();
    assert!(
        seen_at_slot <= claim_slot + 1,
        "claimed at slot {claim_slot}, seen at {seen_at_slot}"
    );
    let staked = l1
        .read("staked", l1.escrow().staked(key.address()))
        .await
        .unwrap();
    assert_eq!(staked, U256::from(600u64));

    // The first proof of its tree goes to L1 as a chunk (simulated: the
    // devnet runs the mock verifier); L1 keeps its output.
    let remote: aztec_prover_node::txs::TxSource =
        RemoteNode::new(&devnet.node_url, Duration::from_secs(5))
            .unwrap()
            .into();
    let params = aztec_zk::RollupParams::test();
    let plan = aztec_prover_node::epoch::plan_from_genesis(
        &l1,
        &remote,
        &params,
        epoch,
        (first_block, last_block),
        key.address(),
    )
    .await
    .unwrap();
    let jobs: Vec<aztec_prover_node::orchestrator::ProvenJob> = plan
        .jobs
        .iter()
        .map(|j| aztec_prover_node::orchestrator::ProvenJob {
            circuit: j.circuit(),
            children: j.children.clone(),
            public_inputs: aztec_zk::synth::simulate(&params, &j.inputs).unwrap(),
            proof: [[0; 32]; 8],
        })
        .collect();
    assert!(jobs[0].children.is_empty());
    l1.send(
        "submitEpochChunk",
        l1.rollup().submitEpochChunk(
            U256::from(epoch),
            U256::from(jobs.len()),
            aztec_prover_node::publisher::to_sol(&jobs, &[0]),
            Vec::new(),
        ),
    )
    .await
    .unwrap();
    let (size, outstanding, verified) = l1.epoch_chunks(epoch).await.unwrap();
    assert_eq!((size, outstanding), (jobs.len(), 1));
    assert!(verified[0]);

    // Nobody proves it: past the window the next proposal prunes, slashing the bond.
    let deadline = (epoch + 1) * cfg.epoch_duration + cfg.proof_window_slots;
    let mut pruned = Vec::new();
    for _ in 0..200 {
        pruned = l1
            .rollup()
            .PrunedPending_filter()
            .from_block(0)
            .query()
            .await
            .unwrap();
        if !pruned.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (p, log) = pruned.first().expect("the epoch was not pruned");
    assert_eq!(p.epoch, U256::from(epoch));
    assert_eq!(p.slashedProver, key.address());
    assert_eq!(p.slashed, U256::from(600u64));
    let ts = l1
        .provider()
        .get_block_by_number(log.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    assert!(
        cfg.slot_at(ts) >= deadline,
        "pruned at slot {} before the deadline {deadline}",
        cfg.slot_at(ts)
    );
    assert_eq!(
        l1.read("staked", l1.escrow().staked(key.address()))
            .await
            .unwrap(),
        U256::ZERO
    );
    assert!(l1.proof_claim().await.unwrap().is_none());
    // Pruning cleared the epoch's chunks.
    let (size, outstanding, verified) = l1.epoch_chunks(epoch).await.unwrap();
    assert_eq!((size, outstanding, verified.len()), (0, 0, 0));
    claimed.stop().await;
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_proven_for_real_is_verified_on_l1_in_one_batch_and_pays_the_prover() {
    use aztec_prover_node::epoch;
    use aztec_zk::{CircuitId, RollupParams};
    init_logs();
    let params = RollupParams::test();
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path().to_path_buf();
    let p = params.clone();
    std::thread::spawn(move || {
        aztec_zk::keys::generate_dir(&dir, &p, Some("l1-tests"), &CircuitId::ALL, |c, _, t| {
            eprintln!("key {c}: {t:?}")
        })
    })
    .join()
    .unwrap()
    .unwrap();
    let devnet = Devnet::start(DevnetOptions {
        keys_dir: Some(keys.path().to_path_buf()),
        proof_window_slots: 60,
        max_txs_per_block: 2,
        ..fast()
    })
    .await
    .unwrap();
    let key = devnet.provers[0].clone();
    let bps = 2_500u32;
    let claimed = until_our_claim(&devnet, &key, bps, 400).await;
    let e = claimed.epoch;
    let (first, last) = (claimed.first_block, claimed.last_block);
    claimed.stop().await;

    // The epoch's job tree, re-executed from genesis.
    let l1 = devnet.client(&key).await.unwrap();
    let remote: aztec_prover_node::txs::TxSource =
        RemoteNode::new(&devnet.node_url, Duration::from_secs(5))
            .unwrap()
            .into();
    let plan = epoch::plan_from_genesis(&l1, &remote, &params, e, (first, last), key.address())
        .await
        .unwrap();

    // Every job proven on the CPU backend.
    let keys_dir = keys.path().to_path_buf();
    let p = params.clone();
    let planned = plan.jobs.clone();
    let jobs: Vec<aztec_prover_node::orchestrator::ProvenJob> =
        tokio::task::spawn_blocking(move || {
            use rand::SeedableRng;
            let be = aztec_backend_abi::Backend::load("cpu").unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(9);
            let mut loaded = std::collections::HashMap::new();
            planned
                .iter()
                .map(|j| {
                    let c = j.circuit();
                    let k = loaded.entry(c).or_insert_with(|| {
                        aztec_zk::keys::load_prover_key(&keys_dir, c, &p).unwrap().1
                    });
                    let out = aztec_zk::groth16::prove(&be, k, &j.inputs, &mut rng).unwrap();
                    aztec_prover_node::orchestrator::ProvenJob {
                        circuit: c,
                        children: j.children.clone(),
                        public_inputs: out.public_inputs,
                        proof: aztec_zk::groth16::evm::proof_words(&out.proof),
                    }
                })
                .collect()
        })
        .await
        .unwrap();
    let fees = l1.fees_between(first, last).await.unwrap();
    let args = aztec_prover_node::publisher::root_args(&plan, e, first, last, fees);
    let refuse = |jobs: Vec<aztec_prover_node::orchestrator::ProvenJob>,
                  args: aztec_prover_l1::bindings::Rollup::EpochProofArgs| {
        let l1 = l1.clone();
        async move {
            reason(
                l1.read(
                    "submitEpochRootProof",
                    l1.rollup().submitEpochRootProof(
                        args,
                        U256::from(jobs.len()),
                        aztec_prover_node::publisher::to_sol(&jobs, &all(&jobs)),
                        Vec::new(),
                    ),
                )
                .await
                .unwrap_err(),
            )
        }
    };
    // Two base rollups' proofs swapped: valid points, wrong statements.
    let bases: Vec<usize> = (0..jobs.len())
        .filter(|i| jobs[*i].circuit == CircuitId::BaseRollup)
        .collect();
    let mut swapped = jobs.clone();
    swapped[bases[0]].proof = jobs[bases[1]].proof;
    swapped[bases[1]].proof = jobs[bases[0]].proof;
    let r = refuse(swapped, args.clone()).await;
    assert!(r.contains("PairingCheckFailed"), "{r}");
    // A child whose output is not what its parent restates.
    let mut unlinked = jobs.clone();
    unlinked[bases[0]].public_inputs[3] = aztec_zk::Felt::from_u64(1 << 40);
    let r = refuse(unlinked, args.clone()).await;
    assert!(r.contains("LinkMismatch"), "{r}");
    // A root naming another prover.
    let mut thief = jobs.clone();
    let root = thief.len() - 1;
    thief[root].public_inputs[9] = epoch::prover_id(devnet.provers[1].address());
    let r = refuse(thief, args.clone()).await;
    assert!(r.contains("RootMismatch"), "{r}");
    // Fees that are not the chain's.
    let mut wrong_fees = args.clone();
    wrong_fees.totalFees += U256::from(1u64);
    let r = refuse(jobs.clone(), wrong_fees).await;
    assert!(r.contains("FeesMismatch"), "{r}");

    // The single transaction's gas, as L1 estimates it (not sent).
    let single = l1
        .rollup()
        .submitEpochRootProof(
            args.clone(),
            U256::from(jobs.len()),
            aztec_prover_node::publisher::to_sol(&jobs, &all(&jobs)),
            Vec::new(),
        )
        .from(key.address())
        .estimate_gas()
        .await
        .unwrap();

    // Chunks: a budget that cuts this small epoch into at least three.
    use aztec_prover_node::publisher::{Chunk, TxBudget, outputs_sol, to_sol};
    let budget = TxBudget {
        gas: (single / 3).max(900_000),
        calldata_bytes: 120 << 10,
    };
    let n = jobs.len();
    let size = U256::from(n);
    let chunk_reason =
        |from: alloy::primitives::Address,
         epoch: u64,
         size: U256,
         proofs: Vec<aztec_prover_l1::bindings::Rollup::EpochProof>,
         consumed: Vec<aztec_prover_l1::bindings::Rollup::VerifiedOutput>| {
            let l1 = l1.clone();
            async move {
                let r = l1.rollup();
                let call = r
                    .submitEpochChunk(U256::from(epoch), size, proofs, consumed)
                    .from(from);
                reason(l1.read("submitEpochChunk", call).await.unwrap_err())
            }
        };
    let all_positions: Vec<usize> = (0..n).collect();
    let take = aztec_prover_node::publisher::next_run(&jobs, &all_positions, e, &budget);
    assert!(
        take < n / 2,
        "the budget makes small chunks ({take} of {n})"
    );
    let first_chunk = Chunk::of(&jobs, &all_positions[..take]);
    // Only the claimed prover sends chunks.
    let other = devnet.provers[1].address();
    let r = chunk_reason(other, e, size, to_sol(&jobs, &first_chunk.proofs), vec![]).await;
    assert!(r.contains("NotClaimant"), "{r}");
    // A chunk of another epoch.
    let r = chunk_reason(
        key.address(),
        e + 1,
        size,
        to_sol(&jobs, &first_chunk.proofs),
        vec![],
    )
    .await;
    assert!(r.contains("NoClaim"), "{r}");
    // A proof outside the epoch's tree (a tree declared smaller).
    let r = chunk_reason(
        key.address(),
        e,
        U256::from(1u64),
        to_sol(&jobs, &first_chunk.proofs),
        vec![],
    )
    .await;
    assert!(r.contains("OutsideTree"), "{r}");
    // The first chunk lands; sent again, it is refused.
    let receipt = l1
        .send(
            "submitEpochChunk",
            l1.rollup().submitEpochChunk(
                U256::from(e),
                size,
                to_sol(&jobs, &first_chunk.proofs),
                outputs_sol(&jobs, &first_chunk.consumed),
            ),
        )
        .await
        .unwrap();
    assert!(
        receipt.gas_used <= budget.gas,
        "{} > {}",
        receipt.gas_used,
        budget.gas
    );
    let r = chunk_reason(
        key.address(),
        e,
        size,
        to_sol(&jobs, &first_chunk.proofs),
        vec![],
    )
    .await;
    assert!(r.contains("AlreadyVerified"), "{r}");
    let (declared, outstanding, verified) = l1.epoch_chunks(e).await.unwrap();
    assert_eq!((declared, outstanding), (n, first_chunk.recorded));
    assert_eq!(verified.iter().filter(|v| **v).count(), take);
    // The rest in one root transaction that consumes a child no chunk
    // verified, or a different one, is refused.
    let rest: Vec<usize> = (take..n).collect();
    let prover = key.address();
    let root_reason = |consumed: Vec<aztec_prover_l1::bindings::Rollup::VerifiedOutput>| {
        let l1 = l1.clone();
        let args = args.clone();
        let proofs = to_sol(&jobs, &rest);
        async move {
            let r = l1.rollup();
            let call = r
                .submitEpochRootProof(args, size, proofs, consumed)
                .from(prover);
            reason(l1.read("submitEpochRootProof", call).await.unwrap_err())
        }
    };
    let recorded = Chunk::of(&jobs, &rest).consumed;
    assert!(!recorded.is_empty());
    let unverified: Vec<usize> = vec![take];
    let r = root_reason(outputs_sol(&jobs, &unverified)).await;
    assert!(r.contains("ChildNotVerified"), "{r}");
    let mut different = outputs_sol(&jobs, &recorded);
    different[0].publicInputs[0] += U256::from(1u64);
    let r = root_reason(different).await;
    assert!(r.contains("ChildOutputMismatch"), "{r}");

    // The publisher finds the first chunk on L1 and sends only the rest,
    // each transaction within the budget.
    let before = l1.token_balance(key.address()).await.unwrap();
    let deposit_before = l1.escrow_deposit(key.address()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let published = aztec_prover_node::publisher::publish(
        &l1,
        &plan,
        e,
        first,
        last,
        &jobs,
        deadline,
        &budget,
        Default::default(),
    )
    .await
    .unwrap();
    assert!(published.txs >= 2, "{published:?}");
    assert!(
        published.max_gas <= budget.gas,
        "{published:?} over {budget:?}"
    );
    let gas = receipt.gas_used + published.gas;
    eprintln!(
        "epoch {e}: {n} proofs; one transaction would take {single} gas ({} per proof); in {} chunks of at most {} gas: {gas} gas ({} per proof, {:+.1}%)",
        single / n as u64,
        published.txs + 1,
        budget.gas,
        gas / n as u64,
        100.0 * (gas as f64 / single as f64 - 1.0)
    );
    let (_, proven) = l1.tips().await.unwrap();
    assert_eq!(proven, last);
    let share = fees * U256::from(bps) / U256::from(10_000u64);
    assert_eq!(
        l1.token_balance(key.address()).await.unwrap(),
        before + share
    );
    assert_eq!(
        l1.read("staked", l1.escrow().staked(key.address()))
            .await
            .unwrap(),
        U256::ZERO
    );
    assert_eq!(
        l1.escrow_deposit(key.address()).await.unwrap(),
        deposit_before + U256::from(400u64)
    );
    assert!(l1.proof_claim().await.unwrap().is_none());
    devnet.stop().await;
}

/// The node's settings that cannot work are refused before it starts.
#[test]
fn the_node_refuses_bad_p2p_and_missing_settings_with_clear_errors() {
    let base = [
        (
            "PROVER_PUBLISHER_PRIVATE_KEY",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        ),
        (
            "ROLLUP_CONTRACT_ADDRESS",
            "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
        ),
        ("PROVER_COORDINATION_NODE_URL", "http://127.0.0.1:9"),
    ];
    let run = |unset: &str, extra: &[(&str, &str)]| {
        let mut c = support::command(&["node", "--config", "/dev/null"]);
        for (k, v) in base {
            if k != unset {
                c.env(k, v);
            }
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    for (boot, why) in [
        ("/ip4/10.0.0.5/tcp/40400", "does not end in /p2p/"),
        ("10.0.0.5:40400", "is not a multiaddr"),
    ] {
        let (code, err) = run("", &[("P2P_ENABLED", "true"), ("BOOT_NODE_URL", boot)]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains(why) && (err.contains("BOOT_NODE_URL") || err.contains("boot_node_url")),
            "{err}"
        );
    }
    let (code, err) = run("", &[("P2P_ENABLED", "true"), ("P2P_MAX_PEERS", "0")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("P2P_MAX_PEERS") || err.contains("p2p_max_peers"),
        "{err}"
    );
    let (code, err) = run("PROVER_PUBLISHER_PRIVATE_KEY", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("PROVER_PUBLISHER_PRIVATE_KEY is not set"),
        "{err}"
    );
    let (code, err) = run("PROVER_COORDINATION_NODE_URL", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("PROVER_COORDINATION_NODE_URL"), "{err}");
    let (code, err) = run("", &[("ROLLUP_CONTRACT_ADDRESS", "0x1234")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ROLLUP_CONTRACT_ADDRESS"), "{err}");
    let (code, err) = run("", &[("QUOTE_PROVIDER_BASIS_POINT_FEE", "20000")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.to_lowercase().contains("basis_point_fee")
            || err.contains("QUOTE_PROVIDER_BASIS_POINT_FEE"),
        "{err}"
    );
}

/// L1 down at start, then up, then gone again: the node waits, works, and
/// keeps running; SIGTERM stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_waits_for_l1_and_survives_it_going_away() {
    init_logs();
    let port = support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("node.log");
    // Simulated proofs need only the circuit sizes.
    let sizes = dir.path().join("sizes");
    aztec_zk::keys::write_params(&sizes, &aztec_zk::RollupParams::test()).unwrap();
    let mut node = support::command(&["node", "--config", "/dev/null", "--dbus", "none"])
        .env("ETHEREUM_HOSTS", format!("http://127.0.0.1:{port}"))
        .env(
            "PROVER_PUBLISHER_PRIVATE_KEY",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        )
        // The first contract address account 0 deploys the rollup at with the mock verifier.
        .env(
            "ROLLUP_CONTRACT_ADDRESS",
            "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
        )
        .env("PROVER_COORDINATION_NODE_URL", "http://127.0.0.1:9")
        .env("PROVER_NODE_POLLING_INTERVAL_MS", "200")
        .env("PROVER_REAL_PROOFS", "false")
        .env("PROVER_KEYS_DIRECTORY", &sizes)
        .env("DATA_DIRECTORY", dir.path().join("node"))
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        support::eventually(Duration::from_secs(20), || log().contains("waiting for L1")),
        "{}",
        log()
    );
    let devnet = Devnet::start(DevnetOptions {
        anvil_port: port,
        claim_quotes: false,
        ..fast()
    })
    .await
    .unwrap();
    assert_eq!(
        format!("{:?}", devnet.deployment.rollup),
        "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0"
    );
    assert!(
        support::eventually(Duration::from_secs(30), || log().contains("on rollup")),
        "{}",
        log()
    );
    assert!(
        support::eventually(Duration::from_secs(30), || log().contains("deposited")),
        "{}",
        log()
    );
    devnet.stop().await;
    assert!(
        support::eventually(Duration::from_secs(20), || log()
            .contains("epoch monitor: L1 RPC error")),
        "{}",
        log()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        node.try_wait().unwrap().is_none(),
        "the node died without L1:\n{}",
        log()
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(node.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = node.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", log());
    assert!(log().contains("node stopped"), "{}", log());
}

/// The main job, end to end: `aztec-prover devnet` proves two epochs with
/// real proofs through the broker and two agents, and L1 verifies them.
/// One agent is killed (-9) in the middle of a job: the broker hands the
/// job to the other agent once its lease runs out, and the epoch is proven.
#[test]
fn the_devnet_proves_two_epochs_with_real_proofs_though_an_agent_dies_mid_job() {
    let keys = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("devnet-keys-test");
    let mut devnet = support::command(&[
        "devnet",
        "--epochs",
        "2",
        "--slot-seconds",
        "5",
        "--agents",
        "2",
        "--keys",
    ])
    .arg(&keys)
    .env("PROVER_REAL_PROOFS", "true")
    .env("LOG_LEVEL", "warn")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = support::collect(devnet.stdout.take().unwrap());
    let stderr = support::collect(devnet.stderr.take().unwrap());
    let err_text = || stderr.lock().unwrap().clone();
    // "broker at http://..., 2 agent(s); logs in /tmp/..."
    let mut logs = None;
    assert!(
        support::eventually(Duration::from_secs(300), || {
            logs = err_text()
                .split("logs in ")
                .nth(1)
                .and_then(|r| r.lines().next())
                .map(|p| std::path::PathBuf::from(p.trim()));
            logs.is_some()
        }),
        "{}",
        err_text()
    );
    let logs = logs.unwrap();
    // The devnet removes its logs when it ends: keep what they last said.
    let read = |name: &str| std::fs::read_to_string(logs.join(name)).unwrap_or_default();
    // Job lines: "proving <circuit> job <id>" and "proved <circuit> job <id> in N ms".
    let last_job_line = |log: &str| {
        log.lines().rev().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let at = w.iter().position(|x| *x == "proving" || *x == "proved")?;
            let job = w.get(at + 3)?;
            (w.get(at + 2) == Some(&"job")).then(|| (w[at] == "proving", job.to_string()))
        })
    };
    let mut killed_job = None;
    assert!(
        support::eventually(Duration::from_secs(180), || {
            let Some((true, job)) = last_job_line(&read("agent1.log")) else {
                return false;
            };
            let agent = support::children_of(devnet.id())
                .into_iter()
                .find(|(_, cmd)| cmd.contains(" agent ") && cmd.contains("--instance 1"));
            let Some((pid, _)) = agent else {
                return false;
            };
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            killed_job = Some(job);
            true
        }),
        "agent 1 never proved a job:\n{}",
        err_text()
    );
    let killed_job = killed_job.unwrap();
    let (mut agent1, mut agent2) = (String::new(), String::new());
    let status = loop {
        for (text, name) in [(&mut agent1, "agent1.log"), (&mut agent2, "agent2.log")] {
            let now = read(name);
            if now.len() >= text.len() {
                *text = now;
            }
        }
        if let Some(s) = devnet.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Give the reader threads the last lines.
    std::thread::sleep(Duration::from_millis(300));
    let stdout = stdout.lock().unwrap().clone();
    let stderr = err_text();
    assert!(status.success(), "{stdout}\n{stderr}");
    // Killed in the middle of that job: its log never says it was proved.
    assert_eq!(
        last_job_line(&agent1),
        Some((true, killed_job.clone())),
        "agent 1 was not killed mid-job:\n{agent1}"
    );
    assert!(
        agent2
            .lines()
            .any(|l| l.contains(" proved ") && l.contains(&format!("job {killed_job} "))),
        "the other agent did not prove job {killed_job}:\n{agent2}"
    );
    eprintln!("agent 1 killed (-9) while proving job {killed_job}; agent 2 proved it");
    assert!(
        stdout.contains("epochs proven:            2"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(stderr.matches("PROVEN on L1").count(), 2, "{stderr}");
    assert!(stderr.contains("real Groth16 proofs"), "{stderr}");
    let proven: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("proven block number:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(proven >= 2, "{stdout}");
}

/// Waits until L1 has a proven block and `node` says `epoch` is proven;
/// checks that its log says once that L1 accepted the epoch's proof.
/// Returns the log.
async fn proven_once(
    l1: &L1,
    node: &aztec_prover_common::child::ChildDaemon,
    epoch: u64,
) -> String {
    assert!(
        support::proven_past(l1, 0).await > 0,
        "the epoch was not proven:\n{}",
        node.log_tail(30)
    );
    assert!(
        support::eventually(Duration::from_secs(20), || node
            .log()
            .contains(&format!("epoch {epoch} proven on L1"))),
        "{}",
        node.log_tail(30)
    );
    let log = node.log();
    let accepted = format!("epoch {epoch} proof accepted on L1");
    assert_eq!(log.matches(&accepted).count(), 1, "{}", node.log_tail(40));
    log
}

/// What the node daemon's tests start from: a directory, the test sizes in
/// `<dir>/sizes`, and a devnet with 3 s slots and a 20-slot proof window.
async fn node_test_setup() -> (tempfile::TempDir, std::path::PathBuf, Devnet) {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let sizes = dir.path().join("sizes");
    aztec_zk::keys::write_params(&sizes, &aztec_zk::RollupParams::test()).unwrap();
    let devnet = Devnet::start(DevnetOptions {
        slot_duration: 3,
        proof_window_slots: 20,
        max_txs_per_block: 2,
        ..fast()
    })
    .await
    .unwrap();
    (dir, sizes, devnet)
}

/// L1 stopped in the proof window just as the epoch's proofs become ready,
/// then started again with its chain: the node waits for it, submits the
/// epoch once, and L1 takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_l1_restart_in_the_proof_window_is_waited_out_and_the_epoch_submitted_once() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let sizes = dir.path().join("sizes");
    aztec_zk::keys::write_params(&sizes, &aztec_zk::RollupParams::test()).unwrap();
    let mut devnet = Devnet::start(DevnetOptions {
        slot_duration: 3,
        proof_window_slots: 30,
        max_txs_per_block: 2,
        l1_state: Some(dir.path().join("l1-state.json")),
        ..fast()
    })
    .await
    .unwrap();
    let broker = support::start_broker(dir.path(), &[]);
    let broker_url = format!("http://{}", broker.addr.unwrap());
    let key = devnet.provers[0].clone();
    let node = support::spawn_in(
        dir.path(),
        "node",
        support::node_command(
            &devnet,
            &key,
            &broker_url,
            &sizes,
            &dir.path().join("node-data"),
        ),
    );
    // The epoch's jobs wait in the broker: there is no agent yet.
    assert!(
        support::eventually(Duration::from_secs(90), || node.log().contains("enqueued")),
        "{}",
        node.log_tail(30)
    );
    let l1 = devnet.client(&key).await.unwrap();
    assert_eq!(l1.tips().await.unwrap().1, 0, "nothing is proven yet");
    devnet.stop_l1().unwrap();
    // An agent proves the epoch while L1 is away: the node cannot publish.
    let _agent = support::spawn_in(
        dir.path(),
        "agent",
        support::agent_command(&broker_url, &sizes),
    );
    assert!(
        support::eventually(Duration::from_secs(60), || node
            .log()
            .contains("(attempt 1): L1 RPC error")),
        "{}",
        node.log_tail(30)
    );
    let epoch: u64 = node
        .log()
        .split("publishing epoch ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    devnet.start_l1().unwrap();
    let log = proven_once(&l1, &node, epoch).await;
    assert!(!log.contains(&format!("epoch {epoch} not proven")), "{log}");
    eprintln!(
        "L1 restarted in the proof window: epoch {epoch} submitted once, after {} failed attempt(s)",
        log.matches(&format!("publishing epoch {epoch} (attempt"))
            .count()
    );
    devnet.stop().await;
}

/// `ETHEREUM_HOSTS` lists two endpoints (two proxies to one anvil). The
/// first goes away in the middle of an epoch, its connections cut: the node
/// moves to the second and says so, its API shows the first failing, and the
/// epoch is proven and submitted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_fails_over_to_the_next_l1_endpoint_mid_epoch_and_submits_once() {
    let (dir, sizes, devnet) = node_test_setup().await;
    let port: u16 = devnet
        .l1_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap();
    let anvil = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut first = support::TcpProxy::start(anvil);
    let second = support::TcpProxy::start(anvil);
    let broker = support::start_broker(dir.path(), &[]);
    let broker_url = format!("http://{}", broker.addr.unwrap());
    let key = devnet.provers[0].clone();
    let api_port = support::free_port();
    let mut c = support::node_command(
        &devnet,
        &key,
        &broker_url,
        &sizes,
        &dir.path().join("node-data"),
    );
    c.env(
        "ETHEREUM_HOSTS",
        format!("http://{},http://{}", first.addr, second.addr),
    )
    .env("AZTEC_PORT", api_port.to_string());
    let bus = support::PrivateBus::start();
    c.args(["--dbus", &bus.address]);
    let node = support::spawn_in(dir.path(), "node", c);
    // The epoch's jobs wait in the broker (no agent yet) when the first
    // endpoint goes away.
    assert!(
        support::eventually(Duration::from_secs(90), || node.log().contains("enqueued")),
        "{}",
        node.log_tail(30)
    );
    let epoch: u64 = node
        .log()
        .lines()
        .find(|l| l.contains("enqueued"))
        .and_then(|l| l.split("EPOCH=").nth(1))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no epoch in:\n{}", node.log_tail(30)));
    assert!(!node.log().contains("L1: moved"), "{}", node.log_tail(30));
    first.stop();
    let _agent = support::spawn_in(
        dir.path(),
        "agent",
        support::agent_command(&broker_url, &sizes),
    );
    let l1 = devnet.client(&key).await.unwrap();
    let log = proven_once(&l1, &node, epoch).await;
    let moved = format!(
        "L1: moved from http://{} to http://{}",
        first.addr, second.addr
    );
    assert!(log.contains(&moved), "{}", node.log_tail(40));
    // L1 verified the epoch once, and no submission of it reverted.
    let verified = l1
        .rollup()
        .L2ProofVerified_filter()
        .from_block(0)
        .query()
        .await
        .unwrap();
    let of_epoch = verified
        .iter()
        .filter(|(e, _)| e.epoch == alloy::primitives::U256::from(epoch))
        .count();
    assert_eq!(of_epoch, 1, "{verified:?}");
    assert!(!log.contains("reverted"), "{}", node.log_tail(40));
    // The API shows each endpoint's state.
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], api_port));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"proverNode_getStatus","params":[]}"#;
    let (code, text) = support::raw_post(api, body.as_bytes());
    assert_eq!(code, 200, "{text}");
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    let endpoints = &status["result"]["l1Endpoints"];
    assert_eq!(
        endpoints[0]["url"],
        format!("http://{}", first.addr),
        "{status}"
    );
    assert_eq!(endpoints[0]["state"], "failing", "{status}");
    assert!(endpoints[0]["failed"].as_u64().unwrap() >= 1, "{status}");
    assert_eq!(endpoints[1]["state"], "in-use", "{status}");
    // So does the D-Bus object.
    let (ok, out, err) = bus.busctl(&[
        "get-property",
        "org.aztec.ProverNode",
        "/org/aztec/ProverNode",
        "org.aztec.ProverNode1",
        "L1Endpoints",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("a(sstts) 2 \"http://{}\" \"failing\"", first.addr))
            && out.contains(&format!("\"http://{}\" \"in-use\"", second.addr)),
        "{out}"
    );
    eprintln!(
        "first L1 endpoint stopped mid-epoch: epoch {epoch} proven and submitted once through the second ({} requests answered there; the first failed {} times)",
        endpoints[1]["answered"], endpoints[0]["failed"]
    );
    devnet.stop().await;
}

/// `aztec-prover node` as its own process proves the epochs claimed with its
/// quotes through a broker and an agent (simulated proofs, mock verifier);
/// killed with -9 in the middle of an epoch and started again, it
/// re-attaches to the broker's jobs (none is proven twice); restarted
/// between epochs it opens its world state (LMDB) at the block it kept and
/// goes on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_daemon_proves_its_claimed_epochs_and_resumes_after_a_kill_mid_epoch_and_a_restart()
 {
    let (dir, sizes, devnet) = node_test_setup().await;
    let broker = support::start_broker(dir.path(), &[]);
    let broker_url = format!("http://{}", broker.addr.unwrap());
    let _agent = support::spawn_in(
        dir.path(),
        "agent",
        support::agent_command(&broker_url, &sizes),
    );
    let key = devnet.provers[0].clone();
    let api_port = support::free_port();
    let start_node = |name: &str| {
        let mut c = support::node_command(
            &devnet,
            &key,
            &broker_url,
            &sizes,
            &dir.path().join("node-data"),
        );
        c.env("AZTEC_PORT", api_port.to_string());
        support::spawn_in(dir.path(), name, c)
    };
    let l1 = devnet.client(&key).await.unwrap();
    // Killed (-9) in the middle of its first epoch, the node is started
    // again: it re-attaches to the jobs the broker holds, by their ids.
    let mut killed = start_node("node1");
    assert!(
        support::eventually(Duration::from_secs(90), || killed
            .log()
            .contains("enqueued")),
        "{}",
        killed.log_tail(30)
    );
    killed.kill9().unwrap();
    let mut node = start_node("node2");
    let first = support::proven_past(&l1, 0).await;
    assert!(first > 0, "no epoch proven:\n{}", node.log_tail(30));
    // L1 may show the proof a moment before the node has its receipt.
    assert!(
        support::eventually(Duration::from_secs(20), || node
            .log()
            .contains("proven on L1")),
        "{}",
        node.log_tail(30)
    );
    assert!(
        node.log().contains("re-attached to"),
        "{}",
        node.log_tail(30)
    );
    // The agent proved no job twice: the restarted node took the broker's results.
    let agent_log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    let mut proved: Vec<&str> = agent_log
        .lines()
        .filter(|l| l.contains(" proved "))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("JOB_ID=")))
        .collect();
    let all = proved.len();
    proved.sort_unstable();
    proved.dedup();
    eprintln!(
        "node killed mid-epoch and restarted: {} jobs proven, {} of them twice",
        all,
        all - proved.len()
    );
    assert_eq!(all, proved.len(), "jobs proven twice");
    // The node's API shows the epoch job completed and the proof L1 took.
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], api_port));
    let call = |method: &str| {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":[]}}"#);
        let (code, text) = support::raw_post(api, body.as_bytes());
        assert_eq!(code, 200, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["result"].clone()
    };
    assert!(
        support::eventually(Duration::from_secs(10), || {
            call("proverNode_getStatus")["lastProof"]["provenBlock"]
                .as_u64()
                .is_some_and(|b| b >= first)
        }),
        "{}",
        call("proverNode_getStatus")
    );
    let status = call("proverNode_getStatus");
    assert_eq!(status["l1Connected"], true, "{status}");
    assert!(
        status["worldStateBlock"]
            .as_u64()
            .is_some_and(|b| b >= first),
        "{status}"
    );
    assert_eq!(
        status["rollup"].as_str().unwrap().to_lowercase(),
        format!("{}", devnet.deployment.rollup).to_lowercase()
    );
    let jobs = call("proverNode_getJobs");
    let done = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["status"] == "completed")
        .unwrap_or_else(|| panic!("no completed job: {jobs}"));
    assert!(done["jobsTotal"].as_u64().unwrap() > 0, "{jobs}");
    assert!(
        status["claimedEpochs"]
            .as_array()
            .unwrap()
            .contains(&done["epochNumber"]),
        "{status}"
    );
    node.terminate(Duration::from_secs(20)).unwrap();
    // The world state it kept on disk: the block of its last accepted epoch.
    let kept = node
        .log()
        .lines()
        .filter_map(|l| l.split("world state at block ").nth(1))
        .filter(|rest| rest.contains("kept in"))
        .filter_map(|rest| rest.split(',').next()?.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no world state kept:\n{}", node.log_tail(30)));
    assert!(kept >= first, "kept block {kept}, proven {first}");

    let node2 = start_node("node3");
    // Restarted, it opens the world state where it was kept instead of
    // re-executing the chain from genesis.
    let opened = format!("world state at block {kept} in ");
    assert!(
        support::eventually(Duration::from_secs(30), || node2.log().contains(&opened)),
        "{}",
        node2.log_tail(30)
    );
    let later = support::proven_past(&l1, first).await;
    assert!(
        later > first,
        "the restarted node proved nothing after block {first}:\n{}",
        node2.log_tail(30)
    );
    devnet.stop().await;
}

/// With a gas budget that cuts each epoch into several L1 transactions
/// (EIP-7825's cap on in anvil), the node sends chunks as their proofs come
/// in; killed (-9) after its first chunk landed and started again, it asks
/// L1 what is verified and sends only the rest: the epoch is accepted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_between_chunks_sends_only_the_missing_ones() {
    let (dir, sizes, devnet) = node_test_setup().await;
    let broker = support::start_broker(dir.path(), &[]);
    let broker_url = format!("http://{}", broker.addr.unwrap());
    let key = devnet.provers[0].clone();
    let start_node = |name: &str| {
        let mut c = support::node_command(
            &devnet,
            &key,
            &broker_url,
            &sizes,
            &dir.path().join("node-data"),
        );
        c.env("PROVER_PUBLISHER_MAX_TX_GAS", "1000000");
        support::spawn_in(dir.path(), name, c)
    };
    let mut first = start_node("node1");
    let _agent = support::spawn_in(
        dir.path(),
        "agent",
        support::agent_command(&broker_url, &sizes),
    );
    assert!(
        support::eventually(Duration::from_secs(120), || first
            .log()
            .contains("verified on L1 while the rest is proven")),
        "{}",
        first.log_tail(30)
    );
    first.kill9().unwrap();
    let killed_log = first.log();
    let epoch: u64 = killed_log
        .lines()
        .find(|l| l.contains("verified on L1 while the rest is proven"))
        .and_then(|l| l.split("epoch ").nth(1))
        .and_then(|r| r.split(':').next()?.trim().parse().ok())
        .unwrap();
    assert!(
        !killed_log.contains(&format!("epoch {epoch} proof accepted")),
        "the root landed before the kill:\n{killed_log}"
    );
    let node = start_node("node2");
    let l1 = devnet.client(&key).await.unwrap();
    let log = proven_once(&l1, &node, epoch).await;
    assert!(
        log.contains("verified on L1 already; sending the other"),
        "{}",
        node.log_tail(40)
    );
    assert!(!log.contains("AlreadyVerified"), "{}", node.log_tail(40));
    let of_epoch = l1
        .rollup()
        .L2ProofVerified_filter()
        .from_block(0)
        .query()
        .await
        .unwrap()
        .iter()
        .filter(|(ev, _)| ev.epoch == U256::from(epoch))
        .count();
    assert_eq!(of_epoch, 1);
    let chunks = l1
        .rollup()
        .EpochChunkVerified_filter()
        .from_block(0)
        .query()
        .await
        .unwrap();
    let of_epoch: Vec<_> = chunks
        .iter()
        .filter(|(ev, _)| ev.epoch == U256::from(epoch))
        .collect();
    eprintln!(
        "epoch {epoch}: {} chunk transactions before the root, the node killed after the first",
        of_epoch.len()
    );
    assert!(of_epoch.len() >= 2, "{chunks:?}");
    devnet.stop().await;
}

/// With `PROVER_NODE_PROVE_AHEAD`, the node enqueues each block's jobs as
/// soon as the block is on L1. Another prover quotes cheaper and wins the
/// claim: the node submits nothing for that epoch, and reports the work it
/// proved ahead as dropped (log and `proverNode_getStatus`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_proven_ahead_for_an_epoch_another_prover_wins_is_dropped_and_counted() {
    let (dir, sizes, devnet) = node_test_setup().await;
    let broker = support::start_broker(dir.path(), &[]);
    let broker_url = format!("http://{}", broker.addr.unwrap());
    let key = devnet.provers[0].clone();
    let api_port = support::free_port();
    let mut c = support::node_command(
        &devnet,
        &key,
        &broker_url,
        &sizes,
        &dir.path().join("node-data"),
    );
    c.env("PROVER_NODE_PROVE_AHEAD", "true")
        .env("AZTEC_PORT", api_port.to_string());
    let node = support::spawn_in(dir.path(), "node", c);
    let _agent = support::spawn_in(
        dir.path(),
        "agent",
        support::agent_command(&broker_url, &sizes),
    );
    // The other prover asks 10 bps to our node's 100: its quotes win.
    let other = until_our_claim(&devnet, &devnet.provers[1], 10, 60).await;
    let epoch = other.epoch;
    let dropped = format!("epoch {epoch} went to another prover");
    assert!(
        support::eventually(Duration::from_secs(30), || node.log().contains(&dropped)),
        "{}",
        node.log_tail(30)
    );
    let log = node.log();
    assert!(
        log.contains(&format!("epoch {epoch}: proving ahead of the claim")),
        "{}",
        node.log_tail(30)
    );
    assert!(
        !log.contains(&format!("epoch {epoch} is claimed with our quote")),
        "{log}"
    );
    assert!(
        !log.contains(&format!("epoch {epoch} proof accepted")),
        "{log}"
    );
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], api_port));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"proverNode_getStatus","params":[]}"#;
    let (code, text) = support::raw_post(api, body.as_bytes());
    assert_eq!(code, 200, "{text}");
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    let n = status["result"]["jobsDroppedAhead"].as_u64().unwrap_or(0);
    assert!(n > 0, "{status}");
    eprintln!("epoch {epoch} went to another prover: {n} jobs proven ahead dropped");
    other.stop().await;
    devnet.stop().await;
}

/// A second node on a data directory in use refuses to start, naming the
/// directory and the first node's pid, before it opens the world state.
#[test]
fn a_second_node_on_the_same_directory_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = dir.path().join("sizes");
    aztec_zk::keys::write_params(&sizes, &aztec_zk::RollupParams::test()).unwrap();
    let data = dir.path().join("node");
    let node = || {
        let mut c = support::command(&["node", "--config", "/dev/null", "--dbus", "none"]);
        c.env(
            "ETHEREUM_HOSTS",
            format!("http://127.0.0.1:{}", support::free_port()),
        )
        .env(
            "PROVER_PUBLISHER_PRIVATE_KEY",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        )
        .env(
            "ROLLUP_CONTRACT_ADDRESS",
            "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
        )
        .env("PROVER_COORDINATION_NODE_URL", "http://127.0.0.1:9")
        .env("PROVER_REAL_PROOFS", "false")
        .env("PROVER_KEYS_DIRECTORY", &sizes)
        .env("DATA_DIRECTORY", &data);
        c
    };
    // The first one is READY (waiting for an L1 that is not there).
    let first = support::spawn_in(dir.path(), "node1", node());
    let out = node().output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("node data directory")
            && err.contains(&data.display().to_string())
            && err.contains(&format!("pid {}", first.pid())),
        "{err}"
    );
}

//! `aztec-prover bench epoch`: one epoch of N full blocks, end to end on a
//! local anvil with Ethereum's per-transaction gas cap (EIP-7825): the
//! devnet's sequencer proposes the blocks, our quote is claimed, every job
//! of the epoch is proven for real on the CPU backend, and the proofs go to
//! L1 in chunks within the gas budget, the first ones while the rest is
//! still being proven (as the node sends them). The reference, measured in
//! the same run: the single transaction the epoch would need, as L1
//! estimates it at the block before the first chunk (or why it cannot be
//! sent).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use anyhow::Context as _;
use aztec_prover_devnet::{Devnet, DevnetOptions};
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_node::orchestrator::ProvenJob;
use aztec_prover_node::publisher::{self, Publication, TxBudget};
use aztec_prover_node::quotes::QuoteProvider;
use aztec_prover_node::{Monitor, MonitorConfig, NodeEvent, epoch};
use aztec_zk::RollupParams;

/// What to run.
pub struct EpochBenchOptions {
    /// The circuit sizes' preset name.
    pub params: String,
    /// Blocks in the epoch.
    pub blocks: u64,
    /// Proofs made at once (each on the CPU backend, sharing the machine).
    pub agents: usize,
    /// Where the keys are (generated from the devnet's public seed when missing).
    pub keys_dir: PathBuf,
    /// The L1 budget per transaction.
    pub budget: TxBudget,
    /// Seconds per L2 slot.
    pub slot_seconds: u64,
    /// One JSON object instead of the table.
    pub json: bool,
}

/// Our prover's monitor, quoting for every epoch; its events, and the
/// switch that stops it.
async fn start_monitor(
    devnet: &Devnet,
) -> anyhow::Result<(
    tokio::sync::broadcast::Receiver<NodeEvent>,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
)> {
    let key = devnet.provers[0].clone();
    let l1 = devnet.client(&key).await?;
    let m = Monitor::new(
        l1,
        MonitorConfig {
            signer: key,
            quotes: QuoteProvider::Fixed {
                basis_point_fee: Some(1_000),
                bond_amount: Some(U256::from(1_000u64)),
            },
            coordination: RemoteNode::new(&devnet.node_url, Duration::from_secs(10))
                .map_err(|e| anyhow::anyhow!(e))?
                .into(),
            minimum_escrow: U256::from(1_000u64),
            target_escrow: U256::from(10_000u64),
            polling_interval: Duration::from_millis(500),
        },
    )
    .await?;
    let events = m.subscribe();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(aztec_prover_node::monitor::run(
        m,
        stop_rx,
        Default::default(),
    ));
    Ok((events, stop, task))
}

/// The next epoch claimed with our quote: (epoch, first block, last block).
async fn next_claim(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    deadline: tokio::time::Instant,
) -> anyhow::Result<(u64, u64, u64)> {
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("no epoch of the wanted size was claimed in time")?;
        match ev {
            Ok(NodeEvent::ClaimIsOurs {
                epoch,
                first_block,
                last_block,
                ..
            }) => return Ok((epoch, first_block, last_block)),
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => anyhow::bail!("the monitor stopped: {e}"),
        }
    }
}

/// Proves every job of `plan` with `agents` threads, in plan order, handing
/// each proof to `proven` as it is made.
fn prove_all(
    plan: &aztec_prover_rollup::plan::EpochPlan,
    keys_dir: &std::path::Path,
    params: &RollupParams,
    agents: usize,
    proven: tokio::sync::mpsc::UnboundedSender<(usize, ProvenJob)>,
) -> Vec<std::thread::JoinHandle<anyhow::Result<()>>> {
    let next = Arc::new(AtomicUsize::new(0));
    let jobs = Arc::new(plan.jobs.clone());
    (0..agents.max(1))
        .map(|w| {
            let (tx, next, jobs) = (proven.clone(), next.clone(), jobs.clone());
            let (dir, p) = (keys_dir.to_path_buf(), params.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                use rand::SeedableRng;
                let be = aztec_backend_abi::Backend::load("cpu")?;
                let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
                let mut keys = std::collections::HashMap::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(j) = jobs.get(i) else {
                        return Ok(());
                    };
                    let c = j.circuit();
                    let key = match keys.entry(c) {
                        std::collections::hash_map::Entry::Occupied(k) => k.into_mut(),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(aztec_zk::keys::load_prover_key(&dir, c, &p)?.1)
                        }
                    };
                    let out = aztec_zk::groth16::prove(&be, key, &j.inputs, &mut rng)?;
                    let proven = ProvenJob {
                        circuit: c,
                        children: j.children.clone(),
                        public_inputs: out.public_inputs,
                        proof: aztec_zk::groth16::evm::proof_words(&out.proof),
                    };
                    if tx.send((i, proven)).is_err() {
                        return Ok(());
                    }
                }
            })
        })
        .collect()
}

fn join(workers: Vec<std::thread::JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("a proving thread panicked"))??;
    }
    Ok(())
}

/// Runs the benchmark.
pub async fn run(o: EpochBenchOptions) -> anyhow::Result<()> {
    let params = RollupParams::preset(&o.params)
        .ok_or_else(|| anyhow::anyhow!("unknown sizes {:?}", o.params))?;
    crate::devnet::ensure_keys(&o.keys_dir, &params)?;
    let n = o.blocks.max(1);
    let slot = o.slot_seconds.max(1);
    let devnet = Devnet::start(DevnetOptions {
        params: params.clone(),
        keys_dir: Some(o.keys_dir.clone()),
        slot_duration: slot,
        epoch_duration: n,
        claim_duration_slots: 4,
        // Time to prove, on a small machine too.
        proof_window_slots: (4 * 3600 / slot).max(8),
        full_blocks: true,
        first_slot: n - 1,
        ..DevnetOptions::default()
    })
    .await?;
    eprintln!(
        "bench epoch: {} sizes, epochs of {n} full blocks ({} txs each), {} s slots; waiting for one to be claimed",
        o.params,
        params.txs_per_block(),
        slot
    );
    let (mut events, stop_monitor, monitor) = start_monitor(&devnet).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(slot * (3 * n + 8) + 600);
    let key = devnet.provers[0].clone();
    let l1 = devnet.client(&key).await?;
    let remote: aztec_prover_node::txs::TxSource =
        RemoteNode::new(&devnet.node_url, Duration::from_secs(30))
            .map_err(|e| anyhow::anyhow!(e))?
            .into();
    // The first epoch holds the last slot's block only: proven (not
    // measured) so that the next, whole epoch can be claimed.
    let (e, first, last) = loop {
        let (e, first, last) = next_claim(&mut events, deadline).await?;
        if last + 1 - first == n {
            break (e, first, last);
        }
        eprintln!(
            "epoch {e} has {} block(s), not {n}: proving it first (not measured)",
            last + 1 - first
        );
        let plan = epoch::plan_from_genesis(&l1, &remote, &params, e, (first, last), key.address())
            .await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let workers = prove_all(&plan, &o.keys_dir, &params, o.agents, tx);
        let mut all: Vec<Option<ProvenJob>> = vec![None; plan.jobs.len()];
        while let Some((i, j)) = rx.recv().await {
            all[i] = Some(j);
        }
        join(workers)?;
        let jobs: Vec<ProvenJob> = all
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("a job was not proven"))?;
        let until = Instant::now() + Duration::from_secs(600);
        publisher::publish(
            &l1,
            &plan,
            e,
            first,
            last,
            &jobs,
            until,
            &o.budget,
            Publication::default(),
        )
        .await?;
    };
    let _ = stop_monitor.send(true);
    let _ = monitor.await;
    let before_chunks = l1.l1_block_number().await?;

    // The epoch's job tree, re-executed from genesis.
    let plan =
        epoch::plan_from_genesis(&l1, &remote, &params, e, (first, last), key.address()).await?;
    let total = plan.jobs.len();
    eprintln!(
        "epoch {e}: blocks {first}..={last}, {total} proofs; proving with {} agent(s)",
        o.agents
    );

    // Every job proven for real, in plan order; each proof goes to the
    // publisher as it is made.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(usize, ProvenJob)>();
    let started = Instant::now();
    let workers = prove_all(&plan, &o.keys_dir, &params, o.agents, tx);
    // Collect the proofs while the early chunks go out.
    let (fwd, early_rx) = tokio::sync::mpsc::unbounded_channel();
    let collect = async move {
        let mut rx = rx;
        let mut all: Vec<Option<ProvenJob>> = vec![None; total];
        let mut done = 0;
        let mut last_proof = Instant::now();
        while let Some((i, j)) = rx.recv().await {
            all[i] = Some(j.clone());
            let _ = fwd.send((i, j));
            done += 1;
            last_proof = Instant::now();
            if done % 10 == 0 || done == total {
                eprintln!(
                    "  {done}/{total} proofs, {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        (all, last_proof)
    };
    let early = publisher::publish_early(&l1, &plan, e, early_rx, &o.budget);
    let ((all, last_proof), early) = tokio::join!(collect, early);
    join(workers)?;
    let proving = last_proof - started;
    let jobs: Vec<ProvenJob> = all
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow::anyhow!("a job was not proven"))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let publication = publisher::publish(
        &l1, &plan, e, first, last, &jobs, deadline, &o.budget, early,
    )
    .await?;
    let to_l1 = last_proof.elapsed();

    // The reference: one transaction, estimated before the first chunk.
    let fees = l1.fees_between(first, last).await?;
    let all_positions: Vec<usize> = (0..jobs.len()).collect();
    let single = l1
        .rollup()
        .submitEpochRootProof(
            publisher::root_args(&plan, e, first, last, fees),
            U256::from(jobs.len()),
            publisher::to_sol(&jobs, &all_positions),
            Vec::new(),
        )
        .from(key.address())
        .block(alloy::eips::BlockId::number(before_chunks))
        .estimate_gas()
        .await
        .map_err(|err| aztec_prover_l1::chain::classify("one transaction", err).to_string());
    let single_bytes = aztec_prover_l1::bindings::Rollup::submitEpochRootProofCall {
        args: publisher::root_args(&plan, e, first, last, fees),
        size: U256::from(jobs.len()),
        proofs: publisher::to_sol(&jobs, &all_positions),
        consumed: Vec::new(),
    };
    let single_bytes = alloy::sol_types::SolCall::abi_encode(&single_bytes).len() + 4;
    report(
        &o,
        total,
        proving,
        to_l1,
        &publication,
        &single,
        single_bytes,
    );
    devnet.stop().await;
    Ok(())
}

fn report(
    o: &EpochBenchOptions,
    proofs: usize,
    proving: Duration,
    to_l1: Duration,
    p: &Publication,
    single: &Result<u64, String>,
    single_bytes: usize,
) {
    let per_proof = p.gas / proofs.max(1) as u64;
    if o.json {
        let v = serde_json::json!({
            "bench": "epoch",
            "params": o.params,
            "blocks": o.blocks,
            "agents": o.agents,
            "proofs": proofs,
            "transactions": p.txs,
            "gas_per_tx_max": p.max_gas,
            "gas_per_tx_mean": p.gas / p.txs.max(1) as u64,
            "gas_per_epoch": p.gas,
            "gas_per_proof": per_proof,
            "calldata_per_tx_max": p.max_calldata_bytes,
            "calldata_per_tx_mean": p.calldata_bytes / p.txs.max(1),
            "proving_s": proving.as_secs_f64(),
            "last_proof_to_l1_s": to_l1.as_secs_f64(),
            "single_tx_gas": single.as_ref().ok(),
            "single_tx_error": single.as_ref().err(),
            "single_tx_calldata": single_bytes,
        });
        println!("{v}");
        return;
    }
    println!(
        "epoch of {} full blocks at {} sizes, {} agent(s), budget {} gas / {} bytes per transaction",
        o.blocks, o.params, o.agents, o.budget.gas, o.budget.calldata_bytes
    );
    println!("  proofs:                      {proofs}");
    println!(
        "  proving:                     {:.1} s",
        proving.as_secs_f64()
    );
    println!(
        "  L1 transactions:             {} (chunks and the root)",
        p.txs
    );
    println!(
        "  gas per transaction:         max {}, mean {} (cap 16777216)",
        p.max_gas,
        p.gas / p.txs.max(1) as u64
    );
    println!("  gas per epoch:               {}", p.gas);
    println!("  gas per proof:               {per_proof}");
    println!(
        "  calldata per transaction:    max {}, mean {} bytes (pools take 131072 at most)",
        p.max_calldata_bytes,
        p.calldata_bytes / p.txs.max(1)
    );
    println!(
        "  last proof to L1 accepted:   {:.1} s",
        to_l1.as_secs_f64()
    );
    match single {
        Ok(g) => println!(
            "  one transaction instead:     {g} gas ({} per proof; chunks {:+.1}% per proof), {single_bytes} bytes{}",
            g / proofs.max(1) as u64,
            100.0 * (p.gas as f64 / *g as f64 - 1.0),
            if *g > aztec_prover_l1::chain::TX_GAS_CAP || single_bytes > 131_072 {
                ": over the limits, it could not be sent"
            } else {
                ""
            }
        ),
        Err(e) => {
            println!("  one transaction instead:     cannot be sent ({single_bytes} bytes): {e}")
        }
    }
}

//! `aztec-prover bench broker`: the broker's throughput, latency, memory and
//! start-up time, measured against a real broker process over loopback.
//!
//! The reference, measured in the same run, is the same broker with group
//! commit switched off (`PROVER_BROKER_BATCH_SIZE=1`: one fsync per request),
//! so the ratio shows what batching commits buys at equal durability.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aztec_prover_common::child::ChildDaemon;
use aztec_prover_protocol::{
    EnqueueRequest, JobType, ProofUri, ProvingBrokerApiClient, ProvingJobFilter,
};
use jsonrpsee::http_client::HttpClient;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The `aztec-prover` binary to run the broker from.
    pub binary: PathBuf,
    /// Jobs to enqueue and complete.
    pub jobs: u64,
    /// Concurrent consumers.
    pub consumers: u64,
    /// Jobs queued for the start-up and memory measurement (0 skips it).
    pub queued: u64,
    /// Data directory (a temporary one if none).
    pub dir: Option<PathBuf>,
    /// JSON lines instead of a table.
    pub json: bool,
}

struct Throughput {
    jobs: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss: u64,
    broker_cpu: (f64, f64),
}

fn start_broker(
    o: &BenchOptions,
    dir: &std::path::Path,
    name: &str,
    batch: usize,
    metrics: bool,
) -> BenchResult<ChildDaemon> {
    let data = dir.join(name);
    let mut cmd = Command::new(&o.binary);
    cmd.arg("broker")
        .args(["--proverBroker.proverBrokerListenAddress", "127.0.0.1"])
        .args(["--proverBroker.proverBrokerPort", "0"])
        .arg("--proverBroker.dataDirectory")
        .arg(&data)
        .args(["--proverBroker.proverBrokerJobTimeoutMs", "600000"])
        .args(["--proverBroker.proverBrokerBatchSize", &batch.to_string()])
        .env("PROVER_METRICS_ENABLED", metrics.to_string())
        .args([
            "--proverBroker.proverBrokerMaxEpochsToKeepResultsFor",
            "1000000",
        ])
        .args([
            "--dbus",
            "none",
            "--log-level",
            "warn",
            "--log-target",
            "stderr",
        ])
        .args(["--config", "/dev/null"]);
    Ok(ChildDaemon::spawn(
        name,
        cmd,
        dir,
        &dir.join(format!("{name}.log")),
        Duration::from_secs(120),
    )?)
}

fn client(d: &ChildDaemon) -> BenchResult<HttpClient> {
    let addr = d.addr.ok_or("the broker did not report its address")?;
    Ok(aztec_prover_common::rpc::client(
        &format!("http://{addr}"),
        Duration::from_secs(60),
        16 << 20,
    )?)
}

fn job(epoch: u64, i: u64) -> EnqueueRequest {
    let mut inputs = [0u8; 64];
    inputs[..8].copy_from_slice(&i.to_le_bytes());
    inputs[8..16].copy_from_slice(&epoch.to_le_bytes());
    EnqueueRequest {
        id: None,
        job_type: JobType::BaseRollup,
        epoch_number: epoch,
        inputs_uri: ProofUri::inline(&inputs),
    }
}

async fn enqueue_all(c: &HttpClient, epoch: u64, count: u64, producers: u64) -> BenchResult<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let (c, next) = (c.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), jsonrpsee::core::ClientError>(());
                }
                c.enqueue_proving_job(job(epoch, i)).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(t0.elapsed().as_secs_f64())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

async fn throughput(
    o: &BenchOptions,
    dir: &std::path::Path,
    name: &str,
    batch: usize,
    jobs: u64,
    metrics: bool,
) -> BenchResult<Throughput> {
    let broker = start_broker(o, dir, name, batch, metrics)?;
    let c = client(&broker)?;
    // With metrics on, scraped every second as a Prometheus server would.
    let scraper = metrics.then(|| {
        let addr = broker.addr;
        tokio::spawn(async move {
            let Some(addr) = addr else { return };
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = crate::scrape::scrape(addr).await {
                    eprintln!("scraping {addr}/metrics failed: {e}");
                }
            }
        })
    });
    let done = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let producer = {
        let c = c.clone();
        tokio::spawn(async move { enqueue_all(&c, 1, jobs, 8).await.map_err(|e| e.to_string()) })
    };
    let mut consumers = Vec::new();
    for k in 0..o.consumers {
        let done = done.clone();
        let c = aztec_prover_common::rpc::client(
            &format!("http://{}", broker.addr.ok_or("no address")?),
            Duration::from_secs(60),
            16 << 20,
        )?;
        consumers.push(tokio::spawn(async move {
            let agent = format!("bench-{k}");
            let filter = ProvingJobFilter::default();
            let mut latencies: Vec<u32> = Vec::new();
            let mut current = None;
            loop {
                if done.load(Ordering::Relaxed) >= jobs {
                    return Ok::<Vec<u32>, jsonrpsee::core::ClientError>(latencies);
                }
                let t = Instant::now();
                let got = match current.take() {
                    None => {
                        c.get_proving_job(Some(filter.clone()), Some(agent.clone()))
                            .await?
                    }
                    Some((id, time)) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        c.report_proving_job_success(
                            id,
                            time,
                            ProofUri::inline(b"proof"),
                            Some(filter.clone()),
                        )
                        .await?
                    }
                };
                match got {
                    Some(j) => {
                        latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        current = Some((j.job.id, j.time));
                    }
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    producer.await??;
    let mut all = Vec::new();
    for t in consumers {
        all.extend(t.await??);
    }
    let seconds = t0.elapsed().as_secs_f64();
    if let Some(s) = scraper {
        s.abort();
    }
    let stats = c.get_queue_stats().await?;
    let fulfilled = stats.totals().fulfilled;
    if fulfilled != jobs {
        return Err(format!("expected {jobs} proven jobs, the broker counts {fulfilled}").into());
    }
    all.sort_unstable();
    let peak_rss = broker.peak_rss_bytes().unwrap_or(0);
    let broker_cpu = broker.cpu_seconds().unwrap_or_default();
    Ok(Throughput {
        jobs,
        seconds,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        peak_rss,
        broker_cpu,
    })
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Runs the benchmark and prints its figures.
pub async fn run(o: BenchOptions) -> BenchResult<()> {
    let tmp = tempfile::Builder::new()
        .prefix("aztec-broker-bench")
        .tempdir()?;
    let dir = o.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let print = |human: String, json: serde_json::Value| {
        if o.json {
            println!("{json}");
        } else {
            println!("{human}");
        }
    };
    if !o.json {
        println!(
            "broker benchmark: {} jobs, {} consumers over loopback; every acknowledged change is committed to LMDB (fsync)",
            o.jobs, o.consumers
        );
    }

    let unmetered = throughput(&o, &dir, "metrics-off", 256, o.jobs, false).await?;
    let ours = throughput(&o, &dir, "group-commit", 256, o.jobs, true).await?;
    let ref_jobs = (o.jobs / 10).max(1000).min(o.jobs.max(1));
    let reference = throughput(&o, &dir, "commit-per-request", 1, ref_jobs, true).await?;
    let ours_rate = ours.jobs as f64 / ours.seconds;
    let ref_rate = reference.jobs as f64 / reference.seconds;
    print(
        format!(
            "throughput:      {ours_rate:>9.0} jobs/s  ({} jobs in {:.1} s)\n\
             reference:       {ref_rate:>9.0} jobs/s  (one commit per request, {} jobs)  ratio {:.1}x",
            ours.jobs,
            ours.seconds,
            reference.jobs,
            ours_rate / ref_rate
        ),
        serde_json::json!({"figure":"throughput","jobs":ours.jobs,"consumers":o.consumers,"jobs_per_s":ours_rate,
            "reference_jobs_per_s":ref_rate,"ratio":ours_rate/ref_rate}),
    );
    let off_rate = unmetered.jobs as f64 / unmetered.seconds;
    print(
        format!(
            "metrics:         {ours_rate:>9.0} jobs/s on (scraped each second) against {off_rate:.0} off: \
             cost {:+.1}%; broker CPU {:.1} s on, {:.1} s off",
            (off_rate / ours_rate - 1.0) * 100.0,
            ours.broker_cpu.0 + ours.broker_cpu.1,
            unmetered.broker_cpu.0 + unmetered.broker_cpu.1
        ),
        serde_json::json!({"figure":"metrics_cost","jobs_per_s_on":ours_rate,"jobs_per_s_off":off_rate,
            "cost_percent":(off_rate / ours_rate - 1.0) * 100.0,
            "broker_cpu_s_on":ours.broker_cpu.0 + ours.broker_cpu.1,
            "broker_cpu_s_off":unmetered.broker_cpu.0 + unmetered.broker_cpu.1}),
    );
    print(
        format!(
            "get-job latency: p50 {:.2} ms, p99 {:.2} ms  (reference p50 {:.2} ms, p99 {:.2} ms)",
            ours.p50_ms, ours.p99_ms, reference.p50_ms, reference.p99_ms
        ),
        serde_json::json!({"figure":"get_job_latency","p50_ms":ours.p50_ms,"p99_ms":ours.p99_ms,
            "reference_p50_ms":reference.p50_ms,"reference_p99_ms":reference.p99_ms}),
    );
    print(
        format!(
            "broker peak RSS: {:.1} MiB; broker CPU {:.1} s user + {:.1} s system for {} jobs ({:.0} us per job)",
            mib(ours.peak_rss),
            ours.broker_cpu.0,
            ours.broker_cpu.1,
            ours.jobs,
            (ours.broker_cpu.0 + ours.broker_cpu.1) * 1e6 / ours.jobs as f64
        ),
        serde_json::json!({"figure":"peak_rss","bytes":ours.peak_rss,"broker_user_s":ours.broker_cpu.0,
            "broker_system_s":ours.broker_cpu.1}),
    );

    if o.queued > 0 {
        let mut broker = start_broker(&o, &dir, "million", 256, true)?;
        let c = client(&broker)?;
        let secs = enqueue_all(&c, 7, o.queued, 32).await?;
        let rss_full = broker.rss_bytes().unwrap_or(0);
        let (anon_full, file_full) = broker.rss_split_bytes().unwrap_or_default();
        let peak_full = broker.peak_rss_bytes().unwrap_or(0);
        broker.terminate(Duration::from_secs(60))?;
        let t0 = Instant::now();
        let broker = start_broker(&o, &dir, "million", 256, true)?;
        let startup = t0.elapsed().as_secs_f64();
        let rss_after = broker.rss_bytes().unwrap_or(0);
        let (anon_after, _) = broker.rss_split_bytes().unwrap_or_default();
        let c = client(&broker)?;
        let t1 = Instant::now();
        let got = c.get_proving_job(None, Some("probe".into())).await?;
        let first_ms = t1.elapsed().as_secs_f64() * 1000.0;
        if got.is_none() {
            return Err("no job was served from the queued million".into());
        }
        let stats = c.get_queue_stats().await?;
        let on_disk = dir_size(&dir.join("million"));
        print(
            format!(
                "{} queued: enqueued at {:.0} jobs/s; RSS {:.1} MiB = {:.1} MiB heap + {:.1} MiB of mapped store pages \
                 (peak {:.1} MiB)\n  restart to READY {:.2} s; RSS after restart {:.1} MiB ({:.1} MiB heap); \
                 first get-job {:.2} ms; store {:.0} MiB on disk; queue intact: {}",
                o.queued,
                o.queued as f64 / secs,
                mib(rss_full),
                mib(anon_full),
                mib(file_full),
                mib(peak_full),
                startup,
                mib(rss_after),
                mib(anon_after),
                first_ms,
                mib(on_disk),
                stats.totals().queued + stats.totals().in_progress == o.queued
            ),
            serde_json::json!({"figure":"queued","jobs":o.queued,"enqueue_jobs_per_s":o.queued as f64/secs,
                "rss_bytes":rss_full,"rss_anon_bytes":anon_full,"rss_file_bytes":file_full,"peak_rss_bytes":peak_full,"startup_s":startup,"rss_after_restart_bytes":rss_after,
                "first_get_job_ms":first_ms,"store_bytes":on_disk}),
        );
    }
    Ok(())
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

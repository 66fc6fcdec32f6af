//! Metrics with the real parts: Debian's Prometheus scrapes the broker, an
//! agent and the node of a devnet proving with real proofs; its HTTP API
//! answers for the series, with values that agree with what the run did;
//! every query of the shipped dashboard and alert rules is a valid
//! expression against it (and the key ones return data); `promtool` checks
//! the rules file.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn tool(name: &str) -> Option<PathBuf> {
    let p = Path::new("/usr/bin").join(name);
    p.exists().then_some(p)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks Prometheus' HTTP API for `query` at the current time.
fn query(prom: &str, query: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sS", "-G", "--max-time", "10"])
        .arg(format!("{prom}/api/v1/query"))
        .arg("--data-urlencode")
        .arg(format!("query={query}"))
        .output()
        .expect("curl");
    // Null while Prometheus is not up yet.
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// The single number a query returns (the sum of its series), if any.
fn number(prom: &str, q: &str) -> Option<f64> {
    let v = query(prom, q);
    let result = v["data"]["result"].as_array()?;
    if result.is_empty() {
        return None;
    }
    Some(
        result
            .iter()
            .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
            .sum(),
    )
}

/// Every `expr` in the dashboard and the alert rules.
fn shipped_queries() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/packaging/monitoring/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            out.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    let rules =
        std::fs::read_to_string(format!("{ROOT}/packaging/monitoring/prometheus-alerts.yml"))
            .unwrap();
    for line in rules.lines() {
        if let Some(e) = line.trim().strip_prefix("expr: ") {
            out.push(e.to_string());
        }
    }
    out
}

#[test]
fn prometheus_scrapes_every_daemon_of_a_devnet_and_the_shipped_queries_hold() {
    let (Some(prometheus), Some(promtool)) = (tool("prometheus"), tool("promtool")) else {
        support::cannot_run_here(
            "Prometheus is not installed (packaging/dev-setup.sh installs it)",
        );
        return;
    };
    let rules = format!("{ROOT}/packaging/monitoring/prometheus-alerts.yml");
    let checked = Command::new(&promtool)
        .args(["check", "rules", &rules])
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let keys = Path::new(env!("CARGO_TARGET_TMPDIR")).join("devnet-keys-test");
    let mut devnet = support::command(&[
        "devnet",
        "--epochs",
        "3",
        "--slot-seconds",
        "4",
        "--agents",
        "1",
        "--keys",
    ])
    .arg(&keys)
    .env("PROVER_REAL_PROOFS", "true")
    .env("LOG_LEVEL", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = support::collect(devnet.stderr.take().unwrap());
    let _devnet = Stopped(devnet);
    let text = || stderr.lock().unwrap().clone();
    // "metrics: broker at http://127.0.0.1:PORT/metrics", one per daemon.
    let targets = |t: &str| -> Vec<(String, String)> {
        t.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("metrics: ")?;
                let (who, url) = rest.split_once(" at ")?;
                let hostport = url.strip_prefix("http://")?.strip_suffix("/metrics")?;
                Some((who.to_string(), hostport.to_string()))
            })
            .collect()
    };
    assert!(
        support::eventually(Duration::from_secs(300), || targets(&text()).len() == 3),
        "{}",
        text()
    );
    let targets = targets(&text());
    let job = |who: &str| match who {
        "broker" => "aztec-prover-broker",
        "node" => "aztec-prover-node",
        _ => "aztec-prover-agent",
    };
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n");
    config += &format!("  - {rules}\nscrape_configs:\n");
    for (who, hostport) in &targets {
        config += &format!(
            "  - job_name: {}\n    static_configs:\n      - targets: ['{hostport}']\n",
            job(who)
        );
    }
    std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
    let port = support::free_port();
    let prom_url = format!("http://127.0.0.1:{port}");
    let _prom = Killed(
        Command::new(&prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let prom_log =
        || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert!(
        support::eventually(Duration::from_secs(60), || number(&prom_url, "sum(up)")
            == Some(3.0)),
        "not every daemon is up for Prometheus: {config}\n{}\n{}",
        serde_json::to_string(&query(&prom_url, "up")).unwrap_or_default(),
        prom_log()
    );
    // An epoch proven on L1, seen by the node's counters.
    let proven = r#"sum(aztec_prover_node_epochs_total{outcome="proven"})"#;
    assert!(
        support::eventually(Duration::from_secs(300), || number(&prom_url, proven)
            .is_some_and(|n| n >= 1.0)),
        "no epoch proven in the node's metrics:\n{}",
        text()
    );
    // The broker's and the agent's counts agree (both scraped while the
    // agent waits between blocks).
    let resolved = "sum(aztec_proving_queue_resolved_jobs_count)";
    let agent_proven = r#"sum(aztec_prover_agent_jobs_total{outcome="proven"})"#;
    assert!(
        support::eventually(Duration::from_secs(60), || {
            let (a, b) = (number(&prom_url, resolved), number(&prom_url, agent_proven));
            a.is_some() && a == b
        }),
        "broker resolved {:?}, agent proven {:?}",
        number(&prom_url, resolved),
        number(&prom_url, agent_proven)
    );
    let on_l1 = number(&prom_url, "sum(aztec_prover_node_l1_proofs_total)").unwrap();
    let enqueued = number(&prom_url, "sum(aztec_proving_queue_enqueued_jobs_count)").unwrap();
    let resolved_now = number(&prom_url, resolved).unwrap();
    assert!(on_l1 >= 3.0, "proofs verified on L1: {on_l1}");
    assert!(
        enqueued >= resolved_now && resolved_now >= on_l1,
        "enqueued {enqueued}, resolved {resolved_now}, on L1 {on_l1}"
    );
    for (q, why) in [
        (
            "sum(aztec_proving_queue_job_duration_milliseconds_count)",
            "job durations",
        ),
        (
            "sum(aztec_proving_queue_agent_idle_milliseconds_count)",
            "agent idle times",
        ),
        (
            "sum(aztec_prover_agent_proof_duration_milliseconds_count)",
            "proof times",
        ),
        (
            "sum(aztec_prover_agent_msm_duration_milliseconds_count)",
            "MSM times",
        ),
        ("sum(aztec_prover_node_job_blocks)", "blocks of the epoch"),
        ("sum(aztec_prover_node_epoch_l1_gas)", "L1 gas"),
        ("sum(aztec_prover_node_bond)", "the bond"),
        (
            "sum(aztec_prover_rpc_requests_total{job=\"aztec-prover-broker\"})",
            "broker RPC requests",
        ),
        (
            "sum(aztec_proving_queue_db_used_size_bytes)",
            "the store's size",
        ),
        (
            "sum(aztec_prover_node_l1_endpoint_up)",
            "L1 endpoint health",
        ),
    ] {
        assert!(
            number(&prom_url, q).is_some_and(|n| n > 0.0),
            "{why}: {q} has no data"
        );
    }
    let t = targets
        .iter()
        .find(|(w, _)| w.starts_with("agent"))
        .unwrap();
    assert!(
        number(
            &prom_url,
            &format!("sum(aztec_prover_agent_threads{{instance=\"{}\"}})", t.1)
        )
        .is_some_and(|n| n >= 1.0)
    );
    // Every shipped query is a valid expression here.
    let mut with_data = 0;
    let queries = shipped_queries();
    for q in &queries {
        let v = query(&prom_url, q);
        assert_eq!(v["status"], "success", "{q}: {v}");
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            with_data += 1;
        }
    }
    eprintln!(
        "{with_data} of {} shipped queries return data after one epoch",
        queries.len()
    );
    assert!(
        with_data * 2 > queries.len(),
        "{with_data} of {}",
        queries.len()
    );
}

/// Stops the devnet (SIGTERM: it stops its daemons and anvil) when the test
/// ends, pass or fail; kills it if it does not end within 20 s.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

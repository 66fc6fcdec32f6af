//! Aztec's own prover client (`@aztec/prover-client` 4.1.2 from npm: its
//! broker clients, its `ProvingAgent` and the `BrokerCircuitProverFacade`
//! its node enqueues through) against our broker, a real process on
//! loopback. The JavaScript side is `tests/aztec/drive.mjs`;
//! `packaging/dev-setup.sh` installs the package (`npm install` of the locked tree in tests/aztec).

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use aztec_prover_common::child::ChildDaemon;
use aztec_prover_protocol::ProvingBrokerApiClient;
use aztec_prover_protocol::aztec::AztecVersion;
use support::*;

/// Where the JavaScript side lives.
fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/aztec")
}

/// Whether Aztec's client is installed and a Node.js it runs on (20.10 or
/// later, its packages' `engines`) is here; says why not.
fn installed() -> bool {
    let package = harness().join("node_modules/@aztec/prover-client/package.json");
    if !package.exists() {
        cannot_run_here(
            "Aztec's prover client is not installed: run packaging/dev-setup.sh (npm install in tests/aztec)",
        );
        return false;
    }
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let number = |v: &str| -> Option<(u32, u32)> {
        let mut parts = v.trim_start_matches('v').split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match version.as_deref().and_then(number) {
        Some(v) if v >= (20, 10) => true,
        _ => {
            cannot_run_here(&format!(
                "Aztec's prover client needs Node.js 20.10 or later; node here: {}",
                version.as_deref().unwrap_or("none")
            ));
            false
        }
    }
}

/// `node drive.mjs <args>` with Aztec's logs at warnings.
fn drive(args: &[&str]) -> Command {
    let mut c = Command::new("node");
    c.arg(harness().join("drive.mjs"))
        .args(args)
        .current_dir(harness())
        .env("LOG_LEVEL", "warn");
    c
}

fn url(d: &ChildDaemon) -> String {
    format!("http://{}", d.addr.expect("broker address"))
}

/// Runs a driver to its end; returns its output, failing with it when the
/// driver fails.
fn run_to_end(mut c: Command) -> String {
    let out = c.output().expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "driver failed:\n{text}");
    text
}

/// A driver whose output lines arrive on a channel as it prints them.
fn spawn_lines(mut c: Command) -> (Child, Receiver<String>) {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a line that satisfies `f`, for at most `timeout`; returns it.
fn wait_line(rx: &Receiver<String>, timeout: Duration, mut f: impl FnMut(&str) -> bool) -> String {
    let end = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if f(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let tail = seen[seen.len().saturating_sub(20)..].join("\n");
    panic!("no such line from the driver within {timeout:?}; last lines:\n{tail}");
}

/// `key=value` from a driver's summary line.
fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .to_string()
}

#[test]
fn aztecs_broker_client_gets_every_answer_as_from_its_own_broker() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker_on(dir.path(), "broker", 0, &[]);
    let v = AztecVersion::V4_1_2;
    let names = v.type_names().join(",");
    let priority: Vec<String> = v.priority_order().iter().map(u8::to_string).collect();
    let out = run_to_end(drive(&["api", &url(&broker), &names, &priority.join(",")]));
    assert!(out.contains("API OK"), "{out}");
    eprintln!("{}", out.lines().last().unwrap_or_default());
}

#[tokio::test]
async fn aztecs_agents_and_facade_carry_on_through_a_kill_9_of_the_broker() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = start_broker_on(dir.path(), "broker", port, &[]);
    let jobs = 150;
    let (mut driver, lines) =
        spawn_lines(drive(&["run", &url(&broker), &jobs.to_string(), "4", "40"]));
    // Kill while jobs are being proven, with more to come.
    wait_line(&lines, Duration::from_secs(120), |l| {
        l.strip_prefix("progress ")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 40)
    });
    broker.kill9().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let broker = start_broker_on(dir.path(), "broker-restarted", port, &[]);
    let done = wait_line(&lines, Duration::from_secs(240), |l| {
        l.starts_with("RUN OK") || l.starts_with("RUN FAILED") || l.starts_with("FAILED")
    });
    let status = driver.wait().unwrap();
    assert!(status.success() && done.starts_with("RUN OK"), "{done}");
    eprintln!("through a kill -9: {done}");
    // Each job settled once, as proven, in the restarted broker's store.
    let c = client(&broker);
    let stats = c.get_queue_stats().await.unwrap();
    let counts = stats.aztec_by_type();
    let fulfilled: u64 = counts.values().map(|c| c.fulfilled).sum();
    let other: u64 = counts
        .values()
        .map(|c| c.queued + c.in_progress + c.rejected)
        .sum();
    assert_eq!((fulfilled, other), (jobs, 0), "{counts:?}");
    assert!(stats.epochs.is_empty(), "Aztec's jobs are not ours");
}

#[test]
fn aztecs_agents_against_our_broker_and_against_aztecs_own_in_one_run() {
    if !installed() {
        return;
    }
    // Aztec's broker (in memory, its own HTTP server) in a process of its
    // own, as ours is.
    let (mut theirs, lines) = spawn_lines(drive(&["serve-theirs"]));
    let listening = wait_line(&lines, Duration::from_secs(60), |l| {
        l.starts_with("LISTENING ")
    });
    let their_url = format!(
        "http://127.0.0.1:{}",
        listening.trim_start_matches("LISTENING ")
    );
    let dir = tempfile::tempdir().unwrap();
    let ours = start_broker_on(dir.path(), "broker", 0, &[]);
    let (jobs, agents) = ("600", "8");
    let mut rates = Vec::new();
    for round in 0..2 {
        for (who, at) in [("theirs", &their_url), ("ours", &url(&ours))] {
            let out = run_to_end(drive(&["run", at, jobs, agents, "2"]));
            let line = out.lines().find(|l| l.starts_with("RUN OK")).unwrap();
            assert_eq!(field(line, "provings"), jobs, "{line}");
            rates.push(format!(
                "round {round} {who}: {} jobs/s",
                field(line, "jobs_per_s")
            ));
        }
    }
    let _ = theirs.kill();
    let _ = theirs.wait();
    eprintln!(
        "Aztec's agents and facade, {jobs} jobs, {agents} agents, stand-in prover 2 ms: {}",
        rates.join(", ")
    );
}

//! The broker as operators and agents meet it: a real process on loopback,
//! JSON-RPC over HTTP, kill -9 and restart, socket activation, sd_notify,
//! D-Bus on a private bus, signals.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aztec_prover_protocol::broker_api::error_code;
use aztec_prover_protocol::uri::from_base64;
use aztec_prover_protocol::{
    EnqueueRequest, JobId, JobType, ProofUri, ProvingBrokerApiClient, ProvingJobFilter,
    ProvingJobStatus,
};
use jsonrpsee::core::ClientError;
use nix::sys::signal::Signal;
use support::*;

fn job(epoch: u64, t: JobType, inputs: &[u8]) -> EnqueueRequest {
    EnqueueRequest {
        id: None,
        job_type: t,
        epoch_number: epoch,
        inputs_uri: ProofUri::inline(inputs),
    }
}

fn code_of(e: ClientError) -> i32 {
    match e {
        ClientError::Call(obj) => obj.code(),
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

fn all() -> Option<ProvingJobFilter> {
    Some(ProvingJobFilter::default())
}

#[tokio::test]
async fn jobs_flow_through_enqueue_lease_and_success_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]);
    let c = client(&broker);

    let st = c
        .enqueue_proving_job(job(5, JobType::BaseParity, b"parity inputs"))
        .await
        .unwrap();
    assert_eq!(st, ProvingJobStatus::InQueue);
    let id = JobId::for_inputs(5, JobType::BaseParity, b"parity inputs");
    assert_eq!(
        c.get_proving_job_status(id.clone()).await.unwrap(),
        ProvingJobStatus::InQueue
    );

    // An agent that only proves merges gets nothing; one that proves parity gets it.
    let merges = Some(ProvingJobFilter {
        allow_list: vec![JobType::MergeRollup],
    });
    assert!(
        c.get_proving_job(merges, Some("merger".into()))
            .await
            .unwrap()
            .is_none()
    );
    let lease = c
        .get_proving_job(all(), Some("agent-a".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job.id, id);
    assert_eq!(lease.job.job_type, JobType::BaseParity);
    assert_eq!(lease.job.epoch_number, 5);
    let inputs = from_base64(
        &c.get_proof_data(lease.job.inputs_uri.clone())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(inputs, b"parity inputs");
    assert_eq!(
        c.get_proving_job_status(id.clone()).await.unwrap(),
        ProvingJobStatus::InProgress
    );

    c.report_proving_job_progress(id.clone(), lease.time)
        .await
        .unwrap();
    let next = c
        .report_proving_job_success(
            id.clone(),
            lease.time,
            ProofUri::inline(b"the proof"),
            all(),
        )
        .await
        .unwrap();
    assert!(next.is_none());
    let ProvingJobStatus::Fulfilled { value, .. } =
        c.get_proving_job_status(id.clone()).await.unwrap()
    else {
        panic!("not fulfilled")
    };
    assert_eq!(
        from_base64(&c.get_proof_data(value).await.unwrap()).unwrap(),
        b"the proof"
    );
    assert_eq!(
        c.get_completed_jobs(vec![]).await.unwrap(),
        vec![id.clone()]
    );
    assert_eq!(
        c.get_completed_jobs(vec![id.clone()]).await.unwrap(),
        vec![id]
    );
}

#[tokio::test]
async fn enqueueing_the_same_job_twice_is_a_no_op_that_returns_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]);
    let c = client(&broker);
    let req = job(1, JobType::MergeRollup, b"m");
    c.enqueue_proving_job(req.clone()).await.unwrap();
    assert_eq!(
        c.enqueue_proving_job(req.clone()).await.unwrap(),
        ProvingJobStatus::InQueue
    );
    let lease = c.get_proving_job(all(), None).await.unwrap().unwrap();
    c.report_proving_job_success(lease.job.id, lease.time, ProofUri::inline(b"p"), None)
        .await
        .unwrap();
    let again = c.enqueue_proving_job(req).await.unwrap();
    assert!(
        matches!(again, ProvingJobStatus::Fulfilled { .. }),
        "{again:?}"
    );
    assert_eq!(c.get_queue_stats().await.unwrap().totals().fulfilled, 1);
}

#[tokio::test]
async fn older_epochs_are_served_first() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]);
    let c = client(&broker);
    c.enqueue_proving_job(job(9, JobType::BaseRollup, b"new"))
        .await
        .unwrap();
    c.enqueue_proving_job(job(8, JobType::BaseRollup, b"old"))
        .await
        .unwrap();
    let first = c.get_proving_job(all(), None).await.unwrap().unwrap();
    assert_eq!(first.job.epoch_number, 8);
}

#[tokio::test]
async fn leased_job_returns_to_queue_after_timeout_and_the_late_report_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(
        dir.path(),
        &[
            "--proverBroker.proverBrokerJobTimeoutMs",
            "400",
            "--proverBroker.proverBrokerPollIntervalMs",
            "50",
        ],
    );
    let c = client(&broker);
    c.enqueue_proving_job(job(1, JobType::BaseRollup, b"tx"))
        .await
        .unwrap();
    let first = c
        .get_proving_job(all(), Some("slow".into()))
        .await
        .unwrap()
        .unwrap();
    // Two agents never hold the same lease: nothing else is available now.
    assert!(
        c.get_proving_job(all(), Some("other".into()))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    let second = c
        .get_proving_job(all(), Some("fast".into()))
        .await
        .unwrap()
        .expect("job back in the queue");
    assert_eq!(second.job.id, first.job.id);
    assert_ne!(second.time, first.time);
    let late = c
        .report_proving_job_success(
            first.job.id.clone(),
            first.time,
            ProofUri::inline(b"x"),
            None,
        )
        .await;
    assert_eq!(code_of(late.unwrap_err()), error_code::STALE_LEASE);
    c.report_proving_job_success(second.job.id, second.time, ProofUri::inline(b"y"), None)
        .await
        .unwrap();
    assert_eq!(c.get_queue_stats().await.unwrap().timeouts, 1);
}

#[tokio::test]
async fn errors_are_retried_up_to_the_limit_then_the_job_fails() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(
        dir.path(),
        // Two attempts in all (Aztec's meaning): one error queues it again.
        &["--proverBroker.proverBrokerJobMaxRetries", "2"],
    );
    let c = client(&broker);
    c.enqueue_proving_job(job(1, JobType::RootRollup, b"r"))
        .await
        .unwrap();
    let l = c.get_proving_job(all(), None).await.unwrap().unwrap();
    c.report_proving_job_error(l.job.id.clone(), l.time, "out of memory".into(), true, None)
        .await
        .unwrap();
    assert_eq!(
        c.get_proving_job_status(l.job.id.clone()).await.unwrap(),
        ProvingJobStatus::InQueue
    );
    let l = c.get_proving_job(all(), None).await.unwrap().unwrap();
    c.report_proving_job_error(
        l.job.id.clone(),
        l.time,
        "out of memory again".into(),
        true,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        c.get_proving_job_status(l.job.id).await.unwrap(),
        ProvingJobStatus::Rejected {
            reason: "out of memory again".into()
        }
    );
}

#[tokio::test]
async fn kill_9_mid_run_then_restart_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(dir.path(), &[]);
    let c = client(&broker);
    let n = 2000u32;
    for i in 0..n {
        c.enqueue_proving_job(job(1, JobType::BaseRollup, &i.to_le_bytes()))
            .await
            .unwrap();
    }
    // Consumers prove jobs as fast as they can and remember what the broker acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for k in 0..8 {
        let c = client(&broker);
        let (stop, acks) = (stop.clone(), acks.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(l)) = c.get_proving_job(all(), Some(format!("c{k}"))).await else {
                    break;
                };
                held.push(l.job.id.clone());
                if held.len() % 3 == 0 {
                    continue; // keep every third lease open: it must come back after the restart
                }
                match c
                    .report_proving_job_success(
                        l.job.id.clone(),
                        l.time,
                        ProofUri::inline(b"p"),
                        None,
                    )
                    .await
                {
                    Ok(_) => {
                        acked.push(l.job.id);
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    // Kill while the consumers are busy.
    while acks.load(Ordering::Relaxed) < 100 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    broker.kill9().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked = BTreeSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(!acked.is_empty(), "the run was too short to prove anything");

    let broker = start_broker_named(dir.path(), "broker-restarted", &[]);
    let c = client(&broker);
    let stats = c.get_queue_stats().await.unwrap().totals();
    assert_eq!(
        stats.queued + stats.in_progress + stats.fulfilled + stats.rejected,
        u64::from(n),
        "jobs lost"
    );
    assert_eq!(
        stats.in_progress, 0,
        "leases must return to the queue after a restart"
    );
    assert!(
        stats.queued > 0,
        "the kill came after the run ended; the test proves nothing"
    );
    assert!(stats.fulfilled >= acked.len() as u64);
    for id in &acked {
        let st = c.get_proving_job_status(id.clone()).await.unwrap();
        assert!(
            matches!(st, ProvingJobStatus::Fulfilled { .. }),
            "acknowledged result of {id} lost: {st:?}"
        );
    }
    // Everything left can still be proven.
    let mut proven = stats.fulfilled;
    while let Some(l) = c.get_proving_job(all(), None).await.unwrap() {
        c.report_proving_job_success(l.job.id, l.time, ProofUri::inline(b"p"), None)
            .await
            .unwrap();
        proven += 1;
    }
    assert_eq!(proven, u64::from(n));
}

#[tokio::test]
async fn socket_activation_starts_the_broker_on_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let mut args = vec![
        "-l".to_string(),
        format!("127.0.0.1:{port}"),
        bin().display().to_string(),
    ];
    args.extend(broker_args(&data).into_iter().filter(|a| a != "0"));
    // broker_args asks for port 0; socket activation must win over any port setting.
    let pos = args
        .iter()
        .position(|a| a == "--proverBroker.proverBrokerPort")
        .unwrap();
    args.insert(pos + 1, "9".into());
    let mut activator = std::process::Command::new("systemd-socket-activate")
        .args(&args)
        .stderr(std::fs::File::create(dir.path().join("activate.log")).unwrap())
        .spawn()
        .expect("systemd-socket-activate (package systemd) is needed");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_ok()
    }));
    assert!(
        !data.exists(),
        "the broker must not start before a connection arrives"
    );
    let (status, body) = raw_post(
        addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"getQueueStats","params":[]}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"result\""), "{body}");
    assert!(data.exists());
    // Log lines are written by a background writer: give it a moment.
    let log_path = dir.path().join("activate.log");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(10), || read_log()
            .contains("socket from systemd")),
        "{}",
        read_log()
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(activator.id() as i32),
        Signal::SIGTERM,
    );
    let _ = activator.wait();
}

#[tokio::test]
async fn readiness_and_status_are_reported_to_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(dir.path(), &[]);
    assert!(broker.notifications.iter().any(|l| l == "READY=1"));
    assert!(broker.addr.is_some());
    let c = client(&broker);
    for i in 0..3u8 {
        c.enqueue_proving_job(job(12, JobType::BaseRollup, &[i]))
            .await
            .unwrap();
    }
    let l = c.get_proving_job(all(), None).await.unwrap().unwrap();
    c.report_proving_job_success(l.job.id, l.time, ProofUri::inline(b"p"), None)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || broker
            .last_status()
            .is_some_and(|s| s.starts_with("epoch 12: 1/3 jobs proven"))),
        "{:?}",
        broker.last_status()
    );
}

#[tokio::test]
async fn bad_requests_get_json_rpc_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(
        dir.path(),
        &["--proverBroker.proverBrokerMaxBodyBytes", "4096"],
    );
    let addr = broker.addr.unwrap();
    let c = client(&broker);
    c.enqueue_proving_job(job(1, JobType::BaseRollup, b"a"))
        .await
        .unwrap();
    let l = c.get_proving_job(all(), None).await.unwrap().unwrap();
    c.report_proving_job_success(l.job.id.clone(), l.time, ProofUri::inline(b"p"), None)
        .await
        .unwrap();
    c.enqueue_proving_job(job(1, JobType::BaseRollup, b"b"))
        .await
        .unwrap();
    // Stats are published after each commit: wait until they show job b.
    let mut before = c.get_queue_stats().await.unwrap();
    for _ in 0..100 {
        if before.totals().queued == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        before = c.get_queue_stats().await.unwrap();
    }

    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("malformed JSON", br#"{"jsonrpc":"2.0","id":1,"method":"#.to_vec(), -32700),
        ("unknown method", br#"{"jsonrpc":"2.0","id":1,"method":"dropAllJobs","params":[]}"#.to_vec(), -32601),
        (
            "wrong types",
            br#"{"jsonrpc":"2.0","id":1,"method":"enqueueProvingJob","params":[{"type":7,"epochNumber":"x"}]}"#.to_vec(),
            -32602,
        ),
        (
            "unknown job type",
            br#"{"jsonrpc":"2.0","id":1,"method":"getProvingJob","params":[{"allowList":["TUBE_PROOF"]}]}"#.to_vec(),
            -32602,
        ),
        (
            "malformed job id",
            br#"{"jsonrpc":"2.0","id":1,"method":"cancelProvingJob","params":["../../etc"]}"#.to_vec(),
            -32602,
        ),
    ];
    for (what, body, want) in cases {
        let (status, text) = raw_post(addr, &body);
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert_eq!(v["error"]["code"], want, "{what}: {text} (HTTP {status})");
    }

    let ghost = JobId::for_inputs(1, JobType::BaseRollup, b"ghost");
    let e = c
        .report_proving_job_success(ghost.clone(), 1, ProofUri::inline(b"p"), None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), error_code::JOB_NOT_FOUND);
    assert_eq!(
        c.get_proving_job_status(ghost.clone()).await.unwrap(),
        ProvingJobStatus::NotFound
    );
    assert_eq!(
        code_of(c.cancel_proving_job(ghost).await.unwrap_err()),
        error_code::JOB_NOT_FOUND
    );
    let dup = c
        .report_proving_job_success(l.job.id.clone(), l.time, ProofUri::inline(b"q"), None)
        .await
        .unwrap_err();
    assert_eq!(code_of(dup), error_code::ALREADY_SETTLED);
    let mismatched = EnqueueRequest {
        id: Some(l.job.id.clone()),
        ..job(1, JobType::BaseRollup, b"other")
    };
    assert_eq!(
        code_of(c.enqueue_proving_job(mismatched).await.unwrap_err()),
        error_code::INVALID_JOB
    );
    let missing_blob = EnqueueRequest {
        inputs_uri: ProofUri::blob(&[3; 32]),
        ..job(1, JobType::BaseRollup, b"")
    };
    assert_eq!(
        code_of(c.enqueue_proving_job(missing_blob).await.unwrap_err()),
        error_code::BLOB_NOT_FOUND
    );

    // Oversized body: refused with 413 and a JSON-RPC error.
    let big = serde_json::json!({"jsonrpc":"2.0","id":1,"method":"enqueueProvingJob",
        "params":[{"type":"BASE_ROLLUP","epochNumber":1,"inputsUri": ProofUri::inline(&vec![0u8; 8192]).as_str()}]});
    let (status, text) = raw_post(addr, big.to_string().as_bytes());
    assert_eq!(status, 413, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], -32005, "{text}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("the request is over 4096 bytes"),
        "{text}"
    );

    assert_eq!(
        c.get_queue_stats().await.unwrap(),
        before,
        "a bad request changed the broker's state"
    );
    let ProvingJobStatus::Fulfilled { value, .. } =
        c.get_proving_job_status(l.job.id).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        from_base64(&c.get_proof_data(value).await.unwrap()).unwrap(),
        b"p"
    );
}

#[test]
fn a_bad_config_value_exits_before_touching_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = command(&[
        "broker",
        "--config",
        "/dev/null",
        "--proverBroker.dataDirectory",
        data.to_str().unwrap(),
    ])
    .env("PROVER_BROKER_JOB_TIMEOUT_MS", "thirty seconds")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("job_timeout_ms"), "{err}");
    assert!(
        err.contains("environment variable PROVER_BROKER_JOB_TIMEOUT_MS"),
        "{err}"
    );
    assert!(err.contains("expected a whole number"), "{err}");
    assert!(!data.exists(), "state was touched");

    let toml = dir.path().join("broker.toml");
    std::fs::write(&toml, "job_timeout_ms = 0\n").unwrap();
    let out = command(&["broker", "--config", toml.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("config file {}", toml.display())),
        "{err}"
    );
}

#[test]
fn config_show_prints_values_with_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("broker.toml");
    std::fs::write(&toml, "job_max_retries = 7\n").unwrap();
    let out = command(&[
        "config",
        "show",
        "broker",
        "--config",
        toml.to_str().unwrap(),
        "--proverBroker.proverBrokerPort",
        "9999",
    ])
    .env("PROVER_BROKER_JOB_TIMEOUT_MS", "1234")
    .output()
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |k: &str| {
        text.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("port ").contains("9999")
            && line("port ").contains("flag --proverBroker.proverBrokerPort"),
        "{text}"
    );
    assert!(
        line("job_timeout_ms").contains("environment variable PROVER_BROKER_JOB_TIMEOUT_MS"),
        "{text}"
    );
    assert!(line("job_max_retries").contains("config file"), "{text}");
    assert!(line("batch_size").contains("default"), "{text}");
}

#[tokio::test]
async fn dbus_properties_can_be_read_and_tuned_with_busctl() {
    let bus = PrivateBus::start();
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &["--dbus", &bus.address]);
    let c = client(&broker);
    for i in 0..2u8 {
        c.enqueue_proving_job(job(3, JobType::MergeRollup, &[i]))
            .await
            .unwrap();
    }
    c.enqueue_proving_job(job(4, JobType::BaseRollup, b"x"))
        .await
        .unwrap();
    let get = |prop: &str| {
        bus.busctl(&[
            "get-property",
            "org.aztec.ProverBroker",
            "/org/aztec/ProverBroker",
            "org.aztec.ProverBroker1",
            prop,
        ])
    };
    let (ok, depth, err) = get("QueueDepth");
    assert!(ok, "{err}");
    assert!(
        depth.contains("\"MERGE_ROLLUP\" 2") && depth.contains("\"BASE_ROLLUP\" 1"),
        "{depth}"
    );
    assert_eq!(get("JobTimeoutMs").1, "t 30000");

    let set = |prop: &str, sig: &str, v: &str| {
        bus.busctl(&[
            "set-property",
            "org.aztec.ProverBroker",
            "/org/aztec/ProverBroker",
            "org.aztec.ProverBroker1",
            prop,
            sig,
            v,
        ])
    };
    assert!(set("JobTimeoutMs", "t", "5000").0);
    assert_eq!(get("JobTimeoutMs").1, "t 5000");
    assert_eq!(c.get_queue_stats().await.unwrap().job_timeout_ms, 5000);
    let (ok, _, err) = set("JobTimeoutMs", "t", "0");
    assert!(!ok && err.contains("between 1 and"), "{err}");
    let (ok, _, err) = set("MaxRetries", "u", "5000");
    assert!(!ok && err.contains("between 1 and 1000"), "{err}");
    assert!(set("MaxRetries", "u", "9").0);
    assert_eq!(c.get_queue_stats().await.unwrap().max_retries, 9);

    let (ok, out, err) = bus.busctl(&[
        "call",
        "org.aztec.ProverBroker",
        "/org/aztec/ProverBroker",
        "org.aztec.ProverBroker1",
        "CancelEpoch",
        "t",
        "3",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "t 2");
    assert_eq!(get("Failed").1, "t 2");
    let next = c.get_proving_job(all(), None).await.unwrap().unwrap();
    assert_eq!(next.job.epoch_number, 4);
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(dir.path(), &[]);
    let c = client(&broker);
    c.enqueue_proving_job(job(1, JobType::BaseRollup, b"a"))
        .await
        .unwrap();
    let status = broker.terminate(Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{status:?}\n{}", broker.log());
    broker.poll_notifications();
    assert!(
        broker.notifications.iter().any(|l| l == "STOPPING=1"),
        "{:?}",
        broker.notifications
    );
    assert!(broker.log().contains("broker stopped"));
    let broker = start_broker_named(dir.path(), "broker-2", &[]);
    assert_eq!(
        client(&broker)
            .get_queue_stats()
            .await
            .unwrap()
            .totals()
            .queued,
        1
    );
}

#[tokio::test]
async fn sighup_reloads_the_job_timeout_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("broker.toml");
    std::fs::write(&toml, "job_timeout_ms = 1000\n").unwrap();
    let data = dir.path().join("data");
    let mut cmd = command(&[
        "broker",
        "--config",
        toml.to_str().unwrap(),
        "--proverBroker.proverBrokerListenAddress",
        "127.0.0.1",
        "--proverBroker.proverBrokerPort",
        "0",
        "--dbus",
        "none",
        "--proverBroker.dataDirectory",
        data.to_str().unwrap(),
    ]);
    cmd.env("LOG_LEVEL", "info");
    let mut broker = aztec_prover_common::child::ChildDaemon::spawn(
        "broker",
        cmd,
        dir.path(),
        &dir.path().join("broker.log"),
        Duration::from_secs(30),
    )
    .unwrap();
    let c = client(&broker);
    assert_eq!(c.get_queue_stats().await.unwrap().job_timeout_ms, 1000);
    std::fs::write(&toml, "job_timeout_ms = 2500\n").unwrap();
    broker.signal(Signal::SIGHUP).unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        if c.get_queue_stats().await.unwrap().job_timeout_ms == 2500 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "{}", broker.log());
    // A bad file on reload is refused and the running configuration kept.
    std::fs::write(&toml, "job_timeout_ms = \"soon\"\n").unwrap();
    broker.signal(Signal::SIGHUP).unwrap();
    assert!(eventually(Duration::from_secs(5), || broker
        .log()
        .contains("reload refused")));
    assert_eq!(c.get_queue_stats().await.unwrap().job_timeout_ms, 2500);
    broker.poll_notifications();
    assert!(broker.notifications.iter().any(|l| l == "RELOADING=1"));
}

#[test]
fn the_shipped_config_file_lists_every_key_with_its_default() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../etc/broker.toml"
    ))
    .unwrap();
    let uncommented: String = shipped
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.contains(" = ") && !l.starts_with(' '))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker.toml");
    std::fs::write(&file, &uncommented).unwrap();
    let from_file = command(&[
        "config",
        "show",
        "broker",
        "--config",
        file.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let defaults = command(&["config", "show", "broker", "--config", "/dev/null"])
        .output()
        .unwrap();
    let values = |out: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .collect()
    };
    assert_eq!(
        values(&from_file.stdout),
        values(&defaults.stdout),
        "etc/broker.toml drifted from the defaults"
    );
    let keys = values(&defaults.stdout).len();
    assert_eq!(
        uncommented.lines().count(),
        keys,
        "etc/broker.toml does not list every key:\n{uncommented}"
    );
}

#[tokio::test]
async fn json_logs_carry_the_job_fields() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = broker_args(&data);
    args.extend(["--log-json".to_string()]);
    let cmd = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let broker = aztec_prover_common::child::ChildDaemon::spawn(
        "broker",
        cmd,
        dir.path(),
        &dir.path().join("broker.log"),
        Duration::from_secs(30),
    )
    .unwrap();
    let c = client(&broker);
    c.enqueue_proving_job(job(5, JobType::BlockRootRollup, b"blk"))
        .await
        .unwrap();
    let l = c
        .get_proving_job(all(), Some("agent-7".into()))
        .await
        .unwrap()
        .unwrap();
    c.report_proving_job_success(l.job.id.clone(), l.time, ProofUri::inline(b"p"), None)
        .await
        .unwrap();
    let proven = eventually(Duration::from_secs(5), || {
        broker.log().contains("job proven")
    });
    assert!(proven, "{}", broker.log());
    let line = broker
        .log()
        .lines()
        .find(|l| l.contains("job proven"))
        .unwrap()
        .to_string();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["EPOCH"], 5, "{line}");
    assert_eq!(v["JOB_TYPE"], "BLOCK_ROOT_ROLLUP", "{line}");
    assert_eq!(v["JOB_ID"], l.job.id.as_str(), "{line}");
    assert_eq!(v["AGENT"], "agent-7", "{line}");
    assert_eq!(v["level"], "INFO", "{line}");
}

#[test]
fn the_watchdog_is_pinged_when_systemd_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let args = broker_args(&dir.path().join("data"));
    let mut cmd = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    cmd.env("WATCHDOG_USEC", "200000");
    let mut broker = aztec_prover_common::child::ChildDaemon::spawn(
        "broker",
        cmd,
        dir.path(),
        &dir.path().join("b.log"),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        broker.poll_notifications();
        broker
            .notifications
            .iter()
            .filter(|l| *l == "WATCHDOG=1")
            .count()
            >= 3
    }));
}

#[test]
fn journald_target_without_a_journal_falls_back_to_stderr_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let args = broker_args(&dir.path().join("data"));
    let mut cmd = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    cmd.env("LOG_TARGET", "journald");
    let broker = aztec_prover_common::child::ChildDaemon::spawn(
        "broker",
        cmd,
        dir.path(),
        &dir.path().join("b.log"),
        Duration::from_secs(30),
    )
    .unwrap();
    let log = broker.log();
    if std::path::Path::new("/run/systemd/journal/socket").exists() {
        return; // a real journal is present: the logs went there
    }
    assert!(log.contains("journald is not reachable"), "{log}");
    assert!(log.contains("broker ready"), "{log}");
}

/// A second broker on a data directory in use refuses to start, naming the
/// directory and the first broker's pid, and touches nothing: the first
/// one's lease is still good.
#[tokio::test]
async fn a_second_broker_on_the_same_directory_refuses_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_broker(dir.path(), &[]);
    let c = client(&first);
    c.enqueue_proving_job(job(1, JobType::BaseRollup, b"held"))
        .await
        .unwrap();
    let l = c.get_proving_job(all(), None).await.unwrap().unwrap();
    let args = broker_args(&dir.path().join("data"));
    let out = command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("in use by another process")
            && err.contains(&format!("pid {}", first.pid()))
            && err.contains(&dir.path().join("data").display().to_string()),
        "{err}"
    );
    // The lease the first broker gave is untouched.
    c.report_proving_job_progress(l.job.id.clone(), l.time)
        .await
        .unwrap();
    assert_eq!(
        c.get_proving_job_status(l.job.id).await.unwrap(),
        ProvingJobStatus::InProgress
    );
}

/// POSTs `body` in chunks (Transfer-Encoding: chunked) and returns (HTTP
/// status, response body); `token` goes in Authorization.
fn raw_post_chunked(addr: std::net::SocketAddr, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    for piece in body.chunks(64 << 10) {
        if s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .is_err()
            || s.write_all(piece).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A body over the limit gets HTTP 413 and -32005, whether its length was
/// declared or it came in chunks (it used to be a 500 in chunks).
#[test]
fn an_oversized_body_is_413_with_or_without_a_length() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(
        dir.path(),
        &["--proverBroker.proverBrokerMaxBodyBytes", "65536"],
    );
    let addr = broker.addr.unwrap();
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getQueueStats\",\"params\":[\"{}\"]}}",
        "x".repeat(200_000)
    );
    let (status, body) = raw_post(addr, big.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("-32005"), "{body}");
    let (status, text) = raw_post_chunked(addr, big.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("-32005"), "{text}");
    // And the broker still answers.
    let (status, body) = raw_post(
        addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"getQueueStats","params":[]}"#,
    );
    assert_eq!(status, 200, "{body}");
}

/// A request id the broker could not echo (an object, `1e400`, a negative
/// number) gets -32600, not a bare `null`; a job id with a sign or leading
/// zeros in its epoch is malformed.
#[test]
fn ids_the_protocol_does_not_allow_get_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]);
    let addr = broker.addr.unwrap();
    for id in ["{}", "1e400", "-3", "[1]"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"getQueueStats","params":[]}}"#);
        let (status, text) = raw_post(addr, body.as_bytes());
        assert_eq!(status, 400, "{id}: {text}");
        assert!(text.contains("-32600"), "{id}: {text}");
    }
    let zeros = "0".repeat(64);
    for job in [
        format!("+10:BASE_ROLLUP:{zeros}"),
        format!("010:BASE_ROLLUP:{zeros}"),
    ] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"getProvingJobStatus","params":["{job}"]}}"#
        );
        let (_, text) = raw_post(addr, body.as_bytes());
        assert!(text.contains("\"error\""), "{job}: {text}");
        assert!(text.contains("\"id\":7"), "{job}: {text}");
    }
}

/// With PROVER_BROKER_AUTH_TOKEN every request needs the bearer token
/// (compared in constant time); `GET /` stays open; the token is never
/// logged; a client with the token works.
#[tokio::test]
async fn with_a_token_the_broker_answers_only_those_who_send_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cret-token-for-tests";
    let args = broker_args(&dir.path().join("data"));
    let mut cmd = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    cmd.env("PROVER_BROKER_AUTH_TOKEN", secret);
    let broker = aztec_prover_common::child::ChildDaemon::spawn(
        "broker",
        cmd,
        dir.path(),
        &dir.path().join("broker.log"),
        Duration::from_secs(60),
    )
    .unwrap();
    let addr = broker.addr.unwrap();
    let url = format!("http://{addr}");
    let stats = br#"{"jsonrpc":"2.0","id":1,"method":"getQueueStats","params":[]}"#;
    let (status, body) = raw_post(addr, stats);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("bearer token"), "{body}");
    let wrong = aztec_prover_common::rpc::client_with_token(
        &url,
        Duration::from_secs(10),
        1 << 20,
        Some("not-it"),
    )
    .unwrap();
    assert!(wrong.get_queue_stats().await.is_err());
    let right = aztec_prover_common::rpc::client_with_token(
        &url,
        Duration::from_secs(10),
        1 << 20,
        Some(secret),
    )
    .unwrap();
    right
        .enqueue_proving_job(job(1, JobType::BaseRollup, b"authorized"))
        .await
        .unwrap();
    assert_eq!(right.get_queue_stats().await.unwrap().totals().queued, 1);
    // The health check needs no token.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut s, &mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!broker.log().contains(secret), "the token reached the log");
}

/// A commit the disk refuses (here: the broker's files may not grow past
/// 4 MiB, as on a small filesystem that fills up) fails only the request
/// that needed the space: an agent holding a lease from before keeps it, its
/// heartbeat and its result are accepted, and nothing of the refused
/// request is kept.
#[tokio::test]
async fn a_full_disk_fails_only_the_request_that_needed_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let args = broker_args(&dir.path().join("data"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The signal a process gets at the limit is ignored (as systemd's
    // LimitFSIZE= and a full disk give an error, not a signal); the limit
    // itself comes from prlimit(1).
    let cmd = command_via(
        &[
            "sh",
            "-c",
            "trap '' XFSZ; exec prlimit --fsize=4194304 -- \"$@\"",
            "sh",
        ],
        &args,
    );
    let broker = aztec_prover_common::child::ChildDaemon::spawn(
        "broker",
        cmd,
        dir.path(),
        &dir.path().join("broker.log"),
        Duration::from_secs(60),
    )
    .unwrap();
    let c = client(&broker);
    c.enqueue_proving_job(job(1, JobType::BaseRollup, b"held"))
        .await
        .unwrap();
    let held = c
        .get_proving_job(all(), Some("agent-a".into()))
        .await
        .unwrap()
        .unwrap();

    // 6 MiB of inputs do not fit under the limit: that request fails.
    let big: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let refused = c
        .enqueue_proving_job(job(1, JobType::BaseRollup, &big))
        .await
        .expect_err("a commit past the file size limit must fail");
    assert_eq!(code_of(refused), error_code::STORAGE);
    let big_id = JobId::for_inputs(1, JobType::BaseRollup, &big);
    assert_eq!(
        c.get_proving_job_status(big_id).await.unwrap(),
        ProvingJobStatus::NotFound
    );

    // The agent that had nothing to do with it carries on.
    c.report_proving_job_progress(held.job.id.clone(), held.time)
        .await
        .expect("the held lease survives another client's failed commit");
    c.report_proving_job_success(
        held.job.id.clone(),
        held.time,
        ProofUri::inline(b"proof"),
        None,
    )
    .await
    .expect("the held lease's result is accepted");
    assert!(matches!(
        c.get_proving_job_status(held.job.id.clone()).await.unwrap(),
        ProvingJobStatus::Fulfilled { .. }
    ));
    let totals = c.get_queue_stats().await.unwrap().totals();
    assert_eq!((totals.queued, totals.fulfilled), (0, 1), "{totals:?}");
    let log = std::fs::read_to_string(dir.path().join("broker.log")).unwrap();
    assert!(log.contains("commit failed"), "{log}");
    assert!(!log.contains("reloaded"), "{log}");
}

/// Opens `n` connections from `source` that declare a 60 MB body and send
/// one byte of it; returns the streams and how many were answered with 429
/// at once.
async fn slow_bodies(
    addr: std::net::SocketAddr,
    source: &str,
    n: usize,
) -> (Vec<tokio::net::TcpStream>, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut open = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        let _ = s
            .write_all(b"POST / HTTP/1.1\r\nHost: broker\r\nContent-Type: application/json\r\nContent-Length: 60000000\r\n\r\n{")
            .await;
        open.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = 0;
    for s in &mut open {
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await
            && buf[..n].starts_with(b"HTTP/1.1 429")
        {
            refused += 1;
        }
    }
    (open, refused)
}

/// Slow bodies from one address take at most that address's share of the
/// connections: the node and agents at other addresses are still served.
/// Without the share (the control: a share as large as the total) the same
/// load locks everyone out with 429.
#[tokio::test]
async fn slow_bodies_from_one_address_leave_room_for_everyone_else() {
    for (per_peer, served) in [("16", true), ("48", false)] {
        let dir = tempfile::tempdir().unwrap();
        let broker = start_broker(
            dir.path(),
            &[
                "--proverBroker.proverBrokerMaxConnections",
                "48",
                "--proverBroker.proverBrokerMaxConnectionsPerPeer",
                per_peer,
            ],
        );
        let addr = broker.addr.unwrap();
        let (_held, refused) = slow_bodies(addr, "127.0.0.2", 48).await;
        let answer = client(&broker).get_queue_stats().await;
        if served {
            assert_eq!(refused, 32, "per peer {per_peer}");
            answer.expect("a client at another address is served");
        } else {
            assert_eq!(refused, 0, "per peer {per_peer}");
            // Refused with 429; the broker may close the connection before
            // the client has written its request, which then fails to send.
            let e = answer.expect_err("the control: the total is taken");
            let e = e.to_string();
            assert!(e.contains("429") || e.contains("SendRequest"), "{e}");
        }
    }
}

/// Twelve clients reading a 40 MiB proof at once take no more memory than
/// the answer budget (256 MiB by default) and a little more; they all get
/// the whole proof. (Unbounded, the same reads took the broker to about
/// 900 MiB.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_of_a_large_proof_stay_within_the_answer_budget() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]);
    let c = client(&broker);
    let big: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    c.enqueue_proving_job(job(1, JobType::BaseRollup, &big))
        .await
        .unwrap();
    let lease = c
        .get_proving_job(all(), Some("reader".into()))
        .await
        .unwrap()
        .unwrap();
    let uri = lease.job.inputs_uri.clone();
    assert!(uri.as_str().starts_with("blob:"), "{uri}");
    // The peak from here on.
    std::fs::write(format!("/proc/{}/clear_refs", broker.pid()), "5").unwrap();
    let before = broker.peak_rss_bytes().unwrap();
    let mut readers = Vec::new();
    for _ in 0..12 {
        let reader = client(&broker);
        let uri = uri.clone();
        readers.push(tokio::spawn(
            async move { reader.get_proof_data(uri).await },
        ));
    }
    for r in readers {
        let text = r.await.unwrap().expect("every reader gets the proof");
        assert_eq!(from_base64(&text).unwrap().len(), big.len());
    }
    let grown = broker.peak_rss_bytes().unwrap().saturating_sub(before);
    eprintln!("broker peak grew by {} MiB", grown >> 20);
    assert!(
        grown < 400 << 20,
        "the broker's peak grew by {} MiB",
        grown >> 20
    );
}

//! The prover agent against a real broker process and a private
//! dbus-daemon: whole epochs proven and verified, tuning over busctl,
//! exclusive leases, kill -9 and SIGTERM, a broker that comes late,
//! corrupt jobs, start-up errors, NUMA placement on fake topologies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aztec_prover_common::child::ChildDaemon;
use aztec_prover_protocol::{
    EnqueueRequest, JobId, JobType, ProofUri, ProvingBrokerApiClient, ProvingJobStatus, UriKind,
};
use aztec_prover_rollup::plan::{BlockSpec, EpochPlan, plan_epoch};
use aztec_prover_rollup::world::{World, synthetic_tx};
use aztec_zk::circuits::links::check_children;
use aztec_zk::groth16::verify::{Item, verify_batch};
use aztec_zk::wire::{ProofResult, decode_result, encode_inputs, job_type};
use aztec_zk::{CircuitId, Felt, Inputs, RollupParams, keys};
use rand::SeedableRng;
use support::*;

/// Test-size keys of `circuits` in `dir/keys`.
fn make_keys(dir: &Path, circuits: &[CircuitId]) -> PathBuf {
    let k = dir.join("keys");
    keys::generate_dir(
        &k,
        &RollupParams::test(),
        Some("agent-tests"),
        circuits,
        |_, _, _| {},
    )
    .unwrap();
    k
}

fn plan(blocks: usize, seed: u64) -> EpochPlan {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut world = World::genesis(RollupParams::test());
    let mut scratch = world.clone();
    let specs: Vec<BlockSpec> = (0..blocks)
        .map(|b| {
            let txs = (0..2)
                .map(|_| {
                    let tx = synthetic_tx(&scratch, &mut rng).unwrap();
                    scratch.apply_tx(&tx).unwrap();
                    tx
                })
                .collect();
            BlockSpec {
                txs,
                messages: vec![Felt::from_u64(b as u64 + 1)],
                slot: b as u64,
            }
        })
        .collect();
    plan_epoch(&mut world, 3, Felt::ZERO, &specs).unwrap()
}

fn agent_cmd(broker: &ChildDaemon, keys: &Path, extra: &[&str]) -> std::process::Command {
    let url = format!("http://{}", broker.addr.unwrap());
    let mut c = command(&[
        "agent",
        "--config",
        "/dev/null",
        "--proverAgent.proverBrokerUrl",
        &url,
        "--proverAgent.keysDirectory",
        keys.to_str().unwrap(),
        "--proverAgent.proverAgentPollIntervalMs",
        "50",
        "--proverAgent.heartbeatIntervalMs",
        "300",
        "--log-level",
        "debug",
    ]);
    c.args(extra);
    c
}

fn start_agent(
    dir: &Path,
    name: &str,
    broker: &ChildDaemon,
    keys: &Path,
    extra: &[&str],
) -> ChildDaemon {
    ChildDaemon::spawn(
        name,
        agent_cmd(broker, keys, extra),
        dir,
        &dir.join(format!("{name}.log")),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn wait_log(d: &ChildDaemon, what: &str, timeout: Duration) {
    assert!(
        eventually(timeout, || d.log().contains(what)),
        "never logged {what:?}:\n{}",
        d.log_tail(30)
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn enqueue(
    c: &jsonrpsee::http_client::HttpClient,
    epoch: u64,
    t: JobType,
    bytes: &[u8],
) -> JobId {
    let req = EnqueueRequest {
        id: None,
        job_type: t,
        epoch_number: epoch,
        inputs_uri: ProofUri::inline(bytes),
    };
    // Enqueueing is idempotent: a broker slowed by a loaded machine is asked again.
    let mut tries = 0;
    while let Err(e) = c.enqueue_proving_job(req.clone()).await {
        tries += 1;
        assert!(tries < 5, "enqueue: {e}");
        eprintln!("enqueue: {e}; asking again");
    }
    JobId::for_inputs(epoch, t, bytes)
}

async fn wait_settled(
    c: &jsonrpsee::http_client::HttpClient,
    id: &JobId,
    timeout: Duration,
) -> ProvingJobStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        // A broker slowed down by a loaded machine may miss one request's timeout.
        match c.get_proving_job_status(id.clone()).await {
            Ok(s) if s.is_settled() || std::time::Instant::now() > deadline => return s,
            Ok(_) => {}
            Err(e) if std::time::Instant::now() > deadline => panic!("broker: {e}"),
            Err(e) => eprintln!("status of {id}: {e}; asking again"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn result(c: &jsonrpsee::http_client::HttpClient, s: &ProvingJobStatus) -> ProofResult {
    let ProvingJobStatus::Fulfilled { value, .. } = s else {
        panic!("not proven: {s:?}")
    };
    let bytes = match value.kind().unwrap() {
        UriKind::Inline(b) => b,
        UriKind::Blob(_) => {
            aztec_prover_protocol::uri::from_base64(&c.get_proof_data(value.clone()).await.unwrap())
                .unwrap()
        }
        UriKind::External => panic!("external result"),
    };
    decode_result(&bytes).unwrap()
}

fn proving_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" proving ") && l.contains(" job "))
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("JOB_ID="))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn two_agents_prove_an_epoch_that_verifies_and_obey_busctl() {
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path(), &CircuitId::ALL);
    let bus = PrivateBus::start();
    let broker = start_broker(dir.path(), &[]);
    let a1 = start_agent(
        dir.path(),
        "agent1",
        &broker,
        &keys,
        &[
            "--dbus",
            &bus.address,
            "--instance",
            "1",
            "--proverAgent.proverAgentCount",
            "2",
        ],
    );
    let a2 = start_agent(
        dir.path(),
        "agent2",
        &broker,
        &keys,
        &["--dbus", &bus.address, "--instance", "2"],
    );
    let c = client(&broker);
    let plan = plan(3, 11);
    let vks: std::collections::HashMap<CircuitId, aztec_zk::groth16::VerifyingKey> = CircuitId::ALL
        .iter()
        .map(|&cid| {
            (
                cid,
                keys::load_verifying_key(&keys, cid, &RollupParams::test())
                    .unwrap()
                    .1,
            )
        })
        .collect();

    let results: Vec<ProofResult> = rt().block_on(async {
        let mut ids = Vec::new();
        for j in &plan.jobs {
            ids.push(enqueue(&c, 3, job_type(j.circuit()), &encode_inputs(&j.inputs)).await);
        }
        let mut out = Vec::new();
        for id in &ids {
            let s = wait_settled(&c, id, Duration::from_secs(240)).await;
            out.push(result(&c, &s).await);
        }
        out
    });
    // Every proof verifies (one batch), matches the circuit's public inputs, and the tree links.
    let proofs: Vec<_> = results
        .iter()
        .map(|r| r.proof().unwrap().expect("a real proof"))
        .collect();
    let items: Vec<Item<'_>> = results
        .iter()
        .zip(&proofs)
        .map(|(r, p)| Item {
            vk: &vks[&r.circuit],
            inputs: &r.public_inputs,
            proof: p,
        })
        .collect();
    assert!(verify_batch(&items, &mut rand::thread_rng()).unwrap());
    for (i, j) in plan.jobs.iter().enumerate() {
        assert_eq!(results[i].circuit, j.circuit());
        assert_eq!(
            results[i].public_inputs,
            aztec_zk::synth::simulate(&RollupParams::test(), &j.inputs).unwrap()
        );
        let kids: Vec<(CircuitId, &[Felt])> = j
            .children
            .iter()
            .map(|&k| (results[k].circuit, results[k].public_inputs.as_slice()))
            .collect();
        check_children(j.circuit(), &results[i].public_inputs, &kids).unwrap();
    }
    // No job was proven by two agents.
    let (l1, l2) = (proving_lines(&a1.log()), proving_lines(&a2.log()));
    // (Identical jobs, such as two all-zero base parities, share one id and are proven once.)
    let distinct: std::collections::HashSet<String> = plan
        .jobs
        .iter()
        .map(|j| JobId::for_inputs(3, job_type(j.circuit()), &encode_inputs(&j.inputs)).to_string())
        .collect();
    assert_eq!(
        l1.len() + l2.len(),
        distinct.len(),
        "every job proven once: {l1:?} {l2:?}"
    );
    assert!(
        l1.iter().all(|id| !l2.contains(id)),
        "a job proven by both agents"
    );
    assert!(!l2.is_empty() && !l1.is_empty(), "both agents worked");

    // busctl: counters, Threads, Paused, limits.
    let dest = "org.aztec.ProverAgent.Instance1";
    let (path, iface) = ("/org/aztec/ProverAgent", "org.aztec.ProverAgent1");
    let (ok, out, _) = bus.busctl(&["get-property", dest, path, iface, "JobsCompleted"]);
    assert!(ok);
    assert_eq!(out, format!("t {}", l1.len()));
    let (ok, _, err) = bus.busctl(&["set-property", dest, path, iface, "Threads", "u", "0"]);
    assert!(!ok && err.contains("between 1 and"), "{err}");
    let (ok, _, _) = bus.busctl(&["set-property", dest, path, iface, "Threads", "u", "1"]);
    assert!(ok);
    assert_eq!(
        bus.busctl(&["get-property", dest, path, iface, "Threads"])
            .1,
        "u 1"
    );
    let (ok, _, err) = bus.busctl(&[
        "set-property",
        dest,
        path,
        iface,
        "PollIntervalMs",
        "t",
        "0",
    ]);
    assert!(!ok && err.contains("between 1 and"), "{err}");
    let (ok, _, err) = bus.busctl(&[
        "set-property",
        dest,
        path,
        iface,
        "Backend",
        "s",
        "/nonexistent/lib.so",
    ]);
    assert!(!ok && err.contains("nonexistent"), "{err}");
    let (ok, _, err) = bus.busctl(&[
        "set-property",
        dest,
        path,
        iface,
        "AllowedJobTypes",
        "as",
        "1",
        "NOT_A_TYPE",
    ]);
    assert!(!ok && err.contains("unknown job type"), "{err}");
    for d in [
        "org.aztec.ProverAgent.Instance1",
        "org.aztec.ProverAgent.Instance2",
    ] {
        assert!(
            bus.busctl(&["set-property", d, path, iface, "Paused", "b", "true"])
                .0
        );
    }
    // A job request already on its way when the pause landed may still be
    // answered; let those settle before enqueueing.
    std::thread::sleep(Duration::from_millis(500));
    let other = plan
        .jobs
        .iter()
        .find(|j| j.circuit() == CircuitId::MergeRollup)
        .unwrap();
    let Inputs::MergeRollup(mut m) = other.inputs.clone() else {
        unreachable!()
    };
    m.left.fee = Felt::from_u64(5);
    let bytes = encode_inputs(&Inputs::MergeRollup(m));
    rt().block_on(async {
        let id = enqueue(&c, 4, JobType::MergeRollup, &bytes).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            c.get_proving_job_status(id.clone()).await.unwrap(),
            ProvingJobStatus::InQueue,
            "paused agents take nothing"
        );
        assert!(bus.busctl(&["call", dest, path, iface, "Resume"]).0);
        let s = wait_settled(&c, &id, Duration::from_secs(60)).await;
        assert!(matches!(s, ProvingJobStatus::Fulfilled { .. }), "{s:?}");
    });
    assert!(a1.log().contains("Threads set to 1"));

    // Bad jobs are rejected, not retried, with the reason.
    rt().block_on(async {
        let garbage = enqueue(&c, 4, JobType::BaseRollup, b"definitely not inputs").await;
        let wrong = enqueue(&c, 4, JobType::BaseRollup, &bytes).await;
        let base = plan
            .jobs
            .iter()
            .find(|j| j.circuit() == CircuitId::BaseRollup)
            .unwrap();
        let Inputs::BaseRollup(mut b) = base.inputs.clone() else {
            unreachable!()
        };
        b.start.public_root = Felt::from_u64(1);
        let invalid = enqueue(
            &c,
            4,
            JobType::BaseRollup,
            &encode_inputs(&Inputs::BaseRollup(b)),
        )
        .await;
        for (id, want) in [
            (garbage, "bad tag"),
            (wrong, "carries inputs for merge-rollup"),
            (invalid, "does not satisfy constraint"),
        ] {
            match wait_settled(&c, &id, Duration::from_secs(60)).await {
                ProvingJobStatus::Rejected { reason } => assert!(reason.contains(want), "{reason}"),
                s => panic!("expected a rejection with {want:?}, got {s:?}"),
            }
        }
    });
    // The three bad jobs count as failures.
    let failed = |d: &str| -> u64 {
        bus.busctl(&["get-property", d, path, iface, "JobsFailed"])
            .1
            .trim_start_matches("t ")
            .parse()
            .unwrap()
    };
    assert_eq!(failed(dest) + failed("org.aztec.ProverAgent.Instance2"), 3);
}

#[test]
fn a_killed_agents_job_is_proven_by_another_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path(), &[CircuitId::BaseRollup]);
    // The broker comes up after the agent, on a port chosen now.
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let mut early = ChildDaemon::spawn(
        "early",
        {
            let mut c = command(&[
                "agent",
                "--config",
                "/dev/null",
                "--proverAgent.proverBrokerUrl",
                &url,
            ]);
            c.args([
                "--proverAgent.keysDirectory",
                keys.to_str().unwrap(),
                "--dbus",
                "none",
                "--proverAgent.proverAgentPollIntervalMs",
                "50",
            ]);
            c.args(["--proverAgent.heartbeatIntervalMs", "300"]);
            c
        },
        dir.path(),
        &dir.path().join("early.log"),
        Duration::from_secs(60),
    )
    .unwrap();
    wait_log(&early, "unreachable", Duration::from_secs(20));
    let broker = start_broker(
        dir.path(),
        &[
            "--proverBroker.proverBrokerPort",
            &port,
            "--proverBroker.proverBrokerJobTimeoutMs",
            "1500",
        ],
    );
    let c = client(&broker);
    let plan = plan(2, 21);
    let bases: Vec<Vec<u8>> = plan
        .jobs
        .iter()
        .filter(|j| j.circuit() == CircuitId::BaseRollup)
        .map(|j| encode_inputs(&j.inputs))
        .collect();
    rt().block_on(async {
        let id = enqueue(&c, 1, JobType::BaseRollup, &bases[0]).await;
        let s = wait_settled(&c, &id, Duration::from_secs(60)).await;
        assert!(
            matches!(s, ProvingJobStatus::Fulfilled { .. }),
            "the early agent proves once the broker is up: {s:?}"
        );
    });
    assert!(early.log().contains("answers again"));
    early.terminate(Duration::from_secs(30)).unwrap();

    // kill -9 mid-job: the lease expires and another agent proves it.
    let mut victim = start_agent(dir.path(), "victim", &broker, &keys, &["--dbus", "none"]);
    let id = rt().block_on(enqueue(&c, 1, JobType::BaseRollup, &bases[1]));
    wait_log(&victim, "proving", Duration::from_secs(30));
    victim.kill9().unwrap();
    assert!(
        !victim.log().contains("proved "),
        "killed before it finished"
    );
    let rescuer = start_agent(dir.path(), "rescuer", &broker, &keys, &["--dbus", "none"]);
    rt().block_on(async {
        let s = wait_settled(&c, &id, Duration::from_secs(60)).await;
        let r = result(&c, &s).await;
        let vk = keys::load_verifying_key(&keys, CircuitId::BaseRollup, &RollupParams::test())
            .unwrap()
            .1;
        assert!(
            aztec_zk::groth16::verify::verify(&vk, &r.public_inputs, &r.proof().unwrap().unwrap())
                .unwrap()
        );
    });
    assert!(rescuer.log().contains(id.short()));

    // SIGTERM while proving: the job finishes, STOPPING=1, clean exit.
    let mut rescuer = rescuer;
    let id = rt().block_on(enqueue(&c, 1, JobType::BaseRollup, &bases[2]));
    wait_log(
        &rescuer,
        &format!("job {}", id.short()),
        Duration::from_secs(30),
    );
    let status = rescuer.terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status:?}\n{}", rescuer.log_tail(30));
    assert!(
        rescuer
            .poll_notifications()
            .iter()
            .any(|n| n.contains("STOPPING=1"))
    );
    let s = rt().block_on(c.get_proving_job_status(id)).unwrap();
    assert!(
        matches!(s, ProvingJobStatus::Fulfilled { .. }),
        "drained, not dropped: {s:?}\n{}",
        rescuer.log_tail(30)
    );
}

#[test]
fn start_up_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["agent", "--config", "/dev/null", "--dbus", "none"];
        all.extend_from_slice(args);
        let out = command(&all).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--backend", "nosuch"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("libaztec_backend_nosuch.so")
            && err.contains("/usr/lib/aztec-prover/backends"),
        "{err}"
    );
    let bogus = dir.path().join("bogus.so");
    std::fs::write(&bogus, b"not a library").unwrap();
    let (code, err) = run(&["--backend", bogus.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bogus.so"), "{err}");
    let (code, err) = run(&[
        "--proverAgent.keysDirectory",
        dir.path().join("nokeys").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("keys generate"), "{err}");
    let (code, err) = run(&["--proverAgent.proverAgentCount", "0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("agent_count"), "{err}");
    let (code, err) = run(&["--proverAgent.cpuAffinity", "3-1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cpu_affinity"), "{err}");
    // A CPU the machine does not have (or the agent may not use) is a
    // configuration error naming the key, not an abort in a pool thread.
    let (code, err) = run(&["--proverAgent.cpuAffinity", "2000"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cpu_affinity") && err.contains("CPU 2000"),
        "{err}"
    );
    // A backend option the backend refuses stops the agent at load, naming it.
    let (code, err) = run(&["--backendOptions.cpuPath", "sideways"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cpu.path=\"sideways\"") && err.contains("auto, ifma, adx or portable"),
        "{err}"
    );
    // The backend options are settings: `config show agent` lists them, with
    // the variable each came from.
    let out = command(&["config", "show", "agent", "--config", "/dev/null"])
        .env("AZTEC_PROVER_WGPU_WINDOW", "15")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("wgpu_window") && shown.contains("15") && shown.contains("cpu_path"),
        "{shown}"
    );
}

fn fake_topology(root: &Path, nodes: &[&str]) {
    for (i, list) in nodes.iter().enumerate() {
        let n = root.join(format!("devices/system/node/node{i}"));
        std::fs::create_dir_all(&n).unwrap();
        std::fs::write(n.join("cpulist"), format!("{list}\n")).unwrap();
    }
}

fn threads_allowed(pid: u32, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim().starts_with(prefix) {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            if let Some(l) = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")) {
                out.push(l.split_whitespace().nth(1).unwrap_or("").to_string());
            }
        }
    }
    out
}

#[test]
fn instances_pin_to_their_numa_node_on_fake_topologies() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return cannot_run_here("it needs two CPUs to pin instances to different ones");
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path(), &[CircuitId::MergeRollup]);
    let two = dir.path().join("two");
    fake_topology(&two, &["0", "1"]);
    let four = dir.path().join("four");
    fake_topology(&four, &["0", "1", "0", "1"]);
    let broker = start_broker(dir.path(), &[]);
    let c = client(&broker);
    let plan = plan(1, 31);
    let merge = plan
        .jobs
        .iter()
        .find(|j| j.circuit() == CircuitId::MergeRollup)
        .unwrap();
    let bytes = encode_inputs(&merge.inputs);

    for (root, instance, want_node, want_cpu) in [
        (&two, "2", 1, "1"),
        (&four, "3", 2, "0"),
        (&four, "4", 3, "1"),
    ] {
        let name = format!("numa{instance}");
        let agent = start_agent(
            dir.path(),
            &name,
            &broker,
            &keys,
            &[
                "--dbus",
                "none",
                "--instance",
                instance,
                "--proverAgent.sysfsRoot",
                root.to_str().unwrap(),
            ],
        );
        assert!(
            agent
                .log()
                .contains(&format!("NUMA node {want_node}, CPUs {want_cpu} (pinned)")),
            "{}",
            agent.log_tail(20)
        );
        // Prove something so the proving and backend threads exist, then look at their affinity.
        let mut m = match &merge.inputs {
            Inputs::MergeRollup(m) => *m,
            _ => unreachable!(),
        };
        m.left.fee = Felt::from_u64(instance.parse().unwrap());
        let bytes = encode_inputs(&Inputs::MergeRollup(m));
        rt().block_on(async {
            let id = enqueue(&c, 9, JobType::MergeRollup, &bytes).await;
            assert!(matches!(
                wait_settled(&c, &id, Duration::from_secs(60)).await,
                ProvingJobStatus::Fulfilled { .. }
            ));
        });
        for prefix in ["agent-prove", "cpu-backend"] {
            let allowed = threads_allowed(agent.pid(), prefix);
            assert!(!allowed.is_empty(), "no {prefix} threads");
            assert!(
                allowed.iter().all(|a| a == want_cpu),
                "{prefix} threads allowed on {allowed:?}, want {want_cpu}"
            );
        }
    }
    let _ = bytes;
}

/// An agent that answers with a forged proof (the right public inputs, a
/// proof that does not verify): the node's orchestrator refuses it, names
/// the agent, enqueues the job again, and an honest agent proves it; the
/// epoch comes out whole and every proof verifies.
#[test]
fn a_forged_proof_is_refused_naming_its_agent_and_proven_again() {
    use aztec_prover_node::orchestrator::{Checking, Progress, prove_epoch};
    use aztec_prover_protocol::ProvingJobFilter;
    use aztec_zk::wire::{decode_inputs, encode_result};

    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path(), &CircuitId::ALL);
    let broker = start_broker(dir.path(), &[]);
    let c = client(&broker);
    let plan = plan(1, 5);
    let params = RollupParams::test();
    let vks: std::collections::HashMap<CircuitId, aztec_zk::groth16::VerifyingKey> = CircuitId::ALL
        .iter()
        .map(|&cid| {
            (
                cid,
                keys::load_verifying_key(&keys, cid, &params).unwrap().1,
            )
        })
        .collect();
    let checking = Checking::Proofs(vks.clone());
    let mut last = Progress::default();
    let mut honest = None;
    let (proven, forged) = rt().block_on(async {
        let orchestrate = prove_epoch(&c, 3, &plan, &checking, Duration::from_secs(300), |p| {
            last = p.clone();
        });
        let forger = async {
            // Take one job as "forger" and answer with a forged proof.
            let lease = loop {
                if let Some(l) = c
                    .get_proving_job(
                        Some(ProvingJobFilter { allow_list: vec![] }),
                        Some("forger".into()),
                    )
                    .await
                    .unwrap()
                {
                    break l;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let bytes = match lease.job.inputs_uri.kind().unwrap() {
                UriKind::Inline(b) => b,
                UriKind::Blob(_) => aztec_prover_protocol::uri::from_base64(
                    &c.get_proof_data(lease.job.inputs_uri.clone())
                        .await
                        .unwrap(),
                )
                .unwrap(),
                UriKind::External => panic!("external inputs"),
            };
            let inputs = decode_inputs(&bytes).unwrap();
            let circuit = inputs.circuit();
            let public_inputs = aztec_zk::synth::simulate(&params, &inputs).unwrap();
            let vk = &vks[&circuit];
            let forged = aztec_zk::groth16::Proof {
                a: vk.alpha_g1,
                b: vk.beta_g2,
                c: vk.alpha_g1,
            };
            let result = ProofResult::real(circuit, public_inputs, &forged);
            c.report_proving_job_success(
                lease.job.id.clone(),
                lease.time,
                ProofUri::inline(&encode_result(&result)),
                None,
            )
            .await
            .unwrap();
            // Now an honest agent joins.
            honest = Some(start_agent(
                dir.path(),
                "honest",
                &broker,
                &keys,
                &["--dbus", "none"],
            ));
            lease.job.id
        };
        let (proven, forged) = tokio::join!(orchestrate, forger);
        (proven, forged)
    });
    let proven = proven.unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            honest.as_ref().map(|h| h.log_tail(20)).unwrap_or_default()
        )
    });
    assert_eq!(proven.len(), plan.jobs.len());
    assert_eq!(last.refused.len(), 1, "{:?}", last.refused);
    let r = &last.refused[0];
    assert_eq!(r.job, forged);
    assert_eq!(r.agent, "forger");
    assert_eq!(r.reason, "the proof does not verify");
    // The job was proven again by the honest agent, and the broker says so.
    let status = rt()
        .block_on(c.get_proving_job_status(forged.clone()))
        .unwrap();
    let ProvingJobStatus::Fulfilled { agent, .. } = status else {
        panic!("{status:?}")
    };
    assert_ne!(agent.as_deref(), Some("forger"));
    assert!(
        proving_lines(&honest.unwrap().log()).contains(&format!("JOB_ID={forged}")),
        "the honest agent did not prove the job again"
    );
    assert!(
        broker.log().contains("result refused by the producer"),
        "{}",
        broker.log_tail(20)
    );
}

/// An agent whose proving key is from another setup (a valid file, the
/// right circuit and sizes) fails the job at once with a reason naming the
/// key file, instead of returning proofs the node refuses until the epoch
/// times out.
#[test]
fn a_proving_key_of_another_setup_fails_the_job_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let c_id = CircuitId::BaseParity;
    let keys = make_keys(dir.path(), &[c_id]);
    let other = dir.path().join("other");
    keys::generate_dir(
        &other,
        &RollupParams::test(),
        Some("another setup"),
        &[c_id],
        |_, _, _| {},
    )
    .unwrap();
    let pk = keys::key_path(&keys, c_id, keys::KeyKind::Proving);
    std::fs::copy(keys::key_path(&other, c_id, keys::KeyKind::Proving), &pk).unwrap();
    let broker = start_broker(dir.path(), &[]);
    let c = client(&broker);
    let _agent = start_agent(dir.path(), "agent", &broker, &keys, &["--dbus", "none"]);
    let plan = plan(1, 3);
    let job = plan
        .jobs
        .iter()
        .find(|j| j.circuit() == c_id)
        .expect("a base parity job");
    let status = rt().block_on(async {
        let id = enqueue(&c, 1, job_type(c_id), &encode_inputs(&job.inputs)).await;
        wait_settled(&c, &id, Duration::from_secs(120)).await
    });
    match status {
        ProvingJobStatus::Rejected { reason } => assert!(
            reason.contains(&pk.display().to_string()) && reason.contains("another setup"),
            "{reason}"
        ),
        other => panic!("expected the job to fail naming the key, got {other:?}"),
    }
}

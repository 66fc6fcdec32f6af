//! Shared helpers of the cross-daemon tests: start real daemons on loopback
//! with ephemeral ports, a private dbus-daemon, raw HTTP for malformed
//! requests. Everything is cleaned up when the values are dropped.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aztec_prover_common::child::ChildDaemon;
use jsonrpsee::http_client::HttpClient;

/// The variable that lets a test that cannot run on this machine (no root
/// to boot a container, fewer than two CPUs) be skipped. `.ci/run` does not
/// set it: there such a test fails and says why, never passes unseen.
pub const ALLOW_SKIP: &str = "AZTEC_PROVER_TEST_ALLOW_SKIP";

/// A test that cannot run here: fails with `why`, unless [`ALLOW_SKIP`] is
/// set to 1, when it says `NOT RUN` and the test returns.
pub fn cannot_run_here(why: &str) {
    if std::env::var(ALLOW_SKIP).is_ok_and(|v| v == "1") {
        eprintln!("NOT RUN ({ALLOW_SKIP}=1): {why}");
        return;
    }
    panic!("this test cannot run here: {why}; set {ALLOW_SKIP}=1 to skip it on purpose");
}

/// The `aztec-prover` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aztec-prover"))
}

/// A command for the binary with a clean environment for config (no stray
/// operator variables, no /etc file).
pub fn command(args: &[&str]) -> Command {
    command_via(&[], args)
}

/// Like [`command`], run through `wrapper` (a program and its arguments that
/// end by running the rest of the line, as `prlimit --fsize=N --` does).
pub fn command_via(wrapper: &[&str], args: &[&str]) -> Command {
    let mut c = match wrapper.split_first() {
        None => Command::new(bin()),
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin());
            c
        }
    };
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("PROVER_")
            || k.starts_with("LOG_")
            || k == "DATA_DIRECTORY"
            || k.starts_with("AZTEC_")
        {
            c.env_remove(k);
        }
    }
    c.env("LOG_TARGET", "stderr");
    // Agents started side by side in tests would share the default metrics
    // port; a test that reads an agent's metrics sets its own.
    c.env("PROVER_AGENT_METRICS_PORT", "0");
    c
}

/// Broker flags for a test: loopback, port 0, store in `data`, no D-Bus, no config file.
pub fn broker_args(data: &Path) -> Vec<String> {
    [
        "broker",
        "--config",
        "/dev/null",
        "--proverBroker.proverBrokerListenAddress",
        "127.0.0.1",
        "--proverBroker.proverBrokerPort",
        "0",
        "--dbus",
        "none",
        "--log-level",
        "debug",
        "--proverBroker.dataDirectory",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([data.display().to_string()])
    .collect()
}

/// Starts a broker with extra flags; waits for READY=1.
pub fn start_broker(dir: &Path, extra: &[&str]) -> ChildDaemon {
    start_broker_named(dir, "broker", extra)
}

/// Like [`start_broker`], with a log name (for several brokers in one test).
pub fn start_broker_named(dir: &Path, name: &str, extra: &[&str]) -> ChildDaemon {
    start_broker_on(dir, name, 0, extra)
}

/// Like [`start_broker_named`], listening on `port` (0: any free one; a
/// fixed one lets a restarted broker take its clients back).
pub fn start_broker_on(dir: &Path, name: &str, port: u16, extra: &[&str]) -> ChildDaemon {
    let mut args = broker_args(&dir.join("data"));
    if let Some(at) = args
        .iter()
        .position(|a| a == "--proverBroker.proverBrokerPort")
    {
        args[at + 1] = port.to_string();
    }
    let mut cmd = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    cmd.args(extra);
    ChildDaemon::spawn(
        name,
        cmd,
        dir,
        &dir.join(format!("{name}.log")),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A JSON-RPC client for a daemon.
pub fn client(d: &ChildDaemon) -> HttpClient {
    let addr = d.addr.expect("daemon reported no address");
    aztec_prover_common::rpc::client(&format!("http://{addr}"), Duration::from_secs(30), 64 << 20)
        .unwrap()
}

/// POSTs `body` as-is and returns (HTTP status, response body).
pub fn raw_post(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A free TCP port on loopback (released before returning; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private dbus-daemon, killed on drop.
pub struct PrivateBus {
    child: Child,
    /// Its address, for `--dbus` and `busctl --address`.
    pub address: String,
}

impl PrivateBus {
    /// Starts one.
    pub fn start() -> PrivateBus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus) is needed for D-Bus tests");
        let mut out = child.stdout.take().unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            buf.push(byte[0]);
        }
        let address = String::from_utf8(buf).unwrap().trim().to_string();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        PrivateBus { child, address }
    }

    /// Runs `busctl --address=<bus> <args>`; returns (success, stdout, stderr).
    pub fn busctl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args(args)
            .output()
            .expect("busctl (package systemd) is needed for D-Bus tests");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose parent is `pid`, with their command lines (arguments
/// joined by spaces).
pub fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        // The command name is in parentheses and may hold spaces: the
        // parent's pid is the second field after it.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            let cmd = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            out.push((child, cmd.trim().to_string()));
        }
    }
    out
}

/// Reads a child's pipe line by line into a shared string, in a thread.
pub fn collect(pipe: impl Read + Send + 'static) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A TCP proxy on an ephemeral loopback port to `target`, which can be
/// stopped: stopping closes the port and cuts every connection through it,
/// as an L1 node that goes away would. Stopped on drop.
pub struct TcpProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl TcpProxy {
    /// Starts forwarding to `target`.
    pub fn start(target: SocketAddr) -> TcpProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
        let (s, o) = (stop.clone(), open.clone());
        let accept = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => continue,
                };
                let _ = client.set_nonblocking(false);
                let Ok(upstream) = TcpStream::connect(target) else {
                    continue;
                };
                let mut open = o.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(upstream.try_clone().unwrap());
                drop(open);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
            // The listener is dropped here: the port refuses connections.
        });
        TcpProxy {
            addr,
            stop,
            open,
            accept: Some(accept),
        }
    }

    /// Closes the port and cuts every connection through it.
    pub fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `aztec-prover node` proving with simulated proofs for `key` on the
/// devnet through the broker at `broker_url`, keeping its state in `data`.
pub fn node_command(
    devnet: &aztec_prover_devnet::Devnet,
    key: &alloy::signers::local::PrivateKeySigner,
    broker_url: &str,
    sizes: &std::path::Path,
    data: &std::path::Path,
) -> std::process::Command {
    let mut c = command(&["node", "--config", "/dev/null", "--dbus", "none"]);
    c.env("ETHEREUM_HOSTS", devnet.l1_url())
        .env(
            "PROVER_PUBLISHER_PRIVATE_KEY",
            format!("0x{}", alloy::hex::encode(key.to_bytes())),
        )
        .env(
            "ROLLUP_CONTRACT_ADDRESS",
            format!("{}", devnet.deployment.rollup),
        )
        .env("PROVER_COORDINATION_NODE_URL", &devnet.node_url)
        .env("PROVER_BROKER_HOST", broker_url)
        .env("PROVER_REAL_PROOFS", "false")
        .env("PROVER_KEYS_DIRECTORY", sizes)
        .env("DATA_DIRECTORY", data)
        .env("QUOTE_PROVIDER_BASIS_POINT_FEE", "100")
        .env("QUOTE_PROVIDER_BOND_AMOUNT", "50")
        .env("PROVER_NODE_POLLING_INTERVAL_MS", "300");
    c
}

/// An agent simulating proofs for the broker at `broker_url`.
pub fn agent_command(broker_url: &str, sizes: &std::path::Path) -> std::process::Command {
    let mut c = command(&["agent", "--config", "/dev/null", "--dbus", "none"]);
    c.env("PROVER_BROKER_HOST", broker_url)
        .env("PROVER_AGENT_CPU_AFFINITY", "off")
        .env("PROVER_AGENT_POLL_INTERVAL_MS", "100")
        .env("PROVER_REAL_PROOFS", "false")
        .env("PROVER_KEYS_DIRECTORY", sizes);
    c
}

/// Starts a daemon logging to `<dir>/<name>.log`; waits for READY=1.
pub fn spawn_in(
    dir: &std::path::Path,
    name: &str,
    c: std::process::Command,
) -> aztec_prover_common::child::ChildDaemon {
    aztec_prover_common::child::ChildDaemon::spawn(
        name,
        c,
        dir,
        &dir.join(format!("{name}.log")),
        Duration::from_secs(60),
    )
    .unwrap()
}

/// Polls L1 for a minute at most until its proven block is past `above`
/// (an L1 that does not answer counts as not yet); returns it.
pub async fn proven_past(l1: &aztec_prover_l1::L1, above: u64) -> u64 {
    let mut proven = above;
    for _ in 0..300 {
        proven = l1.tips().await.map_or(above, |t| t.1);
        if proven > above {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    proven
}

//! Running a daemon as a child process the way systemd would: with a private
//! `NOTIFY_SOCKET`, waiting for `READY=1`, reading `STATUS=` lines, and
//! stopping it with SIGTERM (drain) or SIGKILL (crash).
//!
//! Used by the one-command devnet, the benchmarks and the integration tests.
//! A daemon reports the address it listens on with `X_LISTEN_ADDRESS=` next
//! to `READY=1`, so children can bind port 0.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A child daemon that did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// It could not be started.
    #[error("cannot start {name}: {error}")]
    Spawn {
        /// Which daemon.
        name: String,
        /// Why.
        error: std::io::Error,
    },
    /// It exited before saying READY=1.
    #[error("{name} exited with {status} before it was ready; last log lines:\n{log_tail}")]
    Exited {
        /// Which daemon.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log.
        log_tail: String,
    },
    /// It did not say READY=1 in time.
    #[error("{name} was not ready after {seconds} s; last log lines:\n{log_tail}")]
    Timeout {
        /// Which daemon.
        name: String,
        /// How long we waited.
        seconds: u64,
        /// The end of its log.
        log_tail: String,
    },
    /// The notification socket could not be made.
    #[error("notify socket: {0}")]
    Notify(std::io::Error),
}

/// A running child daemon.
pub struct ChildDaemon {
    name: String,
    child: Child,
    notify: UnixDatagram,
    log_path: PathBuf,
    /// Every notification received so far, one `KEY=value` per entry.
    pub notifications: Vec<String>,
    /// The address it listens on, if it said.
    pub addr: Option<SocketAddr>,
}

impl ChildDaemon {
    /// Starts `cmd`, logging its stdout and stderr to `log_path`, and waits up
    /// to `ready_timeout` for `READY=1`. `runtime_dir` holds the notify socket.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        runtime_dir: &Path,
        log_path: &Path,
        ready_timeout: Duration,
    ) -> Result<ChildDaemon, ChildError> {
        let sock_path = runtime_dir.join(format!("{name}.notify"));
        let _ = std::fs::remove_file(&sock_path);
        let notify = UnixDatagram::bind(&sock_path).map_err(ChildError::Notify)?;
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(ChildError::Notify)?;
        let log = std::fs::File::create(log_path).map_err(|error| ChildError::Spawn {
            name: name.into(),
            error,
        })?;
        let log2 = log.try_clone().map_err(|error| ChildError::Spawn {
            name: name.into(),
            error,
        })?;
        cmd.env("NOTIFY_SOCKET", &sock_path)
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd.spawn().map_err(|error| ChildError::Spawn {
            name: name.into(),
            error,
        })?;
        let mut d = ChildDaemon {
            name: name.to_string(),
            child,
            notify,
            log_path: log_path.to_path_buf(),
            notifications: Vec::new(),
            addr: None,
        };
        d.wait_for("READY=1", ready_timeout)?;
        Ok(d)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads notifications until one equals `line`, the child exits, or time runs out.
    pub fn wait_for(&mut self, line: &str, timeout: Duration) -> Result<(), ChildError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.poll_notifications().iter().any(|l| l == line) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.poll_notifications();
                if self.notifications.iter().any(|l| l == line) {
                    return Ok(());
                }
                return Err(ChildError::Exited {
                    name: self.name.clone(),
                    status,
                    log_tail: self.log_tail(20),
                });
            }
            if Instant::now() >= deadline {
                return Err(ChildError::Timeout {
                    name: self.name.clone(),
                    seconds: timeout.as_secs(),
                    log_tail: self.log_tail(20),
                });
            }
        }
    }

    /// Reads any pending notifications (waiting up to 100 ms for the first);
    /// returns the new lines.
    pub fn poll_notifications(&mut self) -> Vec<String> {
        let mut buf = vec![0u8; 8192];
        let mut fresh = Vec::new();
        while let Ok(n) = self.notify.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                if let Some(a) = line.strip_prefix("X_LISTEN_ADDRESS=") {
                    self.addr = a.parse().ok();
                }
                fresh.push(line.to_string());
            }
            let _ = self.notify.set_read_timeout(Some(Duration::from_millis(1)));
        }
        let _ = self
            .notify
            .set_read_timeout(Some(Duration::from_millis(100)));
        self.notifications.extend(fresh.iter().cloned());
        fresh
    }

    /// The last `STATUS=` line received.
    pub fn last_status(&mut self) -> Option<String> {
        self.poll_notifications();
        self.notifications
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("STATUS=").map(str::to_string))
    }

    /// The last `n` lines of the child's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        kill(Pid::from_raw(self.child.id() as i32), sig)
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit (SIGKILL after that).
    pub fn terminate(&mut self, timeout: Duration) -> std::io::Result<ExitStatus> {
        let _ = self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return self.child.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would, and reaps the child.
    pub fn kill9(&mut self) -> std::io::Result<ExitStatus> {
        self.child.kill()?;
        self.child.wait()
    }

    /// Whether it has exited (without waiting).
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Peak resident memory (`VmHWM`) in bytes, from /proc.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        proc_status_kb(self.child.id(), "VmHWM:").map(|kb| kb * 1024)
    }

    /// Current resident memory (`VmRSS`) in bytes, from /proc.
    pub fn rss_bytes(&self) -> Option<u64> {
        proc_status_kb(self.child.id(), "VmRSS:").map(|kb| kb * 1024)
    }

    /// Current resident memory split into anonymous (heap, stacks) and
    /// file-backed (mapped files such as an LMDB store, reclaimable) bytes.
    pub fn rss_split_bytes(&self) -> Option<(u64, u64)> {
        let anon = proc_status_kb(self.child.id(), "RssAnon:")?;
        let file = proc_status_kb(self.child.id(), "RssFile:")?;
        Some((anon * 1024, file * 1024))
    }

    /// CPU time used so far (user, system) in seconds, from /proc.
    pub fn cpu_seconds(&self) -> Option<(f64, f64)> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let tick = 100.0; // USER_HZ on Linux
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime / tick, stime / tick))
    }
}

impl Drop for ChildDaemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `kB` field of `/proc/<pid>/status`.
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

//! The daemon's side of systemd: readiness and status (`sd_notify`), the
//! watchdog, listening sockets passed by a `.socket` unit, and the signals
//! that stop (SIGTERM, SIGINT) or reload (SIGHUP) a daemon.
//!
//! Everything here is a no-op outside systemd, so daemons run the same way
//! from a terminal.

use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Sends to `$NOTIFY_SOCKET` without ever blocking: a manager that does
/// not read its socket (a full queue) costs a dropped status line, never a
/// stalled daemon (a blocked status update would starve heartbeats).
fn send(states: &[NotifyState<'_>]) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let msg = states
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let sent = (|| -> std::io::Result<usize> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::net::UnixDatagram;
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        let bytes = path.as_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(msg.as_bytes(), &addr)
            }
            None => sock.send_to(msg.as_bytes(), &path),
        }
    })();
    if let Err(e) = sent {
        tracing::debug!("sd_notify failed: {e}");
    }
}

/// Tells systemd the daemon is ready to serve (`READY=1`).
pub fn notify_ready() {
    send(&[NotifyState::Ready]);
}

/// `READY=1` plus `X_LISTEN_ADDRESS=<addr>`, so a supervisor that started the
/// daemon on port 0 learns the port (systemd ignores `X_` fields).
pub fn notify_ready_listening(addr: std::net::SocketAddr) {
    let field = format!("X_LISTEN_ADDRESS={addr}");
    send(&[NotifyState::Ready, NotifyState::Custom(&field)]);
}

/// Sets the one-line status `systemctl status` shows (`STATUS=`).
pub fn notify_status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Tells systemd the daemon is draining and about to exit (`STOPPING=1`).
pub fn notify_stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// Tells systemd a reload started (`RELOADING=1` with the monotonic time).
pub fn notify_reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Where a listening socket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenOrigin {
    /// Passed by systemd socket activation (`LISTEN_FDS`).
    SocketActivation,
    /// Bound by the daemon itself.
    Bound,
}

/// The daemon's TCP listener: the first socket passed by systemd if there is
/// one, otherwise a fresh one bound to `host:port`. Non-blocking, ready for tokio.
pub fn tcp_listener(host: IpAddr, port: u16) -> std::io::Result<(TcpListener, ListenOrigin)> {
    let (listener, origin) = match passed_tcp_listener()? {
        Some(l) => (l, ListenOrigin::SocketActivation),
        None => (
            TcpListener::bind(SocketAddr::new(host, port))?,
            ListenOrigin::Bound,
        ),
    };
    listener.set_nonblocking(true)?;
    Ok((listener, origin))
}

/// The first TCP socket systemd passed (`LISTEN_FDS`), if any; non-blocking.
pub fn passed_tcp_listener() -> std::io::Result<Option<TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let l = fds.take_tcp_listener(0)?;
    if let Some(l) = &l {
        l.set_nonblocking(true)?;
    }
    Ok(l)
}

/// Pings the systemd watchdog at half its interval for as long as `healthy`
/// answers true; a daemon whose core stops answering is restarted by systemd.
/// Does nothing when no watchdog is configured.
pub fn spawn_watchdog<F, Fut>(healthy: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(Duration::from_millis(100));
    tracing::debug!("systemd watchdog every {} ms", period.as_millis());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            if healthy().await {
                send(&[NotifyState::Watchdog]);
            } else {
                tracing::warn!("health check failed; withholding the watchdog ping");
            }
        }
    });
}

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: drain and exit.
    Stop,
    /// SIGHUP: reload what can be reloaded.
    Reload,
}

/// The stop and reload signals of the process.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers. Call early, before the daemon can be signalled.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next request.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop,
            _ = self.int.recv() => Request::Stop,
            _ = self.hup.recv() => Request::Reload,
        }
    }
}

//! Accepting connections for the JSON-RPC servers: how many each peer
//! address may hold open, how many in all, and how long a connection may sit
//! on an answer its client does not read.
//!
//! jsonrpsee's own accept loop counts connections only in total, so a few
//! addresses opening thousands of slow connections lock everyone else out
//! (HTTP 429). Here each address gets at most its share; past it, or past
//! the total, a connection is answered with HTTP 429 at once and closed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a write may make no progress (a client that stopped reading its
/// answer) before the connection is closed.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(30);

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections in all.
    pub total: usize,
    /// Open connections from one IP address.
    pub per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total: 4096,
            per_peer: 256,
        }
    }
}

/// The connections open now, per peer address.
#[derive(Debug)]
pub struct PeerTable {
    limits: Limits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted {
    table: Arc<PeerTable>,
    peer: IpAddr,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address holds its share already.
    PeerFull,
    /// The server holds as many as it takes.
    ServerFull,
}

impl PeerTable {
    /// An empty table with these limits.
    pub fn new(limits: Limits) -> Arc<PeerTable> {
        Arc::new(PeerTable {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Admits a connection from `peer`, or says why not.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_peer) = &mut *open;
        let mine = per_peer.entry(peer).or_insert(0);
        if *mine >= self.limits.per_peer {
            return Err(Refusal::PeerFull);
        }
        if *total >= self.limits.total {
            if *mine == 0 {
                per_peer.remove(&peer);
            }
            return Err(Refusal::ServerFull);
        }
        *mine += 1;
        *total += 1;
        Ok(Admitted {
            table: self.clone(),
            peer,
        })
    }

    /// Connections open now (in all, from `peer`).
    pub fn open(&self, peer: IpAddr) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (open.0, open.1.get(&peer).copied().unwrap_or(0))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_peer) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_peer.remove(&self.peer);
            }
        }
    }
}

/// Answers a refused connection with HTTP 429 and closes it (best effort,
/// within a second).
pub async fn refuse(mut socket: tokio::net::TcpStream, why: Refusal) {
    let message = match why {
        Refusal::PeerFull => "too many connections from your address",
        Refusal::ServerFull => "too many connections",
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32009, "message": message },
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        socket.write_all(answer.as_bytes()).await?;
        socket.shutdown().await
    })
    .await;
}

/// A stream whose writes fail once they have made no progress for
/// `limit`: a client that stops reading cannot hold its connection (and the
/// answer buffered for it) for ever.
#[derive(Debug)]
pub struct StallLimit<S> {
    inner: S,
    limit: Duration,
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl<S> StallLimit<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limit: Duration) -> StallLimit<S> {
        StallLimit {
            inner,
            limit,
            stalled_since: None,
        }
    }

    /// After a write returned Pending: fails once the stall is over the limit.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {} s", limit.as_secs()),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, r: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(v) => {
                self.stalled_since = None;
                Poll::Ready(v)
            }
            Poll::Pending => match self.check_stall(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallLimit<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallLimit<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_gets_its_share_and_places_come_back() {
        let t = PeerTable::new(Limits {
            total: 3,
            per_peer: 2,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([0; 4]));
        let a1 = t.admit(a).ok();
        let a2 = t.admit(a).ok();
        assert!(a1.is_some() && a2.is_some());
        assert_eq!(t.admit(a).err(), Some(Refusal::PeerFull));
        let b1 = t.admit(b).ok();
        assert!(b1.is_some());
        assert_eq!(t.admit(b).err(), Some(Refusal::ServerFull));
        assert_eq!(t.open(a), (3, 2));
        drop(a1);
        assert_eq!(t.open(a), (2, 1));
        assert!(t.admit(b).is_ok());
        drop((a2, b1));
        assert_eq!(t.open(a), (0, 0));
    }

    /// A reader that stops reading makes the writer fail after the limit;
    /// one that reads keeps it going.
    #[tokio::test]
    async fn a_write_that_makes_no_progress_fails_after_the_limit() {
        use tokio::io::AsyncReadExt;
        let (near, mut far) = tokio::io::duplex(1024);
        let mut w = StallLimit::new(near, Duration::from_millis(200));
        let chunk = [7u8; 4096];
        // Someone reads for a while: writes go through however long it takes.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut got = 0;
            while got < 64 * 1024 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                got += far.read(&mut buf).await.unwrap_or(0);
            }
            far
        });
        for _ in 0..16 {
            w.write_all(&chunk)
                .await
                .expect("a reader keeps the writer going");
        }
        let _far = reader.await.ok();
        // Nobody reads now: the write fails after the limit.
        let started = Instant::now();
        let e = w.write_all(&[1u8; 8192]).await.err();
        assert_eq!(e.map(|e| e.kind()), Some(io::ErrorKind::TimedOut));
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}

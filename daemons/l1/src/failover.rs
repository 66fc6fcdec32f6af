//! Every L1 endpoint the operator listed (`ETHEREUM_HOSTS`), used as one:
//! a request goes to the first endpoint in the list that is not being
//! skipped; one that fails for a transport reason (refused, reset, timed out,
//! an HTTP error status, an answer that is not JSON-RPC) is sent again to the
//! next. An endpoint that failed is skipped for a while (2 s, doubling with
//! each failure in a row, at most 60 s) and then tried again, so the first
//! listed endpoint is used again once it is back. When every endpoint is
//! being skipped, all are tried anyway: something has to answer.
//!
//! This is an alloy transport, below the provider: reads, gas estimates,
//! transaction sends and receipt polls all fail over alike, and a receipt is
//! read on whichever endpoint answers. JSON-RPC errors (a revert, a nonce
//! too low) are answers, not failures: they are passed on as they are.
//! One exception: a raw transaction sent again after a failure that the next
//! endpoint already knows (the first one passed it on before the failure)
//! is answered with its hash, so the sender waits for its receipt instead of
//! sending it a third time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use alloy::primitives::{Bytes, keccak256};
use alloy::rpc::json_rpc::{RequestPacket, Response, ResponsePacket, ResponsePayload};
use alloy::transports::http::{Http, reqwest};
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};
use serde::Serialize;

/// How long an endpoint is skipped after its first failure in a row.
pub const FIRST_SKIP: Duration = Duration::from_secs(2);
/// The longest it is skipped.
pub const LONGEST_SKIP: Duration = Duration::from_secs(60);

/// An endpoint's state, as the node's API and D-Bus object show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointHealth {
    /// It answered the last request.
    InUse,
    /// Not failing, not in use (a later one in the list, or none asked yet).
    Standby,
    /// Its last request failed; skipped until its retry time.
    Failing,
}

impl EndpointHealth {
    /// The name shown (`in-use`, `standby`, `failing`).
    pub fn name(self) -> &'static str {
        match self {
            EndpointHealth::InUse => "in-use",
            EndpointHealth::Standby => "standby",
            EndpointHealth::Failing => "failing",
        }
    }
}

/// One endpoint as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointState {
    /// Its URL without credentials or path (those often hold an API key).
    pub url: String,
    /// Its state.
    pub state: EndpointHealth,
    /// Requests it answered.
    pub answered: u64,
    /// Requests that failed on it.
    pub failed: u64,
    /// Why its last failed request failed (kept after it recovers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Seconds until it is tried again (failing endpoints only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_s: Option<u64>,
}

/// The URL as it may be logged: scheme, host and port; a path, query or
/// credentials are replaced by `…` (providers put API keys there).
pub fn shown_url(url: &reqwest::Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?"));
    if let Some(p) = url.port() {
        s.push_str(&format!(":{p}"));
    }
    let hidden = (url.path() != "/" && !url.path().is_empty())
        || url.query().is_some()
        || !url.username().is_empty()
        || url.password().is_some();
    if hidden {
        s.push_str("/…");
    }
    s
}

#[derive(Debug)]
struct Health {
    shown: String,
    answered: u64,
    failed: u64,
    in_a_row: u32,
    skip_until: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Table {
    endpoints: Vec<Health>,
    in_use: Option<usize>,
}

/// The endpoints' health, shared by the transport and whoever shows it.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Endpoints {
    table: Arc<Mutex<Table>>,
}

impl Endpoints {
    fn new(shown: Vec<String>) -> Endpoints {
        let endpoints = shown
            .into_iter()
            .map(|shown| Health {
                shown,
                answered: 0,
                failed: 0,
                in_a_row: 0,
                skip_until: None,
                last_error: None,
            })
            .collect();
        Endpoints {
            table: Arc::new(Mutex::new(Table {
                endpoints,
                in_use: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Each endpoint's state, in the listed order.
    pub fn states(&self) -> Vec<EndpointState> {
        let now = Instant::now();
        let t = self.lock();
        t.endpoints
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let state = if h.in_a_row > 0 {
                    EndpointHealth::Failing
                } else if t.in_use == Some(i) {
                    EndpointHealth::InUse
                } else {
                    EndpointHealth::Standby
                };
                EndpointState {
                    url: h.shown.clone(),
                    state,
                    answered: h.answered,
                    failed: h.failed,
                    last_error: h.last_error.clone(),
                    retry_in_s: (h.in_a_row > 0).then(|| {
                        h.skip_until
                            .map_or(0, |u| u.saturating_duration_since(now).as_secs())
                    }),
                }
            })
            .collect()
    }

    /// The order to try the endpoints in now: those not skipped, as listed,
    /// then the skipped ones, soonest due first.
    fn order(&self, now: Instant) -> Vec<usize> {
        let t = self.lock();
        let due = |h: &Health| h.skip_until.is_none_or(|u| u <= now);
        let mut order: Vec<usize> = (0..t.endpoints.len())
            .filter(|&i| due(&t.endpoints[i]))
            .collect();
        let mut skipped: Vec<usize> = (0..t.endpoints.len())
            .filter(|&i| !due(&t.endpoints[i]))
            .collect();
        skipped.sort_by_key(|&i| t.endpoints[i].skip_until);
        order.extend(skipped);
        order
    }

    fn failed(&self, i: usize, error: &str, now: Instant) {
        let mut t = self.lock();
        let h = &mut t.endpoints[i];
        h.failed += 1;
        h.in_a_row = h.in_a_row.saturating_add(1);
        let skip = FIRST_SKIP
            .saturating_mul(1 << (h.in_a_row - 1).min(16))
            .min(LONGEST_SKIP);
        h.skip_until = Some(now + skip);
        h.last_error = Some(error.to_string());
        if h.in_a_row == 1 {
            tracing::warn!(
                "L1 endpoint {} failed: {error}; skipping it for {} s",
                h.shown,
                skip.as_secs()
            );
        } else {
            tracing::debug!(
                "L1 endpoint {} failed again ({} in a row): {error}; skipping it for {} s",
                h.shown,
                h.in_a_row,
                skip.as_secs()
            );
        }
    }

    fn answered(&self, i: usize) {
        let mut t = self.lock();
        let previous = t.in_use.replace(i);
        let h = &mut t.endpoints[i];
        h.answered += 1;
        let recovered = std::mem::take(&mut h.in_a_row) > 0;
        h.skip_until = None;
        let shown = h.shown.clone();
        if recovered {
            tracing::info!("L1 endpoint {shown} answers again");
        }
        match previous {
            Some(p) if p != i => {
                let from = &t.endpoints[p];
                let why = if from.in_a_row > 0 {
                    format!(
                        " ({} failed: {})",
                        from.shown,
                        from.last_error.as_deref().unwrap_or("?")
                    )
                } else {
                    String::new()
                };
                tracing::warn!("L1: moved from {} to {shown}{why}", from.shown);
            }
            None if t.endpoints.len() > 1 => {
                tracing::info!("L1: using {shown}");
            }
            _ => {}
        }
    }
}

/// The transport: every listed endpoint over HTTP, tried in turn.
#[derive(Debug, Clone)]
pub struct Failover {
    endpoints: Arc<[Http<reqwest::Client>]>,
    health: Endpoints,
}

impl Failover {
    /// A transport over `urls` (at least one), each request limited to
    /// `timeout` on each endpoint.
    pub fn new(urls: &[reqwest::Url], timeout: Duration) -> Result<Failover, String> {
        if urls.is_empty() {
            return Err("no L1 endpoint given".into());
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Failover {
            endpoints: urls
                .iter()
                .map(|u| Http::with_client(client.clone(), u.clone()))
                .collect(),
            health: Endpoints::new(urls.iter().map(shown_url).collect()),
        })
    }

    /// The endpoints' health (shared with the transport).
    pub fn endpoints(&self) -> Endpoints {
        self.health.clone()
    }

    async fn send(self, req: RequestPacket) -> Result<ResponsePacket, TransportError> {
        let mut errors = Vec::new();
        for i in self.health.order(Instant::now()) {
            let mut endpoint = self.endpoints[i].clone();
            match tower::Service::call(&mut endpoint, req.clone()).await {
                Ok(answer) => {
                    self.health.answered(i);
                    return Ok(if errors.is_empty() {
                        answer
                    } else {
                        known_after_retry(&req, answer)
                    });
                }
                Err(e) => {
                    let text = one_line(&e);
                    self.health.failed(i, &text, Instant::now());
                    errors.push(format!("{}: {text}", self.health.lock().endpoints[i].shown));
                }
            }
        }
        Err(if errors.len() == 1 {
            TransportErrorKind::custom_str(&errors.remove(0))
        } else {
            TransportErrorKind::custom_str(&format!(
                "every L1 endpoint failed: {}",
                errors.join("; ")
            ))
        })
    }
}

impl tower::Service<RequestPacket> for Failover {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        Box::pin(self.clone().send(req))
    }
}

/// A transport error on one line with its causes (reqwest keeps the reason,
/// such as "connection refused", in its sources).
fn one_line(e: &TransportError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

/// What nodes answer for a transaction they already hold.
fn already_known(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "already known",
        "already imported",
        "known transaction",
        "alreadyknown",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// A raw transaction sent again after a failure: if this endpoint already
/// holds it, the answer is its hash, as for a first send.
fn known_after_retry(req: &RequestPacket, answer: ResponsePacket) -> ResponsePacket {
    let (RequestPacket::Single(r), ResponsePacket::Single(a)) = (req, &answer) else {
        return answer;
    };
    let ResponsePayload::Failure(e) = &a.payload else {
        return answer;
    };
    if r.method() != "eth_sendRawTransaction" || !already_known(&e.message) {
        return answer;
    }
    let Some(raw) = r
        .params()
        .and_then(|p| serde_json::from_str::<(Bytes,)>(p.get()).ok())
    else {
        return answer;
    };
    let hash = keccak256(&raw.0);
    let Ok(result) = serde_json::value::to_raw_value(&hash) else {
        return answer;
    };
    tracing::info!("L1: the next endpoint already holds tx {hash}; waiting for its receipt");
    ResponsePacket::Single(Response {
        id: a.id.clone(),
        payload: ResponsePayload::Success(result),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        s.parse().unwrap()
    }

    #[test]
    fn urls_are_shown_without_what_may_be_a_key() {
        assert_eq!(
            shown_url(&url("http://127.0.0.1:8545")),
            "http://127.0.0.1:8545"
        );
        assert_eq!(
            shown_url(&url("https://eth.example.com/v2/SECRETKEY")),
            "https://eth.example.com/…"
        );
        assert_eq!(
            shown_url(&url("https://user:pw@eth.example.com/")),
            "https://eth.example.com/…"
        );
        assert_eq!(
            shown_url(&url("https://eth.example.com/?key=SECRET")),
            "https://eth.example.com/…"
        );
    }

    #[test]
    fn a_failing_endpoint_is_skipped_for_longer_each_time_then_tried_again() {
        let e = Endpoints::new(vec!["a".into(), "b".into(), "c".into()]);
        let t0 = Instant::now();
        assert_eq!(e.order(t0), vec![0, 1, 2]);
        e.failed(0, "refused", t0);
        assert_eq!(e.order(t0), vec![1, 2, 0]);
        e.answered(1);
        let s = e.states();
        assert_eq!(s[0].state, EndpointHealth::Failing);
        assert_eq!(s[0].last_error.as_deref(), Some("refused"));
        assert_eq!(s[1].state, EndpointHealth::InUse);
        assert_eq!(s[2].state, EndpointHealth::Standby);
        // Due again after the first skip; skipped twice as long after a
        // second failure.
        assert_eq!(e.order(t0 + FIRST_SKIP), vec![0, 1, 2]);
        e.failed(0, "refused", t0 + FIRST_SKIP);
        assert_eq!(e.order(t0 + FIRST_SKIP * 2), vec![1, 2, 0]);
        assert_eq!(e.order(t0 + FIRST_SKIP * 3), vec![0, 1, 2]);
        // The skip stops growing.
        for _ in 0..40 {
            e.failed(0, "refused", t0);
        }
        assert_eq!(e.order(t0 + LONGEST_SKIP), vec![0, 1, 2]);
        // Everything skipped: soonest due first.
        e.failed(2, "timeout", t0);
        e.failed(1, "timeout", t0 + Duration::from_secs(1));
        assert_eq!(e.order(t0), vec![2, 1, 0]);
        // An answer clears the failure and the first endpoint is used again.
        e.answered(0);
        let s = e.states();
        assert_eq!(s[0].state, EndpointHealth::InUse);
        assert_eq!(s[0].failed, 42);
        assert_eq!(s[0].retry_in_s, None);
        assert_eq!(e.order(t0), vec![0, 2, 1]);
        let json = serde_json::to_value(&s[1]).unwrap();
        assert_eq!(json["state"], "failing");
        assert_eq!(json["lastError"], "timeout");
    }

    fn single(method: &str, params: serde_json::Value) -> RequestPacket {
        let req = alloy::rpc::json_rpc::Request::new(
            method.to_string(),
            alloy::rpc::json_rpc::Id::Number(7),
            params,
        );
        RequestPacket::Single(req.serialize().unwrap())
    }

    fn failure(message: &str) -> ResponsePacket {
        ResponsePacket::Single(Response {
            id: alloy::rpc::json_rpc::Id::Number(7),
            payload: ResponsePayload::Failure(alloy::rpc::json_rpc::ErrorPayload {
                code: -32000,
                message: message.to_string().into(),
                data: None,
            }),
        })
    }

    #[test]
    fn a_transaction_the_next_endpoint_already_holds_is_answered_with_its_hash() {
        let raw = Bytes::from(vec![0x02, 0xf8, 0x01, 0x02]);
        let req = single("eth_sendRawTransaction", serde_json::json!([raw]));
        let ResponsePacket::Single(r) = known_after_retry(&req, failure("already known")) else {
            panic!("not single")
        };
        let ResponsePayload::Success(v) = r.payload else {
            panic!("not turned into a success")
        };
        assert_eq!(
            serde_json::from_str::<alloy::primitives::B256>(v.get()).unwrap(),
            keccak256(&raw)
        );
        // Other errors, and other methods, are passed on.
        for (method, message) in [
            ("eth_sendRawTransaction", "nonce too low"),
            ("eth_call", "already known"),
        ] {
            let req = single(method, serde_json::json!([raw]));
            let ResponsePacket::Single(r) = known_after_retry(&req, failure(message)) else {
                panic!("not single")
            };
            assert!(matches!(r.payload, ResponsePayload::Failure(_)));
        }
    }

    /// A transport over a port nothing listens on, then a real HTTP server
    /// that answers; the first is skipped on the next request.
    #[tokio::test]
    async fn a_refused_request_is_sent_to_the_next_endpoint() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = format!("http://{}", server.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let Ok((mut s, _)) = server.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let body = r#"{"jsonrpc":"2.0","id":0,"result":"0x1"}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        let t = Failover::new(&[url(&dead), url(&live)], Duration::from_secs(5)).unwrap();
        let health = t.endpoints();
        let client = alloy::rpc::client::RpcClient::new(t, true);
        for _ in 0..3 {
            let n: alloy::primitives::U64 = client.request_noparams("eth_chainId").await.unwrap();
            assert_eq!(n.to::<u64>(), 1);
        }
        let s = health.states();
        assert_eq!(s[0].state, EndpointHealth::Failing);
        assert_eq!(s[0].failed, 1, "skipped after its failure: {s:?}");
        assert!(
            s[0].last_error.as_deref().unwrap().contains("refused"),
            "{s:?}"
        );
        assert_eq!((s[1].state, s[1].answered), (EndpointHealth::InUse, 3));
        // Both down: one error naming both.
        let t = Failover::new(&[url(&dead), url(&dead)], Duration::from_secs(5)).unwrap();
        let client = alloy::rpc::client::RpcClient::new(t, true);
        let e = client
            .request_noparams::<alloy::primitives::U64>("eth_chainId")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("every L1 endpoint failed"), "{e}");
    }
}

//! The front door of every daemon's JSON-RPC server, before jsonrpsee sees
//! a request:
//!
//! - with a bearer token configured, a request without
//!   `Authorization: Bearer <token>` gets HTTP 401 (the token is compared in
//!   constant time); `GET /` and `GET /health` stay open;
//! - a body is read whole, at most `max_body` bytes (HTTP 413 with the
//!   JSON-RPC error -32005 past it, whether the client sent a length or
//!   chunks) and within a deadline that grows with the body (HTTP 408 past
//!   it), so a client trickling a large body cannot hold a connection for
//!   long;
//! - every request id must be one JSON-RPC allows and the server can echo:
//!   a string, null or a whole number from 0 to 2^64-1 (jsonrpsee answers
//!   others, such as an object or `1e400`, with a bare `null`); others get
//!   -32600;
//! - a method whose answer can be large (a proof) reserves memory for it in
//!   an [`AnswerBudget`] and leaves the reservation in the request's
//!   [`AnswerSlot`]; the door keeps it until the answer has been handed to
//!   the connection, 1 MiB at a time, so answers being produced or sent
//!   never take more than the budget.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::BodyExt;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

/// JSON-RPC error code of a request over the body limit.
pub const TOO_LARGE: i32 = -32005;
/// JSON-RPC error code of a request without the right token.
pub const UNAUTHORIZED: i32 = -32010;
/// JSON-RPC error code of a body not sent in time.
pub const TOO_SLOW: i32 = -32011;

/// JSON-RPC error code of a request that is not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;

/// Time every body has, on top of [`FrontDoor::per_mib`] per MiB it declares.
const BASE_DEADLINE: Duration = Duration::from_secs(30);

/// Memory for large answers being produced or sent, shared by the methods
/// that make them.
#[derive(Debug, Clone)]
pub struct AnswerBudget {
    kib: Arc<tokio::sync::Semaphore>,
    total_kib: u32,
}

/// How long a request waits for room in the budget before it is refused.
pub const ANSWER_WAIT: Duration = Duration::from_secs(60);

impl AnswerBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> AnswerBudget {
        let total_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        AnswerBudget {
            kib: Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Waits, at most `wait`, for room for an answer that takes `bytes` of
    /// memory (one larger than the whole budget waits for all of it).
    pub async fn reserve(&self, bytes: usize, wait: Duration) -> Option<AnswerReservation> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        let permit = tokio::time::timeout(wait, self.kib.clone().acquire_many_owned(kib))
            .await
            .ok()?
            .ok()?;
        Some(AnswerReservation { _permit: permit })
    }

    /// Room left now, in bytes.
    pub fn available(&self) -> usize {
        self.kib.available_permits() * 1024
    }
}

/// Memory reserved in an [`AnswerBudget`]; given back when dropped.
#[derive(Debug)]
pub struct AnswerReservation {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Where a method leaves its [`AnswerReservation`] (found in the request's
/// extensions) for the door to hold until the answer is sent.
#[derive(Debug, Clone, Default)]
pub struct AnswerSlot(Arc<std::sync::Mutex<Vec<AnswerReservation>>>);

impl AnswerSlot {
    /// Keeps `r` until this request's answer is sent (with those of the
    /// other calls of a batch).
    pub fn hold(&self, r: AnswerReservation) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }

    fn take(&self) -> Vec<AnswerReservation> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// An answer handed out 1 MiB at a time, keeping its reservation until the
/// last piece is taken.
struct HeldAnswer {
    rest: Bytes,
    trailer_done: bool,
    _reservation: Vec<AnswerReservation>,
}

impl http_body::Body for HeldAnswer {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        if self.rest.is_empty() {
            self.trailer_done = true;
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(1 << 20);
        let piece = self.rest.split_to(n);
        Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.trailer_done
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// The layer.
#[derive(Clone)]
pub struct FrontDoor {
    expected: Option<Arc<[u8]>>,
    max_body: usize,
    per_mib: Duration,
    metrics: Option<(crate::metrics::Metrics, crate::rpc_metrics::RpcMetrics)>,
    status_400_for: &'static [&'static str],
}

impl FrontDoor {
    /// Requires `token` (when some and non-empty), and bodies of at most
    /// `max_body` bytes sent within 30 s plus `per_mib` per MiB.
    pub fn new(token: Option<&str>, max_body: usize, per_mib: Duration) -> FrontDoor {
        FrontDoor {
            expected: token
                .filter(|t| !t.is_empty())
                .map(|t| Arc::from(format!("Bearer {t}").into_bytes())),
            max_body,
            per_mib,
            metrics: None,
            status_400_for: &[],
        }
    }

    /// Answers a request that is not part of a batch, for a method whose
    /// name starts with one of `prefixes`, with HTTP 400 when it fails (the
    /// convention of Aztec's JSON-RPC servers; a batch's answer stays 200).
    pub fn with_status_400_for(mut self, prefixes: &'static [&'static str]) -> FrontDoor {
        self.status_400_for = prefixes;
        self
    }

    fn wants_400(&self, method: Option<&str>) -> bool {
        method.is_some_and(|m| self.status_400_for.iter().any(|p| m.starts_with(p)))
    }

    /// Answers `GET /metrics` with `metrics` as Prometheus text, and counts
    /// the requests the door refuses in `counts`.
    pub fn with_metrics(
        mut self,
        metrics: crate::metrics::Metrics,
        counts: crate::rpc_metrics::RpcMetrics,
    ) -> FrontDoor {
        self.metrics = Some((metrics, counts));
        self
    }

    fn refused(&self, reason: &'static str) {
        if let Some((_, counts)) = &self.metrics {
            counts.refused(reason);
        }
    }

    fn authorized(&self, req: &http::request::Parts) -> bool {
        let Some(expected) = &self.expected else {
            return true;
        };
        if req.method == Method::GET && matches!(req.uri.path(), "/" | "/health") {
            return true;
        }
        let given = req
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        constant_time_eq(given, expected)
    }

    fn deadline(&self, req: &http::request::Parts) -> Duration {
        let declared = req
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(self.max_body as u64);
        BASE_DEADLINE + self.per_mib * (declared.div_ceil(1 << 20) as u32)
    }
}

/// Whether `a == b`, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The part of a request object the door looks at; the rest is skipped
/// without being copied.
#[derive(serde::Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow, default)]
    id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
}

/// Checks the id of each request in `body` (one object or a batch). A body
/// that is not JSON, or not objects, is left for the server to answer with
/// its own parse or invalid-request error.
pub fn check_ids(body: &[u8]) -> Result<(), String> {
    inspect(body).map(|_| ())
}

/// Checks the ids as [`check_ids`] does; returns the method of a body that
/// is one request (not a batch).
fn inspect(body: &[u8]) -> Result<Option<String>, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let mut single = None;
    let ids: Vec<Option<&serde_json::value::RawValue>> = match first {
        Some(b'{') => match serde_json::from_slice::<IdOnly>(body) {
            Ok(one) => {
                single = one.method.map(|m| m.into_owned());
                vec![one.id]
            }
            Err(_) => return Ok(None),
        },
        Some(b'[') => match serde_json::from_slice::<Vec<IdOnly>>(body) {
            Ok(many) => many.into_iter().map(|r| r.id).collect(),
            Err(_) => return Ok(None),
        },
        _ => return Ok(None),
    };
    for id in ids.into_iter().flatten() {
        let text = id.get();
        let fine = text == "null"
            || text.starts_with('"')
            || (text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u64>().is_ok());
        if !fine {
            let shown: String = text.chars().take(40).collect();
            return Err(format!(
                "invalid request id {shown}: an id is a string, null or a whole number from 0 to 18446744073709551615"
            ));
        }
    }
    Ok(single)
}

/// Whether an answer body is a JSON-RPC error object.
fn is_error_answer(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct ErrorOnly<'a> {
        #[serde(borrow, default)]
        error: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_slice::<ErrorOnly>(body).is_ok_and(|a| a.error.is_some())
}

fn answer(status: StatusCode, code: i32, message: &str) -> HttpResponse {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message },
    })
    .to_string();
    let mut r = HttpResponse::new(HttpBody::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

impl<S> tower::Layer<S> for FrontDoor {
    type Service = FrontDoorService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FrontDoorService {
            inner,
            door: self.clone(),
        }
    }
}

/// The service the layer wraps around the server.
#[derive(Clone)]
pub struct FrontDoorService<S> {
    inner: S,
    door: FrontDoor,
}

impl<S, B> tower::Service<HttpRequest<B>> for FrontDoorService<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        // The ready service is the one called (tower's clone-and-swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let door = self.door.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            if !door.authorized(&parts) {
                door.refused("unauthorized");
                return Ok(answer(
                    StatusCode::UNAUTHORIZED,
                    UNAUTHORIZED,
                    "this server needs a bearer token (Authorization: Bearer ...)",
                ));
            }
            if parts.method == Method::GET
                && parts.uri.path() == "/metrics"
                && let Some((metrics, _)) = &door.metrics
            {
                let mut r = HttpResponse::new(HttpBody::from(metrics.render()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static(crate::metrics::PROMETHEUS_CONTENT_TYPE),
                );
                return Ok(r);
            }
            let limited = http_body_util::Limited::new(body, door.max_body);
            let bytes = match tokio::time::timeout(door.deadline(&parts), limited.collect()).await {
                Err(_) => {
                    door.refused("too_slow");
                    return Ok(answer(
                        StatusCode::REQUEST_TIMEOUT,
                        TOO_SLOW,
                        "the request body was not sent in time",
                    ));
                }
                Ok(Err(e)) => {
                    let too_large = e.is::<http_body_util::LengthLimitError>();
                    door.refused(if too_large {
                        "too_large"
                    } else {
                        "broken_body"
                    });
                    return Ok(if too_large {
                        answer(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            TOO_LARGE,
                            &format!("the request is over {} bytes", door.max_body),
                        )
                    } else {
                        answer(
                            StatusCode::BAD_REQUEST,
                            -32700,
                            "the request body broke off",
                        )
                    });
                }
                Ok(Ok(collected)) => collected.to_bytes(),
            };
            let single = match inspect(&bytes) {
                Ok(single) => single,
                Err(why) => {
                    door.refused("invalid_id");
                    return Ok(answer(StatusCode::BAD_REQUEST, INVALID_REQUEST, &why));
                }
            };
            let status_400 = door.wants_400(single.as_deref());
            let mut req = HttpRequest::from_parts(parts, HttpBody::from(bytes.to_vec()));
            let slot = AnswerSlot::default();
            req.extensions_mut().insert(slot.clone());
            let mut response = inner.call(req).await.map_err(Into::into)?;
            if status_400 && response.status() == StatusCode::OK {
                let (mut parts, body) = response.into_parts();
                let whole = body.collect().await?.to_bytes();
                if is_error_answer(&whole) {
                    parts.status = StatusCode::BAD_REQUEST;
                }
                response = HttpResponse::from_parts(parts, HttpBody::from(whole.to_vec()));
            }
            let reservation = slot.take();
            if reservation.is_empty() {
                return Ok(response);
            }
            // Collected whole (it is already in memory), then handed out in
            // pieces while the reservation is held.
            let (parts, body) = response.into_parts();
            let whole = body.collect().await?.to_bytes();
            let held = HeldAnswer {
                rest: whole,
                trailer_done: false,
                _reservation: reservation,
            };
            Ok(HttpResponse::from_parts(parts, HttpBody::new(held)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_only_whole() {
        assert!(constant_time_eq(b"Bearer abc", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer abd", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer ab", b"Bearer abc"));
        assert!(!constant_time_eq(b"", b"Bearer abc"));
    }

    #[test]
    fn request_ids_the_server_cannot_echo_are_refused() {
        for fine in [
            r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","method":"m"}"#,
            r#"[{"id":18446744073709551615,"method":"m"},{"id":"x"}]"#,
            "not json at all",
            "[1,2]",
        ] {
            assert_eq!(check_ids(fine.as_bytes()), Ok(()), "{fine}");
        }
        for bad in [
            r#"{"jsonrpc":"2.0","id":{},"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1e400,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":-1,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":true,"method":"m"}"#,
            r#"[{"id":1,"method":"m"},{"id":{"a":1},"method":"m"}]"#,
        ] {
            assert!(check_ids(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

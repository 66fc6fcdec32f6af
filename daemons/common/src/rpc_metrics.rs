//! What a JSON-RPC server counts: requests and their time by method, and the
//! requests it refused (at the front door, past the connection limits, or
//! answered with an error).
//!
//! Method names come from the server's own list; anything else is counted
//! as `other`, so a client cannot grow the number of series.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use jsonrpsee::server::MethodResponse;
use jsonrpsee::server::middleware::rpc::{Batch, Notification, Request, RpcServiceT};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

use crate::metrics::{MS_BUCKETS, Metrics};

/// The server's instruments.
#[derive(Clone)]
pub struct RpcMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    rejected: Counter<u64>,
    known: Arc<HashSet<String>>,
}

impl RpcMetrics {
    /// Instruments for a server answering `methods`.
    pub fn new(metrics: &Metrics, methods: impl IntoIterator<Item = String>) -> RpcMetrics {
        let meter = metrics.meter();
        RpcMetrics {
            requests: meter
                .u64_counter("aztec_prover.rpc.requests")
                .with_description("JSON-RPC calls answered, by method and outcome (ok, error)")
                .build(),
            duration: meter
                .f64_histogram("aztec_prover.rpc.duration")
                .with_unit("ms")
                .with_description("Time to answer a JSON-RPC call, by method")
                .with_boundaries(MS_BUCKETS.to_vec())
                .build(),
            rejected: meter
                .u64_counter("aztec_prover.rpc.rejected")
                .with_description(
                    "Requests refused, by method (other: unknown or unread) and reason",
                )
                .build(),
            known: Arc::new(methods.into_iter().chain(["batch".to_string()]).collect()),
        }
    }

    fn method<'a>(&self, name: &'a str) -> &'a str {
        if self.known.contains(name) {
            name
        } else {
            "other"
        }
    }

    /// Counts a request refused before any method saw it (`reason`: for
    /// example `unauthorized`, `too_large`, `too_slow`, `invalid_id`,
    /// `too_many_connections`).
    pub fn refused(&self, reason: &'static str) {
        self.rejected.add(
            1,
            &[
                KeyValue::new("method", "other"),
                KeyValue::new("reason", reason),
            ],
        );
    }

    fn answered(&self, method: &str, started: Instant, error: bool) {
        let method = self.method(method).to_string();
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.duration
            .record(ms, &[KeyValue::new("method", method.clone())]);
        self.requests.add(
            1,
            &[
                KeyValue::new("method", method.clone()),
                KeyValue::new("outcome", if error { "error" } else { "ok" }),
            ],
        );
        if error {
            self.rejected.add(
                1,
                &[
                    KeyValue::new("method", method),
                    KeyValue::new("reason", "error_answer"),
                ],
            );
        }
    }
}

/// The RPC middleware that feeds [`RpcMetrics`].
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: RpcMetrics,
}

impl<S> Counted<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, metrics: RpcMetrics) -> Counted<S> {
        Counted { inner, metrics }
    }
}

impl<S> RpcServiceT for Counted<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let metrics = self.metrics.clone();
        let inner = self.inner.clone();
        let method = req.method_name().to_string();
        let started = Instant::now();
        async move {
            let r = inner.call(req).await;
            metrics.answered(&method, started, r.is_error());
            r
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let metrics = self.metrics.clone();
        let inner = self.inner.clone();
        let started = Instant::now();
        async move {
            let r = inner.batch(batch).await;
            metrics.answered("batch", started, r.is_error());
            r
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

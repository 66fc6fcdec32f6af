//! Metrics: one OpenTelemetry meter provider per process, read two ways.
//!
//! - Prometheus text for `GET /metrics` ([`Metrics::render`]), served by each
//!   daemon's HTTP server: the broker's and the node's JSON-RPC ports, and the
//!   agents' own metrics port.
//! - OTLP over HTTP (protobuf), pushed every interval to
//!   `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` when one is configured.
//!
//! Instruments are recorded in memory; exporting happens on the SDK's own
//! thread (OTLP) or when Prometheus asks (text), never on a proving path. An
//! export that fails (collector down, slow, refusing) is logged once per
//! outage, counted in `aztec_prover.metrics.failed_exports`, and the next
//! interval tries again.
//!
//! Names follow Aztec's (`aztec.proving_queue.*`, `aztec.prover_node.*`);
//! ours are `aztec_prover.*`. Prometheus spells dots as underscores and adds
//! the unit and `_total` (counters) itself. `docs/metrics.md` lists them all.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

/// Histogram buckets for times in milliseconds, 1 ms to 30 min.
pub const MS_BUCKETS: &[f64] = &[
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    500.0,
    1_000.0,
    2_000.0,
    5_000.0,
    10_000.0,
    20_000.0,
    60_000.0,
    120_000.0,
    300_000.0,
    600_000.0,
    1_800_000.0,
];

/// The content type of [`Metrics::render`]'s text.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a process exports its metrics.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// `service.name` (unless `OTEL_SERVICE_NAME` says otherwise):
    /// `aztec-prover-broker`, `-node`, `-agent`.
    pub service: String,
    /// `service.instance.id`: the agent's template instance.
    pub instance: Option<u32>,
    /// OTLP/HTTP endpoint of a collector (`.../v1/metrics`); empty: no push.
    pub otlp_endpoint: String,
    /// Headers sent with each push, `key=value,key=value` (secret: may hold
    /// a collector's API key).
    pub otlp_headers: String,
    /// Time between pushes.
    pub export_interval: Duration,
    /// How long one push may take before it is given up.
    pub export_timeout: Duration,
    /// False: [`Metrics::start`] gives [`Metrics::off`].
    pub disabled: bool,
}

/// The process's metrics: a meter for instruments, and their current values
/// as Prometheus text. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("otlp", &self.inner.otlp.is_some())
            .finish()
    }
}

struct Inner {
    provider: SdkMeterProvider,
    registry: Option<prometheus::Registry>,
    otlp: Option<Arc<Outage>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The OTLP client blocks; never shut it down on an async thread.
        let provider = self.provider.clone();
        let _ = std::thread::spawn(move || {
            let _ = provider.shutdown_with_timeout(Duration::from_secs(2));
        })
        .join();
    }
}

/// Whether the collector is failing, and how often it has.
#[derive(Debug)]
struct Outage {
    endpoint: String,
    failing: AtomicBool,
    failed: AtomicU64,
    sent: AtomicU64,
}

impl Outage {
    fn record(&self, result: &OTelSdkResult) {
        match result {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("metrics reach {} again", self.endpoint);
                }
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "cannot push metrics to {}: {e}; trying again each interval (logged once until it works)",
                        self.endpoint
                    );
                }
            }
        }
    }
}

/// The OTLP exporter, watched for outages.
struct Watched<E> {
    inner: E,
    outage: Arc<Outage>,
}

impl<E: PushMetricExporter> PushMetricExporter for Watched<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.outage.record(&result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// Parses `key=value,key=value` (OTEL_EXPORTER_OTLP_HEADERS' form; values
/// may be percent-encoded).
pub fn parse_headers(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!(
                "a header must be key=value (got an entry of {} characters without '=')",
                part.len()
            ));
        };
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(format!("{k:?} is not a header name"));
        }
        out.insert(k.to_string(), percent_decode(v.trim()));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks an OTLP endpoint: empty, or an http(s) URL.
pub fn check_endpoint(url: &str) -> Result<(), String> {
    if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err("an OTLP/HTTP endpoint is an http:// or https:// URL, such as http://collector:4318/v1/metrics".into())
    }
}

impl MetricsConfig {
    /// A daemon's metrics settings (`OTEL_*`), as read by its settings.
    pub fn new(
        service: &str,
        instance: Option<u32>,
        otlp_endpoint: &str,
        otlp_headers: &str,
        export_interval_ms: u64,
        export_timeout_ms: u64,
    ) -> MetricsConfig {
        MetricsConfig {
            service: service.to_string(),
            instance,
            otlp_endpoint: otlp_endpoint.trim().to_string(),
            otlp_headers: otlp_headers.to_string(),
            export_interval: Duration::from_millis(export_interval_ms),
            export_timeout: Duration::from_millis(export_timeout_ms),
            disabled: false,
        }
    }

    /// Metrics on, or off altogether.
    pub fn enabled(mut self, on: bool) -> MetricsConfig {
        self.disabled = !on;
        self
    }

    /// Checks the settings a daemon reads for this, naming the bad key.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        check_endpoint(&self.otlp_endpoint).map_err(|e| ("otlp_metrics_endpoint", e))?;
        parse_headers(&self.otlp_headers).map_err(|e| ("otlp_metrics_headers", e))?;
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.export_interval) {
            return Err((
                "metrics_export_interval_ms",
                "must be from 1000 to 3600000".into(),
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&self.export_timeout) {
            return Err((
                "metrics_export_timeout_ms",
                "must be from 100 to 600000".into(),
            ));
        }
        Ok(())
    }
}

impl Metrics {
    /// Starts the meter provider: always readable as Prometheus text, and
    /// pushed over OTLP when `config.otlp_endpoint` is set.
    pub fn start(config: &MetricsConfig) -> Result<Metrics, String> {
        check_endpoint(&config.otlp_endpoint)?;
        if config.disabled {
            return Ok(Metrics::off());
        }
        let headers =
            parse_headers(&config.otlp_headers).map_err(|e| format!("OTLP headers: {e}"))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(config.service.clone());
        }
        if let Some(i) = config.instance {
            resource = resource.with_attribute(KeyValue::new("service.instance.id", i64::from(i)));
        }
        let registry = prometheus::Registry::new();
        let prometheus_reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(|e| format!("cannot start the Prometheus reader: {e}"))?;
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource.build())
            .with_reader(prometheus_reader);
        let mut otlp = None;
        if !config.otlp_endpoint.is_empty() {
            let outage = Arc::new(Outage {
                endpoint: shown(&config.otlp_endpoint),
                failing: AtomicBool::new(false),
                failed: AtomicU64::new(0),
                sent: AtomicU64::new(0),
            });
            let endpoint = config.otlp_endpoint.clone();
            let timeout = config.export_timeout;
            // The blocking HTTP client cannot be made on an async thread.
            let exporter = std::thread::spawn(move || {
                use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
                opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_endpoint(endpoint)
                    .with_timeout(timeout)
                    .with_headers(headers)
                    .build()
            })
            .join()
            .map_err(|_| "the OTLP exporter could not be made".to_string())?
            .map_err(|e| format!("cannot start the OTLP exporter: {e}"))?;
            let reader = PeriodicReader::builder(Watched {
                inner: exporter,
                outage: outage.clone(),
            })
            .with_interval(config.export_interval)
            .build();
            builder = builder.with_reader(reader);
            otlp = Some(outage);
        }
        let metrics = Metrics {
            inner: Arc::new(Inner {
                provider: builder.build(),
                registry: Some(registry),
                otlp,
            }),
        };
        if let Some(outage) = metrics.inner.otlp.clone() {
            let o = outage.clone();
            metrics
                .meter()
                .u64_observable_counter("aztec_prover.metrics.failed_exports")
                .with_description("OTLP pushes that failed")
                .with_callback(move |obs| obs.observe(o.failed.load(Ordering::Relaxed), &[]))
                .build();
            metrics
                .meter()
                .u64_observable_counter("aztec_prover.metrics.exports")
                .with_description("OTLP pushes the collector took")
                .with_callback(move |obs| obs.observe(outage.sent.load(Ordering::Relaxed), &[]))
                .build();
        }
        Ok(metrics)
    }

    /// Metrics that record nothing and export nothing (benchmarks' control,
    /// tools that are not daemons).
    pub fn off() -> Metrics {
        Metrics {
            inner: Arc::new(Inner {
                provider: SdkMeterProvider::builder().build(),
                registry: None,
                otlp: None,
            }),
        }
    }

    /// A histogram of times in milliseconds over [`MS_BUCKETS`].
    pub fn ms_histogram(
        &self,
        name: &'static str,
        what: &'static str,
    ) -> opentelemetry::metrics::Histogram<f64> {
        self.meter()
            .f64_histogram(name)
            .with_unit("ms")
            .with_description(what)
            .with_boundaries(MS_BUCKETS.to_vec())
            .build()
    }

    /// The meter to make instruments with.
    pub fn meter(&self) -> Meter {
        use opentelemetry::metrics::MeterProvider;
        self.inner.provider.meter("aztec-prover")
    }

    /// Every metric's current value, in Prometheus' text format.
    pub fn render(&self) -> String {
        let Some(registry) = &self.inner.registry else {
            return String::new();
        };
        let mut text = String::new();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut text) {
            tracing::warn!("cannot render metrics: {e}");
        }
        text
    }

    /// OTLP pushes that failed and that went through (none without a collector).
    pub fn exports(&self) -> (u64, u64) {
        self.inner.otlp.as_ref().map_or((0, 0), |o| {
            (
                o.sent.load(Ordering::Relaxed),
                o.failed.load(Ordering::Relaxed),
            )
        })
    }
}

/// A URL without path, query or credentials, for logs.
fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split('/').next().unwrap_or(rest);
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_otel_writes_them() {
        let h = parse_headers("api-key=abc%3D%3D, x-tenant = t1,").unwrap();
        assert_eq!(h["api-key"], "abc==");
        assert_eq!(h["x-tenant"], "t1");
        assert!(parse_headers("").unwrap().is_empty());
        assert!(parse_headers("novalue").is_err());
        assert!(parse_headers("bad name=1").is_err());
    }

    #[test]
    fn endpoints_are_urls_and_logs_show_only_the_host() {
        assert!(check_endpoint("").is_ok());
        assert!(check_endpoint("http://c:4318/v1/metrics").is_ok());
        assert!(check_endpoint("c:4318").is_err());
        assert_eq!(
            shown("https://u:p@c.example:4318/v1/metrics?k=1"),
            "https://c.example:4318"
        );
    }

    #[test]
    fn instruments_render_with_prometheus_spelling() {
        let m = Metrics::start(&MetricsConfig {
            service: "aztec-prover-test".into(),
            ..MetricsConfig::default()
        })
        .unwrap();
        let c = m
            .meter()
            .i64_up_down_counter("aztec.proving_queue.enqueued_jobs_count")
            .build();
        c.add(3, &[KeyValue::new("aztec.proving.job_type", "BASE_PARITY")]);
        let h = m
            .meter()
            .f64_histogram("aztec.proving_queue.job_wait")
            .with_unit("ms")
            .with_boundaries(MS_BUCKETS.to_vec())
            .build();
        h.record(12.0, &[]);
        let text = m.render();
        assert!(
            text.contains(
                "aztec_proving_queue_enqueued_jobs_count{aztec_proving_job_type=\"BASE_PARITY\""
            ),
            "{text}"
        );
        assert!(
            text.contains("aztec_proving_queue_job_wait_milliseconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains("service_name=\"aztec-prover-test\""),
            "{text}"
        );
        assert!(Metrics::off().render().is_empty());
    }
}

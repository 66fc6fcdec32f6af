//! OTLP push against a receiver that decodes what arrives with the official
//! OpenTelemetry protobuf definitions (the opentelemetry-proto crate).

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aztec_prover_common::metrics::{Metrics, MetricsConfig};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A collector on a free port: each POST body goes to the channel, and is
/// answered with `status`.
async fn receiver(status: u16) -> (String, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/metrics", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Headers.
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end..end + len].to_vec();
                    buf.drain(..end + len);
                    let _ = tx.send((head, body));
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
                    );
                    if sock.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

fn config(url: &str) -> MetricsConfig {
    MetricsConfig {
        service: "aztec-prover-agent".into(),
        instance: Some(3),
        otlp_endpoint: url.into(),
        otlp_headers: "x-api-key=s3cret".into(),
        export_interval: Duration::from_millis(300),
        export_timeout: Duration::from_secs(2),
        disabled: false,
    }
}

/// The sum of the counter `name` in a request, or None when absent.
fn counter(req: &ExportMetricsServiceRequest, name: &str) -> Option<(i64, String, Vec<String>)> {
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                if m.name != name {
                    continue;
                }
                let Some(Data::Sum(sum)) = &m.data else {
                    return None;
                };
                let mut total = 0;
                let mut attrs = Vec::new();
                for p in &sum.data_points {
                    if let Some(number_data_point::Value::AsInt(v)) = p.value {
                        total += v;
                    }
                    for a in &p.attributes {
                        if let Some(Value::StringValue(s)) =
                            a.value.as_ref().and_then(|v| v.value.as_ref())
                        {
                            attrs.push(format!("{}={s}", a.key));
                        }
                    }
                }
                return Some((total, m.unit.clone(), attrs));
            }
        }
    }
    None
}

fn resource(req: &ExportMetricsServiceRequest) -> Vec<String> {
    req.resource_metrics
        .iter()
        .filter_map(|rm| rm.resource.as_ref())
        .flat_map(|r| r.attributes.iter())
        .map(|a| {
            let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                _ => String::new(),
            };
            format!("{}={v}", a.key)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_metrics_decode_with_the_official_definitions_and_grow() {
    let (url, mut rx) = receiver(200).await;
    let metrics = Metrics::start(&config(&url)).unwrap();
    let jobs = metrics
        .meter()
        .u64_counter("aztec_prover.agent.jobs")
        .with_unit("{job}")
        .build();
    let h = metrics
        .meter()
        .f64_histogram("aztec_prover.agent.proof_duration")
        .with_unit("ms")
        .build();
    let attrs = [
        KeyValue::new("aztec.proving.job_type", "BASE_ROLLUP"),
        KeyValue::new("outcome", "proven"),
    ];
    jobs.add(2, &attrs);
    h.record(12.5, &attrs[..1]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Ok(Some((head, body))) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
        else {
            break;
        };
        assert!(head.starts_with("POST /v1/metrics"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("x-api-key: s3cret"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase().contains("application/x-protobuf"),
            "{head}"
        );
        let req = ExportMetricsServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        if let Some(c) = counter(&req, "aztec_prover.agent.jobs") {
            seen.push(c.0);
            assert_eq!(c.1, "{job}");
            assert!(
                c.2.contains(&"aztec.proving.job_type=BASE_ROLLUP".to_string()),
                "{:?}",
                c.2
            );
            let r = resource(&req);
            assert!(
                r.contains(&"service.name=aztec-prover-agent".to_string()),
                "{r:?}"
            );
            assert!(r.contains(&"service.instance.id=3".to_string()), "{r:?}");
            if seen.len() == 1 {
                jobs.add(3, &attrs);
            }
            if seen.len() >= 2 && *seen.last().unwrap() == 5 {
                break;
            }
        }
    }
    assert!(seen.len() >= 2, "pushes seen: {seen:?}");
    assert_eq!(seen[0], 2);
    assert_eq!(
        *seen.last().unwrap(),
        5,
        "the counter grows as jobs complete: {seen:?}"
    );
    // The exporter counts a push once it has read the answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metrics.exports().0 < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sent, failed) = metrics.exports();
    assert!(sent >= 2 && failed == 0, "sent {sent}, failed {failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_refuses_or_is_gone_is_counted_and_recording_goes_on() {
    // Answers 500.
    let (url, mut rx) = receiver(500).await;
    let metrics = Metrics::start(&config(&url)).unwrap();
    let c = metrics
        .meter()
        .u64_counter("aztec_prover.test.recorded")
        .build();
    let deadline = Instant::now() + Duration::from_secs(20);
    while metrics.exports().1 < 2 && Instant::now() < deadline {
        c.add(1, &[]);
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
    }
    assert!(
        metrics.exports().1 >= 2,
        "failed pushes counted: {:?}",
        metrics.exports()
    );
    assert!(
        metrics
            .render()
            .contains("aztec_prover_metrics_failed_exports_total")
    );
    // Nobody listens at all.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1/metrics", l.local_addr().unwrap())
    };
    let metrics = Metrics::start(&config(&gone)).unwrap();
    let c = metrics
        .meter()
        .u64_counter("aztec_prover.test.recorded")
        .build();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut recorded = 0u64;
    while metrics.exports().1 < 2 && Instant::now() < deadline {
        c.add(1, &[]);
        recorded += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.exports().1 >= 2, "{:?}", metrics.exports());
    // What was recorded meanwhile is all there for Prometheus.
    let text = metrics.render();
    let line = text
        .lines()
        .find(|l| l.starts_with("aztec_prover_test_recorded_total"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.ends_with(&format!(" {recorded}")),
        "{line} vs {recorded}"
    );
}

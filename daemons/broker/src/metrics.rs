//! The broker's metrics, under Aztec's names (`aztec.proving_queue.*`, each
//! with the job type in `aztec.proving.job_type`).
//!
//! Two sources, the same the JSON-RPC API reads: the queue's counters
//! (`getQueueStats`) for what is queued and leased now, and the events the
//! writer logs after each commit for what happened (enqueued, proven,
//! failed, retried, timed out). Job wait and duration are measured from
//! those events, in memory: after a restart a recovered job's wait counts
//! from the restart.
//!
//! The counters are up-down counters as in Aztec's broker, so Prometheus
//! shows them under the same names (no `_total`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use aztec_prover_common::metrics::Metrics;
use aztec_prover_protocol::{JobId, JobType, QueueStats};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, UpDownCounter};
use tokio::sync::watch;

use crate::queue::Event;

/// The attribute Aztec puts the job type in.
pub const JOB_TYPE: &str = "aztec.proving.job_type";

fn of_type(name: &'static str) -> [KeyValue; 1] {
    [KeyValue::new(JOB_TYPE, name)]
}

/// What the writer thread records as events come out of a commit.
pub(crate) struct JobMetrics {
    enqueued: UpDownCounter<i64>,
    cached: UpDownCounter<i64>,
    resolved: UpDownCounter<i64>,
    rejected: UpDownCounter<i64>,
    retried: UpDownCounter<i64>,
    timed_out: UpDownCounter<i64>,
    job_wait: Histogram<f64>,
    job_duration: Histogram<f64>,
    /// Since when each job has waited in the queue, or been proven.
    since: HashMap<JobId, Instant>,
}

impl JobMetrics {
    pub(crate) fn new(metrics: &Metrics) -> JobMetrics {
        let m = metrics.meter();
        let counter = |name: &'static str, what: &'static str| {
            m.i64_up_down_counter(name).with_description(what).build()
        };
        let ms = |name, what| metrics.ms_histogram(name, what);
        JobMetrics {
            enqueued: counter(
                "aztec.proving_queue.enqueued_jobs_count",
                "Jobs that entered the queue",
            ),
            cached: counter(
                "aztec.proving_queue.cached_jobs_count",
                "Enqueues of a job the broker already had (its status returned)",
            ),
            resolved: counter("aztec.proving_queue.resolved_jobs_count", "Jobs proven"),
            rejected: counter(
                "aztec.proving_queue.rejected_jobs_count",
                "Jobs failed for good",
            ),
            retried: counter(
                "aztec.proving_queue.retried_jobs_count",
                "Failed attempts queued again",
            ),
            timed_out: counter(
                "aztec.proving_queue.timed_out_jobs_count",
                "Leases that expired without a heartbeat",
            ),
            job_wait: ms(
                "aztec.proving_queue.job_wait",
                "Time a job waited in the queue before an agent took it",
            ),
            job_duration: ms(
                "aztec.proving_queue.job_duration",
                "Time from an agent taking a job to its proof",
            ),
            since: HashMap::new(),
        }
    }

    /// Records one event of a commit.
    pub(crate) fn observe(&mut self, e: &Event, now: Instant) {
        match e {
            Event::Enqueued { id, ty } => {
                self.enqueued.add(1, &of_type(ty));
                self.since.insert(id.clone(), now);
            }
            Event::Cached { ty, .. } => {
                self.cached.add(1, &of_type(ty));
            }
            Event::Leased { id, ty, .. } => {
                if let Some(from) = self.since.insert(id.clone(), now) {
                    self.job_wait.record(ms(now - from), &of_type(ty));
                }
            }
            Event::Fulfilled { id, ty, .. } => {
                self.resolved.add(1, &of_type(ty));
                if let Some(from) = self.since.remove(id) {
                    self.job_duration.record(ms(now - from), &of_type(ty));
                }
            }
            Event::Retried { id, ty, .. } => {
                self.retried.add(1, &of_type(ty));
                self.since.insert(id.clone(), now);
            }
            Event::Rejected { id, ty, .. } => {
                self.rejected.add(1, &of_type(ty));
                self.since.remove(id);
            }
            Event::LeaseExpired { id, ty, .. } => {
                self.timed_out.add(1, &of_type(ty));
                self.since.insert(id.clone(), now);
            }
            Event::Cancelled { id, .. } => {
                self.since.remove(id);
            }
            Event::EpochCleaned { epoch, .. } => {
                self.since.retain(|id, _| id.epoch() != *epoch);
            }
        }
    }

    /// Jobs whose times are being followed.
    #[cfg(test)]
    fn followed(&self) -> usize {
        self.since.len()
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Registers the gauges read from the queue's counters and the store:
/// queue size and active jobs by type, and the store's items, map size and
/// used bytes.
pub fn register_gauges(
    metrics: &Metrics,
    stats: watch::Receiver<Arc<QueueStats>>,
    map_size_bytes: u64,
    used_bytes: impl Fn() -> Option<u64> + Send + Sync + 'static,
) {
    let m = metrics.meter();
    // Every one of our types (zeros included), then the Aztec types that
    // have jobs.
    let per_type = move |pick: fn(&aztec_prover_protocol::StateCounts) -> u64| {
        let stats = stats.clone();
        move || {
            let s = stats.borrow().clone();
            let mut ours = [0u64; JobType::ALL.len()];
            for per in s.epochs.values() {
                for (t, c) in per {
                    ours[usize::from(t.id())] += pick(c);
                }
            }
            let mut out: Vec<(String, u64)> = JobType::ALL
                .iter()
                .zip(ours)
                .map(|(t, n)| (t.name().to_string(), n))
                .collect();
            out.extend(
                s.aztec_by_type()
                    .into_iter()
                    .map(|(name, c)| (name, pick(&c))),
            );
            out
        }
    };
    let queued = per_type(|c| c.queued);
    m.u64_observable_gauge("aztec.proving_queue.size")
        .with_description("Jobs waiting for an agent")
        .with_callback(move |o| {
            for (t, n) in queued() {
                o.observe(n, &[KeyValue::new(JOB_TYPE, t)]);
            }
        })
        .build();
    let active = per_type(|c| c.in_progress);
    m.u64_observable_gauge("aztec.proving_queue.active_jobs_count")
        .with_description("Jobs an agent is proving")
        .with_callback(move |o| {
            for (t, n) in active() {
                o.observe(n, &[KeyValue::new(JOB_TYPE, t)]);
            }
        })
        .build();
    let all = per_type(|c| c.queued + c.in_progress + c.fulfilled + c.rejected);
    m.u64_observable_gauge("aztec.proving_queue.db.num_items")
        .with_description("Jobs the store holds (every state, every kept epoch)")
        .with_callback(move |o| o.observe(all().iter().map(|(_, n)| n).sum(), &[]))
        .build();
    m.u64_observable_gauge("aztec.proving_queue.db.map_size")
        .with_unit("By")
        .with_description("The store's map size (the most it may grow to)")
        .with_callback(move |o| o.observe(map_size_bytes, &[]))
        .build();
    m.u64_observable_gauge("aztec.proving_queue.db.used_size")
        .with_unit("By")
        .with_description("Bytes the store occupies")
        .with_callback(move |o| {
            if let Some(n) = used_bytes() {
                o.observe(n, &[]);
            }
        })
        .build();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(epoch: u64, t: JobType) -> JobId {
        JobId::new(epoch, t, &[epoch as u8; 32])
    }

    #[test]
    fn events_become_counts_and_times_and_nothing_is_followed_forever() {
        let metrics = Metrics::start(&aztec_prover_common::metrics::MetricsConfig {
            service: "t".into(),
            ..Default::default()
        })
        .unwrap();
        let mut m = JobMetrics::new(&metrics);
        let t0 = Instant::now();
        let a = id(1, JobType::BaseParity);
        let b = id(2, JobType::RootRollup);
        let agent = String::from("agent");
        m.observe(
            &Event::Enqueued {
                id: a.clone(),
                ty: "BASE_PARITY",
            },
            t0,
        );
        m.observe(
            &Event::Cached {
                id: a.clone(),
                ty: "BASE_PARITY",
            },
            t0,
        );
        m.observe(
            &Event::Enqueued {
                id: b.clone(),
                ty: "ROOT_ROLLUP",
            },
            t0,
        );
        m.observe(
            &Event::Leased {
                id: a.clone(),
                ty: "BASE_PARITY",
                agent: agent.clone(),
            },
            t0 + Duration::from_millis(30),
        );
        m.observe(
            &Event::Fulfilled {
                id: a.clone(),
                ty: "BASE_PARITY",
                agent: agent.clone(),
            },
            t0 + Duration::from_millis(530),
        );
        assert_eq!(m.followed(), 1);
        m.observe(&Event::EpochCleaned { epoch: 2, jobs: 1 }, t0);
        assert_eq!(m.followed(), 0);
        let text = metrics.render();
        for line in [
            "aztec_proving_queue_enqueued_jobs_count{aztec_proving_job_type=\"BASE_PARITY\"",
            "aztec_proving_queue_cached_jobs_count{aztec_proving_job_type=\"BASE_PARITY\"",
            "aztec_proving_queue_resolved_jobs_count{aztec_proving_job_type=\"BASE_PARITY\"",
            "aztec_proving_queue_job_wait_milliseconds_sum{aztec_proving_job_type=\"BASE_PARITY\"",
            "aztec_proving_queue_job_duration_milliseconds_sum{aztec_proving_job_type=\"BASE_PARITY\"",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        let sum = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(-1.0)
        };
        assert_eq!(sum("aztec_proving_queue_job_wait_milliseconds_sum"), 30.0);
        assert_eq!(
            sum("aztec_proving_queue_job_duration_milliseconds_sum"),
            500.0
        );
    }
}

//! The agent's metrics: Aztec's `aztec.proving_queue.agent.idle`, and ours
//! (`aztec_prover.agent.*`): proof time per job type, the time a proof
//! spent in its QAP (constraint evaluation and NTTs) and MSM phases, jobs
//! by outcome, threads and whether the agent is paused; the backend's name
//! is an attribute of the proof times.

use std::sync::Arc;
use std::time::Duration;

use aztec_prover_common::metrics::Metrics;
use aztec_prover_protocol::JobType;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

use crate::control::Control;

/// How one job ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Proven and taken by the broker.
    Proven,
    /// Failed for good (bad inputs, a key that does not fit).
    Fatal,
    /// Failed and handed back to be tried again.
    Retryable,
    /// Handed back (stopping) or its lease lost; nothing reported.
    Dropped,
    /// Proven, but the broker did not take the result.
    NotTaken,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Proven => "proven",
            Outcome::Fatal => "failed_fatal",
            Outcome::Retryable => "failed_retryable",
            Outcome::Dropped => "dropped",
            Outcome::NotTaken => "not_taken",
        }
    }
}

/// Where a proof's time went, in the prover's phases.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// Constraint evaluation and the QAP's NTTs.
    pub qap: Duration,
    /// The MSMs.
    pub msm: Duration,
}

/// The agent's instruments. Cheap to clone.
#[derive(Clone)]
pub struct AgentMetrics {
    idle: Histogram<f64>,
    proof: Histogram<f64>,
    qap: Histogram<f64>,
    msm: Histogram<f64>,
    jobs: Counter<u64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl AgentMetrics {
    /// Instruments on `metrics`; the gauges read `control`.
    pub fn new(metrics: &Metrics, control: &Arc<Control>) -> AgentMetrics {
        let m = metrics.meter();
        let hist = |name, what| metrics.ms_histogram(name, what);
        let c = control.clone();
        m.u64_observable_gauge("aztec_prover.agent.threads")
            .with_description("Proving threads per agent")
            .with_callback(move |o| o.observe(u64::from(c.threads()), &[]))
            .build();
        let c = control.clone();
        m.u64_observable_gauge("aztec_prover.agent.paused")
            .with_description("1 while the agents take no new jobs (D-Bus Paused)")
            .with_callback(move |o| o.observe(u64::from(c.paused()), &[]))
            .build();
        let c = control.clone();
        m.u64_observable_gauge("aztec_prover.agent.busy")
            .with_description("Agents of this process proving a job now")
            .with_callback(move |o| o.observe(c.current().len() as u64, &[]))
            .build();
        AgentMetrics {
            idle: hist(
                "aztec.proving_queue.agent.idle",
                "Time an agent waited for a job",
            ),
            proof: hist(
                "aztec_prover.agent.proof_duration",
                "Time to prove a job, from taking it to its result, by job type and backend",
            ),
            qap: hist(
                "aztec_prover.agent.qap_duration",
                "A proof's constraint evaluation and NTTs on the backend, by job type and backend",
            ),
            msm: hist(
                "aztec_prover.agent.msm_duration",
                "A proof's MSMs on the backend, by job type and backend",
            ),
            jobs: m
                .u64_counter("aztec_prover.agent.jobs")
                .with_description("Jobs taken, by job type and outcome")
                .build(),
        }
    }

    /// An agent waited `d` before it got a job.
    pub fn idle(&self, d: Duration) {
        self.idle.record(ms(d), &[]);
    }

    /// A job ended; `backend` proved it.
    pub fn job(
        &self,
        t: JobType,
        backend: &str,
        outcome: Outcome,
        took: Duration,
        phases: Option<Phases>,
    ) {
        self.jobs.add(
            1,
            &[
                KeyValue::new("aztec.proving.job_type", t.name()),
                KeyValue::new("outcome", outcome.name()),
            ],
        );
        if outcome != Outcome::Proven {
            return;
        }
        let attrs = [
            KeyValue::new("aztec.proving.job_type", t.name()),
            KeyValue::new("backend", backend.to_string()),
        ];
        self.proof.record(ms(took), &attrs);
        if let Some(p) = phases {
            self.qap.record(ms(p.qap), &attrs);
            self.msm.record(ms(p.msm), &attrs);
        }
    }
}

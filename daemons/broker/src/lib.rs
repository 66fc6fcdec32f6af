//! The prover broker: a durable queue of proving jobs between the node that
//! produces them and the agents that prove them.
//!
//! Where a job goes: it enters through `enqueueProvingJob` ([`rpc`]), waits
//! in the store ([`queue`], on LMDB via the group-commit [`writer`]), is
//! leased by `getProvingJob`, and comes back with `reportProvingJobSuccess`.
//! Aztec's own node and agents use the same engine through [`aztec_rpc`].
//! [`dbus`] lets operators watch and tune it, [`metrics`] shows it to
//! Prometheus and OpenTelemetry; [`daemon`] runs it under systemd.

#![forbid(unsafe_code)]

pub mod aztec_rpc;
pub mod daemon;
pub mod dbus;
pub mod metrics;
pub mod queue;
mod records;
pub mod rpc;
pub mod settings;
pub mod writer;

pub use queue::{BrokerError, Policy};
pub use settings::BrokerSettings;
pub use writer::{Broker, PolicyChange, WriterOptions};

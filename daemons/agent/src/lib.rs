//! The prover agent: a stateless worker that takes proving jobs from the
//! broker, proves them on a backend with the proof system of `aztec-zk`,
//! and returns the proofs.
//!
//! - [`settings`], its configuration;
//! - [`numa`], where its threads run;
//! - [`control`], live settings and counters (what D-Bus tunes);
//! - [`prover`], one job, from input bytes to result bytes;
//! - [`worker`], the loop against the broker;
//! - [`dbus`], `org.aztec.ProverAgent1`;
//! - [`daemon`], the process.
#![forbid(unsafe_code)]

pub mod control;
pub mod daemon;
pub mod dbus;
pub mod metrics;
pub mod numa;
pub mod prover;
pub mod settings;
pub mod worker;

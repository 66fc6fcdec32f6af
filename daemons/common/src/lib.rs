//! Plumbing shared by every aztec-prover daemon: configuration, logging,
//! systemd integration, D-Bus connection and JSON-RPC transport.
//!
//! Holds no daemon logic: engines live in their own crates and use these
//! pieces as thin adapters.

#![forbid(unsafe_code)]

pub mod child;
pub mod config;
pub mod connections;
pub mod dbus;
pub mod dirlock;
pub mod front_door;
pub mod logging;
pub mod metrics;
pub mod rpc;
pub mod rpc_metrics;
pub mod service;
pub mod systemd;

pub use config::{ConfigError, Secret};

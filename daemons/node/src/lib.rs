//! The prover node: it watches the rollup on L1 ([`archiver`]), quotes for
//! completed epochs with a bond behind them ([`monitor`], [`quotes`],
//! [`bond`]) and starts proving the epochs whose claims name it. What it
//! is doing ([`state`]) is served over JSON-RPC ([`api`]) and D-Bus
//! ([`dbus`]). A claimed epoch is re-executed against the world state kept
//! in LMDB ([`world_state`]), planned into a job tree ([`epoch`]), proven
//! through the broker ([`orchestrator`]) and published ([`pipeline`]).
#![forbid(unsafe_code)]

pub mod ahead;
pub mod api;
pub mod archiver;

pub mod bond;
pub mod broker;
pub mod daemon;
pub mod dbus;
pub mod engine;
pub mod epoch;
pub mod error;
pub mod metrics;
pub mod monitor;
pub mod orchestrator;
pub mod p2p;
pub mod pipeline;
pub mod publisher;
pub mod quotes;
pub mod retry;
pub mod settings;
pub mod status;
pub mod txs;
pub mod world_state;

pub use monitor::{Monitor, MonitorConfig, NodeEvent};
pub use settings::NodeSettings;

//! Logging for every daemon: journald when stderr is the journal (or when
//! asked), otherwise human text on stderr, or JSON lines with `LOG_JSON=true`.
//!
//! Job-related events carry the structured fields `EPOCH`, `JOB_ID`,
//! `JOB_TYPE` and `AGENT` (upper case in the code, so journald stores them
//! under exactly those names and `journalctl EPOCH=12` works).
//! The level can be changed at run time (SIGHUP reload) through [`LogHandle`].

use std::io::IsTerminal;
use std::os::fd::AsFd;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, reload};

use crate::config::LogLevel;
use crate::service::{LogTarget, ServiceSettings};

/// Changes the log level of a running daemon.
#[derive(Clone)]
pub struct LogHandle {
    reload: reload::Handle<Targets, Registry>,
}

impl LogHandle {
    /// Applies a new level; returns false if the subscriber is gone.
    pub fn set_level(&self, level: LogLevel) -> bool {
        self.reload.reload(filter_for(level)).is_ok()
    }
}

/// Where the logs ended up going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The systemd journal, with structured fields.
    Journald,
    /// Human-readable text on stderr.
    Text,
    /// One JSON object per line on stderr.
    Json,
}

fn to_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Silent => LevelFilter::OFF,
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

/// Our crates log at `level`; chatty libraries only at warn unless tracing.
fn filter_for(level: LogLevel) -> Targets {
    let ours = to_filter(level);
    let theirs = if level == LogLevel::Trace {
        ours
    } else {
        ours.min(LevelFilter::WARN)
    };
    Targets::new()
        .with_default(theirs)
        .with_target("aztec_prover", ours)
        .with_target("aztec_prover_common", ours)
        .with_target("aztec_prover_broker", ours)
        .with_target("aztec_prover_agent", ours)
        .with_target("aztec_prover_node", ours)
        .with_target("aztec_prover_devnet", ours)
        .with_target("aztec_prover_cli", ours)
        .with_target("aztec_prover_store", ours)
        .with_target("aztec_prover_l1", ours)
        .with_target("aztec_zk", ours)
        .with_target("aztec_prover_p2p", ours)
        // Kademlia warns when a node with no known peers yet (a boot node,
        // a node whose boot nodes are down) has nothing to look up; our
        // own P2P lines say what matters.
        .with_target("libp2p_kad", theirs.min(LevelFilter::ERROR))
        // arkworks opens a span per constraint namespace: formatting them
        // makes synthesis orders of magnitude slower and says nothing useful.
        .with_target("r1cs", LevelFilter::OFF)
}

/// Whether stderr is connected to the journal (`JOURNAL_STREAM` names its device and inode).
pub fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr().as_fd()) {
        Ok(st) => st.st_dev == dev && st.st_ino == ino,
        Err(_) => false,
    }
}

/// Installs the global subscriber. `identifier` is the syslog identifier in
/// the journal (e.g. `aztec-prover-agent`). Call once, before anything logs.
pub fn init(settings: &ServiceSettings, identifier: &str) -> (LogHandle, Destination) {
    let (filter, handle) = reload::Layer::new(filter_for(settings.log_level));
    let want_journal = match settings.log_target {
        LogTarget::Journald => true,
        LogTarget::Stderr => false,
        LogTarget::Auto => stderr_is_journal(),
    };
    let mut fallback_note = None;
    let journal = if want_journal {
        match tracing_journald::layer() {
            Ok(l) => Some(
                l.with_field_prefix(None)
                    .with_syslog_identifier(identifier.to_string()),
            ),
            Err(e) => {
                fallback_note = Some(format!(
                    "journald is not reachable ({e}); logging to stderr"
                ));
                None
            }
        }
    } else {
        None
    };

    let (output, destination): (Box<dyn Layer<_> + Send + Sync>, Destination) = match journal {
        Some(j) => (Box::new(j), Destination::Journald),
        None if settings.log_json => (
            Box::new(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            ),
            Destination::Json,
        ),
        None => (
            Box::new(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            ),
            Destination::Text,
        ),
    };
    // A second init (tests that start several daemons in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
    if let Some(note) = fallback_note {
        tracing::warn!("{note}");
    }
    (LogHandle { reload: handle }, destination)
}

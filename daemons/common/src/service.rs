//! Settings every daemon shares: logging and the D-Bus it registers on.

use crate::config::{ConfigValue, LogLevel, Validate};
use crate::settings;

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// journald when stderr is the journal, stderr otherwise.
    Auto,
    /// Always journald (falls back to stderr, with a warning, if it is absent).
    Journald,
    /// Always stderr.
    Stderr,
}

impl ConfigValue for LogTarget {
    fn expected() -> String {
        "one of auto, journald, stderr".into()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(LogTarget::Auto),
            "journald" | "journal" => Ok(LogTarget::Journald),
            "stderr" => Ok(LogTarget::Stderr),
            _ => Err("unknown log target".into()),
        }
    }
    fn render(&self) -> String {
        format!("{:?}", format!("{self:?}").to_ascii_lowercase())
    }
}

/// Which D-Bus a daemon registers on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum BusChoice {
    /// The system bus (the default; what `busctl` talks to).
    System,
    /// The session bus of the user running the daemon.
    Session,
    /// No D-Bus at all.
    Disabled,
    /// A bus at this address (`unix:path=...`), e.g. a private `dbus-daemon` in tests.
    Address(String),
}

impl ConfigValue for BusChoice {
    fn expected() -> String {
        "system, session, none, or a D-Bus address such as unix:path=/run/bus".into()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        let t = text.trim();
        Ok(match t.to_ascii_lowercase().as_str() {
            "system" => BusChoice::System,
            "session" => BusChoice::Session,
            "none" | "off" | "disabled" | "false" => BusChoice::Disabled,
            _ if t.contains(':') && t.contains('=') => BusChoice::Address(t.to_string()),
            _ => return Err("not a bus name or address".into()),
        })
    }
    fn render(&self) -> String {
        match self {
            BusChoice::System => "\"system\"".into(),
            BusChoice::Session => "\"session\"".into(),
            BusChoice::Disabled => "\"none\"".into(),
            BusChoice::Address(a) => format!("{a:?}"),
        }
    }
}

settings! {
    /// Logging and D-Bus settings shared by every daemon.
    pub struct ServiceSettings {
        /// Log level: silent, fatal, error, warn, info, verbose, debug or trace.
        log_level: LogLevel = LogLevel::Info, env ["LOG_LEVEL"], flag "log-level";
        /// Log one JSON object per line instead of text (when not logging to journald).
        log_json: bool = false, env ["LOG_JSON"], flag "log-json";
        /// Where logs go: auto (journald when stderr is the journal), journald or stderr.
        log_target: LogTarget = LogTarget::Auto, env ["LOG_TARGET"], flag "log-target";
        /// D-Bus to register on: system, session, none, or an address (unix:path=...).
        dbus: BusChoice = BusChoice::System, env ["AZTEC_PROVER_DBUS"], flag "dbus";
    }
}

impl Validate for ServiceSettings {}

//! Connecting a daemon to D-Bus: the system bus by default, the session bus,
//! a private bus at an address (tests, running without root), or none.
//!
//! Each daemon owns one well-known name and serves its versioned interface
//! at one object path; the interfaces themselves live with their daemons.

use zbus::connection::Builder;
use zbus::object_server::Interface;

use crate::service::BusChoice;

/// A bus connection that could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot register {name} on the {bus} bus: {source}")]
pub struct DbusError {
    /// The well-known name.
    pub name: String,
    /// Which bus.
    pub bus: String,
    /// zbus's error.
    pub source: zbus::Error,
}

fn builder(choice: &BusChoice) -> zbus::Result<Option<Builder<'static>>> {
    Ok(Some(match choice {
        BusChoice::System => Builder::system()?,
        BusChoice::Session => Builder::session()?,
        BusChoice::Address(a) => Builder::address(a.as_str())?,
        BusChoice::Disabled => return Ok(None),
    }))
}

/// Connects to the chosen bus, serves `iface` at `path` and takes `name`.
///
/// When `required` is false (the bus is the default, not one the operator
/// asked for), an unreachable bus is logged and `Ok(None)` returned, so a
/// daemon started by hand on a machine without a system bus still runs.
pub async fn serve<I: Interface>(
    choice: &BusChoice,
    required: bool,
    name: &str,
    path: &str,
    iface: I,
) -> Result<Option<zbus::Connection>, DbusError> {
    let bus = match choice {
        BusChoice::System => "system".to_string(),
        BusChoice::Session => "session".to_string(),
        BusChoice::Address(a) => a.clone(),
        BusChoice::Disabled => return Ok(None),
    };
    let attempt = async {
        let Some(b) = builder(choice)? else {
            return Ok(None);
        };
        b.name(name.to_string())?
            .serve_at(path.to_string(), iface)?
            .build()
            .await
            .map(Some)
    };
    match attempt.await {
        Ok(conn) => {
            if conn.is_some() {
                tracing::info!("D-Bus: {name} at {path} on the {bus} bus");
            }
            Ok(conn)
        }
        Err(source) if !required => {
            tracing::warn!(
                "D-Bus unavailable, continuing without it: cannot register {name} on the {bus} bus: {source}"
            );
            Ok(None)
        }
        Err(source) => Err(DbusError {
            name: name.to_string(),
            bus,
            source,
        }),
    }
}

//! The library's tuning options. Each is set through the ABI
//! (`set_option`, key `wgpu.<name>`: the agent passes its settings so) or,
//! when not set, read from its environment variable (for the tools that
//! load the library directly). All but `trace` are read when the device
//! opens: set later, only the value already in use is accepted.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::gpu::{ADAPTER_ENV, LIMBS_ENV, MAX_BINDING_ENV, TRACE_ENV};
use crate::msm::{SEGMENT_ENV, Tuning, WINDOW_ENV};

/// wgpu's own variable choosing the APIs searched.
pub const API_ENV: &str = "WGPU_BACKEND";

/// One option.
pub struct Opt {
    /// Its name after `wgpu.`.
    pub name: &'static str,
    /// The variable read when it is not set.
    pub env: &'static str,
    /// Whether a value is one the library takes (why not, otherwise).
    check: fn(&str) -> Result<(), String>,
    /// Whether it may change once the device is open.
    live: bool,
}

fn any(_: &str) -> Result<(), String> {
    Ok(())
}

fn one_of(v: &str, allowed: &[&str]) -> Result<(), String> {
    if v.is_empty() || allowed.contains(&v.trim()) {
        Ok(())
    } else {
        Err(format!("expected one of {}", allowed.join(", ")))
    }
}

fn api(v: &str) -> Result<(), String> {
    let known = [
        "vulkan", "vk", "dx12", "d3d12", "metal", "mtl", "opengl", "gles", "gl",
    ];
    match v
        .split(',')
        .map(|b| b.trim().to_lowercase())
        .find(|b| !known.contains(&b.as_str()))
    {
        Some(b) if !v.trim().is_empty() => Err(format!(
            "{b:?} is not an API (vulkan, gl, metal, dx12, comma-separated)"
        )),
        _ => Ok(()),
    }
}

fn max_binding(v: &str) -> Result<(), String> {
    match v.trim().parse::<u64>() {
        Ok(b) if b >= 4096 => Ok(()),
        _ if v.trim().is_empty() => Ok(()),
        _ => Err("expected bytes, at least 4096".into()),
    }
}

/// Every option.
pub const OPTIONS: [Opt; 8] = [
    Opt {
        name: "adapter",
        env: ADAPTER_ENV,
        check: any,
        live: false,
    },
    Opt {
        name: "api",
        env: API_ENV,
        check: api,
        live: false,
    },
    Opt {
        name: "limbs",
        env: LIMBS_ENV,
        check: |v| one_of(v, &["13", "29"]),
        live: false,
    },
    Opt {
        name: "g2",
        env: crate::G2_ENV,
        check: |v| one_of(v, &["gpu", "cpu"]),
        live: false,
    },
    Opt {
        name: "window",
        env: WINDOW_ENV,
        check: |v| {
            Tuning::parse(Some(v), None)
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        live: false,
    },
    Opt {
        name: "segment",
        env: SEGMENT_ENV,
        check: |v| {
            Tuning::parse(None, Some(v))
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        live: false,
    },
    Opt {
        name: "max_binding",
        env: MAX_BINDING_ENV,
        check: max_binding,
        live: false,
    },
    Opt {
        name: "trace",
        env: TRACE_ENV,
        check: |v| one_of(v, &["0", "1"]),
        live: true,
    },
];

/// The values set, by variable name.
static SET: Mutex<Option<HashMap<&'static str, String>>> = Mutex::new(None);

/// The value of the option read from variable `env`: the one set through
/// the ABI, else the variable's.
pub fn get(env: &str) -> Option<String> {
    let set = SET.lock().unwrap_or_else(|p| p.into_inner());
    match set.as_ref().and_then(|m| m.get(env)) {
        Some(v) => Some(v.clone()),
        None => std::env::var(env).ok(),
    }
}

/// Sets option `name` to `value`; `opened` says whether the device is open
/// (then only a live option, or the value in use, is accepted).
pub fn set(name: &str, value: &str, opened: bool) -> Result<(), String> {
    let names: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
    let o = OPTIONS
        .iter()
        .find(|o| o.name == name)
        .ok_or_else(|| format!("no such option (wgpu.{})", names.join(", wgpu.")))?;
    (o.check)(value)?;
    if opened && !o.live && get(o.env).unwrap_or_default() != value {
        return Err("the device is open already: set it before the library's first call".into());
    }
    SET.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(o.env, value.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_win_over_their_variables() {
        assert!(set("window", "15", false).is_ok());
        assert_eq!(get(WINDOW_ENV).as_deref(), Some("15"));
        assert!(
            set("window", "40", false)
                .unwrap_err()
                .contains("window bits")
        );
        assert!(set("segment", "48", false).is_err());
        assert!(set("limbs", "17", false).unwrap_err().contains("13, 29"));
        assert!(set("api", "vulkan, gl", false).is_ok());
        assert!(
            set("api", "directx", false)
                .unwrap_err()
                .contains("\"directx\"")
        );
        assert!(set("max_binding", "100", false).is_err());
        assert!(
            set("colour", "red", false)
                .unwrap_err()
                .contains("wgpu.window")
        );
        // Once the device is open, only the value in use, or a live option.
        assert!(set("window", "15", true).is_ok());
        assert!(
            set("window", "14", true)
                .unwrap_err()
                .contains("open already")
        );
        assert!(set("trace", "1", true).is_ok());
        assert!(set("trace", "0", true).is_ok());
    }
}

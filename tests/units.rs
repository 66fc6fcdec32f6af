//! The systemd units in systemd/ pass `systemd-analyze verify` (with the
//! built binary standing in for /usr/bin/aztec-prover), and say what the
//! package promises: Type=notify with a watchdog, hardening, the socket.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd")
}

fn unit_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(units_dir())
        .expect("systemd/")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "service" || e == "socket")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("systemd-analyze is missing (apt install systemd)");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_aztec-prover");
    let mut names = Vec::new();
    for f in unit_files() {
        let text = std::fs::read_to_string(&f)
            .expect("unit")
            .replace("/usr/bin/aztec-prover", bin);
        let name = f.file_name().expect("name").to_string_lossy().to_string();
        std::fs::write(tmp.path().join(&name), text).expect("copy");
        // A template is verified through one instance.
        names.push(name.replace("@.service", "@2.service"));
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&names)
        .current_dir(tmp.path())
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("run systemd-analyze");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on parse warnings ("..., ignoring"): any line about our units fails.
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("aztec-prover"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn services_are_notify_with_watchdog_and_hardened() {
    for f in unit_files() {
        let text = std::fs::read_to_string(&f).expect("unit");
        if f.extension().is_some_and(|e| e == "socket") {
            let want = if f.to_string_lossy().contains("node") {
                "ListenStream=127.0.0.1:8081"
            } else {
                "ListenStream=8080"
            };
            assert!(text.contains(want), "{} lacks {want}", f.display());
            continue;
        }
        for want in [
            "Type=notify",
            "WatchdogSec=",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "StateDirectory=",
            "User=aztec-prover",
            "EnvironmentFile=-/etc/aztec-prover/aztec-prover.env",
        ] {
            assert!(text.contains(want), "{} lacks {want}", f.display());
        }
    }
}

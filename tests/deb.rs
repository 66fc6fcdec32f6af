//! The Debian packages under a real booted systemd: builds the .debs from
//! this build's binary and backends (`packaging/build-deb.sh`, lintian
//! clean), boots a cached Debian 12 rootfs with `systemd-nspawn --boot` and
//! runs the operator's checks inside (`packaging/e2e/`): apt install, the
//! socket, node and four agents, journald fields, D-Bus tuning and its
//! policy, drain on stop, apt purge.
//!
//! Where the machine cannot boot a container (not root, no nspawn, no
//! overlayfs, no Debian mirror for the first rootfs) the harness says why
//! and the test fails, unless `AZTEC_PROVER_TEST_ALLOW_SKIP=1` lets it
//! report itself as not run; a failed check always fails it.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The harness's exit status for "this machine cannot boot a container".
const CANNOT_RUN_HERE: i32 = 77;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The backends cargo built for this test run (next to the test binary).
fn built_backend(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps/");
    let file = format!("libaztec_backend_{name}.so");
    [
        deps.to_path_buf(),
        deps.parent().expect("profile dir").to_path_buf(),
    ]
    .into_iter()
    .map(|d| d.join(&file))
    .find(|p| p.is_file())
    .unwrap_or_else(|| panic!("{file} was not built (cargo build --workspace)"))
}

fn tool_present(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn debian_package_under_booted_systemd() {
    let missing: Vec<&str> = [
        "dpkg-buildpackage",
        "dh",
        "fakeroot",
        "systemd-nspawn",
        "debootstrap",
    ]
    .into_iter()
    .filter(|t| !tool_present(t))
    .collect();
    if !missing.is_empty() {
        return support::cannot_run_here(&format!(
            "the .deb harness needs {} (packaging/dev-setup.sh installs them when run as root)",
            missing.join(", ")
        ));
    }
    let work = tempfile::Builder::new()
        .prefix("aztec-prover-deb-")
        .tempdir()
        .expect("tempdir");
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    std::fs::copy(env!("CARGO_BIN_EXE_aztec-prover"), bin.join("aztec-prover"))
        .expect("copy binary");
    for b in ["cpu", "wgpu"] {
        let src = built_backend(b);
        std::fs::copy(&src, bin.join(src.file_name().unwrap())).expect("copy backend");
    }
    // Packaged as README's release build is: without debug info (the test
    // build has it), so the packaging sees what an operator's build gives.
    for f in std::fs::read_dir(&bin).expect("bin dir") {
        let path = f.expect("entry").path();
        let ok = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(&path)
            .status()
            .expect("objcopy (binutils)");
        assert!(ok.success(), "objcopy --strip-debug {}", path.display());
    }
    let out = work.path().join("deb");
    let build = Command::new(repo_root().join("packaging/build-deb.sh"))
        .arg(&out)
        .env("AZTEC_PROVER_BIN_DIR", &bin)
        .output()
        .expect("run build-deb.sh");
    let text = String::from_utf8_lossy(&build.stdout).to_string()
        + &String::from_utf8_lossy(&build.stderr);
    eprintln!("{text}");
    assert!(build.status.success(), "build-deb.sh failed");

    let run = Command::new(repo_root().join("packaging/e2e/run.sh"))
        .arg(out.join("repo"))
        .output()
        .expect("run packaging/e2e/run.sh");
    let text =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    let checks: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("PASS")
                || l.starts_with("FAIL")
                || l.starts_with("e2e:")
                || l.contains(" passed, ")
        })
        .collect();
    eprintln!("{}", checks.join("\n"));
    if run.status.code() == Some(CANNOT_RUN_HERE) {
        return support::cannot_run_here("this machine cannot boot the test container (see above)");
    }
    assert!(run.status.success(), "harness failed:\n{text}");
}

//! The loader refuses what is not a compatible backend, with a message that
//! says why: a wrong ABI version, an older ABI, no backend symbol, another
//! curve, a truncated table, a file that is not a library, a missing name.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use aztec_backend_abi::{Backend, BackendError};

fn build_fake(dir: &Path, variant: u32) -> PathBuf {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake_backend.c");
    let out = dir.join(format!("libaztec_backend_fake{variant}.so"));
    let status = Command::new("cc")
        .args([
            "-shared",
            "-fPIC",
            "-O1",
            &format!("-DVARIANT={variant}"),
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .expect("a C compiler (cc) is needed to build the fake backends");
    assert!(status.success());
    out
}

fn refusal(path: &Path) -> String {
    match Backend::load_path(path) {
        Ok(b) => panic!("{} was accepted: {b:?}", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_library_with_the_wrong_abi_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(&build_fake(dir.path(), 1));
    assert!(
        e.contains("incompatible") && e.contains("ABI version 99"),
        "{e}"
    );
}

#[test]
fn a_library_with_an_older_abi_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(&build_fake(dir.path(), 2));
    assert!(e.contains("older backend ABI"), "{e}");
}

#[test]
fn a_library_without_the_backend_symbol_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(&build_fake(dir.path(), 3));
    assert!(
        e.contains(&format!(
            "does not export {}",
            aztec_backend_abi::ffi::ENTRY_SYMBOL
        )),
        "{e}"
    );
}

#[test]
fn a_backend_for_another_curve_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(&build_fake(dir.path(), 4));
    assert!(e.contains("curve 381"), "{e}");
}

#[test]
fn a_table_smaller_than_this_abi_needs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(&build_fake(dir.path(), 5));
    assert!(e.contains("its table has 16 bytes"), "{e}");
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("libaztec_backend_junk.so");
    std::fs::write(&junk, b"this is not an ELF file at all").unwrap();
    let e = refusal(&junk);
    assert!(e.contains("not a shared library"), "{e}");
    // An ELF file that is a program, not a library.
    let prog = dir.path().join("libaztec_backend_prog.so");
    std::fs::copy("/bin/true", &prog).unwrap();
    let e = refusal(&prog);
    assert!(
        e.contains("cannot load backend") || e.contains("incompatible"),
        "{e}"
    );
    let e = refusal(&dir.path().join("libaztec_backend_absent.so"));
    assert!(e.contains("No such file"), "{e}");
}

#[test]
fn a_missing_backend_name_lists_where_it_looked() {
    let err = Backend::load("no-such-backend").unwrap_err();
    let BackendError::NotFound { searched, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        searched
            .iter()
            .any(|p| p.starts_with("/usr/lib/aztec-prover/backends"))
    );
    let msg = err.to_string();
    assert!(msg.contains("libaztec_backend_no-such-backend.so"), "{msg}");
}

#[test]
fn backends_are_found_by_name_in_the_backend_dir_variable() {
    // The variable is read at lookup; run in a child to keep this process's environment untouched.
    if std::env::var("AZTEC_TEST_CHILD").is_ok() {
        let e = Backend::load("fake1").unwrap_err().to_string();
        assert!(e.contains("ABI version 99"), "{e}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    build_fake(dir.path(), 1);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "backends_are_found_by_name_in_the_backend_dir_variable",
            "--test-threads",
            "1",
        ])
        .env("AZTEC_TEST_CHILD", "1")
        .env("AZTEC_PROVER_BACKEND_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

/// A library cut short (a copy interrupted, a disk that filled) is refused
/// with the reason before the dynamic loader maps it; mapped, its missing
/// pages would kill the process with SIGBUS.
#[test]
fn a_truncated_library_is_refused_with_the_reason_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(build_fake(dir.path(), 1)).unwrap();
    for len in [whole.len() / 2, 4096.min(whole.len() - 1), 100, 10] {
        let cut = dir.path().join(format!("libaztec_backend_cut{len}.so"));
        std::fs::write(&cut, &whole[..len]).unwrap();
        let e = refusal(&cut);
        assert!(
            e.contains("cut short") || e.contains("no ELF header"),
            "{len} bytes: {e}"
        );
    }
}

/// The dynamic loader's own reason reaches the message, once.
#[test]
fn the_dynamic_loaders_reason_is_in_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("main.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let exe = dir.path().join("program");
    let built = Command::new("cc")
        .args(["-fPIE", "-pie", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(built.success());
    let e = refusal(&exe);
    assert!(e.contains("position-independent executable"), "{e}");
    let once = "position-independent executable";
    assert_eq!(e.matches(once).count(), 1, "{e}");
}

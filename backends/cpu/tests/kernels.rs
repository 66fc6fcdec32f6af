//! Every kernel against the arkworks reference, on random and edge inputs,
//! through the Rust API and through the loaded shared library.
//!
//! The code path is chosen once per process; `every_path_*` re-runs the
//! shared-library tests in a child process with `AZTEC_PROVER_CPU_PATH` set to
//! each path this CPU has (portable, adx, ifma).

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use ark_ec::{AffineRepr, CurveGroup};
use ark_std::rand::{Rng, SeedableRng, rngs::StdRng};
use aztec_backend_abi::Backend;
use aztec_backend_abi::reference as refimpl;

fn so_path() -> PathBuf {
    // The test runs from target/<profile>/deps/, where cargo leaves the
    // library it just built (the copy one level up is only refreshed by
    // `cargo build`, so it may be stale).
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let fresh = deps.join("libaztec_backend_cpu.so");
    if fresh.exists() {
        fresh
    } else {
        deps.parent().unwrap().join("libaztec_backend_cpu.so")
    }
}

fn backend() -> Backend {
    Backend::load_path(&so_path()).unwrap_or_else(|e| panic!("{e}"))
}

fn edge_scalars(n: usize, rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut s = [0u8; 32];
        match i % 7 {
            0 => {}                                                                  // zero
            1 => s[0] = 1,                                                           // one
            2 => s = [0xff; 32], // above r: reduced
            3 => s.copy_from_slice(&refimpl::fr_bytes(&-ark_bn254::Fr::from(1u64))), // r - 1
            _ => s.copy_from_slice(&refimpl::fr_bytes(&refimpl::sample_fr(1, rng)[0])),
        }
        out.extend_from_slice(&s);
    }
    out
}

fn check_msm_g1(b: &Backend, n: usize, rng: &mut StdRng) {
    let mut pts = refimpl::sample_g1(n, rng);
    if n > 3 {
        pts[1] = pts[0]; // repeated point
        pts[2] = (-pts[0].into_group()).into_affine(); // its negation
        pts[3] = ark_bn254::G1Affine::zero(); // infinity
    }
    let pb = refimpl::encode_g1(&pts);
    let prepared = b.prepare_g1(&pb).unwrap();
    assert_eq!(prepared.len(), n);
    for sb in [
        refimpl::encode_fr(&refimpl::sample_fr(n, rng)),
        edge_scalars(n, rng),
    ] {
        assert_eq!(
            b.msm_g1(&pb, &sb).unwrap(),
            refimpl::msm_g1(&pb, &sb),
            "G1 MSM n = {n}"
        );
        assert_eq!(
            prepared.msm(&sb).unwrap(),
            refimpl::msm_g1(&pb, &sb),
            "G1 MSM over prepared bases n = {n}"
        );
        let lib = {
            let mut out = [0u8; 64];
            aztec_backend_cpu::msm::msm_bytes::<aztec_backend_cpu::curve::G1>(
                &pb, &sb, 2, &mut out,
            )
            .unwrap();
            out
        };
        assert_eq!(lib, refimpl::msm_g1(&pb, &sb), "G1 MSM (rlib) n = {n}");
    }
}

#[test]
fn msm_g1_matches_reference() {
    let b = backend();
    let mut rng = StdRng::seed_from_u64(10);
    for n in [0, 1, 2, 3, 7, 64, 255, 1000, 4099, 1 << 14] {
        check_msm_g1(&b, n, &mut rng);
    }
}

#[test]
fn msm_g1_with_every_point_the_same() {
    let b = backend();
    let mut rng = StdRng::seed_from_u64(11);
    let p = refimpl::sample_g1(1, &mut rng)[0];
    let pb = refimpl::encode_g1(&vec![p; 3000]);
    let sb = refimpl::encode_fr(&refimpl::sample_fr(3000, &mut rng));
    assert_eq!(b.msm_g1(&pb, &sb).unwrap(), refimpl::msm_g1(&pb, &sb));
    let ones: Vec<u8> = (0..3000)
        .flat_map(|_| {
            let mut s = [0u8; 32];
            s[0] = 1;
            s
        })
        .collect();
    assert_eq!(b.msm_g1(&pb, &ones).unwrap(), refimpl::msm_g1(&pb, &ones));
}

#[test]
fn msm_g2_matches_reference() {
    let b = backend();
    let mut rng = StdRng::seed_from_u64(12);
    for n in [0, 1, 5, 100, 2049, 1 << 13] {
        let mut pts = refimpl::sample_g2(n, &mut rng);
        if n > 3 {
            pts[1] = pts[0]; // repeated point
            pts[2] = ark_bn254::G2Affine::zero(); // infinity
            pts[3] = (-pts[0].into_group()).into_affine(); // its negation
        }
        let pb = refimpl::encode_g2(&pts);
        for sb in [
            refimpl::encode_fr(&refimpl::sample_fr(n, &mut rng)),
            edge_scalars(n, &mut rng),
        ] {
            assert_eq!(
                b.msm_g2(&pb, &sb).unwrap(),
                refimpl::msm_g2(&pb, &sb),
                "G2 MSM n = {n}"
            );
        }
    }
}

#[test]
fn msm_refuses_bad_arguments_with_a_message() {
    let b = backend();
    let mut rng = StdRng::seed_from_u64(13);
    let pb = refimpl::encode_g1(&refimpl::sample_g1(4, &mut rng));
    let sb = refimpl::encode_fr(&refimpl::sample_fr(3, &mut rng));
    let e = b.msm_g1(&pb, &sb).unwrap_err().to_string();
    assert!(e.contains("4 points but 3 scalars"), "{e}");
    let mut bad = pb.clone();
    bad[64..96].fill(0xff); // x of point 1 above p
    let sb = refimpl::encode_fr(&refimpl::sample_fr(4, &mut rng));
    let e = b.msm_g1(&bad, &sb).unwrap_err().to_string();
    assert!(
        e.contains("point 1") && e.contains("not below the field modulus"),
        "{e}"
    );
    // The same for prepared bases, when they are prepared.
    let e = b.prepare_g1(&bad).unwrap_err().to_string();
    assert!(
        e.contains("g1_bases_prepare") && e.contains("point 1") && e.contains("not below"),
        "{e}"
    );
    let prepared = b.prepare_g1(&pb).unwrap();
    let e = prepared.msm(&sb[..96]).unwrap_err().to_string();
    assert!(
        e.contains("4 prepared bases but 96 bytes of scalars"),
        "{e}"
    );
    let e = b.prepare_g1(&pb[..100]).unwrap_err().to_string();
    assert!(e.contains("not whole points"), "{e}");
    // G2: y.c1 (the last of a point's four parts) of point 2 above p.
    let mut bad2 = refimpl::encode_g2(&refimpl::sample_g2(4, &mut rng));
    bad2[2 * 128 + 96..3 * 128].fill(0xff);
    let e = b.msm_g2(&bad2, &sb).unwrap_err().to_string();
    assert!(
        e.contains("point 2") && e.contains("not below the field modulus"),
        "{e}"
    );
}

fn check_ntt(b: &Backend, log_n: u32, batch: usize, inverse: bool, coset: bool, rng: &mut StdRng) {
    let n = 1usize << log_n;
    let mut data = refimpl::encode_fr(&refimpl::sample_fr(n * batch, rng));
    if n * batch > 2 {
        data[..32].fill(0xff); // above r: reduced
        data[32..64].fill(0);
    }
    let g = coset.then(|| refimpl::fr_bytes(&refimpl::sample_fr(1, rng)[0]));
    let mut want = data.clone();
    refimpl::ntt(&mut want, log_n, inverse, g.as_ref());
    let mut got = data.clone();
    b.ntt(&mut got, log_n, inverse, g.as_ref()).unwrap();
    assert!(
        got == want,
        "NTT log_n {log_n} batch {batch} inverse {inverse} coset {coset}"
    );
}

#[test]
fn ntt_matches_reference() {
    let b = backend();
    let mut rng = StdRng::seed_from_u64(14);
    for log_n in [0, 1, 2, 3, 5, 8, 12, 13, 14, 16] {
        for (inverse, coset) in [(false, false), (true, false), (false, true), (true, true)] {
            check_ntt(&b, log_n, 1, inverse, coset, &mut rng);
        }
    }
    check_ntt(&b, 10, 3, false, false, &mut rng);
    check_ntt(&b, 10, 3, true, true, &mut rng);
    // Several vectors through the four-step (its buffers are reused).
    check_ntt(&b, 13, 2, false, true, &mut rng);
    check_ntt(&b, 12, 3, true, false, &mut rng);
    // Every element r - 1 or 2^256 - 1: the largest values the lazy
    // butterflies see.
    let r_minus_1 = refimpl::fr_bytes(&-ark_bn254::Fr::from(1u64));
    for fill in [r_minus_1, [0xff; 32]] {
        for (log_n, inverse, coset) in [(12, false, false), (13, true, true), (15, false, true)] {
            let mut data: Vec<u8> = (0..1usize << log_n).flat_map(|_| fill).collect();
            let g = coset.then_some(r_minus_1);
            let mut want = data.clone();
            refimpl::ntt(&mut want, log_n, inverse, g.as_ref());
            b.ntt(&mut data, log_n, inverse, g.as_ref()).unwrap();
            assert!(data == want, "NTT of {fill:x?} log_n {log_n}");
        }
    }
}

#[test]
fn ntt_round_trips() {
    let b = backend();
    let mut rng = StdRng::seed_from_u64(15);
    let data = refimpl::encode_fr(&refimpl::sample_fr(1 << 12, &mut rng));
    let mut x = data.clone();
    let g = refimpl::fr_bytes(&ark_bn254::Fr::from(7u64));
    b.ntt(&mut x, 12, false, Some(&g)).unwrap();
    b.ntt(&mut x, 12, true, Some(&g)).unwrap();
    assert!(x == data);
    let _ = rng.r#gen::<u8>();
}

#[test]
fn ntt_refuses_bad_arguments() {
    let b = backend();
    let mut data = vec![0u8; 32 * 6];
    let e = b.ntt(&mut data, 2, false, None).unwrap_err().to_string();
    assert!(e.contains("not a whole number"), "{e}");
    let e = b.ntt(&mut data, 29, false, None).unwrap_err().to_string();
    assert!(e.contains("2^29"), "{e}");
    let mut data = vec![0u8; 32 * 4];
    let e = b
        .ntt(&mut data, 2, false, Some(&[0u8; 32]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("coset generator is zero"), "{e}");
}

#[test]
fn info_names_the_backend_and_its_path() {
    let mut b = backend();
    assert_eq!(b.info().name, "cpu");
    b.configure(2, &[]).unwrap();
    let detail = b.refresh_info().detail.clone();
    assert!(detail.contains("2 threads"), "{detail}");
    assert!(
        ["avx512ifma", "adx", "portable"]
            .iter()
            .any(|p| detail.starts_with(p)),
        "{detail}"
    );
}

#[test]
fn every_path_this_cpu_has_gives_the_same_results_through_the_library() {
    if std::env::var("AZTEC_PROVER_CPU_PATH").is_ok() {
        return; // already the child
    }
    let mut paths = vec!["portable"];
    if std::arch::is_x86_feature_detected!("bmi2") && std::arch::is_x86_feature_detected!("adx") {
        paths.push("adx");
    }
    if std::arch::is_x86_feature_detected!("avx512ifma") {
        paths.push("ifma");
    }
    for (path, test) in paths.iter().flat_map(|p| {
        [
            "msm_g1_matches_reference",
            "msm_g2_matches_reference",
            "ntt_matches_reference",
            "msm_g1_with_every_point_the_same",
            "msm_refuses_bad_arguments_with_a_message",
        ]
        .map(|t| (*p, t))
    }) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--test-threads", "1"])
            .env("AZTEC_PROVER_CPU_PATH", path)
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{test} on the {path} path:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

mod properties {
    //! Random shapes: sizes, scalar kinds (zero, one, r-1, above r, random),
    //! repeated and negated points, through the shared library.
    use super::*;
    use ark_std::rand::Rng;
    use proptest::prelude::*;

    fn scalar_strategy() -> impl Strategy<Value = [u8; 32]> {
        prop_oneof![
            Just([0u8; 32]),
            Just({
                let mut s = [0u8; 32];
                s[0] = 1;
                s
            }),
            Just([0xffu8; 32]),
            any::<[u8; 32]>(),
            any::<[u8; 32]>().prop_map(|mut s| {
                s[31] &= 0x1f;
                s
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn msm_g1_agrees_with_arkworks(
            scalars in prop::collection::vec(scalar_strategy(), 0..300),
            seed in any::<u64>(),
            repeat in any::<bool>(),
        ) {
            let n = scalars.len();
            let mut rng = StdRng::seed_from_u64(seed);
            let mut pts = refimpl::sample_g1(n, &mut rng);
            if repeat && n > 4 {
                for i in (0..n).step_by(3) { pts[i] = pts[0]; }
                pts[1] = (-pts[0].into_group()).into_affine();
            }
            let pb = refimpl::encode_g1(&pts);
            let sb: Vec<u8> = scalars.concat();
            prop_assert_eq!(backend().msm_g1(&pb, &sb).unwrap(), refimpl::msm_g1(&pb, &sb));
        }

        #[test]
        fn msm_g2_agrees_with_arkworks(scalars in prop::collection::vec(scalar_strategy(), 0..80), seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let pb = refimpl::encode_g2(&refimpl::sample_g2(scalars.len(), &mut rng));
            let sb: Vec<u8> = scalars.concat();
            prop_assert_eq!(backend().msm_g2(&pb, &sb).unwrap(), refimpl::msm_g2(&pb, &sb));
        }

        #[test]
        fn ntt_agrees_with_arkworks(
            log_n in 0u32..11,
            batch in 1usize..3,
            inverse in any::<bool>(),
            coset in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let n = 1usize << log_n;
            let data: Vec<u8> = (0..n * batch).flat_map(|_| {
                let mut s = [0u8; 32];
                rng.fill(&mut s[..]);
                s
            }).collect();
            let g = coset.then(|| refimpl::fr_bytes(&refimpl::sample_fr(1, &mut rng)[0]));
            let mut want = data.clone();
            refimpl::ntt(&mut want, log_n, inverse, g.as_ref());
            let mut got = data;
            backend().ntt(&mut got, log_n, inverse, g.as_ref()).unwrap();
            prop_assert!(got == want);
        }
    }
}

#[test]
fn kept_vectors_follow_the_reference() {
    let b = backend();
    let mut rng = StdRng::seed_from_u64(0x6b);
    for log_n in [1, 5, 10] {
        aztec_backend_abi::conformance::kept_vectors_follow_the_reference(&b, log_n, &mut rng);
    }
    aztec_backend_abi::conformance::kept_vectors_refuse_bad_use(&b, &mut rng);
}

/// Tuning options go through the loader before the library's first use: a
/// bad value or an unknown name fails the load with the reason; another
/// backend's options are not this one's business.
#[test]
fn options_are_checked_when_the_library_loads() {
    let load = |opts: &[(&str, &str)]| {
        let opts: Vec<(String, String)> = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Backend::load_path_with(&so_path(), &opts)
    };
    let e = load(&[("cpu.path", "sideways")]).expect_err("a bad value");
    assert!(
        e.to_string()
            .contains("cpu.path=\"sideways\": expected auto, ifma, adx or portable"),
        "{e}"
    );
    let e = load(&[("cpu.colour", "red")]).expect_err("an unknown option");
    assert!(e.to_string().contains("no such option"), "{e}");
    assert!(load(&[("wgpu.window", "15"), ("cpu.path", "auto")]).is_ok());
}

/// `configure` with CPU ids this process may not run on (past the kernel's
/// CPU set, or simply absent) is an error, not a pool whose threads abort.
#[test]
fn configure_refuses_cpus_the_process_cannot_run_on() {
    let b = backend();
    for bad in [2000u32, 1 << 20] {
        let e = b
            .configure(1, &[0, bad])
            .expect_err("a CPU that is not there");
        assert!(
            e.to_string().contains(&format!("CPU {bad} is not one")),
            "{e}"
        );
    }
    // The backend still works, on its previous pool.
    let mut rng = StdRng::seed_from_u64(3);
    check_msm_g1(&b, 64, &mut rng);
}

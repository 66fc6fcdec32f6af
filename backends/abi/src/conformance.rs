//! Checks every backend library must pass, written once and run by each
//! backend's tests against [`crate::reference`]: here, the kept vectors of
//! ABI version 3 (the QAP's round trip, the MSM from a kept vector, and the
//! refusals of bad handles and ranges).

// Checks for tests: a panic naming the step is how they report.
#![allow(clippy::expect_used)]

use ark_bn254::Fr;
use ark_ff::{Field, One};
use ark_std::rand::Rng;

use crate::Backend;
use crate::reference as r;

/// The QAP's steps on kept vectors of `3 · 2^log_n` random elements (some
/// above r) equal arkworks on the host; the H MSM from the kept result at
/// `offset` over `bases` (prepared in `b`) equals arkworks' MSM; every
/// element downloads canonical. Panics naming the step that differs.
pub fn kept_vectors_follow_the_reference<R: Rng>(b: &Backend, log_n: u32, rng: &mut R) {
    let n = 1usize << log_n;
    let mut abc = r::encode_fr(&r::sample_fr(3 * n, rng));
    // Non-canonical inputs are reduced: 2^256 - 1 and r + 5.
    abc[..32].fill(0xff);
    let mut r_plus_5 = r::fr_bytes(&(Fr::from(0u64) - Fr::one()));
    r_plus_5[0] = r_plus_5[0].wrapping_add(6);
    abc[32 * n..32 * n + 32].copy_from_slice(&r_plus_5);
    let g = r::fr_bytes(&Fr::from(7u64));
    let scale = r::fr_bytes(&Fr::from(12345u64).inverse().unwrap_or_default());

    let mut want = abc.clone();
    r::ntt(&mut want, log_n, true, None);
    r::ntt(&mut want, log_n, false, Some(&g));
    let s = r::fr_from_bytes(&scale);
    let mut h: Vec<u8> = (0..n)
        .flat_map(|i| {
            let e = |k: usize| r::fr_from_bytes(&want[32 * k..32 * k + 32]);
            r::fr_bytes(&((e(i) * e(n + i) - e(2 * n + i)) * s))
        })
        .collect();
    r::ntt(&mut h, log_n, true, Some(&g));

    let v = b.upload_vec(&abc).expect("vec_upload");
    assert_eq!(v.len(), 3 * n);
    let reduced = v.download(0, 2).expect("vec_download");
    assert_eq!(
        reduced[..32],
        r::fr_bytes(&r::fr_from_bytes(&abc[..32])),
        "2^256 - 1 is kept reduced"
    );
    v.ntt(log_n, true, None).expect("vec_ntt inverse");
    v.ntt(log_n, false, Some(&g)).expect("vec_ntt coset");
    assert_eq!(
        v.download(0, 3 * n).expect("vec_download"),
        want,
        "the kept a, b, c after an inverse NTT and a coset NTT"
    );
    let kept_h = v.ab_minus_c(&scale).expect("vec_ab_minus_c");
    assert_eq!(kept_h.len(), n);
    kept_h
        .ntt(log_n, true, Some(&g))
        .expect("vec_ntt inverse coset");
    assert_eq!(
        kept_h.download(0, n).expect("vec_download"),
        h,
        "the kept h after the pointwise step and an inverse coset NTT"
    );
    let tail = n.min(3);
    assert_eq!(
        kept_h.download(n - tail, tail).expect("a tail"),
        h[32 * (n - tail)..],
        "a download from an offset"
    );

    // The H MSM from the kept vector, from an offset, over prepared bases.
    let offset = n / 4;
    let m = n - offset - 1;
    let pts = r::sample_g1(m, rng);
    let bases = b.prepare_g1(&r::encode_g1(&pts)).expect("prepare");
    let got = bases.msm_vec(&kept_h, offset).expect("msm_g1_prepared_vec");
    let want_msm = r::msm_g1(&r::encode_g1(&pts), &h[32 * offset..32 * (offset + m)]);
    assert_eq!(
        got, want_msm,
        "the MSM over the kept h from element {offset}"
    );
}

/// What a backend refuses of the kept-vector entries, with a reason: a
/// range past the end, a size that is not whole vectors, too few elements
/// for the bases, a released handle, a zero coset generator.
pub fn kept_vectors_refuse_bad_use<R: Rng>(b: &Backend, rng: &mut R) {
    let v = b
        .upload_vec(&r::encode_fr(&r::sample_fr(12, rng)))
        .expect("vec_upload");
    let e = v
        .ntt(3, false, None)
        .expect_err("12 is not whole 8-vectors");
    assert!(e.to_string().contains("whole"), "{e}");
    let e = v.download(10, 3).expect_err("past the end");
    assert!(e.to_string().contains("vector of 12"), "{e}");
    let e = v
        .ntt(2, false, Some(&[0u8; 32]))
        .expect_err("a zero coset generator");
    assert!(e.to_string().contains("coset generator is zero"), "{e}");
    let bases = b
        .prepare_g1(&r::encode_g1(&r::sample_g1(10, rng)))
        .expect("prepare");
    let e = bases
        .msm_vec(&v, 3)
        .expect_err("10 bases from element 3 of 12");
    assert!(e.to_string().contains("from element 3"), "{e}");
    let e = b.upload_vec(&[0u8; 33]).expect_err("not whole elements");
    assert!(e.to_string().contains("whole elements"), "{e}");
    let three = b
        .upload_vec(&r::encode_fr(&r::sample_fr(4, rng)))
        .expect("vec_upload");
    let e = three
        .ab_minus_c(&[1u8; 32])
        .expect_err("4 is not three parts");
    assert!(e.to_string().contains("three equal parts"), "{e}");
    // The vector is still whole after the refusals.
    assert_eq!(v.download(0, 12).expect("vec_download").len(), 12 * 32);
}

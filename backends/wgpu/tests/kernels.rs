//! Every GPU kernel against arkworks, on random and edge inputs, on whatever
//! adapter wgpu finds (lavapipe in CI), through the crate and through the
//! built library's C ABI.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ark_bn254::{Fr, G1Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, Field, One, PrimeField, Zero};
use ark_std::rand::{SeedableRng, rngs::StdRng};
use aztec_backend_abi::reference as r;
use aztec_backend_wgpu::state;

fn rng() -> StdRng {
    StdRng::seed_from_u64(0x9e0)
}

fn gpu() -> &'static aztec_backend_wgpu::State {
    match state() {
        Ok(s) => s,
        Err(e) => panic!("no GPU adapter for the tests (install mesa-vulkan-drivers): {e}"),
    }
}

fn check_msm(points: &[G1Affine], scalars: &[Fr], what: &str) {
    let pb = r::encode_g1(points);
    let sb = r::encode_fr(scalars);
    let got = gpu()
        .msm_g1(&pb, &sb)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let want = r::g1_bytes(&r::msm_g1_native(points, scalars));
    assert_eq!(got, want, "{what}: differs from arkworks");
    let prepared = gpu()
        .prepare_g1(&pb)
        .unwrap_or_else(|e| panic!("{what}: prepare: {e}"));
    let got = gpu()
        .msm_g1_prepared(&prepared, &sb)
        .unwrap_or_else(|e| panic!("{what}: prepared: {e}"));
    assert_eq!(
        got, want,
        "{what}: over prepared bases, differs from arkworks"
    );
}

#[test]
fn msm_matches_arkworks_on_random_inputs() {
    let mut rng = rng();
    for n in [1usize, 2, 3, 31, 64, 100, 1000, 4096] {
        let pts = r::sample_g1(n, &mut rng);
        let sc = r::sample_fr(n, &mut rng);
        check_msm(&pts, &sc, &format!("n = {n}"));
    }
}

#[test]
fn msm_handles_edge_scalars_and_points() {
    let mut rng = rng();
    let n = 600;
    let pts = r::sample_g1(n, &mut rng);
    let minus_one = -Fr::one();
    // Zeros, ones, r - 1, small values, and powers of two across window edges.
    let mut sc: Vec<Fr> = Vec::with_capacity(n);
    for i in 0..n {
        sc.push(match i % 6 {
            0 => Fr::zero(),
            1 => Fr::one(),
            2 => minus_one,
            3 => Fr::from(i as u64),
            4 => Fr::from(2u64).pow([(i % 254) as u64]),
            _ => Fr::from(u64::MAX) * Fr::from(i as u64 + 7),
        });
    }
    check_msm(&pts, &sc, "mixed edge scalars");
    check_msm(&pts, &vec![Fr::zero(); n], "all zero");
    // One bucket holds every point: its pieces from many threads are summed.
    check_msm(&pts, &vec![Fr::from(5u64); n], "all equal");
    check_msm(&pts, &vec![minus_one; n], "all r - 1");
    // Points at infinity, the same point twice, and P with -P.
    let mut pts2 = pts[..64].to_vec();
    pts2[3] = G1Affine::zero();
    pts2[10] = pts2[9];
    pts2[12] = -pts2[11];
    let sc2 = r::sample_fr(64, &mut rng);
    check_msm(&pts2, &sc2, "infinity and repeated points");
    let mut same = sc2.clone();
    same[10] = same[9];
    same[12] = same[11];
    check_msm(&pts2, &same, "P and -P with one scalar");
    // Buckets that double (P + P) and cancel (P + (-P)) on their first additions.
    let p = pts[0];
    let k = Fr::from(12345u64);
    check_msm(&[p; 40], &[k; 40], "one point 40 times, one scalar");
    check_msm(&[p, -p, pts[1]], &[k; 3], "P, -P, Q with one scalar");
    check_msm(&[p, -p, p, p], &[k; 4], "P, -P, P, P with one scalar");
}

/// Buckets of thousands of points (witnesses are full of small values):
/// each is spread over many threads, and their pieces over further passes.
#[test]
fn msm_sums_huge_buckets_over_several_passes() {
    let mut rng = rng();
    // 5000 points in one bucket: one pass over the pieces; 260000 in one
    // bucket of every window: two.
    let many = r::sample_g1(260_000, &mut rng);
    check_msm(
        &many[..5000],
        &vec![Fr::from(7u64); 5000],
        "a bucket of 5000",
    );
    check_msm(&many, &vec![-Fr::from(3u64); 260_000], "buckets of 260000");
    let pts = &many[..40_000];
    // Half the points in two buckets, the rest random; and a bucket that
    // cancels to zero (P and -P alike) beside the others.
    let mut sc = r::sample_fr(40_000, &mut rng);
    for (i, s) in sc.iter_mut().enumerate().take(20_000) {
        *s = Fr::from(1 + (i % 2) as u64);
    }
    check_msm(pts, &sc, "two huge buckets among random ones");
    let mut cancel = pts[..3000].to_vec();
    for i in 0..1500 {
        cancel[1500 + i] = -cancel[i];
    }
    let mut sc = vec![Fr::from(9u64); 3000];
    sc[0] = Fr::from(11u64);
    check_msm(&cancel, &sc, "a huge bucket that cancels");
}

#[test]
fn msm_reduces_scalars_above_r_and_refuses_bad_points() {
    let mut rng = rng();
    let pts = r::sample_g1(8, &mut rng);
    let pb = r::encode_g1(&pts);
    // 2^256 - 1 as every scalar: the ABI reduces it modulo r.
    let sb = vec![0xffu8; 32 * 8];
    let want = r::g1_bytes(&r::msm_g1_native(
        &pts,
        &vec![r::fr_from_bytes(&[0xff; 32]); 8],
    ));
    assert_eq!(gpu().msm_g1(&pb, &sb).expect("msm"), want);
    // A coordinate equal to p is refused, not computed with.
    let mut bad = pb.clone();
    bad[64..96].copy_from_slice(&ark_bn254::Fq::MODULUS.to_bytes_le());
    let e = gpu()
        .msm_g1(&bad, &sb)
        .expect_err("non-canonical coordinate");
    assert!(e.to_string().contains("point 1: its x coordinate"), "{e}");
    assert!(
        matches!(e, aztec_backend_wgpu::GpuError::Argument(_)),
        "a bad point is the caller's: {e:?}"
    );
    // The first bad coordinate is named: a y above p at point 6, an x at point 3.
    let mut bad = pb.clone();
    bad[6 * 64 + 32..7 * 64].fill(0xff);
    bad[3 * 64 + 31] = 0xff;
    let e = gpu().msm_g1(&bad, &sb).expect_err("coordinates above p");
    assert!(e.to_string().contains("point 3: its x coordinate"), "{e}");
    let mut bad = pb.clone();
    bad[6 * 64 + 32..7 * 64].fill(0xff);
    let e = gpu().msm_g1(&bad, &sb).expect_err("y above p");
    assert!(e.to_string().contains("point 6: its y coordinate"), "{e}");
    // Prepared bases are checked when they are prepared.
    let e = gpu().prepare_g1(&bad).expect_err("y above p");
    assert!(e.to_string().contains("point 6: its y coordinate"), "{e}");
    let prepared = gpu().prepare_g1(&pb).expect("prepare");
    let e = gpu()
        .msm_g1_prepared(&prepared, &sb[..32])
        .expect_err("one scalar for eight bases");
    assert!(
        e.to_string()
            .contains("32 bytes of scalars for 8 prepared bases"),
        "{e}"
    );
    // The device is still usable after a refusal.
    assert_eq!(gpu().msm_g1(&pb, &sb).expect("msm"), want);
    assert_eq!(
        gpu().msm_g1_prepared(&prepared, &sb).expect("prepared"),
        want
    );
    assert_eq!(gpu().msm_g1(&[], &[]).expect("empty"), [0u8; 64]);
    let none = gpu().prepare_g1(&[]).expect("no bases");
    assert_eq!(gpu().msm_g1_prepared(&none, &[]).expect("empty"), [0u8; 64]);
}

fn check_msm_g2(points: &[ark_bn254::G2Affine], scalars: &[Fr], what: &str) {
    let got = gpu()
        .msm_g2(&r::encode_g2(points), &r::encode_fr(scalars))
        .unwrap_or_else(|e| panic!("G2, {what}: {e}"));
    let want = r::g2_bytes(&r::msm_g2_native(points, scalars));
    assert_eq!(got, want, "G2, {what}: differs from arkworks");
}

/// The G2 program (Fq2 coordinates, the twist's b) on the same inputs as G1:
/// random ones, edge scalars, infinity, P + P and P + (-P) in a bucket, a
/// bucket over several slices, and a bad coordinate part, named.
#[test]
fn msm_g2_matches_arkworks_and_refuses_bad_points() {
    use ark_bn254::G2Affine;
    let mut rng = rng();
    for n in [1usize, 2, 31, 300] {
        let pts = r::sample_g2(n, &mut rng);
        check_msm_g2(&pts, &r::sample_fr(n, &mut rng), &format!("n = {n}"));
    }
    let n = 200;
    let pts = r::sample_g2(n, &mut rng);
    let minus_one = -Fr::one();
    let sc: Vec<Fr> = (0..n)
        .map(|i| match i % 5 {
            0 => Fr::zero(),
            1 => Fr::one(),
            2 => minus_one,
            3 => Fr::from(2u64).pow([(i % 254) as u64]),
            _ => Fr::from(i as u64),
        })
        .collect();
    check_msm_g2(&pts, &sc, "edge scalars");
    check_msm_g2(&pts, &vec![Fr::from(5u64); n], "one bucket over slices");
    let mut pts2 = pts[..64].to_vec();
    pts2[3] = G2Affine::zero();
    pts2[10] = pts2[9];
    pts2[12] = -pts2[11];
    check_msm_g2(
        &pts2,
        &r::sample_fr(64, &mut rng),
        "infinity and repeated points",
    );
    let (p, k) = (pts[0], Fr::from(12345u64));
    check_msm_g2(&[p; 40], &[k; 40], "one point 40 times, one scalar");
    check_msm_g2(&[p, -p, p, p], &[k; 4], "P, -P, P, P with one scalar");
    assert_eq!(gpu().msm_g2(&[], &[]).expect("empty"), [0u8; 128]);
    // The second part of point 4's y is p: refused, and named.
    let mut bad = r::encode_g2(&pts[..8]);
    bad[4 * 128 + 96..5 * 128].copy_from_slice(&ark_bn254::Fq::MODULUS.to_bytes_le());
    let sb = r::encode_fr(&r::sample_fr(8, &mut rng));
    let e = gpu().msm_g2(&bad, &sb).expect_err("a part equal to p");
    assert!(e.to_string().contains("point 4: its y coordinate"), "{e}");
    let mut bad = r::encode_g2(&pts[..8]);
    bad[2 * 128 + 63] = 0xff;
    let e = gpu().msm_g2(&bad, &sb).expect_err("a part above p");
    assert!(e.to_string().contains("point 2: its x coordinate"), "{e}");
    check_msm_g2(&pts[..8], &r::sample_fr(8, &mut rng), "after a refusal");
}

/// An MSM over many chunks: a small binding limit (`AZTEC_PROVER_WGPU_MAX_BINDING`)
/// chunks 3000 points into eight, as a device with small bindings would, in
/// a child process (the limit is read by the device of that process).
#[test]
fn msm_in_chunks_matches_arkworks_and_names_a_bad_point_by_its_index() {
    let (ok, text) = in_child(
        &["child_runs_chunked_msms"],
        &[("AZTEC_PROVER_WGPU_MAX_BINDING", "262144")],
    );
    assert!(ok && text.contains("chunks: 8"), "{text}");
}

/// Runs the tests `names` of this binary in a child process with `env` set
/// (and CHILD_CHECK, which makes child-only tests do their work), one at a
/// time; whether they passed, and their output.
fn in_child(names: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = std::process::Command::new(exe);
    if let [one] = names {
        cmd.args(["--exact", one]);
    } else {
        cmd.args(names);
    }
    cmd.args(["--test-threads", "1", "--nocapture"])
        .env("CHILD_CHECK", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run child");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn child_runs_chunked_msms() {
    if std::env::var("CHILD_CHECK").is_err() {
        return;
    }
    let st = gpu();
    let n = 3000usize;
    println!(
        "chunks: {}",
        n.div_ceil(
            aztec_backend_wgpu::msm::chunk_points(
                &st.gpu,
                st.tuning,
                aztec_backend_wgpu::shader::Curve::G1,
                n
            )
            .expect("a chunk fits")
        )
    );
    let mut rng = rng();
    let pts = r::sample_g1(n, &mut rng);
    check_msm(&pts, &r::sample_fr(n, &mut rng), "3000 points in chunks");
    // A bad coordinate in a later chunk is named by its index in the whole MSM.
    let mut bad = r::encode_g1(&pts);
    bad[2345 * 64 + 63] = 0xff;
    let sb = r::encode_fr(&r::sample_fr(n, &mut rng));
    let e = st.msm_g1(&bad, &sb).expect_err("y above p");
    assert!(
        e.to_string().contains("point 2345: its y coordinate"),
        "{e}"
    );
    let e = st.prepare_g1(&bad).expect_err("y above p");
    assert!(
        e.to_string().contains("point 2345: its y coordinate"),
        "{e}"
    );
    // Kept vectors under the same limit: 3 · 2^11 elements fit one binding
    // (the H MSM from them runs over several chunks of prepared bases);
    // 3 · 2^12 do not, and are kept on the host.
    let b = aztec_backend_abi::Backend::load_path(&test_library()).expect("load");
    for log_n in [11, 12] {
        aztec_backend_abi::conformance::kept_vectors_follow_the_reference(&b, log_n, &mut rng);
    }
}

/// The layout the adapter does not get by default is checked too: the
/// field, G1 MSM and NTT tests run again in a child with the other layout
/// asked for (where the adapter has 64-bit integers the default is the wide
/// one, and the narrow one is what GL and older adapters run). Not G2: its
/// narrow program takes lavapipe 11 minutes to compile cold (the wide one
/// 75 s), and G2 runs on the GPU only in the wide layout unless asked.
#[test]
fn the_other_limb_layout_passes_the_same_checks() {
    use aztec_backend_wgpu::shader::Limbs;
    let other = match gpu().gpu.limbs {
        Limbs::Wide => Limbs::Narrow,
        Limbs::Narrow => {
            println!("this adapter has only the narrow layout: nothing more to check");
            return;
        }
    };
    let (ok, text) = in_child(
        &[
            "field_arithmetic_stays_below_2p_and_is_right_mod_p",
            "msm_matches_arkworks_on_random_inputs",
            "msm_handles_edge_scalars_and_points",
            "ntt_matches_arkworks_forward_inverse_coset_and_batched",
            "ntt_round_trips_and_reduces_non_canonical_input",
            "reports_its_limb_layout",
        ],
        &[(aztec_backend_wgpu::gpu::LIMBS_ENV, other.name())],
    );
    assert!(ok, "{text}");
    assert!(text.contains("6 passed"), "{text}");
    assert!(
        text.contains(&format!("layout: {other:?}")),
        "the child did not run the {other:?} layout: {text}"
    );
}

/// The MSM's work shape can be tuned per device (window width, buckets per
/// `bucket_sums` thread); every shape gives the same sums. Two extremes run
/// the MSM tests again in a child each: 4-bit windows with one bucket per
/// thread, and 15-bit windows with 1024 (16384 buckets a window).
#[test]
fn every_msm_tuning_gives_the_same_sums() {
    use aztec_backend_wgpu::gpu::MAX_BINDING_ENV;
    use aztec_backend_wgpu::msm::{SEGMENT_ENV, WINDOW_ENV};
    for (window, segment) in [("4", "1"), ("15", "1024")] {
        let (ok, text) = in_child(
            &[
                "msm_matches_arkworks_on_random_inputs",
                "msm_handles_edge_scalars_and_points",
                "reports_its_tuning",
            ],
            &[(WINDOW_ENV, window), (SEGMENT_ENV, segment)],
        );
        assert!(
            ok && text.contains("3 passed"),
            "{window}, {segment}: {text}"
        );
        assert!(
            text.contains(&format!("tuning: Some({window}), {segment}")),
            "the child did not take the tuning: {text}"
        );
    }
    // A bad value is an error naming the variable, not a silent default.
    let (ok, text) = in_child(&["reports_its_tuning"], &[(SEGMENT_ENV, "48")]);
    assert!(
        !ok && text.contains("AZTEC_PROVER_WGPU_SEGMENT=\"48\""),
        "{text}"
    );
    // 18-bit windows need 2^17 buckets a window, more than 128 MiB bindings
    // (lavapipe's) hold however few the points: said so, not tried.
    let (ok, text) = in_child(
        &["msm_matches_arkworks_on_random_inputs"],
        &[(WINDOW_ENV, "18"), (MAX_BINDING_ENV, "134217728")],
    );
    assert!(
        !ok && text.contains("18-bit windows needs")
            && text.contains("set AZTEC_PROVER_WGPU_WINDOW lower"),
        "{text}"
    );
}

#[test]
fn reports_its_tuning() {
    let st = gpu();
    println!("tuning: {:?}, {}", st.tuning.window, st.tuning.segment);
}

#[test]
fn reports_its_limb_layout() {
    let st = gpu();
    println!("layout: {:?}", st.gpu.limbs);
    assert!(
        st.gpu
            .describe()
            .contains(&format!("{}-bit limbs", st.gpu.limbs.name()))
    );
}

/// A kernel over the generated field code: for each pair (a, b) it writes
/// a·b/R, a + b, a - b, a made canonical, whether a is zero, and a·a/R by
/// the squaring.
const FIELD_OPS: &str = r#"
@group(0) @binding(1) var<storage, read_write> ins: array<u32>;
@group(0) @binding(2) var<storage, read_write> outs: array<u32>;
fn load_in(at: u32) -> Fe {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = ins[at + k]; }
  return fe_unpack(w);
}
fn store_out(at: u32, a: Fe) {
  let w = fe_pack(a);
  for (var k = 0u; k < 8u; k++) { outs[at + k] = w[k]; }
}
@compute @workgroup_size(64)
fn field_ops(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= params[0]) { return; }
  let a = load_in(16u * i);
  let b = load_in(16u * i + 8u);
  store_out(48u * i, fe_mul(a, b));
  store_out(48u * i + 8u, fe_add(a, b));
  store_out(48u * i + 16u, fe_sub(a, b));
  store_out(48u * i + 24u, fe_canonical(a));
  outs[48u * i + 32u] = select(0u, 1u, fe_is_zero(a));
  store_out(48u * i + 40u, fe_sqr(a));
}
"#;

/// The field code keeps elements almost reduced, in [0, 2p): every result of
/// inputs anywhere in [0, 2p) must be below 2p and right modulo p, zero must
/// be seen as 0 and as p, and `fe_canonical` must give the value below p.
#[test]
fn field_arithmetic_stays_below_2p_and_is_right_mod_p() {
    use ark_bn254::Fq;
    use ark_ff::BigInt;
    use aztec_backend_wgpu::{gpu::Dispatch, shader};
    let st = gpu();
    let src = format!(
        "{}{}{FIELD_OPS}",
        shader::field(&shader::Modulus::of::<Fq>(st.gpu.limbs)),
        shader::COMMON
    );
    let prog = st
        .gpu
        .program("field test", &src, 2, &["field_ops"])
        .expect("the test kernel compiles");
    let p = Fq::MODULUS;
    let mut two_p = p;
    two_p.mul2();
    let plus = |a: BigInt<4>, b: BigInt<4>| {
        let mut s = a;
        s.add_with_carry(&b);
        s
    };
    let minus = |a: BigInt<4>, b: BigInt<4>| {
        let mut s = a;
        s.sub_with_borrow(&b);
        s
    };
    let one = BigInt::<4>::from(1u64);
    // Edges of [0, 2p), then random values and the same values plus p.
    let mut vals = vec![
        BigInt::<4>::zero(),
        one,
        minus(p, one),
        p,
        plus(p, one),
        minus(two_p, one),
    ];
    let mut rng = rng();
    for _ in 0..60 {
        let x = r::sample_fr(1, &mut rng)[0].into_bigint();
        let x = Fq::from_bigint(x).unwrap_or_default().into_bigint();
        vals.push(x);
        vals.push(plus(x, p));
    }
    let pairs: Vec<(BigInt<4>, BigInt<4>)> = vals
        .iter()
        .flat_map(|a| vals.iter().step_by(7).map(move |b| (*a, *b)))
        .collect();
    let n = pairs.len();
    let mut input = Vec::with_capacity(n * 64);
    for (a, b) in &pairs {
        input.extend_from_slice(&a.to_bytes_le());
        input.extend_from_slice(&b.to_bytes_le());
    }
    let b_in = st
        .gpu
        .buffer("test.field.in", input.len() as u64)
        .expect("buffer");
    let b_out = st
        .gpu
        .buffer("test.field.out", n as u64 * 192)
        .expect("buffer");
    st.gpu.upload(&[(&b_in, &input)]).expect("upload");
    let mut out = vec![0u8; n * 192];
    st.gpu
        .run(
            &prog,
            &[&b_in, &b_out],
            &[Dispatch::new("field_ops", n as u64, &[n as u32])],
            &mut [(&b_out, 0, &mut out)],
        )
        .expect("run");
    let r_inv = Fq::from(2u64)
        .pow([st.gpu.limbs.r_bits() as u64])
        .inverse()
        .expect("invertible");
    let fq = |v: BigInt<4>| Fq::from_le_bytes_mod_order(&v.to_bytes_le());
    for (k, (a, b)) in pairs.iter().enumerate() {
        let o = &out[192 * k..192 * k + 192];
        let word = |at: usize| {
            let limbs: [u64; 4] = std::array::from_fn(|i| {
                u64::from_le_bytes(o[at + 8 * i..at + 8 * i + 8].try_into().expect("8 bytes"))
            });
            BigInt(limbs)
        };
        let what = format!("a = {a}, b = {b}");
        let (a_f, b_f) = (fq(*a), fq(*b));
        for (at, want, name) in [
            (0, a_f * b_f * r_inv, "a·b/R"),
            (32, a_f + b_f, "a + b"),
            (64, a_f - b_f, "a - b"),
            (160, a_f * a_f * r_inv, "a·a/R (squaring)"),
        ] {
            let got = word(at);
            assert!(got < two_p, "{name} = {got} is not below 2p ({what})");
            assert_eq!(fq(got), want, "{name} ({what})");
        }
        let canonical = word(96);
        assert!(canonical < p, "canonical a = {canonical} ({what})");
        assert_eq!(fq(canonical), a_f, "canonical a ({what})");
        assert_eq!(o[128] == 1, a_f.is_zero(), "is a zero? ({what})");
    }
}

fn check_ntt(log_n: u32, batch: usize, inverse: bool, coset: Option<Fr>) {
    let mut rng = rng();
    let n = 1usize << log_n;
    let vals = r::sample_fr(n * batch, &mut rng);
    let mut got = r::encode_fr(&vals);
    let g = coset.map(|g| r::fr_bytes(&g));
    gpu()
        .ntt(&mut got, log_n, inverse, g.as_ref())
        .expect("ntt");
    let mut want = Vec::new();
    for v in vals.chunks(n) {
        let mut v = v.to_vec();
        r::ntt_native(&mut v, inverse, coset);
        want.extend(v);
    }
    assert_eq!(
        got,
        r::encode_fr(&want),
        "2^{log_n} x{batch} inverse={inverse} coset={}",
        coset.is_some()
    );
}

#[test]
fn ntt_matches_arkworks_forward_inverse_coset_and_batched() {
    let g = Fr::from(7u64);
    for log_n in [1u32, 2, 3, 5, 8, 11] {
        check_ntt(log_n, 1, false, None);
        check_ntt(log_n, 1, true, None);
        check_ntt(log_n, 1, false, Some(g));
        check_ntt(log_n, 1, true, Some(g));
    }
    check_ntt(6, 5, false, Some(g));
    check_ntt(6, 3, true, None);
}

#[test]
fn ntt_round_trips_and_reduces_non_canonical_input() {
    // 2^256 - 1 in every slot: reduced on the way in.
    let log_n = 4;
    let mut data = vec![0xffu8; 32 << log_n];
    let reduced = r::fr_from_bytes(&[0xff; 32]);
    gpu().ntt(&mut data, log_n, false, None).expect("forward");
    gpu().ntt(&mut data, log_n, true, None).expect("inverse");
    assert_eq!(data, r::encode_fr(&vec![reduced; 1 << log_n]));
    // Size 1: the identity, reduced.
    let mut one = vec![0xffu8; 32];
    gpu()
        .ntt(&mut one, 0, true, Some(&r::fr_bytes(&Fr::from(3u64))))
        .expect("n = 1");
    assert_eq!(one, r::fr_bytes(&reduced).to_vec());
    let e = gpu()
        .ntt(&mut data, log_n, false, Some(&[0u8; 32]))
        .expect_err("zero coset");
    assert!(e.to_string().contains("coset"), "{e}");
}

#[test]
fn the_library_serves_the_abi() {
    let lib = test_library();
    let b = aztec_backend_abi::Backend::load_path(&lib).expect("load the wgpu backend");
    assert_eq!(b.info().name, "wgpu");
    let mut rng = rng();
    let pts = r::sample_g1(50, &mut rng);
    let sc = r::sample_fr(50, &mut rng);
    let got = b
        .msm_g1(&r::encode_g1(&pts), &r::encode_fr(&sc))
        .expect("msm_g1");
    assert_eq!(got, r::g1_bytes(&r::msm_g1_native(&pts, &sc)));
    let prepared = b.prepare_g1(&r::encode_g1(&pts)).expect("prepare");
    for _ in 0..2 {
        let sc = r::sample_fr(50, &mut rng);
        let got = prepared.msm(&r::encode_fr(&sc)).expect("prepared msm_g1");
        assert_eq!(got, r::g1_bytes(&r::msm_g1_native(&pts, &sc)));
    }
    drop(prepared);
    let mut bad = r::encode_g1(&pts);
    bad[64 * 7 + 63] = 0xff;
    let e = b.prepare_g1(&bad).expect_err("a y above p").to_string();
    assert!(e.to_string().contains("point 7: its y coordinate"), "{e}");
    // G2 goes to the CPU backend beside it.
    let p2 = r::sample_g2(20, &mut rng);
    let s2 = r::sample_fr(20, &mut rng);
    match b.msm_g2(&r::encode_g2(&p2), &r::encode_fr(&s2)) {
        Ok(got) => assert_eq!(got, r::g2_bytes(&r::msm_g2_native(&p2, &s2))),
        Err(e) => assert!(e.to_string().contains("CPU backend"), "{e}"),
    }
    let mut data = r::encode_fr(&r::sample_fr(64, &mut rng));
    let want = {
        let mut v: Vec<Fr> = data.chunks(32).map(r::fr_from_bytes).collect();
        r::ntt_native(&mut v, false, None);
        r::encode_fr(&v)
    };
    b.ntt(&mut data, 6, false, None).expect("ntt");
    assert_eq!(data, want);
    let err = b
        .msm_g1(&[0xffu8; 64], &[1u8; 32])
        .expect_err("a point off the field is refused");
    assert!(
        err.to_string().contains("not below the field modulus"),
        "{err}"
    );
}

/// The kept vectors of ABI version 3 through the library: the QAP's steps
/// on the device equal arkworks on the host, and bad use is refused.
#[test]
fn kept_vectors_follow_the_reference() {
    let b = aztec_backend_abi::Backend::load_path(&test_library()).expect("load");
    assert!(
        b.info().capabilities & aztec_backend_abi::ffi::caps::KEPT_VECTORS != 0,
        "the wgpu backend says kept vectors save transfers"
    );
    let mut rng = rng();
    for log_n in [1, 5, 10] {
        aztec_backend_abi::conformance::kept_vectors_follow_the_reference(&b, log_n, &mut rng);
    }
    aztec_backend_abi::conformance::kept_vectors_refuse_bad_use(&b, &mut rng);
}

/// `configure` (which sizes the CPU fallback's pool) refuses CPU ids this
/// process may not run on, before any pool is built with them.
#[test]
fn configure_refuses_cpus_the_process_cannot_run_on() {
    let b = aztec_backend_abi::Backend::load_path(&test_library()).expect("load");
    let e = b.configure(1, &[5000]).expect_err("no CPU 5000");
    assert!(e.to_string().contains("CPU 5000 is not one"), "{e}");
    let mut rng = rng();
    let p2 = r::sample_g2(8, &mut rng);
    let s2 = r::sample_fr(8, &mut rng);
    let got = b
        .msm_g2(&r::encode_g2(&p2), &r::encode_fr(&s2))
        .expect("G2 (the CPU fallback on lavapipe) still runs");
    assert_eq!(got, r::g2_bytes(&r::msm_g2_native(&p2, &s2)));
}

/// Options reach the library through the loader and are checked there.
#[test]
fn options_are_checked_when_the_library_loads() {
    let load = |k: &str, v: &str| {
        aztec_backend_abi::Backend::load_path_with(&test_library(), &[(k.into(), v.into())])
    };
    let e = load("wgpu.window", "40").expect_err("a window too wide");
    assert!(e.to_string().contains("wgpu.window=\"40\""), "{e}");
    let e = load("wgpu.api", "directx").expect_err("no such API");
    assert!(e.to_string().contains("is not an API"), "{e}");
    assert!(
        load("wgpu.trace", "0").is_ok(),
        "trace may change at any time"
    );
    assert!(
        load("cpu.path", "auto").is_ok(),
        "not the wgpu backend's option"
    );
}

/// The cdylib cargo built for this test run (target/<profile>/deps or beside it).
fn test_library() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    for dir in [
        deps.to_path_buf(),
        deps.parent().expect("profile dir").to_path_buf(),
    ] {
        let p = dir.join("libaztec_backend_wgpu.so");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "libaztec_backend_wgpu.so is not built next to {}",
        exe.display()
    );
}

#[test]
fn a_missing_adapter_is_a_clear_error() {
    // Ask for an adapter that cannot exist, in a child process (the choice is made once per process).
    let (ok, text) = in_child(
        &["child_reports_missing_adapter"],
        &[("AZTEC_PROVER_WGPU_ADAPTER", "no-such-gpu-anywhere")],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "child saw: AZTEC_PROVER_WGPU_ADAPTER=\"no-such-gpu-anywhere\" matches no adapter"
        ),
        "{text}"
    );
}

#[test]
fn child_reports_missing_adapter() {
    if std::env::var("CHILD_CHECK").is_err() {
        return;
    }
    match state() {
        Ok(_) => panic!("an adapter was chosen"),
        Err(e) => println!("child saw: {e}"),
    }
}

/// The programs a proof uses compile ahead of their first call (on a GPU
/// this starts when the device opens), and the calls after it use them.
#[test]
fn warm_up_compiles_what_a_proof_uses() {
    let st = gpu();
    st.warm_up();
    let mut rng = rng();
    let pts = r::sample_g1(16, &mut rng);
    check_msm(&pts, &r::sample_fr(16, &mut rng), "after the warm-up");
    check_ntt(4, 1, false, None);
}

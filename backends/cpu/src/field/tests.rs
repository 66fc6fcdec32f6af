//! Field arithmetic against arkworks, on random and edge values.

use ark_ff::{BigInteger, Field as _, PrimeField, UniformRand};
use ark_std::rand::{SeedableRng, rngs::StdRng};

use super::fq2::Fq2;
use super::*;

fn ours_fq(x: &ark_bn254::Fq) -> Fq {
    Fq::from_canonical(x.into_bigint().0)
}
fn ours_fr(x: &ark_bn254::Fr) -> Fr {
    Fr::from_canonical(x.into_bigint().0)
}
fn theirs_fq(x: &Fq) -> ark_bn254::Fq {
    ark_bn254::Fq::from_bigint(ark_ff::BigInt(x.to_canonical())).unwrap()
}

fn edge_fq() -> Vec<ark_bn254::Fq> {
    let one = ark_bn254::Fq::from(1u64);
    vec![
        ark_bn254::Fq::from(0u64),
        one,
        -one,
        ark_bn254::Fq::from(2u64),
        -ark_bn254::Fq::from(2u64),
    ]
}

#[test]
fn derived_constants_match_arkworks() {
    assert_eq!(FqParams::R, ark_bn254::Fq::from(1u64).0.0, "Fq R");
    assert_eq!(FrParams::R, ark_bn254::Fr::from(1u64).0.0, "Fr R");
    assert_eq!(FqParams::MODULUS, ark_bn254::Fq::MODULUS.0);
    assert_eq!(FrParams::MODULUS, ark_bn254::Fr::MODULUS.0);
}

#[test]
fn fq_operations_match_arkworks() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut values: Vec<ark_bn254::Fq> = (0..200).map(|_| ark_bn254::Fq::rand(&mut rng)).collect();
    values.extend(edge_fq());
    for a in &values {
        for b in values.iter().take(20) {
            let (x, y) = (ours_fq(a), ours_fq(b));
            assert_eq!(theirs_fq(&x.mul(&y)), *a * b);
            assert_eq!(theirs_fq(&x.add(&y)), *a + b);
            assert_eq!(theirs_fq(&x.sub(&y)), *a - b);
        }
        let x = ours_fq(a);
        assert_eq!(theirs_fq(&x.square()), a.square());
        assert_eq!(theirs_fq(&x.neg()), -*a);
        assert_eq!(x.inverse().map(|i| theirs_fq(&i)), a.inverse());
        assert_eq!(x.to_bytes().to_vec(), a.into_bigint().to_bytes_le());
    }
}

#[test]
fn fr_operations_match_arkworks() {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..500 {
        let (a, b) = (ark_bn254::Fr::rand(&mut rng), ark_bn254::Fr::rand(&mut rng));
        let (x, y) = (ours_fr(&a), ours_fr(&b));
        assert_eq!(x.mul(&y).to_canonical(), (a * b).into_bigint().0);
        assert_eq!(x.sub(&y).to_canonical(), (a - b).into_bigint().0);
    }
}

#[test]
fn batch_inverse_skips_zeros() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut v: Vec<Fq> = (0..50)
        .map(|_| ours_fq(&ark_bn254::Fq::rand(&mut rng)))
        .collect();
    v[7] = Fq::ZERO;
    let want: Vec<Fq> = v.iter().map(|x| x.inverse().unwrap_or(Fq::ZERO)).collect();
    Fq::batch_inverse(&mut v);
    assert_eq!(v, want);
}

#[test]
fn reduction_handles_values_above_the_modulus() {
    let all_ones = [u64::MAX; 4];
    let r = Fr::reduce(all_ones);
    let want = ark_bn254::Fr::from_le_bytes_mod_order(&[0xff; 32])
        .into_bigint()
        .0;
    assert_eq!(r, want);
    assert!(Fr::from_bytes_canonical(&[0xff; 32]).is_none());
}

#[test]
fn fq2_matches_arkworks() {
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..200 {
        let (a, b) = (
            ark_bn254::Fq2::rand(&mut rng),
            ark_bn254::Fq2::rand(&mut rng),
        );
        let x = Fq2::new(ours_fq(&a.c0), ours_fq(&a.c1));
        let y = Fq2::new(ours_fq(&b.c0), ours_fq(&b.c1));
        let back = |z: Fq2| ark_bn254::Fq2::new(theirs_fq(&z.c0), theirs_fq(&z.c1));
        assert_eq!(back(Field::mul(&x, &y)), a * b);
        assert_eq!(back(Field::square(&x)), a.square());
        assert_eq!(back(Field::inverse(&x).unwrap()), a.inverse().unwrap());
    }
}

#[test]
fn fq2_products_at_the_edges_match_arkworks() {
    // Parts 0, 1, 2, q - 1, q - 2 and (q - 1) / 2 in every combination:
    // the wide Karatsuba's sums and differences at their extremes.
    let minus = |k: u64| -ark_bn254::Fq::from(k);
    let parts = [
        ark_bn254::Fq::from(0u64),
        ark_bn254::Fq::from(1u64),
        ark_bn254::Fq::from(2u64),
        minus(1),
        minus(2),
        -ark_bn254::Fq::from(2u64).inverse().unwrap(),
    ];
    let back = |z: Fq2| ark_bn254::Fq2::new(theirs_fq(&z.c0), theirs_fq(&z.c1));
    for a0 in parts {
        for a1 in parts {
            for b0 in parts {
                for b1 in parts {
                    let (a, b) = (ark_bn254::Fq2::new(a0, a1), ark_bn254::Fq2::new(b0, b1));
                    let x = Fq2::new(ours_fq(&a.c0), ours_fq(&a.c1));
                    let y = Fq2::new(ours_fq(&b.c0), ours_fq(&b.c1));
                    assert_eq!(back(Field::mul(&x, &y)), a * b, "{a} * {b}");
                }
            }
        }
    }
}

/// `k * m + x` as limbs (no overflow for the values used here).
fn times_m_plus<P: FieldParams>(k: u64, x: [u64; 4]) -> [u64; 4] {
    let mut out = x;
    for _ in 0..k {
        let mut c = 0u64;
        for (o, m) in out.iter_mut().zip(P::MODULUS) {
            *o = adc(*o, m, &mut c);
        }
        assert_eq!(c, 0);
    }
    out
}

fn below<P: FieldParams>(a: &[u64; 4], k: u64) -> bool {
    let bound = times_m_plus::<P>(k, [0; 4]);
    (0..4)
        .rev()
        .find(|&i| a[i] != bound[i])
        .is_some_and(|i| a[i] < bound[i])
}

fn lazy_multiplication_on<P: FieldParams>(adx: bool) {
    assert!(Fp::<P>::LAZY_OK);
    let mut rng = StdRng::seed_from_u64(27);
    let mut random_below_m = || {
        Fp::<P>::reduce(std::array::from_fn(|_| {
            ark_std::rand::RngCore::next_u64(&mut rng)
        }))
    };
    let m_minus = |k: u64| {
        let mut v = P::MODULUS;
        v[0] -= k;
        v
    };
    let mut lefts = Vec::new();
    for k in 0..4 {
        for x in [
            [0; 4],
            [1, 0, 0, 0],
            m_minus(1),
            random_below_m(),
            random_below_m(),
        ] {
            lefts.push((times_m_plus::<P>(k, x), x));
        }
    }
    let rights = [
        [0; 4],
        [1, 0, 0, 0],
        m_minus(1),
        random_below_m(),
        random_below_m(),
    ];
    if adx {
        super::adx::enable();
    }
    for (wide, reduced) in &lefts {
        for b in &rights {
            let lazy = Fp::<P>::from_mont(*wide).mul_lazy(&Fp::from_mont(*b));
            assert!(below::<P>(&lazy.0, 2), "{wide:x?} * {b:x?} not below 2m");
            let exact = Fp::<P>::from_mont(*reduced).mul_portable(&Fp::from_mont(*b));
            assert_eq!(lazy.reduce_once(), exact, "{wide:x?} * {b:x?}");
        }
    }
    // Two lazy values (below 2m) into the reducing product and square:
    // canonical results; into the lazy product: below 2m again.
    let lazies: Vec<_> = lefts
        .iter()
        .filter(|(wide, _)| below::<P>(wide, 2))
        .collect();
    for (wa, ra) in &lazies {
        for (wb, rb) in &lazies {
            let got = Fp::<P>::from_mont(*wa).mul(&Fp::from_mont(*wb));
            let exact = Fp::<P>::from_mont(*ra).mul_portable(&Fp::from_mont(*rb));
            assert_eq!(got, exact, "{wa:x?} * {wb:x?}");
            let lazy = Fp::<P>::from_mont(*wa).mul_lazy(&Fp::from_mont(*wb));
            assert!(
                below::<P>(&lazy.0, 2),
                "{wa:x?} * {wb:x?} lazy, not below 2m"
            );
            assert_eq!(lazy.reduce_once(), exact, "{wa:x?} * {wb:x?} lazy");
        }
        let got = Fp::<P>::from_mont(*wa).square();
        let exact = Fp::<P>::from_mont(*ra).mul_portable(&Fp::from_mont(*ra));
        assert_eq!(got, exact, "{wa:x?} squared");
    }
}

#[test]
fn lazy_products_take_below_4m_give_below_2m_and_feed_reducing_products_on_the_portable_path() {
    lazy_multiplication_on::<FrParams>(false);
    lazy_multiplication_on::<FqParams>(false);
}

#[test]
fn lazy_products_take_below_4m_give_below_2m_and_feed_reducing_products_on_the_adx_path() {
    if !super::adx::cpu_has_adx() {
        assert!(
            std::env::var("AZTEC_PROVER_TEST_ALLOW_SKIP").is_ok_and(|v| v == "1"),
            "this CPU has no BMI2/ADX (AZTEC_PROVER_TEST_ALLOW_SKIP=1 skips this test)"
        );
        return;
    }
    lazy_multiplication_on::<FrParams>(true);
    lazy_multiplication_on::<FqParams>(true);
}

//! The reference implementation of every backend operation, on arkworks,
//! with the ABI's byte encodings. Tests compare backends against it and the
//! kernel benchmark times it. Never on a proving hot path.

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::{BigInteger, PrimeField, UniformRand};
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use ark_std::rand::Rng;

use crate::ffi::{G1_BYTES, G2_BYTES, SCALAR_BYTES};

/// A field element of Fq as 32 bytes LE.
pub fn fq_bytes(x: &Fq) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&x.into_bigint().to_bytes_le());
    out
}

/// An Fr element as 32 bytes LE.
pub fn fr_bytes(x: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, l) in out.chunks_mut(8).zip(x.into_bigint().0) {
        o.copy_from_slice(&l.to_le_bytes());
    }
    out
}

/// Reads 32 bytes LE as an Fr element, reducing modulo r (a canonical value,
/// the usual case, takes one conversion into Montgomery form).
pub fn fr_from_bytes(b: &[u8]) -> Fr {
    let mut limbs = [0u64; 4];
    for (l, c) in limbs.iter_mut().zip(b.chunks(8)) {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        *l = u64::from_le_bytes(w);
    }
    match b.len() {
        32 => Fr::from_bigint(ark_ff::BigInt(limbs)),
        _ => None,
    }
    .unwrap_or_else(|| Fr::from_le_bytes_mod_order(b))
}

fn fq_from_bytes(b: &[u8]) -> Option<Fq> {
    let mut limbs = [0u64; 4];
    for (i, l) in limbs.iter_mut().enumerate() {
        *l = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().ok()?);
    }
    Fq::from_bigint(ark_ff::BigInt(limbs))
}

/// A G1 point in the ABI encoding.
pub fn g1_bytes(p: &G1Affine) -> [u8; G1_BYTES] {
    let mut out = [0u8; G1_BYTES];
    if !p.is_zero() {
        out[..32].copy_from_slice(&fq_bytes(&p.x));
        out[32..].copy_from_slice(&fq_bytes(&p.y));
    }
    out
}

/// Decodes a G1 point (`None` if a coordinate is not canonical).
pub fn g1_from_bytes(b: &[u8]) -> Option<G1Affine> {
    if b.iter().all(|x| *x == 0) {
        return Some(G1Affine::zero());
    }
    Some(G1Affine::new_unchecked(
        fq_from_bytes(&b[..32])?,
        fq_from_bytes(&b[32..64])?,
    ))
}

/// A G2 point in the ABI encoding.
pub fn g2_bytes(p: &G2Affine) -> [u8; G2_BYTES] {
    let mut out = [0u8; G2_BYTES];
    if !p.is_zero() {
        out[..32].copy_from_slice(&fq_bytes(&p.x.c0));
        out[32..64].copy_from_slice(&fq_bytes(&p.x.c1));
        out[64..96].copy_from_slice(&fq_bytes(&p.y.c0));
        out[96..].copy_from_slice(&fq_bytes(&p.y.c1));
    }
    out
}

/// Decodes a G2 point.
pub fn g2_from_bytes(b: &[u8]) -> Option<G2Affine> {
    if b.iter().all(|x| *x == 0) {
        return Some(G2Affine::zero());
    }
    let x = Fq2::new(fq_from_bytes(&b[..32])?, fq_from_bytes(&b[32..64])?);
    let y = Fq2::new(fq_from_bytes(&b[64..96])?, fq_from_bytes(&b[96..128])?);
    Some(G2Affine::new_unchecked(x, y))
}

/// G1 MSM with arkworks.
pub fn msm_g1(points: &[u8], scalars: &[u8]) -> [u8; G1_BYTES] {
    let pts: Vec<G1Affine> = points
        .chunks(G1_BYTES)
        .map(|c| g1_from_bytes(c).unwrap_or_default())
        .collect();
    let sc: Vec<Fr> = scalars.chunks(SCALAR_BYTES).map(fr_from_bytes).collect();
    g1_bytes(&G1Projective::msm_unchecked(&pts, &sc).into_affine())
}

/// G1 MSM with arkworks on already-decoded values (for timing the kernel alone).
pub fn msm_g1_native(points: &[G1Affine], scalars: &[Fr]) -> G1Affine {
    G1Projective::msm_unchecked(points, scalars).into_affine()
}

/// G2 MSM with arkworks.
pub fn msm_g2(points: &[u8], scalars: &[u8]) -> [u8; G2_BYTES] {
    let pts: Vec<G2Affine> = points
        .chunks(G2_BYTES)
        .map(|c| g2_from_bytes(c).unwrap_or_default())
        .collect();
    let sc: Vec<Fr> = scalars.chunks(SCALAR_BYTES).map(fr_from_bytes).collect();
    g2_bytes(&G2Projective::msm_unchecked(&pts, &sc).into_affine())
}

/// G2 MSM with arkworks on decoded values.
pub fn msm_g2_native(points: &[G2Affine], scalars: &[Fr]) -> G2Affine {
    G2Projective::msm_unchecked(points, scalars).into_affine()
}

/// NTT with ark-poly's radix-2 domain (and its coset), in place, on bytes.
pub fn ntt(data: &mut [u8], log_n: u32, inverse: bool, coset: Option<&[u8; 32]>) {
    let n = 1usize << log_n;
    for vector in data.chunks_mut(n * SCALAR_BYTES) {
        let mut v: Vec<Fr> = vector.chunks(SCALAR_BYTES).map(fr_from_bytes).collect();
        ntt_native(&mut v, inverse, coset.map(|c| fr_from_bytes(c)));
        for (chunk, x) in vector.chunks_mut(SCALAR_BYTES).zip(&v) {
            chunk.copy_from_slice(&fr_bytes(x));
        }
    }
}

/// NTT with ark-poly on decoded values.
pub fn ntt_native(v: &mut Vec<Fr>, inverse: bool, coset: Option<Fr>) {
    let Some(mut domain) = Radix2EvaluationDomain::<Fr>::new(v.len()) else {
        return;
    };
    if let Some(g) = coset
        && let Some(d) = domain.get_coset(g)
    {
        domain = d;
    }
    if inverse {
        domain.ifft_in_place(v)
    } else {
        domain.fft_in_place(v)
    }
}

/// `n` distinct G1 points that are cheap to make: `start + i * step` for random `start`, `step`.
pub fn sample_g1<R: Rng>(n: usize, rng: &mut R) -> Vec<G1Affine> {
    let step = G1Projective::generator() * Fr::rand(rng);
    let mut acc = G1Projective::generator() * Fr::rand(rng);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(acc);
        acc += step;
    }
    G1Projective::normalize_batch(&out)
}

/// `n` distinct G2 points, as [`sample_g1`].
pub fn sample_g2<R: Rng>(n: usize, rng: &mut R) -> Vec<G2Affine> {
    let step = G2Projective::generator() * Fr::rand(rng);
    let mut acc = G2Projective::generator() * Fr::rand(rng);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(acc);
        acc += step;
    }
    G2Projective::normalize_batch(&out)
}

/// `n` random scalars.
pub fn sample_fr<R: Rng>(n: usize, rng: &mut R) -> Vec<Fr> {
    (0..n).map(|_| Fr::rand(rng)).collect()
}

/// Concatenated encodings.
pub fn encode_g1(points: &[G1Affine]) -> Vec<u8> {
    points.iter().flat_map(g1_bytes).collect()
}

/// Concatenated encodings.
pub fn encode_g2(points: &[G2Affine]) -> Vec<u8> {
    points.iter().flat_map(g2_bytes).collect()
}

/// Concatenated encodings.
pub fn encode_fr(values: &[Fr]) -> Vec<u8> {
    values.iter().flat_map(fr_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{PrimeField, UniformRand};

    #[test]
    fn scalar_bytes_round_trip_and_reduce_like_arkworks() {
        let mut rng = ark_std::test_rng();
        for _ in 0..200 {
            let x = Fr::rand(&mut rng);
            let b = fr_bytes(&x);
            assert_eq!(b.to_vec(), x.into_bigint().to_bytes_le());
            assert_eq!(fr_from_bytes(&b), x);
        }
        let r_bytes = Fr::MODULUS.to_bytes_le();
        let mut r_minus_1 = r_bytes.clone();
        r_minus_1[0] -= 1; // r is odd
        for b in [vec![0xff; 32], r_bytes, r_minus_1, vec![0; 32], vec![7; 5]] {
            assert_eq!(fr_from_bytes(&b), Fr::from_le_bytes_mod_order(&b), "{b:x?}");
        }
    }
}

//! The reference implementation of every backend operation, on arkworks,
//! with the ABI's byte encodings ([`crate::codec`], re-exported here for the
//! tests and benchmarks that use both). Tests compare backends against it
//! and the kernel benchmark times it. Never on a proving hot path.

use ark_bn254::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::UniformRand;
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use ark_std::rand::Rng;

pub use crate::codec::*;
use crate::ffi::{G1_BYTES, G2_BYTES, SCALAR_BYTES};

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

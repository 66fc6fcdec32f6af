//! The ABI's byte encodings of field elements, scalars and points, on
//! arkworks types: what a caller sends a backend and reads back. The prover
//! uses it on every proof; the arkworks oracle ([`crate::reference`]) speaks
//! it too.

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField};

use crate::ffi::{G1_BYTES, G2_BYTES};

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
    use ark_ff::UniformRand;

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

//! Proofs and verifying keys in the form the EVM's BN254 precompiles take:
//! coordinates as 32-byte big-endian words, G2 coordinates `c1` before `c0`
//! (EIP-197), the point at infinity as zeros. The L1 verifier
//! (`daemons/l1/contracts/Groth16EpochVerifier.sol`) reads exactly these.

use ark_bn254::{Fq, Fq2, G1Affine, G2Affine};
use ark_ff::{BigInteger, PrimeField};

use super::{Proof, VerifyingKey};

/// A 32-byte big-endian word.
pub type Word = [u8; 32];

fn fq(x: &Fq) -> Word {
    let mut w = [0u8; 32];
    w.copy_from_slice(&x.into_bigint().to_bytes_be());
    w
}

fn fq2(x: &Fq2) -> [Word; 2] {
    [fq(&x.c1), fq(&x.c0)]
}

/// x, y of a G1 point.
pub fn g1(p: &G1Affine) -> [Word; 2] {
    if p.infinity {
        return [[0; 32]; 2];
    }
    [fq(&p.x), fq(&p.y)]
}

/// x.c1, x.c0, y.c1, y.c0 of a G2 point.
pub fn g2(p: &G2Affine) -> [Word; 4] {
    if p.infinity {
        return [[0; 32]; 4];
    }
    let [a, b] = fq2(&p.x);
    let [c, d] = fq2(&p.y);
    [a, b, c, d]
}

/// A proof as A.x, A.y, B (4 words), C.x, C.y.
pub fn proof_words(p: &Proof) -> [Word; 8] {
    let a = g1(&p.a);
    let b = g2(&p.b);
    let c = g1(&p.c);
    [a[0], a[1], b[0], b[1], b[2], b[3], c[0], c[1]]
}

/// A verifying key in the verifier contract's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VkWords {
    /// alpha in G1.
    pub alpha: [Word; 2],
    /// beta in G2.
    pub beta: [Word; 4],
    /// gamma in G2.
    pub gamma: [Word; 4],
    /// delta in G2.
    pub delta: [Word; 4],
    /// The input commitments (`gamma_abc`), x and y of each in turn.
    pub ic: Vec<Word>,
}

/// `vk` in the verifier contract's layout.
pub fn vk_words(vk: &VerifyingKey) -> VkWords {
    VkWords {
        alpha: g1(&vk.alpha_g1),
        beta: g2(&vk.beta_g2),
        gamma: g2(&vk.gamma_g2),
        delta: g2(&vk.delta_g2),
        ic: vk.gamma_abc_g1.iter().flat_map(g1).collect(),
    }
}

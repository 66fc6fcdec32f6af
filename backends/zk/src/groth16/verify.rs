//! Verification, one proof at a time or many at once.
//!
//! A proof `(A, B, C)` of public inputs `x` under a key verifies when
//! `e(A, B) = e(alpha, beta) · e(IC(x), gamma) · e(C, delta)` with
//! `IC(x) = gamma_abc[0] + sum x_j gamma_abc[j+1]`. A batch of n proofs is
//! checked with random 128-bit weights `rho_i` in one product of
//! `n + 3·(distinct keys)` Miller loops and a single final exponentiation:
//! `prod e(rho_i A_i, B_i) · prod_keys e(-(sum rho_i) alpha, beta)
//! · e(-sum rho_i IC_i, gamma) · e(-sum rho_i C_i, delta) = 1`.
//! A batch with any invalid proof passes with probability about 2^-128.

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::pairing::Pairing;
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::Zero;
use ark_std::rand::Rng;

use super::{Proof, VerifyingKey};
use crate::felt::Felt;

/// Why a proof could not even be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The number of public inputs does not match the key.
    #[error("proof {index}: {found} public inputs, the key takes {expected}")]
    InputCount {
        /// Position in the batch.
        index: usize,
        /// What the key takes.
        expected: usize,
        /// What was given.
        found: usize,
    },
}

/// One proof to check.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// Its key.
    pub vk: &'a VerifyingKey,
    /// Its public inputs.
    pub inputs: &'a [Felt],
    /// The proof.
    pub proof: &'a Proof,
}

/// Checks one proof.
pub fn verify(vk: &VerifyingKey, inputs: &[Felt], proof: &Proof) -> Result<bool, VerifyError> {
    verify_batch(
        &[Item { vk, inputs, proof }],
        &mut ark_std::rand::thread_rng(),
    )
}

/// Checks many proofs (of any mix of keys) at once.
pub fn verify_batch<R: Rng>(items: &[Item<'_>], rng: &mut R) -> Result<bool, VerifyError> {
    for (index, it) in items.iter().enumerate() {
        let expected = it.vk.gamma_abc_g1.len().saturating_sub(1);
        if it.inputs.len() != expected {
            return Err(VerifyError::InputCount {
                index,
                expected,
                found: it.inputs.len(),
            });
        }
    }
    if items.is_empty() {
        return Ok(true);
    }
    // Group the items by key (keys are compared by address, then by value).
    let mut groups: Vec<(&VerifyingKey, Vec<(Fr, &Item<'_>)>)> = Vec::new();
    let mut g1s: Vec<G1Affine> = Vec::with_capacity(items.len());
    let mut g2s: Vec<G2Affine> = Vec::with_capacity(items.len());
    for it in items {
        let rho = loop {
            let r = Fr::from(rng.r#gen::<u128>());
            if !r.is_zero() {
                break r;
            }
        };
        g1s.push((it.proof.a * rho).into_affine());
        g2s.push(it.proof.b);
        match groups
            .iter_mut()
            .find(|(vk, _)| std::ptr::eq(*vk, it.vk) || **vk == *it.vk)
        {
            Some((_, v)) => v.push((rho, it)),
            None => groups.push((it.vk, vec![(rho, it)])),
        }
    }
    for (vk, members) in &groups {
        let sum_rho: Fr = members.iter().map(|(r, _)| *r).sum();
        // sum_i rho_i IC_i = (sum rho_i) gamma_abc[0] + sum_j (sum_i rho_i x_ij) gamma_abc[j+1]
        let mut scalars = vec![sum_rho];
        scalars.extend((0..vk.gamma_abc_g1.len() - 1).map(|j| {
            members
                .iter()
                .map(|(r, it)| *r * it.inputs[j].0)
                .sum::<Fr>()
        }));
        let ic = G1Projective::msm(&vk.gamma_abc_g1, &scalars).unwrap_or_default();
        let cs: Vec<G1Affine> = members.iter().map(|(_, it)| it.proof.c).collect();
        let rhos: Vec<Fr> = members.iter().map(|(r, _)| *r).collect();
        let c = G1Projective::msm(&cs, &rhos).unwrap_or_default();
        g1s.push((-(vk.alpha_g1 * sum_rho)).into_affine());
        g2s.push(vk.beta_g2);
        g1s.push((-ic).into_affine());
        g2s.push(vk.gamma_g2);
        g1s.push((-c).into_affine());
        g2s.push(vk.delta_g2);
    }
    Ok(Bn254::multi_pairing(g1s, g2s).is_zero())
}

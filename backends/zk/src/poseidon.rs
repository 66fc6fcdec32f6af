//! Poseidon over BN254's Fr, natively and as constraints.
//!
//! Parameters: width 3 (rate 2, capacity 1), S-box x^5, 8 full and 57
//! partial rounds, round constants and MDS matrix from the Grain LFSR of the
//! Poseidon paper (`find_poseidon_ark_and_mds(254, 2, 8, 57, 0)` of
//! ark-crypto-primitives). These are the round numbers the Poseidon paper
//! gives for 128-bit security at t = 3, alpha = 5 over a 254-bit prime
//! (the same as circomlib's t = 3 instance; the constants differ).
//!
//! Two forms: `hash2(a, b)`, the Merkle node compression (one permutation),
//! and `hash(tag, inputs)`, a sponge over a domain tag and a fixed-length input,
//! so hashes of different kinds of data never collide with each other.

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_crypto_primitives::crh::poseidon::constraints::{
    CRHGadget, CRHParametersVar, TwoToOneCRHGadget,
};
use ark_crypto_primitives::crh::poseidon::{CRH, TwoToOneCRH};
use ark_crypto_primitives::crh::{
    CRHScheme, CRHSchemeGadget, TwoToOneCRHScheme, TwoToOneCRHSchemeGadget,
};
use ark_crypto_primitives::sponge::poseidon::{PoseidonConfig, find_poseidon_ark_and_mds};
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::SynthesisError;

/// Full rounds.
pub const FULL_ROUNDS: usize = 8;
/// Partial rounds.
pub const PARTIAL_ROUNDS: usize = 57;
/// S-box exponent.
pub const ALPHA: u64 = 5;

/// The parameters (built once).
pub fn config() -> &'static PoseidonConfig<Fr> {
    static CONFIG: OnceLock<PoseidonConfig<Fr>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let (ark, mds) =
            find_poseidon_ark_and_mds::<Fr>(254, 2, FULL_ROUNDS as u64, PARTIAL_ROUNDS as u64, 0);
        PoseidonConfig::new(FULL_ROUNDS, PARTIAL_ROUNDS, ALPHA, mds, ark, 2, 1)
    })
}

/// What a tagged hash is of; the tag is the first absorbed element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Tag {
    /// A leaf of the indexed nullifier tree: (value, next value, next index).
    NullifierLeaf = 1,
    /// A transaction's effects.
    TxEffects = 2,
    /// Two effects hashes joined by a merge.
    MergeEffects = 3,
    /// The tx-level state (note, nullifier and public data trees).
    TxState = 4,
    /// The block-level state (tx state plus message tree and archive).
    BlockState = 5,
    /// A block header.
    BlockHeader = 6,
}

/// `H(a, b)`: the Merkle node compression.
pub fn hash2(a: Fr, b: Fr) -> Fr {
    // Poseidon over field elements cannot fail for these parameters.
    TwoToOneCRH::<Fr>::evaluate(config(), a, b).unwrap_or_default()
}

/// `H_tag(inputs)`.
pub fn hash(tag: Tag, inputs: &[Fr]) -> Fr {
    let mut v = Vec::with_capacity(inputs.len() + 1);
    v.push(Fr::from(tag as u64));
    v.extend_from_slice(inputs);
    CRH::<Fr>::evaluate(config(), v.as_slice()).unwrap_or_default()
}

fn params_var() -> CRHParametersVar<Fr> {
    CRHParametersVar {
        parameters: config().clone(),
    }
}

/// `H(a, b)` in constraints.
pub fn hash2_var(a: &FpVar<Fr>, b: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    TwoToOneCRHGadget::<Fr>::evaluate(&params_var(), a, b)
}

/// `H_tag(inputs)` in constraints.
pub fn hash_var(tag: Tag, inputs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    let mut v = Vec::with_capacity(inputs.len() + 1);
    v.push(FpVar::Constant(Fr::from(tag as u64)));
    v.extend_from_slice(inputs);
    CRHGadget::<Fr>::evaluate(&params_var(), &v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_r1cs_std::R1CSVar;
    use ark_r1cs_std::alloc::AllocVar;
    use ark_relations::r1cs::ConstraintSystem;

    #[test]
    fn gadgets_agree_with_native_hashing_and_cost_what_we_expect() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let a = FpVar::new_witness(cs.clone(), || Ok(Fr::from(3u64))).unwrap();
        let b = FpVar::new_witness(cs.clone(), || Ok(Fr::from(5u64))).unwrap();
        let h = hash2_var(&a, &b).unwrap();
        assert_eq!(h.value().unwrap(), hash2(Fr::from(3u64), Fr::from(5u64)));
        let per_hash = cs.num_constraints();
        assert!(
            (200..=300).contains(&per_hash),
            "{per_hash} constraints per 2-to-1 hash"
        );
        let t = hash_var(Tag::TxState, &[a, b]).unwrap();
        assert_eq!(
            t.value().unwrap(),
            hash(Tag::TxState, &[Fr::from(3u64), Fr::from(5u64)])
        );
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn tags_separate_domains() {
        let x = [Fr::from(1u64), Fr::from(2u64)];
        assert_ne!(hash(Tag::TxState, &x), hash(Tag::BlockState, &x));
        assert_ne!(hash(Tag::TxState, &x), hash2(x[0], x[1]));
    }
}

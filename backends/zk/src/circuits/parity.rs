//! Parity circuits: the L1-to-L2 messages a block consumes, hashed into the
//! subtree root the block root appends to the message tree.
//!
//! - base parity, public inputs `[message_0, .., message_{m-1}, root]` with
//!   `m = 2^log_messages_per_base_parity`: `root` is the Merkle root of the
//!   messages (unused slots are zero).
//! - root parity, public inputs `[child_root_0, .., child_root_{k-1}, root]`
//!   with `k = 2^log_base_parities_per_block`: `root` is the Merkle root over
//!   the base parities' roots, which is the root of all the block's messages.

use ark_bn254::Fr;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};
use serde::{Deserialize, Serialize};

use super::{expect_len, publish};
use crate::felt::Felt;
use crate::merkle::{subtree_root, subtree_root_var};
use crate::params::RollupParams;

/// Inputs of a base parity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseParityInputs {
    /// The messages (zero-padded).
    pub messages: Vec<Felt>,
}

impl BaseParityInputs {
    /// All-zero inputs.
    pub fn blank(p: &RollupParams) -> BaseParityInputs {
        BaseParityInputs {
            messages: vec![Felt::ZERO; p.messages_per_base_parity()],
        }
    }

    pub(crate) fn check_shape(&self, p: &RollupParams) -> Result<(), String> {
        expect_len(
            "messages",
            self.messages.len(),
            p.messages_per_base_parity(),
        )
    }

    /// The root the proof outputs.
    pub fn root(&self) -> Felt {
        Felt(subtree_root(
            &self.messages.iter().map(|m| m.0).collect::<Vec<_>>(),
        ))
    }
}

/// Inputs of a root parity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootParityInputs {
    /// The base parities' roots, in message order.
    pub children: Vec<Felt>,
}

impl RootParityInputs {
    /// All-zero inputs.
    pub fn blank(p: &RollupParams) -> RootParityInputs {
        RootParityInputs {
            children: vec![Felt::ZERO; p.base_parities_per_block()],
        }
    }

    pub(crate) fn check_shape(&self, p: &RollupParams) -> Result<(), String> {
        expect_len("children", self.children.len(), p.base_parities_per_block())
    }

    /// The root the proof outputs.
    pub fn root(&self) -> Felt {
        Felt(subtree_root(
            &self.children.iter().map(|m| m.0).collect::<Vec<_>>(),
        ))
    }
}

fn inputs(cs: &ConstraintSystemRef<Fr>, v: &[Felt]) -> Result<Vec<FpVar<Fr>>, SynthesisError> {
    v.iter()
        .map(|x| FpVar::new_input(cs.clone(), || Ok(x.0)))
        .collect()
}

pub(crate) fn base_parity(
    cs: &ConstraintSystemRef<Fr>,
    _p: &RollupParams,
    i: &BaseParityInputs,
) -> Result<(), SynthesisError> {
    let leaves = inputs(cs, &i.messages)?;
    publish(cs, &subtree_root_var(&leaves)?)?;
    Ok(())
}

pub(crate) fn root_parity(
    cs: &ConstraintSystemRef<Fr>,
    _p: &RollupParams,
    i: &RootParityInputs,
) -> Result<(), SynthesisError> {
    let leaves = inputs(cs, &i.children)?;
    publish(cs, &subtree_root_var(&leaves)?)?;
    Ok(())
}

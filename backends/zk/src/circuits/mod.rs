//! The rollup's circuits. Each takes typed inputs (the job's input data),
//! synthesizes R1CS over Fr and exposes its public inputs in a fixed order,
//! documented per circuit module and in the crate docs. A parent restates
//! the outputs of its children that it consumes, so a tree of proofs links
//! by equality of public inputs.

pub mod base;
pub mod block_root;
pub mod links;
pub mod merge;
pub mod parity;
pub mod root;

use std::fmt;

use ark_bn254::Fr;
use ark_r1cs_std::R1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use serde::{Deserialize, Serialize};

use crate::params::RollupParams;

/// Which circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CircuitId {
    /// L1-to-L2 messages into a subtree root.
    BaseParity,
    /// Base parity roots into the block's message subtree root.
    RootParity,
    /// One transaction.
    BaseRollup,
    /// Two consecutive tx ranges of a block.
    MergeRollup,
    /// A block: its tx range, its messages, its header into the archive.
    BlockRoot,
    /// Two consecutive block ranges.
    BlockMerge,
    /// An epoch.
    RootRollup,
}

impl CircuitId {
    /// Every circuit, in proving order.
    pub const ALL: [CircuitId; 7] = [
        CircuitId::BaseParity,
        CircuitId::RootParity,
        CircuitId::BaseRollup,
        CircuitId::MergeRollup,
        CircuitId::BlockRoot,
        CircuitId::BlockMerge,
        CircuitId::RootRollup,
    ];

    /// The kebab-case name (`base-rollup`), used in key file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CircuitId::BaseParity => "base-parity",
            CircuitId::RootParity => "root-parity",
            CircuitId::BaseRollup => "base-rollup",
            CircuitId::MergeRollup => "merge-rollup",
            CircuitId::BlockRoot => "block-root-rollup",
            CircuitId::BlockMerge => "block-merge-rollup",
            CircuitId::RootRollup => "root-rollup",
        }
    }

    /// Parses a name as printed by [`CircuitId::name`].
    pub fn from_name(s: &str) -> Option<CircuitId> {
        CircuitId::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The number of public inputs under `params`.
    pub fn num_public_inputs(self, params: &RollupParams) -> usize {
        match self {
            CircuitId::BaseParity => params.messages_per_base_parity() + 1,
            CircuitId::RootParity => params.base_parities_per_block() + 1,
            CircuitId::BaseRollup => base::NUM_PUBLIC,
            CircuitId::MergeRollup | CircuitId::BlockMerge => merge::NUM_PUBLIC,
            CircuitId::BlockRoot => block_root::NUM_PUBLIC,
            CircuitId::RootRollup => root::NUM_PUBLIC,
        }
    }
}

impl fmt::Display for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A circuit's inputs (what a proving job carries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Inputs {
    /// See [`parity`].
    BaseParity(parity::BaseParityInputs),
    /// See [`parity`].
    RootParity(parity::RootParityInputs),
    /// See [`base`].
    BaseRollup(base::BaseRollupInputs),
    /// See [`merge`].
    MergeRollup(merge::MergeInputs),
    /// See [`block_root`].
    BlockRoot(block_root::BlockRootInputs),
    /// See [`merge`].
    BlockMerge(merge::MergeInputs),
    /// See [`root`].
    RootRollup(root::RootInputs),
}

/// Inputs that do not have the sizes the parameters fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{circuit} inputs: {reason}")]
pub struct ShapeError {
    /// The circuit.
    pub circuit: CircuitId,
    /// What is wrong.
    pub reason: String,
}

impl Inputs {
    /// Which circuit these inputs are for.
    pub fn circuit(&self) -> CircuitId {
        match self {
            Inputs::BaseParity(_) => CircuitId::BaseParity,
            Inputs::RootParity(_) => CircuitId::RootParity,
            Inputs::BaseRollup(_) => CircuitId::BaseRollup,
            Inputs::MergeRollup(_) => CircuitId::MergeRollup,
            Inputs::BlockRoot(_) => CircuitId::BlockRoot,
            Inputs::BlockMerge(_) => CircuitId::BlockMerge,
            Inputs::RootRollup(_) => CircuitId::RootRollup,
        }
    }

    /// Inputs of the right shape with every value zero: what key generation
    /// synthesizes (the witness is not needed then, only the shape).
    pub fn blank(id: CircuitId, params: &RollupParams) -> Inputs {
        match id {
            CircuitId::BaseParity => Inputs::BaseParity(parity::BaseParityInputs::blank(params)),
            CircuitId::RootParity => Inputs::RootParity(parity::RootParityInputs::blank(params)),
            CircuitId::BaseRollup => Inputs::BaseRollup(base::BaseRollupInputs::blank(params)),
            CircuitId::MergeRollup => Inputs::MergeRollup(merge::MergeInputs::default()),
            CircuitId::BlockRoot => Inputs::BlockRoot(block_root::BlockRootInputs::blank(params)),
            CircuitId::BlockMerge => Inputs::BlockMerge(merge::MergeInputs::default()),
            CircuitId::RootRollup => Inputs::RootRollup(root::RootInputs::default()),
        }
    }

    /// Checks every vector has the length `params` fixes (so the circuit has
    /// the shape its key was made for).
    pub fn check_shape(&self, params: &RollupParams) -> Result<(), ShapeError> {
        let reason = match self {
            Inputs::BaseParity(i) => i.check_shape(params),
            Inputs::RootParity(i) => i.check_shape(params),
            Inputs::BaseRollup(i) => i.check_shape(params),
            Inputs::BlockRoot(i) => i.check_shape(params),
            Inputs::MergeRollup(_) | Inputs::BlockMerge(_) | Inputs::RootRollup(_) => Ok(()),
        };
        reason.map_err(|reason| ShapeError {
            circuit: self.circuit(),
            reason,
        })
    }
}

/// A circuit instance: the sizes and the inputs, ready to synthesize.
#[derive(Debug, Clone, Copy)]
pub struct Circuit<'a> {
    /// Sizes.
    pub params: &'a RollupParams,
    /// Inputs (shape already checked).
    pub inputs: &'a Inputs,
}

impl ConstraintSynthesizer<Fr> for Circuit<'_> {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let p = self.params;
        match self.inputs {
            Inputs::BaseParity(i) => parity::base_parity(&cs, p, i),
            Inputs::RootParity(i) => parity::root_parity(&cs, p, i),
            Inputs::BaseRollup(i) => base::base_rollup(&cs, p, i),
            Inputs::MergeRollup(i) | Inputs::BlockMerge(i) => merge::merge(&cs, i),
            Inputs::BlockRoot(i) => block_root::block_root(&cs, p, i),
            Inputs::RootRollup(i) => root::root_rollup(&cs, i),
        }
    }
}

/// Makes `v` the next public input (one equality constraint).
pub(crate) fn publish(cs: &ConstraintSystemRef<Fr>, v: &FpVar<Fr>) -> Result<(), SynthesisError> {
    FpVar::new_input(cs.clone(), || v.value())?.enforce_equal(v)
}

/// Makes each of `vs` the next public input, in order.
pub(crate) fn publish_all(
    cs: &ConstraintSystemRef<Fr>,
    vs: &[&FpVar<Fr>],
) -> Result<(), SynthesisError> {
    vs.iter().try_for_each(|v| publish(cs, v))
}

/// A witness.
pub(crate) fn witness(cs: &ConstraintSystemRef<Fr>, v: Fr) -> Result<FpVar<Fr>, SynthesisError> {
    FpVar::new_witness(cs.clone(), || Ok(v))
}

/// Checks a vector length.
pub(crate) fn expect_len(what: &str, got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what} has {got} entries, the parameters fix {want}"
        ))
    }
}

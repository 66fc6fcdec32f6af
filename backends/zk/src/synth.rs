//! Constraint synthesis: the constraint matrices of a circuit (its shape,
//! from blank inputs) and the assignment of a circuit instance; simulation
//! (`PROVER_REAL_PROOFS=false`) checks every constraint without proving.

use ark_bn254::Fr;
use ark_relations::r1cs::{
    ConstraintMatrices, ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisError,
    SynthesisMode,
};

use crate::circuits::{Circuit, CircuitId, Inputs, ShapeError};
use crate::felt::Felt;
use crate::params::RollupParams;

/// Why synthesis failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    /// The inputs are for another circuit.
    #[error("inputs are for {found}, not {expected}")]
    WrongCircuit {
        /// The circuit asked for.
        expected: CircuitId,
        /// The circuit the inputs are for.
        found: CircuitId,
    },
    /// Vector lengths do not match the parameters.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// The witness does not satisfy the circuit (a wrong root, a double
    /// nullifier, children that do not link...).
    #[error("{circuit}: the witness does not satisfy constraint {index} of {total}")]
    Unsatisfied {
        /// The circuit.
        circuit: CircuitId,
        /// The first failing constraint.
        index: usize,
        /// How many there are.
        total: usize,
    },
    /// arkworks reported an error.
    #[error("{circuit}: synthesis failed: {reason}")]
    Synthesis {
        /// The circuit.
        circuit: CircuitId,
        /// arkworks' message.
        reason: String,
    },
    /// The synthesized system has another shape than the key's.
    #[error("{circuit}: synthesized {found} but the key expects {expected}")]
    ShapeMismatch {
        /// The circuit.
        circuit: CircuitId,
        /// What the key was made for.
        expected: String,
        /// What synthesis produced.
        found: String,
    },
}

fn synth_err(circuit: CircuitId) -> impl Fn(SynthesisError) -> SynthError {
    move |e| SynthError::Synthesis {
        circuit,
        reason: e.to_string(),
    }
}

/// The constraint matrices of `id` under `params` (synthesized in setup mode).
pub fn matrices(
    id: CircuitId,
    params: &RollupParams,
) -> Result<ConstraintMatrices<Fr>, SynthError> {
    let inputs = Inputs::blank(id, params);
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Setup);
    Circuit {
        params,
        inputs: &inputs,
    }
    .generate_constraints(cs.clone())
    .map_err(synth_err(id))?;
    cs.finalize();
    cs.to_matrices().ok_or_else(|| SynthError::Synthesis {
        circuit: id,
        reason: "no matrices".into(),
    })
}

/// A synthesized instance.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// `[1, public inputs.., witnesses..]`.
    pub full: Vec<Fr>,
    /// How many of `full` are the constant and the public inputs.
    pub num_instance: usize,
    /// Constraints in the system.
    pub num_constraints: usize,
}

impl Assignment {
    /// The public inputs.
    pub fn public_inputs(&self) -> Vec<Felt> {
        self.full[1..self.num_instance]
            .iter()
            .copied()
            .map(Felt)
            .collect()
    }
}

fn check_inputs(id: CircuitId, params: &RollupParams, inputs: &Inputs) -> Result<(), SynthError> {
    if inputs.circuit() != id {
        return Err(SynthError::WrongCircuit {
            expected: id,
            found: inputs.circuit(),
        });
    }
    inputs.check_shape(params)?;
    Ok(())
}

/// Computes the assignment of an instance (no matrices, so no constraint
/// check here: the prover checks each constraint as it evaluates the QAP).
pub fn assign(params: &RollupParams, inputs: &Inputs) -> Result<Assignment, SynthError> {
    let id = inputs.circuit();
    check_inputs(id, params, inputs)?;
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: false,
    });
    Circuit { params, inputs }
        .generate_constraints(cs.clone())
        .map_err(synth_err(id))?;
    let num_constraints = cs.num_constraints();
    let inner = cs.into_inner().ok_or_else(|| SynthError::Synthesis {
        circuit: id,
        reason: "constraint system still shared".into(),
    })?;
    let num_instance = inner.instance_assignment.len();
    let mut full = inner.instance_assignment;
    full.extend(inner.witness_assignment);
    Ok(Assignment {
        full,
        num_instance,
        num_constraints,
    })
}

/// Simulation: synthesizes the instance and checks every constraint, with
/// no proof. Returns the public inputs.
pub fn simulate(params: &RollupParams, inputs: &Inputs) -> Result<Vec<Felt>, SynthError> {
    let id = inputs.circuit();
    check_inputs(id, params, inputs)?;
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    Circuit { params, inputs }
        .generate_constraints(cs.clone())
        .map_err(synth_err(id))?;
    cs.finalize();
    let m = cs.to_matrices().ok_or_else(|| SynthError::Synthesis {
        circuit: id,
        reason: "no matrices".into(),
    })?;
    let inner = cs.into_inner().ok_or_else(|| SynthError::Synthesis {
        circuit: id,
        reason: "constraint system still shared".into(),
    })?;
    let mut full = inner.instance_assignment;
    full.extend(inner.witness_assignment);
    if let Some(index) = first_unsatisfied(&m, &full) {
        return Err(SynthError::Unsatisfied {
            circuit: id,
            index,
            total: m.num_constraints,
        });
    }
    Ok(full[1..m.num_instance_variables]
        .iter()
        .copied()
        .map(Felt)
        .collect())
}

/// `sum coeff * z[index]` over a matrix row. Terms go three at a time
/// through arkworks' sum of products, which reduces once per limb for the
/// three products together (Fr's two spare bits allow three) instead of
/// once per product: a third fewer word multiplications. A coefficient of
/// one (most of C's) is not multiplied.
pub fn evaluate_row(row: &[(Fr, usize)], z: &[Fr]) -> Fr {
    use ark_ff::{Field, One, Zero};
    let mut threes = row.chunks_exact(3);
    let mut sum = Fr::zero();
    for t in &mut threes {
        sum += Fr::sum_of_products(
            &[t[0].0, t[1].0, t[2].0],
            &[z[t[0].1], z[t[1].1], z[t[2].1]],
        );
    }
    for (c, i) in threes.remainder() {
        if c.is_one() {
            sum += z[*i];
        } else {
            sum += *c * z[*i];
        }
    }
    sum
}

/// The first constraint `<a,z> * <b,z> = <c,z>` that fails.
pub fn first_unsatisfied(m: &ConstraintMatrices<Fr>, z: &[Fr]) -> Option<usize> {
    use rayon::prelude::*;
    (0..m.num_constraints).into_par_iter().find_first(|&i| {
        evaluate_row(&m.a[i], z) * evaluate_row(&m.b[i], z) != evaluate_row(&m.c[i], z)
    })
}

#[cfg(test)]
mod tests {
    use ark_ff::{One, UniformRand, Zero};
    use ark_std::rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn a_row_evaluates_to_the_plain_sum_of_products_for_every_length_and_edge_coefficient() {
        let mut rng = StdRng::seed_from_u64(31);
        let z: Vec<Fr> = (0..64)
            .map(|i| match i {
                0 => Fr::zero(),
                1 => Fr::one(),
                2 => -Fr::one(),
                _ => Fr::rand(&mut rng),
            })
            .collect();
        let edges = [
            Fr::zero(),
            Fr::one(),
            -Fr::one(),
            Fr::from(2u64),
            -Fr::from(2u64),
        ];
        for len in 0..40 {
            for round in 0..20 {
                let row: Vec<(Fr, usize)> = (0..len)
                    .map(|k| {
                        let c = if round % 2 == 0 {
                            edges[(k + round) % edges.len()]
                        } else {
                            Fr::rand(&mut rng)
                        };
                        (c, (k * 7 + round) % z.len())
                    })
                    .collect();
                let plain: Fr = row.iter().map(|(c, i)| *c * z[*i]).sum();
                assert_eq!(evaluate_row(&row, &z), plain, "length {len}, round {round}");
            }
        }
    }
}

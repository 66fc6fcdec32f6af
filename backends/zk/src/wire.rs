//! What a proving job is in the broker's terms: the job type that proves
//! each circuit (one exhaustive mapping, both ways, for the node that
//! enqueues and the agent that proves), the circuit's number in the L1
//! verifier, and the bytes a job carries: its inputs in, its result out.
//! Both are postcard with a four-byte tag and a version, so an agent can
//! tell a corrupt or foreign payload (a non-retryable error) from a proof.

use aztec_prover_protocol::JobType;
use serde::{Deserialize, Serialize};

use crate::circuits::{CircuitId, Inputs};
use crate::felt::Felt;
use crate::groth16::{Proof, proof_from_bytes, proof_to_bytes};

/// The job type that proves `c`.
pub fn job_type(c: CircuitId) -> JobType {
    match c {
        CircuitId::BaseParity => JobType::BaseParity,
        CircuitId::RootParity => JobType::RootParity,
        CircuitId::BaseRollup => JobType::BaseRollup,
        CircuitId::MergeRollup => JobType::MergeRollup,
        CircuitId::BlockRoot => JobType::BlockRootRollup,
        CircuitId::BlockMerge => JobType::BlockMergeRollup,
        CircuitId::RootRollup => JobType::RootRollup,
    }
}

/// The circuit a job of type `t` proves.
pub fn circuit(t: JobType) -> CircuitId {
    match t {
        JobType::BaseParity => CircuitId::BaseParity,
        JobType::RootParity => CircuitId::RootParity,
        JobType::BaseRollup => CircuitId::BaseRollup,
        JobType::MergeRollup => CircuitId::MergeRollup,
        JobType::BlockRootRollup => CircuitId::BlockRoot,
        JobType::BlockMergeRollup => CircuitId::BlockMerge,
        JobType::RootRollup => CircuitId::RootRollup,
    }
}

/// The circuit's number in the L1 verifier contract (`IEpochVerifier.sol`):
/// its place in [`CircuitId::ALL`].
pub fn verifier_number(c: CircuitId) -> u8 {
    match c {
        CircuitId::BaseParity => 0,
        CircuitId::RootParity => 1,
        CircuitId::BaseRollup => 2,
        CircuitId::MergeRollup => 3,
        CircuitId::BlockRoot => 4,
        CircuitId::BlockMerge => 5,
        CircuitId::RootRollup => 6,
    }
}

const INPUTS_TAG: &[u8; 4] = b"AZI1";
const RESULT_TAG: &[u8; 4] = b"AZR1";

/// Encodes job inputs.
pub fn encode_inputs(inputs: &Inputs) -> Vec<u8> {
    let mut out = INPUTS_TAG.to_vec();
    out.extend(postcard::to_stdvec(inputs).unwrap_or_default());
    out
}

/// Decodes job inputs.
pub fn decode_inputs(b: &[u8]) -> Result<Inputs, String> {
    let body = b
        .strip_prefix(INPUTS_TAG)
        .ok_or("not aztec-prover job inputs (bad tag)")?;
    postcard::from_bytes(body).map_err(|e| format!("corrupt job inputs: {e}"))
}

/// A job's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofResult {
    /// The circuit proven.
    pub circuit: CircuitId,
    /// Its public inputs.
    pub public_inputs: Vec<Felt>,
    /// The proof (compressed, 128 bytes), or empty when simulated.
    pub proof: Vec<u8>,
    /// True when the constraints were only checked (`PROVER_REAL_PROOFS=false`).
    pub simulated: bool,
}

impl ProofResult {
    /// The proof, parsed and validated (`None` when simulated).
    pub fn proof(&self) -> Result<Option<Proof>, String> {
        if self.simulated {
            Ok(None)
        } else {
            proof_from_bytes(&self.proof).map(Some)
        }
    }

    /// A result for a real proof.
    pub fn real(circuit: CircuitId, public_inputs: Vec<Felt>, proof: &Proof) -> ProofResult {
        ProofResult {
            circuit,
            public_inputs,
            proof: proof_to_bytes(proof),
            simulated: false,
        }
    }
}

/// Encodes a result.
pub fn encode_result(r: &ProofResult) -> Vec<u8> {
    let mut out = RESULT_TAG.to_vec();
    out.extend(postcard::to_stdvec(r).unwrap_or_default());
    out
}

/// Decodes a result.
pub fn decode_result(b: &[u8]) -> Result<ProofResult, String> {
    let body = b
        .strip_prefix(RESULT_TAG)
        .ok_or("not an aztec-prover proof result (bad tag)")?;
    postcard::from_bytes(body).map_err(|e| format!("corrupt proof result: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_circuit_has_one_job_type_and_back() {
        for c in CircuitId::ALL {
            assert_eq!(circuit(job_type(c)), c);
            // The names agree too (the broker logs job types, keys are named by circuit).
            assert_eq!(
                job_type(c).name(),
                c.name().to_uppercase().replace('-', "_"),
                "{c:?}"
            );
            assert_eq!(
                CircuitId::ALL[verifier_number(c) as usize],
                c,
                "the verifier's numbering is the proving order"
            );
        }
        for t in JobType::ALL {
            assert_eq!(job_type(circuit(t)), t);
        }
    }
    use crate::params::RollupParams;

    #[test]
    fn inputs_and_results_of_every_circuit_round_trip_and_garbage_is_refused() {
        let p = RollupParams::test();
        for c in CircuitId::ALL {
            let i = Inputs::blank(c, &p);
            assert_eq!(decode_inputs(&encode_inputs(&i)).unwrap(), i, "{c}");
            let json = serde_json::to_string(&i).unwrap();
            assert_eq!(serde_json::from_str::<Inputs>(&json).unwrap(), i, "{c}");
        }
        let r = ProofResult {
            circuit: CircuitId::RootRollup,
            public_inputs: vec![Felt::from_u64(3)],
            proof: vec![],
            simulated: true,
        };
        assert_eq!(decode_result(&encode_result(&r)).unwrap(), r);
        assert!(decode_inputs(b"nonsense").unwrap_err().contains("bad tag"));
        assert!(
            decode_inputs(b"AZI1\xff\xff")
                .unwrap_err()
                .contains("corrupt")
        );
        assert!(decode_result(&encode_inputs(&Inputs::blank(CircuitId::MergeRollup, &p))).is_err());
    }
}

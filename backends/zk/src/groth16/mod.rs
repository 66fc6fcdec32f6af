//! Groth16 over BN254 with the heavy work on a backend.
//!
//! The prover is arkworks' Groth16 (libsnark reduction) with its kernels
//! swapped: the QAP's seven NTTs of size `2^k >= constraints + inputs` run
//! as three batched backend calls, and the five MSMs (A, B in G1, B in G2,
//! H, L) run on the backend over bases encoded once per key; the four G1
//! bases are prepared in the backend (kept on a GPU's device) on the key's
//! first proof there and reused by every later one. On a backend that keeps
//! vectors where its kernels run ([`caps::KEPT_VECTORS`]) the QAP's
//! polynomials are uploaded once: its NTTs, the pointwise `(a·b − c)/Z`
//! and the H MSM run on them in place, and only the constraint
//! evaluations go down and the H point comes back. Proofs are
//! ark-groth16 proofs: its verifier accepts them, and ours (single and
//! batched) accepts its.
//!
//! While it evaluates the QAP the prover checks every constraint, so an
//! invalid witness is an error before any MSM, never a proof that fails
//! later.

pub mod evm;
pub mod verify;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{FftField, Field, One, UniformRand, Zero};
use ark_relations::r1cs::ConstraintMatrices;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use ark_std::rand::Rng;
use aztec_backend_abi::codec::{
    fr_bytes, fr_from_bytes, g1_bytes, g1_from_bytes, g2_bytes, g2_from_bytes,
};
use aztec_backend_abi::ffi::caps;
use aztec_backend_abi::{Backend, BackendError, KeptVec, PreparedG1};
use rayon::prelude::*;

use crate::circuits::{CircuitId, Inputs};
use crate::felt::Felt;
use crate::params::RollupParams;
use crate::synth::{Assignment, SynthError, assign, evaluate_row};

/// A Groth16 proof (ark-groth16's type).
pub type Proof = ark_groth16::Proof<Bn254>;
/// A verifying key (ark-groth16's type).
pub type VerifyingKey = ark_groth16::VerifyingKey<Bn254>;
/// A proving key as arkworks generates and stores it.
pub type ArkProvingKey = ark_groth16::ProvingKey<Bn254>;

/// Why proving failed.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The inputs do not make a valid instance.
    #[error(transparent)]
    Synth(#[from] SynthError),
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(#[from] aztec_backend_abi::BackendError),
    /// The backend returned something that is not a point.
    #[error("backend returned an invalid {0} point")]
    BadPoint(&'static str),
    /// The key is for another circuit.
    #[error("the key is for {key}, the inputs for {inputs}")]
    WrongKey {
        /// The key's circuit.
        key: CircuitId,
        /// The inputs' circuit.
        inputs: CircuitId,
    },
}

/// A proving key ready for the backend: the constants of the proof
/// equations, the query bases in the ABI encoding, and the circuit's
/// constraint matrices.
pub struct ProverKey {
    /// The circuit.
    pub circuit: CircuitId,
    /// Its sizes.
    pub params: RollupParams,
    /// The verifying key.
    pub vk: VerifyingKey,
    beta_g1: G1Affine,
    delta_g1: G1Affine,
    a0: G1Affine,
    b_g1_0: G1Affine,
    b_g2_0: G2Affine,
    a_bases: Vec<u8>,
    b_g1_bases: Vec<u8>,
    b_g2_bases: Vec<u8>,
    h_bases: Vec<u8>,
    l_bases: Vec<u8>,
    matrices: Arc<ConstraintMatrices<Fr>>,
    /// The G1 bases prepared in each backend that proved with this key
    /// (`None`: that backend could not keep them; its MSMs take the bases).
    prepared: Mutex<Vec<(Backend, Option<Arc<PreparedBases>>)>>,
}

/// A key's four G1 query bases, prepared in one backend.
struct PreparedBases {
    a: PreparedG1,
    b_g1: PreparedG1,
    h: PreparedG1,
    l: PreparedG1,
}

impl std::fmt::Debug for ProverKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProverKey")
            .field("circuit", &self.circuit)
            .field("constraints", &self.matrices.num_constraints)
            .field(
                "variables",
                &(self.matrices.num_instance_variables + self.matrices.num_witness_variables),
            )
            .finish()
    }
}

fn encode_g1(points: &[G1Affine]) -> Vec<u8> {
    let mut out = vec![0u8; points.len() * 64];
    out.par_chunks_mut(64)
        .zip(points.par_iter())
        .for_each(|(o, p)| o.copy_from_slice(&g1_bytes(p)));
    out
}

fn encode_g2(points: &[G2Affine]) -> Vec<u8> {
    let mut out = vec![0u8; points.len() * 128];
    out.par_chunks_mut(128)
        .zip(points.par_iter())
        .for_each(|(o, p)| o.copy_from_slice(&g2_bytes(p)));
    out
}

fn encode_fr(v: &[Fr]) -> Vec<u8> {
    let mut out = vec![0u8; v.len() * 32];
    out.par_chunks_mut(32 * 1024)
        .zip(v.par_chunks(1024))
        .for_each(|(o, x)| {
            for (o, x) in o.chunks_mut(32).zip(x) {
                o.copy_from_slice(&fr_bytes(x));
            }
        });
    out
}

impl ProverKey {
    /// Prepares an arkworks proving key of `circuit` for the backend;
    /// `matrices` must be that circuit's (see [`crate::synth::matrices`]).
    pub fn new(
        circuit: CircuitId,
        params: RollupParams,
        pk: &ArkProvingKey,
        matrices: Arc<ConstraintMatrices<Fr>>,
    ) -> Result<ProverKey, SynthError> {
        let vars = matrices.num_instance_variables + matrices.num_witness_variables;
        let shape_ok = pk.a_query.len() == vars
            && pk.b_g1_query.len() == vars
            && pk.b_g2_query.len() == vars
            && pk.l_query.len() == matrices.num_witness_variables
            && pk.vk.gamma_abc_g1.len() == matrices.num_instance_variables;
        if !shape_ok {
            return Err(SynthError::ShapeMismatch {
                circuit,
                expected: format!(
                    "{} variables, {} public",
                    pk.a_query.len(),
                    pk.vk.gamma_abc_g1.len()
                ),
                found: format!(
                    "{vars} variables, {} public",
                    matrices.num_instance_variables
                ),
            });
        }
        Ok(ProverKey {
            circuit,
            params,
            vk: pk.vk.clone(),
            beta_g1: pk.beta_g1,
            delta_g1: pk.delta_g1,
            a0: pk.a_query[0],
            b_g1_0: pk.b_g1_query[0],
            b_g2_0: pk.b_g2_query[0],
            a_bases: encode_g1(&pk.a_query[1..]),
            b_g1_bases: encode_g1(&pk.b_g1_query[1..]),
            b_g2_bases: encode_g2(&pk.b_g2_query[1..]),
            h_bases: encode_g1(&pk.h_query),
            l_bases: encode_g1(&pk.l_query),
            matrices,
            prepared: Mutex::default(),
        })
    }

    /// The G1 bases prepared in `backend`: prepared on the first call and
    /// kept with the key. A backend that cannot keep them (a full device)
    /// is told once, with a warning, and its MSMs take the bases each time.
    fn prepared_in(&self, backend: &Backend) -> Option<Arc<PreparedBases>> {
        let mut held = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, p)) = held.iter().find(|(b, _)| b.same_as(backend)) {
            return p.clone();
        }
        let t = Instant::now();
        let made = (|| -> Result<PreparedBases, BackendError> {
            Ok(PreparedBases {
                a: backend.prepare_g1(&self.a_bases)?,
                b_g1: backend.prepare_g1(&self.b_g1_bases)?,
                h: backend.prepare_g1(&self.h_bases)?,
                l: backend.prepare_g1(&self.l_bases)?,
            })
        })();
        let p = match made {
            Ok(p) => {
                tracing::debug!(
                    "the {} key's G1 bases are prepared in backend {} ({} ms)",
                    self.circuit,
                    backend.info().name,
                    t.elapsed().as_millis()
                );
                Some(Arc::new(p))
            }
            Err(e) => {
                tracing::warn!(
                    "the {} key's G1 bases stay on the host: backend {} cannot keep them: {e}",
                    self.circuit,
                    backend.info().name
                );
                None
            }
        };
        held.push((backend.clone(), p.clone()));
        p
    }

    /// Drops the bases prepared in `backend`, for good: its MSMs take the
    /// bases from now on.
    fn forget_prepared(&self, backend: &Backend) {
        let mut held = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        for (b, p) in held.iter_mut() {
            if b.same_as(backend) {
                *p = None;
            }
        }
    }

    /// The constraint matrices.
    pub fn matrices(&self) -> &Arc<ConstraintMatrices<Fr>> {
        &self.matrices
    }

    /// Constraints in the circuit.
    pub fn num_constraints(&self) -> usize {
        self.matrices.num_constraints
    }
}

/// Where a proof's time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProveTimings {
    /// Synthesizing the witness.
    pub witness: Duration,
    /// Evaluating constraints and the QAP's NTTs.
    pub qap: Duration,
    /// The five MSMs and the final group operations (after the QAP; with
    /// G2 beside it, the part of the G2 MSM the QAP did not hide).
    pub msm: Duration,
}

/// A proof with the public inputs it proves.
#[derive(Debug, Clone)]
pub struct ProofWithInputs {
    /// The proof.
    pub proof: Proof,
    /// Its public inputs, in the circuit's order.
    pub public_inputs: Vec<Felt>,
    /// Where the time went.
    pub timings: ProveTimings,
}

/// Synthesizes `inputs` and proves them with `key` on `backend`.
pub fn prove<R: Rng>(
    backend: &Backend,
    key: &ProverKey,
    inputs: &Inputs,
    rng: &mut R,
) -> Result<ProofWithInputs, ProveError> {
    if inputs.circuit() != key.circuit {
        return Err(ProveError::WrongKey {
            key: key.circuit,
            inputs: inputs.circuit(),
        });
    }
    let t = Instant::now();
    let a = assign(&key.params, inputs)?;
    let witness = t.elapsed();
    let (proof, mut timings) = prove_assignment(backend, key, &a, Fr::rand(rng), Fr::rand(rng))?;
    timings.witness = witness;
    Ok(ProofWithInputs {
        proof,
        public_inputs: a.public_inputs(),
        timings,
    })
}

/// Proves a synthesized assignment with blinding factors `r`, `s`. The G2
/// MSM runs beside the QAP and the G1 MSMs when the backend says they use
/// different hardware ([`caps::G2_BESIDE_G1`]); the QAP's vectors stay in
/// the backend when it says that saves transfers ([`caps::KEPT_VECTORS`]).
pub fn prove_assignment(
    backend: &Backend,
    key: &ProverKey,
    a: &Assignment,
    r: Fr,
    s: Fr,
) -> Result<(Proof, ProveTimings), ProveError> {
    prove_assignment_with(backend, key, a, r, s, ProveWay::of(backend))
}

/// How a proof uses its backend: what [`prove_assignment`] picks from the
/// backend's capabilities, or any other way for tests (every way gives the
/// same proof).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProveWay {
    /// The G2 MSM beside the QAP and the G1 MSMs, not after them.
    pub g2_beside: bool,
    /// The QAP's vectors kept in the backend between its calls.
    pub kept_vectors: bool,
}

impl ProveWay {
    /// What `backend` says suits it.
    pub fn of(backend: &Backend) -> ProveWay {
        let c = backend.info().capabilities;
        ProveWay {
            g2_beside: c & caps::G2_BESIDE_G1 != 0,
            kept_vectors: c & caps::KEPT_VECTORS != 0,
        }
    }
}

/// [`prove_assignment`] in a given [`ProveWay`], whatever the backend says.
#[doc(hidden)]
pub fn prove_assignment_with(
    backend: &Backend,
    key: &ProverKey,
    a: &Assignment,
    r: Fr,
    s: Fr,
    way: ProveWay,
) -> Result<(Proof, ProveTimings), ProveError> {
    let m = &key.matrices;
    let circuit = key.circuit;
    if a.num_instance != m.num_instance_variables
        || a.full.len() != m.num_instance_variables + m.num_witness_variables
    {
        return Err(SynthError::ShapeMismatch {
            circuit,
            expected: format!(
                "{} public and {} private variables",
                m.num_instance_variables, m.num_witness_variables
            ),
            found: format!(
                "{} public and {} private",
                a.num_instance,
                a.full.len() - a.num_instance
            ),
        }
        .into());
    }
    let started = Instant::now();
    let assignment = encode_fr(&a.full[1..]);
    let aux = &assignment[(a.num_instance - 1) * 32..];
    let h_len = key.h_bases.len() / 64;
    let mut prepared = key.prepared_in(backend);
    let mut g1 = |bases: &[u8],
                  pick: fn(&PreparedBases) -> &PreparedG1,
                  scalars: Scalars<'_>,
                  what: &'static str|
     -> Result<G1Projective, ProveError> {
        let mut dropped = false;
        let out = msm_or_send_bases(
            prepared.as_deref().map(|p| || scalars.msm(pick(p))),
            || backend.msm_g1(bases, &scalars.bytes(h_len)?),
            |e| {
                tracing::warn!(
                    "backend {} has no memory left for an MSM beside the {} key's bases; \
                     they are released and sent with every MSM from now on: {e}",
                    backend.info().name,
                    key.circuit
                );
                key.forget_prepared(backend);
                dropped = true;
            },
        )?;
        if dropped {
            // The last holder: the device memory goes back before the next MSM.
            prepared = None;
        }
        Ok(g1_from_bytes(&out)
            .ok_or(ProveError::BadPoint(what))?
            .into_group())
    };
    // The QAP (its NTTs) and then the G1 MSMs; the G2 MSM needs neither, so
    // beside them it starts at once.
    let qap_and_g1s = || -> Result<_, ProveError> {
        let t = Instant::now();
        let h = witness_map(backend, circuit, m, &a.full, way.kept_vectors)?;
        let qap = t.elapsed();
        let h_scalars = match &h {
            H::Bytes(h) => Scalars::Bytes(&h[..h_len * 32]),
            H::Kept(h) => Scalars::Kept(h),
        };
        let h_acc = g1(&key.h_bases, |p| &p.h, h_scalars, "H")?;
        drop(h);
        let l_acc = g1(&key.l_bases, |p| &p.l, Scalars::Bytes(aux), "L")?;
        let a_acc = g1(&key.a_bases, |p| &p.a, Scalars::Bytes(&assignment), "A")?;
        let b1_acc = g1(
            &key.b_g1_bases,
            |p| &p.b_g1,
            Scalars::Bytes(&assignment),
            "B1",
        )?;
        Ok((qap, h_acc, l_acc, a_acc, b1_acc))
    };
    let b2 = || backend.msm_g2(&key.b_g2_bases, &assignment);
    let (g1s, b2_out) = both(way.g2_beside, qap_and_g1s, b2);
    let (qap, h_acc, l_acc, a_acc, b1_acc) = g1s?;
    let b2_acc: G2Projective = g2_from_bytes(&b2_out?)
        .ok_or(ProveError::BadPoint("B2"))?
        .into_group();

    let vk = &key.vk;
    let g_a = key.delta_g1 * r + key.a0 + a_acc + vk.alpha_g1;
    let g_b1 = key.delta_g1 * s + key.b_g1_0 + b1_acc + key.beta_g1;
    let g_b2 = vk.delta_g2 * s + key.b_g2_0 + b2_acc + vk.beta_g2;
    let g_c = g_a * s + g_b1 * r - key.delta_g1 * (r * s) + l_acc + h_acc;
    // Everything after the QAP (with G2 beside, what it did not hide).
    let msm = started.elapsed().saturating_sub(qap);
    let proof = Proof {
        a: g_a.into_affine(),
        b: g_b2.into_affine(),
        c: g_c.into_affine(),
    };
    Ok((
        proof,
        ProveTimings {
            witness: Duration::ZERO,
            qap,
            msm,
        },
    ))
}

/// Runs `a` and `b`, at the same time on two threads when `together`
/// (a GPU backend's G2 MSM runs on host cores while its QAP and G1 MSMs run
/// on the GPU, so a proof takes the longer of the two instead of their sum;
/// or on the GPU while the host evaluates the constraints).
fn both<A, B: Send>(together: bool, a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B) {
    if !together {
        let a = a();
        return (a, b());
    }
    std::thread::scope(|s| {
        let b = s.spawn(b);
        let a = a();
        (a, b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    })
}

/// One G1 MSM: over prepared bases when there are some, else with the bases
/// sent. A device that has no memory left for the MSM beside prepared bases
/// is not a failed proof: `out_of_memory` is told (it drops them) and the
/// MSM runs again with the bases sent.
fn msm_or_send_bases<T>(
    prepared: Option<impl FnOnce() -> Result<T, BackendError>>,
    sent: impl FnOnce() -> Result<T, BackendError>,
    out_of_memory: impl FnOnce(&BackendError),
) -> Result<T, BackendError> {
    match prepared.map(|f| f()) {
        None => sent(),
        Some(Err(e)) if e.is_out_of_memory() => {
            out_of_memory(&e);
            sent()
        }
        Some(r) => r,
    }
}

/// The H MSM's scalars: bytes on the host, or a vector kept in the backend.
enum H {
    Bytes(Vec<u8>),
    Kept(KeptVec),
}

/// One G1 MSM's scalars.
#[derive(Clone, Copy)]
enum Scalars<'a> {
    Bytes(&'a [u8]),
    /// The first elements of a kept vector, one per base.
    Kept(&'a KeptVec),
}

impl<'a> Scalars<'a> {
    /// The MSM over prepared bases.
    fn msm(self, bases: &PreparedG1) -> Result<[u8; 64], BackendError> {
        match self {
            Scalars::Bytes(s) => bases.msm(s),
            Scalars::Kept(v) => bases.msm_vec(v, 0),
        }
    }

    /// The scalars as bytes (`n` of them, from a kept vector), for an MSM
    /// that sends its bases.
    fn bytes(self, n: usize) -> Result<std::borrow::Cow<'a, [u8]>, BackendError> {
        match self {
            Scalars::Bytes(s) => Ok(std::borrow::Cow::Borrowed(s)),
            Scalars::Kept(v) => Ok(std::borrow::Cow::Owned(v.download(0, n)?)),
        }
    }
}

/// The coefficients of `h = (A·B - C) / Z` (ark-groth16's libsnark
/// reduction), with every constraint checked: as canonical scalar bytes, or
/// with `kept` left in the backend where the NTTs ran.
fn witness_map(
    backend: &Backend,
    circuit: CircuitId,
    m: &ConstraintMatrices<Fr>,
    z: &[Fr],
    kept: bool,
) -> Result<H, ProveError> {
    let nc = m.num_constraints;
    let ni = m.num_instance_variables;
    let n = (nc + ni).next_power_of_two().max(2);
    let log_n = n.trailing_zeros();
    // a, b, c evaluations on the domain, encoded side by side for one batched call.
    let mut abc = vec![0u8; 3 * n * 32];
    let (a_bytes, rest) = abc.split_at_mut(n * 32);
    let (b_bytes, c_bytes) = rest.split_at_mut(n * 32);
    const CHUNK: usize = 1024;
    let bad = a_bytes[..nc * 32]
        .par_chunks_mut(CHUNK * 32)
        .zip(b_bytes[..nc * 32].par_chunks_mut(CHUNK * 32))
        .zip(c_bytes[..nc * 32].par_chunks_mut(CHUNK * 32))
        .enumerate()
        .filter_map(|(chunk, ((ao, bo), co))| {
            let base = chunk * CHUNK;
            let mut first_bad = None;
            for j in 0..ao.len() / 32 {
                let i = base + j;
                let (a, b, c) = (
                    evaluate_row(&m.a[i], z),
                    evaluate_row(&m.b[i], z),
                    evaluate_row(&m.c[i], z),
                );
                if first_bad.is_none() && a * b != c {
                    first_bad = Some(i);
                }
                ao[j * 32..j * 32 + 32].copy_from_slice(&fr_bytes(&a));
                bo[j * 32..j * 32 + 32].copy_from_slice(&fr_bytes(&b));
                co[j * 32..j * 32 + 32].copy_from_slice(&fr_bytes(&c));
            }
            first_bad
        })
        .min();
    if let Some(index) = bad {
        return Err(SynthError::Unsatisfied {
            circuit,
            index,
            total: nc,
        }
        .into());
    }
    // The public inputs' rows of A (libsnark's trick making them independent).
    for (k, x) in z[..ni].iter().enumerate() {
        a_bytes[(nc + k) * 32..(nc + k + 1) * 32].copy_from_slice(&fr_bytes(x));
    }
    let g = fr_bytes(&Fr::GENERATOR);
    let z_inv = (Fr::GENERATOR.pow([n as u64]) - Fr::one())
        .inverse()
        .unwrap_or_else(Fr::zero);
    if kept {
        let v = backend.upload_vec(&abc)?;
        drop(abc);
        v.ntt(log_n, true, None)?;
        v.ntt(log_n, false, Some(&g))?;
        let h = v.ab_minus_c(&fr_bytes(&z_inv))?;
        drop(v);
        h.ntt(log_n, true, Some(&g))?;
        return Ok(H::Kept(h));
    }
    backend.ntt(&mut abc, log_n, true, None)?;
    backend.ntt(&mut abc, log_n, false, Some(&g))?;
    let (a_bytes, rest) = abc.split_at(n * 32);
    let (b_bytes, c_bytes) = rest.split_at(n * 32);
    let mut h = vec![0u8; n * 32];
    h.par_chunks_mut(32 * CHUNK)
        .enumerate()
        .for_each(|(chunk, out)| {
            let base = chunk * CHUNK * 32;
            for (j, o) in out.chunks_mut(32).enumerate() {
                let at = base + j * 32;
                let a = fr_from_bytes(&a_bytes[at..at + 32]);
                let b = fr_from_bytes(&b_bytes[at..at + 32]);
                let c = fr_from_bytes(&c_bytes[at..at + 32]);
                o.copy_from_slice(&fr_bytes(&((a * b - c) * z_inv)));
            }
        });
    drop(abc);
    backend.ntt(&mut h, log_n, true, Some(&g))?;
    Ok(H::Bytes(h))
}

/// A proof's wire form: ark-serialize compressed (A 32, B 64, C 32 bytes).
pub fn proof_to_bytes(p: &Proof) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    // Writing into a Vec cannot fail.
    let _ = p.serialize_compressed(&mut out);
    out
}

/// Parses and validates a proof (points on the curve and in the subgroup).
pub fn proof_from_bytes(b: &[u8]) -> Result<Proof, String> {
    let mut r = b;
    let p = Proof::deserialize_compressed(&mut r).map_err(|e| format!("not a valid proof: {e}"))?;
    if !r.is_empty() {
        return Err(format!("{} trailing bytes after the proof", r.len()));
    }
    if p.a.is_zero() || p.c.is_zero() || p.b.is_zero() {
        return Err("a proof point is the identity".into());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: i32) -> BackendError {
        BackendError::Call {
            backend: "gpu".into(),
            op: "msm_g1_prepared",
            code,
            message: "test".into(),
        }
    }

    type Msm = fn() -> Result<u32, BackendError>;

    #[test]
    fn a_full_device_sends_the_bases_instead_and_other_failures_stand() {
        let none: Option<Msm> = None;
        // No prepared bases: the bases are sent, nothing is dropped.
        let r = msm_or_send_bases(none, || Ok(2), |_| panic!("nothing to drop"));
        assert_eq!(r.unwrap(), 2);
        // Prepared bases work: the bases are not sent.
        let r = msm_or_send_bases(Some(|| Ok(1)), || panic!("not sent"), |_| panic!("kept"));
        assert_eq!(r.unwrap(), 1);
        // Out of memory beside them: dropped, and the MSM runs with the bases sent.
        let mut dropped = false;
        let r = msm_or_send_bases(
            Some(|| Err(failed(aztec_backend_abi::ffi::status::OUT_OF_MEMORY))),
            || Ok(2),
            |e| {
                assert!(e.is_out_of_memory());
                dropped = true;
            },
        );
        assert_eq!(r.unwrap(), 2);
        assert!(dropped);
        // Any other failure is the MSM's: no retry, the bases stay.
        let r: Result<u32, _> = msm_or_send_bases(
            Some(|| Err(failed(aztec_backend_abi::ffi::status::DEVICE))),
            || panic!("no retry"),
            |_| panic!("kept"),
        );
        assert!(!r.unwrap_err().is_out_of_memory());
    }

    #[test]
    fn g2_runs_beside_g1_only_when_the_backend_says_so() {
        use std::sync::{Barrier, atomic::AtomicU32, atomic::Ordering};
        // Together: each side waits for the other, which only two threads pass.
        let meet = Barrier::new(2);
        let (a, b) = both(
            true,
            || {
                meet.wait();
                1
            },
            || {
                meet.wait();
                2
            },
        );
        assert_eq!((a, b), (1, 2));
        // Apart: G1 first, then G2, on the caller's thread.
        let step = AtomicU32::new(0);
        let caller = std::thread::current().id();
        let (a, b) = both(
            false,
            || step.fetch_add(1, Ordering::SeqCst),
            || {
                assert_eq!(std::thread::current().id(), caller);
                step.fetch_add(1, Ordering::SeqCst)
            },
        );
        assert_eq!((a, b), (0, 1));
    }
}

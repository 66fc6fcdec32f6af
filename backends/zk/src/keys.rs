//! Key files. Each circuit has a proving key `<circuit>.pk` and a verifying
//! key `<circuit>.vk` in one directory, next to `params.json` (the sizes
//! they were made for). A file is a header followed by the arkworks
//! serialization of the key:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `AZTECKEY` |
//! | 4 | format version (LE u32), now 2 |
//! | 1 | kind: 1 proving, 2 verifying |
//! | 1 | 1 if derived from a public seed (insecure) |
//! | 1 + n | circuit name (length, bytes) |
//! | 32 | shape hash: SHA-256 of the circuit version, name and parameters |
//! | 8 | constraints (LE u64) |
//! | 32 | SHA-256 of the verifying key's payload (the setup both keys are from) |
//! | 8 | payload length (LE u64) |
//! | 32 | payload SHA-256 |
//! | .. | payload |
//!
//! Loading checks every field against what the caller expects, so a key of
//! another circuit or sizes, an old format, a truncated or a corrupt file is
//! a clear error, never a wrong proof. A proving key is bound to the
//! verifying key of its setup: loading it checks that the verifying key it
//! carries, its header and the `.vk` beside it agree, so a proving key from
//! another setup is refused at load, naming the file.
//!
//! Keys come from a single-party setup: whoever generates them can forge
//! proofs. Keys derived from a seed (`--seed`, the devnet) are public and
//! insecure by construction; production keys need fresh randomness, and a
//! real deployment an MPC ceremony.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ark_bn254::{Bn254, Fr};
use ark_groth16::Groth16;
use ark_relations::r1cs::ConstraintMatrices;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

use crate::circuits::{Circuit, CircuitId, Inputs};
use crate::groth16::{ArkProvingKey, ProverKey, VerifyingKey};
use crate::params::RollupParams;
use crate::synth::{SynthError, matrices};

/// The key file format version.
pub const FORMAT_VERSION: u32 = 2;
/// Bumped whenever any circuit's constraints change, so old keys are refused.
pub const CIRCUIT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"AZTECKEY";
/// The parameters file in a key directory.
pub const PARAMS_FILE: &str = "params.json";

/// Proving or verifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `.pk`.
    Proving = 1,
    /// `.vk`.
    Verifying = 2,
}

impl KeyKind {
    fn ext(self) -> &'static str {
        match self {
            KeyKind::Proving => "pk",
            KeyKind::Verifying => "vk",
        }
    }
}

/// A key file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHeader {
    /// Proving or verifying.
    pub kind: KeyKind,
    /// Derived from a public seed.
    pub insecure: bool,
    /// The circuit.
    pub circuit: CircuitId,
    /// Circuit version, name and parameters, hashed.
    pub shape: [u8; 32],
    /// Constraints in the circuit.
    pub constraints: u64,
    /// SHA-256 of the verifying key's payload: the setup the key is from.
    pub vk_hash: [u8; 32],
}

/// Why a key could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything wrong with the content.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The circuit does not synthesize.
    #[error(transparent)]
    Synth(#[from] SynthError),
}

/// The shape hash of `circuit` under `params`.
pub fn shape_hash(circuit: CircuitId, params: &RollupParams) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"aztec-prover circuit shape\0");
    h.update(CIRCUIT_VERSION.to_le_bytes());
    h.update(circuit.name().as_bytes());
    h.update([0]);
    h.update(params.digest());
    h.finalize().into()
}

/// The path of a key in `dir`.
pub fn key_path(dir: &Path, circuit: CircuitId, kind: KeyKind) -> PathBuf {
    dir.join(format!("{}.{}", circuit.name(), kind.ext()))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a key file atomically (temporary file, then rename).
pub fn write_key_file(path: &Path, header: &KeyHeader, payload: &[u8]) -> Result<(), KeyError> {
    let mut buf = Vec::with_capacity(payload.len() + 128);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    buf.push(header.kind as u8);
    buf.push(u8::from(header.insecure));
    let name = header.circuit.name().as_bytes();
    buf.push(name.len() as u8);
    buf.extend_from_slice(name);
    buf.extend_from_slice(&header.shape);
    buf.extend_from_slice(&header.constraints.to_le_bytes());
    buf.extend_from_slice(&header.vk_hash);
    buf.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    buf.extend_from_slice(&Sha256::digest(payload));
    buf.extend_from_slice(payload);
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&buf).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Reads a key file and checks it is `kind` for `circuit` under `params`;
/// returns the header and the payload.
pub fn read_key_file(
    path: &Path,
    kind: KeyKind,
    circuit: CircuitId,
    params: &RollupParams,
) -> Result<(KeyHeader, Vec<u8>), KeyError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let invalid = |reason: String| KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let mut r = Reader { b: &bytes, at: 0 };
    let truncated = || {
        invalid(format!(
            "truncated: {} bytes is shorter than a key header",
            bytes.len()
        ))
    };
    if r.take(8).ok_or_else(truncated)? != MAGIC {
        return Err(invalid("not an aztec-prover key file (bad magic)".into()));
    }
    let version = u32::from_le_bytes(r.array().ok_or_else(truncated)?);
    if version != FORMAT_VERSION {
        return Err(invalid(format!(
            "key format version {version}, this build reads version {FORMAT_VERSION}"
        )));
    }
    let kind_byte = r.take(1).ok_or_else(truncated)?[0];
    let found_kind = match kind_byte {
        1 => KeyKind::Proving,
        2 => KeyKind::Verifying,
        k => return Err(invalid(format!("unknown key kind {k}"))),
    };
    if found_kind != kind {
        return Err(invalid(format!(
            "a {:?} key where a {kind:?} key was expected",
            found_kind
        )));
    }
    let insecure = r.take(1).ok_or_else(truncated)?[0] == 1;
    let name_len = r.take(1).ok_or_else(truncated)?[0] as usize;
    let name = String::from_utf8_lossy(r.take(name_len).ok_or_else(truncated)?).into_owned();
    let found =
        CircuitId::from_name(&name).ok_or_else(|| invalid(format!("unknown circuit {name:?}")))?;
    if found != circuit {
        return Err(invalid(format!(
            "key for circuit {found}, expected {circuit}"
        )));
    }
    let shape: [u8; 32] = r.array().ok_or_else(truncated)?;
    if shape != shape_hash(circuit, params) {
        return Err(invalid(format!(
            "key for {circuit} with other sizes or an older circuit version (shape hash {} != {})",
            hex::encode(&shape[..8]),
            hex::encode(&shape_hash(circuit, params)[..8])
        )));
    }
    let constraints = u64::from_le_bytes(r.array().ok_or_else(truncated)?);
    let vk_hash: [u8; 32] = r.array().ok_or_else(truncated)?;
    let len = u64::from_le_bytes(r.array().ok_or_else(truncated)?) as usize;
    let sum: [u8; 32] = r.array().ok_or_else(truncated)?;
    let payload = r.rest();
    if payload.len() != len {
        return Err(invalid(format!(
            "truncated or padded: payload is {} bytes, header says {len}",
            payload.len()
        )));
    }
    if <[u8; 32]>::from(Sha256::digest(payload)) != sum {
        return Err(invalid("corrupt: payload checksum mismatch".into()));
    }
    Ok((
        KeyHeader {
            kind,
            insecure,
            circuit,
            shape,
            constraints,
            vk_hash,
        },
        payload.to_vec(),
    ))
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.at.min(self.b.len())..];
        self.at = self.b.len();
        s
    }
}

/// The RNG of keys derived from a public seed.
pub fn seeded_rng(seed: &str, circuit: CircuitId) -> StdRng {
    let mut h = Sha256::new();
    h.update(b"aztec-prover insecure key seed\0");
    h.update(seed.as_bytes());
    h.update([0]);
    h.update(circuit.name().as_bytes());
    StdRng::from_seed(h.finalize().into())
}

/// A freshly generated key pair and the circuit's matrices.
pub struct Generated {
    /// The proving key.
    pub pk: ArkProvingKey,
    /// The matrices.
    pub matrices: ConstraintMatrices<Fr>,
}

/// Runs the setup of `circuit` with `rng`.
pub fn generate<R: rand::RngCore + rand::CryptoRng>(
    circuit: CircuitId,
    params: &RollupParams,
    rng: &mut R,
) -> Result<Generated, KeyError> {
    let m = matrices(circuit, params)?;
    let inputs = Inputs::blank(circuit, params);
    let pk = Groth16::<Bn254>::generate_random_parameters_with_reduction(
        Circuit {
            params,
            inputs: &inputs,
        },
        rng,
    )
    .map_err(|e| SynthError::Synthesis {
        circuit,
        reason: e.to_string(),
    })?;
    Ok(Generated { pk, matrices: m })
}

/// Writes `params.json` (the circuit sizes) into `dir`, creating it. That
/// file alone is what simulating agents (`PROVER_REAL_PROOFS=false`) need.
pub fn write_params(dir: &Path, params: &RollupParams) -> Result<(), KeyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let pfile = dir.join(PARAMS_FILE);
    let json = serde_json::to_vec_pretty(params).unwrap_or_default();
    std::fs::write(&pfile, json).map_err(io(&pfile))
}

/// Writes `params.json` and both keys of `circuit` into `dir`.
pub fn write_keys(
    dir: &Path,
    circuit: CircuitId,
    params: &RollupParams,
    g: &Generated,
    insecure: bool,
) -> Result<(), KeyError> {
    write_params(dir, params)?;
    let ser = |e: ark_serialize::SerializationError| KeyError::Invalid {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut vk_payload = Vec::new();
    g.pk.vk
        .serialize_uncompressed(&mut vk_payload)
        .map_err(ser)?;
    let mut header = KeyHeader {
        kind: KeyKind::Proving,
        insecure,
        circuit,
        shape: shape_hash(circuit, params),
        constraints: g.matrices.num_constraints as u64,
        vk_hash: Sha256::digest(&vk_payload).into(),
    };
    let mut payload = Vec::new();
    g.pk.serialize_uncompressed(&mut payload).map_err(ser)?;
    write_key_file(&key_path(dir, circuit, KeyKind::Proving), &header, &payload)?;
    header.kind = KeyKind::Verifying;
    write_key_file(
        &key_path(dir, circuit, KeyKind::Verifying),
        &header,
        &vk_payload,
    )
}

/// Reads `params.json` of a key directory.
pub fn read_params(dir: &Path) -> Result<RollupParams, KeyError> {
    let p = dir.join(PARAMS_FILE);
    let bytes = std::fs::read(&p).map_err(io(&p))?;
    let params: RollupParams = serde_json::from_slice(&bytes).map_err(|e| KeyError::Invalid {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    params.validate().map_err(|e| KeyError::Invalid {
        path: p,
        reason: e.to_string(),
    })?;
    Ok(params)
}

/// Loads an arkworks proving key (checked header; points are trusted after the checksum).
pub fn load_ark_proving_key(
    dir: &Path,
    circuit: CircuitId,
    params: &RollupParams,
) -> Result<(KeyHeader, ArkProvingKey), KeyError> {
    let path = key_path(dir, circuit, KeyKind::Proving);
    let (h, payload) = read_key_file(&path, KeyKind::Proving, circuit, params)?;
    let pk =
        ArkProvingKey::deserialize_uncompressed_unchecked(payload.as_slice()).map_err(|e| {
            KeyError::Invalid {
                path,
                reason: format!("undecodable proving key: {e}"),
            }
        })?;
    Ok((h, pk))
}

/// Loads a proving key ready for the backend (synthesizes the circuit's
/// matrices), checked to be from the setup of the verifying key beside it:
/// the one the node verifies its proofs with.
pub fn load_prover_key(
    dir: &Path,
    circuit: CircuitId,
    params: &RollupParams,
) -> Result<(KeyHeader, ProverKey), KeyError> {
    let (h, pk) = load_ark_proving_key(dir, circuit, params)?;
    let pk_path = key_path(dir, circuit, KeyKind::Proving);
    let vk_path = key_path(dir, circuit, KeyKind::Verifying);
    let (vh, _) = read_key_file(&vk_path, KeyKind::Verifying, circuit, params)?;
    let mut carried = Vec::new();
    pk.vk
        .serialize_uncompressed(&mut carried)
        .map_err(|e| KeyError::Invalid {
            path: pk_path.clone(),
            reason: e.to_string(),
        })?;
    let carried: [u8; 32] = Sha256::digest(&carried).into();
    if carried != h.vk_hash || h.vk_hash != vh.vk_hash {
        return Err(KeyError::Invalid {
            path: pk_path,
            reason: format!(
                "made in another setup than {} (verifying key {} here, {} there): \
                 its proofs would not verify; copy both keys of one setup",
                vk_path.display(),
                hex::encode(&carried[..8]),
                hex::encode(&vh.vk_hash[..8])
            ),
        });
    }
    let m = matrices(circuit, params)?;
    if m.num_constraints as u64 != h.constraints {
        return Err(KeyError::Invalid {
            path: key_path(dir, circuit, KeyKind::Proving),
            reason: format!(
                "key made for {} constraints, the circuit has {}",
                h.constraints, m.num_constraints
            ),
        });
    }
    let key = ProverKey::new(circuit, params.clone(), &pk, Arc::new(m))?;
    Ok((h, key))
}

/// Loads a verifying key (points validated: on the curve, in the subgroup).
pub fn load_verifying_key(
    dir: &Path,
    circuit: CircuitId,
    params: &RollupParams,
) -> Result<(KeyHeader, VerifyingKey), KeyError> {
    let path = key_path(dir, circuit, KeyKind::Verifying);
    let (h, payload) = read_key_file(&path, KeyKind::Verifying, circuit, params)?;
    let vk = VerifyingKey::deserialize_uncompressed(payload.as_slice()).map_err(|e| {
        KeyError::Invalid {
            path: path.clone(),
            reason: format!("undecodable verifying key: {e}"),
        }
    })?;
    if vk.gamma_abc_g1.len() != circuit.num_public_inputs(params) + 1 {
        return Err(KeyError::Invalid {
            path,
            reason: "verifying key has the wrong number of public inputs".into(),
        });
    }
    Ok((h, vk))
}

/// Generates and writes the keys of `circuits` into `dir`: from `seed` when
/// given (public, insecure: the devnet), else from the OS's randomness.
/// `progress` is told about each circuit as it is done.
pub fn generate_dir(
    dir: &Path,
    params: &RollupParams,
    seed: Option<&str>,
    circuits: &[CircuitId],
    mut progress: impl FnMut(CircuitId, &Generated, std::time::Duration),
) -> Result<(), KeyError> {
    params.validate().map_err(|e| KeyError::Invalid {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    for &c in circuits {
        let t = std::time::Instant::now();
        let g = match seed {
            Some(s) => generate(c, params, &mut seeded_rng(s, c))?,
            None => generate(
                c,
                params,
                &mut StdRng::from_rng(rand::rngs::OsRng).map_err(|e| KeyError::Invalid {
                    path: dir.to_path_buf(),
                    reason: format!("no OS randomness: {e}"),
                })?,
            )?,
        };
        write_keys(dir, c, params, &g, seed.is_some())?;
        progress(c, &g, t.elapsed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proving key from another setup (same circuit, same sizes, a valid
    /// file) is refused at load, naming the file, instead of making proofs
    /// the node cannot verify.
    #[test]
    fn a_proving_key_of_another_setup_is_refused_at_load() {
        let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (c, p) = (CircuitId::BaseParity, RollupParams::test());
        generate_dir(ours.path(), &p, Some("ours"), &[c], |_, _, _| {}).unwrap();
        generate_dir(theirs.path(), &p, Some("theirs"), &[c], |_, _, _| {}).unwrap();
        assert!(load_prover_key(ours.path(), c, &p).is_ok());
        let pk = key_path(ours.path(), c, KeyKind::Proving);
        std::fs::copy(key_path(theirs.path(), c, KeyKind::Proving), &pk).unwrap();
        let e = load_prover_key(ours.path(), c, &p).unwrap_err().to_string();
        assert!(
            e.contains(&pk.display().to_string()) && e.contains("another setup"),
            "{e}"
        );
    }
}

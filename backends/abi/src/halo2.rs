//! halo2curves 0.10 (its `asm` field arithmetic on x86-64) as a second
//! reference for `bench kernels`: `msm_best` for MSM G1 and `best_fft` for
//! the NTT, on the same inputs as arkworks and the backend, checked against
//! them. Inputs are converted before the timing; results after it.

use halo2curves::bn256::{Fq, Fr, G1Affine};
use halo2curves::ff::PrimeField;
use halo2curves::group::Curve;
use halo2curves::group::prime::PrimeCurveAffine;
use halo2curves::{CurveAffine, msm::msm_best};

fn field<F: PrimeField>(b: &[u8]) -> Result<F, String> {
    let mut repr = F::Repr::default();
    repr.as_mut().copy_from_slice(b);
    Option::from(F::from_repr(repr)).ok_or_else(|| "a value is not canonical".to_string())
}

fn field_bytes<F: PrimeField>(f: &F) -> Vec<u8> {
    f.to_repr().as_ref().to_vec()
}

/// An MSM G1's inputs in halo2curves' types.
pub struct Msm {
    bases: Vec<G1Affine>,
    scalars: Vec<Fr>,
}

impl Msm {
    /// From the ABI's encodings (64-byte points, 32-byte scalars, little-endian).
    pub fn new(points: &[u8], scalars: &[u8]) -> Result<Msm, String> {
        let bases = points
            .chunks(64)
            .map(|p| {
                if p.iter().all(|b| *b == 0) {
                    return Ok(G1Affine::identity());
                }
                let (x, y) = (field::<Fq>(&p[..32])?, field::<Fq>(&p[32..])?);
                Option::from(G1Affine::from_xy(x, y))
                    .ok_or_else(|| "a point is not on the curve".to_string())
            })
            .collect::<Result<_, String>>()?;
        let scalars = scalars
            .chunks(32)
            .map(field::<Fr>)
            .collect::<Result<_, _>>()?;
        Ok(Msm { bases, scalars })
    }

    /// The sum, in the ABI's encoding.
    pub fn run(&self) -> Vec<u8> {
        let p = msm_best(&self.scalars, &self.bases).to_affine();
        match Option::<halo2curves::Coordinates<G1Affine>>::from(p.coordinates()) {
            Some(c) => [field_bytes(c.x()), field_bytes(c.y())].concat(),
            None => vec![0; 64],
        }
    }
}

/// An NTT's input in halo2curves' types.
pub struct Ntt {
    values: Vec<Fr>,
    omega: Fr,
    log_n: u32,
}

impl Ntt {
    /// From the ABI's encoding and the root of unity the other sides use.
    pub fn new(values: &[u8], omega: &[u8], log_n: u32) -> Result<Ntt, String> {
        Ok(Ntt {
            values: values
                .chunks(32)
                .map(field::<Fr>)
                .collect::<Result<_, _>>()?,
            omega: field::<Fr>(omega)?,
            log_n,
        })
    }

    /// The transform of a copy (the copy is timed too, as the others copy).
    pub fn run(&self) -> Vec<Fr> {
        let mut v = self.values.clone();
        halo2curves::fft::best_fft(&mut v, self.omega, self.log_n);
        v
    }

    /// Values in the ABI's encoding.
    pub fn bytes(v: &[Fr]) -> Vec<u8> {
        v.iter().flat_map(field_bytes).collect()
    }
}

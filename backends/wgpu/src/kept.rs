//! Kept Fr vectors (ABI version 3): a proof's polynomials held in device
//! memory between calls, in Montgomery form, so that the QAP's NTTs, its
//! pointwise step and the H MSM run without the data crossing the bus.
//! A vector larger than one binding is kept on the host instead and takes
//! the byte path (with its CPU fallback): slower, never refused.

use std::sync::Mutex;

use crate::error::GpuError;

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};

use crate::gpu::Dispatch;
use crate::msm::Prepared;
use crate::{State, fallback};

/// One kept vector.
#[derive(Debug)]
pub enum Vector {
    /// On the device, `n` elements in Montgomery form (below 2p).
    Device {
        /// The buffer (its own, freed with the vector).
        buffer: wgpu::Buffer,
        /// Elements.
        n: usize,
    },
    /// On the host, canonical encodings (too large for one binding).
    Host(Mutex<Vec<u8>>),
}

impl aztec_backend_abi::export::KeptVector for Vector {
    fn len(&self) -> usize {
        match self {
            Vector::Device { n, .. } => *n,
            Vector::Host(b) => b.lock().map_or(0, |b| b.len() / 32),
        }
    }
}

impl Drop for Vector {
    fn drop(&mut self) {
        // Device memory goes back now, not when wgpu next cleans up.
        if let Vector::Device { buffer, .. } = self {
            buffer.destroy();
        }
    }
}

/// Canonical encodings of `data` (each element reduced modulo r).
fn canonical(data: &[u8]) -> Vec<u8> {
    data.chunks_exact(32)
        .flat_map(|e| Fr::from_le_bytes_mod_order(e).into_bigint().to_bytes_le())
        .collect()
}

impl State {
    fn holds_on_device(&self, n: usize) -> bool {
        n > 0 && (32 * n as u64) <= self.gpu.max_binding()
    }

    /// Keeps `data` (ABI encodings, reduced when not canonical).
    pub fn vec_upload(&self, data: &[u8]) -> Result<Vector, GpuError> {
        let n = data.len() / 32;
        if !self.holds_on_device(n) {
            return Ok(Vector::Host(Mutex::new(canonical(data))));
        }
        let prog = self.ntt_program()?;
        let _one = self.alone()?;
        let buffer = self.gpu.storage("kept vector", data.len() as u64)?;
        self.gpu.upload(&[(&buffer, data)])?;
        let idle = self.gpu.buffer("ntt.work", 256)?;
        let tables = self.ntt_idle_tables()?;
        self.gpu.run(
            prog,
            &[&buffer, &idle, &tables[0], &tables[1]],
            &[Dispatch::new("to_mont", n as u64, &[n as u32])],
            &mut [],
        )?;
        Ok(Vector::Device { buffer, n })
    }

    /// The twiddle and table bindings of the NTT program when a dispatch
    /// uses neither.
    fn ntt_idle_tables(&self) -> Result<[wgpu::Buffer; 2], GpuError> {
        Ok([
            self.gpu.buffer("ntt.twiddles.forward", 256)?,
            self.gpu.buffer("ntt.table", 256)?,
        ])
    }

    /// Elements `first..first + out.len() / 32`, canonical, into `out`.
    pub fn vec_download(&self, v: &Vector, first: usize, out: &mut [u8]) -> Result<(), GpuError> {
        let count = out.len() / 32;
        match v {
            Vector::Host(b) => {
                let b = b
                    .lock()
                    .map_err(|_| GpuError::from("a kept vector is poisoned"))?;
                out.copy_from_slice(&b[32 * first..32 * (first + count)]);
                Ok(())
            }
            Vector::Device { buffer, .. } => {
                if count == 0 {
                    return Ok(());
                }
                let prog = self.ntt_program()?;
                let _one = self.alone()?;
                let b_out = self.gpu.buffer("ntt.input", out.len() as u64)?;
                let (d, tables) = self.export(buffer, first, count)?;
                self.gpu.run(
                    prog,
                    &[&b_out, buffer, &tables[0], &tables[1]],
                    &[d],
                    &mut [(&b_out, 0, out)],
                )
            }
        }
    }

    /// The dispatch writing `count` elements of a kept vector (bound as
    /// `work`) from `first`, canonical, at the start of `input`, and the
    /// idle tables to bind beside.
    fn export(
        &self,
        vector: &wgpu::Buffer,
        first: usize,
        count: usize,
    ) -> Result<(Dispatch, [wgpu::Buffer; 2]), GpuError> {
        let n = vector.size() / 32;
        if (first + count) as u64 > n {
            return Err(GpuError::Device(format!(
                "internal: elements {first}..{} of a kept vector of {n}",
                first + count
            )));
        }
        Ok((
            Dispatch::new(
                "from_mont_into",
                count as u64,
                &[count as u32, first as u32, 0],
            ),
            self.ntt_idle_tables()?,
        ))
    }

    /// NTT of a kept vector in place (as the ABI's `ntt`).
    pub fn vec_ntt(
        &self,
        v: &Vector,
        log_n: u32,
        inverse: bool,
        coset: Option<&[u8; 32]>,
    ) -> Result<(), GpuError> {
        match v {
            Vector::Host(b) => {
                let mut b = b
                    .lock()
                    .map_err(|_| GpuError::from("a kept vector is poisoned"))?;
                if self.ntt_fits(log_n) {
                    self.ntt(&mut b, log_n, inverse, coset)
                } else {
                    fallback::cpu()?
                        .ntt(&mut b, log_n, inverse, coset)
                        .map_err(|e| GpuError::Device(e.to_string()))
                }
            }
            Vector::Device { buffer, n } => {
                let coset = coset.map(|g| Fr::from_le_bytes_mod_order(g));
                let prog = self.ntt_program()?;
                let _one = self.alone()?;
                crate::ntt::ntt_kept(
                    &self.gpu,
                    prog,
                    &self.twiddles,
                    buffer,
                    *n as u32,
                    log_n,
                    inverse,
                    coset,
                )
            }
        }
    }

    /// `(a[i]·b[i] − c[i])·scale` of a kept `a || b || c`, kept.
    pub fn vec_ab_minus_c(&self, v: &Vector, scale: &[u8; 32]) -> Result<Vector, GpuError> {
        match v {
            Vector::Host(b) => {
                let b = b
                    .lock()
                    .map_err(|_| GpuError::from("a kept vector is poisoned"))?;
                let n = b.len() / 96;
                let s = Fr::from_le_bytes_mod_order(scale);
                let get = |k: usize| Fr::from_le_bytes_mod_order(&b[32 * k..32 * k + 32]);
                let out = (0..n)
                    .flat_map(|i| {
                        ((get(i) * get(n + i) - get(2 * n + i)) * s)
                            .into_bigint()
                            .to_bytes_le()
                    })
                    .collect();
                Ok(Vector::Host(Mutex::new(out)))
            }
            Vector::Device { buffer, n } => {
                let part = n / 3;
                let prog = self.ntt_program()?;
                let _one = self.alone()?;
                let out = self.gpu.storage("kept vector", 32 * part as u64)?;
                let tables = self.ntt_idle_tables()?;
                let mut scale_words = [0u32; 8];
                for (w, c) in scale_words.iter_mut().zip(scale.chunks_exact(4)) {
                    *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
                self.gpu.run(
                    prog,
                    &[&out, buffer, &tables[0], &tables[1]],
                    &[Dispatch::new("ab_minus_c", part as u64, &[part as u32])
                        .with_words(8, &scale_words)],
                    &mut [],
                )?;
                Ok(Vector::Device {
                    buffer: out,
                    n: part,
                })
            }
        }
    }

    /// G1 MSM over prepared bases with the scalars of `v` from `first`.
    pub fn msm_g1_prepared_vec(
        &self,
        bases: &Prepared,
        v: &Vector,
        first: usize,
    ) -> Result<[u8; 64], GpuError> {
        let count = aztec_backend_abi::export::Prepared::count(bases);
        match v {
            Vector::Host(b) => {
                let scalars = b
                    .lock()
                    .map_err(|_| GpuError::from("a kept vector is poisoned"))?
                    [32 * first..32 * (first + count)]
                    .to_vec();
                self.msm_g1_prepared(bases, &scalars)
            }
            Vector::Device { buffer, .. } => {
                let ntt = self.ntt_program()?;
                let msm = self.msm_program(crate::shader::Curve::G1)?;
                let _one = self.alone()?;
                crate::msm::msm_g1_prepared_filled(&self.gpu, msm, self.tuning, bases, |at, m| {
                    let into = self.gpu.buffer("msm.scalars", 32 * m as u64)?;
                    let (d, tables) = self.export(buffer, first + at, m)?;
                    self.gpu
                        .run(ntt, &[&into, buffer, &tables[0], &tables[1]], &[d], &mut [])
                })
            }
        }
    }
}

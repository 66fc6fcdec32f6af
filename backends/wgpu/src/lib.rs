//! The GPU proving backend: BN254 G1 MSM and Fr NTT as WGSL compute shaders
//! on any GPU wgpu drives (Vulkan, Metal, DX12; Mesa's lavapipe in CI),
//! built as `libaztec_backend_wgpu.so` with the same C ABI as the CPU backend.
//!
//! - [`shader`] generates the WGSL: Montgomery arithmetic on 13- or 29-bit limbs, the
//!   MSM kernels (`msm.wgsl`) and the NTT kernels (`ntt.wgsl`);
//! - [`gpu`] opens the adapter, compiles, keeps buffers, runs dispatches;
//! - [`msm`] and [`ntt`] drive one operation each from the host;
//! - [`fallback`] loads the CPU backend for G2 MSM and oversized NTTs;
//! - [`ffi`] is the exported table.

pub mod fallback;
pub mod ffi;
pub mod gpu;
pub mod msm;
pub mod ntt;
pub mod shader;

use std::sync::{Mutex, OnceLock};

use ark_ff::PrimeField;

use gpu::{Gpu, Program};

/// Everything opened once per process.
pub struct State {
    /// The device.
    pub gpu: Gpu,
    msm: OnceLock<Result<Program, String>>,
    ntt: OnceLock<Result<Program, String>>,
    twiddles: ntt::TwiddleCache,
    /// One operation at a time: the buffers are shared.
    busy: Mutex<()>,
}

static STATE: OnceLock<Result<State, String>> = OnceLock::new();

/// The opened device, or why there is none.
pub fn state() -> Result<&'static State, String> {
    STATE
        .get_or_init(|| {
            Gpu::open().map(|gpu| State {
                gpu,
                msm: OnceLock::new(),
                ntt: OnceLock::new(),
                twiddles: ntt::TwiddleCache::default(),
                busy: Mutex::new(()),
            })
        })
        .as_ref()
        .map_err(|e| e.clone())
}

impl State {
    fn msm_program(&self) -> Result<&Program, String> {
        self.msm
            .get_or_init(|| {
                self.gpu.program(
                    "msm",
                    &shader::msm(self.gpu.limbs),
                    msm::BUFFERS,
                    msm::ENTRIES,
                )
            })
            .as_ref()
            .map_err(|e| e.clone())
    }

    fn ntt_program(&self) -> Result<&Program, String> {
        self.ntt
            .get_or_init(|| {
                self.gpu.program(
                    "ntt",
                    &shader::ntt(self.gpu.limbs),
                    ntt::BUFFERS,
                    ntt::ENTRIES,
                )
            })
            .as_ref()
            .map_err(|e| e.clone())
    }

    /// Runs `f` with the MSM program, alone on the device.
    fn with_msm<T>(&self, f: impl FnOnce(&Program) -> Result<T, String>) -> Result<T, String> {
        let prog = self.msm_program()?;
        let _one = self
            .busy
            .lock()
            .map_err(|_| "the GPU lock is poisoned".to_string())?;
        f(prog)
    }

    /// G1 MSM (ABI encodings).
    pub fn msm_g1(&self, points: &[u8], scalars: &[u8]) -> Result<[u8; 64], String> {
        self.with_msm(|prog| msm::msm_g1(&self.gpu, prog, points, scalars))
    }

    /// Keeps G1 bases (ABI encoding) on the device for [`State::msm_g1_prepared`].
    pub fn prepare_g1(&self, points: &[u8]) -> Result<msm::Prepared, String> {
        self.with_msm(|prog| msm::prepare_g1(&self.gpu, prog, points))
    }

    /// G1 MSM over prepared bases (ABI encodings).
    pub fn msm_g1_prepared(
        &self,
        bases: &msm::Prepared,
        scalars: &[u8],
    ) -> Result<[u8; 64], String> {
        self.with_msm(|prog| msm::msm_g1_prepared(&self.gpu, prog, bases, scalars))
    }

    /// Whether a vector of 2^log_n fits the device (otherwise the CPU backend runs it).
    pub fn ntt_fits(&self, log_n: u32) -> bool {
        (32u64 << log_n) <= self.gpu.max_binding()
    }

    /// NTT of whole vectors of 2^log_n in `data` (ABI encoding, in place).
    pub fn ntt(
        &self,
        data: &mut [u8],
        log_n: u32,
        inverse: bool,
        coset: Option<&[u8; 32]>,
    ) -> Result<(), String> {
        let coset = coset.map(|g| ark_bn254::Fr::from_le_bytes_mod_order(g));
        if coset.is_some_and(|g| g == ark_bn254::Fr::from(0u64)) {
            return Err("the coset generator is zero".into());
        }
        let prog = self.ntt_program()?;
        let _one = self
            .busy
            .lock()
            .map_err(|_| "the GPU lock is poisoned".to_string())?;
        ntt::ntt(&self.gpu, prog, &self.twiddles, data, log_n, inverse, coset)
    }
}

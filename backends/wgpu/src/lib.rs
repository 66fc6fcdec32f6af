//! The GPU proving backend: BN254 G1 and G2 MSM and Fr NTT as WGSL compute shaders
//! on any GPU wgpu drives (Vulkan, Metal, DX12; Mesa's lavapipe in CI),
//! built as `libaztec_backend_wgpu.so` with the same C ABI as the CPU backend.
//!
//! - [`shader`] generates the WGSL: Montgomery arithmetic on 13- or 29-bit limbs, the
//!   MSM kernels (`msm.wgsl`) and the NTT kernels (`ntt.wgsl`);
//! - [`gpu`] opens the adapter, compiles, keeps buffers, runs dispatches;
//! - [`msm`] and [`ntt`] drive one operation each from the host;
//! - [`kept`] holds Fr vectors on the device between calls (ABI version 3);
//! - [`fallback`] loads the CPU backend for oversized NTTs, and for G2 MSM
//!   where it runs on the host (see [`G2_ENV`]);
//! - [`ffi`] is the exported table.

pub mod error;
pub mod fallback;
pub mod ffi;
pub mod gpu;
pub mod kept;
pub mod msm;
pub mod ntt;
pub mod options;
pub mod shader;

use std::sync::{Mutex, OnceLock};

use ark_ff::PrimeField;

pub use error::GpuError;
use gpu::{Gpu, Program};

/// Everything opened once per process.
pub struct State {
    /// The device.
    pub gpu: Gpu,
    /// The MSM's work shape (see [`msm::Tuning`]).
    pub tuning: msm::Tuning,
    msm: OnceLock<Result<Program, GpuError>>,
    msm_g2: OnceLock<Result<Program, GpuError>>,
    ntt: OnceLock<Result<Program, GpuError>>,
    twiddles: ntt::TwiddleCache,
    /// One operation at a time: the buffers are shared.
    busy: Mutex<()>,
}

static STATE: OnceLock<Result<State, GpuError>> = OnceLock::new();

/// Environment variable choosing where G2 MSMs run: `gpu` or `cpu` (the
/// CPU backend library beside this one). Unset: the GPU where it is a
/// device of its own with the wide field layout; otherwise the CPU backend
/// (on a CPU adapter such as lavapipe the GPU path would only be slower, and
/// the narrow layout's G2 program is very long to compile).
pub const G2_ENV: &str = "AZTEC_PROVER_WGPU_G2";

/// Whether the device has been opened (its options are read then).
pub fn opened() -> bool {
    STATE.get().is_some()
}

/// The opened device, or why there is none. On a GPU its programs start
/// compiling at once, on a thread of their own (see [`State::warm_up`]).
pub fn state() -> Result<&'static State, GpuError> {
    let mut opened = false;
    let st = STATE
        .get_or_init(|| {
            opened = true;
            let tuning = msm::Tuning::from_env()?;
            Gpu::open().map(|gpu| State {
                gpu,
                tuning,
                msm: OnceLock::new(),
                msm_g2: OnceLock::new(),
                ntt: OnceLock::new(),
                twiddles: ntt::TwiddleCache::default(),
                busy: Mutex::new(()),
            })
        })
        .as_ref()
        .map_err(|e| e.clone())?;
    if opened && st.gpu.is_device() {
        std::thread::spawn(|| {
            if let Ok(st) = state() {
                st.warm_up();
            }
        });
    }
    Ok(st)
}

impl State {
    /// Compiles the programs a proof uses (G1 MSM, NTT, and G2 MSM where it
    /// runs on the device). A GPU driver compiles them on first use, and on
    /// a machine whose driver cache is cold that takes seconds (23 s for the
    /// G2 MSM on an H200): begun when the device opens, it overlaps an
    /// agent's start and its wait for a job, and a call that needs a
    /// program still compiling waits for it. Errors are kept for that call.
    pub fn warm_up(&self) {
        let _ = self.msm_program(shader::Curve::G1);
        let _ = self.ntt_program();
        if self.g2_on_gpu() == Ok(true) {
            let _ = self.msm_program(shader::Curve::G2);
        }
    }

    fn msm_program(&self, c: shader::Curve) -> Result<&Program, GpuError> {
        let (cell, label) = match c {
            shader::Curve::G1 => (&self.msm, "msm"),
            shader::Curve::G2 => (&self.msm_g2, "msm g2"),
        };
        cell.get_or_init(|| {
            self.gpu.program(
                label,
                &shader::msm(self.gpu.limbs, c),
                msm::BUFFERS,
                msm::ENTRIES,
            )
        })
        .as_ref()
        .map_err(|e| e.clone())
    }

    fn ntt_program(&self) -> Result<&Program, GpuError> {
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

    /// Holds the device for one operation (the pool's buffers are shared).
    fn alone(&self) -> Result<std::sync::MutexGuard<'_, ()>, GpuError> {
        self.busy
            .lock()
            .map_err(|_| GpuError::from("the GPU lock is poisoned"))
    }

    /// Runs `f` with the MSM program of `c`, alone on the device.
    fn with_msm<T>(
        &self,
        c: shader::Curve,
        f: impl FnOnce(&Program) -> Result<T, GpuError>,
    ) -> Result<T, GpuError> {
        let prog = self.msm_program(c)?;
        let _one = self
            .busy
            .lock()
            .map_err(|_| GpuError::from("the GPU lock is poisoned"))?;
        f(prog)
    }

    /// An MSM of `P` on the device, its point of N bytes (ABI encodings).
    fn msm_of<P: msm::GpuCurve, const N: usize>(
        &self,
        points: &[u8],
        scalars: &[u8],
    ) -> Result<[u8; N], GpuError> {
        let out = self.with_msm(P::CURVE, |prog| {
            msm::msm::<P>(&self.gpu, prog, self.tuning, points, scalars)
        })?;
        out.try_into()
            .map_err(|_| GpuError::Device(format!("internal: a {:?} point is {N} bytes", P::CURVE)))
    }

    /// G1 MSM (ABI encodings).
    pub fn msm_g1(&self, points: &[u8], scalars: &[u8]) -> Result<[u8; 64], GpuError> {
        self.gpu.call("msm_g1", scalars.len() / 32);
        self.msm_of::<ark_bn254::g1::Config, 64>(points, scalars)
    }

    /// Whether G2 MSMs run on the device (see [`G2_ENV`]).
    pub fn g2_on_gpu(&self) -> Result<bool, GpuError> {
        match crate::options::get(G2_ENV).as_deref().map(str::trim) {
            None | Some("") => Ok(self.gpu.is_device() && self.gpu.limbs == shader::Limbs::Wide),
            Some("gpu") => Ok(true),
            Some("cpu") => Ok(false),
            Some(v) => Err(GpuError::Device(format!(
                "{G2_ENV}={v:?}: expected gpu or cpu"
            ))),
        }
    }

    /// G2 MSM on the device (ABI encodings).
    pub fn msm_g2(&self, points: &[u8], scalars: &[u8]) -> Result<[u8; 128], GpuError> {
        self.gpu.call("msm_g2", scalars.len() / 32);
        self.msm_of::<ark_bn254::g2::Config, 128>(points, scalars)
    }

    /// Keeps G1 bases (ABI encoding) on the device for [`State::msm_g1_prepared`].
    pub fn prepare_g1(&self, points: &[u8]) -> Result<msm::Prepared, GpuError> {
        self.with_msm(shader::Curve::G1, |prog| {
            msm::prepare_g1(&self.gpu, prog, self.tuning, points)
        })
    }

    /// G1 MSM over prepared bases (ABI encodings).
    pub fn msm_g1_prepared(
        &self,
        bases: &msm::Prepared,
        scalars: &[u8],
    ) -> Result<[u8; 64], GpuError> {
        self.gpu.call("msm_g1_prepared", scalars.len() / 32);
        self.with_msm(shader::Curve::G1, |prog| {
            msm::msm_g1_prepared(&self.gpu, prog, self.tuning, bases, scalars)
        })
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
    ) -> Result<(), GpuError> {
        self.gpu.call("ntt", data.len() / 32);
        let coset = coset.map(|g| ark_bn254::Fr::from_le_bytes_mod_order(g));
        if coset.is_some_and(|g| g == ark_bn254::Fr::from(0u64)) {
            return Err(GpuError::Argument("the coset generator is zero".into()));
        }
        let prog = self.ntt_program()?;
        let _one = self
            .busy
            .lock()
            .map_err(|_| GpuError::from("the GPU lock is poisoned"))?;
        ntt::ntt(&self.gpu, prog, &self.twiddles, data, log_n, inverse, coset)
    }
}

//! The exported C table (`aztec_prover_backend_v3`), as in the CPU backend:
//! arguments checked, panics caught, a readable message for `last_error`.
//! GPU failures are `DEVICE`; a missing adapter makes `info` fail, so the
//! loader refuses the library with the reason.

use std::sync::LazyLock;

use aztec_backend_abi::export::{self, Handles, fail, guarded};
use aztec_backend_abi::ffi::{self, BackendInfo, BackendTable, Status, caps, status};

use crate::error::GpuError;
use crate::{fallback, state};

use aztec_backend_abi::export::{MAX_MSM, TWO_ADICITY};

#[allow(unsafe_code)]
unsafe extern "C" fn info(out: *mut BackendInfo) -> Status {
    guarded(|| {
        if out.is_null() {
            return fail(status::INVALID_ARGUMENT, "info: null output");
        }
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        let mut i = BackendInfo::zeroed();
        i.abi_version = ffi::ABI_VERSION;
        i.curve_id = ffi::CURVE_BN254;
        i.scalar_field_id = ffi::FIELD_BN254_FR;
        // Kept vectors save the bus on a GPU, and the mapped copies even on
        // a CPU adapter.
        i.capabilities = caps::MSM_G1
            | caps::MSM_G2
            | caps::NTT
            | caps::COSET_NTT
            | caps::BATCH_NTT
            | caps::KEPT_VECTORS;
        match st.g2_on_gpu() {
            // G2 beside the rest: on the CPU library beside this one while
            // G1 keeps the device busy, or on the device where its turn
            // overlaps the host's share of a proof. Not on a CPU adapter,
            // whose "device" is the host's cores.
            Ok(_) if st.gpu.is_device() => i.capabilities |= caps::G2_BESIDE_G1,
            Ok(_) => {}
            Err(e) => return fail(status::INVALID_ARGUMENT, e.to_string()),
        }
        i.preferred_threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        i.max_log_ntt = TWO_ADICITY;
        ffi::write_cstr(&mut i.name, "wgpu");
        ffi::write_cstr(&mut i.detail, &st.gpu.describe());
        // SAFETY: `out` is non-null and, by the ABI, points to one writable BackendInfo.
        unsafe { out.write(i) };
        status::OK
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn configure(threads: u32, cpus: *const u32, n_cpus: u32) -> Status {
    guarded(|| {
        let allowed: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        // SAFETY: forwarded with the same ABI obligations.
        let list: Vec<u32> = match unsafe { export::configure_args(cpus, n_cpus, &allowed) } {
            Ok(l) => l.into_iter().map(|c| c as u32).collect(),
            Err(s) => return s,
        };
        match fallback::configure(threads, &list) {
            Ok(()) => status::OK,
            Err(e) => fail(status::INVALID_ARGUMENT, e.to_string()),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn msm_g1(points: *const u8, scalars: *const u8, n: u64, out: *mut u8) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (pts, sc, out) =
            match unsafe { export::msm_args("msm_g1", ffi::G1_BYTES, points, scalars, n, out) } {
                Ok(a) => a,
                Err(s) => return s,
            };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        match st.msm_g1(pts, sc) {
            Ok(r) => {
                out.copy_from_slice(&r);
                status::OK
            }
            Err(e) => failure("msm_g1", e),
        }
    })
}

/// The status of a failed operation, by the error's kind: the caller's bad
/// input, a device out of memory, or the device's failure.
fn failure(op: &str, e: GpuError) -> Status {
    let code = match &e {
        GpuError::Argument(_) => status::INVALID_ARGUMENT,
        GpuError::OutOfMemory(_) => status::OUT_OF_MEMORY,
        GpuError::Device(_) => status::DEVICE,
    };
    fail(code, format!("{op}: {e}"))
}

/// The opened device, or `DEVICE` with why there is none.
fn device() -> Result<&'static crate::State, Status> {
    state().map_err(|e| fail(status::DEVICE, e.to_string()))
}

/// Prepared G1 bases (device buffers), by handle.
static PREPARED: LazyLock<Handles<crate::msm::Prepared>> = LazyLock::new(Handles::default);

#[allow(unsafe_code)]
unsafe extern "C" fn g1_bases_prepare(points: *const u8, n: u64, handle: *mut u64) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let pts = match unsafe { export::prepare_args(points, n, handle, MAX_MSM) } {
            Ok(p) => p,
            Err(s) => return s,
        };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        match st.prepare_g1(pts) {
            // SAFETY: `handle` was checked non-null; the ABI makes it writable.
            Ok(p) => unsafe { PREPARED.give(p, handle) },
            Err(e) => failure("g1_bases_prepare", e),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn msm_g1_prepared(
    handle: u64,
    scalars: *const u8,
    n: u64,
    out: *mut u8,
) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (bases, sc) = match unsafe { PREPARED.prepared_args(handle, scalars, n, out) } {
            Ok(a) => a,
            Err(s) => return s,
        };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        match st.msm_g1_prepared(&bases, sc) {
            Ok(r) => {
                // SAFETY: non-null (checked) and, by the ABI, valid for one G1 point.
                unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), out, ffi::G1_BYTES) };
                status::OK
            }
            Err(e) => failure("msm_g1_prepared", e),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn g1_bases_release(handle: u64) -> Status {
    guarded(|| PREPARED.release(handle))
}

#[allow(unsafe_code)]
unsafe extern "C" fn msm_g2(points: *const u8, scalars: *const u8, n: u64, out: *mut u8) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (pts, sc, out) =
            match unsafe { export::msm_args("msm_g2", ffi::G2_BYTES, points, scalars, n, out) } {
                Ok(a) => a,
                Err(s) => return s,
            };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        let sum = match st.g2_on_gpu() {
            Ok(true) => st.msm_g2(pts, sc).map_err(|e| failure("msm_g2", e)),
            Ok(false) => match fallback::cpu() {
                Ok(cpu) => cpu
                    .msm_g2(pts, sc)
                    .map_err(|e| fail(status::INVALID_ARGUMENT, format!("msm_g2: {e}"))),
                Err(e) => Err(fail(status::UNSUPPORTED, e.to_string())),
            },
            Err(e) => Err(fail(status::INVALID_ARGUMENT, e.to_string())),
        };
        match sum {
            Ok(r) => {
                out.copy_from_slice(&r);
                status::OK
            }
            Err(s) => s,
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn ntt_fn(
    data: *mut u8,
    log_n: u32,
    batch: u32,
    inverse: u32,
    coset: *const u8,
) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (data, coset) = match unsafe { export::ntt_args(data, log_n, batch, coset) } {
            Ok(Some(a)) => a,
            Ok(None) => return status::OK,
            Err(s) => return s,
        };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        if !st.ntt_fits(log_n) {
            return match fallback::cpu().and_then(|c| {
                c.ntt(data, log_n, inverse != 0, coset.as_ref())
                    .map_err(|e| GpuError::Device(e.to_string()))
            }) {
                Ok(()) => status::OK,
                Err(e) => fail(
                    status::DEVICE,
                    format!("ntt: too large for the GPU, and {e}"),
                ),
            };
        }
        match st.ntt(data, log_n, inverse != 0, coset.as_ref()) {
            Ok(()) => status::OK,
            Err(e) => failure("ntt", e),
        }
    })
}

/// Kept vectors (device buffers, or host bytes when too large), by handle.
static VECTORS: LazyLock<Handles<crate::kept::Vector>> = LazyLock::new(Handles::default);

/// Largest kept vector (2^32 elements).
const MAX_VECTOR: u64 = 1 << 32;

#[allow(unsafe_code)]
unsafe extern "C" fn vec_upload(data: *const u8, n: u64, handle: *mut u64) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let bytes = match unsafe { export::upload_args(data, n, handle, MAX_VECTOR) } {
            Ok(b) => b,
            Err(s) => return s,
        };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        match st.vec_upload(bytes) {
            // SAFETY: `handle` was checked non-null; the ABI makes it writable.
            Ok(v) => unsafe { VECTORS.give(v, handle) },
            Err(e) => failure("vec_upload", e),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn vec_download(handle: u64, offset: u64, n: u64, out: *mut u8) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (v, range, out) = match unsafe { VECTORS.download_args(handle, offset, n, out) } {
            Ok(a) => a,
            Err(s) => return s,
        };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        match st.vec_download(&v, range.start, out) {
            Ok(()) => status::OK,
            Err(e) => failure("vec_download", e),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn vec_ntt(handle: u64, log_n: u32, inverse: u32, coset: *const u8) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (v, coset) = match unsafe { VECTORS.ntt_args(handle, log_n, TWO_ADICITY, coset) } {
            Ok(a) => a,
            Err(s) => return s,
        };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        match st.vec_ntt(&v, log_n, inverse != 0, coset.as_ref()) {
            Ok(()) => status::OK,
            Err(e) => failure("vec_ntt", e),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn vec_ab_minus_c(handle: u64, scale: *const u8, out: *mut u64) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (v, _, scale) = match unsafe { VECTORS.ab_minus_c_args(handle, scale, out) } {
            Ok(a) => a,
            Err(s) => return s,
        };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        match st.vec_ab_minus_c(&v, &scale) {
            // SAFETY: `out` was checked non-null; the ABI makes it writable.
            Ok(h) => unsafe { VECTORS.give(h, out) },
            Err(e) => failure("vec_ab_minus_c", e),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn msm_g1_prepared_vec(
    bases: u64,
    vector: u64,
    offset: u64,
    out: *mut u8,
) -> Status {
    guarded(|| {
        let (b, v, range) =
            match export::prepared_vec_args(&PREPARED, &VECTORS, bases, vector, offset, out) {
                Ok(a) => a,
                Err(s) => return s,
            };
        let st = match device() {
            Ok(s) => s,
            Err(code) => return code,
        };
        match st.msm_g1_prepared_vec(&b, &v, range.start) {
            Ok(r) => {
                // SAFETY: non-null (checked) and, by the ABI, valid for one G1 point.
                unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), out, ffi::G1_BYTES) };
                status::OK
            }
            Err(e) => failure("msm_g1_prepared_vec", e),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn vec_release(handle: u64) -> Status {
    guarded(|| VECTORS.release_vector(handle))
}

#[allow(unsafe_code)]
unsafe extern "C" fn set_option(
    key: *const u8,
    key_len: u64,
    value: *const u8,
    value_len: u64,
) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (name, v) = match unsafe { export::option_args("wgpu", key, key_len, value, value_len) }
        {
            Ok(Some(a)) => a,
            Ok(None) => return status::OK,
            Err(s) => return s,
        };
        match crate::options::set(name, v, crate::opened()) {
            Ok(()) => status::OK,
            Err(e) => export::option_refused("wgpu", name, v, &e),
        }
    })
}

/// The table the loader looks up.
#[allow(unsafe_code, non_upper_case_globals)]
// SAFETY: the symbol name is this ABI version's entry point, exported once.
#[unsafe(no_mangle)]
pub static aztec_prover_backend_v3: BackendTable = BackendTable {
    abi_version: ffi::ABI_VERSION,
    table_size: ffi::TABLE_SIZE,
    info,
    configure,
    msm_g1,
    msm_g2,
    ntt: ntt_fn,
    last_error: aztec_backend_abi::export::last_error,
    g1_bases_prepare,
    msm_g1_prepared,
    g1_bases_release,
    vec_upload,
    vec_download,
    vec_ntt,
    vec_ab_minus_c,
    msm_g1_prepared_vec,
    vec_release,
    set_option,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The status follows the error's kind, whatever its words say.
    #[test]
    fn statuses_follow_the_kind_of_error_not_its_message() {
        let cases = [
            (
                GpuError::Argument("out of GPU memory".into()),
                status::INVALID_ARGUMENT,
            ),
            (
                GpuError::OutOfMemory("point 3: its x".into()),
                status::OUT_OF_MEMORY,
            ),
            (
                GpuError::Device("point 3: its x coordinate".into()),
                status::DEVICE,
            ),
            (
                GpuError::Device("the coset generator is zero".into()),
                status::DEVICE,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(failure("op", e.clone()), want, "{e:?}");
        }
    }
}

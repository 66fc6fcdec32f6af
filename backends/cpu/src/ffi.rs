//! The exported C table (`aztec_prover_backend_v2`). Every entry checks its
//! arguments, runs on the backend's pool, catches panics, and leaves a
//! readable message for `last_error`. The only `unsafe` of the crate's ABI
//! side lives here, each block with its justification.

use std::sync::LazyLock;

use aztec_backend_abi::export::{self, Handles, fail, guarded};
use aztec_backend_abi::ffi::{self, BackendInfo, BackendTable, Status, caps, status};

use crate::curve::{G1, G2};
use crate::{dispatch, msm, ntt, pool};

/// Largest MSM accepted (2^32 points).
const MAX_MSM: u64 = 1 << 32;

#[allow(unsafe_code)]
unsafe extern "C" fn info(out: *mut BackendInfo) -> Status {
    guarded(|| {
        if out.is_null() {
            return fail(status::INVALID_ARGUMENT, "info: null output");
        }
        let mut i = BackendInfo::zeroed();
        i.abi_version = ffi::ABI_VERSION;
        i.curve_id = ffi::CURVE_BN254;
        i.scalar_field_id = ffi::FIELD_BN254_FR;
        i.capabilities =
            caps::MSM_G1 | caps::MSM_G2 | caps::NTT | caps::COSET_NTT | caps::BATCH_NTT;
        let (threads, pinned) = pool::describe();
        i.preferred_threads = threads as u32;
        i.max_log_ntt = ntt::TWO_ADICITY;
        ffi::write_cstr(&mut i.name, "cpu");
        let detail = format!(
            "{}, {threads} threads{}",
            dispatch::path().name(),
            if pinned { ", pinned" } else { "" }
        );
        ffi::write_cstr(&mut i.detail, &detail);
        // SAFETY: `out` is non-null and, by the ABI, points to one writable BackendInfo.
        unsafe { out.write(i) };
        status::OK
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn configure(threads: u32, cpus: *const u32, n_cpus: u32) -> Status {
    guarded(|| {
        if n_cpus > 0 && cpus.is_null() {
            return fail(status::INVALID_ARGUMENT, "configure: null CPU list");
        }
        let list: Vec<usize> = if n_cpus == 0 {
            Vec::new()
        } else {
            // SAFETY: non-null and, by the ABI, valid for n_cpus u32 values.
            unsafe { std::slice::from_raw_parts(cpus, n_cpus as usize) }
                .iter()
                .map(|c| *c as usize)
                .collect()
        };
        match pool::configure(threads as usize, &list) {
            Ok(()) => status::OK,
            Err(e) => fail(status::INVALID_ARGUMENT, e),
        }
    })
}

#[allow(unsafe_code)]
unsafe fn msm_entry<C: crate::curve::Curve>(
    op: &str,
    points: *const u8,
    scalars: *const u8,
    n: u64,
    out: *mut u8,
) -> Status {
    guarded(|| {
        if out.is_null() || (n > 0 && (points.is_null() || scalars.is_null())) {
            return fail(status::INVALID_ARGUMENT, format!("{op}: null pointer"));
        }
        if n > MAX_MSM {
            return fail(
                status::INVALID_ARGUMENT,
                format!("{op}: {n} points is over the limit of {MAX_MSM}"),
            );
        }
        let n = n as usize;
        let (pts, sc) = if n == 0 {
            (&[][..], &[][..])
        } else {
            // SAFETY: non-null and, by the ABI, valid for n points and n scalars.
            unsafe {
                (
                    std::slice::from_raw_parts(points, n * C::BYTES),
                    std::slice::from_raw_parts(scalars, n * ffi::SCALAR_BYTES),
                )
            }
        };
        // SAFETY: non-null and, by the ABI, valid for one encoded point.
        let out = unsafe { std::slice::from_raw_parts_mut(out, C::BYTES) };
        let (pool, threads) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        match pool.install(|| msm::msm_bytes::<C>(pts, sc, threads, out)) {
            Ok(()) => status::OK,
            Err(e) => fail(status::INVALID_ARGUMENT, format!("{op}: {e}")),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn msm_g1(points: *const u8, scalars: *const u8, n: u64, out: *mut u8) -> Status {
    // SAFETY: forwarded with the same ABI obligations.
    unsafe { msm_entry::<G1>("msm_g1", points, scalars, n, out) }
}

#[allow(unsafe_code)]
unsafe extern "C" fn msm_g2(points: *const u8, scalars: *const u8, n: u64, out: *mut u8) -> Status {
    // SAFETY: forwarded with the same ABI obligations.
    unsafe { msm_entry::<G2>("msm_g2", points, scalars, n, out) }
}

/// Prepared G1 bases, by handle.
static PREPARED: LazyLock<Handles<msm::PreparedG1>> = LazyLock::new(Handles::default);

#[allow(unsafe_code)]
unsafe extern "C" fn g1_bases_prepare(points: *const u8, n: u64, handle: *mut u64) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let pts = match unsafe { export::prepare_args(points, n, handle, MAX_MSM) } {
            Ok(p) => p,
            Err(s) => return s,
        };
        let (pool, _) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        match pool.install(|| msm::PreparedG1::new(dispatch::path(), pts)) {
            // SAFETY: `handle` was checked non-null; the ABI makes it writable.
            Ok(p) => unsafe { PREPARED.give(p, handle) },
            Err(e) => fail(status::INVALID_ARGUMENT, format!("g1_bases_prepare: {e}")),
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
        // SAFETY: non-null (checked) and, by the ABI, valid for one encoded G1 point.
        let out = unsafe { std::slice::from_raw_parts_mut(out, ffi::G1_BYTES) };
        let (pool, threads) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        match pool.install(|| bases.msm(sc, threads, out)) {
            Ok(()) => status::OK,
            Err(e) => fail(status::INVALID_ARGUMENT, format!("msm_g1_prepared: {e}")),
        }
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn g1_bases_release(handle: u64) -> Status {
    guarded(|| PREPARED.release(handle))
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
        if data.is_null() {
            return fail(status::INVALID_ARGUMENT, "ntt: null data");
        }
        if log_n > ntt::TWO_ADICITY {
            return fail(
                status::INVALID_ARGUMENT,
                format!(
                    "ntt: 2^{log_n} is larger than Fr's largest subgroup 2^{}",
                    ntt::TWO_ADICITY
                ),
            );
        }
        if batch == 0 {
            return status::OK;
        }
        let Some(len) = (ffi::SCALAR_BYTES << log_n).checked_mul(batch as usize) else {
            return fail(status::INVALID_ARGUMENT, "ntt: size overflows");
        };
        // SAFETY: non-null and, by the ABI, valid for batch vectors of 2^log_n elements.
        let data = unsafe { std::slice::from_raw_parts_mut(data, len) };
        let coset = if coset.is_null() {
            None
        } else {
            let mut g = [0u8; 32];
            // SAFETY: non-null and, by the ABI, 32 bytes.
            g.copy_from_slice(unsafe { std::slice::from_raw_parts(coset, 32) });
            Some(g)
        };
        if let Some(g) = &coset {
            if crate::field::Fr::from_bytes_reduce(g).is_zero() {
                return fail(status::INVALID_ARGUMENT, "ntt: the coset generator is zero");
            }
        }
        let (pool, _) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        pool.install(|| ntt::ntt_bytes(data, log_n, inverse != 0, coset.as_ref()));
        status::OK
    })
}

/// The table the loader looks up.
#[allow(unsafe_code, non_upper_case_globals)]
// SAFETY: the symbol name is this ABI version's entry point, exported once.
#[unsafe(no_mangle)]
pub static aztec_prover_backend_v2: BackendTable = BackendTable {
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
};

#[cfg(test)]
mod tests {
    use super::*;

    /// What the safe loader never does: handles that are unknown, released,
    /// or used with the wrong count reach the library and are refused.
    #[test]
    #[allow(unsafe_code)]
    fn prepared_handles_are_checked() {
        let mut p = [0u8; 128];
        p[..64].copy_from_slice(&ark_generator());
        let mut h = 0u64;
        // SAFETY: two points' bytes and one u64, as the ABI asks.
        assert_eq!(
            unsafe { g1_bases_prepare(p.as_ptr(), 2, &mut h) },
            status::OK
        );
        assert_ne!(h, 0);
        let mut out = [0u8; 64];
        let sc = [0u8; 64];
        // SAFETY: as above; one scalar is missing, which the backend must see.
        let st = unsafe { msm_g1_prepared(h, sc.as_ptr(), 1, out.as_mut_ptr()) };
        assert_eq!(st, status::INVALID_ARGUMENT);
        // SAFETY: two scalars, one output point.
        let st = unsafe { msm_g1_prepared(h, sc.as_ptr(), 2, out.as_mut_ptr()) };
        assert_eq!(st, status::OK);
        assert_eq!(out, [0u8; 64], "zero scalars give the identity");
        // SAFETY: handle calls only.
        assert_eq!(unsafe { g1_bases_release(h) }, status::OK);
        // SAFETY: as above.
        assert_eq!(unsafe { g1_bases_release(h) }, status::INVALID_ARGUMENT);
        // SAFETY: two scalars, one output point; the handle is gone.
        let st = unsafe { msm_g1_prepared(h, sc.as_ptr(), 2, out.as_mut_ptr()) };
        assert_eq!(st, status::INVALID_ARGUMENT);
        let mut msg = [0u8; 256];
        // SAFETY: 256 writable bytes.
        unsafe { aztec_backend_abi::export::last_error(msg.as_mut_ptr(), 256) };
        assert!(ffi::read_cstr(&msg).contains(&format!("no prepared bases under handle {h}")));
        // SAFETY: a null handle pointer must be refused, not written.
        let st = unsafe { g1_bases_prepare(p.as_ptr(), 2, std::ptr::null_mut()) };
        assert_eq!(st, status::INVALID_ARGUMENT);
    }

    /// BN254's G1 generator (1, 2), encoded.
    fn ark_generator() -> [u8; 64] {
        let mut g = [0u8; 64];
        g[0] = 1;
        g[32] = 2;
        g
    }
}

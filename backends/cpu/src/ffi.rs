//! The exported C table (`aztec_prover_backend_v3`). Every entry checks its
//! arguments, runs on the backend's pool, catches panics, and leaves a
//! readable message for `last_error`. The only `unsafe` of the crate's ABI
//! side lives here, each block with its justification.

use std::sync::LazyLock;

use aztec_backend_abi::export::{self, Handles, fail, guarded};
use aztec_backend_abi::ffi::{self, BackendInfo, BackendTable, Status, caps, status};

use crate::curve::{G1, G2};
use crate::{dispatch, kept, msm, ntt, pool};

use aztec_backend_abi::export::MAX_MSM;

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
        // SAFETY: forwarded with the same ABI obligations.
        let list = match unsafe { export::configure_args(cpus, n_cpus, &pool::allowed_cpus()) } {
            Ok(l) => l,
            Err(s) => return s,
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
        // SAFETY: forwarded with the same ABI obligations.
        let (pts, sc, out) =
            match unsafe { export::msm_args(op, C::BYTES, points, scalars, n, out) } {
                Ok(a) => a,
                Err(s) => return s,
            };
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
        // SAFETY: forwarded with the same ABI obligations.
        let (data, coset) = match unsafe { export::ntt_args(data, log_n, batch, coset) } {
            Ok(Some(a)) => a,
            Ok(None) => return status::OK,
            Err(s) => return s,
        };
        let (pool, _) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        pool.install(|| ntt::ntt_bytes(data, log_n, inverse != 0, coset.as_ref()));
        status::OK
    })
}

/// Kept vectors, by handle.
static VECTORS: LazyLock<Handles<kept::Vector>> = LazyLock::new(Handles::default);

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
        let (pool, _) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        let v = pool.install(|| kept::Vector::new(bytes));
        // SAFETY: `handle` was checked non-null; the ABI makes it writable.
        unsafe { VECTORS.give(v, handle) }
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
        v.with(|b| out.copy_from_slice(&b[32 * range.start..32 * range.end]));
        status::OK
    })
}

#[allow(unsafe_code)]
unsafe extern "C" fn vec_ntt(handle: u64, log_n: u32, inverse: u32, coset: *const u8) -> Status {
    guarded(|| {
        // SAFETY: forwarded with the same ABI obligations.
        let (v, coset) = match unsafe { VECTORS.ntt_args(handle, log_n, ntt::TWO_ADICITY, coset) } {
            Ok(a) => a,
            Err(s) => return s,
        };
        let (pool, _) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        pool.install(|| v.with(|b| ntt::ntt_bytes(b, log_n, inverse != 0, coset.as_ref())));
        status::OK
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
        let (pool, _) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        let h = pool.install(|| v.ab_minus_c(&scale));
        // SAFETY: `out` was checked non-null; the ABI makes it writable.
        unsafe { VECTORS.give(h, out) }
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
        // SAFETY: non-null (checked) and, by the ABI, valid for one encoded G1 point.
        let out = unsafe { std::slice::from_raw_parts_mut(out, ffi::G1_BYTES) };
        let (pool, threads) = match pool::current() {
            Ok(p) => p,
            Err(e) => return fail(status::INTERNAL, e),
        };
        let r =
            v.with(|s| pool.install(|| b.msm(&s[32 * range.start..32 * range.end], threads, out)));
        match r {
            Ok(()) => status::OK,
            Err(e) => fail(
                status::INVALID_ARGUMENT,
                format!("msm_g1_prepared_vec: {e}"),
            ),
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
        let (name, v) = match unsafe { export::option_args("cpu", key, key_len, value, value_len) }
        {
            Ok(Some(a)) => a,
            Ok(None) => return status::OK,
            Err(s) => return s,
        };
        match name {
            "path" => match dispatch::set_path(v) {
                Ok(()) => status::OK,
                Err(e) => export::option_refused("cpu", name, v, &e),
            },
            _ => export::option_refused("cpu", name, v, "no such option (cpu.path)"),
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

    /// What the safe loader never does: handles that are unknown, released,
    /// or used with the wrong count reach the library and are refused.
    #[test]
    #[allow(unsafe_code)]
    fn prepared_handles_are_checked() {
        let mut p = [0u8; 128];
        p[..64].copy_from_slice(&ark_generator());
        let mut h = 0u64;
        assert_eq!(
            // SAFETY: two points' bytes and one u64, as the ABI asks.
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

    /// What the safe loader never does with kept vectors: handles that are
    /// unknown, released, or of the other kind, ranges past the end, and
    /// null pointers reach the library and are refused with a reason.
    #[test]
    #[allow(unsafe_code)]
    fn kept_vector_handles_are_checked() {
        let last = || {
            let mut msg = [0u8; 256];
            // SAFETY: 256 writable bytes.
            unsafe { aztec_backend_abi::export::last_error(msg.as_mut_ptr(), 256) };
            ffi::read_cstr(&msg)
        };
        let data = [3u8; 6 * 32];
        let mut v = 0u64;
        // SAFETY: six elements and one u64, as the ABI asks.
        assert_eq!(unsafe { vec_upload(data.as_ptr(), 6, &mut v) }, status::OK);
        let mut out = [0u8; 6 * 32];
        // SAFETY: room for six elements; the range asks for seven.
        let st = unsafe { vec_download(v, 1, 6, out.as_mut_ptr()) };
        assert_eq!(st, status::INVALID_ARGUMENT);
        assert!(last().contains("outside a vector of 6"), "{}", last());
        // SAFETY: a null output must be refused, not written.
        let st = unsafe { vec_download(v, 0, 6, std::ptr::null_mut()) };
        assert_eq!(st, status::INVALID_ARGUMENT);
        assert_eq!(
            // SAFETY: handle and sizes only; 6 is not whole 4-element vectors.
            unsafe { vec_ntt(v, 2, 0, std::ptr::null()) },
            status::INVALID_ARGUMENT
        );
        assert!(last().contains("whole number of 2^2"), "{}", last());
        let mut h = 0u64;
        let scale = [1u8; 32];
        assert_eq!(
            // SAFETY: a 32-byte scale and one u64.
            unsafe { vec_ab_minus_c(v, scale.as_ptr(), &mut h) },
            status::OK
        );
        // SAFETY: a null scale must be refused.
        let st = unsafe { vec_ab_minus_c(v, std::ptr::null(), &mut h) };
        assert_eq!(st, status::INVALID_ARGUMENT);
        // A bases handle is not a vector handle, nor the other way round.
        let mut p = [0u8; 128];
        p[..64].copy_from_slice(&ark_generator());
        let mut b = 0u64;
        assert_eq!(
            // SAFETY: two points and one u64.
            unsafe { g1_bases_prepare(p.as_ptr(), 2, &mut b) },
            status::OK
        );
        let mut point = [0u8; 64];
        // SAFETY: one output point; the vector handle is given as bases.
        let st = unsafe { msm_g1_prepared_vec(v + 1000, v, 0, point.as_mut_ptr()) };
        assert_eq!(st, status::INVALID_ARGUMENT);
        assert!(last().contains("no prepared bases"), "{}", last());
        // SAFETY: one output point; 2 bases from element 5 of 6 is past the end.
        let st = unsafe { msm_g1_prepared_vec(b, v, 5, point.as_mut_ptr()) };
        assert_eq!(st, status::INVALID_ARGUMENT);
        assert_eq!(
            // SAFETY: one output point; in range.
            unsafe { msm_g1_prepared_vec(b, v, 4, point.as_mut_ptr()) },
            status::OK
        );
        // SAFETY: handle calls only.
        assert_eq!(unsafe { vec_release(h) }, status::OK);
        // SAFETY: as above.
        assert_eq!(unsafe { vec_release(v) }, status::OK);
        // SAFETY: as above; released twice.
        assert_eq!(unsafe { vec_release(v) }, status::INVALID_ARGUMENT);
        assert!(
            last().contains(&format!("no kept vector under handle {v}")),
            "{}",
            last()
        );
        // SAFETY: room for six elements; the handle is gone.
        let st = unsafe { vec_download(v, 0, 6, out.as_mut_ptr()) };
        assert_eq!(st, status::INVALID_ARGUMENT);
        // SAFETY: handle call only.
        assert_eq!(unsafe { g1_bases_release(b) }, status::OK);
    }

    /// BN254's G1 generator (1, 2), encoded.
    fn ark_generator() -> [u8; 64] {
        let mut g = [0u8; 64];
        g[0] = 1;
        g[32] = 2;
        g
    }
}

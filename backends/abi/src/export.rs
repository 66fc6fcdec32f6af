//! Helpers for the exporting side of the ABI, shared by every backend
//! library: the per-thread last error, panic capture, `last_error`, and the
//! handles of prepared bases.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use crate::ffi::{self, Status, status};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `msg` as the calling thread's last error and returns `code`.
pub fn fail(code: Status, msg: impl Into<String>) -> Status {
    LAST_ERROR.with(|e| *e.borrow_mut() = msg.into());
    code
}

/// Runs `f`, turning a panic into `INTERNAL` with the panic's message.
pub fn guarded(f: impl FnOnce() -> Status) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(s) => s,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            fail(status::INTERNAL, format!("internal error: {msg}"))
        }
    }
}

/// Every backend's `last_error(buf, cap)` entry: copies the calling
/// thread's last message, NUL-terminated and truncated, and returns its
/// length. Each backend library links its own copy, with its own message.
///
/// # Safety
/// `buf` is null or valid for `cap` bytes of writes.
#[allow(unsafe_code)]
pub unsafe extern "C" fn last_error(buf: *mut u8, cap: u64) -> u64 {
    LAST_ERROR.with(|e| {
        let e = e.borrow();
        let bytes = e.as_bytes();
        if !buf.is_null() && cap > 0 {
            let n = bytes.len().min(cap as usize - 1);
            // SAFETY: the caller promises `buf` is valid for `cap` bytes; we write n + 1 <= cap.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, n);
                buf.add(n).write(0);
            }
        }
        bytes.len() as u64
    })
}

/// What a backend keeps under ABI handles (prepared bases): handles are
/// numbers counted from 1, never reused, never pointers, so a stale or made-up
/// handle is found missing instead of being dereferenced.
pub struct Handles<T> {
    inner: Mutex<(u64, HashMap<u64, Arc<T>>)>,
}

impl<T> Default for Handles<T> {
    fn default() -> Self {
        Handles {
            inner: Mutex::new((0, HashMap::new())),
        }
    }
}

impl<T> Handles<T> {
    /// Keeps `value`; returns its new handle.
    pub fn insert(&self, value: T) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let h = g.0;
        g.1.insert(h, Arc::new(value));
        h
    }

    /// The value under `handle`, if it is held. The value stays usable by
    /// the caller even if another thread releases the handle meanwhile.
    pub fn get(&self, handle: u64) -> Option<Arc<T>> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1.get(&handle).cloned()
    }

    /// Forgets `handle`; whether it was held.
    pub fn remove(&self, handle: u64) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1.remove(&handle).is_some()
    }

    /// Every backend's `g1_bases_release(handle)`.
    pub fn release(&self, handle: u64) -> Status {
        if self.remove(handle) {
            status::OK
        } else {
            fail(
                status::INVALID_ARGUMENT,
                format!("g1_bases_release: no prepared bases under handle {handle}"),
            )
        }
    }

    /// Keeps `value` and writes its handle to `*out`.
    ///
    /// # Safety
    /// `out` is non-null and valid for one `u64` write (checked by
    /// [`prepare_args`]).
    #[allow(unsafe_code)]
    pub unsafe fn give(&self, value: T, out: *mut u64) -> Status {
        // SAFETY: the caller promises `out` is valid for one write.
        unsafe { out.write(self.insert(value)) };
        status::OK
    }
}

/// Prepared bases as the shared checks see them.
pub trait Prepared {
    /// How many bases.
    fn count(&self) -> usize;
}

impl<T: Prepared> Handles<T> {
    /// The checks of every backend's `msm_g1_prepared(handle, scalars, n,
    /// out)`: pointers, a held handle, one scalar per base. Returns the
    /// bases and the scalars.
    ///
    /// # Safety
    /// As the ABI requires: `scalars` is valid for `n` scalars when non-null.
    #[allow(unsafe_code)]
    pub unsafe fn prepared_args<'a>(
        &self,
        handle: u64,
        scalars: *const u8,
        n: u64,
        out: *mut u8,
    ) -> Result<(Arc<T>, &'a [u8]), Status> {
        let op = "msm_g1_prepared";
        if out.is_null() || (n > 0 && scalars.is_null()) {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!("{op}: null pointer"),
            ));
        }
        let Some(bases) = self.get(handle) else {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!("{op}: no prepared bases under handle {handle}"),
            ));
        };
        if n != bases.count() as u64 {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!("{op}: {n} scalars for {} prepared bases", bases.count()),
            ));
        }
        let sc = if n == 0 {
            &[][..]
        } else {
            // SAFETY: non-null and, by the ABI, valid for n scalars.
            unsafe { std::slice::from_raw_parts(scalars, n as usize * ffi::SCALAR_BYTES) }
        };
        Ok((bases, sc))
    }
}

/// The checks of every backend's `g1_bases_prepare(points, n, handle)`:
/// pointers and size (at most `max` points). Returns the points.
///
/// # Safety
/// As the ABI requires: `points` is valid for `n` G1 points when non-null.
#[allow(unsafe_code)]
pub unsafe fn prepare_args<'a>(
    points: *const u8,
    n: u64,
    handle: *mut u64,
    max: u64,
) -> Result<&'a [u8], Status> {
    let op = "g1_bases_prepare";
    if handle.is_null() || (n > 0 && points.is_null()) {
        return Err(fail(
            status::INVALID_ARGUMENT,
            format!("{op}: null pointer"),
        ));
    }
    if n > max {
        return Err(fail(
            status::INVALID_ARGUMENT,
            format!("{op}: {n} points is over the limit of {max}"),
        ));
    }
    if n == 0 {
        return Ok(&[]);
    }
    // SAFETY: non-null and, by the ABI, valid for n G1 points.
    Ok(unsafe { std::slice::from_raw_parts(points, n as usize * ffi::G1_BYTES) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_fresh_and_unknown_ones_are_missing() {
        let h: Handles<&str> = Handles::default();
        assert!(h.get(0).is_none());
        let a = h.insert("a");
        let b = h.insert("b");
        assert!(a != 0 && b != a);
        assert_eq!(h.get(a).as_deref(), Some(&"a"));
        let held = h.get(b);
        assert!(h.remove(b));
        assert!(!h.remove(b), "released twice");
        assert!(h.get(b).is_none());
        assert_eq!(
            held.as_deref(),
            Some(&"b"),
            "a caller's copy outlives the release"
        );
        assert_eq!(h.insert("c"), b + 1, "numbers are not reused");
    }
}

//! Helpers for the exporting side of the ABI, shared by every backend
//! library: the per-thread last error, panic capture, `last_error`, and the
//! handles of prepared bases.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use crate::ffi::{Status, status};

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

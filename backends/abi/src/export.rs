//! Helpers for the exporting side of the ABI, shared by every backend
//! library: the per-thread last error, panic capture, and `last_error`.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

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

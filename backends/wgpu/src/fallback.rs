//! The CPU backend, loaded from the same directory as this library, for what
//! the GPU does not do: G2 MSM (one per proof, as many points as the
//! circuit's variables; on a GPU machine it runs on host cores beside the G1
//! MSMs on the device) and NTTs too large for one device binding.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::error::GpuError;

use aztec_backend_abi::Backend;

static CPU: OnceLock<Result<Backend, GpuError>> = OnceLock::new();
static THREADS: Mutex<(u32, Vec<u32>)> = Mutex::new((0, Vec::new()));

/// The directory this library was loaded from.
fn own_dir() -> Option<PathBuf> {
    let mut info: libc::Dl_info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let addr = own_dir as *const libc::c_void;
    #[allow(unsafe_code)]
    // SAFETY: dladdr only reads the address and fills `info`; a null
    // dli_fname is checked before use and the string is copied at once.
    let path = unsafe {
        if libc::dladdr(addr, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(info.dli_fname)
            .to_string_lossy()
            .into_owned()
    };
    PathBuf::from(path).parent().map(|p| p.to_path_buf())
}

/// The CPU backend, loaded on first use and configured like this one.
pub fn cpu() -> Result<&'static Backend, GpuError> {
    let loaded = CPU.get_or_init(|| {
        let sibling = own_dir().map(|d| d.join("libaztec_backend_cpu.so"));
        let b = match sibling {
            Some(p) if p.is_file() => Backend::load_path(&p),
            _ => Backend::load("cpu"),
        }
        .map_err(|e| {
            GpuError::Device(format!(
                "the CPU backend (for G2 and oversized NTTs) is missing: {e}"
            ))
        })?;
        if let Ok(t) = THREADS.lock() {
            b.configure(t.0, &t.1)
                .map_err(|e| GpuError::Device(e.to_string()))?;
        }
        Ok(b)
    });
    loaded.as_ref().map_err(|e| e.clone())
}

/// Remembers the thread setting and passes it on if the CPU backend is loaded.
pub fn configure(threads: u32, cpus: &[u32]) -> Result<(), GpuError> {
    if let Ok(mut t) = THREADS.lock() {
        *t = (threads, cpus.to_vec());
    }
    match CPU.get() {
        Some(Ok(b)) => b
            .configure(threads, cpus)
            .map_err(|e| GpuError::Device(e.to_string())),
        _ => Ok(()),
    }
}

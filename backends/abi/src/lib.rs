//! The backend ABI: how the rest of aztec-prover talks to a proving backend
//! (CPU, GPU) loaded from a shared library at run time.
//!
//! [`ffi`] defines the C ABI (one versioned, `#[repr(C)]` table of function
//! pointers); [`loader`] finds, loads and checks a library and wraps it in the
//! safe [`Backend`]; [`codec`] (feature `codec`) the byte encodings on
//! arkworks types that callers use; [`reference`] (feature `reference`) is
//! the arkworks implementation every backend is tested and benchmarked
//! against, [`conformance`] the checks every backend's tests run against
//! it, and [`bench`] (feature `bench`) the kernel benchmark.

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "codec")]
pub mod codec;
#[cfg(feature = "reference")]
pub mod conformance;
pub mod export;
pub mod ffi;
#[cfg(feature = "bench")]
pub mod halo2;
pub mod loader;
#[cfg(feature = "reference")]
pub mod reference;

pub use loader::{Backend, BackendError, Info, KeptVec, PreparedG1};

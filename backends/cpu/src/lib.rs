//! The CPU proving backend: BN254 MSM (G1 and G2) and Fr NTT, built as
//! `libaztec_backend_cpu.so` (the C ABI of `aztec-backend-abi`) and usable as
//! a Rust library.
//!
//! Arithmetic has two code paths picked at run time ([`dispatch`]): AVX-512
//! IFMA and portable 64-bit, with bit-identical results. Heavy work runs on
//! the backend's own thread pool ([`pool`]).

pub mod curve;
pub mod dispatch;
pub mod ffi;
pub mod field;
pub mod kept;
pub mod msm;
pub mod ntt;
pub mod pool;

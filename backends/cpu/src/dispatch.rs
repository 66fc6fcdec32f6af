//! Which code path runs: AVX-512 IFMA where the CPU has it, portable 64-bit
//! code otherwise. `AZTEC_PROVER_CPU_PATH=portable` forces the portable path
//! (tests run both); both give bit-identical results.

use std::sync::OnceLock;

/// The code path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePath {
    /// AVX-512 IFMA, 52-bit limbs, eight lanes.
    Avx512Ifma,
    /// Portable 64-bit limbs.
    Portable,
}

impl CodePath {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            CodePath::Avx512Ifma => "avx512ifma",
            CodePath::Portable => "portable",
        }
    }
}

/// Whether this CPU can run the IFMA path.
pub fn cpu_has_ifma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512ifma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The path chosen for this process (detected once; the variable is read once).
pub fn path() -> CodePath {
    static PATH: OnceLock<CodePath> = OnceLock::new();
    *PATH.get_or_init(|| {
        let forced = std::env::var("AZTEC_PROVER_CPU_PATH").unwrap_or_default();
        match forced.as_str() {
            "portable" => CodePath::Portable,
            _ if cpu_has_ifma() => CodePath::Avx512Ifma,
            _ => CodePath::Portable,
        }
    })
}

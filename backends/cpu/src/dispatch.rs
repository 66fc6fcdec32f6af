//! Which code path runs: AVX-512 IFMA where the CPU has it, else 64-bit
//! code with the BMI2/ADX multiplication (`field/adx.rs`) where the CPU has
//! those, else plain portable 64-bit code. The option `cpu.path` (or
//! `AZTEC_PROVER_CPU_PATH`): `ifma`, `adx` or `portable` forces one (tests
//! run each the CPU has); all give bit-identical results.

use std::sync::{Mutex, OnceLock};

/// The code path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePath {
    /// AVX-512 IFMA, 52-bit limbs, eight lanes.
    Avx512Ifma,
    /// The portable kernels, multiplying with BMI2 and ADX.
    Adx,
    /// Portable 64-bit limbs.
    Portable,
}

impl CodePath {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            CodePath::Avx512Ifma => "avx512ifma",
            CodePath::Adx => "adx",
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

/// The variable read when the option `cpu.path` is not set.
pub const PATH_ENV: &str = "AZTEC_PROVER_CPU_PATH";

static PATH: OnceLock<CodePath> = OnceLock::new();
static ASKED: Mutex<Option<CodePath>> = Mutex::new(None);

/// The path a value of `cpu.path` asks for: `auto` (or empty) the best this
/// CPU runs, `portable`, `adx` or `ifma` (refused where the CPU lacks it).
fn parse(v: &str) -> Result<CodePath, String> {
    let adx = crate::field::cpu_has_adx();
    match v.trim() {
        "" | "auto" if cpu_has_ifma() => Ok(CodePath::Avx512Ifma),
        "" | "auto" if adx => Ok(CodePath::Adx),
        "" | "auto" | "portable" => Ok(CodePath::Portable),
        "ifma" if cpu_has_ifma() => Ok(CodePath::Avx512Ifma),
        "ifma" => Err("this CPU has no AVX-512 IFMA".into()),
        "adx" if adx => Ok(CodePath::Adx),
        "adx" => Err("this CPU has no BMI2/ADX".into()),
        _ => Err("expected auto, ifma, adx or portable".into()),
    }
}

/// Sets the option `cpu.path` (before the first MSM or NTT; the same value
/// again later is accepted).
pub fn set_path(v: &str) -> Result<(), String> {
    let want = parse(v)?;
    if let Some(p) = PATH.get() {
        return if *p == want {
            Ok(())
        } else {
            Err(format!(
                "the {} path is in use already: set it before the first call",
                p.name()
            ))
        };
    }
    *ASKED.lock().unwrap_or_else(|p| p.into_inner()) = Some(want);
    Ok(())
}

/// The path chosen for this process (decided once: the option, else the
/// variable, else the best this CPU runs; a bad variable means auto).
pub fn path() -> CodePath {
    *PATH.get_or_init(|| {
        let asked = *ASKED.lock().unwrap_or_else(|p| p.into_inner());
        let path = asked.unwrap_or_else(|| {
            let forced = std::env::var(PATH_ENV).unwrap_or_default();
            parse(&forced).unwrap_or_else(|_| parse("").unwrap_or(CodePath::Portable))
        });
        // The ADX multiplication also serves the IFMA path's scalar parts
        // (bucket reduction, twiddles); only `portable` runs without it.
        #[cfg(target_arch = "x86_64")]
        if path != CodePath::Portable {
            crate::field::adx::enable();
        }
        path
    })
}

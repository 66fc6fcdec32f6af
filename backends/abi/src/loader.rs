//! Finding, loading and checking a backend library, and the safe [`Backend`]
//! wrapper every caller uses. All `unsafe` of the loader lives here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ffi::{self, BackendInfo, BackendTable, Status};

/// Where installed backends live.
pub const SYSTEM_BACKEND_DIR: &str = "/usr/lib/aztec-prover/backends";

/// Environment variable naming extra backend directories (colon-separated).
pub const BACKEND_DIR_ENV: &str = "AZTEC_PROVER_BACKEND_DIR";

/// A backend that could not be loaded or that failed a call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// No library of that name in any searched directory.
    #[error("backend {name:?} not found; searched {}", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// The name asked for.
        name: String,
        /// Every file looked for.
        searched: Vec<PathBuf>,
    },
    /// The file is not a loadable library.
    #[error("cannot load backend {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// The library is not a backend of our ABI, curve or field.
    #[error("backend {path} is incompatible: {reason}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// The backend refused a tuning option.
    #[error("backend {path} refused the option {message}")]
    Option {
        /// The file.
        path: PathBuf,
        /// The backend's message (`key="value": why`).
        message: String,
    },
    /// A call was refused before reaching the backend.
    #[error("bad {op} arguments: {reason}")]
    Argument {
        /// The operation.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// The backend reported a failure.
    #[error("backend {backend} failed {op} (status {code}): {message}")]
    Call {
        /// The backend's name.
        backend: String,
        /// The operation.
        op: &'static str,
        /// Its status code.
        code: Status,
        /// Its message.
        message: String,
    },
}

impl BackendError {
    /// Whether the backend ran out of (device) memory.
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, BackendError::Call { code, .. } if *code == ffi::status::OUT_OF_MEMORY)
    }
}

/// The files a backend name maps to, in search order.
pub fn candidates(name: &str) -> Vec<PathBuf> {
    let file = format!("libaztec_backend_{name}.so");
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(v) = std::env::var(BACKEND_DIR_ENV) {
        dirs.extend(v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    dirs.push(PathBuf::from(SYSTEM_BACKEND_DIR));
    // Next to the running binary: `cargo build` puts the backends there.
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        if dir.join("deps").is_dir() {
            // A binary in target/<profile>/ of a build tree: deps/ holds
            // the library cargo built last; the copy next to the binary
            // is only refreshed when the backend is built on its own.
            dirs.push(dir.join("deps"));
        }
        dirs.push(dir.to_path_buf());
        if dir.file_name().is_some_and(|n| n == "deps")
            && let Some(up) = dir.parent()
        {
            dirs.push(up.to_path_buf());
        }
    }
    dirs.into_iter().map(|d| d.join(&file)).collect()
}

/// Whether `spec` names a file rather than a backend name.
fn is_path(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(".so")
}

/// An error and every error under it, once each (libloading keeps the
/// dynamic loader's own reason in the source).
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        next = s.source();
    }
    out
}

/// Checks that `b` is a 64-bit little-endian ELF shared object for this
/// machine whose program headers and loadable segments all lie within the
/// file; the reason when not.
fn check_elf(b: &[u8]) -> Result<(), String> {
    if b.len() < 4 || &b[..4] != b"\x7fELF" {
        return Err("not a shared library (no ELF header)".into());
    }
    let short = |what: &str| {
        format!(
            "the file is cut short: {what} lies past its end ({} bytes)",
            b.len()
        )
    };
    if b.len() < 64 {
        return Err(short("the ELF header"));
    }
    if b[4] != 2 || b[5] != 1 {
        return Err("not a 64-bit little-endian library".into());
    }
    let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as u64;
    let u64_at = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    if u16_at(16) != 3 {
        return Err("not a shared library (ELF type is not ET_DYN)".into());
    }
    #[cfg(target_arch = "x86_64")]
    if u16_at(18) != 62 {
        return Err(format!(
            "built for another machine (ELF machine {})",
            u16_at(18)
        ));
    }
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    let (shoff, shentsize, shnum) = (u64_at(40), u16_at(58), u16_at(60));
    let len = b.len() as u64;
    let table_end = |off: u64, size: u64, n: u64| off.checked_add(size.checked_mul(n)?);
    if phentsize < 56 || table_end(phoff, phentsize, phnum).is_none_or(|end| end > len) {
        return Err(short("the program header table"));
    }
    if shnum > 0 && table_end(shoff, shentsize, shnum).is_none_or(|end| end > len) {
        return Err(short("the section header table"));
    }
    for k in 0..phnum {
        let at = (phoff + k * phentsize) as usize;
        let p_type = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let (offset, filesz) = (u64_at(at + 8), u64_at(at + 32));
        // PT_LOAD: mapped from the file.
        if p_type == 1 && offset.checked_add(filesz).is_none_or(|end| end > len) {
            return Err(short(&format!("loadable segment {k}")));
        }
    }
    Ok(())
}

/// The calling thread's last error message in a loaded library.
fn last_error_of(loaded: &Loaded) -> String {
    let mut buf = vec![0u8; 1024];
    #[allow(unsafe_code)]
    // SAFETY: the table was checked; `last_error` writes at most `buf.len()` bytes.
    unsafe {
        ((*loaded.table).last_error)(buf.as_mut_ptr(), buf.len() as u64)
    };
    ffi::read_cstr(&buf)
}

/// Information about a loaded backend.
#[derive(Debug, Clone)]
pub struct Info {
    /// Short name.
    pub name: String,
    /// Human detail (code path, threads).
    pub detail: String,
    /// Capability bits.
    pub capabilities: u32,
    /// Threads it would use by default.
    pub preferred_threads: u32,
    /// Largest NTT size (log2).
    pub max_log_ntt: u32,
    /// The file it came from.
    pub path: PathBuf,
}

struct Loaded {
    table: *const BackendTable,
    // Declared last: dropped after anything that could call into it.
    _lib: libloading::Library,
}

// SAFETY: the table is an immutable static inside the library, which stays
// loaded as long as `Loaded` lives; the ABI requires its functions to be
// callable from any thread.
#[allow(unsafe_code)]
unsafe impl Send for Loaded {}
// SAFETY: as above; nothing in `Loaded` is mutated after loading.
#[allow(unsafe_code)]
unsafe impl Sync for Loaded {}

/// A loaded, checked backend library. Cheap to clone; the library stays
/// loaded until the last clone is dropped.
#[derive(Clone)]
pub struct Backend {
    loaded: Arc<Loaded>,
    info: Info,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("info", &self.info).finish()
    }
}

/// G1 bases kept by a backend under a handle (see [`Backend::prepare_g1`]).
/// Dropping it releases them; it keeps the library loaded until then.
pub struct PreparedG1 {
    backend: Backend,
    handle: u64,
    n: usize,
}

impl std::fmt::Debug for PreparedG1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedG1")
            .field("backend", &self.backend.info.name)
            .field("points", &self.n)
            .finish()
    }
}

impl PreparedG1 {
    /// How many bases.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `sum scalars[i] * bases[i]` (32-byte scalars, one per base).
    pub fn msm(&self, scalars: &[u8]) -> Result<[u8; ffi::G1_BYTES], BackendError> {
        let op = "msm_g1_prepared";
        if scalars.len() != self.n * ffi::SCALAR_BYTES {
            return Err(BackendError::Argument {
                op,
                reason: format!(
                    "{} prepared bases but {} bytes of scalars",
                    self.n,
                    scalars.len()
                ),
            });
        }
        let mut out = [0u8; ffi::G1_BYTES];
        #[allow(unsafe_code)]
        // SAFETY: `scalars` holds n scalars and `out` one point, as the ABI requires.
        let st = unsafe {
            (self.backend.table().msm_g1_prepared)(
                self.handle,
                scalars.as_ptr(),
                self.n as u64,
                out.as_mut_ptr(),
            )
        };
        self.backend.check(op, st)?;
        Ok(out)
    }
}

impl PreparedG1 {
    /// `sum s[i] * bases[i]` with `s` the elements of `scalars` from
    /// `offset`, one per base, without them leaving the backend.
    pub fn msm_vec(
        &self,
        scalars: &KeptVec,
        offset: usize,
    ) -> Result<[u8; ffi::G1_BYTES], BackendError> {
        let op = "msm_g1_prepared_vec";
        if !self.backend.same_as(&scalars.backend) {
            return Err(BackendError::Argument {
                op,
                reason: "the bases and the vector are kept in different backends".into(),
            });
        }
        if offset.checked_add(self.n).is_none_or(|end| end > scalars.n) {
            return Err(BackendError::Argument {
                op,
                reason: format!(
                    "{} bases from element {offset} of a vector of {}",
                    self.n, scalars.n
                ),
            });
        }
        let mut out = [0u8; ffi::G1_BYTES];
        #[allow(unsafe_code)]
        // SAFETY: both handles came from this library; `out` holds one point.
        let st = unsafe {
            (self.backend.table().msm_g1_prepared_vec)(
                self.handle,
                scalars.handle,
                offset as u64,
                out.as_mut_ptr(),
            )
        };
        self.backend.check(op, st)?;
        Ok(out)
    }
}

/// An Fr vector kept by a backend under a handle (see
/// [`Backend::upload_vec`]): on a GPU backend it stays in device memory
/// between calls. Dropping it frees it; it keeps the library loaded until then.
pub struct KeptVec {
    backend: Backend,
    handle: u64,
    n: usize,
}

impl std::fmt::Debug for KeptVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptVec")
            .field("backend", &self.backend.info.name)
            .field("elements", &self.n)
            .finish()
    }
}

impl KeptVec {
    /// How many elements.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// In-place NTT of the vector as `len / 2^log_n` vectors of `2^log_n`
    /// elements (as [`Backend::ntt`]).
    pub fn ntt(
        &self,
        log_n: u32,
        inverse: bool,
        coset: Option<&[u8; 32]>,
    ) -> Result<(), BackendError> {
        let op = "vec_ntt";
        let max = self.backend.info.max_log_ntt;
        if log_n > max || self.n == 0 || !self.n.is_multiple_of(1 << log_n) {
            return Err(BackendError::Argument {
                op,
                reason: format!(
                    "{} elements are not whole 2^{log_n}-element vectors (at most 2^{max})",
                    self.n
                ),
            });
        }
        let coset_ptr = coset.map_or(std::ptr::null(), |c| c.as_ptr());
        #[allow(unsafe_code)]
        // SAFETY: the handle came from this library; coset is null or 32 bytes.
        let st = unsafe {
            (self.backend.table().vec_ntt)(self.handle, log_n, u32::from(inverse), coset_ptr)
        };
        self.backend.check(op, st)
    }

    /// With the vector holding `a || b || c` of equal length, a new kept
    /// vector `(a[i]·b[i] − c[i])·scale` (the QAP's pointwise step).
    pub fn ab_minus_c(&self, scale: &[u8; 32]) -> Result<KeptVec, BackendError> {
        let op = "vec_ab_minus_c";
        if self.n == 0 || !self.n.is_multiple_of(3) {
            return Err(BackendError::Argument {
                op,
                reason: format!("{} elements are not three equal parts", self.n),
            });
        }
        let mut handle = 0u64;
        #[allow(unsafe_code)]
        // SAFETY: the handle came from this library; `scale` is 32 bytes;
        // `handle` is one writable u64.
        let st = unsafe {
            (self.backend.table().vec_ab_minus_c)(self.handle, scale.as_ptr(), &mut handle)
        };
        self.backend.check(op, st)?;
        self.backend.kept(op, handle, self.n / 3)
    }

    /// Elements `offset..offset + n`, canonical 32-byte encodings.
    pub fn download(&self, offset: usize, n: usize) -> Result<Vec<u8>, BackendError> {
        let op = "vec_download";
        if offset.checked_add(n).is_none_or(|end| end > self.n) {
            return Err(BackendError::Argument {
                op,
                reason: format!("elements {offset}..{offset}+{n} of a vector of {}", self.n),
            });
        }
        let mut out = vec![0u8; n * ffi::SCALAR_BYTES];
        #[allow(unsafe_code)]
        // SAFETY: the handle came from this library; `out` holds n elements.
        let st = unsafe {
            (self.backend.table().vec_download)(
                self.handle,
                offset as u64,
                n as u64,
                out.as_mut_ptr(),
            )
        };
        self.backend.check(op, st)?;
        Ok(out)
    }
}

impl Drop for KeptVec {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: the handle came from this library and is released once.
        let _ = unsafe { (self.backend.table().vec_release)(self.handle) };
    }
}

impl Drop for PreparedG1 {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: the handle came from this library and is released once.
        let _ = unsafe { (self.backend.table().g1_bases_release)(self.handle) };
    }
}

impl Backend {
    /// Loads a backend by name (`cpu`, `wgpu`: searched in
    /// `$AZTEC_PROVER_BACKEND_DIR`, `/usr/lib/aztec-prover/backends`, and next
    /// to the running binary) or by path (anything with a `/` or ending in `.so`).
    pub fn load(spec: &str) -> Result<Backend, BackendError> {
        if is_path(spec) {
            return Backend::load_path(Path::new(spec));
        }
        let searched = candidates(spec);
        match searched.iter().find(|p| p.is_file()) {
            Some(p) => Backend::load_path(p),
            None => Err(BackendError::NotFound {
                name: spec.to_string(),
                searched,
            }),
        }
    }

    /// [`Backend::load`], with tuning `options` (`<backend>.<option>`,
    /// value) set before the backend opens its device: a key or value the
    /// backend refuses fails the load with its reason. Keys of other
    /// backends are ignored.
    pub fn load_with(spec: &str, options: &[(String, String)]) -> Result<Backend, BackendError> {
        if is_path(spec) {
            return Backend::load_path_with(Path::new(spec), options);
        }
        let searched = candidates(spec);
        match searched.iter().find(|p| p.is_file()) {
            Some(p) => Backend::load_path_with(p, options),
            None => Err(BackendError::NotFound {
                name: spec.to_string(),
                searched,
            }),
        }
    }

    /// Loads and checks the library at `path`.
    pub fn load_path(path: &Path) -> Result<Backend, BackendError> {
        Backend::load_path_with(path, &[])
    }

    /// [`Backend::load_path`] with tuning `options` (see [`Backend::load_with`]).
    pub fn load_path_with(
        path: &Path,
        options: &[(String, String)],
    ) -> Result<Backend, BackendError> {
        let incompatible = |reason: String| BackendError::Incompatible {
            path: path.to_path_buf(),
            reason,
        };
        // The file is checked before the dynamic loader maps it: a file
        // that is not an ELF library is refused with a reason, and one cut
        // short (a segment past its end) would otherwise fault (SIGBUS) when
        // the loader touches the missing pages, killing the process.
        let bytes = std::fs::read(path).map_err(|e| BackendError::Load {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        check_elf(&bytes).map_err(|reason| BackendError::Load {
            path: path.to_path_buf(),
            reason,
        })?;
        drop(bytes);
        #[allow(unsafe_code)]
        // SAFETY: loading runs the library's initialisers. We only load files
        // the operator named or installed as backends; that trust is the point
        // of a plug-in backend.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| BackendError::Load {
            path: path.to_path_buf(),
            reason: with_sources(&e),
        })?;
        let symbol = format!("{}\0", ffi::ENTRY_SYMBOL);
        #[allow(unsafe_code)]
        // SAFETY: the symbol is looked up as the address of a data object; we
        // only read through it after checking the version fields below.
        let table: *const BackendTable =
            match unsafe { lib.get::<*const BackendTable>(symbol.as_bytes()) } {
                Ok(sym) => *sym,
                Err(_) => {
                    let older = (0..ffi::ABI_VERSION).any(|v| {
                        let name = format!("aztec_prover_backend_v{v}\0");
                        #[allow(unsafe_code)]
                        // SAFETY: a lookup only; the result is not dereferenced.
                        let found = unsafe { lib.get::<*const u8>(name.as_bytes()) }.is_ok();
                        found
                    });
                    let why = if older {
                        format!(
                            "it exports an older backend ABI, not {} (version {})",
                            ffi::ENTRY_SYMBOL,
                            ffi::ABI_VERSION
                        )
                    } else {
                        format!(
                            "it does not export {}; is it an aztec-prover backend?",
                            ffi::ENTRY_SYMBOL
                        )
                    };
                    return Err(incompatible(why));
                }
            };
        if table.is_null() {
            return Err(incompatible("its backend table is null".into()));
        }
        #[allow(unsafe_code)]
        // SAFETY: every ABI revision starts the table with two u32 fields
        // (version, size); a symbol of this name points at least at those.
        let (version, size) = unsafe { ((*table).abi_version, (*table).table_size) };
        if version != ffi::ABI_VERSION {
            return Err(incompatible(format!(
                "ABI version {version}, this build speaks {}",
                ffi::ABI_VERSION
            )));
        }
        if size < ffi::TABLE_SIZE {
            return Err(incompatible(format!(
                "its table has {size} bytes, version {version} needs {}",
                ffi::TABLE_SIZE
            )));
        }
        let loaded = Loaded { table, _lib: lib };
        for (key, value) in options {
            #[allow(unsafe_code)]
            // SAFETY: version and size checked; key and value are valid for their lengths.
            let st = unsafe {
                ((*loaded.table).set_option)(
                    key.as_ptr(),
                    key.len() as u64,
                    value.as_ptr(),
                    value.len() as u64,
                )
            };
            if st != ffi::status::OK {
                return Err(BackendError::Option {
                    path: path.to_path_buf(),
                    message: last_error_of(&loaded),
                });
            }
        }
        let mut raw = BackendInfo::zeroed();
        #[allow(unsafe_code)]
        // SAFETY: version and size checked; `info` writes one BackendInfo.
        let st = unsafe { ((*loaded.table).info)(&mut raw) };
        if st != ffi::status::OK {
            let why = last_error_of(&loaded);
            let why = if why.is_empty() {
                format!("status {st}")
            } else {
                why
            };
            return Err(BackendError::Load {
                path: path.to_path_buf(),
                reason: why,
            });
        }
        if raw.abi_version != ffi::ABI_VERSION {
            return Err(incompatible(format!(
                "info() reports ABI version {}",
                raw.abi_version
            )));
        }
        if raw.curve_id != ffi::CURVE_BN254 || raw.scalar_field_id != ffi::FIELD_BN254_FR {
            return Err(incompatible(format!(
                "curve {} / field {}, expected BN254 ({}) / Fr ({})",
                raw.curve_id,
                raw.scalar_field_id,
                ffi::CURVE_BN254,
                ffi::FIELD_BN254_FR
            )));
        }
        let info = Info {
            name: ffi::read_cstr(&raw.name),
            detail: ffi::read_cstr(&raw.detail),
            capabilities: raw.capabilities,
            preferred_threads: raw.preferred_threads,
            max_log_ntt: raw.max_log_ntt,
            path: path.to_path_buf(),
        };
        Ok(Backend {
            loaded: Arc::new(loaded),
            info,
        })
    }

    /// What the backend said about itself at load.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The backend's current self-description (detail changes with `configure`).
    pub fn refresh_info(&mut self) -> &Info {
        let mut raw = BackendInfo::zeroed();
        #[allow(unsafe_code)]
        // SAFETY: the table was checked at load; `info` writes one BackendInfo.
        if unsafe { (self.table().info)(&mut raw) } == ffi::status::OK {
            self.info.detail = ffi::read_cstr(&raw.detail);
            self.info.preferred_threads = raw.preferred_threads;
        }
        &self.info
    }

    fn table(&self) -> &BackendTable {
        #[allow(unsafe_code)]
        // SAFETY: non-null, version and size checked at load, and the library
        // stays loaded while `self.loaded` lives.
        unsafe {
            &*self.loaded.table
        }
    }

    fn check(&self, op: &'static str, st: Status) -> Result<(), BackendError> {
        if st == ffi::status::OK {
            return Ok(());
        }
        let mut buf = vec![0u8; 1024];
        #[allow(unsafe_code)]
        // SAFETY: the buffer is valid for `len` bytes; same thread as the failed call.
        unsafe {
            (self.table().last_error)(buf.as_mut_ptr(), buf.len() as u64)
        };
        Err(BackendError::Call {
            backend: self.info.name.clone(),
            op,
            code: st,
            message: ffi::read_cstr(&buf),
        })
    }

    /// Uses `threads` worker threads (0: the backend's default), pinned to `cpus` (empty: not pinned).
    pub fn configure(&self, threads: u32, cpus: &[u32]) -> Result<(), BackendError> {
        let n = u32::try_from(cpus.len()).map_err(|_| BackendError::Argument {
            op: "configure",
            reason: "too many CPUs".into(),
        })?;
        #[allow(unsafe_code)]
        // SAFETY: `cpus` is valid for `n` u32 values.
        let st = unsafe { (self.table().configure)(threads, cpus.as_ptr(), n) };
        self.check("configure", st)
    }

    fn msm(
        &self,
        op: &'static str,
        f: ffi::MsmFn,
        width: usize,
        points: &[u8],
        scalars: &[u8],
        out: &mut [u8],
    ) -> Result<(), BackendError> {
        if !points.len().is_multiple_of(width) || !scalars.len().is_multiple_of(ffi::SCALAR_BYTES) {
            return Err(BackendError::Argument {
                op,
                reason: "buffers are not whole points and scalars".into(),
            });
        }
        let n = points.len() / width;
        if scalars.len() / ffi::SCALAR_BYTES != n {
            return Err(BackendError::Argument {
                op,
                reason: format!(
                    "{n} points but {} scalars",
                    scalars.len() / ffi::SCALAR_BYTES
                ),
            });
        }
        #[allow(unsafe_code)]
        // SAFETY: `points` holds n points, `scalars` n scalars, `out` one point, as the ABI requires.
        let st = unsafe {
            f(
                points.as_ptr(),
                scalars.as_ptr(),
                n as u64,
                out.as_mut_ptr(),
            )
        };
        self.check(op, st)
    }

    /// `sum scalars[i] * points[i]` over G1 (64-byte points, 32-byte scalars).
    pub fn msm_g1(
        &self,
        points: &[u8],
        scalars: &[u8],
    ) -> Result<[u8; ffi::G1_BYTES], BackendError> {
        let mut out = [0u8; ffi::G1_BYTES];
        self.msm(
            "msm_g1",
            self.table().msm_g1,
            ffi::G1_BYTES,
            points,
            scalars,
            &mut out,
        )?;
        Ok(out)
    }

    /// Keeps `points` (64-byte G1 points) in the backend, on its device for a
    /// GPU, for MSMs with [`PreparedG1::msm`]; released when dropped.
    pub fn prepare_g1(&self, points: &[u8]) -> Result<PreparedG1, BackendError> {
        let op = "g1_bases_prepare";
        if !points.len().is_multiple_of(ffi::G1_BYTES) {
            return Err(BackendError::Argument {
                op,
                reason: "the buffer is not whole points".into(),
            });
        }
        let n = points.len() / ffi::G1_BYTES;
        let mut handle = 0u64;
        #[allow(unsafe_code)]
        // SAFETY: `points` holds n points; `handle` is one writable u64.
        let st = unsafe { (self.table().g1_bases_prepare)(points.as_ptr(), n as u64, &mut handle) };
        self.check(op, st)?;
        self.nonzero(op, handle)?;
        Ok(PreparedG1 {
            backend: self.clone(),
            handle,
            n,
        })
    }

    /// Keeps `elements` (32-byte Fr encodings, reduced when not canonical)
    /// in the backend, on its device for a GPU, for [`KeptVec`]'s
    /// operations; freed when dropped.
    pub fn upload_vec(&self, elements: &[u8]) -> Result<KeptVec, BackendError> {
        let op = "vec_upload";
        if !elements.len().is_multiple_of(ffi::SCALAR_BYTES) {
            return Err(BackendError::Argument {
                op,
                reason: "the buffer is not whole elements".into(),
            });
        }
        let n = elements.len() / ffi::SCALAR_BYTES;
        let mut handle = 0u64;
        #[allow(unsafe_code)]
        // SAFETY: `elements` holds n elements; `handle` is one writable u64.
        let st = unsafe { (self.table().vec_upload)(elements.as_ptr(), n as u64, &mut handle) };
        self.check(op, st)?;
        self.kept(op, handle, n)
    }

    /// A handle the backend gave in `op`, refused when null.
    fn nonzero(&self, op: &'static str, handle: u64) -> Result<(), BackendError> {
        if handle != 0 {
            return Ok(());
        }
        Err(BackendError::Call {
            backend: self.info.name.clone(),
            op,
            code: ffi::status::INTERNAL,
            message: "it returned the null handle".into(),
        })
    }

    /// A [`KeptVec`] for a handle the backend just gave.
    fn kept(&self, op: &'static str, handle: u64, n: usize) -> Result<KeptVec, BackendError> {
        self.nonzero(op, handle)?;
        Ok(KeptVec {
            backend: self.clone(),
            handle,
            n,
        })
    }

    /// Whether `other` is this same loaded library (clones are).
    pub fn same_as(&self, other: &Backend) -> bool {
        Arc::ptr_eq(&self.loaded, &other.loaded)
    }

    /// `sum scalars[i] * points[i]` over G2 (128-byte points, 32-byte scalars).
    pub fn msm_g2(
        &self,
        points: &[u8],
        scalars: &[u8],
    ) -> Result<[u8; ffi::G2_BYTES], BackendError> {
        let mut out = [0u8; ffi::G2_BYTES];
        self.msm(
            "msm_g2",
            self.table().msm_g2,
            ffi::G2_BYTES,
            points,
            scalars,
            &mut out,
        )?;
        Ok(out)
    }

    /// In-place NTT of `data.len() / (32 << log_n)` vectors of `2^log_n` elements.
    pub fn ntt(
        &self,
        data: &mut [u8],
        log_n: u32,
        inverse: bool,
        coset: Option<&[u8; 32]>,
    ) -> Result<(), BackendError> {
        let op = "ntt";
        if log_n > self.info.max_log_ntt {
            return Err(BackendError::Argument {
                op,
                reason: format!(
                    "2^{log_n} is over this backend's 2^{}",
                    self.info.max_log_ntt
                ),
            });
        }
        let vec_bytes = ffi::SCALAR_BYTES << log_n;
        if data.is_empty() || !data.len().is_multiple_of(vec_bytes) {
            return Err(BackendError::Argument {
                op,
                reason: format!(
                    "{} bytes is not a whole number of 2^{log_n}-element vectors",
                    data.len()
                ),
            });
        }
        let batch = u32::try_from(data.len() / vec_bytes).map_err(|_| BackendError::Argument {
            op,
            reason: "too many vectors".into(),
        })?;
        let coset_ptr = coset.map_or(std::ptr::null(), |c| c.as_ptr());
        #[allow(unsafe_code)]
        // SAFETY: `data` holds `batch` vectors of 2^log_n elements; coset is null or 32 bytes.
        let st = unsafe {
            (self.table().ntt)(
                data.as_mut_ptr(),
                log_n,
                batch,
                u32::from(inverse),
                coset_ptr,
            )
        };
        self.check(op, st)
    }
}

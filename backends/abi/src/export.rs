//! Helpers for the exporting side of the ABI, shared by every backend
//! library: the per-thread last error, panic capture, `last_error`, the
//! handles of prepared bases and kept vectors, and the argument checks of
//! the entries that take them.

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
        self.release_as("g1_bases_release", "prepared bases", handle)
    }

    /// A release entry `op` of values called `what`.
    pub fn release_as(&self, op: &str, what: &str, handle: u64) -> Status {
        if self.remove(handle) {
            status::OK
        } else {
            fail(
                status::INVALID_ARGUMENT,
                format!("{op}: no {what} under handle {handle}"),
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

/// A kept Fr vector as the shared checks see it.
pub trait KeptVector {
    /// How many elements.
    fn len(&self) -> usize;

    /// Whether it has none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: KeptVector> Handles<T> {
    /// The vector under `handle` for entry `op`, or `INVALID_ARGUMENT`.
    pub fn vector(&self, op: &str, handle: u64) -> Result<Arc<T>, Status> {
        self.get(handle).ok_or_else(|| {
            fail(
                status::INVALID_ARGUMENT,
                format!("{op}: no kept vector under handle {handle}"),
            )
        })
    }

    /// Every backend's `vec_release(handle)`.
    pub fn release_vector(&self, handle: u64) -> Status {
        self.release_as("vec_release", "kept vector", handle)
    }

    /// The checks of every backend's `vec_download(handle, offset, n, out)`:
    /// a held handle, a range inside the vector, a non-null output. Returns
    /// the vector, the range and the output.
    ///
    /// # Safety
    /// As the ABI requires: `out` is valid for `n` elements when non-null.
    #[allow(unsafe_code, clippy::type_complexity)]
    pub unsafe fn download_args<'a>(
        &self,
        handle: u64,
        offset: u64,
        n: u64,
        out: *mut u8,
    ) -> Result<(Arc<T>, std::ops::Range<usize>, &'a mut [u8]), Status> {
        let op = "vec_download";
        let v = self.vector(op, handle)?;
        let range = element_range(op, offset, n, v.len())?;
        if n == 0 {
            return Ok((v, range, &mut []));
        }
        if out.is_null() {
            return Err(fail(status::INVALID_ARGUMENT, format!("{op}: null output")));
        }
        // SAFETY: non-null and, by the ABI, valid for n elements.
        let out = unsafe { std::slice::from_raw_parts_mut(out, range.len() * ffi::SCALAR_BYTES) };
        Ok((v, range, out))
    }

    /// The checks of every backend's `vec_ntt(handle, log_n, inverse,
    /// coset)`: a held handle, a size at most `max_log`, a length that is
    /// whole vectors of that size, and a nonzero coset generator. Returns
    /// the vector and the generator.
    ///
    /// # Safety
    /// As the ABI requires: `coset` is null or valid for 32 bytes.
    #[allow(unsafe_code)]
    pub unsafe fn ntt_args(
        &self,
        handle: u64,
        log_n: u32,
        max_log: u32,
        coset: *const u8,
    ) -> Result<(Arc<T>, Option<[u8; 32]>), Status> {
        let op = "vec_ntt";
        let v = self.vector(op, handle)?;
        if log_n > max_log {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!("{op}: 2^{log_n} is larger than Fr's largest subgroup 2^{max_log}"),
            ));
        }
        if v.is_empty() || !v.len().is_multiple_of(1 << log_n) {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!(
                    "{op}: {} elements are not a whole number of 2^{log_n}-element vectors",
                    v.len()
                ),
            ));
        }
        // SAFETY: forwarded with the same ABI obligation.
        let coset = unsafe { scalar_arg(coset) };
        if coset.is_some_and(|g| is_zero_mod_r(&g)) {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!("{op}: the coset generator is zero"),
            ));
        }
        Ok((v, coset))
    }

    /// The checks of every backend's `vec_ab_minus_c(handle, scale, out)`:
    /// a held handle whose length is three equal parts, non-null pointers.
    /// Returns the vector, the part length and the scale.
    ///
    /// # Safety
    /// As the ABI requires: `scale` is null or valid for 32 bytes, `out`
    /// null or valid for one `u64` write.
    #[allow(unsafe_code)]
    pub unsafe fn ab_minus_c_args(
        &self,
        handle: u64,
        scale: *const u8,
        out: *mut u64,
    ) -> Result<(Arc<T>, usize, [u8; 32]), Status> {
        let op = "vec_ab_minus_c";
        let v = self.vector(op, handle)?;
        // SAFETY: forwarded with the same ABI obligation.
        let (Some(scale), false) = (unsafe { scalar_arg(scale) }, out.is_null()) else {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!("{op}: null pointer"),
            ));
        };
        if v.is_empty() || !v.len().is_multiple_of(3) {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!(
                    "{op}: {} elements are not a, b and c of one length",
                    v.len()
                ),
            ));
        }
        let part = v.len() / 3;
        Ok((v, part, scale))
    }
}

/// `offset..offset + n` if it lies inside `len` elements.
pub fn element_range(
    op: &str,
    offset: u64,
    n: u64,
    len: usize,
) -> Result<std::ops::Range<usize>, Status> {
    match offset.checked_add(n) {
        Some(end) if end <= len as u64 => Ok(offset as usize..end as usize),
        _ => Err(fail(
            status::INVALID_ARGUMENT,
            format!("{op}: elements {offset}..{offset}+{n} are outside a vector of {len}"),
        )),
    }
}

/// 32 bytes at `p`, or `None` for a null pointer.
///
/// # Safety
/// `p` is null or valid for 32 bytes of reads.
#[allow(unsafe_code)]
pub unsafe fn scalar_arg(p: *const u8) -> Option<[u8; 32]> {
    if p.is_null() {
        return None;
    }
    let mut g = [0u8; 32];
    // SAFETY: non-null and, by the caller, valid for 32 bytes.
    g.copy_from_slice(unsafe { std::slice::from_raw_parts(p, 32) });
    Some(g)
}

/// Whether 32 little-endian bytes are 0 modulo r (0, r, 2r, ... below 2^256).
pub fn is_zero_mod_r(b: &[u8; 32]) -> bool {
    // r, little-endian 64-bit limbs.
    const R: [u64; 4] = [
        0x43e1_f593_f000_0001,
        0x2833_e848_79b9_7091,
        0xb850_45b6_8181_585d,
        0x3064_4e72_e131_a029,
    ];
    let limbs: [u64; 4] = std::array::from_fn(|i| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[8 * i..8 * i + 8]);
        u64::from_le_bytes(w)
    });
    // Below 2^256 the multiples of r are 0..=5 · r.
    let mut m = [0u64; 4];
    for _ in 0..6 {
        if m == limbs {
            return true;
        }
        let mut carry = 0u128;
        for i in 0..4 {
            let t = m[i] as u128 + R[i] as u128 + carry;
            m[i] = t as u64;
            carry = t >> 64;
        }
        if carry != 0 {
            return false;
        }
    }
    false
}

/// The checks of every backend's `vec_upload(data, n, handle)`: pointers and
/// size (at most `max` elements). Returns the elements.
///
/// # Safety
/// As the ABI requires: `data` is valid for `n` elements when non-null.
#[allow(unsafe_code)]
pub unsafe fn upload_args<'a>(
    data: *const u8,
    n: u64,
    handle: *mut u64,
    max: u64,
) -> Result<&'a [u8], Status> {
    // SAFETY: forwarded with the same obligation.
    unsafe {
        kept_input(
            "vec_upload",
            "elements",
            ffi::SCALAR_BYTES,
            data,
            n,
            handle,
            max,
        )
    }
}

/// The checks of an entry that keeps `n` items of `width` bytes from `data`
/// under a new handle written to `handle`: pointers and size (at most `max`).
///
/// # Safety
/// `data` is valid for `n` items when non-null.
#[allow(unsafe_code)]
unsafe fn kept_input<'a>(
    op: &str,
    what: &str,
    width: usize,
    data: *const u8,
    n: u64,
    handle: *mut u64,
    max: u64,
) -> Result<&'a [u8], Status> {
    if handle.is_null() || (n > 0 && data.is_null()) {
        return Err(fail(
            status::INVALID_ARGUMENT,
            format!("{op}: null pointer"),
        ));
    }
    if n > max {
        return Err(fail(
            status::INVALID_ARGUMENT,
            format!("{op}: {n} {what} is over the limit of {max}"),
        ));
    }
    if n == 0 {
        return Ok(&[]);
    }
    // SAFETY: non-null and, by the caller, valid for n items of `width` bytes.
    Ok(unsafe { std::slice::from_raw_parts(data, n as usize * width) })
}

/// The checks of every backend's `msm_g1_prepared_vec(bases, vector, offset,
/// out)`: both handles held, one element per base from `offset`, a
/// non-null output. Returns the bases, the vector and the element range.
#[allow(clippy::type_complexity)]
pub fn prepared_vec_args<B: Prepared, V: KeptVector>(
    bases: &Handles<B>,
    vectors: &Handles<V>,
    handle: u64,
    vector: u64,
    offset: u64,
    out: *mut u8,
) -> Result<(Arc<B>, Arc<V>, std::ops::Range<usize>), Status> {
    let op = "msm_g1_prepared_vec";
    if out.is_null() {
        return Err(fail(status::INVALID_ARGUMENT, format!("{op}: null output")));
    }
    let Some(b) = bases.get(handle) else {
        return Err(fail(
            status::INVALID_ARGUMENT,
            format!("{op}: no prepared bases under handle {handle}"),
        ));
    };
    let v = vectors.vector(op, vector)?;
    let range = element_range(op, offset, b.count() as u64, v.len())?;
    Ok((b, v, range))
}

/// The checks of every backend's `set_option(key, key_len, value,
/// value_len)`: both UTF-8. Returns the option's name when the key is
/// `<backend>.<name>`, or `None` for another backend's key (ignored).
///
/// # Safety
/// As the ABI requires: `key` and `value` are valid for their lengths.
#[allow(unsafe_code)]
pub unsafe fn option_args<'a>(
    backend: &str,
    key: *const u8,
    key_len: u64,
    value: *const u8,
    value_len: u64,
) -> Result<Option<(&'a str, &'a str)>, Status> {
    let text = |p: *const u8, n: u64, what: &str| -> Result<&'a str, Status> {
        if n == 0 {
            return Ok("");
        }
        if p.is_null() {
            return Err(fail(
                status::INVALID_ARGUMENT,
                format!("set_option: null {what}"),
            ));
        }
        // SAFETY: non-null and, by the ABI, valid for n bytes.
        let b = unsafe { std::slice::from_raw_parts(p, n as usize) };
        std::str::from_utf8(b).map_err(|_| {
            fail(
                status::INVALID_ARGUMENT,
                format!("set_option: the {what} is not UTF-8"),
            )
        })
    };
    let (k, v) = (text(key, key_len, "key")?, text(value, value_len, "value")?);
    Ok(k.strip_prefix(backend)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(|name| (name, v)))
}

/// The failure of `set_option` for `name` and `value`: why.
pub fn option_refused(backend: &str, name: &str, value: &str, why: &str) -> Status {
    fail(
        status::INVALID_ARGUMENT,
        format!("{backend}.{name}={value:?}: {why}"),
    )
}

/// The checks of every backend's `configure(threads, cpus, n_cpus)`: each
/// CPU id one this process may run on (`allowed`, its affinity mask), so
/// that pinning a worker can never fail inside a thread (ids past the
/// kernel's CPU set abort the process there). Returns the ids.
///
/// # Safety
/// As the ABI requires: `cpus` is valid for `n_cpus` ids when non-null.
#[allow(unsafe_code)]
pub unsafe fn configure_args(
    cpus: *const u32,
    n_cpus: u32,
    allowed: &[usize],
) -> Result<Vec<usize>, Status> {
    if n_cpus == 0 {
        return Ok(Vec::new());
    }
    if cpus.is_null() {
        return Err(fail(status::INVALID_ARGUMENT, "configure: null CPU list"));
    }
    // SAFETY: non-null and, by the ABI, valid for n_cpus ids.
    let ids = unsafe { std::slice::from_raw_parts(cpus, n_cpus as usize) };
    match ids.iter().find(|c| !allowed.contains(&(**c as usize))) {
        Some(bad) => Err(fail(
            status::INVALID_ARGUMENT,
            format!(
                "configure: CPU {bad} is not one this process may run on ({})",
                cpu_list(allowed)
            ),
        )),
        None => Ok(ids.iter().map(|c| *c as usize).collect()),
    }
}

/// `0-3,8` for sorted-or-not CPU ids (`none` for an empty list).
pub fn cpu_list(ids: &[usize]) -> String {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

/// Largest MSM any backend accepts (2^32 points).
pub const MAX_MSM: u64 = 1 << 32;

/// Fr's two-adicity: the largest NTT is 2^28.
pub const TWO_ADICITY: u32 = 28;

/// An MSM call's inputs: points, scalars and the output point.
pub type MsmArgs<'a> = (&'a [u8], &'a [u8], &'a mut [u8]);

/// The checks of every backend's `msm_g1` and `msm_g2(points, scalars, n,
/// out)`: pointers and size (at most [`MAX_MSM`]); `width` is the bytes of
/// a point. Returns the points, the scalars and the output.
///
/// # Safety
/// As the ABI requires: `points` and `scalars` are valid for `n` points and
/// scalars when non-null, `out` for one point.
#[allow(unsafe_code)]
pub unsafe fn msm_args<'a>(
    op: &str,
    width: usize,
    points: *const u8,
    scalars: *const u8,
    n: u64,
    out: *mut u8,
) -> Result<MsmArgs<'a>, Status> {
    if out.is_null() || (n > 0 && (points.is_null() || scalars.is_null())) {
        return Err(fail(
            status::INVALID_ARGUMENT,
            format!("{op}: null pointer"),
        ));
    }
    if n > MAX_MSM {
        return Err(fail(
            status::INVALID_ARGUMENT,
            format!("{op}: {n} points is over the limit of {MAX_MSM}"),
        ));
    }
    let n = n as usize;
    // SAFETY: non-null and, by the ABI, valid for one point.
    let out = unsafe { std::slice::from_raw_parts_mut(out, width) };
    if n == 0 {
        return Ok((&[], &[], out));
    }
    // SAFETY: non-null and, by the ABI, valid for n points and n scalars.
    let (pts, sc) = unsafe {
        (
            std::slice::from_raw_parts(points, n * width),
            std::slice::from_raw_parts(scalars, n * ffi::SCALAR_BYTES),
        )
    };
    Ok((pts, sc, out))
}

/// An NTT call's vectors and coset generator.
pub type NttArgs<'a> = (&'a mut [u8], Option<[u8; 32]>);

/// The checks of every backend's `ntt(data, log_n, batch, inverse, coset)`:
/// a non-null buffer, a size at most [`TWO_ADICITY`] whose bytes do not
/// overflow, a nonzero coset generator. Returns the vectors and the
/// generator, or `None` for an empty batch (nothing to do).
///
/// # Safety
/// As the ABI requires: `data` is valid for `batch` vectors of `2^log_n`
/// elements when non-null, `coset` null or valid for 32 bytes.
#[allow(unsafe_code)]
pub unsafe fn ntt_args<'a>(
    data: *mut u8,
    log_n: u32,
    batch: u32,
    coset: *const u8,
) -> Result<Option<NttArgs<'a>>, Status> {
    if data.is_null() {
        return Err(fail(status::INVALID_ARGUMENT, "ntt: null data"));
    }
    if log_n > TWO_ADICITY {
        return Err(fail(
            status::INVALID_ARGUMENT,
            format!("ntt: 2^{log_n} is larger than Fr's largest subgroup 2^{TWO_ADICITY}"),
        ));
    }
    if batch == 0 {
        return Ok(None);
    }
    let Some(len) = (ffi::SCALAR_BYTES << log_n).checked_mul(batch as usize) else {
        return Err(fail(status::INVALID_ARGUMENT, "ntt: size overflows"));
    };
    // SAFETY: forwarded with the same ABI obligation.
    let coset = unsafe { scalar_arg(coset) };
    if coset.is_some_and(|g| is_zero_mod_r(&g)) {
        return Err(fail(
            status::INVALID_ARGUMENT,
            "ntt: the coset generator is zero",
        ));
    }
    // SAFETY: non-null and, by the ABI, valid for batch vectors of 2^log_n elements.
    let data = unsafe { std::slice::from_raw_parts_mut(data, len) };
    Ok(Some((data, coset)))
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
    // SAFETY: forwarded with the same obligation.
    unsafe {
        kept_input(
            "g1_bases_prepare",
            "points",
            ffi::G1_BYTES,
            points,
            n,
            handle,
            max,
        )
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

    #[test]
    fn zero_mod_r_is_every_multiple_of_r_below_2_256() {
        let r = [
            0x01, 0x00, 0x00, 0xf0, 0x93, 0xf5, 0xe1, 0x43, 0x91, 0x70, 0xb9, 0x79, 0x48, 0xe8,
            0x33, 0x28, 0x5d, 0x58, 0x81, 0x81, 0xb6, 0x45, 0x50, 0xb8, 0x29, 0xa0, 0x31, 0xe1,
            0x72, 0x4e, 0x64, 0x30,
        ];
        assert!(is_zero_mod_r(&[0; 32]));
        assert!(is_zero_mod_r(&r));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(!is_zero_mod_r(&one));
        let mut r_plus_one = r;
        r_plus_one[0] = 2;
        assert!(!is_zero_mod_r(&r_plus_one));
        // 5r fits below 2^256; so does 2r.
        let times = |k: u64| -> [u8; 32] {
            let mut out = [0u8; 32];
            let mut carry = 0u128;
            for i in 0..4 {
                let mut w = [0u8; 8];
                w.copy_from_slice(&r[8 * i..8 * i + 8]);
                let t = u64::from_le_bytes(w) as u128 * k as u128 + carry;
                out[8 * i..8 * i + 8].copy_from_slice(&(t as u64).to_le_bytes());
                carry = t >> 64;
            }
            out
        };
        assert!(is_zero_mod_r(&times(2)) && is_zero_mod_r(&times(5)));
        assert!(!is_zero_mod_r(&[0xff; 32]));
    }

    #[test]
    fn element_ranges_stay_inside_the_vector() {
        assert_eq!(element_range("t", 2, 3, 5), Ok(2..5));
        assert_eq!(element_range("t", 5, 0, 5), Ok(5..5));
        assert!(element_range("t", 3, 3, 5).is_err());
        assert!(element_range("t", u64::MAX, 2, 5).is_err());
    }
}

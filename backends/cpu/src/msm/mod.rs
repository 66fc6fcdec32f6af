//! Multi-scalar multiplication by Pippenger's bucket method, with signed
//! window digits and bucket accumulation in batch-affine form: additions
//! into buckets are collected into batches that share one field inversion
//! (Montgomery's trick), so each addition costs about 6 multiplications
//! instead of the 11 of a mixed Jacobian addition.
//!
//! Work is split into (window, chunk of points) tasks on the backend's thread
//! pool; each task reduces its own buckets, and windows are combined at the end.
//!
//! Edge cases: n = 0 gives the identity; zero scalars and points at infinity
//! contribute nothing; repeated points and `P + (-P)` in a bucket are handled
//! exactly (doubling, cancellation); scalars at or above r are reduced mod r.

use rayon::prelude::*;

use crate::curve::{Affine, Curve, Jacobian};
use crate::field::{Field, Fr};

#[cfg(target_arch = "x86_64")]
pub mod ifma;
pub mod portable;
#[cfg(target_arch = "x86_64")]
pub mod reduce;

pub use portable::{Portable, msm};

/// Bits of a scalar below r.
const SCALAR_BITS: u32 = 254;

/// The window width for `n` points, minimising bucket additions plus reduction work.
pub fn window_bits(n: usize) -> u32 {
    if n < 32 {
        return 3;
    }
    let mut best = (f64::MAX, 3);
    for c in 3..=16u32 {
        let windows = f64::from(SCALAR_BITS / c + 1);
        // A bucket addition costs ~6 multiplications plus its share of the
        // batch's bookkeeping; reducing a bucket (mixed + Jacobian addition,
        // ~27 multiplications, no memory traffic) costs about three times as
        // much as one (measured on the ADX and IFMA paths, 2^18 and 2^20:
        // windows of 15 and 16 bits beat 13 and 15 by 3-10%).
        let cost = windows * (6.0 * n as f64 + 18.0 * f64::from(1u32 << (c - 1)));
        if cost < best.0 {
            best = (cost, c);
        }
    }
    best.1
}

/// An empty vector with room for `n` values; from 2 MiB up, the kernel is
/// asked to back it with huge pages (Linux, where transparent huge pages
/// are on or `madvise`): an MSM's scalars, digits and points are written
/// once per call, and 4 KiB pages cost a fault each (32,000 at 2^20) and
/// more TLB misses. Fill it on the pool's threads (`par_extend`), so the
/// first touch of its pages is shared too.
pub fn big_vec<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    #[cfg(target_os = "linux")]
    {
        let bytes = n * std::mem::size_of::<T>();
        if bytes >= 2 << 20 {
            // The whole pages inside the allocation.
            let start = (v.as_ptr() as usize).next_multiple_of(4096);
            let end = (v.as_ptr() as usize + bytes) & !4095;
            if end > start {
                // SAFETY: madvise only gives the kernel a hint about pages
                // this vector owns (its capacity, not yet written); it
                // neither reads nor moves them, and a refusal changes nothing.
                #[allow(unsafe_code)]
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
    v
}

/// Scalars as canonical integers below r.
pub fn decode_scalars(bytes: &[u8]) -> Vec<[u64; 4]> {
    let mut out = big_vec(bytes.len() / 32);
    out.par_extend(bytes.par_chunks(32).map(|c| {
        let mut w = [0u8; 32];
        w.copy_from_slice(c);
        Fr::reduce(crate::field::limbs_from_bytes(&w))
    }));
    out
}

/// Signed digits, window-major: `digits[w * n + i]` in `[-2^(c-1), 2^(c-1))`.
pub fn signed_digits(scalars: &[[u64; 4]], c: u32) -> (Vec<i16>, usize) {
    let n = scalars.len();
    let windows = (SCALAR_BITS / c + 1) as usize;
    let mut digits = big_vec(windows * n);
    digits.par_extend(rayon::iter::repeat_n(0i16, windows * n));
    let mask = (1u64 << c) - 1;
    let half = 1i64 << (c - 1);
    const CHUNK: usize = 1 << 12;
    // Each chunk of scalars fills its columns in every window row.
    let rows: Vec<&mut [i16]> = digits.chunks_mut(n.max(1)).collect();
    let mut per_chunk: Vec<Vec<&mut [i16]>> = (0..n.div_ceil(CHUNK))
        .map(|_| Vec::with_capacity(windows))
        .collect();
    for row in rows {
        for (k, piece) in row.chunks_mut(CHUNK).enumerate() {
            per_chunk[k].push(piece);
        }
    }
    per_chunk
        .into_par_iter()
        .enumerate()
        .for_each(|(k, mut cols)| {
            for (j, s) in scalars[k * CHUNK..((k + 1) * CHUNK).min(n)]
                .iter()
                .enumerate()
            {
                let mut carry = 0i64;
                for (w, col) in cols.iter_mut().enumerate() {
                    let bit = w as u32 * c;
                    let limb = (bit / 64) as usize;
                    let shift = bit % 64;
                    let mut v = if limb < 4 { s[limb] >> shift } else { 0 };
                    if shift + c > 64 && limb + 1 < 4 {
                        v |= s[limb + 1] << (64 - shift);
                    }
                    let mut d = (v & mask) as i64 + carry;
                    if d >= half {
                        d -= 1 << c;
                        carry = 1;
                    } else {
                        carry = 0;
                    }
                    col[j] = d as i16;
                }
            }
        });
    (digits, windows)
}

/// The arithmetic a bucket pass needs, implemented by the portable path
/// (points as [`Affine`]) and the IFMA path (points packed one per cache line).
pub trait Kernel: Sync {
    /// The coordinate field of the scalar reduction.
    type F: Field;
    /// Decoded input points.
    type Points: Sync;
    /// Bucket storage of one task.
    type Buckets: Send;
    /// How many input points.
    fn count(&self, points: &Self::Points) -> usize;
    /// Whether input point `i` is the identity.
    fn input_is_identity(&self, points: &Self::Points, i: usize) -> bool;
    /// `nb` empty buckets.
    fn new_buckets(&self, nb: usize) -> Self::Buckets;
    /// Whether bucket `b` is empty (the identity).
    fn bucket_is_empty(&self, buckets: &Self::Buckets, b: usize) -> bool;
    /// `bucket[b] = ±points[r]` ([`NEG`] in `r` asks for the negation).
    fn set_bucket(&self, buckets: &mut Self::Buckets, b: usize, points: &Self::Points, r: u32);
    /// `bucket[b] += ±points[r]` for each `(b, r)`; the buckets are distinct.
    fn add_batch(&self, buckets: &mut Self::Buckets, points: &Self::Points, batch: &[(u32, u32)]);
    /// Asks the CPU to bring bucket `b` into cache: it is in the next
    /// batch, whose additions read it after the batch fills.
    fn prefetch_bucket(&self, _buckets: &Self::Buckets, _b: usize) {}
    /// The buckets as affine points of [`Kernel::F`].
    fn bucket_values(&self, buckets: &Self::Buckets) -> Vec<Affine<Self::F>>;
    /// Takes back bucket storage for reuse by a later task on this thread.
    fn recycle(&self, _buckets: Self::Buckets) {}
    /// `sum (b + 1) * bucket_b`, where bucket `b` is the sum of storage
    /// entries `first[b]..first[b + 1]`.
    fn reduce(&self, buckets: &Self::Buckets, first: &[u32]) -> Jacobian<Self::F> {
        running_sums(&self.bucket_values(buckets), first)
    }
}

/// `sum (b + 1) * bucket_b` by running sums from the top bucket, on the
/// portable formulas (bucket `b` is the sum of `values[first[b]..first[b + 1]]`).
pub fn running_sums<F: Field>(values: &[Affine<F>], first: &[u32]) -> Jacobian<F> {
    let mut running = Jacobian::IDENTITY;
    let mut sum = Jacobian::IDENTITY;
    for b in (0..first.len() - 1).rev() {
        for v in &values[first[b] as usize..first[b + 1] as usize] {
            running = running.add_mixed(v);
        }
        sum = sum.add(&running);
    }
    sum
}

/// Buckets from which [`segmented_sums`] pays (below, plain running sums).
const SEGMENTED_FROM: usize = 1 << 10;

/// Segments [`segmented_sums`] runs side by side: enough additions per
/// shared inversion to amortise it.
const SEGMENTS: usize = 128;

/// `sum (b + 1) * bucket_b` as [`running_sums`] computes it, but in
/// batch-affine form: the buckets are cut into [`SEGMENTS`] segments whose
/// running sums advance together, each step's additions (one per segment)
/// sharing one inversion, about 6 multiplications an addition against 11
/// and 16 for the Jacobian formulas. With segment `l` covering buckets
/// `lL..(l+1)L`, its running sum `R_l` and its weighted sum `S_l` (weights
/// `1..=L`), the result is `sum_l S_l + L sum_l l R_l`.
pub fn segmented_sums<F: Field>(values: &[Affine<F>], first: &[u32]) -> Jacobian<F> {
    let nb = first.len() - 1;
    if nb < SEGMENTED_FROM {
        return running_sums(values, first);
    }
    // A bucket split into copies (skewed digits) is summed first.
    let merged: std::borrow::Cow<[Affine<F>]> = if values.len() == nb {
        std::borrow::Cow::Borrowed(values)
    } else {
        std::borrow::Cow::Owned(
            (0..nb)
                .map(|b| {
                    let copies = &values[first[b] as usize..first[b + 1] as usize];
                    match copies {
                        [one] => *one,
                        _ => copies
                            .iter()
                            .fold(Jacobian::IDENTITY, |s, v| s.add_mixed(v))
                            .to_affine(),
                    }
                })
                .collect(),
        )
    };
    let len = nb.div_ceil(SEGMENTS);
    let mut running = vec![Affine::IDENTITY; SEGMENTS];
    let mut sums = vec![Affine::IDENTITY; SEGMENTS];
    let mut den = Vec::with_capacity(SEGMENTS);
    let mut prefix = Vec::with_capacity(SEGMENTS);
    // `acc[l] += add[l]` for every segment, with one shared inversion.
    let mut step = |acc: &mut [Affine<F>], add: &dyn Fn(usize) -> Affine<F>| {
        den.clear();
        den.extend((0..SEGMENTS).map(|l| pair_denominator(&acc[l], &add(l))));
        batch_invert(&mut den, &mut prefix);
        for (l, a) in acc.iter_mut().enumerate() {
            *a = add_with_inverse(a, &add(l), &den[l]);
        }
    };
    for j in (0..len).rev() {
        step(&mut running, &|l| {
            merged.get(l * len + j).copied().unwrap_or(Affine::IDENTITY)
        });
        let r = running.clone();
        step(&mut sums, &|l| r[l]);
    }
    // sum_l l R_l by running sums over the segments, then times L.
    let (mut acc, mut weighted) = (Jacobian::IDENTITY, Jacobian::IDENTITY);
    for r in running.iter().skip(1).rev() {
        acc = acc.add_mixed(r);
        weighted = weighted.add(&acc);
    }
    let mut total = Jacobian::IDENTITY;
    let mut bit = usize::BITS - len.leading_zeros();
    while bit > 0 {
        bit -= 1;
        total = total.double();
        if len >> bit & 1 == 1 {
            total = total.add(&weighted);
        }
    }
    for s in &sums {
        total = total.add_mixed(s);
    }
    total
}

/// Brings the cache lines of `x` toward the core (into L2 and L1) without
/// waiting: a bucket is random memory that a whole window's buckets (megabytes
/// at 16-bit windows) keep out of cache, and a batch's first read of it
/// otherwise stalls the additions behind it.
#[inline(always)]
pub fn prefetch<T: ?Sized>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = (x as *const T).cast::<i8>();
        let lines = std::mem::size_of_val(x).div_ceil(64);
        for k in 0..lines {
            // SAFETY: a prefetch is a hint that never faults nor reads into the
            // program; the address is within (or one line past) `x`.
            #[allow(unsafe_code)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.wrapping_add(64 * k),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// Marks a negated point in a point reference.
pub const NEG: u32 = 1 << 31;

/// Additions per shared inversion for `nb` buckets: large enough to amortise
/// the inversion, small enough that few additions hit a busy bucket.
pub fn batch_size(nb: usize) -> usize {
    (nb / 8).clamp(64, 2048)
}

/// The denominator of `p + q` in affine form: `x_q - x_p`, `2y` for a
/// doubling, or zero when no inversion is needed (identity or `P + (-P)`).
#[inline(always)]
pub fn pair_denominator<F: Field>(p: &Affine<F>, q: &Affine<F>) -> F {
    if p.infinity || q.infinity {
        F::ZERO
    } else if p.x == q.x {
        if p.y == q.y { p.y.double() } else { F::ZERO }
    } else {
        q.x.sub(&p.x)
    }
}

/// `p + q` given the inverse of [`pair_denominator`] (zero when there was none).
#[inline(always)]
pub fn add_with_inverse<F: Field>(p: &Affine<F>, q: &Affine<F>, inv: &F) -> Affine<F> {
    if p.infinity {
        *q
    } else if q.infinity {
        *p
    } else if inv.is_zero() {
        Affine::IDENTITY
    } else {
        // Below 2m, not reduced: it only goes into products.
        let lambda = if p.x == q.x {
            let xx = p.x.square();
            xx.double().add(&xx).mul_lazy(inv)
        } else {
            q.y.sub(&p.y).mul_lazy(inv)
        };
        let x3 = lambda.square().sub(&p.x).sub(&q.x);
        let y3 = lambda.mul(&p.x.sub(&x3)).sub(&p.y);
        Affine {
            x: x3,
            y: y3,
            infinity: false,
        }
    }
}

/// Inverts the nonzero entries of `v` in place (zeros stay zero), with one
/// inversion: prefix products, then back down. The products run as two
/// interleaved chains (entry `i` in chain `i % 2`) so that each
/// multiplication need not wait for the one before it. The inverses are
/// lazy ([`Field::mul_lazy`]: below 2m in a base field, nonzero where the
/// entry was): they only go into products.
pub fn batch_invert<F: Field>(v: &mut [F], prefix: &mut Vec<F>) {
    prefix.clear();
    let mut acc = [F::ONE; 2];
    for (i, d) in v.iter().enumerate() {
        let k = i % 2;
        prefix.push(acc[k]);
        if !d.is_zero() {
            // The prefixes stay below 2m (lazy): they only go into products.
            acc[k] = acc[k].mul_lazy(d);
        }
    }
    let both = acc[0].mul(&acc[1]).inverse().unwrap_or(F::ONE);
    let mut inv = [both.mul(&acc[1]), both.mul(&acc[0])];
    for j in (0..v.len()).rev() {
        let k = j % 2;
        let d = v[j];
        if !d.is_zero() {
            v[j] = prefix[j].mul_lazy(&inv[k]);
            inv[k] = inv[k].mul_lazy(&d);
        }
    }
}

/// Accumulates points into buckets in batches of distinct buckets; an
/// addition whose bucket is already in the batch waits for the next one.
struct Accumulator<'a, K: Kernel> {
    k: &'a K,
    points: &'a K::Points,
    buckets: K::Buckets,
    busy: Vec<u64>,
    /// Buckets never written (a cancelled bucket may read as non-empty: the
    /// kernel then adds to the identity, which it handles).
    fresh: Vec<u64>,
    batch: Vec<(u32, u32)>,
    deferred: Vec<(u32, u32)>,
    limit: usize,
}

impl<'a, K: Kernel> Accumulator<'a, K> {
    fn new(k: &'a K, points: &'a K::Points, nb: usize) -> Self {
        let limit = batch_size(nb);
        Accumulator {
            k,
            points,
            buckets: k.new_buckets(nb),
            busy: vec![0; nb.div_ceil(64)],
            fresh: vec![u64::MAX; nb.div_ceil(64)],
            batch: Vec::with_capacity(limit + 64),
            deferred: Vec::new(),
            limit,
        }
    }

    #[inline(always)]
    fn place(&mut self, b: u32, r: u32) {
        let (w, bit) = ((b / 64) as usize, b % 64);
        if self.busy[w] >> bit & 1 == 1 {
            self.deferred.push((b, r));
        } else if self.fresh[w] >> bit & 1 == 1 {
            self.fresh[w] &= !(1 << bit);
            self.k
                .set_bucket(&mut self.buckets, b as usize, self.points, r);
        } else {
            self.busy[w] |= 1 << bit;
            self.k.prefetch_bucket(&self.buckets, b as usize);
            self.batch.push((b, r));
        }
    }

    #[inline(always)]
    fn push(&mut self, b: u32, r: u32) {
        self.place(b, r);
        if self.batch.len() >= self.limit {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.k
            .add_batch(&mut self.buckets, self.points, &self.batch);
        for &(b, _) in &self.batch {
            self.busy[(b / 64) as usize] &= !(1 << (b % 64));
        }
        self.batch.clear();
        let d = std::mem::take(&mut self.deferred);
        for (b, r) in d {
            self.place(b, r);
        }
    }

    fn finish(mut self) -> K::Buckets {
        while !self.batch.is_empty() || !self.deferred.is_empty() {
            self.flush();
        }
        self.buckets
    }
}

/// One task: the points `lo..` of one window, accumulated into buckets and
/// reduced to `sum |d| * bucket[|d|]` by running sums from the top bucket.
/// Digits of points at infinity are zero.
///
/// A bucket that receives far more points than the average (skewed digits:
/// the top window, repeated scalars) is split into copies, and its points go
/// round-robin to the copies, so additions do not queue behind one busy
/// bucket; the copies are summed at the end.
fn window_task<K: Kernel>(
    k: &K,
    points: &K::Points,
    lo: usize,
    digits: &[i16],
    c: u32,
) -> Jacobian<K::F> {
    let nb = 1usize << (c - 1);
    let mut counts = vec![0u32; nb];
    for &d in digits {
        if d != 0 {
            counts[d.unsigned_abs() as usize - 1] += 1;
        }
    }
    let total: usize = counts.iter().map(|c| *c as usize).sum();
    if total == 0 {
        return Jacobian::IDENTITY;
    }
    // Points a bucket copy should take at most: twice the even share, but
    // small enough that a batch fills from distinct copies.
    let cap = (2 * total.div_ceil(nb))
        .min(total.div_ceil(2 * batch_size(nb)))
        .max(1);
    let mut first = Vec::with_capacity(nb + 1);
    let mut copies = 0usize;
    for &n in &counts {
        first.push(copies as u32);
        copies += (n as usize).div_ceil(cap).max(1);
    }
    first.push(copies as u32);
    let mut acc = Accumulator::new(k, points, copies);
    if copies == nb {
        // No bucket split (the usual case): a digit names its bucket.
        for (i, &d) in digits.iter().enumerate() {
            if d != 0 {
                let r = (lo + i) as u32 | if d < 0 { NEG } else { 0 };
                acc.push(u32::from(d.unsigned_abs()) - 1, r);
            }
        }
    } else {
        let mut turn = vec![0u32; nb];
        for (i, &d) in digits.iter().enumerate() {
            if d == 0 {
                continue;
            }
            let b = d.unsigned_abs() as usize - 1;
            // The next copy in turn (no division: this runs once a point).
            let copy = first[b] + turn[b];
            turn[b] += 1;
            if first[b] + turn[b] == first[b + 1] {
                turn[b] = 0;
            }
            let r = (lo + i) as u32 | if d < 0 { NEG } else { 0 };
            acc.push(copy, r);
        }
    }
    let buckets = acc.finish();
    let sum = k.reduce(&buckets, &first);
    k.recycle(buckets);
    sum
}

/// Fewest points a task takes when a window is split.
const MIN_CHUNK: usize = 1 << 12;

/// The tasks of an MSM over `n` points in `windows` windows on `threads`
/// threads, as `(window, first point, end)`, largest first. A task costs
/// its points' additions plus one bucket reduction, whatever its size, so
/// windows stay whole where they can: as many whole windows as fill every
/// thread equally, and the windows left over (fewer than the threads) each
/// split into equal chunks, about one per thread. (One window-sized task
/// per window, or two, left one thread alone at the end: 17 windows on 2
/// threads took 9 windows' time instead of 8.5, and on 16 threads 1.5
/// instead of 1.06.)
pub fn plan_tasks(n: usize, windows: usize, threads: usize) -> Vec<(usize, usize, usize)> {
    let threads = threads.max(1);
    let whole = windows - windows % threads;
    let rest = windows - whole;
    let chunks = threads
        .checked_div(rest)
        .map_or(1, |k| k.clamp(1, (n / MIN_CHUNK).max(1)));
    let len = n.div_ceil(chunks);
    let mut tasks: Vec<_> = (0..whole).map(|w| (w, 0, n)).collect();
    for w in whole..windows {
        tasks.extend((0..chunks).map(|j| (w, (j * len).min(n), ((j + 1) * len).min(n))));
    }
    tasks
}

/// `sum scalars[i] * points[i]` with a kernel and its decoded points.
pub fn msm_with<K: Kernel>(
    k: &K,
    points: &K::Points,
    scalars: &[[u64; 4]],
    threads: usize,
) -> Jacobian<K::F> {
    let n = k.count(points);
    if n == 0 {
        return Jacobian::IDENTITY;
    }
    let c = window_bits(n);
    let (mut digits, windows) = signed_digits(scalars, c);
    // Points at infinity get zero digits, so tasks never read a point to skip it.
    let identities: Vec<usize> = (0..n)
        .into_par_iter()
        .filter(|&i| k.input_is_identity(points, i))
        .collect();
    for row in digits.chunks_mut(n) {
        for &i in &identities {
            row[i] = 0;
        }
    }
    // Tasks are taken from one list, largest first, by each of the pool's
    // threads until none is left.
    let tasks = plan_tasks(n, windows, threads);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let partials: Vec<(usize, Jacobian<K::F>)> = (0..threads.max(1))
        .into_par_iter()
        .flat_map_iter(|_| {
            let mut done = Vec::new();
            loop {
                let t = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(w, lo, hi)) = tasks.get(t) else {
                    break done;
                };
                let sum = window_task(k, points, lo, &digits[w * n + lo..w * n + hi], c);
                done.push((w, sum));
            }
        })
        .collect();
    let mut per_window = vec![Jacobian::IDENTITY; windows];
    for (w, p) in partials {
        per_window[w] = per_window[w].add(&p);
    }
    let mut acc = Jacobian::IDENTITY;
    for w in per_window.iter().rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        acc = acc.add(w);
    }
    acc
}

/// Decodes points of curve `C` in parallel; the error names the first bad point.
pub fn decode_points<C: Curve>(bytes: &[u8]) -> Result<Vec<Affine<C::F>>, String> {
    let bad = std::sync::atomic::AtomicBool::new(false);
    let mut out = big_vec(bytes.len() / C::BYTES);
    out.par_extend(bytes.par_chunks(C::BYTES).map(|b| {
        C::decode(b).unwrap_or_else(|_| {
            bad.store(true, std::sync::atomic::Ordering::Relaxed);
            Affine::IDENTITY
        })
    }));
    if bad.into_inner() {
        // The first bad point in order, whichever thread met one first.
        if let Some((i, e)) = bytes
            .chunks(C::BYTES)
            .enumerate()
            .find_map(|(i, b)| C::decode(b).err().map(|e| (i, e)))
        {
            return Err(format!("point {i}: {e}"));
        }
    }
    Ok(out)
}

/// The MSM of the ABI: bytes in, encoded affine point out, on the path
/// [`crate::dispatch::path`] chose.
pub fn msm_bytes<C: Curve>(
    points: &[u8],
    scalars: &[u8],
    threads: usize,
    out: &mut [u8],
) -> Result<(), String> {
    msm_bytes_on::<C>(crate::dispatch::path(), points, scalars, threads, out)
}

/// The MSM of the ABI on a given path (G1 and G2 each have an IFMA kernel).
pub fn msm_bytes_on<C: Curve>(
    path: crate::dispatch::CodePath,
    points: &[u8],
    scalars: &[u8],
    threads: usize,
    out: &mut [u8],
) -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    if path == crate::dispatch::CodePath::Avx512Ifma {
        if C::BYTES == crate::curve::G1::BYTES {
            return PreparedG1::new(path, points)?.msm(scalars, threads, out);
        }
        debug_assert_eq!(C::BYTES, crate::curve::G2::BYTES);
        let k = ifma::G2Ifma::new().ok_or("this CPU has no AVX-512 IFMA")?;
        let pts = k.decode(points)?;
        let r = msm_with(&k, &pts, &decode_scalars(scalars), threads);
        crate::curve::G2::encode(&r.to_affine(), out);
        return Ok(());
    }
    let _ = path;
    let sc = decode_scalars(scalars);
    let pts = decode_points::<C>(points)?;
    let r = msm_with(&Portable::<C::F>::default(), &pts, &sc, threads);
    C::encode(&r.to_affine(), out);
    Ok(())
}

/// G1 bases decoded once, on the path chosen then, for repeated MSMs (the
/// ABI's prepared bases): the MSM skips decoding and checking them.
pub enum PreparedG1 {
    /// For the portable kernel.
    Portable(Vec<Affine<crate::field::Fq>>),
    /// For the IFMA kernel.
    #[cfg(target_arch = "x86_64")]
    Ifma(Vec<ifma::G1Line>),
}

impl aztec_backend_abi::export::Prepared for PreparedG1 {
    fn count(&self) -> usize {
        self.len()
    }
}

impl PreparedG1 {
    /// Decodes and checks ABI-encoded G1 points for `path`.
    pub fn new(path: crate::dispatch::CodePath, points: &[u8]) -> Result<PreparedG1, String> {
        #[cfg(target_arch = "x86_64")]
        if path == crate::dispatch::CodePath::Avx512Ifma {
            let k = ifma::G1Ifma::new().ok_or("this CPU has no AVX-512 IFMA")?;
            return k.decode(points).map(PreparedG1::Ifma);
        }
        let _ = path;
        decode_points::<crate::curve::G1>(points).map(PreparedG1::Portable)
    }

    /// How many bases.
    pub fn len(&self) -> usize {
        match self {
            PreparedG1::Portable(p) => p.len(),
            #[cfg(target_arch = "x86_64")]
            PreparedG1::Ifma(p) => p.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `sum scalars[i] * bases[i]`, encoded into `out` (64 bytes); one
    /// scalar per base.
    pub fn msm(&self, scalars: &[u8], threads: usize, out: &mut [u8]) -> Result<(), String> {
        let sc = decode_scalars(scalars);
        if sc.len() != self.len() {
            return Err(format!("{} bases but {} scalars", self.len(), sc.len()));
        }
        let r = match self {
            PreparedG1::Portable(p) => msm_with(&Portable::default(), p, &sc, threads),
            #[cfg(target_arch = "x86_64")]
            PreparedG1::Ifma(p) => {
                let k = ifma::G1Ifma::new().ok_or("this CPU has no AVX-512 IFMA")?;
                msm_with(&k, p, &sc, threads)
            }
        };
        crate::curve::G1::encode(&r.to_affine(), out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_ff::PrimeField;
    use ark_std::UniformRand;
    use ark_std::rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::field::Fq;

    #[test]
    fn tasks_cover_every_window_once_and_share_out_evenly() {
        for (n, windows, threads) in [
            (1, 1, 1),
            (100, 20, 2),
            (5_000, 17, 16),
            (262_144, 17, 2),
            (262_144, 17, 16),
            (349_617, 17, 3),
            (1 << 20, 16, 16),
            (1 << 20, 16, 64),
            (1 << 20, 16, 5),
        ] {
            let tasks = plan_tasks(n, windows, threads);
            // Each window's points exactly once, in chunks no smaller than
            // MIN_CHUNK unless the window is smaller.
            for w in 0..windows {
                let mut ranges: Vec<_> = tasks
                    .iter()
                    .filter(|t| t.0 == w && t.1 < t.2)
                    .map(|t| (t.1, t.2))
                    .collect();
                ranges.sort_unstable();
                let mut at = 0;
                for (lo, hi) in ranges {
                    assert_eq!(lo, at, "{n} points, {windows} windows, {threads} threads");
                    assert!(hi - lo >= MIN_CHUNK.min(n) || hi == n);
                    at = hi;
                }
                assert_eq!(at, n);
            }
            // Largest first.
            assert!(tasks.windows(2).all(|p| p[0].2 - p[0].1 >= p[1].2 - p[1].1));
            // The greedy schedule (each thread takes the next task) ends
            // within one split window's worth of the even share.
            let mut free = vec![0usize; threads];
            for &(_, lo, hi) in &tasks {
                let t = (0..threads).min_by_key(|&t| free[t]).unwrap_or(0);
                free[t] += hi - lo;
            }
            let end = free.iter().copied().max().unwrap_or(0);
            let even = (windows * n).div_ceil(threads);
            let split = tasks.last().map_or(0, |t| t.2 - t.1);
            assert!(
                end <= even + split,
                "{n}/{windows}/{threads}: {end} > {even} + {split}"
            );
        }
        // 17 windows on 2 threads: 16 whole and the last in halves.
        let t = plan_tasks(262_144, 17, 2);
        assert_eq!(t.len(), 18);
        assert_eq!(t[16], (16, 0, 131_072));
        // 16 windows on 16 threads: one whole window each.
        assert_eq!(plan_tasks(1 << 20, 16, 16).len(), 16);
    }

    #[test]
    fn decoding_names_the_first_bad_point_whichever_thread_meets_one() {
        // 50,000 identities (all zero), two of them spoiled (x not below p).
        let mut bytes = vec![0u8; 50_000 * 64];
        for bad in [31_000usize, 3] {
            bytes[bad * 64..bad * 64 + 32].fill(0xff);
        }
        let e = decode_points::<crate::curve::G1>(&bytes).expect_err("bad points");
        assert!(e.starts_with("point 3: "), "{e}");
        bytes[3 * 64..4 * 64].fill(0);
        let e = decode_points::<crate::curve::G1>(&bytes).expect_err("bad point");
        assert!(e.starts_with("point 31000: "), "{e}");
        bytes[31_000 * 64..31_001 * 64].fill(0);
        let points = decode_points::<crate::curve::G1>(&bytes).expect("all identities");
        assert_eq!(points.len(), 50_000);
        assert!(points.iter().all(|p| p.infinity));
    }

    fn ours(p: &ark_bn254::G1Affine) -> Affine<Fq> {
        match p.xy() {
            None => Affine::IDENTITY,
            Some((x, y)) => Affine {
                x: Fq::from_canonical(x.into_bigint().0),
                y: Fq::from_canonical(y.into_bigint().0),
                infinity: false,
            },
        }
    }

    #[test]
    fn batch_inversion_inverts_every_nonzero_entry_and_leaves_zeros() {
        let mut rng = StdRng::seed_from_u64(28);
        let mut prefix = Vec::new();
        for len in [0usize, 1, 2, 3, 7, 64, 129] {
            for zeros in [0usize, 1, 2, 3] {
                // Zeros at every `zeros + 2`-th place (none when `zeros` is 0),
                // or every entry zero.
                let v: Vec<Fq> = (0..len)
                    .map(|i| {
                        if zeros == 3 || (zeros > 0 && i % (zeros + 1) == 0) {
                            Fq::ZERO
                        } else {
                            Fq::from_canonical(ark_bn254::Fq::rand(&mut rng).into_bigint().0)
                        }
                    })
                    .collect();
                let mut got = v.clone();
                batch_invert(&mut got, &mut prefix);
                for (x, inv) in v.iter().zip(&got) {
                    if x.is_zero() {
                        assert!(inv.is_zero());
                    } else {
                        // Lazy: nonzero, and the reducing product is canonical.
                        assert!(!inv.is_zero());
                        assert_eq!(x.mul(inv), Fq::ONE, "len {len}, zeros {zeros}");
                    }
                }
            }
        }
    }

    #[test]
    fn segmented_sums_equal_plain_running_sums_with_copies_identities_and_repeats() {
        let mut rng = StdRng::seed_from_u64(27);
        let g = ark_bn254::G1Projective::rand(&mut rng);
        for nb in [SEGMENTED_FROM, 3001, 5 * SEGMENTS + 7 + SEGMENTED_FROM] {
            // Bucket b has 1 entry, or 3 copies for every 17th; some are the
            // identity, some repeat or negate a neighbour (doublings and
            // cancellations inside the batched steps).
            let mut values = Vec::new();
            let mut first = Vec::new();
            for b in 0..nb {
                first.push(values.len() as u32);
                let copies = if b % 17 == 0 { 3 } else { 1 };
                for _ in 0..copies {
                    let p = match b % 11 {
                        0 => Affine::IDENTITY,
                        1 if !values.is_empty() => values[values.len() - 1],
                        2 if !values.is_empty() => {
                            let q: Affine<Fq> = values[values.len() - 1];
                            q.neg()
                        }
                        _ => ours(&(g * ark_bn254::Fr::rand(&mut rng)).into_affine()),
                    };
                    values.push(p);
                }
            }
            first.push(values.len() as u32);
            let want = running_sums(&values, &first).to_affine();
            let got = segmented_sums(&values, &first).to_affine();
            assert!(got == want, "{nb} buckets");
            // Without copies too (the buckets used as they are).
            let single: Vec<u32> = (0..=nb as u32).collect();
            let values = &values[..nb];
            assert!(
                segmented_sums(values, &single).to_affine()
                    == running_sums(values, &single).to_affine(),
                "{nb} buckets, no copies"
            );
        }
    }
}

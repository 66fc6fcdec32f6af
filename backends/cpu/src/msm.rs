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
        // A bucket addition costs ~6 multiplications; reducing a bucket ~27 (mixed + Jacobian add).
        let cost = windows * (6.0 * n as f64 + 27.0 * f64::from(1u32 << (c - 1)));
        if cost < best.0 {
            best = (cost, c);
        }
    }
    best.1
}

/// Scalars as canonical integers below r.
pub fn decode_scalars(bytes: &[u8]) -> Vec<[u64; 4]> {
    bytes
        .par_chunks(32)
        .map(|c| {
            let mut w = [0u8; 32];
            w.copy_from_slice(c);
            Fr::reduce(crate::field::limbs_from_bytes(&w))
        })
        .collect()
}

/// Signed digits, window-major: `digits[w * n + i]` in `[-2^(c-1), 2^(c-1))`.
pub fn signed_digits(scalars: &[[u64; 4]], c: u32) -> (Vec<i16>, usize) {
    let n = scalars.len();
    let windows = (SCALAR_BITS / c + 1) as usize;
    let mut digits = vec![0i16; windows * n];
    let mask = (1u64 << c) - 1;
    let half = 1i64 << (c - 1);
    // Fill column by column in parallel over scalars.
    let cols: Vec<Vec<i16>> = scalars
        .par_iter()
        .map(|s| {
            let mut out = Vec::with_capacity(windows);
            let mut carry = 0i64;
            for w in 0..windows {
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
                out.push(d as i16);
            }
            out
        })
        .collect();
    for (i, col) in cols.iter().enumerate() {
        for (w, d) in col.iter().enumerate() {
            digits[w * n + i] = *d;
        }
    }
    (digits, windows)
}

const BATCH: usize = 512;

/// Bucket accumulation for one task, batch-affine.
struct Buckets<'a, F: Field> {
    buckets: Vec<Affine<F>>,
    busy: Vec<u64>,
    batch_bucket: Vec<u32>,
    batch_point: Vec<Affine<F>>,
    deferred: Vec<(u32, Affine<F>)>,
    scratch: Vec<F>,
    prefix: Vec<F>,
    _p: std::marker::PhantomData<&'a ()>,
}

impl<F: Field> Buckets<'_, F> {
    fn new(count: usize) -> Self {
        Buckets {
            buckets: vec![Affine::IDENTITY; count],
            busy: vec![0; count.div_ceil(64)],
            batch_bucket: Vec::with_capacity(BATCH + 64),
            batch_point: Vec::with_capacity(BATCH + 64),
            deferred: Vec::new(),
            scratch: Vec::with_capacity(BATCH + 64),
            prefix: Vec::with_capacity(BATCH + 64),
            _p: std::marker::PhantomData,
        }
    }

    #[inline(always)]
    fn is_busy(&self, b: u32) -> bool {
        self.busy[(b / 64) as usize] >> (b % 64) & 1 == 1
    }

    #[inline(always)]
    fn place(&mut self, b: u32, p: Affine<F>) {
        let busy = self.is_busy(b);
        let bucket = &mut self.buckets[b as usize];
        if bucket.infinity && !busy {
            *bucket = p;
        } else if busy {
            self.deferred.push((b, p));
        } else {
            self.busy[(b / 64) as usize] |= 1 << (b % 64);
            self.batch_bucket.push(b);
            self.batch_point.push(p);
        }
    }

    #[inline(always)]
    fn push(&mut self, b: u32, p: Affine<F>) {
        self.place(b, p);
        while self.batch_bucket.len() >= BATCH {
            self.flush();
            self.retry_deferred();
        }
    }

    fn retry_deferred(&mut self) {
        let d = std::mem::take(&mut self.deferred);
        for (b, p) in d {
            self.place(b, p);
        }
    }

    fn drain(&mut self) {
        while !self.batch_bucket.is_empty() || !self.deferred.is_empty() {
            self.flush();
            self.retry_deferred();
        }
    }

    /// Adds every batched point into its bucket with one shared inversion.
    fn flush(&mut self) {
        let k = self.batch_bucket.len();
        self.scratch.clear();
        // Denominators: x_p - x_b, or 2y for a doubling, or zero for P + (-P).
        for j in 0..k {
            let b = &self.buckets[self.batch_bucket[j] as usize];
            let p = &self.batch_point[j];
            let d = if b.x == p.x {
                if b.y == p.y { b.y.double() } else { F::ZERO }
            } else {
                p.x.sub(&b.x)
            };
            self.scratch.push(d);
        }
        // Batch inversion (zeros skipped).
        self.prefix.clear();
        let mut acc = F::ONE;
        for d in &self.scratch {
            self.prefix.push(acc);
            if !d.is_zero() {
                acc = acc.mul(d);
            }
        }
        let mut inv = acc.inverse().unwrap_or(F::ONE);
        for j in (0..k).rev() {
            let d = self.scratch[j];
            if d.is_zero() {
                continue;
            }
            let dj = inv.mul(&self.prefix[j]);
            inv = inv.mul(&d);
            self.scratch[j] = dj;
        }
        for j in 0..k {
            let bi = self.batch_bucket[j];
            let p = self.batch_point[j];
            let b = self.buckets[bi as usize];
            let inv = self.scratch[j];
            let bucket = &mut self.buckets[bi as usize];
            if inv.is_zero() {
                // P + (-P), or a doubling of a point with y = 0 (none on BN254).
                *bucket = Affine::IDENTITY;
            } else {
                let lambda = if b.x == p.x {
                    let xx = b.x.square();
                    xx.double().add(&xx).mul(&inv)
                } else {
                    p.y.sub(&b.y).mul(&inv)
                };
                let x3 = lambda.square().sub(&b.x).sub(&p.x);
                let y3 = lambda.mul(&b.x.sub(&x3)).sub(&b.y);
                *bucket = Affine { x: x3, y: y3, infinity: false };
            }
            self.busy[(bi / 64) as usize] &= !(1 << (bi % 64));
        }
        self.batch_bucket.clear();
        self.batch_point.clear();
    }

    /// `sum (b + 1) * bucket[b]` by running sums from the top.
    fn reduce(&self) -> Jacobian<F> {
        let mut running = Jacobian::IDENTITY;
        let mut acc = Jacobian::IDENTITY;
        for b in self.buckets.iter().rev() {
            running = running.add_mixed(b);
            acc = acc.add(&running);
        }
        acc
    }
}

/// One task: the points in `range` for window `w`.
fn window_task<F: Field>(points: &[Affine<F>], digits: &[i16], c: u32) -> Jacobian<F> {
    let mut b = Buckets::<F>::new(1usize << (c - 1));
    for (p, &d) in points.iter().zip(digits) {
        if d == 0 || p.infinity {
            continue;
        }
        if d > 0 {
            b.push((d - 1) as u32, *p);
        } else {
            b.push((-(d as i32) - 1) as u32, p.neg());
        }
    }
    b.drain();
    b.reduce()
}

/// `sum scalars[i] * points[i]` with points already decoded.
pub fn msm<F: Field>(points: &[Affine<F>], scalars: &[[u64; 4]], threads: usize) -> Jacobian<F> {
    let n = points.len();
    if n == 0 {
        return Jacobian::IDENTITY;
    }
    let c = window_bits(n);
    let (digits, windows) = signed_digits(scalars, c);
    // Enough tasks to keep every thread busy, but few enough that bucket reductions stay small.
    let chunks = (2 * threads).div_ceil(windows).max(1).min(n.div_ceil(1 << 12).max(1));
    let chunk_len = n.div_ceil(chunks);
    let partials: Vec<(usize, Jacobian<F>)> = (0..windows * chunks)
        .into_par_iter()
        .map(|t| {
            let w = t / chunks;
            let k = t % chunks;
            let lo = (k * chunk_len).min(n);
            let hi = ((k + 1) * chunk_len).min(n);
            (w, window_task(&points[lo..hi], &digits[w * n + lo..w * n + hi], c))
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
    bytes
        .par_chunks(C::BYTES)
        .enumerate()
        .map(|(i, b)| C::decode(b).map_err(|e| format!("point {i}: {e}")))
        .collect()
}

/// The MSM of the ABI: bytes in, encoded affine point out.
pub fn msm_bytes<C: Curve>(points: &[u8], scalars: &[u8], threads: usize, out: &mut [u8]) -> Result<(), String> {
    let pts = decode_points::<C>(points)?;
    let sc = decode_scalars(scalars);
    let r = msm::<C::F>(&pts, &sc, threads);
    C::encode(&r.to_affine(), out);
    Ok(())
}

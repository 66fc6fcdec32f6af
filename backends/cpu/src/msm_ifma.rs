//! The G1 MSM kernel on AVX-512 IFMA: bucket additions eight at a time (one
//! lane per addition), with each batch's inversions shared per lane and the
//! eight lane inverses found by one scalar inversion.
//!
//! A point is one 64-byte cache line ([`Line`]): x and y in 52-bit Montgomery
//! form, packed into four 64-bit words each; the identity has x's top word
//! all ones (no coordinate below p has that). Additions that need care (an
//! identity, a doubling, `P + (-P)`) are finished by the portable formulas,
//! so results are exactly those of the portable path.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::curve::Affine;
use crate::field::ifma::{FQ, Field8, V8, from52, gather, load8, to52};
use crate::field::{FieldParams, Fq, FqParams};
use crate::msm::{Kernel, NEG, add_with_inverse, pair_denominator};

/// A point in one cache line: words 0-3 x, 4-7 y (52-bit Montgomery, packed).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line(pub [u64; 8]);

const IDENTITY_WORD: u64 = u64::MAX;

impl Line {
    /// The identity.
    pub const IDENTITY: Line = Line([0, 0, 0, IDENTITY_WORD, 0, 0, 0, 0]);

    #[inline(always)]
    fn is_identity(&self) -> bool {
        self.0[3] == IDENTITY_WORD
    }

    fn x52(&self) -> [u64; 5] {
        to52(&[self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    fn y52(&self) -> [u64; 5] {
        to52(&[self.0[4], self.0[5], self.0[6], self.0[7]])
    }

    fn from52(x: &[u64; 5], y: &[u64; 5]) -> Line {
        let (a, b) = (from52(x), from52(y));
        Line([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]])
    }
}

/// The words of a slice of lines (for gathers and scatters).
fn words(lines: &[Line]) -> &[u64] {
    // SAFETY: `Line` is `repr(C)` around `[u64; 8]`, so `n` lines are `8n`
    // initialised, aligned u64 values.
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<u64>(), lines.len() * 8) }
}

thread_local! {
    /// Bucket storage kept between tasks of one worker, so each window does
    /// not fault in a fresh megabyte.
    static SPARE: std::cell::RefCell<Vec<Line>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `R'^2 mod p` as 64-bit limbs: turns an integer inverse of a 52-bit
/// Montgomery value back into Montgomery form.
const R52_SQUARED: [u64; 4] = crate::field::pow2_mod(520, &FqParams::MODULUS);

/// The IFMA G1 kernel. Exists only on CPUs with AVX-512 IFMA.
#[derive(Clone, Copy)]
pub struct G1Ifma(());

#[target_feature(enable = "avx512f,avx512ifma")]
fn from_mont_lanes(xs: &[[u64; 5]; 8]) -> [[u64; 5]; 8] {
    let f = Field8::new(&FQ);
    f.from_mont(&V8::from_lanes(xs)).to_lanes()
}

#[target_feature(enable = "avx512f,avx512ifma")]
fn to_mont_lanes(xs: &[[u64; 5]; 8]) -> [[u64; 5]; 8] {
    let f = Field8::new(&FQ);
    f.to_mont(&V8::from_lanes(xs)).to_lanes()
}

/// `p - y` for a canonical `y` (zero stays zero), on 52-bit limbs.
fn neg52(y: &[u64; 5]) -> [u64; 5] {
    if y.iter().all(|l| *l == 0) {
        return *y;
    }
    let p = &FQ.p;
    let mut out = [0u64; 5];
    let mut borrow = 0i64;
    for j in 0..5 {
        let d = p[j] as i64 - y[j] as i64 + borrow;
        out[j] = (d & ((1 << 52) - 1)) as u64;
        borrow = d >> 52;
    }
    out
}

impl G1Ifma {
    /// The kernel, if this CPU can run it.
    pub fn new() -> Option<G1Ifma> {
        crate::dispatch::cpu_has_ifma().then_some(G1Ifma(()))
    }

    fn get(points: &[Line], r: u32) -> Line {
        let p = points[(r & !NEG) as usize];
        if r & NEG != 0 && !p.is_identity() {
            Line::from52(&p.x52(), &neg52(&p.y52()))
        } else {
            p
        }
    }

    /// Lines to portable affine points, eight at a time.
    fn to_affine(&self, lines: &[Line]) -> Vec<Affine<Fq>> {
        let mut out = Vec::with_capacity(lines.len());
        for group in lines.chunks(8) {
            let mut xs = [[0u64; 5]; 8];
            let mut ys = [[0u64; 5]; 8];
            for (l, p) in group.iter().enumerate() {
                xs[l] = p.x52();
                ys[l] = p.y52();
            }
            // SAFETY: `self` exists only if the CPU has IFMA.
            let (cx, cy) = unsafe { (from_mont_lanes(&xs), from_mont_lanes(&ys)) };
            for (l, p) in group.iter().enumerate() {
                out.push(if p.is_identity() {
                    Affine::IDENTITY
                } else {
                    Affine {
                        x: Fq::from_canonical(from52(&cx[l])),
                        y: Fq::from_canonical(from52(&cy[l])),
                        infinity: false,
                    }
                });
            }
        }
        out
    }

    fn to_line(&self, p: &Affine<Fq>) -> Line {
        if p.infinity {
            return Line::IDENTITY;
        }
        let mut xs = [[0u64; 5]; 8];
        xs[0] = to52(&p.x.to_canonical());
        xs[1] = to52(&p.y.to_canonical());
        // SAFETY: `self` exists only if the CPU has IFMA.
        let m = unsafe { to_mont_lanes(&xs) };
        Line::from52(&m[0], &m[1])
    }

    /// Decodes ABI-encoded G1 points, checking coordinates.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<Line>, String> {
        let mut out = vec![Line::IDENTITY; bytes.len() / 64];
        out.par_chunks_mut(8)
            .zip(bytes.par_chunks(8 * 64))
            .enumerate()
            .try_for_each(|(k, (o, b))| {
                let mut xs = [[0u64; 5]; 8];
                let mut ys = [[0u64; 5]; 8];
                for (i, pb) in b.chunks(64).enumerate() {
                    if pb.iter().all(|x| *x == 0) {
                        continue;
                    }
                    let read = |at: usize| {
                        let mut w = [0u8; 32];
                        w.copy_from_slice(&pb[at..at + 32]);
                        crate::field::limbs_from_bytes(&w)
                    };
                    let (x, y) = (read(0), read(32));
                    if !Fq::is_canonical(&x) || !Fq::is_canonical(&y) {
                        return Err(format!(
                            "point {}: a coordinate is not below the field modulus",
                            k * 8 + i
                        ));
                    }
                    xs[i] = to52(&x);
                    ys[i] = to52(&y);
                    o[i] = Line([1, 0, 0, 0, 0, 0, 0, 0]); // marks "not the identity" until filled below
                }
                // SAFETY: `self` exists only if the CPU has IFMA.
                let (mx, my) = unsafe { (to_mont_lanes(&xs), to_mont_lanes(&ys)) };
                for (i, line) in o.iter_mut().enumerate() {
                    if !line.is_identity() {
                        *line = Line::from52(&mx[i], &my[i]);
                    }
                }
                Ok(())
            })?;
        Ok(out)
    }
}

impl Kernel for G1Ifma {
    type F = Fq;
    type Points = Vec<Line>;
    type Buckets = Vec<Line>;

    fn count(&self, points: &Vec<Line>) -> usize {
        points.len()
    }
    fn input_is_identity(&self, points: &Vec<Line>, i: usize) -> bool {
        points[i].is_identity()
    }
    fn new_buckets(&self, nb: usize) -> Vec<Line> {
        let mut v = SPARE.with(|s| s.take());
        v.clear();
        v.resize(nb, Line::IDENTITY);
        v
    }
    fn recycle(&self, buckets: Vec<Line>) {
        SPARE.with(|s| s.replace(buckets));
    }
    fn bucket_is_empty(&self, buckets: &Vec<Line>, b: usize) -> bool {
        buckets[b].is_identity()
    }
    fn set_bucket(&self, buckets: &mut Vec<Line>, b: usize, points: &Vec<Line>, r: u32) {
        buckets[b] = Self::get(points, r);
    }
    fn add_batch(&self, buckets: &mut Vec<Line>, points: &Vec<Line>, batch: &[(u32, u32)]) {
        // SAFETY: `self` exists only if the CPU has IFMA; bucket and point
        // indices come from the accumulator and are within their arrays.
        let specials = unsafe { add_batch(buckets, points, batch) };
        for j in specials {
            let (b, r) = batch[j];
            let p = self.to_affine(&[buckets[b as usize]])[0];
            let q = self.to_affine(&[Self::get(points, r)])[0];
            let inv = pair_denominator(&p, &q).inverse().unwrap_or(Fq::ZERO);
            buckets[b as usize] = self.to_line(&add_with_inverse(&p, &q, &inv));
        }
    }
    fn bucket_values(&self, buckets: &Vec<Line>) -> Vec<Affine<Fq>> {
        self.to_affine(buckets)
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn unpack(w: [__m512i; 4]) -> V8 {
    let m = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
    V8([
        _mm512_and_si512(w[0], m),
        _mm512_and_si512(
            _mm512_or_si512(_mm512_srli_epi64::<52>(w[0]), _mm512_slli_epi64::<12>(w[1])),
            m,
        ),
        _mm512_and_si512(
            _mm512_or_si512(_mm512_srli_epi64::<40>(w[1]), _mm512_slli_epi64::<24>(w[2])),
            m,
        ),
        _mm512_and_si512(
            _mm512_or_si512(_mm512_srli_epi64::<28>(w[2]), _mm512_slli_epi64::<36>(w[3])),
            m,
        ),
        _mm512_srli_epi64::<16>(w[3]),
    ])
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn pack(v: &V8) -> [__m512i; 4] {
    let l = &v.0;
    [
        _mm512_or_si512(l[0], _mm512_slli_epi64::<52>(l[1])),
        _mm512_or_si512(_mm512_srli_epi64::<12>(l[1]), _mm512_slli_epi64::<40>(l[2])),
        _mm512_or_si512(_mm512_srli_epi64::<24>(l[2]), _mm512_slli_epi64::<28>(l[3])),
        _mm512_or_si512(_mm512_srli_epi64::<36>(l[3]), _mm512_slli_epi64::<16>(l[4])),
    ]
}

/// One group of eight additions, as loaded.
struct Loaded {
    x1: V8,
    y1: V8,
    x2: V8,
    y2: V8,
    d: V8,
    special: u8,
    bucket_idx: __m512i,
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn load_group(f: &Field8, bw: &[u64], pw: &[u64], batch: &[(u32, u32)], v: usize) -> Loaded {
    let k = batch.len();
    let mut bi = [0u64; 8];
    let mut pi = [0u64; 8];
    let (mut pad, mut neg): (u8, u8) = (0, 0);
    for l in 0..8 {
        let j = 8 * v + l;
        let (b, r) = if j < k {
            batch[j]
        } else {
            pad |= 1 << l;
            batch[k - 1]
        };
        neg |= (((r & NEG) != 0) as u8) << l;
        bi[l] = u64::from(b) * 8;
        pi[l] = u64::from(r & !NEG) * 8;
    }
    let (bidx, pidx) = (load8(&bi), load8(&pi));
    let word = |base: &[u64], idx: __m512i, off: i64| {
        gather(
            base,
            _mm512_add_epi64(idx, _mm512_set1_epi64(off)),
            base.len() - 1,
        )
    };
    let bx = [
        word(bw, bidx, 0),
        word(bw, bidx, 1),
        word(bw, bidx, 2),
        word(bw, bidx, 3),
    ];
    let by = [
        word(bw, bidx, 4),
        word(bw, bidx, 5),
        word(bw, bidx, 6),
        word(bw, bidx, 7),
    ];
    let px = [
        word(pw, pidx, 0),
        word(pw, pidx, 1),
        word(pw, pidx, 2),
        word(pw, pidx, 3),
    ];
    let py = [
        word(pw, pidx, 4),
        word(pw, pidx, 5),
        word(pw, pidx, 6),
        word(pw, pidx, 7),
    ];
    let ones = _mm512_set1_epi64(-1);
    let ident = _mm512_cmpeq_epi64_mask(bx[3], ones) | _mm512_cmpeq_epi64_mask(px[3], ones);
    let (x1, y1, x2) = (unpack(bx), unpack(by), unpack(px));
    let y2 = unpack(py);
    let y2 = if neg != 0 {
        f.select(neg, &y2, &f.sub(&V8::zero(), &y2))
    } else {
        y2
    };
    let d = f.sub(&x2, &x1);
    let special = f.zero_mask(&d) | ident | pad;
    let d = f.select(special, &d, &f.one);
    Loaded {
        x1,
        y1,
        x2,
        y2,
        d,
        special,
        bucket_idx: bidx,
    }
}

/// `bucket[b] += ±point[r]` for the batch; returns the positions it left to
/// the portable formulas (those buckets are not written).
#[target_feature(enable = "avx512f,avx512ifma")]
fn add_batch(buckets: &mut [Line], points: &[Line], batch: &[(u32, u32)]) -> Vec<usize> {
    let f = Field8::new(&FQ);
    let nv = batch.len().div_ceil(8);
    let pw = words(points);
    let mut prefix = Vec::with_capacity(nv);
    let mut groups = Vec::with_capacity(nv);
    let mut acc = f.one;
    {
        let bw = words(buckets);
        for v in 0..nv {
            let g = load_group(&f, bw, pw, batch, v);
            prefix.push(acc);
            acc = f.mul(&acc, &g.d);
            groups.push(g);
        }
    }
    let mut inv = invert_lanes(&acc);
    let mut specials = Vec::new();
    for v in (0..nv).rev() {
        let g = &groups[v];
        let dinv = f.mul(&inv, &prefix[v]);
        inv = f.mul(&inv, &g.d);
        let lambda = f.mul(&f.sub(&g.y2, &g.y1), &dinv);
        let x3 = f.sub(&f.sub(&f.square(&lambda), &g.x1), &g.x2);
        let y3 = f.sub(&f.mul(&lambda, &f.sub(&g.x1, &x3)), &g.y1);
        let (wx, wy) = (pack(&x3), pack(&y3));
        let keep = !g.special;
        let base = buckets.as_mut_ptr().cast::<u64>();
        for (o, w) in wx.iter().chain(wy.iter()).enumerate() {
            let idx = _mm512_add_epi64(g.bucket_idx, _mm512_set1_epi64(o as i64));
            // SAFETY: every index is `8 * bucket + o` for a bucket of this batch
            // (o < 8), so within `buckets`; lanes not kept are masked off.
            unsafe { _mm512_mask_i64scatter_epi64::<8>(base.cast(), keep, idx, *w) };
        }
        let real = g.special
            & if v == nv - 1 && batch.len() % 8 != 0 {
                (1u8 << (batch.len() % 8)) - 1
            } else {
                0xff
            };
        for l in 0..8 {
            if real >> l & 1 == 1 {
                specials.push(8 * v + l);
            }
        }
    }
    specials
}

/// The inverses of eight nonzero lanes with one scalar inversion.
#[target_feature(enable = "avx512f,avx512ifma")]
fn invert_lanes(a: &V8) -> V8 {
    let lanes = a.to_lanes();
    // Each lane holds X = x R' (R' = 2^260); its inverse in that form is X^-1 R'^2.
    let mut xs: Vec<Fq> = lanes
        .iter()
        .map(|l| Fq::from_canonical(from52(l)))
        .collect();
    Fq::batch_inverse(&mut xs);
    let r2 = Fq::from_canonical(R52_SQUARED);
    let out: [[u64; 5]; 8] = std::array::from_fn(|l| to52(&xs[l].mul(&r2).to_canonical()));
    V8::from_lanes(&out)
}

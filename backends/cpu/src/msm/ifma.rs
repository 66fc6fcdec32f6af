//! The MSM kernels on AVX-512 IFMA, for G1 and G2: bucket additions eight
//! at a time (one lane per addition), with each batch's inversions shared per
//! lane and the eight lane inverses found by one scalar inversion.
//!
//! A point is whole cache lines ([`Line`]): x then y, each coordinate one
//! (G1, over Fq) or two (G2, over Fq2) Fq parts of four 64-bit words holding
//! 52-bit Montgomery limbs, packed. The identity has the top word of x's
//! first part all ones (no part below p has that). Additions that need care
//! (an identity, a doubling, `P + (-P)`) are finished by the portable
//! formulas, so results are exactly those of the portable path.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::{Kernel, NEG, add_with_inverse, pair_denominator, running_sums};
use crate::curve::{Affine, Jacobian};
use crate::field::fq2::Fq2;
use crate::field::ifma::{FQ, Field8, V8, V8x2, from52, gather, pack, to52, transpose_u64, unpack};
use crate::field::lanes::LaneField;
use crate::field::{Field, FieldParams, Fq, FqParams};

/// A point in `W / 8` cache lines: `W / 8` packed Fq parts of x, then as many of y.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<const W: usize>(pub [u64; W]);

/// A G1 point: one line.
pub type G1Line = Line<8>;
/// A G2 point: two lines.
pub type G2Line = Line<16>;

const IDENTITY_WORD: u64 = u64::MAX;

impl<const W: usize> Line<W> {
    /// The identity.
    pub const IDENTITY: Self = {
        let mut w = [0u64; W];
        w[3] = IDENTITY_WORD;
        Line(w)
    };

    #[inline(always)]
    fn is_identity(&self) -> bool {
        self.0[3] == IDENTITY_WORD
    }

    /// Fq part `k` (x's parts first, then y's) as 52-bit limbs.
    fn part52(&self, k: usize) -> [u64; 5] {
        to52(&[
            self.0[4 * k],
            self.0[4 * k + 1],
            self.0[4 * k + 2],
            self.0[4 * k + 3],
        ])
    }

    fn set_part52(&mut self, k: usize, v: &[u64; 5]) {
        self.0[4 * k..4 * k + 4].copy_from_slice(&from52(v));
    }
}

/// The words of a slice of lines (for gathers and scatters).
fn words<const W: usize>(lines: &[Line<W>]) -> &[u64] {
    // SAFETY: `Line` is `repr(C)` around `[u64; W]`, so `n` lines are `W n`
    // initialised, aligned u64 values.
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<u64>(), lines.len() * W) }
}

/// The words of a slice of lines, writable.
fn words_mut<const W: usize>(lines: &mut [Line<W>]) -> &mut [u64] {
    // SAFETY: as in `words`, and the borrow is exclusive.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<u64>(), lines.len() * W) }
}

/// A coordinate field of an IFMA kernel, seen as Fq parts.
pub trait Coord: Field {
    /// Fq parts per coordinate.
    const PARTS: usize = <Self::Lanes as LaneField>::PARTS;
    /// Part `k`.
    fn part(&self, k: usize) -> Fq;
    /// The element with these parts.
    fn from_parts(parts: &[Fq]) -> Self;
    /// Eight lanes of this field.
    type Lanes: LaneField<P = Self>;
    /// `3b`, for the curve `y^2 = x^3 + b` over this field (G1, or G2's twist).
    fn b3() -> Self;
}

impl Coord for Fq {
    fn part(&self, _k: usize) -> Fq {
        *self
    }
    fn from_parts(parts: &[Fq]) -> Fq {
        parts[0]
    }
    type Lanes = V8;
    fn b3() -> Fq {
        Fq::from_canonical([9, 0, 0, 0])
    }
}

impl Coord for Fq2 {
    fn part(&self, k: usize) -> Fq {
        if k == 0 { self.c0 } else { self.c1 }
    }
    fn from_parts(parts: &[Fq]) -> Fq2 {
        Fq2::new(parts[0], parts[1])
    }
    type Lanes = V8x2;
    /// The twist's `b` is `3 / (9 + u)`.
    fn b3() -> Fq2 {
        let nine = Fq::from_canonical([9, 0, 0, 0]);
        // A constant: 9 + u is not zero, so it has an inverse.
        #[allow(clippy::expect_used)]
        let inv = Fq2::new(nine, Fq::ONE)
            .inverse()
            .expect("9 + u is not zero");
        inv.mul(&Fq2::new(nine, Fq::ZERO))
    }
}

thread_local! {
    /// Bucket storage kept between tasks of one worker, so each window does
    /// not fault in a fresh megabyte (one per line size).
    static SPARE_G1: std::cell::RefCell<Vec<G1Line>> = const { std::cell::RefCell::new(Vec::new()) };
    static SPARE_G2: std::cell::RefCell<Vec<G2Line>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// This thread's spare bucket storage for lines of `W` words (empty if none).
fn take_spare<const W: usize>() -> Vec<Line<W>> {
    let spare: Box<dyn std::any::Any> = match W {
        8 => Box::new(SPARE_G1.take()),
        16 => Box::new(SPARE_G2.take()),
        _ => return Vec::new(),
    };
    spare
        .downcast::<Vec<Line<W>>>()
        .map(|v| *v)
        .unwrap_or_default()
}

/// Keeps bucket storage for this thread's next task.
fn put_spare<const W: usize>(v: Vec<Line<W>>) {
    let mut v: Box<dyn std::any::Any> = Box::new(v);
    if let Some(v) = v.downcast_mut::<Vec<G1Line>>() {
        SPARE_G1.replace(std::mem::take(v));
    } else if let Some(v) = v.downcast_mut::<Vec<G2Line>>() {
        SPARE_G2.replace(std::mem::take(v));
    }
}

/// `R'^2 mod p` as 64-bit limbs: turns an integer inverse of a 52-bit
/// Montgomery value back into Montgomery form.
const R52_SQUARED: [u64; 4] = crate::field::pow2_mod(520, &FqParams::MODULUS);

/// The IFMA kernel over coordinate field `F`, on lines of `W = 8 * F::PARTS`
/// words. Exists only on CPUs with AVX-512 IFMA.
#[derive(Clone, Copy)]
pub struct Ifma<F, const W: usize>(std::marker::PhantomData<F>);

/// The G1 kernel.
pub type G1Ifma = Ifma<Fq, 8>;
/// The G2 kernel.
pub type G2Ifma = Ifma<Fq2, 16>;

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

impl<F: Coord, const W: usize> Ifma<F, W> {
    /// The kernel, if this CPU can run it.
    pub fn new() -> Option<Self> {
        assert_eq!(W, 8 * F::PARTS, "a line holds four Fq parts per cache line");
        crate::dispatch::cpu_has_ifma().then_some(Ifma(std::marker::PhantomData))
    }

    /// Fq parts per point.
    const POINT_PARTS: usize = 2 * F::PARTS;

    fn get(points: &[Line<W>], r: u32) -> Line<W> {
        let mut p = points[(r & !NEG) as usize];
        if r & NEG != 0 && !p.is_identity() {
            // A part's four words are its (Montgomery) integer: `p - y` on
            // 64-bit words, zero staying zero.
            for k in F::PARTS..Self::POINT_PARTS {
                let y = &mut p.0[4 * k..4 * k + 4];
                if y.iter().any(|w| *w != 0) {
                    let mut borrow = false;
                    for (w, m) in y.iter_mut().zip(FqParams::MODULUS) {
                        let (d, b1) = m.overflowing_sub(*w);
                        let (d, b2) = d.overflowing_sub(u64::from(borrow));
                        *w = d;
                        borrow = b1 || b2;
                    }
                }
            }
        }
        p
    }

    /// Lines to portable affine points, eight at a time.
    fn affine_of(&self, lines: &[Line<W>]) -> Vec<Affine<F>> {
        let mut out = Vec::with_capacity(lines.len());
        for group in lines.chunks(8) {
            let mut parts = [[Fq::ZERO; 4]; 8];
            for k in 0..Self::POINT_PARTS {
                let mut xs = [[0u64; 5]; 8];
                for (l, p) in group.iter().enumerate() {
                    xs[l] = p.part52(k);
                }
                // SAFETY: `self` exists only if the CPU has IFMA.
                let c = unsafe { from_mont_lanes(&xs) };
                for (part, c) in parts.iter_mut().zip(&c).take(group.len()) {
                    part[k] = Fq::from_canonical(from52(c));
                }
            }
            for (l, p) in group.iter().enumerate() {
                out.push(if p.is_identity() {
                    Affine::IDENTITY
                } else {
                    Affine {
                        x: F::from_parts(&parts[l][..F::PARTS]),
                        y: F::from_parts(&parts[l][F::PARTS..Self::POINT_PARTS]),
                        infinity: false,
                    }
                });
            }
        }
        out
    }

    fn line_of(&self, p: &Affine<F>) -> Line<W> {
        if p.infinity {
            return Line::IDENTITY;
        }
        let mut xs = [[0u64; 5]; 8];
        for k in 0..F::PARTS {
            xs[k] = to52(&p.x.part(k).to_canonical());
            xs[F::PARTS + k] = to52(&p.y.part(k).to_canonical());
        }
        // SAFETY: `self` exists only if the CPU has IFMA.
        let m = unsafe { to_mont_lanes(&xs) };
        let mut line = Line([0; W]);
        for (k, v) in m.iter().take(Self::POINT_PARTS).enumerate() {
            line.set_part52(k, v);
        }
        line
    }

    /// Decodes ABI-encoded points (32 bytes per Fq part, all zero for the
    /// identity), checking coordinates.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<Line<W>>, String> {
        let size = 32 * Self::POINT_PARTS;
        let mut out = super::big_vec(bytes.len() / size);
        out.par_extend(rayon::iter::repeat_n(Line::IDENTITY, bytes.len() / size));
        out.par_chunks_mut(8)
            .zip(bytes.par_chunks(8 * size))
            .enumerate()
            .try_for_each(|(k, (o, b))| {
                let mut parts = [[[0u64; 5]; 8]; 4];
                let mut present = [false; 8];
                for (i, pb) in b.chunks(size).enumerate() {
                    if pb.iter().all(|x| *x == 0) {
                        continue;
                    }
                    present[i] = true;
                    for (j, part) in parts.iter_mut().take(Self::POINT_PARTS).enumerate() {
                        let mut w = [0u8; 32];
                        w.copy_from_slice(&pb[32 * j..32 * j + 32]);
                        let x = crate::field::limbs_from_bytes(&w);
                        if !Fq::is_canonical(&x) {
                            return Err(format!(
                                "point {}: a coordinate is not below the field modulus",
                                k * 8 + i
                            ));
                        }
                        part[i] = to52(&x);
                    }
                }
                for (j, part) in parts.iter().take(Self::POINT_PARTS).enumerate() {
                    // SAFETY: `self` exists only if the CPU has IFMA.
                    let m = unsafe { to_mont_lanes(part) };
                    for (i, line) in o.iter_mut().enumerate() {
                        if present[i] {
                            line.set_part52(j, &m[i]);
                        }
                    }
                }
                Ok(())
            })?;
        Ok(out)
    }
}

impl<F: Coord, const W: usize> Kernel for Ifma<F, W> {
    type F = F;
    type Points = Vec<Line<W>>;
    type Buckets = Vec<Line<W>>;

    fn count(&self, points: &Vec<Line<W>>) -> usize {
        points.len()
    }
    fn input_is_identity(&self, points: &Vec<Line<W>>, i: usize) -> bool {
        points[i].is_identity()
    }
    fn new_buckets(&self, nb: usize) -> Vec<Line<W>> {
        let mut v = take_spare::<W>();
        v.clear();
        v.resize(nb, Line::IDENTITY);
        v
    }
    fn recycle(&self, buckets: Vec<Line<W>>) {
        put_spare(buckets);
    }
    fn bucket_is_empty(&self, buckets: &Vec<Line<W>>, b: usize) -> bool {
        buckets[b].is_identity()
    }
    fn set_bucket(&self, buckets: &mut Vec<Line<W>>, b: usize, points: &Vec<Line<W>>, r: u32) {
        buckets[b] = Self::get(points, r);
    }
    fn add_batch(&self, buckets: &mut Vec<Line<W>>, points: &Vec<Line<W>>, batch: &[(u32, u32)]) {
        // SAFETY: `self` exists only if the CPU has IFMA; bucket and point
        // indices come from the accumulator and are within their arrays.
        let specials = unsafe { add_batch::<F::Lanes>(words_mut(buckets), words(points), batch) };
        for j in specials {
            let (b, r) = batch[j];
            let p = self.affine_of(&[buckets[b as usize]])[0];
            let q = self.affine_of(&[Self::get(points, r)])[0];
            let inv = pair_denominator(&p, &q).inverse().unwrap_or(F::ZERO);
            buckets[b as usize] = self.line_of(&add_with_inverse(&p, &q, &inv));
        }
    }
    fn prefetch_bucket(&self, buckets: &Vec<Line<W>>, b: usize) {
        super::prefetch(&buckets[b]);
    }
    fn bucket_values(&self, buckets: &Vec<Line<W>>) -> Vec<Affine<F>> {
        self.affine_of(buckets)
    }
    /// On eight lanes when there are enough buckets; a bucket split into
    /// copies (skewed digits) has them summed on the portable path first.
    fn reduce(&self, buckets: &Vec<Line<W>>, first: &[u32]) -> Jacobian<F> {
        let nb = first.len() - 1;
        if nb < REDUCE_ON_LANES_FROM {
            return running_sums(&self.bucket_values(buckets), first);
        }
        let merged: std::borrow::Cow<[Line<W>]> = if buckets.len() == nb {
            std::borrow::Cow::Borrowed(buckets)
        } else {
            let mut one = Vec::with_capacity(nb);
            for b in 0..nb {
                let copies = &buckets[first[b] as usize..first[b + 1] as usize];
                if copies.len() == 1 {
                    one.push(copies[0]);
                } else {
                    let mut s = Jacobian::IDENTITY;
                    for v in self.affine_of(copies) {
                        s = s.add_mixed(&v);
                    }
                    one.push(self.line_of(&s.to_affine()));
                }
            }
            std::borrow::Cow::Owned(one)
        };
        // SAFETY: `self` exists only if the CPU has IFMA; `merged` holds `nb` lines.
        unsafe { super::reduce::reduce::<F::Lanes>(words(&merged), W, nb) }
    }
}

/// Buckets from which a window's reduction runs on eight lanes (below, the
/// lanes' combination costs more than it saves).
const REDUCE_ON_LANES_FROM: usize = 64;

/// The lanes of group `v` of a batch (additions `8v..8v+8`).
struct Lanes {
    /// Word offsets of the buckets' lines, one per lane.
    bucket_at: [u64; 8],
    /// Word offsets of the points' lines.
    point_at: [u64; 8],
    /// Lanes past the batch's end (they repeat its last addition).
    pad: u8,
    /// Lanes whose point is negated.
    neg: u8,
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn lanes(batch: &[(u32, u32)], v: usize, line_words: u64) -> Lanes {
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
        bi[l] = u64::from(b) * line_words;
        pi[l] = u64::from(r & !NEG) * line_words;
    }
    Lanes {
        bucket_at: bi,
        point_at: pi,
        pad,
        neg,
    }
}

/// The four packed words of Fq part `k` of the lines at word offsets `idx`.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn gather_words(base: &[u64], idx: __m512i, k: usize) -> [__m512i; 4] {
    std::array::from_fn(|j| {
        let at = _mm512_add_epi64(idx, _mm512_set1_epi64((4 * k + j) as i64));
        gather(base, at, base.len() - 1)
    })
}

/// Fq part `k` of the lines at word offsets `idx`.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn gather_part(base: &[u64], idx: __m512i, k: usize) -> V8 {
    unpack(gather_words(base, idx, k))
}

/// Lanes where either point is the identity, from the words of their first parts.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn identity_lanes(a: &[__m512i; 4], b: &[__m512i; 4]) -> u8 {
    let ones = _mm512_set1_epi64(-1);
    _mm512_cmpeq_epi64_mask(a[3], ones) | _mm512_cmpeq_epi64_mask(b[3], ones)
}

/// The inverses of the (nonzero) lanes of every denominator, by one shared
/// inversion: prefix products, one lane inversion, then back down. The
/// products run as [`CHAINS`] interleaved chains (denominator `i` in chain
/// `i % CHAINS`): one chain is a sequence of dependent multiplications, each
/// waiting for the last (a product's latency is several times its
/// throughput), while independent chains overlap. The chains' products are
/// inverted together.
///
/// The products are lazy (below 2p, see [`Field8::mul_lazy`]): the inverses
/// are below 2p, not necessarily canonical.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn batch_inverses(f: &Field8, dens: &[V8]) -> Vec<V8> {
    let mut out = Vec::with_capacity(dens.len());
    let mut acc = [f.one; CHAINS];
    for (i, d) in dens.iter().enumerate() {
        let k = i % CHAINS;
        out.push(acc[k]);
        acc[k] = f.mul_lazy(&acc[k], d);
    }
    // One inversion for all chains: the prefix of the chain products, the
    // inverse of their product, then each chain's inverse on the way down.
    let mut pre = [f.one; CHAINS];
    for k in 1..CHAINS {
        pre[k] = f.mul_lazy(&pre[k - 1], &acc[k - 1]);
    }
    let all = f.canonical(&f.mul_lazy(&pre[CHAINS - 1], &acc[CHAINS - 1]));
    let mut inv_rest = invert_lanes(&all);
    let mut inv = [f.one; CHAINS];
    for k in (0..CHAINS).rev() {
        inv[k] = f.mul_lazy(&inv_rest, &pre[k]);
        inv_rest = f.mul_lazy(&inv_rest, &acc[k]);
    }
    for (i, (o, d)) in out.iter_mut().zip(dens).enumerate().rev() {
        let k = i % CHAINS;
        *o = f.mul_lazy(&inv[k], o);
        inv[k] = f.mul_lazy(&inv[k], d);
    }
    out
}

/// Independent product chains in [`batch_inverses`].
const CHAINS: usize = 4;

/// Adds the batch positions of group `v`'s special lanes (not its padding).
fn push_specials(out: &mut Vec<usize>, special: u8, v: usize, len: usize) {
    for l in 0..8 {
        if special >> l & 1 == 1 && 8 * v + l < len {
            out.push(8 * v + l);
        }
    }
}

/// The coordinate whose first Fq part is part `k` of the lines at word
/// offsets `idx` (`first`: that part's words, when already gathered).
#[inline(always)]
pub(crate) fn gather_coord<L: LaneField>(
    base: &[u64],
    idx: __m512i,
    k: usize,
    first: Option<[__m512i; 4]>,
) -> L {
    // SAFETY: callers hold a `Field8` (so the CPU has IFMA) and pass offsets
    // of lines within `base`.
    unsafe {
        let p0 = match first {
            Some(w) => unpack(w),
            None => gather_part(base, idx, k),
        };
        let p1 = if L::PARTS > 1 {
            gather_part(base, idx, k + 1)
        } else {
            p0
        };
        L::from_parts([p0, p1])
    }
}

/// The lines at word offsets `at` (whole lines within `base`), word-major:
/// `out[c][w]` lane `l` is word `8c + w` of lane `l`'s line, for the first
/// `chunks` 8-word chunks of a line. Each line is read with whole-vector
/// loads and the tile transposed: cheaper than gathering word by word
/// (gathers are microcoded on some CPUs, AMD's among them).
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn load_lines(base: &[u64], at: &[u64; 8], chunks: usize) -> [[__m512i; 8]; 2] {
    let zero = _mm512_setzero_si512();
    let mut out = [[zero; 8]; 2];
    for (c, o) in out.iter_mut().enumerate().take(chunks) {
        let rows: [__m512i; 8] = std::array::from_fn(|l| {
            let from = at[l] as usize + 8 * c;
            let w = &base[from..from + 8];
            // SAFETY: `w` is eight initialised u64 values (bounds checked above).
            unsafe { _mm512_loadu_si512(w.as_ptr().cast()) }
        });
        *o = transpose_u64(rows);
    }
    out
}

/// The inverse of [`load_lines`] for the lanes in `keep`.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn store_lines(
    base: &mut [u64],
    at: &[u64; 8],
    keep: u8,
    words: &[[__m512i; 8]; 2],
    chunks: usize,
) {
    for (c, w) in words.iter().enumerate().take(chunks) {
        let rows = transpose_u64(*w);
        for (l, row) in rows.iter().enumerate() {
            if keep >> l & 1 == 1 {
                let from = at[l] as usize + 8 * c;
                let dst = &mut base[from..from + 8];
                // SAFETY: `dst` is eight u64 values, exclusively borrowed.
                unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), *row) };
            }
        }
    }
}

/// The four packed words of Fq part `k` in word-major lines.
#[inline(always)]
fn part_words(lines: &[[__m512i; 8]; 2], k: usize) -> [__m512i; 4] {
    let (c, w) = (k / 2, 4 * (k % 2));
    [
        lines[c][w],
        lines[c][w + 1],
        lines[c][w + 2],
        lines[c][w + 3],
    ]
}

/// Coordinate `L` from Fq parts `k..k + L::PARTS` of word-major lines.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn coord_of<L: LaneField>(lines: &[[__m512i; 8]; 2], k: usize) -> L {
    let p0 = unpack(part_words(lines, k));
    let p1 = if L::PARTS > 1 {
        unpack(part_words(lines, k + 1))
    } else {
        p0
    };
    L::from_parts([p0, p1])
}

/// Writes Fq part `k` into word-major lines.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn set_part_words(lines: &mut [[__m512i; 8]; 2], k: usize, v: &V8) {
    let (c, w) = (k / 2, 4 * (k % 2));
    for (j, word) in pack(v).into_iter().enumerate() {
        lines[c][w + j] = word;
    }
}

/// One group of eight additions, as loaded.
struct Group<L> {
    x1: L,
    y1: L,
    x2: L,
    y2: L,
    /// `x2 - x1` (one on special lanes).
    d: L,
    special: u8,
    bucket_at: [u64; 8],
}

/// `bucket[b] += ±point[r]` for the batch, on the words of lines of
/// `8 * L::PARTS` words; returns the positions it left to the portable
/// formulas (those buckets are not written). The shared inversion runs in
/// Fq: on the denominators themselves for G1, on their norms for G2
/// (`1/d = conj(d) / (d0^2 + d1^2)`).
#[target_feature(enable = "avx512f,avx512ifma")]
fn add_batch<L: LaneField>(bw: &mut [u64], pw: &[u64], batch: &[(u32, u32)]) -> Vec<usize> {
    let f = Field8::new(&FQ);
    let nv = batch.len().div_ceil(8);
    let mut groups = Vec::with_capacity(nv);
    let mut norms = Vec::with_capacity(nv);
    for v in 0..nv {
        // The buckets a few groups ahead, which the batch's prefetch may
        // have lost to later ones.
        for &(b, r) in batch.iter().skip(8 * (v + 4)).take(8) {
            let from = b as usize * 8 * L::PARTS;
            super::prefetch(&bw[from..from + 8 * L::PARTS]);
            let from = (r & !NEG) as usize * 8 * L::PARTS;
            super::prefetch(&pw[from..from + 8 * L::PARTS]);
        }
        let ix = lanes(batch, v, 8 * L::PARTS as u64);
        let chunks = L::PARTS;
        let (bl, pl) = (
            load_lines(bw, &ix.bucket_at, chunks),
            load_lines(pw, &ix.point_at, chunks),
        );
        let ident = identity_lanes(&part_words(&bl, 0), &part_words(&pl, 0));
        let x1: L = coord_of(&bl, 0);
        let x2: L = coord_of(&pl, 0);
        let y1: L = coord_of(&bl, L::PARTS);
        let y2: L = coord_of(&pl, L::PARTS);
        // Only inputs of lazy operations from here: -y2 and x2 - x1 need no
        // reduction (below 2p and 3p); equal x is found on the canonical x.
        let y2 = if ix.neg == 0 {
            y2
        } else {
            L::select(&f, ix.neg, &y2, &L::neg_loose(&f, &y2))
        };
        let d = L::sub_loose(&f, &x2, &x1);
        let special = L::eq_mask(&f, &x1, &x2) | ident | ix.pad;
        let d = L::select(&f, special, &d, &L::one(&f));
        norms.push(L::norm(&f, &d));
        groups.push(Group {
            x1,
            y1,
            x2,
            y2,
            d,
            special,
            bucket_at: ix.bucket_at,
        });
    }
    let invs = batch_inverses(&f, &norms);
    let mut specials = Vec::new();
    for (v, (g, ninv)) in groups.iter().zip(&invs).enumerate() {
        // Lazy products (below 2p) and unreduced differences (below 8p)
        // on the way; x3 and y3 are made canonical once, for storing.
        let dinv = L::inverse_from_norm(&f, &g.d, ninv);
        let lambda = L::mul_lazy(&f, &L::sub_loose(&f, &g.y2, &g.y1), &dinv);
        let x3 = L::canonical4(
            &f,
            &L::sub2_loose(&f, &L::square_lazy(&f, &lambda), &g.x1, &g.x2),
        );
        let y3 = L::mul_lazy(&f, &lambda, &L::sub_loose(&f, &g.x1, &x3));
        let y3 = L::canonical4(&f, &L::sub_loose(&f, &y3, &g.y1));
        let mut out = [[_mm512_setzero_si512(); 8]; 2];
        for k in 0..L::PARTS {
            set_part_words(&mut out, k, x3.part(k));
            set_part_words(&mut out, L::PARTS + k, y3.part(k));
        }
        store_lines(bw, &g.bucket_at, !g.special, &out, L::PARTS);
        push_specials(&mut specials, g.special, v, batch.len());
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

//! Eight field elements at once with AVX-512 IFMA: five 52-bit limbs per
//! element, each limb a 512-bit vector of eight lanes, Montgomery form with
//! R' = 2^260.
//!
//! Every function here is `#[target_feature(enable = "avx512f,avx512ifma")]`;
//! callers must have checked the CPU (see `dispatch`). Values are kept
//! canonical (below p) after every operation, so equality is limb equality
//! and results match the portable path bit for bit.
//!
//! The `unsafe` in this file is confined to loading and storing vectors
//! through pointers into slices whose length was checked.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::FieldParams;

/// Limb width.
pub const LIMB_BITS: u32 = 52;
const MASK: u64 = (1 << LIMB_BITS) - 1;

/// A prime's constants in 52-bit form, derived from its [`FieldParams`].
#[derive(Debug, Clone, Copy)]
pub struct Params52 {
    /// The modulus.
    pub p: [u64; 5],
    /// `-p^{-1} mod 2^52`.
    pub pinv: u64,
    /// `R' mod p` (one in Montgomery form).
    pub one: [u64; 5],
    /// `R'^2 mod p` (converts into Montgomery form).
    pub r2: [u64; 5],
}

/// Splits a 256-bit integer into five 52-bit limbs.
pub const fn to52(x: &[u64; 4]) -> [u64; 5] {
    [
        x[0] & MASK,
        ((x[0] >> 52) | (x[1] << 12)) & MASK,
        ((x[1] >> 40) | (x[2] << 24)) & MASK,
        ((x[2] >> 28) | (x[3] << 36)) & MASK,
        x[3] >> 16,
    ]
}

/// Joins five 52-bit limbs (value below 2^256) into four 64-bit limbs.
pub const fn from52(x: &[u64; 5]) -> [u64; 4] {
    [
        x[0] | (x[1] << 52),
        (x[1] >> 12) | (x[2] << 40),
        (x[2] >> 24) | (x[3] << 28),
        (x[3] >> 36) | (x[4] << 16),
    ]
}

impl Params52 {
    /// The constants of `P`.
    pub const fn of<P: FieldParams>() -> Params52 {
        Params52 {
            p: to52(&P::MODULUS),
            pinv: super::neg_inv(P::MODULUS[0]) & MASK,
            one: to52(&super::pow2_mod(260, &P::MODULUS)),
            r2: to52(&super::pow2_mod(520, &P::MODULUS)),
        }
    }
}

/// Fq's constants.
pub const FQ: Params52 = Params52::of::<super::FqParams>();
/// Fr's constants.
pub const FR: Params52 = Params52::of::<super::FrParams>();

/// Eight elements, limb-major.
#[derive(Clone, Copy)]
pub struct V8(pub [__m512i; 5]);

impl std::fmt::Debug for V8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("V8(..)")
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn splat(x: &[u64; 5]) -> V8 {
    V8([
        _mm512_set1_epi64(x[0] as i64),
        _mm512_set1_epi64(x[1] as i64),
        _mm512_set1_epi64(x[2] as i64),
        _mm512_set1_epi64(x[3] as i64),
        _mm512_set1_epi64(x[4] as i64),
    ])
}

impl V8 {
    /// All lanes equal to `x` (limbs already in Montgomery form).
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn splat(x: &[u64; 5]) -> V8 {
        splat(x)
    }

    /// All lanes zero.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn zero() -> V8 {
        V8([_mm512_setzero_si512(); 5])
    }

    /// From eight elements given as limb arrays.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn from_lanes(lanes: &[[u64; 5]; 8]) -> V8 {
        let mut limbs = [[0u64; 8]; 5];
        for (l, v) in lanes.iter().enumerate() {
            for j in 0..5 {
                limbs[j][l] = v[j];
            }
        }
        V8(limbs.map(|a| load8(&a)))
    }

    /// The eight elements as limb arrays.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn to_lanes(&self) -> [[u64; 5]; 8] {
        let limbs: [[u64; 8]; 5] = self.0.map(|v| store8(v));
        let mut out = [[0u64; 5]; 8];
        for (l, o) in out.iter_mut().enumerate() {
            for j in 0..5 {
                o[j] = limbs[j][l];
            }
        }
        out
    }
}

/// Loads eight u64.
///
/// # Safety
/// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
#[inline]
#[target_feature(enable = "avx512f")]
pub fn load8(a: &[u64; 8]) -> __m512i {
    // SAFETY: `a` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
}

/// Stores eight u64.
///
/// # Safety
/// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
#[inline]
#[target_feature(enable = "avx512f")]
pub fn store8(v: __m512i) -> [u64; 8] {
    let mut a = [0u64; 8];
    // SAFETY: `a` is 64 writable bytes; the store is unaligned.
    unsafe { _mm512_storeu_si512(a.as_mut_ptr().cast(), v) };
    a
}

/// Gathers `base[idx[l] + offset]` for eight lanes.
///
/// # Safety
/// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
#[inline]
#[target_feature(enable = "avx512f")]
pub fn gather(base: &[u64], idx: __m512i, max_index: usize) -> __m512i {
    debug_assert!(max_index < base.len());
    let _ = max_index;
    // SAFETY: every index in `idx` is at most `max_index`, which the caller
    // checked is within `base`.
    unsafe { _mm512_i64gather_epi64::<8>(idx, base.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn mask52() -> __m512i {
    _mm512_set1_epi64(MASK as i64)
}

/// Propagates carries so every limb is below 2^52 (the top limb takes the rest).
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn normalize(mut t: [__m512i; 5]) -> [__m512i; 5] {
    let m = mask52();
    for j in 0..4 {
        let carry = _mm512_srai_epi64::<52>(t[j]);
        t[j] = _mm512_and_si512(t[j], m);
        t[j + 1] = _mm512_add_epi64(t[j + 1], carry);
    }
    t
}

/// `x - p` if `x >= p`, else `x` (x normalized, below 2p).
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn reduce_once(x: [__m512i; 5], p: &[__m512i; 5]) -> [__m512i; 5] {
    let mut t = [_mm512_setzero_si512(); 5];
    for j in 0..5 {
        t[j] = _mm512_sub_epi64(x[j], p[j]);
    }
    let t = normalize(t);
    let negative = _mm512_cmplt_epi64_mask(t[4], _mm512_setzero_si512());
    let mut out = x;
    for j in 0..5 {
        out[j] = _mm512_mask_blend_epi64(negative, t[j], x[j]);
    }
    out
}

/// Field operations on eight lanes for one prime.
#[derive(Clone, Copy)]
pub struct Field8 {
    p: [__m512i; 5],
    p2: [__m512i; 5],
    pinv: __m512i,
    /// One (Montgomery form), splatted.
    pub one: V8,
    r2: V8,
    /// The constants this was built from.
    pub params: Params52,
}

impl Field8 {
    /// Loads the constants.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn new(params: &Params52) -> Field8 {
        let mut p2 = params.p;
        let mut carry = 0u64;
        for l in p2.iter_mut() {
            let v = (*l << 1) + carry;
            *l = v & MASK;
            carry = v >> 52;
        }
        Field8 {
            p: splat(&params.p).0,
            p2: splat(&p2).0,
            pinv: _mm512_set1_epi64(params.pinv as i64),
            one: splat(&params.one),
            r2: splat(&params.r2),
            params: *params,
        }
    }

    /// Montgomery product `a * b / R'`, canonical.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn mul(&self, a: &V8, b: &V8) -> V8 {
        V8(reduce_once(self.mul_lazy(a, b).0, &self.p))
    }

    /// Montgomery product for inputs below 8p; the result is below 2p (not
    /// necessarily canonical): with R' = 2^260 and p < 2^254, the product
    /// over R' is below 64p^2 / R' + p < 2p. For chains that reduce once at
    /// the end.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn mul_lazy(&self, a: &V8, b: &V8) -> V8 {
        let z = _mm512_setzero_si512();
        let a = &a.0;
        let p = &self.p;
        let mut t = [z; 6];
        for i in 0..5 {
            let bi = b.0[i];
            t[0] = _mm512_madd52lo_epu64(t[0], a[0], bi);
            t[1] = _mm512_madd52lo_epu64(t[1], a[1], bi);
            t[2] = _mm512_madd52lo_epu64(t[2], a[2], bi);
            t[3] = _mm512_madd52lo_epu64(t[3], a[3], bi);
            t[4] = _mm512_madd52lo_epu64(t[4], a[4], bi);
            t[1] = _mm512_madd52hi_epu64(t[1], a[0], bi);
            t[2] = _mm512_madd52hi_epu64(t[2], a[1], bi);
            t[3] = _mm512_madd52hi_epu64(t[3], a[2], bi);
            t[4] = _mm512_madd52hi_epu64(t[4], a[3], bi);
            t[5] = _mm512_madd52hi_epu64(t[5], a[4], bi);
            let m = _mm512_madd52lo_epu64(z, t[0], self.pinv);
            t[0] = _mm512_madd52lo_epu64(t[0], m, p[0]);
            t[1] = _mm512_madd52lo_epu64(t[1], m, p[1]);
            t[2] = _mm512_madd52lo_epu64(t[2], m, p[2]);
            t[3] = _mm512_madd52lo_epu64(t[3], m, p[3]);
            t[4] = _mm512_madd52lo_epu64(t[4], m, p[4]);
            t[1] = _mm512_madd52hi_epu64(t[1], m, p[0]);
            t[2] = _mm512_madd52hi_epu64(t[2], m, p[1]);
            t[3] = _mm512_madd52hi_epu64(t[3], m, p[2]);
            t[4] = _mm512_madd52hi_epu64(t[4], m, p[3]);
            t[5] = _mm512_madd52hi_epu64(t[5], m, p[4]);
            // The low 52 bits of t[0] are now zero: shift down one limb.
            let carry = _mm512_srli_epi64::<52>(t[0]);
            t = [_mm512_add_epi64(t[1], carry), t[2], t[3], t[4], t[5], z];
        }
        V8(normalize([t[0], t[1], t[2], t[3], t[4]]))
    }

    /// `a + b` for inputs below 2p, result below 2p.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn add_lazy(&self, a: &V8, b: &V8) -> V8 {
        let mut t = a.0;
        for (tj, bj) in t.iter_mut().zip(b.0) {
            *tj = _mm512_add_epi64(*tj, bj);
        }
        V8(reduce_once(normalize(t), &self.p2))
    }

    /// `a - b` for inputs below 2p, result below 2p.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn sub_lazy(&self, a: &V8, b: &V8) -> V8 {
        let mut t = a.0;
        for ((tj, pj), bj) in t.iter_mut().zip(self.p2).zip(b.0) {
            *tj = _mm512_sub_epi64(_mm512_add_epi64(*tj, pj), bj);
        }
        V8(reduce_once(normalize(t), &self.p2))
    }

    /// A value below 2p made canonical.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn canonical(&self, a: &V8) -> V8 {
        V8(reduce_once(a.0, &self.p))
    }

    /// `a^2`.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn square(&self, a: &V8) -> V8 {
        V8(reduce_once(self.square_lazy(a).0, &self.p))
    }

    /// Montgomery square for an input below 8p; the result is below 2p (not
    /// necessarily canonical). Each cross product `a_i a_j` (i < j) is
    /// computed once and the sum of them doubled: 30 multiply-adds for the
    /// product instead of 50.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn square_lazy(&self, a: &V8) -> V8 {
        let z = _mm512_setzero_si512();
        let a = &a.0;
        let p = &self.p;
        // Cross products into `t`, doubled, then the squares added.
        let mut t = [z; 10];
        for i in 0..5 {
            for j in i + 1..5 {
                t[i + j] = _mm512_madd52lo_epu64(t[i + j], a[i], a[j]);
                t[i + j + 1] = _mm512_madd52hi_epu64(t[i + j + 1], a[i], a[j]);
            }
        }
        for v in t.iter_mut() {
            *v = _mm512_add_epi64(*v, *v);
        }
        for i in 0..5 {
            t[2 * i] = _mm512_madd52lo_epu64(t[2 * i], a[i], a[i]);
            t[2 * i + 1] = _mm512_madd52hi_epu64(t[2 * i + 1], a[i], a[i]);
        }
        // Montgomery reduction, one limb at a time; every column stays far
        // below 2^64 (at most 20 terms below 2^52 each).
        for i in 0..5 {
            let m = _mm512_madd52lo_epu64(z, t[i], self.pinv);
            for j in 0..5 {
                t[i + j] = _mm512_madd52lo_epu64(t[i + j], m, p[j]);
                t[i + j + 1] = _mm512_madd52hi_epu64(t[i + j + 1], m, p[j]);
            }
            // The low 52 bits of t[i] are now zero: carry the rest up.
            t[i + 1] = _mm512_add_epi64(t[i + 1], _mm512_srli_epi64::<52>(t[i]));
        }
        V8(normalize([t[5], t[6], t[7], t[8], t[9]]))
    }

    /// `a + 2p - b`, limbs normalized but not reduced: below `a + 2p` for
    /// `b` below 2p. For inputs of [`Field8::mul_lazy`] (below 8p).
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn sub_loose(&self, a: &V8, b: &V8) -> V8 {
        let mut t = a.0;
        for ((tj, pj), bj) in t.iter_mut().zip(self.p2).zip(b.0) {
            *tj = _mm512_sub_epi64(_mm512_add_epi64(*tj, pj), bj);
        }
        V8(normalize(t))
    }

    /// `a + 2p - b - c`, limbs normalized but not reduced (`b + c` below 2p).
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn sub2_loose(&self, a: &V8, b: &V8, c: &V8) -> V8 {
        let mut t = a.0;
        for (((tj, pj), bj), cj) in t.iter_mut().zip(self.p2).zip(b.0).zip(c.0) {
            *tj = _mm512_sub_epi64(_mm512_sub_epi64(_mm512_add_epi64(*tj, pj), bj), cj);
        }
        V8(normalize(t))
    }

    /// `p - a` for a canonical `a`, limbs normalized but not reduced (below
    /// 2p: `p` for zero).
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn neg_loose(&self, a: &V8) -> V8 {
        let mut t = self.p;
        for (tj, aj) in t.iter_mut().zip(a.0) {
            *tj = _mm512_sub_epi64(*tj, aj);
        }
        V8(normalize(t))
    }

    /// A value below 4p (limbs normalized) made canonical.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn canonical4(&self, a: &V8) -> V8 {
        V8(reduce_once(reduce_once(a.0, &self.p2), &self.p))
    }

    /// `a + b`.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn add(&self, a: &V8, b: &V8) -> V8 {
        let mut t = a.0;
        for (tj, bj) in t.iter_mut().zip(b.0) {
            *tj = _mm512_add_epi64(*tj, bj);
        }
        V8(reduce_once(normalize(t), &self.p))
    }

    /// `a - b` (computed as `a + p - b`, then reduced).
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn sub(&self, a: &V8, b: &V8) -> V8 {
        let mut t = a.0;
        for ((tj, pj), bj) in t.iter_mut().zip(self.p).zip(b.0) {
            *tj = _mm512_sub_epi64(_mm512_add_epi64(*tj, pj), bj);
        }
        V8(reduce_once(normalize(t), &self.p))
    }

    /// `2a`.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn double(&self, a: &V8) -> V8 {
        self.add(a, a)
    }

    /// Lanes where `a == b`.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn eq_mask(&self, a: &V8, b: &V8) -> __mmask8 {
        let mut m = 0xff;
        for j in 0..5 {
            m &= _mm512_cmpeq_epi64_mask(a.0[j], b.0[j]);
        }
        m
    }

    /// Lanes where `a == 0`.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn zero_mask(&self, a: &V8) -> __mmask8 {
        self.eq_mask(a, &V8::zero())
    }

    /// `mask ? b : a` per lane.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn select(&self, mask: __mmask8, a: &V8, b: &V8) -> V8 {
        let mut out = a.0;
        for (o, bj) in out.iter_mut().zip(b.0) {
            *o = _mm512_mask_blend_epi64(mask, *o, bj);
        }
        V8(out)
    }

    /// Canonical integers (below p, as 52-bit limbs) into Montgomery form.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn to_mont(&self, a: &V8) -> V8 {
        self.mul(a, &self.r2)
    }

    /// Montgomery form back to canonical integers.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn from_mont(&self, a: &V8) -> V8 {
        let mut one = [_mm512_setzero_si512(); 5];
        one[0] = _mm512_set1_epi64(1);
        self.mul(a, &V8(one))
    }
}

/// Eight elements of Fq2 = Fq[u] / (u^2 + 1): the lanes of `c0` and of `c1`.
pub type V8x2 = [V8; 2];

/// Fq2 on eight lanes, built on the Fq operations (all results canonical).
impl Field8 {
    /// `a + b` in Fq2.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn add2(&self, a: &V8x2, b: &V8x2) -> V8x2 {
        [self.add(&a[0], &b[0]), self.add(&a[1], &b[1])]
    }

    /// `a - b` in Fq2.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn sub2(&self, a: &V8x2, b: &V8x2) -> V8x2 {
        [self.sub(&a[0], &b[0]), self.sub(&a[1], &b[1])]
    }

    /// `a * b` in Fq2 by Karatsuba: three Fq products.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn mul2(&self, a: &V8x2, b: &V8x2) -> V8x2 {
        let v0 = self.mul(&a[0], &b[0]);
        let v1 = self.mul(&a[1], &b[1]);
        // The sums are below 2p, which the Montgomery product takes.
        let s = self.mul(&self.add_lazy(&a[0], &a[1]), &self.add_lazy(&b[0], &b[1]));
        [self.sub(&v0, &v1), self.sub(&self.sub(&s, &v0), &v1)]
    }

    /// `a^2` in Fq2: `(a0 + a1)(a0 - a1) + 2 a0 a1 u`, two Fq products.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn square2(&self, a: &V8x2) -> V8x2 {
        let c0 = self.mul(&self.add_lazy(&a[0], &a[1]), &self.sub_lazy(&a[0], &a[1]));
        [c0, self.double(&self.mul(&a[0], &a[1]))]
    }

    /// Lanes where `a == 0` in Fq2.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn zero_mask2(&self, a: &V8x2) -> __mmask8 {
        self.zero_mask(&a[0]) & self.zero_mask(&a[1])
    }

    /// `mask ? b : a` per lane, in Fq2.
    ///
    /// # Safety
    /// Only where the CPU has AVX-512F and AVX-512 IFMA (a `Field8` exists).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn select2(&self, mask: __mmask8, a: &V8x2, b: &V8x2) -> V8x2 {
        [
            self.select(mask, &a[0], &b[0]),
            self.select(mask, &a[1], &b[1]),
        ]
    }
}

/// Eight elements packed as four 64-bit words each (a 256-bit integer per
/// lane: how bytes and cache lines hold them) into 52-bit limbs.
///
/// # Safety
/// Only where the CPU has AVX-512F and AVX-512 IFMA.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub fn unpack(w: [__m512i; 4]) -> V8 {
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

/// The inverse of [`unpack`]: 52-bit limbs (below 2^256) into four words.
///
/// # Safety
/// Only where the CPU has AVX-512F and AVX-512 IFMA.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub fn pack(v: &V8) -> [__m512i; 4] {
    let l = &v.0;
    [
        _mm512_or_si512(l[0], _mm512_slli_epi64::<52>(l[1])),
        _mm512_or_si512(_mm512_srli_epi64::<12>(l[1]), _mm512_slli_epi64::<40>(l[2])),
        _mm512_or_si512(_mm512_srli_epi64::<24>(l[2]), _mm512_slli_epi64::<28>(l[3])),
        _mm512_or_si512(_mm512_srli_epi64::<36>(l[3]), _mm512_slli_epi64::<16>(l[4])),
    ]
}

/// Transposes eight vectors of eight u64: `out[i][l] = rows[l][i]`.
///
/// # Safety
/// Only where the CPU has AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
pub fn transpose_u64(r: [__m512i; 8]) -> [__m512i; 8] {
    let t0 = _mm512_unpacklo_epi64(r[0], r[1]);
    let t1 = _mm512_unpackhi_epi64(r[0], r[1]);
    let t2 = _mm512_unpacklo_epi64(r[2], r[3]);
    let t3 = _mm512_unpackhi_epi64(r[2], r[3]);
    let t4 = _mm512_unpacklo_epi64(r[4], r[5]);
    let t5 = _mm512_unpackhi_epi64(r[4], r[5]);
    let t6 = _mm512_unpacklo_epi64(r[6], r[7]);
    let t7 = _mm512_unpackhi_epi64(r[6], r[7]);
    let lo2 = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    let hi2 = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    let u0 = _mm512_permutex2var_epi64(t0, lo2, t2);
    let u1 = _mm512_permutex2var_epi64(t1, lo2, t3);
    let u2 = _mm512_permutex2var_epi64(t0, hi2, t2);
    let u3 = _mm512_permutex2var_epi64(t1, hi2, t3);
    let u4 = _mm512_permutex2var_epi64(t4, lo2, t6);
    let u5 = _mm512_permutex2var_epi64(t5, lo2, t7);
    let u6 = _mm512_permutex2var_epi64(t4, hi2, t6);
    let u7 = _mm512_permutex2var_epi64(t5, hi2, t7);
    let lo4 = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11);
    let hi4 = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
    [
        _mm512_permutex2var_epi64(u0, lo4, u4),
        _mm512_permutex2var_epi64(u1, lo4, u5),
        _mm512_permutex2var_epi64(u2, lo4, u6),
        _mm512_permutex2var_epi64(u3, lo4, u7),
        _mm512_permutex2var_epi64(u0, hi4, u4),
        _mm512_permutex2var_epi64(u1, hi4, u5),
        _mm512_permutex2var_epi64(u2, hi4, u6),
        _mm512_permutex2var_epi64(u3, hi4, u7),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{Fq, Fr};

    fn lanes_of(v: &[Fq; 8]) -> [[u64; 5]; 8] {
        v.map(|x| to52(&x.to_canonical()))
    }

    #[test]
    fn limb_conversion_round_trips() {
        let x = [
            0x0123456789abcdef,
            0xfedcba9876543210,
            0x0f1e2d3c4b5a6978,
            0x3064f00dbeefcafe,
        ];
        assert_eq!(from52(&to52(&x)), x);
    }

    #[test]
    fn eight_lane_arithmetic_matches_the_portable_field() {
        if !crate::dispatch::cpu_has_ifma() {
            return;
        }
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed
        };
        for _ in 0..200 {
            let a: [Fq; 8] = std::array::from_fn(|_| {
                Fq::from_canonical(Fq::reduce([next(), next(), next(), next() >> 2]))
            });
            let mut b: [Fq; 8] = std::array::from_fn(|_| {
                Fq::from_canonical(Fq::reduce([next(), next(), next(), next() >> 2]))
            });
            b[3] = a[3];
            b[5] = Fq::ZERO;
            // SAFETY: the CPU has IFMA (checked above).
            let (m, s, d, eq) = unsafe { check_ops(&lanes_of(&a), &lanes_of(&b)) };
            for l in 0..8 {
                assert_eq!(
                    from52(&m[l]),
                    a[l].mul(&b[l]).to_canonical(),
                    "mul lane {l}"
                );
                assert_eq!(
                    from52(&s[l]),
                    a[l].add(&b[l]).to_canonical(),
                    "add lane {l}"
                );
                assert_eq!(
                    from52(&d[l]),
                    a[l].sub(&b[l]).to_canonical(),
                    "sub lane {l}"
                );
                assert_eq!(eq >> l & 1 == 1, a[l] == b[l]);
            }
        }
        let _ = Fr::ONE;
    }

    #[test]
    fn eight_lane_fq2_matches_the_portable_fq2() {
        use crate::field::Field;
        use crate::field::fq2::Fq2;
        if !crate::dispatch::cpu_has_ifma() {
            return;
        }
        let mut seed = 777u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Fq::from_canonical(Fq::reduce([
                seed,
                seed.rotate_left(17),
                seed ^ 0x5555,
                seed >> 3,
            ]))
        };
        let p_minus_1 = Fq::ZERO.sub(&Fq::ONE);
        for round in 0..100 {
            let mut a: [Fq2; 8] = std::array::from_fn(|_| Fq2::new(next(), next()));
            let b: [Fq2; 8] = std::array::from_fn(|_| Fq2::new(next(), next()));
            if round == 0 {
                // Edges: zero, one, p - 1 in either part, and a lane equal to b's.
                a[0] = Fq2::ZERO;
                a[1] = Fq2::ONE;
                a[2] = Fq2::new(p_minus_1, p_minus_1);
                a[3] = Fq2::new(Fq::ZERO, p_minus_1);
                a[4] = b[4];
            }
            let parts =
                |v: &[Fq2; 8], k: usize| lanes_of(&v.map(|x| if k == 0 { x.c0 } else { x.c1 }));
            let (va, vb) = ([parts(&a, 0), parts(&a, 1)], [parts(&b, 0), parts(&b, 1)]);
            // SAFETY: the CPU has IFMA (checked above).
            let (m, sq, s, d, zero) = unsafe { check_ops2(&va, &vb) };
            let back = |r: &[[[u64; 5]; 8]; 2], l: usize| {
                Fq2::new(
                    Fq::from_canonical(from52(&r[0][l])),
                    Fq::from_canonical(from52(&r[1][l])),
                )
            };
            for l in 0..8 {
                assert_eq!(back(&m, l), a[l].mul(&b[l]), "mul2 lane {l}");
                assert_eq!(back(&sq, l), a[l].square(), "square2 lane {l}");
                assert_eq!(back(&s, l), a[l].add(&b[l]), "add2 lane {l}");
                assert_eq!(back(&d, l), a[l].sub(&b[l]), "sub2 lane {l}");
                assert_eq!(
                    zero >> l & 1 == 1,
                    a[l].sub(&b[l]).is_zero(),
                    "zero_mask2 lane {l}"
                );
            }
        }
    }

    type Lanes2 = [[[u64; 5]; 8]; 2];

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn check_ops2(a: &Lanes2, b: &Lanes2) -> (Lanes2, Lanes2, Lanes2, Lanes2, u8) {
        let f = Field8::new(&FQ);
        let load = |x: &Lanes2| {
            [
                f.to_mont(&V8::from_lanes(&x[0])),
                f.to_mont(&V8::from_lanes(&x[1])),
            ]
        };
        let out = |v: V8x2| [f.from_mont(&v[0]).to_lanes(), f.from_mont(&v[1]).to_lanes()];
        let (va, vb) = (load(a), load(b));
        let d = f.sub2(&va, &vb);
        (
            out(f.mul2(&va, &vb)),
            out(f.square2(&va)),
            out(f.add2(&va, &vb)),
            out(d),
            f.zero_mask2(&d),
        )
    }

    /// Eight lanes of 52-bit limbs.
    type Lanes52 = [[u64; 5]; 8];

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn check_ops(a: &Lanes52, b: &Lanes52) -> (Lanes52, Lanes52, Lanes52, u8) {
        let f = Field8::new(&FQ);
        let (va, vb) = (f.to_mont(&V8::from_lanes(a)), f.to_mont(&V8::from_lanes(b)));
        let m = f.from_mont(&f.mul(&va, &vb)).to_lanes();
        let s = f.from_mont(&f.add(&va, &vb)).to_lanes();
        let d = f.from_mont(&f.sub(&va, &vb)).to_lanes();
        (m, s, d, f.eq_mask(&va, &vb))
    }

    /// `x + k p` in 52-bit limbs (260 bits: room for values up to 8p).
    fn plus_p(x: &[u64; 5], k: u64) -> [u64; 5] {
        let mut out = *x;
        for _ in 0..k {
            let mut carry = 0u64;
            for (o, pj) in out.iter_mut().zip(FQ.p) {
                let v = *o + pj + carry;
                *o = v & MASK;
                carry = v >> 52;
            }
            assert_eq!(carry, 0);
        }
        out
    }

    /// Whether `a < k p`, both as 52-bit limbs.
    fn below_p(a: &[u64; 5], k: u64) -> bool {
        let bound = plus_p(&[0; 5], k);
        (0..5)
            .rev()
            .find(|&i| a[i] != bound[i])
            .is_some_and(|i| a[i] < bound[i])
    }

    #[test]
    fn lazy_eight_lane_operations_take_values_below_8p_and_agree_with_the_canonical_ones() {
        if !crate::dispatch::cpu_has_ifma() {
            return;
        }
        let mut seed = 4242u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed
        };
        let mut p_minus_1 = FQ.p;
        p_minus_1[0] -= 1;
        let mut edges = vec![[0u64; 5], [1, 0, 0, 0, 0], p_minus_1];
        for _ in 0..5 {
            edges.push(to52(&Fq::reduce([next(), next(), next(), next() >> 2])));
        }
        // Every value `x + k p` below 8p, as (wide value, canonical value).
        let mut values = Vec::new();
        for x in &edges {
            for k in 0..8 {
                if below_p(&plus_p(x, k), 8) {
                    values.push((plus_p(x, k), *x));
                }
            }
        }
        for chunk_a in values.chunks(8) {
            for chunk_b in values.chunks(8).rev() {
                let lanes = |c: &[([u64; 5], [u64; 5])], wide: bool| -> Lanes52 {
                    std::array::from_fn(|l| {
                        let (w, x) = c[l % c.len()];
                        if wide { w } else { x }
                    })
                };
                let (wa, ca) = (lanes(chunk_a, true), lanes(chunk_a, false));
                let (wb, cb) = (lanes(chunk_b, true), lanes(chunk_b, false));
                // SAFETY: the CPU has IFMA (checked above).
                let (lazy, exact) = unsafe { check_lazy(&wa, &wb, &ca, &cb) };
                for (what, (got, want)) in lazy.iter().zip(&exact).enumerate() {
                    for l in 0..8 {
                        assert!(
                            below_p(&got[l].0, got[l].1),
                            "operation {what}, lane {l}: {:x?} not below {}p",
                            got[l].0,
                            got[l].1
                        );
                        assert_eq!(got[l].2, want[l], "operation {what}, lane {l}");
                    }
                }
            }
        }
    }

    /// A lane's raw limbs, the bound they must be below (in multiples of p),
    /// and the canonical value.
    type Raw = ([u64; 5], u64, [u64; 5]);

    /// Each lazy operation's raw result with its bound in multiples of p and
    /// its canonical value, beside the canonical operations' results (`wa`,
    /// `wb` below 8p; `ca`, `cb` their canonical values).
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn check_lazy(
        wa: &Lanes52,
        wb: &Lanes52,
        ca: &Lanes52,
        cb: &Lanes52,
    ) -> ([[Raw; 8]; 5], [Lanes52; 5]) {
        let f = Field8::new(&FQ);
        let (wa, wb) = (V8::from_lanes(wa), V8::from_lanes(wb));
        let (ca, cb) = (V8::from_lanes(ca), V8::from_lanes(cb));
        let raw = |v: V8, bound: u64| {
            let r = v.to_lanes();
            let c = f.canonical4(&v).to_lanes();
            std::array::from_fn(|l| (r[l], bound, c[l]))
        };
        // Times one: the same values below 2p, as lazy products leave them.
        let (la, lb) = (f.mul_lazy(&wa, &f.one), f.mul_lazy(&wb, &f.one));
        let lazy = [
            raw(f.mul_lazy(&wa, &wb), 2),
            raw(f.square_lazy(&wa), 2),
            raw(f.sub_loose(&la, &lb), 4),
            raw(f.sub2_loose(&la, &ca, &cb), 4),
            raw(f.neg_loose(&cb), 2),
        ];
        let exact = [
            f.mul(&ca, &cb).to_lanes(),
            f.mul(&ca, &ca).to_lanes(),
            f.sub(&ca, &cb).to_lanes(),
            f.sub(&f.sub(&ca, &ca), &cb).to_lanes(),
            f.sub(&V8::zero(), &cb).to_lanes(),
        ];
        (lazy, exact)
    }
}

//! Fq and Fq2 on eight lanes behind one trait, so that point formulas are
//! written once for G1 and G2 ([`LaneField`] for [`V8`] and [`V8x2`]).
//!
//! The methods take a [`Field8`], which exists only where the CPU has IFMA
//! (its constructor is a target-feature function); they are inlined into the
//! target-feature functions that run the formulas.

#![allow(unsafe_code)]

use super::fq2::Fq2;
use super::ifma::{Field8, V8, V8x2, from52, to52};
use super::{Field, Fq};

/// A coordinate field on eight lanes.
pub trait LaneField: Copy {
    /// The portable field of a lane.
    type P: Field;
    /// Fq parts per element.
    const PARTS: usize;
    /// Zero on every lane.
    fn zero() -> Self;
    /// One on every lane.
    fn one(f: &Field8) -> Self;
    /// `a + b`.
    fn add(f: &Field8, a: &Self, b: &Self) -> Self;
    /// `a - b`.
    fn sub(f: &Field8, a: &Self, b: &Self) -> Self;
    /// `a * b`.
    fn mul(f: &Field8, a: &Self, b: &Self) -> Self;
    /// `a^2`.
    fn square(f: &Field8, a: &Self) -> Self;
    /// `a * b` for inputs below 8p, below 2p (not necessarily canonical).
    /// Fields without a lazy form give the canonical product.
    fn mul_lazy(f: &Field8, a: &Self, b: &Self) -> Self {
        Self::mul(f, a, b)
    }
    /// `a^2` for an input below 8p, below 2p (as [`LaneField::mul_lazy`]).
    fn square_lazy(f: &Field8, a: &Self) -> Self {
        Self::square(f, a)
    }
    /// `a - b` as `a + 2p - b` without reduction (`b` below 2p), or canonical.
    fn sub_loose(f: &Field8, a: &Self, b: &Self) -> Self {
        Self::sub(f, a, b)
    }
    /// `a - b - c` as `a + 2p - b - c` without reduction (`b + c` below 2p), or canonical.
    fn sub2_loose(f: &Field8, a: &Self, b: &Self, c: &Self) -> Self {
        Self::sub(f, &Self::sub(f, a, b), c)
    }
    /// `-a` for a canonical `a`, below 2p (as `p - a`), or canonical.
    fn neg_loose(f: &Field8, a: &Self) -> Self {
        Self::sub(f, &Self::zero(), a)
    }
    /// Lanes where `a == b` (both canonical).
    fn eq_mask(f: &Field8, a: &Self, b: &Self) -> u8 {
        Self::zero_mask(f, &Self::sub(f, a, b))
    }
    /// A value below 4p made canonical (canonical values stay as they are).
    fn canonical4(_f: &Field8, a: &Self) -> Self {
        *a
    }
    /// `mask ? b : a` per lane.
    fn select(f: &Field8, mask: u8, a: &Self, b: &Self) -> Self;
    /// Lanes where `a == 0`.
    fn zero_mask(f: &Field8, a: &Self) -> u8;
    /// The element with these Fq parts (the first [`Self::PARTS`] are used).
    fn from_parts(parts: [V8; 2]) -> Self;
    /// Fq part `k`.
    fn part(&self, k: usize) -> &V8;
    /// The Fq value to invert for `a^-1`: `a` itself, or Fq2's norm `a0^2 + a1^2`.
    fn norm(f: &Field8, a: &Self) -> V8;
    /// `a^-1` from the inverse of [`LaneField::norm`]: that inverse, or `conj(a)` times it.
    fn inverse_from_norm(f: &Field8, a: &Self, norm_inv: &V8) -> Self;
    /// `x` on every lane.
    fn splat(f: &Field8, x: &Self::P) -> Self;
    /// The eight lanes as portable elements.
    fn lanes(f: &Field8, a: &Self) -> [Self::P; 8];
}

#[inline(always)]
fn splat_fq(f: &Field8, x: &Fq) -> V8 {
    // SAFETY: a `Field8` exists only where the CPU has IFMA.
    unsafe { f.to_mont(&V8::splat(&to52(&x.to_canonical()))) }
}

#[inline(always)]
fn lanes_fq(f: &Field8, a: &V8) -> [Fq; 8] {
    // SAFETY: as above.
    let l = unsafe { f.from_mont(a).to_lanes() };
    l.map(|x| Fq::from_canonical(from52(&x)))
}

// The IFMA functions below are called with a `Field8`, which exists only
// where the CPU has IFMA.
impl LaneField for V8 {
    type P = Fq;
    const PARTS: usize = 1;
    #[inline(always)]
    fn zero() -> V8 {
        // SAFETY: only called from code that holds a `Field8`.
        unsafe { V8::zero() }
    }
    #[inline(always)]
    fn one(f: &Field8) -> V8 {
        f.one
    }
    #[inline(always)]
    fn add(f: &Field8, a: &V8, b: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.add(a, b) }
    }
    #[inline(always)]
    fn sub(f: &Field8, a: &V8, b: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.sub(a, b) }
    }
    #[inline(always)]
    fn mul(f: &Field8, a: &V8, b: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.mul(a, b) }
    }
    #[inline(always)]
    fn square(f: &Field8, a: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.square(a) }
    }
    #[inline(always)]
    fn mul_lazy(f: &Field8, a: &V8, b: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.mul_lazy(a, b) }
    }
    #[inline(always)]
    fn square_lazy(f: &Field8, a: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.square_lazy(a) }
    }
    #[inline(always)]
    fn sub_loose(f: &Field8, a: &V8, b: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.sub_loose(a, b) }
    }
    #[inline(always)]
    fn sub2_loose(f: &Field8, a: &V8, b: &V8, c: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.sub2_loose(a, b, c) }
    }
    #[inline(always)]
    fn neg_loose(f: &Field8, a: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.neg_loose(a) }
    }
    #[inline(always)]
    fn eq_mask(f: &Field8, a: &V8, b: &V8) -> u8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.eq_mask(a, b) }
    }
    #[inline(always)]
    fn canonical4(f: &Field8, a: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.canonical4(a) }
    }
    #[inline(always)]
    fn select(f: &Field8, mask: u8, a: &V8, b: &V8) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.select(mask, a, b) }
    }
    #[inline(always)]
    fn zero_mask(f: &Field8, a: &V8) -> u8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.zero_mask(a) }
    }
    #[inline(always)]
    fn from_parts(parts: [V8; 2]) -> V8 {
        parts[0]
    }
    #[inline(always)]
    fn part(&self, _k: usize) -> &V8 {
        self
    }
    #[inline(always)]
    fn norm(_f: &Field8, a: &V8) -> V8 {
        *a
    }
    #[inline(always)]
    fn inverse_from_norm(_f: &Field8, _a: &V8, norm_inv: &V8) -> V8 {
        *norm_inv
    }
    #[inline(always)]
    fn splat(f: &Field8, x: &Fq) -> V8 {
        splat_fq(f, x)
    }
    #[inline(always)]
    fn lanes(f: &Field8, a: &V8) -> [Fq; 8] {
        lanes_fq(f, a)
    }
}

impl LaneField for V8x2 {
    type P = Fq2;
    const PARTS: usize = 2;
    #[inline(always)]
    fn zero() -> V8x2 {
        [<V8 as LaneField>::zero(), <V8 as LaneField>::zero()]
    }
    #[inline(always)]
    fn one(f: &Field8) -> V8x2 {
        [f.one, <V8 as LaneField>::zero()]
    }
    #[inline(always)]
    fn add(f: &Field8, a: &V8x2, b: &V8x2) -> V8x2 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.add2(a, b) }
    }
    #[inline(always)]
    fn sub(f: &Field8, a: &V8x2, b: &V8x2) -> V8x2 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.sub2(a, b) }
    }
    #[inline(always)]
    fn mul(f: &Field8, a: &V8x2, b: &V8x2) -> V8x2 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.mul2(a, b) }
    }
    #[inline(always)]
    fn square(f: &Field8, a: &V8x2) -> V8x2 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.square2(a) }
    }
    #[inline(always)]
    fn select(f: &Field8, mask: u8, a: &V8x2, b: &V8x2) -> V8x2 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.select2(mask, a, b) }
    }
    #[inline(always)]
    fn zero_mask(f: &Field8, a: &V8x2) -> u8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.zero_mask2(a) }
    }
    #[inline(always)]
    fn from_parts(parts: [V8; 2]) -> V8x2 {
        parts
    }
    #[inline(always)]
    fn part(&self, k: usize) -> &V8 {
        &self[k]
    }
    #[inline(always)]
    fn norm(f: &Field8, a: &V8x2) -> V8 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe { f.add(&f.square(&a[0]), &f.square(&a[1])) }
    }
    #[inline(always)]
    fn inverse_from_norm(f: &Field8, a: &V8x2, norm_inv: &V8) -> V8x2 {
        // SAFETY: `f` is a `Field8`, which exists only where the CPU has IFMA.
        unsafe {
            [
                f.mul(&a[0], norm_inv),
                f.sub(&V8::zero(), &f.mul(&a[1], norm_inv)),
            ]
        }
    }
    #[inline(always)]
    fn splat(f: &Field8, x: &Fq2) -> V8x2 {
        [splat_fq(f, &x.c0), splat_fq(f, &x.c1)]
    }
    #[inline(always)]
    fn lanes(f: &Field8, a: &V8x2) -> [Fq2; 8] {
        let (c0, c1) = (lanes_fq(f, &a[0]), lanes_fq(f, &a[1]));
        std::array::from_fn(|l| Fq2::new(c0[l], c1[l]))
    }
}

//! Fq2 = Fq[u] / (u^2 + 1), the field of G2's coordinates.

use super::{Field, Fq};

/// `c0 + c1 * u`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Fq2 {
    /// The real part.
    pub c0: Fq,
    /// The coefficient of u.
    pub c1: Fq,
}

impl Fq2 {
    /// Builds from parts.
    pub const fn new(c0: Fq, c1: Fq) -> Fq2 {
        Fq2 { c0, c1 }
    }
}

impl Field for Fq2 {
    const ZERO: Self = Fq2 {
        c0: Fq::ZERO,
        c1: Fq::ZERO,
    };
    const ONE: Self = Fq2 {
        c0: Fq::ONE,
        c1: Fq::ZERO,
    };

    #[inline(always)]
    fn add(&self, o: &Self) -> Self {
        Fq2 {
            c0: self.c0.add(&o.c0),
            c1: self.c1.add(&o.c1),
        }
    }
    #[inline(always)]
    fn sub(&self, o: &Self) -> Self {
        Fq2 {
            c0: self.c0.sub(&o.c0),
            c1: self.c1.sub(&o.c1),
        }
    }
    /// Karatsuba: three base multiplications.
    #[inline(always)]
    fn mul(&self, o: &Self) -> Self {
        let v0 = self.c0.mul(&o.c0);
        let v1 = self.c1.mul(&o.c1);
        let s = self.c0.add(&self.c1).mul(&o.c0.add(&o.c1));
        Fq2 {
            c0: v0.sub(&v1),
            c1: s.sub(&v0).sub(&v1),
        }
    }
    /// `(a+b)(a-b) + 2ab u`: two base multiplications.
    #[inline(always)]
    fn square(&self) -> Self {
        let ab = self.c0.mul(&self.c1);
        let c0 = self.c0.add(&self.c1).mul(&self.c0.sub(&self.c1));
        Fq2 {
            c0,
            c1: ab.double(),
        }
    }
    #[inline(always)]
    fn double(&self) -> Self {
        Fq2 {
            c0: self.c0.double(),
            c1: self.c1.double(),
        }
    }
    #[inline(always)]
    fn neg(&self) -> Self {
        Fq2 {
            c0: self.c0.neg(),
            c1: self.c1.neg(),
        }
    }
    #[inline(always)]
    fn is_zero(&self) -> bool {
        self.c0.is_zero() && self.c1.is_zero()
    }
    /// `(a - b u) / (a^2 + b^2)`.
    fn inverse(&self) -> Option<Self> {
        let norm = self.c0.square().add(&self.c1.square());
        let inv = norm.inverse()?;
        Some(Fq2 {
            c0: self.c0.mul(&inv),
            c1: self.c1.mul(&inv).neg(),
        })
    }
}

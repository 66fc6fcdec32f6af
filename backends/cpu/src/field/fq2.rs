//! Fq2 = Fq[u] / (u^2 + 1), the field of G2's coordinates.

use super::{Field, FieldParams, Fq, FqParams, adc, redc, sub_wide, wide_mul};

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
    /// Karatsuba with the reductions after the sums: three products of
    /// four limbs, two Montgomery reductions (80 word multiplications
    /// instead of the 96 of three reduced products).
    #[inline(always)]
    fn mul(&self, o: &Self) -> Self {
        let (a0, a1, b0, b1) = (&self.c0.0, &self.c1.0, &o.c0.0, &o.c1.0);
        let v0 = wide_mul(a0, b0);
        let v1 = wide_mul(a1, b1);
        // The sums are below 2q < 2^255: no carry out.
        let sum = |x: &[u64; 4], y: &[u64; 4]| {
            let mut c = 0u64;
            let s: [u64; 4] = std::array::from_fn(|i| adc(x[i], y[i], &mut c));
            s
        };
        let s = wide_mul(&sum(a0, a1), &sum(b0, b1));
        // c1 = s - v0 - v1 = a0 b1 + a1 b0, below 4q^2 < q 2^256.
        let c1 = sub_wide(&sub_wide(&s, &v0).0, &v1).0;
        // c0 = v0 - v1, plus q 2^256 when negative: below q 2^256.
        let (mut c0, borrow) = sub_wide(&v0, &v1);
        let q = <FqParams as FieldParams>::MODULUS;
        let mut c = 0u64;
        for i in 0..4 {
            c0[4 + i] = adc(c0[4 + i], q[i] & borrow, &mut c);
        }
        Fq2 {
            c0: Fq::from_mont(redc::<FqParams>(c0)).reduce_once(),
            c1: Fq::from_mont(redc::<FqParams>(c1)).reduce_once(),
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

//! BN254 base field Fq, scalar field Fr and the quadratic extension Fq2, in
//! Montgomery form with four 64-bit limbs (the portable path).
//!
//! Constants are derived from the moduli by `const fn`s, so the only numbers
//! written by hand are the two primes. The AVX-512 IFMA path (`ifma.rs`) uses
//! its own 52-bit representation and converts at the edges.

use std::marker::PhantomData;

#[cfg(target_arch = "x86_64")]
pub mod adx;
pub mod fq2;

/// Whether this CPU has BMI2 and ADX (false off x86-64).
pub fn cpu_has_adx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        adx::cpu_has_adx()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
#[cfg(target_arch = "x86_64")]
pub mod ifma;
pub mod inverse;
#[cfg(target_arch = "x86_64")]
pub mod lanes;

/// A prime field's constants.
pub trait FieldParams: 'static + Copy + Send + Sync + std::fmt::Debug + PartialEq + Eq {
    /// The modulus, little-endian limbs. Its top bit must be clear (BN254's are).
    const MODULUS: [u64; 4];
    /// `-p^{-1} mod 2^64`.
    const INV: u64 = neg_inv(Self::MODULUS[0]);
    /// `2^256 mod p`: one, in Montgomery form.
    const R: [u64; 4] = pow2_mod(256, &Self::MODULUS);
    /// `2^512 mod p`: converts into Montgomery form.
    const R2: [u64; 4] = pow2_mod(512, &Self::MODULUS);
    /// `2^768 mod p`: turns the integer inverse of a Montgomery form back into one.
    const R3: [u64; 4] = pow2_mod(768, &Self::MODULUS);
    /// `p^-1 mod 2^62`, for the divsteps inversion.
    const INV62: u64 = inverse::inv62(Self::MODULUS[0]);
}

/// BN254's base field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FqParams;
impl FieldParams for FqParams {
    const MODULUS: [u64; 4] = [
        0x3c208c16d87cfd47,
        0x97816a916871ca8d,
        0xb85045b68181585d,
        0x30644e72e131a029,
    ];
}

/// BN254's scalar field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrParams;
impl FieldParams for FrParams {
    const MODULUS: [u64; 4] = [
        0x43e1f593f0000001,
        0x2833e84879b97091,
        0xb85045b68181585d,
        0x30644e72e131a029,
    ];
}

/// `-m^{-1} mod 2^64` for odd `m`, by Newton iteration.
pub const fn neg_inv(m: u64) -> u64 {
    let mut inv: u64 = 1;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg()
}

/// `a` where `mask` is all ones, `b` where it is zero; without a branch
/// (conditional moves), as which way it goes depends on the data.
#[inline(always)]
pub(crate) fn select(mask: u64, a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    let take_a = mask != 0;
    [
        std::hint::select_unpredictable(take_a, a[0], b[0]),
        std::hint::select_unpredictable(take_a, a[1], b[1]),
        std::hint::select_unpredictable(take_a, a[2], b[2]),
        std::hint::select_unpredictable(take_a, a[3], b[3]),
    ]
}

const fn geq(a: &[u64; 4], b: &[u64; 4]) -> bool {
    let mut i = 4;
    while i > 0 {
        i -= 1;
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

const fn sub_noborrow(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut borrow = 0u64;
    let mut i = 0;
    while i < 4 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(borrow);
        out[i] = d2;
        borrow = (b1 | b2) as u64;
        i += 1;
    }
    out
}

/// `2^k mod m` by repeated doubling (compile-time only).
pub const fn pow2_mod(k: u32, m: &[u64; 4]) -> [u64; 4] {
    let mut x = [1u64, 0, 0, 0];
    let mut i = 0;
    while i < k {
        // x = 2x mod m; m < 2^255 so 2x < 2^256 fits.
        let mut d = [0u64; 4];
        let mut carry = 0u64;
        let mut j = 0;
        while j < 4 {
            d[j] = (x[j] << 1) | carry;
            carry = x[j] >> 63;
            j += 1;
        }
        x = if geq(&d, m) { sub_noborrow(&d, m) } else { d };
        i += 1;
    }
    x
}

#[inline(always)]
const fn mac(a: u64, b: u64, c: u64, carry: &mut u64) -> u64 {
    let t = (a as u128) + (b as u128) * (c as u128) + (*carry as u128);
    *carry = (t >> 64) as u64;
    t as u64
}

#[inline(always)]
pub(crate) const fn adc(a: u64, b: u64, carry: &mut u64) -> u64 {
    let t = (a as u128) + (b as u128) + (*carry as u128);
    *carry = (t >> 64) as u64;
    t as u64
}

#[inline(always)]
pub(crate) const fn sbb(a: u64, b: u64, borrow: &mut u64) -> u64 {
    let t = (a as u128).wrapping_sub((b as u128) + ((*borrow >> 63) as u128));
    *borrow = (t >> 64) as u64;
    t as u64
}

/// `a * b` as eight limbs (schoolbook), for products reduced later
/// ([`redc`]): Fq2's product reduces two sums of such products instead of
/// three products.
#[inline(always)]
pub(crate) fn wide_mul(a: &[u64; 4], b: &[u64; 4]) -> [u64; 8] {
    let mut t = [0u64; 8];
    for i in 0..4 {
        let mut c = 0u64;
        for j in 0..4 {
            t[i + j] = mac(t[i + j], a[i], b[j], &mut c);
        }
        t[i + 4] = c;
    }
    t
}

/// Montgomery reduction of eight limbs: `t * 2^-256 mod m`, below 2m, for
/// `t < m * 2^256`.
#[inline(always)]
pub(crate) fn redc<P: FieldParams>(mut t: [u64; 8]) -> [u64; 4] {
    let m = &P::MODULUS;
    // The carry out of row i's top limb, which row i + 1 adds one limb up.
    let mut extra = 0u64;
    for i in 0..4 {
        let k = t[i].wrapping_mul(P::INV);
        let mut c = 0u64;
        for j in 0..4 {
            t[i + j] = mac(t[i + j], k, m[j], &mut c);
        }
        let mut over = 0u64;
        t[i + 4] = adc(t[i + 4], c, &mut over);
        let mut over2 = 0u64;
        t[i + 4] = adc(t[i + 4], extra, &mut over2);
        extra = over + over2;
    }
    [t[4], t[5], t[6], t[7]]
}

/// `a - b` on eight limbs; the borrow is all ones when `b > a`.
#[inline(always)]
pub(crate) fn sub_wide(a: &[u64; 8], b: &[u64; 8]) -> ([u64; 8], u64) {
    let mut borrow = 0u64;
    let d = std::array::from_fn(|i| sbb(a[i], b[i], &mut borrow));
    (d, borrow)
}

/// The CIOS rows of [`Fp::mul_portable`], unreduced (below 2m for inputs
/// below m; see [`Fp::mul_lazy`] for wider inputs).
#[inline(always)]
fn mul_portable_raw<P: FieldParams>(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let m = &P::MODULUS;
    let mut r = [0u64; 4];
    let mut i = 0;
    while i < 4 {
        let mut c1 = 0u64;
        let mut c2 = 0u64;
        r[0] = mac(r[0], a[0], b[i], &mut c1);
        let k = r[0].wrapping_mul(P::INV);
        let _ = mac(r[0], k, m[0], &mut c2);
        r[1] = mac(r[1], a[1], b[i], &mut c1);
        r[0] = mac(r[1], k, m[1], &mut c2);
        r[2] = mac(r[2], a[2], b[i], &mut c1);
        r[1] = mac(r[2], k, m[2], &mut c2);
        r[3] = mac(r[3], a[3], b[i], &mut c1);
        r[2] = mac(r[3], k, m[3], &mut c2);
        r[3] = c1.wrapping_add(c2);
        i += 1;
    }
    r
}

/// An element of the prime field described by `P`, in Montgomery form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fp<P: FieldParams>(pub [u64; 4], PhantomData<P>);

impl<P: FieldParams> std::fmt::Debug for Fp<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.to_canonical();
        write!(f, "0x{:016x}{:016x}{:016x}{:016x}", c[3], c[2], c[1], c[0])
    }
}

/// An element of Fq.
pub type Fq = Fp<FqParams>;
/// An element of Fr.
pub type Fr = Fp<FrParams>;

impl<P: FieldParams> Default for Fp<P> {
    fn default() -> Self {
        Self::ZERO
    }
}

impl<P: FieldParams> Fp<P> {
    /// Zero.
    pub const ZERO: Self = Fp([0; 4], PhantomData);
    /// One.
    pub const ONE: Self = Fp(P::R, PhantomData);

    /// Wraps limbs that are already in Montgomery form and below p.
    #[inline(always)]
    pub const fn from_mont(limbs: [u64; 4]) -> Self {
        Fp(limbs, PhantomData)
    }

    /// Whether `limbs` (as an integer) is below the modulus.
    #[inline]
    pub fn is_canonical(limbs: &[u64; 4]) -> bool {
        !geq(limbs, &P::MODULUS)
    }

    /// Reduces any 256-bit integer modulo p (at most five subtractions).
    #[inline]
    pub fn reduce(mut limbs: [u64; 4]) -> [u64; 4] {
        while geq(&limbs, &P::MODULUS) {
            limbs = sub_noborrow(&limbs, &P::MODULUS);
        }
        limbs
    }

    /// From a canonical integer (below p), into Montgomery form.
    #[inline]
    pub fn from_canonical(limbs: [u64; 4]) -> Self {
        Fp(limbs, PhantomData).mul(&Fp(P::R2, PhantomData))
    }

    /// From 32 bytes little-endian; `None` if not below p.
    pub fn from_bytes_canonical(b: &[u8; 32]) -> Option<Self> {
        let l = limbs_from_bytes(b);
        Self::is_canonical(&l).then(|| Self::from_canonical(l))
    }

    /// From 32 bytes little-endian, reduced modulo p.
    pub fn from_bytes_reduce(b: &[u8; 32]) -> Self {
        Self::from_canonical(Self::reduce(limbs_from_bytes(b)))
    }

    /// The canonical integer (out of Montgomery form).
    #[inline]
    pub fn to_canonical(&self) -> [u64; 4] {
        self.mul(&Fp([1, 0, 0, 0], PhantomData)).0
    }

    /// 32 bytes little-endian, canonical.
    pub fn to_bytes(&self) -> [u8; 32] {
        limbs_to_bytes(&self.to_canonical())
    }

    /// Whether zero.
    #[inline(always)]
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Montgomery multiplication: with BMI2 and ADX where the path uses
    /// them (`adx.rs`), else [`Fp::mul_portable`]; the same result either way.
    /// Inputs below 2m (lazy products) give canonical results too.
    #[inline(always)]
    pub fn mul(&self, other: &Self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if adx::enabled() {
            return Fp(
                adx::mont_mul(&self.0, &other.0, &P::MODULUS, P::INV),
                PhantomData,
            )
            .reduce_once();
        }
        self.mul_portable(other)
    }

    /// Montgomery multiplication (CIOS, with the no-carry shortcut that a
    /// modulus with a clear top bit allows) in plain 64-bit arithmetic.
    #[inline(always)]
    pub fn mul_portable(&self, other: &Self) -> Self {
        Fp(mul_portable_raw::<P>(&self.0, &other.0), PhantomData).reduce_once()
    }

    /// Montgomery multiplication without the final reduction, for lazy
    /// arithmetic: `self` may be anything below 4m and `other` below m, or
    /// both below 2m (for a modulus under 2^256 / 5, which [`Fp::LAZY_OK`]
    /// checks); the result is below 2m and congruent to the product. Each
    /// row's running sum stays below `self + m < 5m`, so four limbs hold
    /// it, and the result is below `self * other / 2^256 + m`.
    #[inline(always)]
    pub fn mul_lazy(&self, other: &Self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if adx::enabled() {
            return Fp(
                adx::mont_mul(&self.0, &other.0, &P::MODULUS, P::INV),
                PhantomData,
            );
        }
        Fp(mul_portable_raw::<P>(&self.0, &other.0), PhantomData)
    }

    /// Whether the modulus leaves the room [`Fp::mul_lazy`] needs.
    pub const LAZY_OK: bool = P::MODULUS[3] < u64::MAX / 5;

    /// Squaring.
    #[inline(always)]
    pub fn square(&self) -> Self {
        self.mul(self)
    }

    #[inline(always)]
    pub(crate) fn reduce_once(self) -> Self {
        let m = &P::MODULUS;
        let mut borrow = 0u64;
        let d0 = sbb(self.0[0], m[0], &mut borrow);
        let d1 = sbb(self.0[1], m[1], &mut borrow);
        let d2 = sbb(self.0[2], m[2], &mut borrow);
        let d3 = sbb(self.0[3], m[3], &mut borrow);
        // Branch free (which way it goes depends on the data); `borrow` is
        // all ones where it borrowed.
        Fp(select(borrow, self.0, [d0, d1, d2, d3]), PhantomData)
    }

    /// Addition.
    #[inline(always)]
    pub fn add(&self, other: &Self) -> Self {
        let mut c = 0u64;
        let r0 = adc(self.0[0], other.0[0], &mut c);
        let r1 = adc(self.0[1], other.0[1], &mut c);
        let r2 = adc(self.0[2], other.0[2], &mut c);
        let r3 = adc(self.0[3], other.0[3], &mut c);
        Fp([r0, r1, r2, r3], PhantomData).reduce_once()
    }

    /// Doubling.
    #[inline(always)]
    pub fn double(&self) -> Self {
        self.add(self)
    }

    /// Subtraction.
    #[inline(always)]
    pub fn sub(&self, other: &Self) -> Self {
        let mut borrow = 0u64;
        let r0 = sbb(self.0[0], other.0[0], &mut borrow);
        let r1 = sbb(self.0[1], other.0[1], &mut borrow);
        let r2 = sbb(self.0[2], other.0[2], &mut borrow);
        let r3 = sbb(self.0[3], other.0[3], &mut borrow);
        // Adds m back when it borrowed (`borrow` is then all ones), without
        // a branch.
        let m = &P::MODULUS;
        let mask = borrow;
        let mut c = 0u64;
        let s0 = adc(r0, m[0] & mask, &mut c);
        let s1 = adc(r1, m[1] & mask, &mut c);
        let s2 = adc(r2, m[2] & mask, &mut c);
        let s3 = adc(r3, m[3] & mask, &mut c);
        Fp([s0, s1, s2, s3], PhantomData)
    }

    /// Negation.
    #[inline(always)]
    pub fn neg(&self) -> Self {
        if self.is_zero() {
            *self
        } else {
            Self::ZERO.sub(self)
        }
    }

    /// `self^e` for a little-endian exponent.
    pub fn pow(&self, e: &[u64]) -> Self {
        let mut acc = Self::ONE;
        for limb in e.iter().rev() {
            for bit in (0..64).rev() {
                acc = acc.square();
                if (limb >> bit) & 1 == 1 {
                    acc = acc.mul(self);
                }
            }
        }
        acc
    }

    /// The inverse (`None` for zero), by divsteps (see `inverse.rs`): the
    /// stored value `x R` is inverted as an integer, and `(x R)^-1` times
    /// `R^3` in Montgomery form is `x^-1 R`.
    pub fn inverse(&self) -> Option<Self> {
        if self.is_zero() {
            return None;
        }
        let inv = inverse::invert(&self.0, &P::MODULUS, P::INV62);
        Some(Fp(inv, PhantomData).mul(&Fp(P::R3, PhantomData)))
    }

    /// Inverts every nonzero element of `v` in place with one inversion
    /// (Montgomery's trick); zeros stay zero.
    pub fn batch_inverse(v: &mut [Self]) {
        let mut prefix = Vec::with_capacity(v.len());
        let mut acc = Self::ONE;
        for x in v.iter() {
            prefix.push(acc);
            if !x.is_zero() {
                acc = acc.mul(x);
            }
        }
        let Some(mut inv) = acc.inverse() else { return };
        for (x, p) in v.iter_mut().zip(prefix).rev() {
            if x.is_zero() {
                continue;
            }
            let xi = inv.mul(&p);
            inv = inv.mul(x);
            *x = xi;
        }
    }
}

/// Four little-endian u64 limbs from 32 bytes.
#[inline]
pub fn limbs_from_bytes(b: &[u8; 32]) -> [u64; 4] {
    let mut l = [0u64; 4];
    for (i, limb) in l.iter_mut().enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i * 8..i * 8 + 8]);
        *limb = u64::from_le_bytes(w);
    }
    l
}

/// 32 bytes from four little-endian u64 limbs.
#[inline]
pub fn limbs_to_bytes(l: &[u64; 4]) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, limb) in l.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
    }
    b
}

/// What curve code needs from a field (Fq for G1, Fq2 for G2).
pub trait Field: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// `a + b`.
    fn add(&self, o: &Self) -> Self;
    /// `a - b`.
    fn sub(&self, o: &Self) -> Self;
    /// `a * b`.
    fn mul(&self, o: &Self) -> Self;
    /// `a * b` without the final reduction where a field can skip it (base
    /// fields: below 2m for `a` below 2m and `b` canonical, or both below
    /// 2m); such a result may only go into [`Field::mul_lazy`], or into
    /// [`Field::mul`] and [`Field::square`] (either side), which give
    /// canonical values.
    /// Other fields give the canonical product.
    #[inline(always)]
    fn mul_lazy(&self, o: &Self) -> Self {
        self.mul(o)
    }
    /// `a^2`.
    fn square(&self) -> Self;
    /// `2a`.
    fn double(&self) -> Self;
    /// `-a`.
    fn neg(&self) -> Self;
    /// Whether zero.
    fn is_zero(&self) -> bool;
    /// The inverse, if nonzero.
    fn inverse(&self) -> Option<Self>;
}

impl<P: FieldParams> Field for Fp<P> {
    const ZERO: Self = Fp::<P>::ZERO;
    const ONE: Self = Fp::<P>::ONE;
    #[inline(always)]
    fn add(&self, o: &Self) -> Self {
        Fp::add(self, o)
    }
    #[inline(always)]
    fn sub(&self, o: &Self) -> Self {
        Fp::sub(self, o)
    }
    #[inline(always)]
    fn mul(&self, o: &Self) -> Self {
        Fp::mul(self, o)
    }
    /// A product of values below 2m is below `4m^2`, so Montgomery's
    /// product of it is below `4m^2 / 2^256 + m < 2m` (m under 2^254), and
    /// one subtraction in [`Fp::mul`] makes it canonical.
    #[inline(always)]
    fn mul_lazy(&self, o: &Self) -> Self {
        const { assert!(Fp::<P>::LAZY_OK) };
        Fp::mul_lazy(self, o)
    }
    #[inline(always)]
    fn square(&self) -> Self {
        Fp::square(self)
    }
    #[inline(always)]
    fn double(&self) -> Self {
        Fp::double(self)
    }
    #[inline(always)]
    fn neg(&self) -> Self {
        Fp::neg(self)
    }
    #[inline(always)]
    fn is_zero(&self) -> bool {
        Fp::is_zero(self)
    }
    fn inverse(&self) -> Option<Self> {
        Fp::inverse(self)
    }
}

#[cfg(test)]
mod tests;

//! BN254's G1 (over Fq) and G2 (over Fq2, the twist): affine and Jacobian
//! points, the group law for `y^2 = x^3 + b` (a = 0), and the ABI encodings.

use crate::field::fq2::Fq2;
use crate::field::{Field, Fq};

/// An affine point; `infinity` marks the identity (coordinates then unused).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine<F> {
    /// x.
    pub x: F,
    /// y.
    pub y: F,
    /// Whether this is the point at infinity.
    pub infinity: bool,
}

impl<F: Field> Affine<F> {
    /// The identity.
    pub const IDENTITY: Self = Affine {
        x: F::ZERO,
        y: F::ZERO,
        infinity: true,
    };

    /// `-P`.
    #[inline(always)]
    pub fn neg(&self) -> Self {
        Affine {
            x: self.x,
            y: self.y.neg(),
            infinity: self.infinity,
        }
    }
}

/// A point in Jacobian coordinates `(X/Z^2, Y/Z^3)`; `Z = 0` is the identity.
#[derive(Clone, Copy, Debug)]
pub struct Jacobian<F> {
    /// X.
    pub x: F,
    /// Y.
    pub y: F,
    /// Z.
    pub z: F,
}

impl<F: Field> Jacobian<F> {
    /// The identity.
    pub const IDENTITY: Self = Jacobian {
        x: F::ONE,
        y: F::ONE,
        z: F::ZERO,
    };

    /// Whether this is the identity.
    #[inline(always)]
    pub fn is_identity(&self) -> bool {
        self.z.is_zero()
    }

    /// From an affine point.
    #[inline(always)]
    pub fn from_affine(p: &Affine<F>) -> Self {
        if p.infinity {
            Self::IDENTITY
        } else {
            Jacobian {
                x: p.x,
                y: p.y,
                z: F::ONE,
            }
        }
    }

    /// `2P` (dbl-2009-l).
    pub fn double(&self) -> Self {
        if self.is_identity() || self.y.is_zero() {
            return Self::IDENTITY;
        }
        let a = self.x.square();
        let b = self.y.square();
        let c = b.square();
        let d = self.x.add(&b).square().sub(&a).sub(&c).double();
        let e = a.double().add(&a);
        let f = e.square();
        let x3 = f.sub(&d.double());
        let y3 = e.mul(&d.sub(&x3)).sub(&c.double().double().double());
        let z3 = self.y.mul(&self.z).double();
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `P + Q` for affine Q (madd-2007-bl).
    pub fn add_mixed(&self, q: &Affine<F>) -> Self {
        if q.infinity {
            return *self;
        }
        if self.is_identity() {
            return Self::from_affine(q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y).double();
        if h.is_zero() {
            return if r.is_zero() {
                Self::from_affine(q).double()
            } else {
                Self::IDENTITY
            };
        }
        let hh = h.square();
        let i = hh.double().double();
        let j = h.mul(&i);
        let v = self.x.mul(&i);
        let x3 = r.square().sub(&j).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&self.y.mul(&j).double());
        let z3 = self.z.add(&h).square().sub(&z1z1).sub(&hh);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `P + Q` (add-2007-bl).
    pub fn add(&self, q: &Self) -> Self {
        if q.is_identity() {
            return *self;
        }
        if self.is_identity() {
            return *q;
        }
        let z1z1 = self.z.square();
        let z2z2 = q.z.square();
        let u1 = self.x.mul(&z2z2);
        let u2 = q.x.mul(&z1z1);
        let s1 = self.y.mul(&q.z).mul(&z2z2);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&u1);
        let r = s2.sub(&s1).double();
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Self::IDENTITY
            };
        }
        let i = h.double().square();
        let j = h.mul(&i);
        let v = u1.mul(&i);
        let x3 = r.square().sub(&j).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&s1.mul(&j).double());
        let z3 = self.z.add(&q.z).square().sub(&z1z1).sub(&z2z2).mul(&h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// To affine (one inversion).
    pub fn to_affine(&self) -> Affine<F> {
        match self.z.inverse() {
            None => Affine::IDENTITY,
            Some(zi) => {
                let zi2 = zi.square();
                Affine {
                    x: self.x.mul(&zi2),
                    y: self.y.mul(&zi2).mul(&zi),
                    infinity: false,
                }
            }
        }
    }
}

/// A group the MSM runs over: its coordinate field and byte encoding.
pub trait Curve: 'static + Send + Sync {
    /// The coordinate field.
    type F: Field;
    /// Bytes per encoded affine point.
    const BYTES: usize;
    /// Decodes one point; an error names what is wrong.
    fn decode(b: &[u8]) -> Result<Affine<Self::F>, &'static str>;
    /// Encodes one point into `out` (`BYTES` long).
    fn encode(p: &Affine<Self::F>, out: &mut [u8]);
}

fn fq_at(b: &[u8], at: usize) -> Result<Fq, &'static str> {
    let mut w = [0u8; 32];
    w.copy_from_slice(&b[at..at + 32]);
    Fq::from_bytes_canonical(&w).ok_or("a coordinate is not below the field modulus")
}

/// G1 over Fq.
pub struct G1;
impl Curve for G1 {
    type F = Fq;
    const BYTES: usize = 64;
    fn decode(b: &[u8]) -> Result<Affine<Fq>, &'static str> {
        if b.iter().all(|x| *x == 0) {
            return Ok(Affine::IDENTITY);
        }
        Ok(Affine {
            x: fq_at(b, 0)?,
            y: fq_at(b, 32)?,
            infinity: false,
        })
    }
    fn encode(p: &Affine<Fq>, out: &mut [u8]) {
        if p.infinity {
            out[..64].fill(0);
        } else {
            out[..32].copy_from_slice(&p.x.to_bytes());
            out[32..64].copy_from_slice(&p.y.to_bytes());
        }
    }
}

/// G2 over Fq2.
pub struct G2;
impl Curve for G2 {
    type F = Fq2;
    const BYTES: usize = 128;
    fn decode(b: &[u8]) -> Result<Affine<Fq2>, &'static str> {
        if b.iter().all(|x| *x == 0) {
            return Ok(Affine::IDENTITY);
        }
        Ok(Affine {
            x: Fq2::new(fq_at(b, 0)?, fq_at(b, 32)?),
            y: Fq2::new(fq_at(b, 64)?, fq_at(b, 96)?),
            infinity: false,
        })
    }
    fn encode(p: &Affine<Fq2>, out: &mut [u8]) {
        if p.infinity {
            out[..128].fill(0);
        } else {
            out[..32].copy_from_slice(&p.x.c0.to_bytes());
            out[32..64].copy_from_slice(&p.x.c1.to_bytes());
            out[64..96].copy_from_slice(&p.y.c0.to_bytes());
            out[96..128].copy_from_slice(&p.y.c1.to_bytes());
        }
    }
}

//! Bucket reduction on AVX-512 IFMA: `sum (b + 1) B_b` over a window's
//! buckets. Lane `l` of eight runs the running sums over the `l`-th eighth
//! of the buckets, on the complete projective formulas for `a = 0` (Renes,
//! Costello and Batina, 2016: algorithms 7 and 8), so empty buckets, equal
//! sums and the identity need no branch. The eight partial sums are then
//! combined on the portable path:
//! `sum_l (S_l + l L R_l)`, with `L` the segment length, `S_l` lane `l`'s
//! weighted sum and `R_l` its plain sum.

#![allow(unsafe_code)]

use super::ifma::{Coord, gather_coord, gather_words, identity_lanes};
use crate::curve::Jacobian;
use crate::field::Field;
use crate::field::ifma::{FQ, Field8, load8};
use crate::field::lanes::LaneField;

/// A projective point `(X : Y : Z)`, `x = X / Z`, `y = Y / Z`; the identity is `(0 : 1 : 0)`.
#[derive(Clone, Copy)]
struct Proj<L> {
    x: L,
    y: L,
    z: L,
}

/// `p + q`, complete (algorithm 7, `a = 0`): 12 multiplications and 2 by `3b`.
#[inline(always)]
fn add<L: LaneField>(f: &Field8, b3: &L, p: &Proj<L>, q: &Proj<L>) -> Proj<L> {
    let (ad, sb, mu) = (L::add, L::sub, L::mul);
    let t0 = mu(f, &p.x, &q.x);
    let t1 = mu(f, &p.y, &q.y);
    let t2 = mu(f, &p.z, &q.z);
    let t3 = mu(f, &ad(f, &p.x, &p.y), &ad(f, &q.x, &q.y));
    let t3 = sb(f, &t3, &ad(f, &t0, &t1));
    let t4 = mu(f, &ad(f, &p.y, &p.z), &ad(f, &q.y, &q.z));
    let t4 = sb(f, &t4, &ad(f, &t1, &t2));
    let x3 = mu(f, &ad(f, &p.x, &p.z), &ad(f, &q.x, &q.z));
    let y3 = sb(f, &x3, &ad(f, &t0, &t2));
    finish(f, b3, [t0, t1, t2, t3, t4, y3])
}

/// `p + (x, y)` for an affine point (not the identity), complete in `p`
/// (algorithm 8, `a = 0`): 11 multiplications and 2 by `3b`.
#[inline(always)]
fn add_affine<L: LaneField>(f: &Field8, b3: &L, p: &Proj<L>, x: &L, y: &L) -> Proj<L> {
    let (ad, sb, mu) = (L::add, L::sub, L::mul);
    let t0 = mu(f, &p.x, x);
    let t1 = mu(f, &p.y, y);
    let t3 = mu(f, &ad(f, x, y), &ad(f, &p.x, &p.y));
    let t3 = sb(f, &t3, &ad(f, &t0, &t1));
    let t4 = ad(f, &mu(f, y, &p.z), &p.y);
    let y3 = ad(f, &mu(f, x, &p.z), &p.x);
    finish(f, b3, [t0, t1, p.z, t3, t4, y3])
}

/// The steps both additions end with, from their `t0, t1, t2, t3, t4, Y3`
/// just before `t0` is tripled: 6 multiplications and 2 by `3b`.
#[inline(always)]
fn finish<L: LaneField>(f: &Field8, b3: &L, t: [L; 6]) -> Proj<L> {
    let (ad, sb, mu) = (L::add, L::sub, L::mul);
    let [t0, t1, t2, t3, t4, y3] = t;
    let t0 = ad(f, &ad(f, &t0, &t0), &t0);
    let t2 = mu(f, b3, &t2);
    let z3 = ad(f, &t1, &t2);
    let t1 = sb(f, &t1, &t2);
    let y3 = mu(f, b3, &y3);
    let x3 = sb(f, &mu(f, &t3, &t1), &mu(f, &t4, &y3));
    let y3 = ad(f, &mu(f, &t1, &z3), &mu(f, &y3, &t0));
    let z3 = ad(f, &mu(f, &z3, &t4), &mu(f, &t0, &t3));
    Proj {
        x: x3,
        y: y3,
        z: z3,
    }
}

/// The eight lanes of `p` as portable Jacobian points: `(X Z, Y Z^2, Z)`.
#[inline(always)]
fn to_jacobian<L: LaneField>(f: &Field8, p: &Proj<L>) -> [Jacobian<L::P>; 8] {
    let (x, y, z) = (L::lanes(f, &p.x), L::lanes(f, &p.y), L::lanes(f, &p.z));
    std::array::from_fn(|l| Jacobian {
        x: x[l].mul(&z[l]),
        y: y[l].mul(&z[l].square()),
        z: z[l],
    })
}

/// `k p` by doubling and adding.
fn times<F: Field>(p: &Jacobian<F>, k: usize) -> Jacobian<F> {
    let mut acc = Jacobian::IDENTITY;
    for bit in (0..usize::BITS - k.leading_zeros()).rev() {
        acc = acc.double();
        if k >> bit & 1 == 1 {
            acc = acc.add(p);
        }
    }
    acc
}

/// `sum (b + 1) B_b` over `nb` buckets, bucket `b` being the line at word
/// offset `b * line_words` of `lines` (the identity line for an empty one).
///
/// # Safety
/// The CPU must have AVX-512 IFMA, and `lines` must hold `nb` lines.
#[target_feature(enable = "avx512f,avx512ifma")]
pub unsafe fn reduce<L: LaneField<P: Coord>>(
    lines: &[u64],
    line_words: usize,
    nb: usize,
) -> Jacobian<L::P> {
    assert!(lines.len() >= nb * line_words && nb > 0);
    let f = Field8::new(&FQ);
    let b3 = L::splat(&f, &L::P::b3());
    let seg = nb.div_ceil(8);
    let identity = Proj {
        x: L::zero(),
        y: L::one(&f),
        z: L::zero(),
    };
    let (mut running, mut sum) = (identity, identity);
    let parts = L::PARTS;
    for s in 0..seg {
        let mut idx = [0u64; 8];
        let mut pad = 0u8;
        for (l, at) in idx.iter_mut().enumerate() {
            let b = l * seg + seg - 1 - s;
            if b < nb {
                *at = (b * line_words) as u64;
            } else {
                pad |= 1 << l;
            }
        }
        let idx = load8(&idx);
        let w = gather_words(lines, idx, 0);
        let empty = identity_lanes(&w, &w) | pad;
        let x: L = gather_coord(lines, idx, 0, None);
        let y: L = gather_coord(lines, idx, parts, None);
        let next = add_affine(&f, &b3, &running, &x, &y);
        running = Proj {
            x: L::select(&f, empty, &next.x, &running.x),
            y: L::select(&f, empty, &next.y, &running.y),
            z: L::select(&f, empty, &next.z, &running.z),
        };
        sum = add(&f, &b3, &sum, &running);
    }
    let (sums, runs) = (to_jacobian(&f, &sum), to_jacobian(&f, &running));
    // sum_l S_l + L * sum_l l R_l, the last by running sums over the lanes.
    let mut total = Jacobian::IDENTITY;
    for s in &sums {
        total = total.add(s);
    }
    let (mut acc, mut weighted) = (Jacobian::IDENTITY, Jacobian::IDENTITY);
    for r in runs[1..].iter().rev() {
        acc = acc.add(r);
        weighted = weighted.add(&acc);
    }
    total.add(&times(&weighted, seg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Fq;

    #[test]
    fn times_is_repeated_addition() {
        let g = Jacobian::from_affine(&crate::curve::Affine {
            x: Fq::ONE,
            y: Fq::from_canonical([2, 0, 0, 0]),
            infinity: false,
        });
        let mut want = Jacobian::IDENTITY;
        for k in 0..40 {
            assert_eq!(times(&g, k).to_affine(), want.to_affine(), "k = {k}");
            want = want.add(&g);
        }
    }
}

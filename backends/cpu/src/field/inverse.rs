//! Modular inversion by Bernstein and Yang's divsteps ("safegcd"), in
//! variable time: 62 divsteps at a time run on the low words of `f` and `g`
//! alone and yield a 2x2 matrix, which is then applied to the full numbers
//! and to the Bézout coefficients (`d`, `e`), all in signed 62-bit limbs.
//! A 254-bit modulus takes about ten such rounds, where Fermat's
//! `x^(p-2)` takes some 380 multiplications.
//!
//! The running time depends on the input. Inputs here are bucket sums and
//! point coordinates of MSMs and public proof data, not keys.
//!
//! Invariants, with `x` the input and `M` the modulus: `f = d x` and
//! `g = e x (mod M)`, `f` odd; each round divides `(f, g)` exactly by
//! `2^62` and `(d, e)` by `2^62 mod M`. When `g` reaches zero, `f = ±1`
//! (the gcd) and `±d` is the inverse.

const M62: u64 = (1 << 62) - 1;

/// A signed integer as five 62-bit limbs, the top one signed.
type S62 = [i64; 5];

fn to_s62(x: &[u64; 4]) -> S62 {
    [
        (x[0] & M62) as i64,
        (((x[0] >> 62) | (x[1] << 2)) & M62) as i64,
        (((x[1] >> 60) | (x[2] << 4)) & M62) as i64,
        (((x[2] >> 58) | (x[3] << 6)) & M62) as i64,
        (x[3] >> 56) as i64,
    ]
}

/// For `x` in `[0, 2^256)` with limbs 0..4 in `[0, 2^62)`.
fn from_s62(x: &S62) -> [u64; 4] {
    let l = x.map(|v| v as u64);
    [
        l[0] | (l[1] << 62),
        (l[1] >> 2) | (l[2] << 60),
        (l[2] >> 4) | (l[3] << 58),
        (l[3] >> 6) | (l[4] << 56),
    ]
}

/// 62 divsteps on the low words of `f` (odd) and `g`, with `eta = -delta`;
/// returns the new `eta` and `[u, v, q, r]` such that the new `f` and `g`
/// are `(u f + v g) / 2^62` and `(q f + r g) / 2^62`.
#[inline]
fn divsteps_62(mut eta: i64, mut f: u64, mut g: u64) -> (i64, [i64; 4]) {
    let (mut u, mut v, mut q, mut r) = (1i64, 0i64, 0i64, 1i64);
    let mut left = 62u32;
    loop {
        // The steps with g even only halve it: take a run of them at once
        // (each doubles the row of f instead of halving g).
        let zeros = g.trailing_zeros().min(left);
        g >>= zeros;
        u <<= zeros;
        v <<= zeros;
        eta -= i64::from(zeros);
        left -= zeros;
        if left == 0 {
            break;
        }
        // g is odd: this step adds f to g, after `(f, g) <- (g, -f)` (and the
        // same on the rows) when delta > 0; the next run begins with its
        // halving. The swap is done with masks: it is taken about half the
        // time, unpredictably.
        let m = eta >> 63;
        let mu = m as u64;
        let x = (f ^ g) & mu;
        (f, g) = (f ^ x, g ^ x);
        g = (g ^ mu).wrapping_sub(mu);
        let x = (u ^ q) & m;
        (u, q) = (u ^ x, q ^ x);
        let x = (v ^ r) & m;
        (v, r) = (v ^ x, r ^ x);
        q = (q ^ m).wrapping_sub(m);
        r = (r ^ m).wrapping_sub(m);
        eta = (eta ^ m).wrapping_sub(m);
        g = g.wrapping_add(f);
        q = q.wrapping_add(u);
        r = r.wrapping_add(v);
    }
    (eta, [u, v, q, r])
}

/// `(f, g) <- (u f + v g, q f + r g) / 2^62`, exact.
fn update_fg(f: &mut S62, g: &mut S62, t: &[i64; 4]) {
    let [u, v, q, r] = t.map(i128::from);
    let mut cf = u * f[0] as i128 + v * g[0] as i128;
    let mut cg = q * f[0] as i128 + r * g[0] as i128;
    debug_assert!(cf as u64 & M62 == 0 && cg as u64 & M62 == 0);
    cf >>= 62;
    cg >>= 62;
    for i in 1..5 {
        cf += u * f[i] as i128 + v * g[i] as i128;
        cg += q * f[i] as i128 + r * g[i] as i128;
        f[i - 1] = (cf as u64 & M62) as i64;
        g[i - 1] = (cg as u64 & M62) as i64;
        cf >>= 62;
        cg >>= 62;
    }
    f[4] = cf as i64;
    g[4] = cg as i64;
}

/// `(d, e) <- (u d + v e, q d + r e) / 2^62 mod M`, keeping both in `(-2M, M)`:
/// a multiple of M chosen to clear the low 62 bits is added before the shift.
fn update_de(d: &mut S62, e: &mut S62, t: &[i64; 4], m: &S62, m_inv62: u64) {
    let [u, v, q, r] = *t;
    let (sd, se) = (d[4] >> 63, e[4] >> 63);
    let mut md = (u & sd) + (v & se);
    let mut me = (q & sd) + (r & se);
    let (u, v, q, r) = (i128::from(u), i128::from(v), i128::from(q), i128::from(r));
    let mut cd = u * d[0] as i128 + v * e[0] as i128;
    let mut ce = q * d[0] as i128 + r * e[0] as i128;
    md -= (m_inv62.wrapping_mul(cd as u64).wrapping_add(md as u64) & M62) as i64;
    me -= (m_inv62.wrapping_mul(ce as u64).wrapping_add(me as u64) & M62) as i64;
    let (md, me) = (i128::from(md), i128::from(me));
    cd += m[0] as i128 * md;
    ce += m[0] as i128 * me;
    debug_assert!(cd as u64 & M62 == 0 && ce as u64 & M62 == 0);
    cd >>= 62;
    ce >>= 62;
    for i in 1..5 {
        cd += u * d[i] as i128 + v * e[i] as i128 + m[i] as i128 * md;
        ce += q * d[i] as i128 + r * e[i] as i128 + m[i] as i128 * me;
        d[i - 1] = (cd as u64 & M62) as i64;
        e[i - 1] = (ce as u64 & M62) as i64;
        cd >>= 62;
        ce >>= 62;
    }
    d[4] = cd as i64;
    e[4] = ce as i64;
}

/// `x + k M`, with the limbs' carries propagated (limbs 0..4 back in `[0, 2^62)`).
fn add_multiple(x: &S62, m: &S62, k: i64) -> S62 {
    let mut out = [0i64; 5];
    let mut carry = 0i128;
    for i in 0..5 {
        carry += x[i] as i128 + m[i] as i128 * k as i128;
        out[i] = if i < 4 {
            (carry as u64 & M62) as i64
        } else {
            carry as i64
        };
        carry >>= 62;
    }
    out
}

/// `x^-1 mod m` for `0 < x < m`, `m` odd, `m < 2^255`; `m_inv62` is
/// `m^-1 mod 2^62`. The result is canonical.
pub fn invert(x: &[u64; 4], m: &[u64; 4], m_inv62: u64) -> [u64; 4] {
    let ms = to_s62(m);
    let (mut d, mut e): (S62, S62) = ([0; 5], [1, 0, 0, 0, 0]);
    let (mut f, mut g) = (ms, to_s62(x));
    let mut eta = -1i64;
    while g != [0; 5] {
        let (next, t) = divsteps_62(eta, f[0] as u64, g[0] as u64);
        eta = next;
        update_de(&mut d, &mut e, &t, &ms, m_inv62);
        update_fg(&mut f, &mut g, &t);
    }
    // f = ±1 and d is in (-2M, M): bring ±d into [0, M).
    debug_assert!(
        f == [1, 0, 0, 0, 0] || f == [M62 as i64, M62 as i64, M62 as i64, M62 as i64, -1]
    );
    if d[4] < 0 {
        d = add_multiple(&d, &ms, 1);
    }
    if f[4] < 0 {
        d = add_multiple(&[0; 5], &d, -1);
    }
    if d[4] < 0 {
        d = add_multiple(&d, &ms, 1);
    }
    from_s62(&d)
}

/// `m^-1 mod 2^62` for odd `m`.
pub const fn inv62(m: u64) -> u64 {
    super::neg_inv(m).wrapping_neg() & M62
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{FieldParams, FqParams, FrParams};

    fn check<P: FieldParams>(xs: &[[u64; 4]]) {
        let m = P::MODULUS;
        let mut e = m;
        e[0] -= 2;
        for x in xs {
            let got = invert(x, &m, inv62(m[0]));
            // x^(p-2) on plain integers, through the Montgomery field: from
            // and back to canonical form around Fermat.
            let fx = crate::field::Fp::<P>::from_canonical(*x);
            let want = fx.pow(&e).to_canonical();
            assert_eq!(got, want, "inverse of {x:x?}");
        }
    }

    fn samples<P: FieldParams>() -> Vec<[u64; 4]> {
        let m = P::MODULUS;
        let mut xs = vec![
            [1, 0, 0, 0],
            [2, 0, 0, 0],
            [3, 0, 0, 0],
            [m[0] - 1, m[1], m[2], m[3]],
            [m[0] - 2, m[1], m[2], m[3]],
            [0, 0, 0, 1],
            [u64::MAX, u64::MAX, u64::MAX, m[3] >> 1],
            [0, 0, 1 << 62, 0],
        ];
        let mut s = 0x9e3779b97f4a7c15u64;
        for _ in 0..2000 {
            let mut x = [0u64; 4];
            for l in x.iter_mut() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *l = s;
            }
            x[3] %= m[3];
            if x != [0; 4] {
                xs.push(x);
            }
        }
        xs
    }

    #[test]
    fn divsteps_inverse_matches_fermat_in_both_fields() {
        check::<FqParams>(&samples::<FqParams>());
        check::<FrParams>(&samples::<FrParams>());
    }

    #[test]
    fn limbs_round_trip() {
        let x = [
            0x0123456789abcdef,
            0xfedcba9876543210,
            0x0f1e2d3c4b5a6978,
            0x3064f00dbeefcafe,
        ];
        assert_eq!(from_s62(&to_s62(&x)), x);
    }
}

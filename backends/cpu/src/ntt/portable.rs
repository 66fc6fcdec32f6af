//! The portable NTT on 64-bit arithmetic: decimation in time after a
//! bit-reversal permutation, the early stages block by block so each block
//! stays in cache, later stages split across threads; from 2^12 up a
//! four-step transform over rows of eight.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::field::Fr;

use super::{root_of_unity, twiddles};

/// Elements per cache block for the early stages (256 KiB).
const BLOCK_LOG: u32 = 13;

fn bit_reverse(v: &mut [Fr], log_n: u32) {
    if log_n == 0 {
        return;
    }
    let shift = usize::BITS - log_n;
    for i in 0..v.len() {
        let j = i.reverse_bits() >> shift;
        if i < j {
            v.swap(i, j);
        }
    }
}

#[inline(always)]
fn butterfly(a: &mut Fr, b: &mut Fr, w: &Fr) {
    let t = b.mul(w);
    *b = a.sub(&t);
    *a = a.add(&t);
}

/// A butterfly whose twiddle is one (the first of every stage).
#[inline(always)]
fn butterfly_one(a: &mut Fr, b: &mut Fr) {
    let t = *b;
    *b = a.sub(&t);
    *a = a.add(&t);
}

/// Runs stages `from..to` inside one block whose length is a multiple of 2^to.
fn stages_in_block(block: &mut [Fr], tw: &[Fr], from: u32, to: u32) {
    for s in from..to {
        let h = 1usize << s;
        let t = &tw[h - 1..2 * h - 1];
        for group in block.chunks_mut(2 * h) {
            let (lo, hi) = group.split_at_mut(h);
            butterfly_one(&mut lo[0], &mut hi[0]);
            for ((a, b), w) in lo.iter_mut().zip(hi.iter_mut()).zip(t).skip(1) {
                butterfly(a, b, w);
            }
        }
    }
}

/// Sizes from which the portable path uses the four-step method.
const FOUR_STEP_MIN_LOG: u32 = 12;

/// Eight adjacent columns, one element each.
type Row8 = [Fr; 8];

/// Butterflies on values kept below 4r instead of below r (Harvey's lazy
/// reduction): Fr's modulus is under 2^256 / 5, so a Montgomery product of
/// a value below 4r and a twiddle below r is below 2r without its final
/// subtraction, and sums below 4r fit four limbs. Each butterfly makes one
/// conditional subtraction instead of three; a column is brought below r
/// once, after its last stage.
mod lazy {
    use crate::field::{FieldParams, Fr, FrParams, adc, sbb, select};

    const _: () = assert!(Fr::LAZY_OK);

    const R: [u64; 4] = FrParams::MODULUS;
    const TWO_R: [u64; 4] = {
        let m = FrParams::MODULUS;
        [
            m[0] << 1,
            (m[1] << 1) | (m[0] >> 63),
            (m[2] << 1) | (m[1] >> 63),
            (m[3] << 1) | (m[2] >> 63),
        ]
    };

    /// `x - c` where `x >= c`, else `x`; branch free.
    #[inline(always)]
    fn sub_if_ge(x: [u64; 4], c: &[u64; 4]) -> [u64; 4] {
        let mut borrow = 0u64;
        let d = [
            sbb(x[0], c[0], &mut borrow),
            sbb(x[1], c[1], &mut borrow),
            sbb(x[2], c[2], &mut borrow),
            sbb(x[3], c[3], &mut borrow),
        ];
        select(borrow, x, d)
    }

    #[inline(always)]
    fn add(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
        let mut c = 0u64;
        [
            adc(a[0], b[0], &mut c),
            adc(a[1], b[1], &mut c),
            adc(a[2], b[2], &mut c),
            adc(a[3], b[3], &mut c),
        ]
    }

    /// `a + 2r - b` for `a, b < 2r`: in (0, 4r).
    #[inline(always)]
    fn sub_plus_2r(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
        let s = add(a, TWO_R);
        let mut borrow = 0u64;
        [
            sbb(s[0], b[0], &mut borrow),
            sbb(s[1], b[1], &mut borrow),
            sbb(s[2], b[2], &mut borrow),
            sbb(s[3], b[3], &mut borrow),
        ]
    }

    /// `(a, b) <- (a + b w, a - b w)` for `a, b < 4r`, `w < r`; out below 4r.
    #[inline(always)]
    pub fn butterfly(a: &mut Fr, b: &mut Fr, w: &Fr) {
        let x = sub_if_ge(a.0, &TWO_R);
        let t = b.mul_lazy(w).0;
        a.0 = add(x, t);
        b.0 = sub_plus_2r(x, t);
    }

    /// The same with `w = 1`.
    #[inline(always)]
    pub fn butterfly_one(a: &mut Fr, b: &mut Fr) {
        let x = sub_if_ge(a.0, &TWO_R);
        let t = sub_if_ge(b.0, &TWO_R);
        a.0 = add(x, t);
        b.0 = sub_plus_2r(x, t);
    }

    /// Brings a value below 4r below r.
    #[inline(always)]
    pub fn normalize(a: &mut Fr) {
        a.0 = sub_if_ge(sub_if_ge(a.0, &TWO_R), &R);
    }
}

/// DIT NTT down eight columns at once (element k of column l is `v[k][l]`);
/// eight independent multiplications per step keep the core busy. Inputs
/// below 4r; outputs below r when `normalize`, else below 4r (for a
/// multiplication that follows, which accepts them).
fn column_ntt8(v: &mut [Row8], log_m: u32, tw: &[Fr], normalize: bool) {
    bit_reverse_rows(v, log_m);
    for s in 0..log_m {
        let h = 1usize << s;
        let t = &tw[h - 1..2 * h - 1];
        for group in v.chunks_mut(2 * h) {
            let (lo, hi) = group.split_at_mut(h);
            for l in 0..8 {
                lazy::butterfly_one(&mut lo[0][l], &mut hi[0][l]);
            }
            for ((a, b), w) in lo.iter_mut().zip(hi.iter_mut()).zip(t).skip(1) {
                for l in 0..8 {
                    lazy::butterfly(&mut a[l], &mut b[l], w);
                }
            }
        }
    }
    if normalize {
        for row in v.iter_mut() {
            for x in row.iter_mut() {
                lazy::normalize(x);
            }
        }
    }
}

fn bit_reverse_rows(v: &mut [Row8], log_m: u32) {
    if log_m == 0 {
        return;
    }
    let shift = usize::BITS - log_m;
    for i in 0..v.len() {
        let j = i.reverse_bits() >> shift;
        if i < j {
            v.swap(i, j);
        }
    }
}

/// `v[k][l] *= t_l * step_l^k`, for `v` below 4r; the results below r.
fn scale_rows(v: &mut [Row8], mut t: Row8, step: Row8) {
    for row in v.iter_mut() {
        for l in 0..8 {
            row[l] = row[l].mul(&t[l]);
            t[l] = t[l].mul(&step[l]);
        }
    }
}

/// [`scale_rows`] with the results left below 2r ([`Fr::mul_lazy`]), for
/// the column NTTs that follow, which accept them.
fn scale_rows_lazy(v: &mut [Row8], mut t: Row8, step: Row8) {
    for row in v.iter_mut() {
        for l in 0..8 {
            row[l] = row[l].mul_lazy(&t[l]);
            t[l] = t[l].mul(&step[l]);
        }
    }
}

/// One element of the ABI's bytes (a canonical integer, or one at or above
/// r, reduced), read as the Montgomery residue (see `super`).
#[inline(always)]
fn read(b: &[u8]) -> Fr {
    let mut w = [0u8; 32];
    w.copy_from_slice(b);
    Fr::from_mont(Fr::reduce(crate::field::limbs_from_bytes(&w)))
}

/// Eight adjacent elements (256 bytes).
#[inline(always)]
fn read8(b: &[u8]) -> Row8 {
    std::array::from_fn(|l| read(&b[32 * l..32 * l + 32]))
}

#[inline(always)]
fn write8(row: &Row8, out: &mut [u8]) {
    for (x, o) in row.iter().zip(out.chunks_exact_mut(32)) {
        o.copy_from_slice(&crate::field::limbs_to_bytes(&x.0));
    }
}

/// The transposed matrix between the two passes, kept between calls so a
/// large transform does not fault in fresh memory each time.
static SPARE: Mutex<Vec<Fr>> = Mutex::new(Vec::new());

thread_local! {
    /// A worker's column buffer, kept for the same reason.
    static COLUMN: RefCell<Vec<Row8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's column buffer, `len` rows long.
fn with_column<R>(len: usize, f: impl FnOnce(&mut [Row8]) -> R) -> R {
    COLUMN.with(|c| {
        let mut c = c.borrow_mut();
        c.resize(len, [Fr::ZERO; 8]);
        f(&mut c[..len])
    })
}

/// Per-element factors of the four-step, precomputed once per size and
/// kept between calls: multiplying by a stored factor is one
/// multiplication an element, computing it as a running power two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factors {
    /// After the first column NTTs: `scale * w^(c k1)` for column `c`, row `k1`.
    Twiddles { log_n: u32, inverse: bool },
    /// Before them (a forward coset transform): `g^(k n2 + c)` for input row `k`.
    CosetIn { log_n: u32, g: [u64; 4] },
    /// After the second column NTTs (an inverse coset transform):
    /// `g^(c + k2 n1)` for column `c` of the middle matrix, output row `k2`.
    CosetOut { log_n: u32, g: [u64; 4] },
}

/// Memory the kept factor tables may take in all (a 2^20 transform's table
/// is 32 MiB; a Groth16 proof at 2^20 uses three).
const FACTORS_BUDGET: usize = 160 << 20;

/// Kept factor tables, the most recently used first.
static FACTORS: Mutex<Vec<(Factors, Arc<Vec<Row8>>)>> = Mutex::new(Vec::new());

/// The table of `key`, built by `build` (rows of eight columns, group by
/// group, `rows` rows a group) the first time; `None` when it would not fit
/// [`FACTORS_BUDGET`] (the caller then computes running powers).
fn factors(
    key: Factors,
    n: usize,
    rows: usize,
    budget: usize,
    build: impl Fn(usize) -> (Row8, Row8) + Sync,
) -> Option<Arc<Vec<Row8>>> {
    let bytes = n * std::mem::size_of::<Fr>();
    if bytes > budget {
        return None;
    }
    if let Ok(mut kept) = FACTORS.lock()
        && let Some(at) = kept.iter().position(|(k, _)| *k == key)
    {
        let hit = kept.remove(at);
        let table = hit.1.clone();
        kept.insert(0, hit);
        return Some(table);
    }
    // Group `g`'s rows start at `build(g).0` and advance by `build(g).1`.
    let mut table = vec![[Fr::ZERO; 8]; n / 8];
    table
        .par_chunks_mut(rows)
        .enumerate()
        .for_each(|(g, group)| {
            let (mut t, step) = build(g);
            for row in group {
                *row = t;
                for l in 0..8 {
                    t[l] = t[l].mul(&step[l]);
                }
            }
        });
    let table = Arc::new(table);
    if let Ok(mut kept) = FACTORS.lock() {
        kept.insert(0, (key, table.clone()));
        let mut total = 0;
        kept.retain(|(_, t)| {
            total += t.len() * std::mem::size_of::<Row8>();
            total <= FACTORS_BUDGET
        });
    }
    Some(table)
}

/// `v[k][l] *= f[k][l]` for `v` below 4r and factors below r; the results
/// below 2r ([`Fr::mul_lazy`]).
fn scale_by_table_lazy(v: &mut [Row8], f: &[Row8]) {
    for (row, t) in v.iter_mut().zip(f) {
        for l in 0..8 {
            row[l] = row[l].mul_lazy(&t[l]);
        }
    }
}

/// `v[k][l] *= f[k][l]`, the results below r.
fn scale_by_table(v: &mut [Row8], f: &[Row8]) {
    for (row, t) in v.iter_mut().zip(f) {
        for l in 0..8 {
            row[l] = row[l].mul(&t[l]);
        }
    }
}

/// The four-step transform (see `super::ifma` for the method) on the ABI's
/// bytes: column NTTs of size n1 over eight adjacent columns at a time read
/// straight from the bytes, twiddles, a transpose fused into the write to
/// the middle matrix, then column NTTs of size n2 written straight back.
fn transform_four_step(data: &mut [u8], log_n: u32, inverse: bool, coset: Option<Fr>) {
    four_step(data, log_n, inverse, coset, FACTORS_BUDGET);
}

/// [`transform_four_step`] with factor tables only when one fits `budget`
/// (otherwise running powers, as for sizes past [`FACTORS_BUDGET`]).
fn four_step(data: &mut [u8], log_n: u32, inverse: bool, coset: Option<Fr>, budget: usize) {
    let (log1, log2) = (log_n - log_n / 2, log_n / 2);
    let (n1, n2) = (1usize << log1, 1usize << log2);
    let n = n1 * n2;
    let (tw1, tw2) = (twiddles(log1, inverse), twiddles(log2, inverse));
    let mut w = root_of_unity(log_n);
    let mut scale = Fr::ONE;
    if inverse {
        w = w.inverse().unwrap_or(Fr::ONE);
        scale = Fr::from_canonical([n as u64, 0, 0, 0])
            .inverse()
            .unwrap_or(Fr::ONE);
    }
    let lanes = |g: Fr, start: usize, c: Fr| -> Row8 {
        let mut acc = c.mul(&g.pow(&[start as u64]));
        std::array::from_fn(|_| {
            let x = acc;
            acc = acc.mul(&g);
            x
        })
    };
    // The factors, from the kept tables when they fit.
    let twiddle_table = factors(Factors::Twiddles { log_n, inverse }, n, n1, budget, |g| {
        (
            [scale; 8],
            std::array::from_fn(|l| w.pow(&[(8 * g + l) as u64])),
        )
    });
    let coset_in = match (coset, inverse) {
        (Some(c), false) => Some((
            c,
            factors(Factors::CosetIn { log_n, g: c.0 }, n, n1, budget, |g| {
                (lanes(c, 8 * g, Fr::ONE), [c.pow(&[n2 as u64]); 8])
            }),
        )),
        _ => None,
    };
    let coset_out = match (coset, inverse) {
        (Some(c), true) => {
            let ci = c.inverse().unwrap_or(Fr::ONE);
            Some((
                ci,
                factors(Factors::CosetOut { log_n, g: ci.0 }, n, n2, budget, |h| {
                    (lanes(ci, 8 * h, Fr::ONE), [ci.pow(&[n1 as u64]); 8])
                }),
            ))
        }
        _ => None,
    };
    // Steps 1-3: columns 8g..8g+8 become rows 8g..8g+8 of the n2 x n1 matrix `mid`.
    let mut mid = SPARE
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    mid.clear();
    mid.resize(n, Fr::ZERO);
    let input: &[u8] = data;
    mid.par_chunks_mut(8 * n1)
        .enumerate()
        .for_each(|(g, rows)| {
            with_column(n1, |col| {
                for (k, row) in col.iter_mut().enumerate() {
                    let at = (k * n2 + 8 * g) * 32;
                    *row = read8(&input[at..at + 256]);
                }
                match &coset_in {
                    Some((_, Some(t))) => scale_by_table_lazy(col, &t[g * n1..(g + 1) * n1]),
                    Some((c, None)) => {
                        scale_rows(col, lanes(*c, 8 * g, Fr::ONE), [c.pow(&[n2 as u64]); 8])
                    }
                    None => {}
                }
                column_ntt8(col, log1, &tw1, false);
                match &twiddle_table {
                    Some(t) => scale_by_table_lazy(col, &t[g * n1..(g + 1) * n1]),
                    None => {
                        let step: Row8 = std::array::from_fn(|l| w.pow(&[(8 * g + l) as u64]));
                        scale_rows_lazy(col, [scale; 8], step);
                    }
                }
                for (k1, row) in col.iter().enumerate() {
                    for l in 0..8 {
                        rows[l * n1 + k1] = row[l];
                    }
                }
            })
        });
    // Step 4: columns 8h..8h+8 of `mid`, written to rows k2 of the output.
    let mut per_group: Vec<Vec<&mut [u8]>> = (0..n1 / 8).map(|_| Vec::with_capacity(n2)).collect();
    for (i, seg) in data.chunks_exact_mut(256).enumerate() {
        per_group[i % (n1 / 8)].push(seg);
    }
    {
        let mid = &mid;
        per_group
            .into_par_iter()
            .enumerate()
            .for_each(|(h, mut segs)| {
                with_column(n2, |col| {
                    for (i2, row) in col.iter_mut().enumerate() {
                        *row = std::array::from_fn(|l| mid[i2 * n1 + 8 * h + l]);
                    }
                    column_ntt8(col, log2, &tw2, coset_out.is_none());
                    match &coset_out {
                        Some((_, Some(t))) => scale_by_table(col, &t[h * n2..(h + 1) * n2]),
                        Some((ci, None)) => {
                            scale_rows(col, lanes(*ci, 8 * h, Fr::ONE), [ci.pow(&[n1 as u64]); 8])
                        }
                        None => {}
                    }
                    for (k2, row) in col.iter().enumerate() {
                        write8(row, segs[k2]);
                    }
                })
            });
    }
    if let Ok(mut s) = SPARE.lock()
        && s.capacity() < mid.capacity()
    {
        *s = mid;
    }
}

/// The transform of one vector of `2^log_n` elements of the ABI (32-byte
/// little-endian integers), in place.
pub fn transform_bytes(data: &mut [u8], log_n: u32, inverse: bool, coset: Option<Fr>) {
    if log_n >= FOUR_STEP_MIN_LOG {
        return transform_four_step(data, log_n, inverse, coset);
    }
    let mut v: Vec<Fr> = data.chunks_exact(32).map(read).collect();
    transform(&mut v, log_n, inverse, coset);
    for (x, o) in v.iter().zip(data.chunks_exact_mut(32)) {
        o.copy_from_slice(&crate::field::limbs_to_bytes(&x.0));
    }
}

/// The in-place transform of one vector of `2^log_n` elements.
/// Meant for sizes below the four-step's (any size works).
pub fn transform(v: &mut [Fr], log_n: u32, inverse: bool, coset: Option<Fr>) {
    let n = 1usize << log_n;
    debug_assert_eq!(v.len(), n);
    if let (Some(g), false) = (coset, inverse) {
        scale_by_powers(v, g, Fr::ONE);
    }
    bit_reverse(v, log_n);
    let tw = twiddles(log_n, inverse);
    let block_log = BLOCK_LOG.min(log_n);
    v.par_chunks_mut(1 << block_log)
        .for_each(|b| stages_in_block(b, &tw, 0, block_log));
    for s in block_log..log_n {
        let h = 1usize << s;
        let t = &tw[h - 1..2 * h - 1];
        const PIECE: usize = 1 << 10;
        v.par_chunks_mut(2 * h).for_each(|group| {
            let (lo, hi) = group.split_at_mut(h);
            lo.par_chunks_mut(PIECE)
                .zip(hi.par_chunks_mut(PIECE))
                .zip(t.par_chunks(PIECE))
                .for_each(|((a, b), w)| {
                    for ((x, y), w) in a.iter_mut().zip(b.iter_mut()).zip(w) {
                        butterfly(x, y, w);
                    }
                });
        });
    }
    if inverse {
        let n_inv = Fr::from_canonical([n as u64, 0, 0, 0])
            .inverse()
            .unwrap_or(Fr::ONE);
        match coset {
            Some(g) => scale_by_powers(v, g.inverse().unwrap_or(Fr::ONE), n_inv),
            None => v.par_iter_mut().for_each(|x| *x = x.mul(&n_inv)),
        }
    }
}

/// `v[i] *= c * g^i`.
fn scale_by_powers(v: &mut [Fr], g: Fr, c: Fr) {
    const CHUNK: usize = 1 << 12;
    v.par_chunks_mut(CHUNK).enumerate().for_each(|(k, chunk)| {
        let mut acc = g.pow(&[(k * CHUNK) as u64]).mul(&c);
        for x in chunk {
            *x = x.mul(&acc);
            acc = acc.mul(&g);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept factor tables and the running powers (what sizes past the
    /// budget use) give the same transforms, forward, inverse and coset.
    #[test]
    fn factor_tables_and_running_powers_agree() {
        let log_n = 13;
        let n = 1usize << log_n;
        let data: Vec<u8> = (0..n)
            .flat_map(|i| {
                let x = Fr::from_canonical([i as u64 * 0x9e37_79b9 + 1, i as u64, 3, 1]);
                crate::field::limbs_to_bytes(&x.to_canonical())
            })
            .collect();
        let g = Fr::from_canonical([7, 0, 0, 0]);
        for (inverse, coset) in [
            (false, None),
            (true, None),
            (false, Some(g)),
            (true, Some(g)),
        ] {
            let mut tables = data.clone();
            let mut powers = data.clone();
            // Twice with tables: built, then read back from the cache.
            for _ in 0..2 {
                tables.copy_from_slice(&data);
                four_step(&mut tables, log_n, inverse, coset, FACTORS_BUDGET);
            }
            four_step(&mut powers, log_n, inverse, coset, 0);
            assert!(
                tables == powers,
                "inverse {inverse}, coset {}",
                coset.is_some()
            );
        }
    }
}

//! The portable NTT on 64-bit arithmetic: decimation in time after a
//! bit-reversal permutation, the early stages block by block so each block
//! stays in cache, later stages split across threads; from 2^12 up a
//! four-step transform over rows of eight.

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

/// DIT NTT down eight columns at once (element k of column l is `v[k][l]`);
/// eight independent multiplications per step keep the core busy.
fn column_ntt8(v: &mut [Row8], log_m: u32, tw: &[Fr]) {
    bit_reverse_rows(v, log_m);
    for s in 0..log_m {
        let h = 1usize << s;
        let t = &tw[h - 1..2 * h - 1];
        for group in v.chunks_mut(2 * h) {
            let (lo, hi) = group.split_at_mut(h);
            for (j, ((a, b), w)) in lo.iter_mut().zip(hi.iter_mut()).zip(t).enumerate() {
                for l in 0..8 {
                    if j == 0 {
                        butterfly_one(&mut a[l], &mut b[l]);
                    } else {
                        butterfly(&mut a[l], &mut b[l], w);
                    }
                }
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

/// `v[k][l] *= t_l * step_l^k`.
fn scale_rows(v: &mut [Row8], mut t: Row8, step: Row8) {
    for row in v.iter_mut() {
        for l in 0..8 {
            row[l] = row[l].mul(&t[l]);
            t[l] = t[l].mul(&step[l]);
        }
    }
}

/// The four-step transform (see `super::ifma` for the method): column NTTs of
/// size n1 over eight adjacent columns at a time, twiddles, a transpose
/// fused into the write-back, then column NTTs of size n2.
fn transform_four_step(v: &mut [Fr], log_n: u32, inverse: bool, coset: Option<Fr>) {
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
    // Steps 1-3: columns 8g..8g+8 become rows 8g..8g+8 of the n2 x n1 matrix `mid`.
    let mut mid = vec![Fr::ZERO; n];
    let input: &[Fr] = v;
    mid.par_chunks_mut(8 * n1)
        .enumerate()
        .for_each(|(g, rows)| {
            let mut col: Vec<Row8> = (0..n1)
                .map(|k| std::array::from_fn(|l| input[k * n2 + 8 * g + l]))
                .collect();
            if let (Some(c), false) = (coset, inverse) {
                scale_rows(&mut col, lanes(c, 8 * g, Fr::ONE), [c.pow(&[n2 as u64]); 8]);
            }
            column_ntt8(&mut col, log1, &tw1);
            let step: Row8 = std::array::from_fn(|l| w.pow(&[(8 * g + l) as u64]));
            scale_rows(&mut col, [scale; 8], step);
            for (k1, row) in col.iter().enumerate() {
                for l in 0..8 {
                    rows[l * n1 + k1] = row[l];
                }
            }
        });
    // Step 4: columns 8h..8h+8 of `mid`, written to rows k2 of the output.
    let mut per_group: Vec<Vec<&mut [Fr]>> = (0..n1 / 8).map(|_| Vec::with_capacity(n2)).collect();
    for (i, seg) in v.chunks_exact_mut(8).enumerate() {
        per_group[i % (n1 / 8)].push(seg);
    }
    let mid = &mid;
    per_group
        .into_par_iter()
        .enumerate()
        .for_each(|(h, mut segs)| {
            let mut col: Vec<Row8> = (0..n2)
                .map(|i2| std::array::from_fn(|l| mid[i2 * n1 + 8 * h + l]))
                .collect();
            column_ntt8(&mut col, log2, &tw2);
            if let (Some(c), true) = (coset, inverse) {
                let ci = c.inverse().unwrap_or(Fr::ONE);
                scale_rows(
                    &mut col,
                    lanes(ci, 8 * h, Fr::ONE),
                    [ci.pow(&[n1 as u64]); 8],
                );
            }
            for (k2, row) in col.iter().enumerate() {
                segs[k2].copy_from_slice(row);
            }
        });
}

/// The in-place transform of one vector of `2^log_n` elements.
pub fn transform(v: &mut [Fr], log_n: u32, inverse: bool, coset: Option<Fr>) {
    if log_n >= FOUR_STEP_MIN_LOG {
        return transform_four_step(v, log_n, inverse, coset);
    }
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

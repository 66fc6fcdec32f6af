//! The NTT on AVX-512 IFMA, by the four-step method.
//!
//! With n = n1 * n2, the input is read as n1 rows of n2 columns:
//! 1. an NTT of size n1 down every column, eight adjacent columns at a time
//!    (one column per lane, so no lane ever talks to another);
//! 2. element (k1, i2) multiplied by w^(i2 k1);
//! 3. the matrix transposed (fused into the write-back of step 1);
//! 4. an NTT of size n2 down every column of the transposed matrix, again
//!    eight columns at a time, written straight out in natural order.
//!
//! Each small NTT runs on a scratch copy that stays in cache. Values are 52-bit
//! limbs; as on the portable path, inputs are not converted into Montgomery
//! form (the transform is linear), so outputs come out canonical.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::{root_of_unity, twiddles};
use crate::field::ifma::{FR, Field8, V8, to52, transpose_u64, unpack};
use crate::field::{Fr, limbs_from_bytes};

/// Smallest size this path takes (smaller ones run portable).
pub const MIN_LOG: u32 = 6;

/// Portable Montgomery values to 52-bit Montgomery limbs, eight at a time.
#[target_feature(enable = "avx512f,avx512ifma")]
fn to_mont52(values: &[Fr]) -> Vec<[u64; 5]> {
    let f = Field8::new(&FR);
    let mut out = Vec::with_capacity(values.len());
    for group in values.chunks(8) {
        let mut lanes = [[0u64; 5]; 8];
        for (l, v) in group.iter().enumerate() {
            lanes[l] = to52(&v.to_canonical());
        }
        let m = f.to_mont(&V8::from_lanes(&lanes)).to_lanes();
        out.extend_from_slice(&m[..group.len()]);
    }
    out
}

/// The twiddle table of a size-2^log_m DIT NTT in 52-bit form (same layout
/// as the portable table: stage s at `[2^s - 1, 2^(s+1) - 1)`), cached.
fn twiddles52(log_m: u32, inverse: bool) -> Arc<Vec<[u64; 5]>> {
    static CACHE: super::TableCache<[u64; 5]> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(t) = cache
        .lock()
        .ok()
        .and_then(|c| c.get(&(log_m, inverse)).cloned())
    {
        return t;
    }
    let portable = twiddles(log_m, inverse);
    // SAFETY: this module runs only where the CPU has IFMA (see `dispatch`).
    let t = Arc::new(unsafe { to_mont52(&portable) });
    if let Ok(mut c) = cache.lock() {
        c.insert((log_m, inverse), t.clone());
    }
    t
}

/// `[c * g^(start + l * step) for l in 0..8]` and `g^(8 * step)`... as vectors:
/// returns (first, stride) with first lane l = c * g^(start + l), stride = g^8.
fn lane_powers(g: Fr, start: u64, c: Fr) -> ([Fr; 8], Fr) {
    let first = c.mul(&g.pow(&[start]));
    let mut lanes = [Fr::ZERO; 8];
    let mut acc = first;
    for l in lanes.iter_mut() {
        *l = acc;
        acc = acc.mul(&g);
    }
    (lanes, g.pow(&[8]))
}

#[target_feature(enable = "avx512f,avx512ifma")]
fn splat52(f: &Field8, x: &Fr) -> V8 {
    let lanes = to_mont52(&[*x]);
    let _ = f;
    V8::splat(&lanes[0])
}

#[target_feature(enable = "avx512f,avx512ifma")]
fn vec52(values: &[Fr; 8]) -> V8 {
    let m = to_mont52(values);
    let mut lanes = [[0u64; 5]; 8];
    lanes.copy_from_slice(&m);
    V8::from_lanes(&lanes)
}

/// Stages `from..to` of a DIT NTT on `v` (whose length is a multiple of
/// 2^to); each twiddle is broadcast once per stage. Values stay below 2p
/// (lazy reduction); callers make them canonical at the end.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn stages(f: &Field8, v: &mut [V8], from: u32, to: u32, tw: &[[u64; 5]]) {
    for s in from..to {
        let h = 1usize << s;
        let t = &tw[h - 1..2 * h - 1];
        for (j, w) in t.iter().enumerate() {
            let w = V8::splat(w);
            let mut i = j;
            while i < v.len() {
                // The first twiddle of every stage is one.
                let x = if j == 0 {
                    v[i + h]
                } else {
                    f.mul_lazy(&v[i + h], &w)
                };
                let a = v[i];
                v[i + h] = f.sub_lazy(&a, &x);
                v[i] = f.add_lazy(&a, &x);
                i += 2 * h;
            }
        }
    }
}

/// In-place DIT NTT of `v` (length 2^log_m) with scalar twiddles `tw`
/// applied to every lane (each lane is an independent column). The early
/// stages run on 64-element pieces that stay in L1.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn column_ntt(f: &Field8, v: &mut [V8], log_m: u32, tw: &[[u64; 5]]) {
    let m = v.len();
    let shift = usize::BITS - log_m;
    for i in 0..m {
        let j = i.reverse_bits() >> shift;
        if i < j {
            v.swap(i, j);
        }
    }
    let inner = log_m.min(6);
    for piece in v.chunks_mut(1 << inner) {
        stages(f, piece, 0, inner, tw);
    }
    stages(f, v, inner, log_m, tw);
}

/// Eight elements from 256 bytes (reduced below r), as raw 52-bit limbs.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn read8(bytes: &[u8]) -> V8 {
    debug_assert!(bytes.len() >= 256);
    let offsets = _mm512_setr_epi64(0, 32, 64, 96, 128, 160, 192, 224);
    let word = |k: i64| {
        let idx = _mm512_add_epi64(offsets, _mm512_set1_epi64(8 * k));
        // SAFETY: offsets are at most 224 + 24 + 8 = 256 bytes into `bytes`,
        // which holds 256; gathers allow unaligned elements.
        unsafe { _mm512_i64gather_epi64::<1>(idx, bytes.as_ptr().cast()) }
    };
    let w = [word(0), word(1), word(2), word(3)];
    // Values at or above r are rare (r's top word is 0x30644e72e131a029): reduce them one by one.
    let top = _mm512_set1_epi64(FR_TOP as i64);
    if _mm512_cmpge_epu64_mask(w[3], top) != 0 {
        let mut lanes = [[0u64; 5]; 8];
        for (l, c) in bytes.chunks(32).take(8).enumerate() {
            let mut b = [0u8; 32];
            b.copy_from_slice(c);
            lanes[l] = to52(&Fr::reduce(limbs_from_bytes(&b)));
        }
        return V8::from_lanes(&lanes);
    }
    unpack(w)
}

const FR_TOP: u64 = <crate::field::FrParams as crate::field::FieldParams>::MODULUS[3];

/// Writes eight canonical elements (52-bit limbs) as 256 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn write8(seg: &mut [u8], v: &V8) {
    assert!(seg.len() >= 256);
    let l = &v.0;
    let w = [
        _mm512_or_si512(l[0], _mm512_slli_epi64::<52>(l[1])),
        _mm512_or_si512(_mm512_srli_epi64::<12>(l[1]), _mm512_slli_epi64::<40>(l[2])),
        _mm512_or_si512(_mm512_srli_epi64::<24>(l[2]), _mm512_slli_epi64::<28>(l[3])),
        _mm512_or_si512(_mm512_srli_epi64::<36>(l[3]), _mm512_slli_epi64::<16>(l[4])),
    ];
    let z = _mm512_setzero_si512();
    let per_element = transpose_u64([w[0], w[1], w[2], w[3], z, z, z, z]);
    for (e, x) in per_element.iter().enumerate() {
        // SAFETY: `seg` holds 256 bytes (checked above); element e's four words
        // go to bytes 32e..32e+32.
        unsafe { _mm512_mask_storeu_epi64(seg.as_mut_ptr().add(32 * e).cast(), 0x0f, *x) };
    }
}

/// Transposes an 8x8 tile of elements: `out[i]` lane `l` = `tile[l]` lane `i`.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn transpose8(tile: &[V8]) -> [V8; 8] {
    let mut out = [V8([_mm512_setzero_si512(); 5]); 8];
    for j in 0..5 {
        let rows: [__m512i; 8] = std::array::from_fn(|l| tile[l].0[j]);
        for (i, v) in transpose_u64(rows).into_iter().enumerate() {
            out[i].0[j] = v;
        }
    }
    out
}

struct Plan {
    log1: u32,
    log2: u32,
    inverse: bool,
    coset: Option<Fr>,
}

/// Steps 1-3 for columns `8g..8g+8`: returns the transposed rows `8g..8g+8`
/// of the intermediate matrix (n2 rows of n1 elements, blocked by 8).
#[target_feature(enable = "avx512f,avx512ifma")]
fn first_pass(p: &Plan, input: &[u8], g: usize, out_rows: &mut [V8]) {
    let f = Field8::new(&FR);
    let (n1, n2) = (1usize << p.log1, 1usize << p.log2);
    let n = n1 * n2;
    let mut col: Vec<V8> = (0..n1)
        .map(|k| {
            let at = (k * n2 + 8 * g) * 32;
            read8(&input[at..at + 256])
        })
        .collect();
    if let (Some(c), false) = (p.coset, p.inverse) {
        // x[i] *= c^i with i = k n2 + 8g + l.
        let (first, _) = lane_powers(c, 8 * g as u64, Fr::ONE);
        let mut t = vec52(&first);
        let step = splat52(&f, &c.pow(&[n2 as u64]));
        for x in col.iter_mut() {
            *x = f.mul(x, &t);
            t = f.mul(&t, &step);
        }
    }
    column_ntt(&f, &mut col, p.log1, &twiddles52(p.log1, p.inverse));
    // Step 2: (k1, i2) *= w^(i2 k1), with 1/n folded in for the inverse.
    let mut w = root_of_unity(p.log1 + p.log2);
    let mut scale = Fr::ONE;
    if p.inverse {
        w = w.inverse().unwrap_or(Fr::ONE);
        scale = Fr::from_canonical([n as u64, 0, 0, 0])
            .inverse()
            .unwrap_or(Fr::ONE);
    }
    let step_lanes: [Fr; 8] = std::array::from_fn(|l| w.pow(&[(8 * g + l) as u64]));
    let step = vec52(&step_lanes);
    let mut t = vec52(&[scale; 8]);
    for x in col.iter_mut() {
        *x = f.mul(x, &t);
        t = f.mul(&t, &step);
    }
    // Transpose tiles into rows 8g..8g+8 of the n2 x n1 matrix.
    let row_blocks = n1 / 8;
    for h in 0..row_blocks {
        let tiles = transpose8(&col[8 * h..8 * h + 8]);
        for (l, v) in tiles.into_iter().enumerate() {
            out_rows[l * row_blocks + h] = v;
        }
    }
}

/// Step 4 for columns `8h..8h+8` of the transposed matrix; writes the 256-byte
/// output segments of those columns (one per row k2).
#[target_feature(enable = "avx512f,avx512ifma")]
fn second_pass(p: &Plan, mid: &[V8], h: usize, out: &mut [&mut [u8]]) {
    let f = Field8::new(&FR);
    let (n1, n2) = (1usize << p.log1, 1usize << p.log2);
    let row_blocks = n1 / 8;
    let mut col: Vec<V8> = (0..n2).map(|i2| mid[i2 * row_blocks + h]).collect();
    column_ntt(&f, &mut col, p.log2, &twiddles52(p.log2, p.inverse));
    for x in col.iter_mut() {
        *x = f.canonical(x);
    }
    if let (Some(c), true) = (p.coset, p.inverse) {
        // x[k] *= c^-k with k = k2 n1 + 8h + l.
        let ci = c.inverse().unwrap_or(Fr::ONE);
        let (first, _) = lane_powers(ci, 8 * h as u64, Fr::ONE);
        let mut t = vec52(&first);
        let step = splat52(&f, &ci.pow(&[n1 as u64]));
        for x in col.iter_mut() {
            *x = f.mul(x, &t);
            t = f.mul(&t, &step);
        }
    }
    for (k2, x) in col.iter().enumerate() {
        write8(out[k2], x);
    }
}

/// Scratch kept between calls so large transforms do not fault in fresh memory.
static SPARE: Mutex<Vec<V8>> = Mutex::new(Vec::new());

fn take_mid(len: usize) -> Vec<V8> {
    let mut v = SPARE
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    // SAFETY: the caller checked the CPU has IFMA.
    let zero = unsafe { V8::zero() };
    v.clear();
    v.resize(len, zero);
    v
}

fn give_mid(v: Vec<V8>) {
    if let Ok(mut s) = SPARE.lock()
        && s.capacity() < v.capacity()
    {
        *s = v;
    }
}

/// One vector of `2^log_n` canonical elements, in place. Needs `log_n >= MIN_LOG`
/// and a CPU with IFMA (the caller checks both).
pub fn transform_bytes(data: &mut [u8], log_n: u32, inverse: bool, coset: Option<Fr>) {
    let p = Plan {
        log1: log_n - log_n / 2,
        log2: log_n / 2,
        inverse,
        coset,
    };
    let (n1, n2) = (1usize << p.log1, 1usize << p.log2);
    // Steps 1-3: groups of 8 columns own 8 rows of the transposed matrix.
    let mut mid = take_mid(n1 * n2 / 8);
    let input: &[u8] = data;
    mid.par_chunks_mut(n1).enumerate().for_each(|(g, rows)| {
        // SAFETY: the caller checked the CPU has IFMA.
        unsafe { first_pass(&p, input, g, rows) }
    });
    // Step 4: the output segment of row k2, columns 8h..8h+8, is chunk k2 * (n1/8) + h.
    let row_blocks = n1 / 8;
    let mut per_group: Vec<Vec<&mut [u8]>> =
        (0..row_blocks).map(|_| Vec::with_capacity(n2)).collect();
    for (i, seg) in data.chunks_exact_mut(256).enumerate() {
        per_group[i % row_blocks].push(seg);
    }
    {
        let mid = &mid;
        per_group
            .into_par_iter()
            .enumerate()
            .for_each(|(h, mut segs)| {
                // SAFETY: the caller checked the CPU has IFMA.
                unsafe { second_pass(&p, mid, h, &mut segs) }
            });
    }
    give_mid(mid);
}

//! Number-theoretic transforms over Fr: forward, inverse and coset, in
//! place, natural order in and out, over the same domain as arkworks'
//! `Radix2EvaluationDomain`.
//!
//! Decimation in time after a bit-reversal permutation. The early stages run
//! block by block so each block stays in cache; later stages are split across
//! threads. Twiddles are precomputed once per size and kept.
//!
//! Inputs are not converted into Montgomery form: the transform is linear,
//! so running it on canonical integers read as Montgomery residues yields the
//! canonical integers of the result (every constant used, twiddles, n^-1 and
//! coset powers, is a genuine Montgomery value). Inputs at or above r are
//! reduced first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::field::{FieldParams, Fr, FrParams};

#[cfg(target_arch = "x86_64")]
pub mod ifma;
pub mod portable;

/// Fr's two-adicity: the largest NTT is 2^28.
pub const TWO_ADICITY: u32 = 28;

/// `5^((r-1)/2^28)`, a primitive 2^28-th root of unity (5 generates Fr*).
pub fn two_adic_root() -> Fr {
    static ROOT: OnceLock<Fr> = OnceLock::new();
    *ROOT.get_or_init(|| {
        let mut e = FrParams::MODULUS;
        e[0] -= 1;
        // (r - 1) >> 28
        let shifted = shr(&e, TWO_ADICITY);
        Fr::from_canonical([5, 0, 0, 0]).pow(&shifted)
    })
}

fn shr(x: &[u64; 4], k: u32) -> [u64; 4] {
    let mut out = [0u64; 4];
    for i in 0..4 {
        let lo = x[i] >> k;
        let hi = if i + 1 < 4 && k > 0 {
            x[i + 1] << (64 - k)
        } else {
            0
        };
        out[i] = lo | hi;
    }
    out
}

/// A primitive 2^log_n-th root of unity (arkworks' choice for that size).
pub fn root_of_unity(log_n: u32) -> Fr {
    let mut w = two_adic_root();
    for _ in log_n..TWO_ADICITY {
        w = w.square();
    }
    w
}

/// Cached tables by (log2 of the size, inverse).
pub(crate) type TableCache<T> = OnceLock<Mutex<HashMap<(u32, bool), Arc<Vec<T>>>>>;

/// Twiddles of every stage, stage `s` (half-size 2^s) at `[2^s - 1, 2^(s+1) - 1)`.
pub(crate) fn twiddles(log_n: u32, inverse: bool) -> Arc<Vec<Fr>> {
    static CACHE: TableCache<Fr> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(t) = cache
        .lock()
        .ok()
        .and_then(|c| c.get(&(log_n, inverse)).cloned())
    {
        return t;
    }
    let n = 1usize << log_n;
    let mut w = root_of_unity(log_n);
    if inverse {
        w = w.inverse().unwrap_or(Fr::ONE);
    }
    // The last stage's twiddles are w^j for j < n/2; stage s uses every 2^(log_n-1-s)-th.
    let half = n / 2;
    let mut last = vec![Fr::ONE; half.max(1)];
    powers_into(&mut last, w);
    let mut table = vec![Fr::ZERO; n.saturating_sub(1)];
    for s in 0..log_n {
        let h = 1usize << s;
        let stride = half / h;
        let dst = &mut table[h - 1..2 * h - 1];
        dst.par_iter_mut()
            .enumerate()
            .for_each(|(j, t)| *t = last[j * stride]);
    }
    let t = Arc::new(table);
    if let Ok(mut c) = cache.lock() {
        c.insert((log_n, inverse), t.clone());
    }
    t
}

/// `out[i] = g^i`, in parallel chunks.
fn powers_into(out: &mut [Fr], g: Fr) {
    const CHUNK: usize = 1 << 12;
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(k, chunk)| {
            let mut acc = g.pow(&[(k * CHUNK) as u64]);
            for x in chunk {
                *x = acc;
                acc = acc.mul(&g);
            }
        });
}

/// The NTT of the ABI on raw bytes: `batch` vectors, in place, on the path
/// [`crate::dispatch::path`] chose.
pub fn ntt_bytes(data: &mut [u8], log_n: u32, inverse: bool, coset: Option<&[u8; 32]>) {
    ntt_bytes_on(crate::dispatch::path(), data, log_n, inverse, coset)
}

/// The NTT of the ABI on a given path.
pub fn ntt_bytes_on(
    path: crate::dispatch::CodePath,
    data: &mut [u8],
    log_n: u32,
    inverse: bool,
    coset: Option<&[u8; 32]>,
) {
    let n = 1usize << log_n;
    let g = coset.map(Fr::from_bytes_reduce);
    #[cfg(target_arch = "x86_64")]
    if path == crate::dispatch::CodePath::Avx512Ifma
        && crate::dispatch::cpu_has_ifma()
        && log_n >= ifma::MIN_LOG
    {
        for vector in data.chunks_mut(n * 32) {
            ifma::transform_bytes(vector, log_n, inverse, g);
        }
        return;
    }
    let _ = path;
    for vector in data.chunks_mut(n * 32) {
        portable::transform_bytes(vector, log_n, inverse, g);
    }
}

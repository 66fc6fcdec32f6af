//! Fr NTT on the GPU: bit-reversal, then log n radix-2 butterfly passes over
//! the whole batch, with coset and 1/n scaling by a two-level power table
//! (`table[i mod 2^h] * table[high + i >> h]`: two products per element
//! instead of an exponentiation). Twiddles are computed on the GPU once per
//! size and direction and kept.

use std::sync::Mutex;

use ark_bn254::Fr;
use ark_ff::{FftField, Field, One, PrimeField};

use crate::gpu::{Dispatch, Gpu, Program};

/// Entry points of the NTT program.
pub const ENTRIES: &[&str] = &[
    "to_mont",
    "twiddle_table",
    "power_table",
    "bit_reverse",
    "butterfly",
    "scale",
    "from_mont",
];

/// Storage buffers of the NTT program (after the parameters).
pub const BUFFERS: u32 = 4;

/// Which twiddle tables are on the device: (log n) per direction.
#[derive(Debug, Default)]
pub struct TwiddleCache {
    held: Mutex<[Option<u32>; 2]>,
}

fn words(f: Fr) -> [u32; 8] {
    let l = f.into_bigint().0;
    std::array::from_fn(|i| (l[i / 2] >> (32 * (i % 2))) as u32)
}

/// Transforms `batch` vectors of `2^log_n` elements in place (ABI encoding).
/// Errors name the reason (a vector larger than one binding: the caller falls back).
#[allow(clippy::too_many_arguments)]
pub fn ntt(
    gpu: &Gpu,
    prog: &Program,
    cache: &TwiddleCache,
    data: &mut [u8],
    log_n: u32,
    inverse: bool,
    coset: Option<Fr>,
) -> Result<(), String> {
    let n = 1usize << log_n;
    let vector_bytes = 32 * n as u64;
    if log_n == 0 {
        // The transform of one element is itself; only the reduction is left.
        for e in data.chunks_exact_mut(32) {
            let v = Fr::from_le_bytes_mod_order(e);
            e.copy_from_slice(
                &words(v)
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect::<Vec<_>>(),
            );
        }
        return Ok(());
    }
    let per_chunk = (gpu.max_binding() / vector_bytes) as usize;
    if per_chunk == 0 {
        return Err(format!(
            "a vector of 2^{log_n} is larger than the device's binding limit of {} bytes",
            gpu.max_binding()
        ));
    }
    let dir = usize::from(inverse);
    let tw_name = if inverse {
        "ntt.twiddles.inverse"
    } else {
        "ntt.twiddles.forward"
    };
    let root = Fr::get_root_of_unity(n as u64)
        .ok_or_else(|| format!("Fr has no root of unity of order 2^{log_n}"))?;
    let root = if inverse {
        root.inverse().unwrap_or_default()
    } else {
        root
    };
    let h = log_n / 2;
    let half = (n / 2) as u64;

    for chunk in data.chunks_mut(per_chunk * 32 * n) {
        let elements = (chunk.len() / 32) as u32;
        let b_in = gpu.buffer("ntt.input", chunk.len() as u64)?;
        let b_work = gpu.buffer("ntt.work", chunk.len() as u64)?;
        let b_tw = gpu.buffer(tw_name, half * 32)?;
        let b_table = gpu.buffer("ntt.table", 32 * ((1u64 << h) + (1u64 << (log_n - h))))?;
        gpu.upload(&[(&b_in, chunk)])?;

        let mut d = Vec::new();
        let mut held = cache
            .held
            .lock()
            .map_err(|_| "twiddle cache poisoned".to_string())?;
        if held[dir] != Some(log_n) {
            d.push(
                Dispatch::new("twiddle_table", half, &[half as u32, log_n])
                    .with_words(8, &words(root)),
            );
            held[dir] = Some(log_n);
        }
        drop(held);
        d.push(Dispatch::new("to_mont", elements as u64, &[elements]));
        d.push(Dispatch::new(
            "bit_reverse",
            elements as u64,
            &[elements, log_n],
        ));
        let tables = |base: Fr, c0: Fr| {
            let lo = 1u32 << h;
            let hi = 1u32 << (log_n - h);
            [
                Dispatch::new("power_table", lo as u64, &[lo, log_n, 0, 0])
                    .with_words(8, &words(base))
                    .with_words(16, &words(c0)),
                Dispatch::new("power_table", hi as u64, &[hi, log_n, h, lo])
                    .with_words(8, &words(base))
                    .with_words(16, &words(Fr::one())),
            ]
        };
        let scale = |bit_reversed: u32| {
            Dispatch::new(
                "scale",
                elements as u64,
                &[elements, log_n, h, bit_reversed, 1 << h],
            )
        };
        if let (false, Some(g)) = (inverse, coset) {
            d.extend(tables(g, Fr::one()));
            d.push(scale(1));
        }
        for s in 0..log_n {
            d.push(Dispatch::new(
                "butterfly",
                elements as u64 / 2,
                &[elements / 2, log_n, s],
            ));
        }
        if inverse {
            let n_inv = Fr::from(n as u64).inverse().unwrap_or_default();
            let base = match coset {
                Some(g) => g.inverse().ok_or("the coset generator is zero")?,
                None => Fr::one(),
            };
            d.extend(tables(base, n_inv));
            d.push(scale(0));
        }
        d.push(Dispatch::new("from_mont", elements as u64, &[elements]));
        if let Err(e) = gpu.run(
            prog,
            &[&b_in, &b_work, &b_tw, &b_table],
            &d,
            &mut [(&b_work, 0, chunk)],
        ) {
            // The twiddles may not have been written.
            if let Ok(mut held) = cache.held.lock() {
                held[dir] = None;
            }
            return Err(e);
        }
    }
    Ok(())
}

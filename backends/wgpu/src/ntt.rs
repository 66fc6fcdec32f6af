//! Fr NTT on the GPU: bit-reversal, then log n radix-2 butterfly passes over
//! the whole batch, with coset and 1/n scaling by a two-level power table
//! (`table[i mod 2^h] * table[high + i >> h]`: two products per element
//! instead of an exponentiation). Twiddles are computed on the GPU once per
//! size and direction and kept.

use std::sync::Mutex;

use crate::error::GpuError;

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
    "bit_reverse_in_place",
    "ab_minus_c",
    "from_mont_into",
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
) -> Result<(), GpuError> {
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
        return Err(GpuError::Device(format!(
            "a vector of 2^{log_n} is larger than the device's binding limit of {} bytes",
            gpu.max_binding()
        )));
    }
    for chunk in data.chunks_mut(per_chunk * 32 * n) {
        let elements = (chunk.len() / 32) as u32;
        let b_in = gpu.buffer("ntt.input", chunk.len() as u64)?;
        let b_work = gpu.buffer("ntt.work", chunk.len() as u64)?;
        gpu.upload(&[(&b_in, chunk)])?;
        let mut d = vec![
            Dispatch::new("to_mont", elements as u64, &[elements]),
            Dispatch::new("bit_reverse", elements as u64, &[elements, log_n]),
        ];
        let plan = Plan::new(gpu, cache, log_n, inverse, coset)?;
        plan.transform(elements, &mut d)?;
        d.push(Dispatch::new("from_mont", elements as u64, &[elements]));
        plan.run(gpu, prog, &b_in, &b_work, &d, &mut [(&b_work, 0, chunk)])?;
    }
    Ok(())
}

/// Transforms a kept vector (Montgomery form, whole vectors of `2^log_n`,
/// within one binding) in place on the device.
#[allow(clippy::too_many_arguments)]
pub fn ntt_kept(
    gpu: &Gpu,
    prog: &Program,
    cache: &TwiddleCache,
    vector: &wgpu::Buffer,
    elements: u32,
    log_n: u32,
    inverse: bool,
    coset: Option<Fr>,
) -> Result<(), GpuError> {
    if log_n == 0 {
        // The transform of one element is itself.
        return Ok(());
    }
    let mut d = vec![Dispatch::new(
        "bit_reverse_in_place",
        elements as u64,
        &[elements, log_n],
    )];
    let plan = Plan::new(gpu, cache, log_n, inverse, coset)?;
    plan.transform(elements, &mut d)?;
    let idle = gpu.buffer("ntt.input", 256)?;
    plan.run(gpu, prog, &idle, vector, &d, &mut [])
}

/// The butterflies and scalings of one transform size and direction, over
/// data already bit-reversed in `work` (Montgomery form).
struct Plan<'a> {
    cache: &'a TwiddleCache,
    log_n: u32,
    inverse: bool,
    coset: Option<Fr>,
    root: Fr,
    twiddles: wgpu::Buffer,
    table: wgpu::Buffer,
}

impl<'a> Plan<'a> {
    fn new(
        gpu: &Gpu,
        cache: &'a TwiddleCache,
        log_n: u32,
        inverse: bool,
        coset: Option<Fr>,
    ) -> Result<Plan<'a>, GpuError> {
        let n = 1u64 << log_n;
        let root = Fr::get_root_of_unity(n).ok_or_else(|| {
            GpuError::Device(format!("Fr has no root of unity of order 2^{log_n}"))
        })?;
        let root = if inverse {
            root.inverse().unwrap_or_default()
        } else {
            root
        };
        let tw_name = if inverse {
            "ntt.twiddles.inverse"
        } else {
            "ntt.twiddles.forward"
        };
        let h = log_n / 2;
        Ok(Plan {
            cache,
            log_n,
            inverse,
            coset,
            root,
            twiddles: gpu.buffer(tw_name, n / 2 * 32)?,
            table: gpu.buffer("ntt.table", 32 * ((1u64 << h) + (1u64 << (log_n - h))))?,
        })
    }

    /// Appends the transform of `elements` (whole vectors) to `d`: the
    /// twiddles when not on the device yet, the coset scaling, the
    /// butterflies, and the inverse's scaling.
    fn transform(&self, elements: u32, d: &mut Vec<Dispatch>) -> Result<(), GpuError> {
        let log_n = self.log_n;
        let n = 1usize << log_n;
        let h = log_n / 2;
        let half = (n / 2) as u64;
        let mut held = self
            .cache
            .held
            .lock()
            .map_err(|_| GpuError::from("twiddle cache poisoned"))?;
        let dir = usize::from(self.inverse);
        if held[dir] != Some(log_n) {
            d.push(
                Dispatch::new("twiddle_table", half, &[half as u32, log_n])
                    .with_words(8, &words(self.root)),
            );
            held[dir] = Some(log_n);
        }
        drop(held);
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
        if let (false, Some(g)) = (self.inverse, self.coset) {
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
        if self.inverse {
            let n_inv = Fr::from(n as u64).inverse().unwrap_or_default();
            let base = match self.coset {
                Some(g) => g
                    .inverse()
                    .ok_or_else(|| GpuError::Argument("the coset generator is zero".into()))?,
                None => Fr::one(),
            };
            d.extend(tables(base, n_inv));
            d.push(scale(0));
        }
        Ok(())
    }

    /// Runs `d` with `input` and `work` bound beside this plan's tables.
    fn run(
        &self,
        gpu: &Gpu,
        prog: &Program,
        input: &wgpu::Buffer,
        work: &wgpu::Buffer,
        d: &[Dispatch],
        reads: &mut [(&wgpu::Buffer, u64, &mut [u8])],
    ) -> Result<(), GpuError> {
        let r = gpu.run(prog, &[input, work, &self.twiddles, &self.table], d, reads);
        if r.is_err() {
            // The twiddles may not have been written.
            if let Ok(mut held) = self.cache.held.lock() {
                held[usize::from(self.inverse)] = None;
            }
        }
        r
    }
}

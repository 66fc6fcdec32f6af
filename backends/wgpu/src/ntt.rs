//! Fr NTT on the GPU: bit-reversal, then radix-2 butterflies, on a GPU in
//! tiles of workgroup memory, several stages per pass over the whole batch
//! (ten stages in the first pass, six in each later one where the device
//! gives 32 KiB of workgroup memory), on a CPU adapter one stage per pass
//! (lavapipe runs workgroup memory and its barriers slower than the plain
//! passes), with coset and 1/n scaling by a two-level power table
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
    "butterfly_tile",
    "scale",
    "from_mont",
    "bit_reverse_in_place",
    "ab_minus_c",
    "from_mont_into",
];

/// Storage buffers of the NTT program (after the parameters).
pub const BUFFERS: u32 = 4;

/// Environment variable setting the butterfly tile (elements in workgroup
/// memory, a power of two up to 1024; 1 is no tiles, one stage per pass) in
/// place of the default: the largest the device holds on a GPU, none on a
/// CPU adapter.
pub const TILE_ENV: &str = "AZTEC_PROVER_WGPU_NTT_TILE";

/// The largest tile, as log2 (32 KiB of workgroup memory).
pub const MAX_TILE_LOG: u32 = 10;

/// The tile (log2 of its elements; 0 for none) for a device with `limit`
/// bytes of workgroup memory, a GPU or not, or the one `asked` ([`TILE_ENV`]).
pub fn tile_log(limit: u32, is_device: bool, asked: Option<&str>) -> Result<u32, String> {
    let fits = (limit / 32).max(1).ilog2().min(MAX_TILE_LOG);
    match asked.map(str::trim) {
        None | Some("") if is_device => Ok(fits),
        None | Some("") => Ok(0),
        Some(v) => match v.parse::<u32>() {
            Ok(t) if t.is_power_of_two() && t <= 1 << MAX_TILE_LOG => {
                let log = t.ilog2();
                if log > fits {
                    Err(format!(
                        "{TILE_ENV}={v}: a tile of {t} elements needs {} bytes of workgroup memory, this device has {limit}",
                        32 * t
                    ))
                } else {
                    Ok(log)
                }
            }
            _ => Err(format!(
                "{TILE_ENV}={v:?}: expected a power of two up to {} (1: no tiles)",
                1 << MAX_TILE_LOG
            )),
        },
    }
}

/// The passes of a transform of 2^log_n with tiles of 2^tile_log elements
/// (at least 2): (first stage, stages, log2 of columns per tile). The first
/// pass takes consecutive elements; later ones up to 16 columns side by side.
pub fn tile_passes(log_n: u32, tile_log: u32) -> Vec<(u32, u32, u32)> {
    let tile_log = tile_log.max(1);
    let mut passes = Vec::new();
    let mut s0 = 0;
    while s0 < log_n {
        let g_log = s0.min(tile_log - 1).min(4);
        let k = (tile_log - g_log).min(log_n - s0);
        passes.push((s0, k, g_log));
        s0 += k;
    }
    passes
}

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
    tile_log: u32,
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
        plan.transform(elements, tile_log, &mut d)?;
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
    tile_log: u32,
    vector: &wgpu::Buffer,
    elements: u32,
    log_n: u32,
    inverse: bool,
    coset: Option<Fr>,
) -> Result<(), String> {
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
    plan.transform(elements, tile_log, &mut d)?;
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
    ) -> Result<Plan<'a>, String> {
        let n = 1u64 << log_n;
        let root = Fr::get_root_of_unity(n)
            .ok_or_else(|| format!("Fr has no root of unity of order 2^{log_n}"))?;
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
    /// butterflies in tiles of 2^tile_log, and the inverse's scaling.
    fn transform(&self, elements: u32, tile_log: u32, d: &mut Vec<Dispatch>) -> Result<(), String> {
        let log_n = self.log_n;
        let n = 1usize << log_n;
        let h = log_n / 2;
        let half = (n / 2) as u64;
        let mut held = self
            .cache
            .held
            .lock()
            .map_err(|_| "twiddle cache poisoned".to_string())?;
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
        if tile_log == 0 {
            for s in 0..log_n {
                d.push(Dispatch::new(
                    "butterfly",
                    elements as u64 / 2,
                    &[elements / 2, log_n, s],
                ));
            }
        } else {
            for (s0, k, g_log) in tile_passes(log_n, tile_log) {
                let tiles = (elements >> k) >> g_log;
                d.push(Dispatch::new(
                    "butterfly_tile",
                    tiles as u64 * crate::shader::WORKGROUP as u64,
                    &[elements, log_n, s0, k, g_log],
                ));
            }
        }
        if self.inverse {
            let n_inv = Fr::from(n as u64).inverse().unwrap_or_default();
            let base = match self.coset {
                Some(g) => g.inverse().ok_or("the coset generator is zero")?,
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
    ) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_passes_run_every_stage_once_within_the_tile() {
        for tile_log in 1..=MAX_TILE_LOG {
            for log_n in 1..=24 {
                let passes = tile_passes(log_n, tile_log);
                let mut next = 0;
                for &(s0, k, g_log) in &passes {
                    assert_eq!(s0, next, "stages in order without a gap");
                    assert!(k >= 1 && g_log <= s0, "{passes:?}");
                    assert!(k + g_log <= tile_log, "the tile holds {passes:?}");
                    next = s0 + k;
                }
                assert_eq!(next, log_n, "every stage: {passes:?}");
            }
        }
        assert_eq!(
            tile_passes(20, 10),
            vec![(0, 10, 0), (10, 6, 4), (16, 4, 4)]
        );
    }

    #[test]
    fn the_tile_fits_the_device_and_takes_only_powers_of_two() {
        assert_eq!(tile_log(16384, true, None), Ok(9));
        assert_eq!(tile_log(49152, true, None), Ok(10));
        assert_eq!(tile_log(49152, false, None), Ok(0), "none on a CPU adapter");
        assert_eq!(tile_log(16384, false, Some("4")), Ok(2));
        assert_eq!(tile_log(16384, true, Some("1")), Ok(0));
        assert!(
            tile_log(16384, true, Some("1024"))
                .unwrap_err()
                .contains("needs 32768 bytes")
        );
        for bad in ["3", "0", "2048", "x"] {
            assert!(
                tile_log(32768, true, Some(bad))
                    .unwrap_err()
                    .contains("power of two"),
                "{bad}"
            );
        }
    }
}

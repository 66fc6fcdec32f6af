//! MSM on the GPU (G1, and G2 where it runs there): Pippenger with signed c-bit digits.
//!
//! One call, per chunk of points that fits the device's binding limit, is
//! one submission and one readback; everything between runs on the device:
//! 1. upload the scalars (and the points, unless they are prepared bases);
//!    `convert_points` checks that every coordinate is below p and puts the
//!    points in Montgomery form; `histogram` counts every (window, bucket);
//! 2. `scan_blocks`, `scan_top` and `scan_offsets` turn the counts into
//!    bucket offsets; `scatter` sorts point indices into buckets;
//! 3. slice passes sum the buckets: `accumulate_points` (XYZZ) gives each
//!    thread the same 64 items of `sorted` whatever the buckets, so a bucket
//!    of a million points (scalars from real witnesses have them) is spread
//!    over many threads, and its pieces are summed again the same way
//!    (`sum_slots`) until each bucket has a few;
//! 4. `bucket_sums` adds up each bucket's last pieces and weighs each
//!    segment of a window's buckets, and the segments are summed per window by levels planned on the host (they
//!    depend on the sizes only);
//! 5. the host reads one point per window back (and the report of a bad
//!    coordinate) and combines the windows (a few hundred doublings) with
//!    arkworks.

use ark_bn254::Fq;
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup};
use ark_ff::{Field, PrimeField, Zero};

use crate::error::GpuError;

use crate::gpu::{Dispatch, Gpu, Program, as_bytes, words_of};
use crate::shader::Curve;

/// A group the MSM program runs on, as the host sees it: its coordinates
/// are made of Fq elements (one for G1, two for G2).
pub trait GpuCurve: SWCurveConfig<BaseField: Field<BasePrimeField = Fq>> {
    /// The program's curve code.
    const CURVE: Curve;
}

impl GpuCurve for ark_bn254::g1::Config {
    const CURVE: Curve = Curve::G1;
}

impl GpuCurve for ark_bn254::g2::Config {
    const CURVE: Curve = Curve::G2;
}

/// Words of a slot of `partials` (an XYZZ point).
const fn slot_words(c: Curve) -> u64 {
    4 * c.coord_words() as u64
}

/// Bytes of a point in ABI encoding (and on the device).
pub const fn point_bytes(c: Curve) -> usize {
    8 * c.coord_words() as usize
}

/// Entry points of the MSM program, the longest to compile first (they are
/// compiled in this order on several threads).
pub const ENTRIES: &[&str] = &[
    "accumulate_points",
    "bucket_sums",
    "sum_slots",
    "convert_points",
    "histogram",
    "scatter",
    "scan_top",
    "scan_blocks",
    "scan_offsets",
];

/// Storage buffers of the MSM program (after the parameters).
pub const BUFFERS: u32 = 6;

/// Items one thread of a slice pass sums.
pub const SLICE: u32 = 64;

/// Bucket counters one thread of the offset scan takes.
pub const SCAN_BLOCK: u32 = 256;

/// Most partial sums one thread of a segment level adds up.
const TASK_LEN: u32 = 32;

/// Buckets one `bucket_sums` thread walks, unless tuned.
const SEGMENT: u32 = 32;

/// Environment variable fixing the window width in bits (4 to 18) instead
/// of [`window_bits`]'s choice for each chunk.
pub const WINDOW_ENV: &str = "AZTEC_PROVER_WGPU_WINDOW";

/// Environment variable setting the buckets one `bucket_sums` thread walks
/// (a power of two, 1 to 32768; default 32): fewer give a GPU more threads
/// and shorter chains, more give fewer threads less scaling to do.
pub const SEGMENT_ENV: &str = "AZTEC_PROVER_WGPU_SEGMENT";

/// How the MSM splits its work where a device's best differs from the
/// defaults (read once, from [`WINDOW_ENV`] and [`SEGMENT_ENV`]). Nothing
/// here changes a result, only the work's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Window bits; `None`: [`window_bits`] of the chunk's size.
    pub window: Option<u32>,
    /// Buckets per `bucket_sums` thread (a power of two).
    pub segment: u32,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            window: None,
            segment: SEGMENT,
        }
    }
}

impl Tuning {
    /// The tuning the two variables ask for (unset or empty: the default).
    pub fn parse(window: Option<&str>, segment: Option<&str>) -> Result<Tuning, GpuError> {
        fn set(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let mut t = Tuning::default();
        if let Some(v) = set(window) {
            match v.parse::<u32>() {
                Ok(c @ 4..=18) => t.window = Some(c),
                _ => {
                    return Err(GpuError::Device(format!(
                        "{WINDOW_ENV}={v:?}: expected window bits from 4 to 18"
                    )));
                }
            }
        }
        if let Some(v) = set(segment) {
            match v.parse::<u32>() {
                Ok(k) if k.is_power_of_two() && k <= 1 << 15 => t.segment = k,
                _ => {
                    return Err(GpuError::Device(format!(
                        "{SEGMENT_ENV}={v:?}: expected a power of two from 1 to 32768"
                    )));
                }
            }
        }
        Ok(t)
    }

    /// The tuning the environment asks for.
    pub fn from_env() -> Result<Tuning, GpuError> {
        let var = |k: &str| crate::options::get(k);
        Tuning::parse(var(WINDOW_ENV).as_deref(), var(SEGMENT_ENV).as_deref())
    }
}

/// `sum_slots` modes (see msm.wgsl).
const SUM_TASKS: u32 = 0;
const SUM_SLICES: u32 = 1;

/// Window width for `n` points: the fewest additions, counting one per
/// point and window and three per bucket (summing its pieces, then two in
/// `bucket_sums`); at most 16 bits.
pub fn window_bits(n: usize) -> u32 {
    let cost = |c: u32| (254 / c + 1) as u64 * (n as u64 + 3 * (1u64 << (c - 1)));
    (4..=16).min_by_key(|&c| cost(c)).unwrap_or(16)
}

/// Slice passes after the first that a largest bucket of `most` items needs
/// (`passes_for` in msm.wgsl, which decides on the device): a run of k items
/// spans at most k / SLICE + 2 slices, so it leaves that many pieces.
fn passes_for(most: u64) -> u32 {
    let slice = SLICE as u64;
    let mut pieces = most / slice + 2;
    let mut passes = 0;
    while pieces > slice {
        pieces = pieces / slice + 2;
        passes += 1;
    }
    passes
}

/// Where everything of an MSM chunk of `m` points goes, from `m` alone: the
/// slice passes are sized for their worst case (every point of a window in
/// one bucket), so nothing depends on the scalars and the host never waits
/// for the device to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    c: u32,
    windows: u32,
    /// Buckets per window.
    nb: u32,
    buckets: u32,
    /// Threads of each slice pass, pass 0 first.
    pass_threads: Vec<u32>,
    /// Slots of the two regions that range levels 1, 3, ... and 2, 4, ... use.
    regions: [u32; 2],
    /// Segments of each window that `bucket_sums` weighs.
    segments: u32,
}

impl Layout {
    fn of(m: usize, t: Tuning) -> Layout {
        let c = t.window.unwrap_or_else(|| window_bits(m));
        let windows = 254 / c + 1;
        let nb = 1u32 << (c - 1);
        let buckets = windows * nb;
        let items = windows as u64 * m as u64;
        let passes = passes_for(m as u64);
        let mut pass_threads = vec![items.div_ceil(SLICE as u64) as u32];
        let mut regions = [0u32; 2];
        for p in 0..=passes as usize {
            // Pass p writes range level p + 1: thread t's piece of bucket b at t + b.
            let slots = pass_threads[p] + buckets;
            regions[p % 2] = regions[p % 2].max(slots);
            if p < passes as usize {
                pass_threads.push(slots.div_ceil(SLICE));
            }
        }
        Layout {
            c,
            windows,
            nb,
            buckets,
            pass_threads,
            regions,
            segments: nb / t.segment.min(nb),
        }
    }

    /// Words of `counts`: the counters, the report, the pass count, and the
    /// scan's block sums and maxima.
    fn count_words(&self) -> u32 {
        self.buckets + 2 + 2 * self.buckets.div_ceil(SCAN_BLOCK)
    }

    /// The first slot after the regions: the segment sums.
    fn seg_base(&self) -> u32 {
        self.regions[0] + self.regions[1]
    }

    /// The segment levels' tasks (appended to `words`), their levels, where
    /// each window's sum goes, and the slots of `partials` in all.
    fn segment_plan(&self, words: &mut Vec<u32>) -> (Vec<Level>, u32, u32) {
        let seg_base = self.seg_base();
        let final_base = seg_base + self.windows * self.segments;
        let mut free = final_base + self.windows;
        let levels = plan(
            (0..self.windows)
                .map(|w| Group {
                    start: seg_base + w * self.segments,
                    len: self.segments,
                    dst: final_base + w,
                })
                .collect(),
            &mut free,
            words,
        );
        (levels, final_base, free)
    }
}

/// A contiguous run of stored items summed into one slot.
#[derive(Debug, Clone, Copy)]
struct Group {
    start: u32,
    len: u32,
    dst: u32,
}

/// One dispatch of tasks: `count` (start, len, dst) triples from task `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    first: u32,
    count: u32,
}

/// Splits each group into tasks of at most `TASK_LEN` items, level by level,
/// appending them to `words`: a group too long for one task writes partial
/// sums to fresh slots (from `free`), which the next level sums into the
/// group's slot.
fn plan(mut groups: Vec<Group>, free: &mut u32, words: &mut Vec<u32>) -> Vec<Level> {
    let mut levels = Vec::new();
    while !groups.is_empty() {
        let first = (words.len() / 3) as u32;
        let mut next = Vec::new();
        for g in &groups {
            if g.len <= TASK_LEN {
                words.extend([g.start, g.len, g.dst]);
                continue;
            }
            let parts = g.len.div_ceil(TASK_LEN);
            for j in 0..parts {
                let at = j * TASK_LEN;
                words.extend([g.start + at, TASK_LEN.min(g.len - at), *free + j]);
            }
            next.push(Group {
                start: *free,
                len: parts,
                dst: g.dst,
            });
            *free += parts;
        }
        let count = (words.len() / 3) as u32 - first;
        levels.push(Level { first, count });
        groups = next;
    }
    levels
}

/// A slot of `partials` (XYZZ, Montgomery form with R = 2^`r_bits`) as
/// arkworks' point.
fn read_point<P: GpuCurve>(words: &[u32], r_bits: u32) -> Projective<P> {
    // x_std = x_mont / R.
    let r_inv = Fq::from(2u64)
        .pow([r_bits as u64])
        .inverse()
        .unwrap_or_else(|| unreachable!("2 is invertible"));
    let part = |k: usize| {
        // Below 2p on the device (almost reduced): reduced here.
        let bytes: Vec<u8> = words[8 * k..8 * k + 8]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        Fq::from_le_bytes_mod_order(&bytes) * r_inv
    };
    let per = P::CURVE.coord_words() as usize / 8;
    let coord = |c: usize| {
        P::BaseField::from_base_prime_field_elems((0..per).map(|j| part(c * per + j)))
            .unwrap_or_else(|| unreachable!("{per} parts make a coordinate"))
    };
    let (x, y, zz, zzz) = (coord(0), coord(1), coord(2), coord(3));
    match (zz.inverse(), zzz.inverse()) {
        (Some(a), Some(b)) => Affine::<P>::new_unchecked(x * a, y * b).into_group(),
        _ => Projective::<P>::zero(),
    }
}

/// Why a chunk has no sum.
enum Refused {
    /// The chunk's point `.0` has its coordinate `.1` ("x" or "y") not below
    /// p: the ABI promises canonical coordinates, and the GPU would otherwise
    /// compute garbage quietly.
    Point(u32, &'static str),
    /// The device failed (or anything else but a point).
    Device(GpuError),
}

impl From<GpuError> for Refused {
    fn from(e: GpuError) -> Refused {
        Refused::Device(e)
    }
}

impl From<String> for Refused {
    fn from(e: String) -> Refused {
        Refused::Device(GpuError::Device(e))
    }
}

/// Where a chunk's points are.
#[derive(Clone, Copy)]
enum Bases<'a> {
    /// In ABI encoding on the host: uploaded and converted by this call.
    Host(&'a [u8]),
    /// On the device, converted already (prepared).
    Device(&'a wgpu::Buffer),
}

/// Where a chunk's scalars are.
#[derive(Clone, Copy)]
enum Scalars<'a> {
    /// In ABI encoding on the host: uploaded by this call.
    Host(&'a [u8]),
    /// This many, in ABI encoding in the pool's `msm.scalars` already (put
    /// there from a kept vector).
    Device(u32),
}

/// The report of the first coordinate not below p, as `convert_points`
/// writes it (0: none).
fn bad_point(report: u32) -> Result<(), Refused> {
    if report == 0 {
        return Ok(());
    }
    let k = u32::MAX - report;
    Err(Refused::Point(
        k / 2,
        if k.is_multiple_of(2) { "x" } else { "y" },
    ))
}

/// Sums `scalars[i] * points[i]` over one chunk (scalars in ABI encoding).
fn msm_chunk<P: GpuCurve>(
    gpu: &Gpu,
    prog: &Program,
    t: Tuning,
    bases: Bases<'_>,
    scalars: Scalars<'_>,
) -> Result<Projective<P>, Refused> {
    let slot = slot_words(P::CURVE);
    let (n, host_scalars) = match scalars {
        Scalars::Host(s) => ((s.len() / 32) as u32, s),
        Scalars::Device(n) => (n, &[][..]),
    };
    let l = Layout::of(n as usize, t);
    gpu.note(format_args!(
        "msm chunk of {n} points: {} windows of {} bits, {} buckets per bucket_sums thread",
        l.windows,
        l.c,
        l.nb / l.segments
    ));
    let buckets = l.buckets;
    let mut task_words = Vec::new();
    let (seg_levels, final_base, slots) = l.segment_plan(&mut task_words);

    let b_scalars = gpu.buffer("msm.scalars", 32 * n as u64)?;
    let count_bytes = l.count_words() as u64 * 4;
    let b_counts = gpu.buffer("msm.counts", count_bytes)?;
    let b_sorted = gpu.buffer("msm.sorted", l.windows as u64 * n as u64 * 4)?;
    let b_tasks = gpu.buffer("msm.tasks", task_words.len() as u64 * 4)?;
    let b_partials = gpu.buffer("msm.partials", slots as u64 * slot * 4)?;
    if [
        b_partials.size(),
        b_tasks.size(),
        b_sorted.size(),
        b_counts.size(),
    ]
    .into_iter()
    .any(|s| s > gpu.max_binding())
    {
        return Err(Refused::Device(
            "internal: MSM working buffers exceed the binding limit".into(),
        ));
    }
    let digits = [n, l.c, l.windows];
    let mut dispatches = Vec::new();
    let b_points = match bases {
        Bases::Host(points) => {
            let b = gpu.buffer("msm.points", points.len() as u64)?;
            gpu.upload(&[
                (&b, points),
                (&b_scalars, host_scalars),
                (&b_tasks, as_bytes(&task_words)),
            ])?;
            dispatches.push(Dispatch::new("convert_points", n as u64, &[n, buckets]));
            b
        }
        Bases::Device(b) => {
            gpu.upload(&[
                (&b_scalars, host_scalars),
                (&b_tasks, as_bytes(&task_words)),
            ])?;
            b.clone()
        }
    };
    gpu.clear(&b_counts, count_bytes);

    let blocks = buckets.div_ceil(SCAN_BLOCK) as u64;
    // Region A of the slots starts at slot 0, region B after it.
    let (at_a, at_b) = (0, l.regions[0]);
    dispatches.extend([
        Dispatch::new("histogram", n as u64, &digits),
        Dispatch::new("scan_blocks", blocks, &[buckets]),
        Dispatch::new("scan_top", 64, &[buckets]),
        Dispatch::new("scan_offsets", blocks, &[buckets]),
        Dispatch::new("scatter", n as u64, &digits),
        Dispatch::new(
            "accumulate_points",
            l.pass_threads[0] as u64,
            &[l.pass_threads[0], buckets, at_a],
        ),
    ]);
    // Passes the scalars do not need return at once (the device knows how many).
    for (pass, &threads) in l.pass_threads.iter().enumerate().skip(1) {
        dispatches.push(Dispatch::new(
            "sum_slots",
            threads as u64,
            &[threads, SUM_SLICES, buckets, pass as u32, at_a, at_b],
        ));
    }
    let threads = l.windows * l.segments;
    dispatches.push(Dispatch::new(
        "bucket_sums",
        threads as u64,
        &[threads, l.nb, l.segments, l.seg_base(), buckets, at_a, at_b],
    ));
    for level in &seg_levels {
        dispatches.push(Dispatch::new(
            "sum_slots",
            level.count as u64,
            &[level.count, SUM_TASKS, level.first],
        ));
    }
    let mut out = vec![0u8; l.windows as usize * slot as usize * 4];
    let mut report = [0u8; 4];
    gpu.run(
        prog,
        &[
            &b_points,
            &b_scalars,
            &b_counts,
            &b_sorted,
            &b_tasks,
            &b_partials,
        ],
        &dispatches,
        &mut [
            (&b_partials, final_base as u64 * slot * 4, &mut out),
            (&b_counts, buckets as u64 * 4, &mut report),
        ],
    )?;
    bad_point(u32::from_le_bytes(report))?;
    let out = words_of(&out);

    let mut acc = Projective::<P>::zero();
    let slot = slot as usize;
    for w in (0..l.windows as usize).rev() {
        for _ in 0..l.c {
            acc.double_in_place();
        }
        acc += read_point::<P>(&out[w * slot..(w + 1) * slot], gpu.limbs.r_bits());
    }
    Ok(acc)
}

/// The largest buffer an MSM chunk of `m` points needs: the upload of points
/// and scalars, `sorted`, the counters, and `partials` (the regions are
/// sized for the worst scalars already).
fn chunk_bytes(c: Curve, m: usize, t: Tuning) -> u64 {
    let l = Layout::of(m, t);
    let mut words = Vec::new();
    let (_, _, slots) = l.segment_plan(&mut words);
    [
        (point_bytes(c) as u64 + 32) * m as u64,
        4 * l.windows as u64 * m as u64,
        4 * l.count_words() as u64,
        slot_words(c) * 4 * slots as u64,
        4 * words.len() as u64,
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

/// Points per chunk of an MSM of `n` points, so that every buffer of a chunk
/// fits one binding whatever the scalars (halved until it does). Only a
/// window tuned wider than the device holds fits no chunk at all.
pub fn chunk_points(gpu: &Gpu, t: Tuning, c: Curve, n: usize) -> Result<usize, GpuError> {
    let limit = gpu.max_binding();
    let mut m = n.clamp(1, 1 << 30);
    while m > 1 && chunk_bytes(c, m, t) > limit {
        m = m.div_ceil(2);
    }
    let need = chunk_bytes(c, m, t);
    if need > limit {
        return Err(GpuError::Device(format!(
            "an MSM with {} windows needs {} MiB in one buffer, more than this device's {} MiB: \
             set {WINDOW_ENV} lower or leave it unset",
            t.window.map_or("these".to_string(), |w| format!("{w}-bit")),
            need >> 20,
            limit >> 20
        )));
    }
    Ok(m)
}

/// The error of a refused chunk `k` of `chunk` points.
fn refusal(e: Refused, k: usize, chunk: usize) -> GpuError {
    match e {
        Refused::Point(i, coord) => GpuError::Argument(format!(
            "point {}: its {coord} coordinate is not below the field modulus",
            k * chunk + i as usize
        )),
        Refused::Device(e) => e,
    }
}

/// `sum scalars[i] * points[i]` in G1 or G2, ABI encodings in and out.
pub fn msm<P: GpuCurve>(
    gpu: &Gpu,
    prog: &Program,
    t: Tuning,
    points: &[u8],
    scalars: &[u8],
) -> Result<Vec<u8>, GpuError> {
    let pb = point_bytes(P::CURVE);
    let n = scalars.len() / 32;
    if points.len() != pb * n || scalars.len() != 32 * n {
        return Err(GpuError::Device(format!(
            "{} bytes of points and {} of scalars do not make whole pairs",
            points.len(),
            scalars.len()
        )));
    }
    let mut acc = Projective::<P>::zero();
    if n > 0 {
        let chunk = chunk_points(gpu, t, P::CURVE, n)?;
        for (k, (p, s)) in points
            .chunks(pb * chunk)
            .zip(scalars.chunks(32 * chunk))
            .enumerate()
        {
            acc += msm_chunk::<P>(gpu, prog, t, Bases::Host(p), Scalars::Host(s))
                .map_err(|e| refusal(e, k, chunk))?;
        }
    }
    Ok(encode(acc))
}

/// G1 bases kept on the device, converted and checked once, in the chunks
/// an MSM of their number uses (the ABI's prepared bases).
pub struct Prepared {
    chunks: Vec<wgpu::Buffer>,
    n: usize,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("points", &self.n)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl aztec_backend_abi::export::Prepared for Prepared {
    fn count(&self) -> usize {
        self.n
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Device memory goes back now, not when wgpu next cleans up.
        for b in &self.chunks {
            b.destroy();
        }
    }
}

/// Uploads, checks and converts `points` (ABI encoding) into buffers of
/// their own.
pub fn prepare_g1(
    gpu: &Gpu,
    prog: &Program,
    t: Tuning,
    points: &[u8],
) -> Result<Prepared, GpuError> {
    if !points.len().is_multiple_of(64) {
        return Err(GpuError::Device(format!(
            "{} bytes are not whole points",
            points.len()
        )));
    }
    let n = points.len() / 64;
    let mut chunks = Vec::new();
    if n == 0 {
        return Ok(Prepared { chunks, n });
    }
    let chunk = chunk_points(gpu, t, Curve::G1, n)?;
    // The other bindings of the layout: only the report word is used.
    let b_counts = gpu.buffer("msm.counts", 4)?;
    let idle: Vec<wgpu::Buffer> = ["msm.scalars", "msm.sorted", "msm.tasks", "msm.partials"]
        .iter()
        .map(|name| gpu.buffer(name, 256))
        .collect::<Result<_, _>>()?;
    for (k, p) in points.chunks(64 * chunk).enumerate() {
        let m = (p.len() / 64) as u32;
        let b = gpu.storage("msm.prepared", p.len() as u64)?;
        gpu.upload(&[(&b, p)])?;
        gpu.clear(&b_counts, 4);
        let mut report = [0u8; 4];
        gpu.run(
            prog,
            &[&b, &idle[0], &b_counts, &idle[1], &idle[2], &idle[3]],
            &[Dispatch::new("convert_points", m as u64, &[m, 0])],
            &mut [(&b_counts, 0, &mut report)],
        )?;
        bad_point(u32::from_le_bytes(report)).map_err(|e| refusal(e, k, chunk))?;
        chunks.push(b);
    }
    Ok(Prepared { chunks, n })
}

/// `sum scalars[i] * bases[i]` in G1 over prepared bases, one scalar each.
pub fn msm_g1_prepared(
    gpu: &Gpu,
    prog: &Program,
    t: Tuning,
    bases: &Prepared,
    scalars: &[u8],
) -> Result<[u8; 64], GpuError> {
    if scalars.len() != 32 * bases.n {
        return Err(GpuError::Device(format!(
            "{} bytes of scalars for {} prepared bases",
            scalars.len(),
            bases.n
        )));
    }
    let chunk = chunk_points(gpu, t, Curve::G1, bases.n.max(1))?;
    prepared_chunks(gpu, prog, t, bases, |k, _, _| {
        Ok(Scalars::Host(
            scalars.chunks(32 * chunk).nth(k).unwrap_or_default(),
        ))
    })
}

/// `sum s[i] * bases[i]` in G1 over prepared bases, with `fill(first,
/// count)` putting each chunk's scalars into the pool's `msm.scalars` on the
/// device (from a kept vector) before the chunk runs.
pub fn msm_g1_prepared_filled(
    gpu: &Gpu,
    prog: &Program,
    t: Tuning,
    bases: &Prepared,
    mut fill: impl FnMut(usize, usize) -> Result<(), GpuError>,
) -> Result<[u8; 64], GpuError> {
    prepared_chunks(gpu, prog, t, bases, |_, first, count| {
        fill(first, count)?;
        Ok(Scalars::Device(count as u32))
    })
}

/// The chunks of an MSM over prepared bases, each chunk's scalars from
/// `scalars(k, first, count)`.
fn prepared_chunks<'s>(
    gpu: &Gpu,
    prog: &Program,
    t: Tuning,
    bases: &Prepared,
    mut scalars: impl FnMut(usize, usize, usize) -> Result<Scalars<'s>, GpuError>,
) -> Result<[u8; 64], GpuError> {
    let mut acc = Projective::<ark_bn254::g1::Config>::zero();
    if bases.n > 0 {
        let chunk = chunk_points(gpu, t, Curve::G1, bases.n)?;
        for (k, b) in bases.chunks.iter().enumerate() {
            let first = k * chunk;
            let count = chunk.min(bases.n - first);
            let s = scalars(k, first, count)?;
            acc +=
                msm_chunk(gpu, prog, t, Bases::Device(b), s).map_err(|e| refusal(e, k, chunk))?;
        }
    }
    encode(acc)
        .try_into()
        .map_err(|_| GpuError::from("internal: a G1 point is 64 bytes"))
}

/// A point in ABI encoding: x then y, each part of each coordinate as 32
/// little-endian bytes; zeros for the identity.
fn encode<P: GpuCurve>(acc: Projective<P>) -> Vec<u8> {
    let mut out = vec![0u8; point_bytes(P::CURVE)];
    if let Some((x, y)) = acc.into_affine().xy() {
        let parts = x
            .to_base_prime_field_elements()
            .chain(y.to_base_prime_field_elements());
        for (k, f) in parts.enumerate() {
            out[32 * k..32 * k + 32].copy_from_slice(&le_bytes(f));
        }
    }
    out
}

fn le_bytes(f: Fq) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, l) in f.into_bigint().0.iter().enumerate() {
        b[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_split_long_groups_into_levels() {
        let mut free = 3;
        let groups = vec![
            Group {
                start: 0,
                len: 0,
                dst: 0,
            },
            Group {
                start: 0,
                len: 5,
                dst: 1,
            },
            Group {
                start: 5,
                len: 32 * 32 * 3,
                dst: 2,
            },
        ];
        let mut words = vec![7, 7, 7];
        let levels = plan(groups, &mut free, &mut words);
        let tasks = |l: Level| -> Vec<[u32; 3]> {
            let at = 3 * l.first as usize;
            words[at..at + 3 * l.count as usize]
                .chunks(3)
                .map(|t| [t[0], t[1], t[2]])
                .collect()
        };
        // Tasks follow what `words` held; each level is one dispatch.
        assert_eq!(
            levels,
            vec![
                Level {
                    first: 1,
                    count: 98
                },
                Level {
                    first: 99,
                    count: 3
                },
                Level {
                    first: 102,
                    count: 1
                }
            ]
        );
        assert_eq!(free, 3 + 96 + 3);
        let level0 = tasks(levels[0]);
        assert_eq!(level0[..2], [[0, 0, 0], [0, 5, 1]]);
        assert!(level0[2..].iter().all(|t| t[1] == 32));
        assert_eq!(level0[2], [5, 32, 3]);
        assert_eq!(
            tasks(levels[1]),
            vec![[3, 32, 99], [35, 32, 100], [67, 32, 101]]
        );
        assert_eq!(tasks(levels[2]), vec![[99, 3, 2]]);
    }

    /// Bucket b's range at `level` from the bucket ends, as `bucket_range`
    /// in msm.wgsl computes it.
    fn bucket_range(ends: &[u32], b: usize, level: u32) -> (u32, u32) {
        let mut s = if b > 0 { ends[b - 1] } else { 0 };
        let mut e = ends[b];
        for _ in 0..level {
            let s2 = s / SLICE + b as u32;
            e = if e > s {
                (e - 1) / SLICE + b as u32 + 1
            } else {
                s2
            };
            s = s2;
        }
        (s, e)
    }

    /// Checks the slice passes' bookkeeping for bucket sizes `sizes` (one
    /// window's worth or more) against the layout of `m` points.
    fn check_slices(sizes: &[u32], m: usize, what: &str) {
        let l = Layout::of(m, Tuning::default());
        assert!(sizes.len() <= l.buckets as usize, "{what}");
        let mut ends = Vec::with_capacity(l.buckets as usize);
        let mut at = 0;
        for b in 0..l.buckets as usize {
            at += sizes.get(b).copied().unwrap_or(0);
            ends.push(at);
        }
        assert!(at as u64 <= l.windows as u64 * m as u64, "{what}");
        let most = sizes.iter().copied().max().unwrap_or(0);
        let passes = passes_for(most as u64);
        assert!(passes < l.pass_threads.len() as u32, "{what}: passes");
        for level in 0..=passes {
            // Thread t of this pass covers items [64t, 64t + 64) of this
            // level and writes its piece of bucket b to slot t + b of the next.
            let size = bucket_range(&ends, ends.len() - 1, level).1;
            assert!(
                size.div_ceil(SLICE) <= l.pass_threads[level as usize],
                "{what}: threads of pass {level}"
            );
            let mut last_end = 0;
            for b in 0..ends.len() {
                let (s, e) = bucket_range(&ends, b, level);
                let (ns, ne) = bucket_range(&ends, b, level + 1);
                assert!(s >= last_end && e >= s, "{what}: level {level} bucket {b}");
                last_end = e;
                if e > s {
                    for t in s / SLICE..=(e - 1) / SLICE {
                        let slot = t + b as u32;
                        assert!(ns <= slot && slot < ne, "{what}: pass {level} slot");
                        assert!(slot < l.regions[level as usize % 2], "{what}: region");
                    }
                } else {
                    assert_eq!(ns, ne, "{what}: empty bucket");
                }
            }
        }
        // After the passes, no bucket has more than SLICE pieces for `bucket_sums`.
        for b in 0..ends.len() {
            let (s, e) = bucket_range(&ends, b, passes + 1);
            assert!(
                e - s <= SLICE,
                "{what}: bucket {b} ends with {} pieces",
                e - s
            );
        }
    }

    #[test]
    fn slice_passes_give_every_piece_its_own_slot_inside_the_regions() {
        let mut x = 0x2545f491u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for m in [1usize, 100, 4096, 1 << 16] {
            let l = Layout::of(m, Tuning::default());
            let buckets = l.buckets as usize;
            let per_window = |f: &mut dyn FnMut(usize) -> u32| -> Vec<u32> {
                (0..buckets).map(|b| f(b % l.nb as usize)).collect()
            };
            // Random digits: about m / nb per bucket.
            let mut counts = vec![0u32; buckets];
            for w in 0..l.windows as usize {
                for _ in 0..m {
                    let v = next() % (l.nb + 1);
                    if v > 0 {
                        counts[w * l.nb as usize + v as usize - 1] += 1;
                    }
                }
            }
            check_slices(&counts, m, &format!("random, m = {m}"));
            // Every point in one bucket of every window: the most passes.
            let one = per_window(&mut |j| if j == 3 { m as u32 } else { 0 });
            check_slices(&one, m, &format!("one bucket, m = {m}"));
            // Buckets of 65 and of 1: every slice cut.
            let mut left = vec![m as u32; l.windows as usize];
            let cut: Vec<u32> = (0..buckets)
                .map(|b| {
                    let w = b / l.nb as usize;
                    let k = [SLICE + 1, 1][b % 2].min(left[w]);
                    left[w] -= k;
                    k
                })
                .collect();
            check_slices(&cut, m, &format!("65 and 1, m = {m}"));
        }
        // A bucket of 2^22 in one window needs passes 1 and 2.
        assert_eq!(passes_for(0), 0);
        assert_eq!(passes_for(63 * 64 - 1), 0);
        assert_eq!(passes_for(63 * 64), 1);
        assert_eq!(passes_for(4030 * 64 - 1), 1);
        assert_eq!(passes_for(4030 * 64), 2);
        assert_eq!(passes_for(1 << 22), 2);
        assert_eq!(Layout::of(1 << 22, Tuning::default()).pass_threads.len(), 3);
    }

    #[test]
    fn chunks_fit_the_binding_limit() {
        let tunings = [
            Tuning::default(),
            Tuning::parse(Some("4"), Some("1")).unwrap(),
            Tuning::parse(Some("18"), Some("32768")).unwrap(),
        ];
        for t in tunings {
            for c in [Curve::G1, Curve::G2] {
                for n in [1usize, 1000, 3000, 1 << 16, 1 << 20, 1 << 22] {
                    for limit in [1u64 << 18, 1 << 22, 1 << 27, 1 << 31] {
                        let mut m = n;
                        while m > 1 && chunk_bytes(c, m, t) > limit {
                            m = m.div_ceil(2);
                        }
                        assert!(
                            m == 1 || chunk_bytes(c, m, t) <= limit,
                            "{t:?}, {c:?}, n = {n}, limit = {limit}"
                        );
                    }
                }
            }
        }
        // Lavapipe's 128 MiB bindings take G1 chunks of 2^19 points (G2:
        // 2^17); large GPUs' bindings take 2^22 in one.
        let t = Tuning::default();
        assert!(chunk_bytes(Curve::G1, 1 << 19, t) <= 128 << 20);
        assert!(chunk_bytes(Curve::G1, 1 << 20, t) > 128 << 20);
        assert!(chunk_bytes(Curve::G1, 1 << 22, t) <= 1 << 31);
        assert!(chunk_bytes(Curve::G2, 1 << 17, t) <= 128 << 20);
        assert!(chunk_bytes(Curve::G2, 1 << 22, t) <= 1 << 31);
    }

    #[test]
    fn tuning_takes_only_what_the_kernels_can_run() {
        assert_eq!(Tuning::parse(None, Some(" ")).unwrap(), Tuning::default());
        let t = Tuning::parse(Some("14"), Some("8")).unwrap();
        assert_eq!((t.window, t.segment), (Some(14), 8));
        let l = Layout::of(1 << 20, t);
        assert_eq!((l.c, l.windows, l.segments), (14, 19, (1 << 13) / 8));
        // A segment longer than a window's buckets is the whole window.
        assert_eq!(
            Layout::of(10, Tuning::parse(Some("4"), Some("64")).unwrap()).segments,
            1
        );
        for (w, s) in [
            ("3", "8"),
            ("19", "8"),
            ("x", "8"),
            ("16", "0"),
            ("16", "24"),
            ("16", "65536"),
        ] {
            let e = Tuning::parse(Some(w), Some(s)).expect_err(&format!("{w}, {s}"));
            assert!(e.to_string().contains("AZTEC_PROVER_WGPU_"), "{e}");
        }
    }

    #[test]
    fn window_bits_grow_with_n() {
        assert_eq!(window_bits(1), 4);
        assert_eq!(window_bits(1 << 16), 13);
        assert_eq!(window_bits(1 << 19), 15);
        assert_eq!(window_bits(1 << 20), 16);
        assert_eq!(window_bits(1 << 24), 16);
        let bits: Vec<u32> = (0..25).map(|k| window_bits(1 << k)).collect();
        assert!(bits.windows(2).all(|w| w[0] <= w[1]), "{bits:?}");
    }
}

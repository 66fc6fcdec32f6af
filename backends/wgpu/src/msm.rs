//! G1 MSM on the GPU: Pippenger with signed c-bit digits.
//!
//! One call, per chunk of points that fits the device's binding limit:
//! 1. upload points and scalars; `convert_points` checks that every
//!    coordinate is below p and puts the points in Montgomery form (prepared
//!    bases went through it once, into buffers of their own, and only the
//!    scalars go up); `histogram` counts every (window, bucket);
//! 2. the host reads the counts (and the first bad coordinate, if any) back,
//!    lays the buckets out in `sorted` by a prefix sum, and plans the sums: a
//!    bucket of at most [`TASK_LEN`] points is one task, a larger one is split
//!    and its partial sums are summed again, level by level, so that no
//!    thread walks a long list (scalars from real witnesses put most points
//!    in a few buckets); each level's tasks run longest first;
//! 3. `scatter` sorts point indices into buckets, `accumulate_points` (XYZZ)
//!    and `accumulate_partials` run the planned levels, `bucket_sums` weighs each
//!    segment of a window's buckets, and the segments are summed per window
//!    with the same planned levels;
//! 4. the host reads one point per window back and combines the windows
//!    (a few hundred doublings) with arkworks.

use ark_bn254::{Fq, G1Affine, G1Projective};
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup};
use ark_ff::{Field, PrimeField, Zero};

use crate::gpu::{Dispatch, Gpu, Program, as_bytes, words_of};

/// Entry points of the MSM program, the longest to compile first (they are
/// compiled in this order on several threads).
pub const ENTRIES: &[&str] = &[
    "accumulate_points",
    "bucket_sums",
    "accumulate_partials",
    "convert_points",
    "histogram",
    "scatter",
];

/// Storage buffers of the MSM program (after the parameters).
pub const BUFFERS: u32 = 6;

/// Most points (or partial sums) one thread adds up.
pub const TASK_LEN: u32 = 32;

/// Buckets one `bucket_sums` thread walks.
const SEGMENT: u32 = 32;

/// Words of a stored projective point.
const PROJ_WORDS: u64 = 24;

/// Window width for `n` points.
pub fn window_bits(n: usize) -> u32 {
    let log = usize::BITS - n.max(1).leading_zeros();
    log.saturating_sub(4).clamp(4, 16)
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
        let (level, next) = plan_level(&groups, free, words);
        levels.push(level);
        groups = next;
    }
    levels
}

/// One level of [`plan`]. Its tasks are laid out longest first, by a
/// counting sort on the length (at most [`TASK_LEN`]): neighbouring threads
/// run in lock-step on a GPU, so a short task next to a long one would idle
/// until the long one ends. A large level is planned on several host threads
/// (it is on the path of every call: about a million tasks at 2^20 points).
fn plan_level(groups: &[Group], free: &mut u32, words: &mut Vec<u32>) -> (Level, Vec<Group>) {
    const GROUPS_PER_THREAD: usize = 1 << 15;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(groups.len().div_ceil(GROUPS_PER_THREAD))
        .max(1);
    plan_level_on(groups, free, words, threads)
}

/// Task lengths 0..=TASK_LEN.
const LENGTHS: usize = TASK_LEN as usize + 1;

/// [`plan_level`] on `threads` threads, each taking one range of the groups.
/// Within a length, the ranges' tasks follow each other in order, so the
/// result does not depend on the number of threads.
fn plan_level_on(
    groups: &[Group],
    free: &mut u32,
    words: &mut Vec<u32>,
    threads: usize,
) -> (Level, Vec<Group>) {
    let ranges: Vec<&[Group]> = groups
        .chunks(groups.len().div_ceil(threads).max(1))
        .collect();
    let tallies = on_threads(ranges.iter().map(|r| move || census(r)).collect());
    // Where each range's tasks of each length go, and its first fresh slot.
    let first = (words.len() / 3) as u32;
    let mut count = 0u32;
    for len in (0..LENGTHS).rev() {
        count += tallies.iter().map(|c| c.0[len]).sum::<u32>();
    }
    words.resize(3 * (first + count) as usize, 0);
    let mut outs: Vec<Vec<&mut [u32]>> = (0..ranges.len()).map(|_| Vec::new()).collect();
    let mut rest = &mut words[3 * first as usize..];
    for len in (0..LENGTHS).rev() {
        for (r, c) in tallies.iter().enumerate() {
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(3 * c.0[len] as usize);
            outs[r].push(mine);
            rest = tail;
        }
    }
    let mut jobs = Vec::with_capacity(ranges.len());
    for ((range, mut out), c) in ranges.iter().zip(outs).zip(&tallies) {
        out.reverse(); // indexed by length
        let slot = *free;
        *free += c.1;
        jobs.push(move || fill(range, out, slot));
    }
    let next = on_threads(jobs).concat();
    (Level { first, count }, next)
}

/// Tasks of each length in `range`, and the fresh slots its split groups take.
fn census(range: &[Group]) -> ([u32; LENGTHS], u32) {
    let mut per_len = [0u32; LENGTHS];
    let mut slots = 0;
    for g in range {
        if g.len <= TASK_LEN {
            per_len[g.len as usize] += 1;
        } else {
            per_len[TASK_LEN as usize] += g.len / TASK_LEN;
            if g.len % TASK_LEN != 0 {
                per_len[(g.len % TASK_LEN) as usize] += 1;
            }
            slots += g.len.div_ceil(TASK_LEN);
        }
    }
    (per_len, slots)
}

/// Writes `range`'s tasks into `out` (one slice per length, sized by
/// [`census`]); split groups take fresh slots from `slot` on. Returns the
/// groups the next level sums.
fn fill(range: &[Group], mut out: Vec<&mut [u32]>, mut slot: u32) -> Vec<Group> {
    let mut at = [0usize; LENGTHS];
    let mut put = |start: u32, len: u32, dst: u32| {
        let k = &mut at[len as usize];
        out[len as usize][*k..*k + 3].copy_from_slice(&[start, len, dst]);
        *k += 3;
    };
    let mut next = Vec::new();
    for g in range {
        if g.len <= TASK_LEN {
            put(g.start, g.len, g.dst);
            continue;
        }
        let parts = g.len.div_ceil(TASK_LEN);
        for j in 0..parts {
            let at = j * TASK_LEN;
            put(g.start + at, TASK_LEN.min(g.len - at), slot + j);
        }
        next.push(Group {
            start: slot,
            len: parts,
            dst: g.dst,
        });
        slot += parts;
    }
    next
}

/// Runs each job, on threads of its own when there are several; results in order.
fn on_threads<T: Send, F: FnOnce() -> T + Send>(jobs: Vec<F>) -> Vec<T> {
    if jobs.len() <= 1 {
        return jobs.into_iter().map(|f| f()).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs.into_iter().map(|f| s.spawn(f)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// A stored projective point (Montgomery form, R = 2^260) as arkworks' point.
fn read_point(words: &[u32]) -> G1Projective {
    // x_std = x_mont / 2^260.
    let r_inv = Fq::from(2u64)
        .pow([260u64])
        .inverse()
        .unwrap_or_else(|| unreachable!("2 is invertible"));
    let coord = |k: usize| {
        // Below 2p on the device (almost reduced): reduced here.
        let bytes: Vec<u8> = words[8 * k..8 * k + 8]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        Fq::from_le_bytes_mod_order(&bytes) * r_inv
    };
    let (x, y, z) = (coord(0), coord(1), coord(2));
    if z.is_zero() {
        return G1Projective::zero();
    }
    let zi = z.inverse().unwrap_or_default();
    G1Affine::new_unchecked(x * zi, y * zi).into_group()
}

/// Why a chunk has no sum.
enum Refused {
    /// The chunk's point `.0` has its coordinate `.1` ("x" or "y") not below
    /// p: the ABI promises canonical coordinates, and the GPU would otherwise
    /// compute garbage quietly.
    Point(u32, &'static str),
    /// The device failed.
    Device(String),
}

impl From<String> for Refused {
    fn from(e: String) -> Refused {
        Refused::Device(e)
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
fn msm_chunk(
    gpu: &Gpu,
    prog: &Program,
    bases: Bases<'_>,
    scalars: &[u8],
) -> Result<G1Projective, Refused> {
    let n = (scalars.len() / 32) as u32;
    let c = window_bits(n as usize);
    let windows = 254 / c + 1;
    let nb = 1u32 << (c - 1);
    let buckets = windows * nb;

    let b_scalars = gpu.buffer("msm.scalars", scalars.len() as u64)?;
    // One counter per bucket, then the report of a coordinate not below p.
    let b_counts = gpu.buffer("msm.counts", (buckets as u64 + 1) * 4)?;
    let b_sorted = gpu.buffer("msm.sorted", windows as u64 * n as u64 * 4)?;
    let digits = [n, c, windows];
    let mut first = vec![Dispatch::new("histogram", n as u64, &digits)];
    let b_points = match bases {
        Bases::Host(points) => {
            let b = gpu.buffer("msm.points", points.len() as u64)?;
            gpu.upload(&[(&b, points), (&b_scalars, scalars)])?;
            first.insert(0, Dispatch::new("convert_points", n as u64, &[n, buckets]));
            b
        }
        Bases::Device(b) => {
            gpu.upload(&[(&b_scalars, scalars)])?;
            b.clone()
        }
    };
    gpu.clear(&b_counts, (buckets as u64 + 1) * 4);
    // The task and partial buffers are bound too; their sizes come later.
    let b_tasks = gpu.buffer("msm.tasks", 256)?;
    let b_partials = gpu.buffer("msm.partials", 256)?;

    let mut counts = vec![0u8; (buckets as usize + 1) * 4];
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
        &first,
        Some((&b_counts, 0, &mut counts)),
    )?;
    let mut counts = words_of(&counts);
    bad_point(counts.pop().unwrap_or(0))?;

    // Bucket layout and the summation plan.
    let planning = std::time::Instant::now();
    let mut offsets = Vec::with_capacity(buckets as usize);
    let mut groups = Vec::with_capacity(buckets as usize);
    let mut at = 0u32;
    for (b, &k) in counts.iter().enumerate() {
        offsets.push(at);
        groups.push(Group {
            start: at,
            len: k,
            dst: b as u32,
        });
        at += k;
    }
    let mut free = buckets;
    let mut task_words: Vec<u32> = Vec::new();
    let bucket_levels = plan(groups, &mut free, &mut task_words);
    let segments = nb / SEGMENT.min(nb);
    let seg_base = free;
    let final_base = seg_base + windows * segments;
    free = final_base + windows;
    let seg_levels = plan(
        (0..windows)
            .map(|w| Group {
                start: seg_base + w * segments,
                len: segments,
                dst: final_base + w,
            })
            .collect(),
        &mut free,
        &mut task_words,
    );

    let mut dispatches = vec![Dispatch::new("scatter", n as u64, &digits)];
    for (k, level) in bucket_levels.iter().chain(seg_levels.iter()).enumerate() {
        let entry = if k == 0 {
            "accumulate_points"
        } else {
            "accumulate_partials"
        };
        dispatches.push(Dispatch::new(
            entry,
            level.count as u64,
            &[level.count, level.first],
        ));
        if k + 1 == bucket_levels.len() {
            let threads = windows * segments;
            dispatches.push(Dispatch::new(
                "bucket_sums",
                threads as u64,
                &[threads, nb, segments, seg_base],
            ));
        }
    }
    let b_tasks = gpu.buffer("msm.tasks", task_words.len() as u64 * 4)?;
    let b_partials = gpu.buffer("msm.partials", free as u64 * PROJ_WORDS * 4)?;
    if b_partials.size() > gpu.max_binding() || b_tasks.size() > gpu.max_binding() {
        return Err(Refused::Device(
            "internal: MSM working buffers exceed the binding limit".into(),
        ));
    }
    gpu.trace("plan", planning);
    gpu.upload(&[
        (&b_counts, as_bytes(&offsets)),
        (&b_tasks, as_bytes(&task_words)),
    ])?;
    let mut out = vec![0u8; windows as usize * PROJ_WORDS as usize * 4];
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
        Some((&b_partials, final_base as u64 * PROJ_WORDS * 4, &mut out)),
    )?;
    let out = words_of(&out);

    let mut acc = G1Projective::zero();
    for w in (0..windows as usize).rev() {
        for _ in 0..c {
            acc.double_in_place();
        }
        acc += read_point(&out[w * PROJ_WORDS as usize..(w + 1) * PROJ_WORDS as usize]);
    }
    Ok(acc)
}

/// The largest buffer an MSM of `m` points needs, with the window width such
/// a chunk gets: the upload of points and scalars, `sorted`, the counters,
/// and the plan's slots and tasks at their worst. Splitting a bucket of k > 32 items takes
/// ceil(k / 32) <= k / 16.5 fresh slots (buckets of 33 take the most), and
/// so on level after level: under items / 15 in all.
fn chunk_bytes(m: usize) -> u64 {
    let m = m as u64;
    let c = window_bits(m as usize);
    let windows = (254 / c + 1) as u64;
    let nb = 1u64 << (c - 1);
    let buckets = windows * nb;
    let items = windows * m;
    let segments = nb / (SEGMENT as u64).min(nb);
    let fresh = items / 15 + 1;
    let per_window = windows * (segments + segments / TASK_LEN as u64 + 3);
    let slots = buckets + fresh + per_window;
    let tasks = buckets + items / TASK_LEN as u64 + fresh + per_window;
    [
        96 * m,
        4 * items,
        4 * (buckets + 1),
        PROJ_WORDS * 4 * slots,
        12 * tasks,
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

/// Points per chunk of an MSM of `n` points, so that every buffer of a chunk
/// fits one binding whatever the scalars (halved until it does).
pub fn chunk_points(gpu: &Gpu, n: usize) -> usize {
    let limit = gpu.max_binding();
    let mut m = n.clamp(1, 1 << 30);
    while m > 1 && chunk_bytes(m) > limit {
        m = m.div_ceil(2);
    }
    m
}

/// The error of a refused chunk `k` of `chunk` points.
fn refusal(e: Refused, k: usize, chunk: usize) -> String {
    match e {
        Refused::Point(i, coord) => format!(
            "point {}: its {coord} coordinate is not below the field modulus",
            k * chunk + i as usize
        ),
        Refused::Device(e) => e,
    }
}

/// `sum scalars[i] * points[i]` in G1, ABI encodings in and out.
pub fn msm_g1(
    gpu: &Gpu,
    prog: &Program,
    points: &[u8],
    scalars: &[u8],
) -> Result<[u8; 64], String> {
    let n = scalars.len() / 32;
    if points.len() != 64 * n || scalars.len() != 32 * n {
        return Err(format!(
            "{} bytes of points and {} of scalars do not make whole pairs",
            points.len(),
            scalars.len()
        ));
    }
    let mut acc = G1Projective::zero();
    if n > 0 {
        let chunk = chunk_points(gpu, n);
        for (k, (p, s)) in points
            .chunks(64 * chunk)
            .zip(scalars.chunks(32 * chunk))
            .enumerate()
        {
            acc += msm_chunk(gpu, prog, Bases::Host(p), s).map_err(|e| refusal(e, k, chunk))?;
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
pub fn prepare_g1(gpu: &Gpu, prog: &Program, points: &[u8]) -> Result<Prepared, String> {
    if !points.len().is_multiple_of(64) {
        return Err(format!("{} bytes are not whole points", points.len()));
    }
    let n = points.len() / 64;
    let mut chunks = Vec::new();
    if n == 0 {
        return Ok(Prepared { chunks, n });
    }
    let chunk = chunk_points(gpu, n);
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
            Some((&b_counts, 0, &mut report)),
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
    bases: &Prepared,
    scalars: &[u8],
) -> Result<[u8; 64], String> {
    if scalars.len() != 32 * bases.n {
        return Err(format!(
            "{} bytes of scalars for {} prepared bases",
            scalars.len(),
            bases.n
        ));
    }
    let mut acc = G1Projective::zero();
    if bases.n > 0 {
        let chunk = chunk_points(gpu, bases.n);
        for (k, (b, s)) in bases
            .chunks
            .iter()
            .zip(scalars.chunks(32 * chunk))
            .enumerate()
        {
            acc += msm_chunk(gpu, prog, Bases::Device(b), s).map_err(|e| refusal(e, k, chunk))?;
        }
    }
    Ok(encode(acc))
}

/// A point in ABI encoding.
fn encode(acc: G1Projective) -> [u8; 64] {
    let mut out = [0u8; 64];
    if let Some((x, y)) = acc.into_affine().xy() {
        out[..32].copy_from_slice(&le_bytes(x));
        out[32..].copy_from_slice(&le_bytes(y));
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
    fn plans_split_long_buckets_into_levels() {
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
        assert_eq!(levels.len(), 3);
        assert_eq!(
            levels[0],
            Level {
                first: 1,
                count: 98
            }
        );
        assert_eq!(
            levels[1],
            Level {
                first: 99,
                count: 3
            }
        );
        assert_eq!(tasks(levels[2]), vec![[3 + 96, 3, 2]]);
        assert_eq!(words.len(), 3 * (1 + 98 + 3 + 1));
        assert_eq!(free, 3 + 96 + 3);
        // Level 0: 96 pieces of the long bucket, longest first, then the two short ones.
        let level0 = tasks(levels[0]);
        let covered: u32 = level0[..96].iter().map(|t| t[1]).sum();
        assert_eq!(covered, 32 * 32 * 3);
        assert!(level0.windows(2).all(|w| w[0][1] >= w[1][1]));
        assert_eq!(level0[96..], [[0, 5, 1], [0, 0, 0]]);
        assert_eq!(
            tasks(levels[1]),
            vec![[3, 32, 99], [35, 32, 100], [67, 32, 101]]
        );
    }

    #[test]
    fn a_level_puts_remainders_after_full_tasks() {
        let mut free = 2;
        let mut words = Vec::new();
        let groups = vec![
            Group {
                start: 0,
                len: 40,
                dst: 0,
            },
            Group {
                start: 40,
                len: 9,
                dst: 1,
            },
        ];
        let levels = plan(groups, &mut free, &mut words);
        assert_eq!(levels.len(), 2);
        assert_eq!(words[..9], [0, 32, 2, 40, 9, 1, 32, 8, 3]);
        assert_eq!(words[9..], [2, 2, 0]);
    }

    #[test]
    fn a_level_planned_on_several_threads_is_the_same_plan() {
        let mut x = 0x2545f491u32;
        let mut at = 0;
        let groups: Vec<Group> = (0..5000)
            .map(|b| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Empty, short, just over a task, and long groups.
                let len = match x % 10 {
                    0 => 0,
                    1 => 33 + x % 8,
                    2 => 300 + x % 1000,
                    _ => x % 33,
                };
                at += len;
                Group {
                    start: at - len,
                    len,
                    dst: b,
                }
            })
            .collect();
        let one = {
            let (mut free, mut words) = (5000, vec![1, 2, 3]);
            let (level, next) = plan_level_on(&groups, &mut free, &mut words, 1);
            (
                level,
                next.iter()
                    .map(|g| [g.start, g.len, g.dst])
                    .collect::<Vec<_>>(),
                free,
                words,
            )
        };
        for threads in [2, 3, 7] {
            let (mut free, mut words) = (5000, vec![1, 2, 3]);
            let (level, next) = plan_level_on(&groups, &mut free, &mut words, threads);
            let next: Vec<_> = next.iter().map(|g| [g.start, g.len, g.dst]).collect();
            assert_eq!((level, next, free, words), one, "{threads} threads");
        }
        // Every item is in exactly one task of the first level.
        let items: u32 = one.3[3..].chunks(3).map(|t| t[1]).sum();
        assert_eq!(items, at);
    }

    #[test]
    fn the_chunk_bound_covers_the_worst_plan() {
        // Every bucket of 33 items: the most fresh slots a plan can take.
        for (windows, nb) in [(16u32, 32768u32), (32, 128), (51, 16)] {
            let buckets = windows * nb;
            let groups: Vec<Group> = (0..buckets)
                .map(|b| Group {
                    start: 33 * b,
                    len: 33,
                    dst: b,
                })
                .collect();
            let mut free = buckets;
            let mut words = Vec::new();
            plan(groups, &mut free, &mut words);
            let items = 33 * buckets as u64;
            assert!(
                ((free - buckets) as u64) <= items / 15 + 1,
                "{windows} x {nb}"
            );
            assert!((words.len() / 3) as u64 <= buckets as u64 + items / 32 + items / 15 + 1);
        }
        // Chunks shrink until they fit, with their own window width.
        for n in [1usize, 1000, 3000, 1 << 16, 1 << 20, 1 << 22] {
            for limit in [1u64 << 18, 1 << 22, 1 << 27, 1 << 31] {
                let mut m = n;
                while m > 1 && chunk_bytes(m) > limit {
                    m = m.div_ceil(2);
                }
                assert!(
                    m == 1 || chunk_bytes(m) <= limit,
                    "n = {n}, limit = {limit}"
                );
            }
        }
        // 2^20 random points plan about 100 MB of slots; the bound allows for
        // buckets of 33, so it asks for more than lavapipe's 128 MiB.
        assert!(chunk_bytes(1 << 19) <= 128 << 20);
        assert!(chunk_bytes(1 << 20) > 128 << 20);
        assert!(chunk_bytes(1 << 22) <= 1 << 31);
    }

    #[test]
    fn window_bits_grow_with_n() {
        assert_eq!(window_bits(1), 4);
        assert_eq!(window_bits(1 << 16), 13);
        assert_eq!(window_bits(1 << 20), 16);
        assert_eq!(window_bits(1 << 24), 16);
    }
}

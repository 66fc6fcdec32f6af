// Pippenger MSM over BN254 G1 or G2 (appended to the generated field code
// and the curve code: `Fc` is a coordinate, Fq for G1 or Fq2 for G2, of CW
// words in buffers; a point is PW = 2 CW words, a slot SW = 4 CW).
//
// Points are added to bucket sums in XYZZ coordinates (below: fewest
// multiplications for adding an affine point), falling back on the complete
// formula, and the sums are stored as XYZZ. Sums of stored sums are
// projective (X:Y:Z) with the complete addition of Renes, Costello
// and Batina (2015, algorithm 7 for a = 0, with the curve's b3 = 3b): no
// branch on equal points or the identity, and it doubles too.
//
// Buffers (one layout for every kernel):
//   points:   PW words per affine point (x, y packed), Montgomery after `convert_points`
//   scalars:  8 words per scalar, little-endian, standard form
//   counts:   one counter per (window, bucket): the histogram, then (the scan)
//             each bucket's first item in `sorted`, then (scatter) its end;
//             after them the report of a bad coordinate, the number of
//             slice passes needed, and the scan's block sums and maxima
//   sorted:   per (window, bucket), the point indices with the sign in bit 31
//   tasks:    (start, len, dst) triples, a sum of slots each (segment levels)
//   partials: SW words per XYZZ point: the pieces of the slice passes
//             (two regions, used in turn), segment sums, their partial sums

@group(0) @binding(1) var<storage, read_write> points: array<u32>;
@group(0) @binding(2) var<storage, read_write> scalars: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> sorted: array<u32>;
@group(0) @binding(5) var<storage, read_write> tasks: array<u32>;
@group(0) @binding(6) var<storage, read_write> partials: array<u32>;

struct Proj { x: Fc, y: Fc, z: Fc }

fn proj_identity() -> Proj { return Proj(fc_zero(), fc_one(), fc_zero()); }

fn proj_add(p: Proj, q: Proj) -> Proj {
  var t0 = fc_mul(p.x, q.x);
  var t1 = fc_mul(p.y, q.y);
  var t2 = fc_mul(p.z, q.z);
  var t3 = fc_mul(fc_add(p.x, p.y), fc_add(q.x, q.y));
  var t4 = fc_add(t0, t1);
  t3 = fc_sub(t3, t4);
  t4 = fc_mul(fc_add(p.y, p.z), fc_add(q.y, q.z));
  t4 = fc_sub(t4, fc_add(t1, t2));
  var x3 = fc_mul(fc_add(p.x, p.z), fc_add(q.x, q.z));
  var y3 = fc_sub(x3, fc_add(t0, t2));
  x3 = fc_add(t0, t0);
  t0 = fc_add(x3, t0);
  t2 = fc_mul_b3(t2);
  var z3 = fc_add(t1, t2);
  t1 = fc_sub(t1, t2);
  y3 = fc_mul_b3(y3);
  x3 = fc_mul(t4, y3);
  t2 = fc_mul(t3, t1);
  x3 = fc_sub(t2, x3);
  y3 = fc_mul(y3, t0);
  t1 = fc_mul(t1, z3);
  y3 = fc_add(t1, y3);
  t0 = fc_mul(t0, t3);
  z3 = fc_mul(z3, t4);
  z3 = fc_add(z3, t0);
  return Proj(x3, y3, z3);
}

// One field element (8 words) of `points` or `partials`; the curve code
// before this file builds its coordinates (`load_coord`, `load_partial_fc`,
// `store_partial_fc`) from them.
fn load_point_fe(at: u32) -> Fe {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = points[at + k]; }
  return fe_unpack(w);
}

fn load_partial_fe(at: u32) -> Fe {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = partials[at + k]; }
  return fe_unpack(w);
}

fn store_partial_fe(at: u32, a: Fe) {
  let w = fe_pack(a);
  for (var k = 0u; k < 8u; k++) { partials[at + k] = w[k]; }
}

// A running sum in extended Jacobian coordinates ("XYZZ"): x = X/ZZ,
// y = Y/ZZZ with ZZ^3 = ZZZ^2, and ZZ = 0 for the identity. Adding an affine
// point costs 8 multiplications and 2 squarings (madd-2008-s), against 11
// multiplications and 2 scalings by 3b for the complete projective formula.
// The formula is not complete: it fails when the sum so far is the point
// added or its negation. A thread that meets that (only inputs built for it
// do) sums its slice again on the complete formula.
struct Xyzz { x: Fc, y: Fc, zz: Fc, zzz: Fc }

fn xyzz_identity() -> Xyzz { return Xyzz(fc_zero(), fc_zero(), fc_zero(), fc_zero()); }

// Slots of `partials` hold XYZZ points (SW = 4 CW words), the form the hot
// loop ends in, so that it stores a sum without converting it.
fn store_xyzz(i: u32, p: Xyzz) {
  store_partial_fc(SW * i, p.x);
  store_partial_fc(SW * i + CW, p.y);
  store_partial_fc(SW * i + 2u * CW, p.zz);
  store_partial_fc(SW * i + 3u * CW, p.zzz);
}

// Slot i as a projective point: (X/ZZ, Y/ZZZ) is (X·ZZZ : Y·ZZ : ZZ·ZZZ).
fn load_slot(i: u32) -> Proj {
  let zz = load_partial_fc(SW * i + 2u * CW);
  if (fc_is_zero(zz)) { return proj_identity(); }
  let zzz = load_partial_fc(SW * i + 3u * CW);
  return Proj(fc_mul(load_partial_fc(SW * i), zzz), fc_mul(load_partial_fc(SW * i + CW), zz), fc_mul(zz, zzz));
}

// (X : Y : Z) is (X·Z, Y·Z^2, Z^2, Z^3) in XYZZ; Z = 0 gives ZZ = 0.
fn store_slot(i: u32, p: Proj) {
  let zz = fc_sqr(p.z);
  store_xyzz(i, Xyzz(fc_mul(p.x, p.z), fc_mul(p.y, zz), zz, fc_mul(zz, p.z)));
}

// Whether the coordinate at word `at` of `points` (standard form) is below p.
fn below_base_p(at: u32) -> bool {
  for (var k = 0u; k < 8u; k++) {
    let j = 7u - k;
    let w = points[at + j];
    if (w != BASE_P[j]) { return w < BASE_P[j]; }
  }
  return false;
}

// params: [0] = number of points, [1] = the word of `counts` that reports
// the first coordinate not below p, as 0xffffffff - (2 * point + (0 for x, 1 for y)).
@compute @workgroup_size(64)
fn convert_points(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= params[0]) { return; }
  var nz: u32 = 0u;
  for (var k = 0u; k < PW; k++) { nz |= points[PW * i + k]; }
  if (nz == 0u) { return; }
  // Field elements of 8 words: CW / 8 per coordinate.
  for (var part = 0u; part < PW / 8u; part++) {
    if (!below_base_p(PW * i + 8u * part)) {
      atomicMax(&counts[params[1]], 0xffffffffu - (2u * i + part / (CW / 8u)));
      return;
    }
  }
  for (var part = 0u; part < PW / 8u; part++) {
    let m = fe_pack(fe_to_mont(load_point_fe(PW * i + 8u * part)));
    for (var k = 0u; k < 8u; k++) { points[PW * i + 8u * part + k] = m[k]; }
  }
}

// The scalar i, reduced below r.
fn load_scalar(i: u32) -> array<u32, 8> {
  var s: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { s[k] = scalars[8u * i + k]; }
  for (var round = 0u; round < 6u; round++) {
    // s >= r ?
    var ge = true;
    for (var k = 0u; k < 8u; k++) {
      let j = 7u - k;
      if (s[j] != SCALAR_R[j]) { ge = s[j] > SCALAR_R[j]; break; }
    }
    if (!ge) { break; }
    var br = 0u;
    for (var k = 0u; k < 8u; k++) {
      let d = s[k] - SCALAR_R[k] - br;
      br = select(0u, 1u, s[k] < SCALAR_R[k] + br || (br == 1u && SCALAR_R[k] == 0xffffffffu));
      s[k] = d;
    }
  }
  return s;
}

fn scalar_bits(s: array<u32, 8>, at: u32, c: u32) -> u32 {
  let word = at / 32u;
  let sh = at % 32u;
  if (word >= 8u) { return 0u; }
  var v = s[word] >> sh;
  if (sh + c > 32u && word + 1u < 8u) { v |= s[word + 1u] << (32u - sh); }
  return v & ((1u << c) - 1u);
}

// params: [0] = points, [1] = window bits c, [2] = windows
// For every window, the signed digit's bucket (or none) goes to the histogram.
@compute @workgroup_size(64)
fn histogram(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= params[0]) { return; }
  let c = params[1];
  let half = 1u << (c - 1u);
  let s = load_scalar(i);
  var carry = 0u;
  for (var w = 0u; w < params[2]; w++) {
    var v = scalar_bits(s, w * c, c) + carry;
    carry = select(0u, 1u, v > half);
    if (v > half) { v = (1u << c) - v; }
    if (v != 0u) { atomicAdd(&counts[w * half + v - 1u], 1u); }
  }
}

// params: as `histogram`. `counts` holds each bucket's first free slot.
@compute @workgroup_size(64)
fn scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= params[0]) { return; }
  let c = params[1];
  let half = 1u << (c - 1u);
  let s = load_scalar(i);
  var carry = 0u;
  for (var w = 0u; w < params[2]; w++) {
    var v = scalar_bits(s, w * c, c) + carry;
    var sign = 0u;
    if (v > half) { v = (1u << c) - v; carry = 1u; sign = 0x80000000u; } else { carry = 0u; }
    if (v != 0u) {
      let at = atomicAdd(&counts[w * half + v - 1u], 1u);
      sorted[at] = i | sign;
    }
  }
}

// The bucket counters become offsets on the device: each thread of
// `scan_blocks` sums a block of SCAN_BLOCK counters (and notes the largest),
// one workgroup of `scan_top` turns the block sums into prefix sums (and
// works out how many slice passes the largest bucket needs), and each thread
// of `scan_offsets` rewrites its block as offsets from there.
// params (all three): [0] = buckets. After the counters: the report word,
// the pass count, then the block sums and the block maxima.

fn scan_blocks_of(buckets: u32) -> u32 { return (buckets + SCAN_BLOCK - 1u) / SCAN_BLOCK; }

@compute @workgroup_size(64)
fn scan_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  let buckets = params[0];
  let blocks = scan_blocks_of(buckets);
  if (i >= blocks) { return; }
  let end = min(i * SCAN_BLOCK + SCAN_BLOCK, buckets);
  var sum = 0u;
  var most = 0u;
  for (var j = i * SCAN_BLOCK; j < end; j++) {
    let c = atomicLoad(&counts[j]);
    sum += c;
    most = max(most, c);
  }
  atomicStore(&counts[buckets + 2u + i], sum);
  atomicStore(&counts[buckets + 2u + blocks + i], most);
}

// Slice passes after the first for a largest bucket of `most` items: a run
// of k items spans at most k / SLICE + 2 slices, so it leaves that many
// pieces; passes go on until no bucket has more than SLICE pieces.
fn passes_for(most: u32) -> u32 {
  var pieces = most / SLICE + 2u;
  var passes = 0u;
  while (pieces > SLICE) {
    pieces = pieces / SLICE + 2u;
    passes++;
  }
  return passes;
}

var<workgroup> scan_sum: array<u32, 64>;
var<workgroup> scan_most: array<u32, 64>;

// One workgroup: each thread takes a run of block sums, the workgroup scans
// the runs' totals in shared memory, and each thread writes its run's prefix sums.
@compute @workgroup_size(64)
fn scan_top(@builtin(local_invocation_id) lid: vec3<u32>) {
  let buckets = params[0];
  let blocks = scan_blocks_of(buckets);
  let per = (blocks + 63u) / 64u;
  let lo = min(lid.x * per, blocks);
  let hi = min(lo + per, blocks);
  var sum = 0u;
  var most = 0u;
  for (var j = lo; j < hi; j++) {
    sum += atomicLoad(&counts[buckets + 2u + j]);
    most = max(most, atomicLoad(&counts[buckets + 2u + blocks + j]));
  }
  scan_sum[lid.x] = sum;
  scan_most[lid.x] = most;
  workgroupBarrier();
  for (var d = 1u; d < 64u; d *= 2u) {
    var v = scan_sum[lid.x];
    var m = scan_most[lid.x];
    if (lid.x >= d) {
      v += scan_sum[lid.x - d];
      m = max(m, scan_most[lid.x - d]);
    }
    workgroupBarrier();
    scan_sum[lid.x] = v;
    scan_most[lid.x] = m;
    workgroupBarrier();
  }
  var run = scan_sum[lid.x] - sum;
  for (var j = lo; j < hi; j++) {
    let v = atomicLoad(&counts[buckets + 2u + j]);
    atomicStore(&counts[buckets + 2u + j], run);
    run += v;
  }
  if (lid.x == 63u) { atomicStore(&counts[buckets + 1u], passes_for(scan_most[63])); }
}

@compute @workgroup_size(64)
fn scan_offsets(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  let buckets = params[0];
  if (i >= scan_blocks_of(buckets)) { return; }
  let end = min(i * SCAN_BLOCK + SCAN_BLOCK, buckets);
  var run = atomicLoad(&counts[buckets + 2u + i]);
  for (var j = i * SCAN_BLOCK; j < end; j++) {
    let c = atomicLoad(&counts[j]);
    atomicStore(&counts[j], run);
    run += c;
  }
}

// Slice passes. Pass 0 cuts `sorted` into slices of SLICE items, one thread
// each, whatever the buckets: every thread does the same additions, so
// neighbouring threads (which run in lock-step) finish together, and a
// bucket of a million items (real witnesses have them) is spread over many
// threads. Thread t keeps the sum of its items of bucket b, a piece, in slot
// t + b; so the pieces of one bucket are consecutive slots, and pass 1 cuts
// those into slices again, and so on until no bucket has more than SLICE
// pieces, which `bucket_sums` adds as it walks the buckets. The slots are
// unique because a thread's buckets never come before the buckets of the
// thread before it.
//
// Bucket b's items at `level`: [start, end). Level 0: its run of `sorted`
// (once `scatter` has run, `counts` holds each bucket's end). Level L + 1:
// the slots of its pieces from level L. Ranges of consecutive buckets never
// overlap or go back, at every level; between them may be unused slots.
fn bucket_range(b: u32, level: u32) -> vec2<u32> {
  var s = 0u;
  if (b > 0u) { s = atomicLoad(&counts[b - 1u]); }
  var e = atomicLoad(&counts[b]);
  for (var l = 0u; l < level; l++) {
    let s2 = s / SLICE + b;
    if (e > s) { e = (e - 1u) / SLICE + b + 1u; } else { e = s2; }
    s = s2;
  }
  return vec2<u32>(s, e);
}

// The first bucket from `begin` on whose range at `level` ends after item p
// (`buckets` if none).
fn bucket_at(p: u32, level: u32, begin: u32, buckets: u32) -> u32 {
  var lo = begin;
  var hi = buckets;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (bucket_range(mid, level).y > p) { hi = mid; } else { lo = mid + 1u; }
  }
  return lo;
}

// Where the slots of range level L (>= 1) are: levels alternate between two
// regions of `partials`, so that a pass never writes what it reads.
fn region(level: u32, a: u32, b: u32) -> u32 {
  if (level % 2u == 1u) { return a; }
  return b;
}

// The point `sorted` entry `e` names, signed; None (the identity) is (0, 0).
fn load_signed(e: u32) -> Proj {
  let i = e & 0x7fffffffu;
  let x = load_coord(PW * i);
  var y = load_coord(PW * i + CW);
  if ((e >> 31u) != 0u) { y = fc_neg(y); }
  return Proj(x, y, fc_one());
}

// The bucket after b whose range at `level` ends after item p: almost
// always b + 1 (a bucket is rarely empty), else a search.
fn next_bucket(b: u32, p: u32, level: u32, buckets: u32) -> u32 {
  if (b + 1u < buckets && bucket_range(b + 1u, level).y > p) { return b + 1u; }
  return bucket_at(p, level, b + 1u, buckets);
}

// Pass 0. params: [0] = threads, [1] = buckets, [2] = where range level 1's
// slots are in `partials`.
@compute @workgroup_size(64)
fn accumulate_points(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = thread_index(wid, nwg, lid);
  if (t >= params[0]) { return; }
  let buckets = params[1];
  let lo = t * SLICE;
  let size = atomicLoad(&counts[buckets - 1u]);
  if (lo >= size) { return; }
  let hi = min(lo + SLICE, size);
  var b = bucket_at(lo, 0u, 0u, buckets);
  var end = bucket_range(b, 0u).y;
  var acc = xyzz_identity();
  var empty = true;
  var complete = false;
  for (var k = lo; k < hi;) {
    let q = load_signed(sorted[k]);
    if (!(fc_is_zero(q.x) && fc_is_zero(q.y))) {
      if (empty) {
        acc = Xyzz(q.x, q.y, q.z, q.z);
        empty = false;
      } else {
        let u = fc_sub(fc_mul(q.x, acc.zz), acc.x);
        let r = fc_sub(fc_mul(q.y, acc.zzz), acc.y);
        if (fc_is_zero(u)) {
          complete = true;
          break;
        }
        let pp = fc_sqr(u);
        let ppp = fc_mul(u, pp);
        let v = fc_mul(acc.x, pp);
        let x3 = fc_sub(fc_sub(fc_sqr(r), ppp), fc_add(v, v));
        let y3 = fc_sub(fc_mul(r, fc_sub(v, x3)), fc_mul(acc.y, ppp));
        acc = Xyzz(x3, y3, fc_mul(acc.zz, pp), fc_mul(acc.zzz, ppp));
      }
    }
    k++;
    if (k == end || k == hi) {
      store_xyzz(params[2] + t + b, acc);
      acc = xyzz_identity();
      empty = true;
      if (k < hi) {
        b = next_bucket(b, k, 0u, buckets);
        end = bucket_range(b, 0u).y;
      }
    }
  }
  // P + P or P + (-P) in this slice: all of it again, on the complete
  // formula. A loop on `complete` rather than an `if`: lavapipe runs both
  // sides of an `if` for every thread, but leaves a loop no thread is in.
  if (complete) {
    b = bucket_at(lo, 0u, 0u, buckets);
    end = bucket_range(b, 0u).y;
  }
  var sum = proj_identity();
  for (var k = lo; complete && k < hi;) {
    let q = load_signed(sorted[k]);
    if (!(fc_is_zero(q.x) && fc_is_zero(q.y))) { sum = proj_add(sum, q); }
    k++;
    if (k == end || k == hi) {
      store_slot(params[2] + t + b, sum);
      sum = proj_identity();
      if (k < hi) {
        b = next_bucket(b, k, 0u, buckets);
        end = bucket_range(b, 0u).y;
      }
    }
  }
}

// Sums of slots of `partials` into a slot, two ways (one kernel, so one
// copy of the addition for the driver to compile). params: [0] = threads,
// [1] = mode:
//   0, tasks: [2] = first task; task t sums the slots it names.
//   1, slice pass: [2] = buckets, [3] = the pass `step` (>= 1), [4], [5] = the two
//      regions of slots. Thread t sums its slice of range level `step` per bucket.
@compute @workgroup_size(64)
fn sum_slots(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = thread_index(wid, nwg, lid);
  if (t >= params[0]) { return; }
  let mode = params[1];
  var begin = 0u;
  var to = 0u;
  var dst = 0u;
  // Slice passes: the slice [lo, hi), the bucket b and its range r, and
  // where range levels `step` and `step + 1` are.
  let buckets = params[2];
  let step = params[3];
  var lo = 0u;
  var hi = 0u;
  var b = 0u;
  var r = vec2<u32>(0u, 0u);
  var src = 0u;
  var out = 0u;
  if (mode == 0u) {
    let task = 3u * (params[2] + t);
    begin = tasks[task];
    to = begin + tasks[task + 1u];
    dst = tasks[task + 2u];
  } else {
    if (step > atomicLoad(&counts[buckets + 1u])) { return; }
    src = region(step, params[4], params[5]);
    out = region(step + 1u, params[4], params[5]);
    lo = t * SLICE;
    let size = bucket_range(buckets - 1u, step).y;
    if (lo >= size) { return; }
    hi = min(lo + SLICE, size);
    b = bucket_at(lo, step, 0u, buckets);
    r = bucket_range(b, step);
    if (r.x >= hi) { return; }
    begin = src + max(lo, r.x);
    to = src + min(hi, r.y);
    dst = out + t + b;
  }
  loop {
    var acc = proj_identity();
    if (begin < to) { acc = load_slot(begin); }
    for (var k = begin + 1u; k < to; k++) {
      acc = proj_add(acc, load_slot(k));
    }
    store_slot(dst, acc);
    if (mode != 1u || r.y >= hi) { break; }
    // The next bucket with slots in this slice.
    b = next_bucket(b, r.y, step, buckets);
    if (b >= buckets) { break; }
    r = bucket_range(b, step);
    if (r.x >= hi) { break; }
    begin = src + r.x;
    to = src + min(hi, r.y);
    dst = out + t + b;
  }
}

// The slots of bucket b's last pieces, those the slice passes leave at
// range level `last`, in the region from slot `at` (at most SLICE; none for
// an empty bucket).
fn bucket_pieces(b: u32, last: u32, at: u32) -> vec2<u32> {
  return vec2<u32>(at, at) + bucket_range(b, last);
}

// params: [0] = windows × segments, [1] = buckets per window, [2] = segments
// per window, [3] = where segment sums go in `partials`, [4] = buckets,
// [5], [6] = the regions of slots.
// A segment [lo, hi) of a window's buckets (bucket j holds digit j + 1) gives
// sum_j (j + 1) B_j = sum_j (j - lo + 1) B_j + lo * sum_j B_j: a running sum
// from the top, then lo times the plain sum by double-and-add (doubling with
// the complete addition). B_j is the sum of bucket j's pieces, added to the
// running sum one by one: a bucket usually has one or two, and summing them
// here rather than in a kernel of their own spares that kernel's threads,
// one per bucket, most of which would idle beside the few at work. Every
// step is one `proj_add` of two of the running values, chosen per step: one
// call site keeps the kernel a fifth of the size it has with one per
// formula (the driver inlines each), which is seconds less to compile and
// less code for the GPU to fetch.
@compute @workgroup_size(64)
fn bucket_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = thread_index(wid, nwg, lid);
  if (t >= params[0]) { return; }
  let nb = params[1];
  let segs = params[2];
  let w = t / segs;
  let per = nb / segs;
  let lo = (t % segs) * per;
  var run = proj_identity();
  var tot = proj_identity();
  var scaled = proj_identity();
  // Per bucket from the top: run += each of its pieces, then tot += run.
  // Then the bits of lo (below nb, a power of two), high first:
  // scaled += run where the bit is set, and scaled += scaled between bits.
  // Last: tot += scaled.
  let last = atomicLoad(&counts[params[4] + 1u]) + 1u;
  let at = region(last, params[5], params[6]);
  var b = w * nb + lo + per - 1u;
  var left = per;
  var pieces = bucket_pieces(b, last, at);
  let bits = countTrailingZeros(nb);
  var j = 1u;
  loop {
    var x = run;
    var y = run;
    var into = 0u;
    if (left > 0u) {
      if (pieces.x < pieces.y) {
        y = load_slot(pieces.x);
        pieces.x += 1u;
      } else {
        x = tot;
        into = 1u;
        left -= 1u;
        if (left > 0u) {
          b -= 1u;
          pieces = bucket_pieces(b, last, at);
        }
      }
    } else {
      if (j > 2u * bits) { break; }
      let k = j;
      j += 1u;
      if (k == 2u * bits) {
        x = tot;
        y = scaled;
        into = 1u;
      } else if (k % 2u == 0u) {
        x = scaled;
        y = scaled;
        into = 2u;
      } else if (((lo >> (bits - 1u - k / 2u)) & 1u) != 0u) {
        x = scaled;
        into = 2u;
      } else {
        continue;
      }
    }
    let r = proj_add(x, y);
    if (into == 0u) { run = r; } else if (into == 1u) { tot = r; } else { scaled = r; }
  }
  store_slot(params[3] + t, tot);
}

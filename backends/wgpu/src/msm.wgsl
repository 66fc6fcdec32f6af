// Pippenger MSM over BN254 G1 (appended to the generated field code).
//
// Bucket sums run in XYZZ coordinates (below: fewest multiplications for
// adding an affine point), falling back on the complete formula. Sums of
// sums are projective (X:Y:Z) with the complete addition of Renes, Costello
// and Batina (2015, algorithm 7 for a = 0, b3 = 3b = 9): no branch on equal
// points or the identity, and it doubles too.
//
// Buffers (one layout for every kernel):
//   points:   16 words per affine point (x, y packed), Montgomery after `convert_points`
//   scalars:  8 words per scalar, little-endian, standard form
//   counts:   one counter per (window, bucket): the histogram, then scatter cursors
//   sorted:   per (window, bucket), the point indices with the sign in bit 31
//   tasks:    (start, len, dst) triples, a partial sum each
//   partials: 24 words per projective point (buckets, partial sums, segments)

@group(0) @binding(1) var<storage, read_write> points: array<u32>;
@group(0) @binding(2) var<storage, read_write> scalars: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> sorted: array<u32>;
@group(0) @binding(5) var<storage, read_write> tasks: array<u32>;
@group(0) @binding(6) var<storage, read_write> partials: array<u32>;

struct Proj { x: Fe, y: Fe, z: Fe }

fn mul_b3(a: Fe) -> Fe {
  let a2 = fe_add(a, a);
  let a4 = fe_add(a2, a2);
  let a8 = fe_add(a4, a4);
  return fe_add(a8, a);
}

fn proj_identity() -> Proj { return Proj(Fe(), fe_one(), Fe()); }

fn proj_add(p: Proj, q: Proj) -> Proj {
  var t0 = fe_mul(p.x, q.x);
  var t1 = fe_mul(p.y, q.y);
  var t2 = fe_mul(p.z, q.z);
  var t3 = fe_mul(fe_add(p.x, p.y), fe_add(q.x, q.y));
  var t4 = fe_add(t0, t1);
  t3 = fe_sub(t3, t4);
  t4 = fe_mul(fe_add(p.y, p.z), fe_add(q.y, q.z));
  t4 = fe_sub(t4, fe_add(t1, t2));
  var x3 = fe_mul(fe_add(p.x, p.z), fe_add(q.x, q.z));
  var y3 = fe_sub(x3, fe_add(t0, t2));
  x3 = fe_add(t0, t0);
  t0 = fe_add(x3, t0);
  t2 = mul_b3(t2);
  var z3 = fe_add(t1, t2);
  t1 = fe_sub(t1, t2);
  y3 = mul_b3(y3);
  x3 = fe_mul(t4, y3);
  t2 = fe_mul(t3, t1);
  x3 = fe_sub(t2, x3);
  y3 = fe_mul(y3, t0);
  t1 = fe_mul(t1, z3);
  y3 = fe_add(t1, y3);
  t0 = fe_mul(t0, t3);
  z3 = fe_mul(z3, t4);
  z3 = fe_add(z3, t0);
  return Proj(x3, y3, z3);
}

fn load_coord(at: u32) -> Fe {
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

fn load_partial(i: u32) -> Proj {
  return Proj(load_partial_fe(24u * i), load_partial_fe(24u * i + 8u), load_partial_fe(24u * i + 16u));
}

fn store_partial(i: u32, p: Proj) {
  store_partial_fe(24u * i, p.x);
  store_partial_fe(24u * i + 8u, p.y);
  store_partial_fe(24u * i + 16u, p.z);
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
  for (var k = 0u; k < 16u; k++) { nz |= points[16u * i + k]; }
  if (nz == 0u) { return; }
  for (var c = 0u; c < 2u; c++) {
    if (!below_base_p(16u * i + 8u * c)) {
      atomicMax(&counts[params[1]], 0xffffffffu - (2u * i + c));
      return;
    }
  }
  for (var c = 0u; c < 2u; c++) {
    let m = fe_pack(fe_to_mont(load_coord(16u * i + 8u * c)));
    for (var k = 0u; k < 8u; k++) { points[16u * i + 8u * c + k] = m[k]; }
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

// A running bucket sum in extended Jacobian coordinates ("XYZZ"): x = X/ZZ,
// y = Y/ZZZ with ZZ^3 = ZZZ^2. Adding an affine point costs 8 multiplications
// and 2 squarings (madd-2008-s), against 11 multiplications and 2 scalings by
// 3b for the complete projective formula. The formula is not complete: it
// fails when the sum so far is the point added or its negation. A task that
// meets that (only inputs built for it do) finishes on the complete formula.
struct Xyzz { x: Fe, y: Fe, zz: Fe, zzz: Fe }

// (X/ZZ, Y/ZZZ) is (X·ZZZ : Y·ZZ : ZZ·ZZZ) in projective coordinates.
fn xyzz_to_proj(p: Xyzz) -> Proj {
  return Proj(fe_mul(p.x, p.zzz), fe_mul(p.y, p.zz), fe_mul(p.zz, p.zzz));
}

// The point `sorted` entry `e` names, signed; None (the identity) is (0, 0).
fn load_signed(e: u32) -> Proj {
  let i = e & 0x7fffffffu;
  let x = load_coord(16u * i);
  var y = load_coord(16u * i + 8u);
  if ((e >> 31u) != 0u) { y = fe_neg(y); }
  return Proj(x, y, fe_one());
}

// params: [0] = tasks, [1] = first task. Each task sums the signed points its slice of `sorted` names.
@compute @workgroup_size(64)
fn accumulate_points(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = thread_index(wid, nwg, lid);
  if (t >= params[0]) { return; }
  let task = 3u * (params[1] + t);
  let start = tasks[task];
  let len = tasks[task + 1u];
  var acc: Xyzz;
  var empty = true;
  var k = 0u;
  // The fast loop, in XYZZ; it leaves at the first exceptional addition.
  for (; k < len; k++) {
    let q = load_signed(sorted[start + k]);
    if (fe_is_zero(q.x) && fe_is_zero(q.y)) { continue; }
    if (empty) {
      acc = Xyzz(q.x, q.y, q.z, q.z);
      empty = false;
      continue;
    }
    let u = fe_sub(fe_mul(q.x, acc.zz), acc.x);
    let r = fe_sub(fe_mul(q.y, acc.zzz), acc.y);
    if (fe_is_zero(u)) { break; }
    let pp = fe_mul(u, u);
    let ppp = fe_mul(u, pp);
    let v = fe_mul(acc.x, pp);
    let x3 = fe_sub(fe_sub(fe_mul(r, r), ppp), fe_add(v, v));
    let y3 = fe_sub(fe_mul(r, fe_sub(v, x3)), fe_mul(acc.y, ppp));
    acc = Xyzz(x3, y3, fe_mul(acc.zz, pp), fe_mul(acc.zzz, ppp));
  }
  var sum = proj_identity();
  if (!empty) { sum = xyzz_to_proj(acc); }
  // The rest of a task that met P + P or P + (-P), on the complete formula.
  for (; k < len; k++) {
    let q = load_signed(sorted[start + k]);
    if (fe_is_zero(q.x) && fe_is_zero(q.y)) { continue; }
    sum = proj_add(sum, q);
  }
  store_partial(tasks[task + 2u], sum);
}

// params: [0] = tasks, [1] = first task. Each task sums a slice of `partials`.
@compute @workgroup_size(64)
fn accumulate_partials(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = thread_index(wid, nwg, lid);
  if (t >= params[0]) { return; }
  let task = 3u * (params[1] + t);
  let start = tasks[task];
  let len = tasks[task + 1u];
  var acc = proj_identity();
  for (var k = 0u; k < len; k++) {
    acc = proj_add(acc, load_partial(start + k));
  }
  store_partial(tasks[task + 2u], acc);
}

// params: [0] = windows × segments, [1] = buckets per window, [2] = segments
// per window, [3] = where segment sums go in `partials`.
// A segment [lo, hi) of a window's buckets (bucket j holds digit j + 1) gives
// sum_j (j + 1) B_j = sum_j (j - lo + 1) B_j + lo * sum_j B_j: a running sum
// from the top, then lo times the plain sum by double-and-add (doubling with
// the complete addition). Every step is one `proj_add` of two of the running
// values, chosen per step: one call site keeps the kernel a fifth of the
// size it has with one per formula (the driver inlines each), which is
// seconds less to compile and less code for the GPU to fetch.
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
  // Steps 2k and 2k + 1: run += B, tot += run. Then 16 bits of lo, high
  // first: scaled += scaled, and scaled += run where the bit is set. Last:
  // tot += scaled.
  let sums = 2u * per;
  for (var s = 0u; s < sums + 33u; s++) {
    var x = run;
    var y = run;
    var into = 0u;
    if (s < sums) {
      if (s % 2u == 0u) {
        y = load_partial(w * nb + lo + per - 1u - s / 2u);
      } else {
        x = tot;
        into = 1u;
      }
    } else {
      let j = s - sums;
      if (j == 32u) {
        x = tot;
        y = scaled;
        into = 1u;
      } else if (j % 2u == 0u) {
        x = scaled;
        y = scaled;
        into = 2u;
      } else if (((lo >> (15u - j / 2u)) & 1u) != 0u) {
        x = scaled;
        into = 2u;
      } else {
        continue;
      }
    }
    let r = proj_add(x, y);
    if (into == 0u) { run = r; } else if (into == 1u) { tot = r; } else { scaled = r; }
  }
  store_partial(params[3] + t, tot);
}

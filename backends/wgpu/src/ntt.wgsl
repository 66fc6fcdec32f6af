// Radix-2 NTT over BN254 Fr (appended to the generated field code).
//
// Buffers: `input` holds the caller's vectors (standard form, converted in
// place); `work` the bit-reversed copy the butterflies run on (Montgomery
// until `from_mont`); `twiddles` w^k for k < n/2; `table` the two halves of
// a power table for coset and 1/n scaling. Elements are 8 packed words.

@group(0) @binding(1) var<storage, read_write> input: array<u32>;
@group(0) @binding(2) var<storage, read_write> work: array<u32>;
@group(0) @binding(3) var<storage, read_write> twiddles: array<u32>;
@group(0) @binding(4) var<storage, read_write> table: array<u32>;

fn load_in(i: u32) -> Fe {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = input[8u * i + k]; }
  return fe_unpack(w);
}
fn store_in(i: u32, a: Fe) {
  let w = fe_pack(a);
  for (var k = 0u; k < 8u; k++) { input[8u * i + k] = w[k]; }
}
fn load_work(i: u32) -> Fe {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = work[8u * i + k]; }
  return fe_unpack(w);
}
fn store_work(i: u32, a: Fe) {
  let w = fe_pack(a);
  for (var k = 0u; k < 8u; k++) { work[8u * i + k] = w[k]; }
}
fn load_tw(i: u32) -> Fe {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = twiddles[8u * i + k]; }
  return fe_unpack(w);
}
fn load_table(i: u32) -> Fe {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = table[8u * i + k]; }
  return fe_unpack(w);
}
fn store_table(i: u32, a: Fe) {
  let w = fe_pack(a);
  for (var k = 0u; k < 8u; k++) { table[8u * i + k] = w[k]; }
}

// base^e (Montgomery in, Montgomery out), e below 2^bits.
fn fe_pow(base: Fe, e: u32, bits: u32) -> Fe {
  var acc = fe_one();
  for (var b = 0u; b < bits; b++) {
    acc = fe_mul(acc, acc);
    if (((e >> (bits - 1u - b)) & 1u) != 0u) { acc = fe_mul(acc, base); }
  }
  return acc;
}

// params: [0] = elements. Standard (possibly above r) to Montgomery, in place.
@compute @workgroup_size(64)
fn to_mont(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= params[0]) { return; }
  store_in(i, fe_to_mont(load_in(i)));
}

// params: [0] = count, [1] = exponent bits, [8..16) = w (standard form).
@compute @workgroup_size(64)
fn twiddle_table(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let k = thread_index(wid, nwg, lid);
  if (k >= params[0]) { return; }
  let w = fe_to_mont(fe_unpack(param_words(8u)));
  let v = fe_pack(fe_pow(w, k, params[1]));
  for (var j = 0u; j < 8u; j++) { twiddles[8u * k + j] = v[j]; }
}

// params: [0] = count, [1] = exponent bits, [2] = shift, [3] = first slot,
// [8..16) = base, [16..24) = c0 (standard form). table[first + k] = c0 * base^(k << shift).
@compute @workgroup_size(64)
fn power_table(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let k = thread_index(wid, nwg, lid);
  if (k >= params[0]) { return; }
  let base = fe_to_mont(fe_unpack(param_words(8u)));
  let c0 = fe_to_mont(fe_unpack(param_words(16u)));
  store_table(params[3] + k, fe_mul(c0, fe_pow(base, k << params[2], params[1])));
}

// params: [0] = elements, [1] = log n. work[v·n + rev(i)] = input[v·n + i].
@compute @workgroup_size(64)
fn bit_reverse(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = thread_index(wid, nwg, lid);
  if (idx >= params[0]) { return; }
  let log_n = params[1];
  let n = 1u << log_n;
  let i = idx & (n - 1u);
  let j = reverseBits(i) >> (32u - log_n);
  for (var k = 0u; k < 8u; k++) { work[8u * (idx - i + j) + k] = input[8u * idx + k]; }
}

// params: [0] = butterflies (elements / 2), [1] = log n, [2] = stage s
// (half-block 2^s). Cooley-Tukey on bit-reversed input, natural output: one
// stage per pass (where tiles are off).
@compute @workgroup_size(64)
fn butterfly(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = thread_index(wid, nwg, lid);
  if (t >= params[0]) { return; }
  let log_n = params[1];
  let s = params[2];
  let half_n = 1u << (log_n - 1u);
  let v = t / half_n;
  let k = t % half_n;
  let m = 1u << s;
  let j = k & (m - 1u);
  let i0 = v * (half_n << 1u) + ((k >> s) << (s + 1u)) + j;
  let i1 = i0 + m;
  let u = load_work(i0);
  let x = fe_mul(load_work(i1), load_tw(j << (log_n - 1u - s)));
  store_work(i0, fe_add(u, x));
  store_work(i1, fe_sub(u, x));
}

// Several butterfly stages in one pass, in workgroup memory: a tile of
// `cols` neighbouring columns × 2^k rows of the bit-reversed vector, row r
// of column c at `base + (r << s0) + c`, runs stages s0 .. s0 + k - 1
// (Cooley-Tukey, natural output) between one load and one store. With s0 =
// 0 and one column a tile is 2^k consecutive elements; later passes take
// columns side by side so that loads stay contiguous. TILE (elements, 32
// bytes each in workgroup memory) is set from the device's limit.
var<workgroup> tile_words: array<u32, TILE_WORDS>;

fn tile_load(e: u32) -> Fe {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = tile_words[8u * e + k]; }
  return fe_unpack(w);
}
fn tile_store(e: u32, a: Fe) {
  let w = fe_pack(a);
  for (var k = 0u; k < 8u; k++) { tile_words[8u * e + k] = w[k]; }
}

// params: [0] = elements (whole vectors), [1] = log n, [2] = first stage
// s0, [3] = stages k, [4] = log2 of the columns per tile (at most s0).
// One workgroup per tile.
@compute @workgroup_size(64)
fn butterfly_tile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let group = wid.y * nwg.x + wid.x;
  let log_n = params[1];
  let s0 = params[2];
  let k = params[3];
  let g_log = params[4];
  let cols = 1u << g_log;
  let size = cols << k;
  // Spans of 2^(s0 + k) elements, each 2^s0 / cols tiles wide.
  let per_span = (1u << s0) >> g_log;
  let first_col = (group % per_span) * cols;
  let base = ((group / per_span) << (s0 + k)) + first_col;
  if (base >= params[0]) { return; }
  for (var e = lid.x; e < size; e += 64u) {
    let at = base + ((e >> g_log) << s0) + (e & (cols - 1u));
    for (var w = 0u; w < 8u; w++) { tile_words[8u * e + w] = work[8u * at + w]; }
  }
  workgroupBarrier();
  for (var r = 0u; r < k; r++) {
    let s = s0 + r;
    let m = 1u << r;
    for (var b = lid.x; b < size / 2u; b += 64u) {
      let col = b & (cols - 1u);
      let p = b >> g_log;
      let jr = p & (m - 1u);
      let row0 = ((p >> r) << (r + 1u)) + jr;
      let e0 = (row0 << g_log) + col;
      let e1 = ((row0 + m) << g_log) + col;
      // The pair's place in its block of 2^(s+1): (row mod 2^r) · 2^s0 + column.
      let j = (jr << s0) + first_col + col;
      let u = tile_load(e0);
      let x = fe_mul(tile_load(e1), load_tw(j << (log_n - 1u - s)));
      tile_store(e0, fe_add(u, x));
      tile_store(e1, fe_sub(u, x));
    }
    workgroupBarrier();
  }
  for (var e = lid.x; e < size; e += 64u) {
    let at = base + ((e >> g_log) << s0) + (e & (cols - 1u));
    for (var w = 0u; w < 8u; w++) { work[8u * at + w] = tile_words[8u * e + w]; }
  }
}

// params: [0] = elements, [1] = log n, [2] = low table bits h, [3] = 1 when
// `work` is in bit-reversed order, [4] = first slot of the high table.
// work[i] *= table[i mod 2^h] * table[high + (i >> h)], i the natural index.
@compute @workgroup_size(64)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = thread_index(wid, nwg, lid);
  if (idx >= params[0]) { return; }
  let log_n = params[1];
  let n = 1u << log_n;
  var i = idx & (n - 1u);
  if (params[3] != 0u) { i = reverseBits(i) >> (32u - log_n); }
  let h = params[2];
  let f = fe_mul(load_table(i & ((1u << h) - 1u)), load_table(params[4] + (i >> h)));
  store_work(idx, fe_mul(load_work(idx), f));
}

// params: [0] = elements. Montgomery to standard, in place in `work`.
@compute @workgroup_size(64)
fn from_mont(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= params[0]) { return; }
  store_work(i, fe_from_mont(load_work(i)));
}

// Kept vectors (ABI version 3) live in Montgomery form on the device; the
// transform runs on them in place, bound as `work`.

// params: [0] = elements, [1] = log n. Swaps work[v·n + i] and
// work[v·n + rev(i)] once per pair (the thread of the smaller index).
@compute @workgroup_size(64)
fn bit_reverse_in_place(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let idx = thread_index(wid, nwg, lid);
  if (idx >= params[0]) { return; }
  let log_n = params[1];
  let n = 1u << log_n;
  let i = idx & (n - 1u);
  let j = reverseBits(i) >> (32u - log_n);
  if (j <= i) { return; }
  let other = idx - i + j;
  for (var k = 0u; k < 8u; k++) {
    let t = work[8u * idx + k];
    work[8u * idx + k] = work[8u * other + k];
    work[8u * other + k] = t;
  }
}

// params: [0] = n, [8..16) = scale (standard form). `work` holds a || b || c
// of n elements each (Montgomery); input[i] = (a[i]·b[i] − c[i])·scale.
@compute @workgroup_size(64)
fn ab_minus_c(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  let n = params[0];
  if (i >= n) { return; }
  let s = fe_to_mont(fe_unpack(param_words(8u)));
  let h = fe_sub(fe_mul(load_work(i), load_work(n + i)), load_work(2u * n + i));
  store_in(i, fe_mul(h, s));
}

// params: [0] = count, [1] = first element of `work`, [2] = first element of
// `input`. input[dst + i] = work[src + i] out of Montgomery form, canonical
// (a kept vector's elements as the caller or the MSM's scalars want them).
@compute @workgroup_size(64)
fn from_mont_into(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = thread_index(wid, nwg, lid);
  if (i >= params[0]) { return; }
  store_in(params[2] + i, fe_from_mont(load_work(params[1] + i)));
}

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
// (half-block 2^s). Cooley-Tukey on bit-reversed input, natural output.
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

//! WGSL source, generated. The field arithmetic is written out in full
//! (unrolled) from the modulus so that every limb lives in a register: WGSL
//! has no loop-unrolling hint, and an array indexed in a loop may be put in
//! slow local memory by the driver.
//!
//! Representation: an element is a few limbs in `u32`s, in Montgomery form,
//! in one of two layouts ([`Limbs`]): 20 limbs of 13 bits for any adapter, or
//! 9 limbs of 29 bits whose products are summed in `u64` where the adapter
//! has 64-bit integers. Either way a limb product is well below the
//! accumulator's width, so the Montgomery loop adds both products of a round
//! to an accumulator without carrying (the CIOS variant of the WebGPU MSM
//! work of 2023), and carries are propagated once, at the end. In buffers an
//! element is packed into 8 words whatever the layout.
//!
//! Elements are kept "almost reduced", in [0, 2p), not [0, p): R > 4p, so a
//! Montgomery product of two such elements is below (4p² + Rp) / R < 2p
//! without the final subtraction, which saves about a tenth of every
//! multiplication. Sums and differences are brought back below 2p, zero is
//! tested as 0 or p, and `fe_canonical` gives the value below p where one
//! leaves the GPU (the host reduces the MSM's results itself).

use ark_ff::{BigInteger, Field, PrimeField};

/// Threads per workgroup of every kernel.
pub const WORKGROUP: u32 = 64;

/// How an element is split into limbs: the two layouts the field code is
/// generated for. Both keep one limb per `u32` and elements below 2p.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limbs {
    /// 20 limbs of 13 bits (R = 2^260), `u32` arithmetic only: any adapter.
    Narrow,
    /// 9 limbs of 29 bits (R = 2^261): each 29×29-bit product is taken as a
    /// `u64` and the Montgomery loop sums them in `u64` accumulators without
    /// carrying (18 products below 2^58 per column stay below 2^63). About a
    /// fifth of the narrow layout's limb products (162 against 800 per
    /// multiplication) and under half the registers per element; it needs
    /// the adapter's 64-bit integers (`SHADER_INT64`).
    Wide,
}

impl Limbs {
    /// Bits per limb.
    pub const fn bits(self) -> u32 {
        match self {
            Limbs::Narrow => 13,
            Limbs::Wide => 29,
        }
    }

    /// Limbs per element.
    pub const fn count(self) -> usize {
        match self {
            Limbs::Narrow => 20,
            Limbs::Wide => 9,
        }
    }

    /// log2 of the Montgomery radix R: every limb's bits.
    pub const fn r_bits(self) -> u32 {
        self.bits() * self.count() as u32
    }

    /// The accumulator type of products and the suffix of its literals.
    const fn acc(self) -> (&'static str, &'static str) {
        match self {
            Limbs::Narrow => ("u32", "u"),
            Limbs::Wide => ("u64", "lu"),
        }
    }

    /// The name `AZTEC_PROVER_WGPU_LIMBS` takes and the trace prints.
    pub const fn name(self) -> &'static str {
        match self {
            Limbs::Narrow => "13",
            Limbs::Wide => "29",
        }
    }
}

/// A modulus as the shaders need it, in one limb layout.
#[derive(Debug, Clone)]
pub struct Modulus {
    /// The layout of the limbs below.
    pub limbs: Limbs,
    /// The modulus.
    pub p: Vec<u32>,
    /// -p^-1 mod 2^bits.
    pub np0: u32,
    /// R^2 mod p.
    pub r2: Vec<u32>,
    /// R mod p: one in Montgomery form.
    pub one: Vec<u32>,
    /// 2p: elements are kept below it.
    pub p2: Vec<u32>,
}

fn split(words: &[u64], limbs: Limbs) -> Vec<u32> {
    let bits = limbs.bits() as usize;
    (0..limbs.count())
        .map(|k| {
            let mut v = 0u32;
            for b in 0..bits {
                let at = k * bits + b;
                if at / 64 < words.len() && (words[at / 64] >> (at % 64)) & 1 == 1 {
                    v |= 1 << b;
                }
            }
            v
        })
        .collect()
}

impl Modulus {
    /// The constants of the prime field `F` in layout `limbs`.
    pub fn of<F: PrimeField>(limbs: Limbs) -> Modulus {
        let p = F::MODULUS;
        let p0 = p.as_ref()[0] as u32;
        // Newton's iteration for p0^-1 mod 2^32 (p is odd): each step doubles the correct bits.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(p0.wrapping_mul(inv)));
        }
        let mask = (1u32 << limbs.bits()) - 1;
        let r = F::from(2u64).pow([limbs.r_bits() as u64]);
        let mut two_p = p;
        two_p.mul2();
        Modulus {
            limbs,
            p: split(p.as_ref(), limbs),
            np0: inv.wrapping_neg() & mask,
            r2: split((r * r).into_bigint().as_ref(), limbs),
            one: split(r.into_bigint().as_ref(), limbs),
            p2: split(two_p.as_ref(), limbs),
        }
    }

    /// The modulus as eight little-endian 32-bit words.
    pub fn words<F: PrimeField>() -> [u32; 8] {
        let b = F::MODULUS.to_bytes_le();
        std::array::from_fn(|i| {
            u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
        })
    }
}

fn fe_literal(v: &[u32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}u")).collect();
    format!("Fe({})", parts.join(", "))
}

/// The field arithmetic for modulus `m`: `Fe`, `fe_mul`, `fe_sqr`, `fe_add`, `fe_sub`,
/// `fe_neg`, `fe_is_zero`, `fe_to_mont`, `fe_from_mont`, `fe_unpack`, `fe_pack`.
pub fn field(m: &Modulus) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let n = m.limbs.count();
    let bits = m.limbs.bits();
    let (acc, lit) = m.limbs.acc();
    // A limb or a constant as an accumulator operand.
    let wide = |e: String| {
        if acc == "u32" {
            e
        } else {
            format!("{acc}({e})")
        }
    };
    let low = |e: String| {
        if acc == "u32" { e } else { format!("u32({e})") }
    };
    let _ = writeln!(s, "alias Fe = array<u32, {n}>;");
    let _ = writeln!(s, "const MASK: u32 = {}u;", (1u32 << bits) - 1);
    let _ = writeln!(s, "const FE_P: Fe = {};", fe_literal(&m.p));
    let _ = writeln!(s, "const FE_R2: Fe = {};", fe_literal(&m.r2));
    let mut one = vec![0u32; n];
    one[0] = 1;
    let _ = writeln!(s, "const FE_ONE_STD: Fe = {};", fe_literal(&one));
    let _ = writeln!(s, "const FE_ONE: Fe = {};", fe_literal(&m.one));

    // Montgomery multiplication, unrolled (CIOS, the carries left in the
    // accumulators until the end).
    s.push_str("fn fe_mul(a: Fe, b: Fe) -> Fe {\n");
    for j in 0..n {
        let _ = writeln!(s, "  var t{j}: {acc} = 0{lit};");
        let _ = writeln!(s, "  let b{j} = {};", wide(format!("b[{j}]")));
    }
    let _ = writeln!(s, "  var m: {acc};\n  var ai: {acc};");
    for i in 0..n {
        let _ = writeln!(s, "  ai = {};", wide(format!("a[{i}]")));
        for j in 0..n {
            let _ = writeln!(s, "  t{j} += ai * b{j};");
        }
        let _ = writeln!(
            s,
            "  m = {};",
            wide(format!("({} * {}u) & MASK", low("t0".into()), m.np0))
        );
        for j in 0..n {
            if m.p[j] != 0 {
                let _ = writeln!(s, "  t{j} += m * {}{lit};", m.p[j]);
            }
        }
        let _ = writeln!(s, "  t0 = t1 + (t0 >> {bits}u);");
        for j in 1..n - 1 {
            let _ = writeln!(s, "  t{j} = t{};", j + 1);
        }
        let _ = writeln!(s, "  t{} = 0{lit};", n - 1);
    }
    s.push_str("  var r: Fe;\n");
    for j in 0..n - 1 {
        let _ = writeln!(
            s,
            "  t{} += t{j} >> {bits}u; r[{j}] = {} & MASK;",
            j + 1,
            low(format!("t{j}"))
        );
    }
    let _ = writeln!(s, "  r[{}] = {};", n - 1, low(format!("t{}", n - 1)));
    s.push_str("  return r;\n}\n");

    // Montgomery squaring: the double-width square first, each cross product
    // once and doubled (n(n+1)/2 products instead of n²), then the n
    // reduction rounds. A column holds at most n + 1 products before the
    // reduction adds at most n more and the carries: within the
    // accumulator's bound, as in the multiplication.
    s.push_str("fn fe_sqr(a: Fe) -> Fe {\n");
    for k in 0..2 * n {
        let _ = writeln!(s, "  var t{k}: {acc} = 0{lit};");
    }
    for i in 0..n {
        let _ = writeln!(s, "  let a{i} = {};", wide(format!("a[{i}]")));
    }
    for i in 0..n {
        for j in i + 1..n {
            let _ = writeln!(s, "  t{} += a{i} * a{j};", i + j);
        }
    }
    for k in 1..2 * n - 2 {
        let _ = writeln!(s, "  t{k} <<= 1u;");
    }
    for i in 0..n {
        let _ = writeln!(s, "  t{} += a{i} * a{i};", 2 * i);
    }
    let _ = writeln!(s, "  var m: {acc};");
    for i in 0..n {
        let _ = writeln!(
            s,
            "  m = {};",
            wide(format!("({} * {}u) & MASK", low(format!("t{i}")), m.np0))
        );
        for j in 0..n {
            if m.p[j] != 0 {
                let _ = writeln!(s, "  t{} += m * {}{lit};", i + j, m.p[j]);
            }
        }
        let _ = writeln!(s, "  t{} += t{i} >> {bits}u;", i + 1);
    }
    s.push_str("  var r: Fe;\n");
    for j in 0..n - 1 {
        let _ = writeln!(
            s,
            "  t{} += t{} >> {bits}u; r[{j}] = {} & MASK;",
            n + j + 1,
            n + j,
            low(format!("t{}", n + j))
        );
    }
    let _ = writeln!(s, "  r[{}] = {};", n - 1, low(format!("t{}", 2 * n - 1)));
    s.push_str("  return r;\n}\n");

    // a >= q ? a - q : a, for normalised limbs: q = 2p keeps sums almost
    // reduced, q = p makes a value canonical. Limbs are below 2^31, so a
    // borrow shows in bit 31.
    for (name, q) in [("fe_reduce", &m.p2), ("fe_canonical", &m.p)] {
        let _ = writeln!(
            s,
            "fn {name}(a: Fe) -> Fe {{\n  var d: Fe;\n  var br: u32 = 0u;\n  var x: u32;"
        );
        for (j, qj) in q.iter().enumerate() {
            let _ = writeln!(
                s,
                "  x = a[{j}] - {qj}u - br; br = x >> 31u; d[{j}] = x & MASK;"
            );
        }
        s.push_str("  if (br != 0u) { return a; }\n  return d;\n}\n");
    }

    s.push_str(
        "fn fe_add(a: Fe, b: Fe) -> Fe {\n  var r: Fe;\n  var c: u32 = 0u;\n  var x: u32;\n",
    );
    for j in 0..n {
        let _ = writeln!(
            s,
            "  x = a[{j}] + b[{j}] + c; c = x >> {bits}u; r[{j}] = x & MASK;"
        );
    }
    s.push_str("  return fe_reduce(r);\n}\n");

    s.push_str(
        "fn fe_sub(a: Fe, b: Fe) -> Fe {\n  var r: Fe;\n  var br: u32 = 0u;\n  var x: u32;\n",
    );
    for j in 0..n {
        let _ = writeln!(
            s,
            "  x = a[{j}] - b[{j}] - br; br = x >> 31u; r[{j}] = x & MASK;"
        );
    }
    s.push_str("  if (br == 0u) { return r; }\n  var c: u32 = 0u;\n");
    for j in 0..n {
        let _ = writeln!(
            s,
            "  x = r[{j}] + {}u + c; c = x >> {bits}u; r[{j}] = x & MASK;",
            m.p2[j]
        );
    }
    s.push_str("  return r;\n}\n");

    s.push_str(
        r#"fn fe_neg(a: Fe) -> Fe { return fe_sub(Fe(), a); }
fn fe_to_mont(a: Fe) -> Fe { return fe_mul(a, FE_R2); }
fn fe_from_mont(a: Fe) -> Fe { return fe_canonical(fe_mul(a, FE_ONE_STD)); }
fn fe_one() -> Fe { return FE_ONE; }
"#,
    );
    // Zero is 0 or p below 2p.
    s.push_str("fn fe_is_zero(a: Fe) -> bool {\n  var z: u32 = 0u;\n  var q: u32 = 0u;\n");
    for j in 0..n {
        let _ = writeln!(s, "  z |= a[{j}]; q |= a[{j}] ^ {}u;", m.p[j]);
    }
    s.push_str("  return z == 0u || q == 0u;\n}\n");

    // Packing the limbs into 8 words and back (elements below 2p < 2^256).
    s.push_str("fn fe_unpack(w: array<u32, 8>) -> Fe {\n  var r: Fe;\n");
    for k in 0..n {
        let bit = k as u32 * bits;
        let (word, sh) = ((bit / 32) as usize, bit % 32);
        if word >= 8 {
            continue;
        }
        let mut e = format!("(w[{word}] >> {sh}u)");
        if sh + bits > 32 && word + 1 < 8 {
            e = format!("{e} | (w[{}] << {}u)", word + 1, 32 - sh);
        }
        let _ = writeln!(s, "  r[{k}] = ({e}) & MASK;");
    }
    s.push_str("  return r;\n}\n");
    s.push_str("fn fe_pack(a: Fe) -> array<u32, 8> {\n  var w: array<u32, 8>;\n");
    for word in 0..8u32 {
        let mut terms = Vec::new();
        for k in 0..n as u32 {
            let lo = k * bits;
            let hi = lo + bits;
            let (wlo, whi) = (word * 32, word * 32 + 32);
            if hi <= wlo || lo >= whi {
                continue;
            }
            if lo >= wlo {
                terms.push(format!("(a[{k}] << {}u)", lo - wlo));
            } else {
                terms.push(format!("(a[{k}] >> {}u)", wlo - lo));
            }
        }
        let _ = writeln!(s, "  w[{word}] = {};", terms.join(" | "));
    }
    s.push_str("  return w;\n}\n");
    s
}

/// Shared kernel plumbing: the parameter block and the global thread index.
pub const COMMON: &str = r#"
@group(0) @binding(0) var<storage, read> params: array<u32>;
fn thread_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * 64u + lid.x;
}
fn param_words(at: u32) -> array<u32, 8> {
  var w: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = params[at + k]; }
  return w;
}
"#;

/// The group an MSM program sums points of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// BN254 G1: coordinates in Fq.
    G1,
    /// BN254 G2: coordinates in Fq2 = Fq[u]/(u² + 1).
    G2,
}

impl Curve {
    /// Words of a coordinate in buffers (8 per Fq element).
    pub const fn coord_words(self) -> u32 {
        match self {
            Curve::G1 => 8,
            Curve::G2 => 16,
        }
    }
}

/// `v` in Montgomery form (R = 2^r_bits) in the limbs of `limbs`, as a literal.
fn mont_literal(v: ark_bn254::Fq, limbs: Limbs) -> String {
    let r = ark_bn254::Fq::from(2u64).pow([limbs.r_bits() as u64]);
    fe_literal(&split((v * r).into_bigint().as_ref(), limbs))
}

/// The coordinate layer between the field code and msm.wgsl: `Fc` and its
/// operations, b3 = 3b of the curve, and coordinates loaded from and stored
/// to the MSM's buffers.
pub fn curve(c: Curve, limbs: Limbs) -> String {
    let cw = c.coord_words();
    let mut s = format!(
        "const CW: u32 = {cw}u;\nconst PW: u32 = {}u;\nconst SW: u32 = {}u;\n",
        2 * cw,
        4 * cw
    );
    match c {
        Curve::G1 => s.push_str(
            r#"alias Fc = Fe;
fn fc_mul(a: Fc, b: Fc) -> Fc { return fe_mul(a, b); }
fn fc_sqr(a: Fc) -> Fc { return fe_sqr(a); }
fn fc_add(a: Fc, b: Fc) -> Fc { return fe_add(a, b); }
fn fc_sub(a: Fc, b: Fc) -> Fc { return fe_sub(a, b); }
fn fc_neg(a: Fc) -> Fc { return fe_neg(a); }
fn fc_is_zero(a: Fc) -> bool { return fe_is_zero(a); }
fn fc_zero() -> Fc { return Fe(); }
fn fc_one() -> Fc { return fe_one(); }
// b3 = 9: three doublings and an addition.
fn fc_mul_b3(a: Fc) -> Fc {
  let a2 = fe_add(a, a);
  let a4 = fe_add(a2, a2);
  let a8 = fe_add(a4, a4);
  return fe_add(a8, a);
}
fn load_coord(at: u32) -> Fc { return load_point_fe(at); }
fn load_partial_fc(at: u32) -> Fc { return load_partial_fe(at); }
fn store_partial_fc(at: u32, a: Fc) { store_partial_fe(at, a); }
"#,
        ),
        Curve::G2 => {
            use ark_ec::short_weierstrass::SWCurveConfig;
            let b3 = ark_bn254::g2::Config::COEFF_B * ark_bn254::Fq2::from(3u64);
            s.push_str(&format!(
                "const B3_C0: Fe = {};\nconst B3_C1: Fe = {};\n",
                mont_literal(b3.c0, limbs),
                mont_literal(b3.c1, limbs)
            ));
            s.push_str(
                r#"struct Fc { c0: Fe, c1: Fe }
// Karatsuba: three multiplications in Fq; u² = -1.
fn fc_mul(a: Fc, b: Fc) -> Fc {
  let v0 = fe_mul(a.c0, b.c0);
  let v1 = fe_mul(a.c1, b.c1);
  let s = fe_mul(fe_add(a.c0, a.c1), fe_add(b.c0, b.c1));
  return Fc(fe_sub(v0, v1), fe_sub(s, fe_add(v0, v1)));
}
// (c0 + c1 u)² = (c0 + c1)(c0 - c1) + 2 c0 c1 u: two multiplications.
fn fc_sqr(a: Fc) -> Fc {
  let m = fe_mul(a.c0, a.c1);
  return Fc(fe_mul(fe_add(a.c0, a.c1), fe_sub(a.c0, a.c1)), fe_add(m, m));
}
fn fc_add(a: Fc, b: Fc) -> Fc { return Fc(fe_add(a.c0, b.c0), fe_add(a.c1, b.c1)); }
fn fc_sub(a: Fc, b: Fc) -> Fc { return Fc(fe_sub(a.c0, b.c0), fe_sub(a.c1, b.c1)); }
fn fc_neg(a: Fc) -> Fc { return Fc(fe_neg(a.c0), fe_neg(a.c1)); }
fn fc_is_zero(a: Fc) -> bool { return fe_is_zero(a.c0) && fe_is_zero(a.c1); }
fn fc_zero() -> Fc { return Fc(Fe(), Fe()); }
fn fc_one() -> Fc { return Fc(fe_one(), Fe()); }
// b3 = 3b' of the twist y² = x³ + 3/(9 + u).
fn fc_mul_b3(a: Fc) -> Fc { return fc_mul(a, Fc(B3_C0, B3_C1)); }
fn load_coord(at: u32) -> Fc { return Fc(load_point_fe(at), load_point_fe(at + 8u)); }
fn load_partial_fc(at: u32) -> Fc { return Fc(load_partial_fe(at), load_partial_fe(at + 8u)); }
fn store_partial_fc(at: u32, a: Fc) {
  store_partial_fe(at, a.c0);
  store_partial_fe(at + 8u, a.c1);
}
"#,
            );
        }
    }
    s
}

/// The MSM module of `c` (base field Fq of BN254; the scalar modulus r for digits).
pub fn msm(limbs: Limbs, c: Curve) -> String {
    let fq = Modulus::of::<ark_bn254::Fq>(limbs);
    let mut s = field(&fq);
    s.push_str(COMMON);
    s.push_str(&curve(c, limbs));
    let words = |name: &str, w: [u32; 8]| {
        let lit: Vec<String> = w.iter().map(|x| format!("{x}u")).collect();
        format!(
            "const {name}: array<u32, 8> = array<u32, 8>({});\n",
            lit.join(", ")
        )
    };
    s.push_str(&words("SCALAR_R", Modulus::words::<ark_bn254::Fr>()));
    s.push_str(&words("BASE_P", Modulus::words::<ark_bn254::Fq>()));
    s.push_str(&format!(
        "const SLICE: u32 = {}u;\nconst SCAN_BLOCK: u32 = {}u;\n",
        crate::msm::SLICE,
        crate::msm::SCAN_BLOCK
    ));
    s.push_str(include_str!("msm.wgsl"));
    s
}

/// The NTT module (scalar field Fr of BN254).
pub fn ntt(limbs: Limbs) -> String {
    let fr = Modulus::of::<ark_bn254::Fr>(limbs);
    let mut s = field(&fr);
    s.push_str(COMMON);
    s.push_str(include_str!("ntt.wgsl"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_consistent() {
        for limbs in [Limbs::Narrow, Limbs::Wide] {
            let bits = limbs.bits();
            let mask = (1u32 << bits) - 1;
            for m in [
                Modulus::of::<ark_bn254::Fq>(limbs),
                Modulus::of::<ark_bn254::Fr>(limbs),
            ] {
                assert_eq!(
                    m.p[0].wrapping_mul(m.np0) & mask,
                    mask,
                    "p * np0 = -1 mod 2^{bits}"
                );
                for v in [&m.p, &m.r2, &m.one, &m.p2] {
                    assert_eq!(v.len(), limbs.count());
                    assert!(v.iter().all(|l| *l <= mask));
                }
            }
            // Almost-reduced products need R > 4p; packing needs 2p < 2^256.
            assert!(ark_bn254::Fq::MODULUS.num_bits() + 2 < limbs.r_bits());
            assert!(ark_bn254::Fq::MODULUS.num_bits() < 256);
        }
        // The wide accumulators: 2n products below 2^58 per column.
        let w = Limbs::Wide;
        assert!((2 * w.count() as u128) << (2 * w.bits()) < 1u128 << 64);
        // The narrow ones: 2n products below 2^26 plus carries.
        let n = Limbs::Narrow;
        assert!((2 * n.count() as u64 + 1) << (2 * n.bits()) < 1u64 << 32);
    }

    #[test]
    fn both_layouts_generate_every_function() {
        for limbs in [Limbs::Narrow, Limbs::Wide] {
            for c in [Curve::G1, Curve::G2] {
                let src = msm(limbs, c);
                for f in [
                    "fn fe_mul",
                    "fn fe_sqr",
                    "fn fc_mul",
                    "fn fc_mul_b3",
                    "fn fe_pack",
                ] {
                    assert!(src.contains(f), "{limbs:?} {c:?}: {f}");
                }
                assert_eq!(src.contains("u64"), limbs == Limbs::Wide);
            }
        }
    }
}

//! WGSL source, generated. The field arithmetic is written out in full
//! (unrolled) from the modulus so that every limb lives in a register: WGSL
//! has no loop-unrolling hint, and an array indexed in a loop may be put in
//! slow local memory by the driver.
//!
//! Representation: an element is 20 limbs of 13 bits in `u32`s (260 bits),
//! in Montgomery form with R = 2^260. A 13×13-bit product is below 2^26, so
//! the Montgomery loop adds both products of a round to an accumulator
//! without carrying: 20 rounds of at most 2^27 stay below 2^32 (the CIOS
//! variant of the WebGPU MSM work of 2023). Carries are propagated once, at
//! the end. In buffers an element is packed into 8 words.
//!
//! Elements are kept "almost reduced", in [0, 2p), not [0, p): R > 4p, so a
//! Montgomery product of two such elements is below (4p² + Rp) / R < 2p
//! without the final subtraction, which saves about a tenth of every
//! multiplication. Sums and differences are brought back below 2p, zero is
//! tested as 0 or p, and `fe_canonical` gives the value below p where one
//! leaves the GPU (the host reduces the MSM's results itself).

use ark_ff::{BigInteger, PrimeField};

/// Limb width in bits.
pub const LIMB_BITS: u32 = 13;
/// Limbs per element.
pub const LIMBS: usize = 20;
/// Threads per workgroup of every kernel.
pub const WORKGROUP: u32 = 64;

/// A modulus as the shaders need it.
#[derive(Debug, Clone)]
pub struct Modulus {
    /// The modulus in 13-bit limbs.
    pub p: [u32; LIMBS],
    /// -p^-1 mod 2^13.
    pub np0: u32,
    /// R^2 mod p (R = 2^260), 13-bit limbs.
    pub r2: [u32; LIMBS],
    /// R mod p: one in Montgomery form, 13-bit limbs.
    pub one: [u32; LIMBS],
    /// 2p, 13-bit limbs: elements are kept below it.
    pub p2: [u32; LIMBS],
}

fn limbs13(words: &[u64]) -> [u32; LIMBS] {
    let mut out = [0u32; LIMBS];
    for (k, limb) in out.iter_mut().enumerate() {
        let bit = k * LIMB_BITS as usize;
        let mut v = 0u64;
        for b in 0..LIMB_BITS as usize {
            let at = bit + b;
            if at / 64 < words.len() && (words[at / 64] >> (at % 64)) & 1 == 1 {
                v |= 1 << b;
            }
        }
        *limb = v as u32;
    }
    out
}

impl Modulus {
    /// The constants of the prime field `F`.
    pub fn of<F: PrimeField>() -> Modulus {
        let p = F::MODULUS;
        let p0 = (p.as_ref()[0] & 0x1fff) as u32;
        // Newton's iteration for p0^-1 mod 2^16 (p is odd): each step doubles the correct bits.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(p0.wrapping_mul(inv))) & 0xffff;
        }
        let np0 = (inv.wrapping_neg()) & 0x1fff;
        let r = F::from(2u64).pow([(LIMB_BITS as u64) * LIMBS as u64]);
        Modulus {
            p: limbs13(p.as_ref()),
            np0,
            r2: limbs13((r * r).into_bigint().as_ref()),
            one: limbs13(r.into_bigint().as_ref()),
            p2: {
                let mut two_p = p;
                two_p.mul2();
                limbs13(two_p.as_ref())
            },
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

fn fe_literal(v: &[u32; LIMBS]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}u")).collect();
    format!("Fe({})", parts.join(", "))
}

/// The field arithmetic for modulus `m`: `Fe`, `fe_mul`, `fe_sqr`, `fe_add`, `fe_sub`,
/// `fe_neg`, `fe_is_zero`, `fe_to_mont`, `fe_from_mont`, `fe_unpack`, `fe_pack`.
pub fn field(m: &Modulus) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let n = LIMBS;
    let _ = writeln!(s, "alias Fe = array<u32, {n}>;");
    let _ = writeln!(s, "const MASK: u32 = 8191u;");
    let _ = writeln!(s, "const FE_P: Fe = {};", fe_literal(&m.p));
    let _ = writeln!(s, "const FE_R2: Fe = {};", fe_literal(&m.r2));
    let mut one = [0u32; LIMBS];
    one[0] = 1;
    let _ = writeln!(s, "const FE_ONE_STD: Fe = {};", fe_literal(&one));
    let _ = writeln!(s, "const FE_ONE: Fe = {};", fe_literal(&m.one));

    // Montgomery multiplication, unrolled.
    s.push_str("fn fe_mul(a: Fe, b: Fe) -> Fe {\n");
    for j in 0..n {
        let _ = writeln!(s, "  var t{j}: u32 = 0u;");
    }
    s.push_str("  var m: u32;\n  var ai: u32;\n");
    for i in 0..n {
        let _ = writeln!(s, "  ai = a[{i}];");
        for j in 0..n {
            let _ = writeln!(s, "  t{j} += ai * b[{j}];");
        }
        let _ = writeln!(s, "  m = (t0 * {}u) & MASK;", m.np0);
        for j in 0..n {
            if m.p[j] != 0 {
                let _ = writeln!(s, "  t{j} += m * {}u;", m.p[j]);
            }
        }
        let _ = writeln!(s, "  t0 = t1 + (t0 >> 13u);");
        for j in 1..n - 1 {
            let _ = writeln!(s, "  t{j} = t{};", j + 1);
        }
        let _ = writeln!(s, "  t{} = 0u;", n - 1);
    }
    s.push_str("  var r: Fe;\n");
    for j in 0..n - 1 {
        let _ = writeln!(s, "  t{} += t{j} >> 13u; r[{j}] = t{j} & MASK;", j + 1);
    }
    let _ = writeln!(s, "  r[{}] = t{};", n - 1, n - 1);
    s.push_str("  return r;\n}\n");

    // Montgomery squaring: the 40-limb square first, each cross product once
    // and doubled (210 products instead of 400), then the 20 reduction
    // rounds. A column holds at most 21 products below 2^26 before the
    // reduction adds at most 20 more and the carries: below 2^32.
    s.push_str("fn fe_sqr(a: Fe) -> Fe {\n");
    for k in 0..2 * n {
        let _ = writeln!(s, "  var t{k}: u32 = 0u;");
    }
    for i in 0..n {
        for j in i + 1..n {
            let _ = writeln!(s, "  t{} += a[{i}] * a[{j}];", i + j);
        }
    }
    for k in 1..2 * n - 2 {
        let _ = writeln!(s, "  t{k} <<= 1u;");
    }
    for i in 0..n {
        let _ = writeln!(s, "  t{} += a[{i}] * a[{i}];", 2 * i);
    }
    s.push_str("  var m: u32;\n");
    for i in 0..n {
        let _ = writeln!(s, "  m = (t{i} * {}u) & MASK;", m.np0);
        for j in 0..n {
            if m.p[j] != 0 {
                let _ = writeln!(s, "  t{} += m * {}u;", i + j, m.p[j]);
            }
        }
        let _ = writeln!(s, "  t{} += t{i} >> 13u;", i + 1);
    }
    s.push_str("  var r: Fe;\n");
    for j in 0..n - 1 {
        let _ = writeln!(
            s,
            "  t{} += t{} >> 13u; r[{j}] = t{} & MASK;",
            n + j + 1,
            n + j,
            n + j
        );
    }
    let _ = writeln!(s, "  r[{}] = t{};", n - 1, 2 * n - 1);
    s.push_str("  return r;\n}\n");

    // a >= q ? a - q : a, for normalised limbs: q = 2p keeps sums almost
    // reduced, q = p makes a value canonical.
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
            "  x = a[{j}] + b[{j}] + c; c = x >> 13u; r[{j}] = x & MASK;"
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
            "  x = r[{j}] + {}u + c; c = x >> 13u; r[{j}] = x & MASK;",
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

    // Packing 20×13 bits into 8 words and back.
    s.push_str("fn fe_unpack(w: array<u32, 8>) -> Fe {\n  var r: Fe;\n");
    for k in 0..n {
        let bit = k as u32 * LIMB_BITS;
        let (word, sh) = ((bit / 32) as usize, bit % 32);
        if word >= 8 {
            continue;
        }
        let mut e = format!("(w[{word}] >> {sh}u)");
        if sh + LIMB_BITS > 32 && word + 1 < 8 {
            e = format!("{e} | (w[{}] << {}u)", word + 1, 32 - sh);
        }
        let _ = writeln!(s, "  r[{k}] = ({e}) & MASK;");
    }
    s.push_str("  return r;\n}\n");
    s.push_str("fn fe_pack(a: Fe) -> array<u32, 8> {\n  var w: array<u32, 8>;\n");
    for word in 0..8u32 {
        let mut terms = Vec::new();
        for k in 0..n as u32 {
            let lo = k * LIMB_BITS;
            let hi = lo + LIMB_BITS;
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

/// The MSM module (base field Fq of BN254; the scalar modulus r for digits).
pub fn msm() -> String {
    let fq = Modulus::of::<ark_bn254::Fq>();
    let mut s = field(&fq);
    s.push_str(COMMON);
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
pub fn ntt() -> String {
    let fr = Modulus::of::<ark_bn254::Fr>();
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
        let m = Modulus::of::<ark_bn254::Fq>();
        let p0 = m.p[0];
        assert_eq!(
            p0.wrapping_mul(m.np0) & 0x1fff,
            0x1fff,
            "p * np0 = -1 mod 2^13"
        );
        assert!(m.p.iter().all(|l| *l < 8192));
        assert!(m.r2.iter().all(|l| *l < 8192));
        assert!(m.one.iter().all(|l| *l < 8192));
        assert!(m.p2.iter().all(|l| *l < 8192));
        // Almost-reduced products need R = 2^260 > 4p.
        assert!(ark_bn254::Fq::MODULUS.num_bits() + 2 < 260);
        assert!(ark_bn254::Fr::MODULUS.num_bits() + 2 < 260);
    }
}

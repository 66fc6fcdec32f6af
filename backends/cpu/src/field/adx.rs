//! Montgomery multiplication with BMI2 and ADX (`mulx`, `adcx`, `adox`):
//! two carry chains at once, one through the carry flag and one through the
//! overflow flag, so the products of a row are added without waiting on each
//! other. Every x86-64 of the last decade has them; where one does not (or
//! on another architecture) the portable multiplication runs. Both give the
//! same result bit for bit: Montgomery's product of values below p, reduced
//! once, is unique.
//!
//! The path is chosen once per process ([`crate::dispatch`]); [`enable`]
//! turns this multiplication on for every [`super::Fp::mul`].

use std::sync::atomic::{AtomicBool, Ordering};

static ON: AtomicBool = AtomicBool::new(false);

/// Whether this CPU has BMI2 and ADX.
pub fn cpu_has_adx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("bmi2") && std::arch::is_x86_feature_detected!("adx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Uses the ADX multiplication from now on, where the CPU has it; returns
/// whether it is on.
pub fn enable() -> bool {
    let on = cpu_has_adx();
    ON.store(on, Ordering::Relaxed);
    on
}

/// Goes back to the portable multiplication (benchmarks compare the two).
pub fn disable() {
    ON.store(false, Ordering::Relaxed);
}

/// Whether [`super::Fp::mul`] uses it.
#[inline(always)]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// `a * b * 2^-256 mod m`, not yet reduced below m (below 2m), for a modulus
/// under 2^254, `a` below 4m and `a * b` below `4m^2` (both below 2m, or
/// `b` below m). The caller makes sure the CPU has BMI2 and ADX
/// ([`enabled`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
pub fn mont_mul(a: &[u64; 4], b: &[u64; 4], m: &[u64; 4], inv: u64) -> [u64; 4] {
    let (mut t0, mut t1, mut t2, mut t3): (u64, u64, u64, u64);
    // One row: t += a * b[i] (t4 takes the top), then t += k * m with
    // k = t0 * inv, which clears t0; the four limbs above it are the new t.
    macro_rules! row {
        ($off:literal) => {
            concat!(
                "mov rdx, qword ptr [{b} + ",
                $off,
                "]\n",
                "xor {t4:e}, {t4:e}\n",
                "mulx {hi}, {lo}, qword ptr [{a}]\n",
                "adox {t0}, {lo}\n",
                "adcx {t1}, {hi}\n",
                "mulx {hi}, {lo}, qword ptr [{a} + 8]\n",
                "adox {t1}, {lo}\n",
                "adcx {t2}, {hi}\n",
                "mulx {hi}, {lo}, qword ptr [{a} + 16]\n",
                "adox {t2}, {lo}\n",
                "adcx {t3}, {hi}\n",
                "mulx {hi}, {lo}, qword ptr [{a} + 24]\n",
                "adox {t3}, {lo}\n",
                "adcx {t4}, {hi}\n",
                "mov {lo}, 0\n",
                "adox {t4}, {lo}\n",
                // k = t0 * inv; t += k * m
                "mov rdx, {t0}\n",
                "imul rdx, {inv}\n",
                "xor {lo:e}, {lo:e}\n",
                "mulx {hi}, {lo}, qword ptr [{m}]\n",
                "adox {t0}, {lo}\n",
                "adcx {t1}, {hi}\n",
                "mulx {hi}, {lo}, qword ptr [{m} + 8]\n",
                "adox {t1}, {lo}\n",
                "adcx {t2}, {hi}\n",
                "mulx {hi}, {lo}, qword ptr [{m} + 16]\n",
                "adox {t2}, {lo}\n",
                "adcx {t3}, {hi}\n",
                "mulx {hi}, {lo}, qword ptr [{m} + 24]\n",
                "adox {t3}, {lo}\n",
                "adcx {t4}, {hi}\n",
                "mov {lo}, 0\n",
                "adox {t4}, {lo}\n",
                // shift down one limb (t0 is zero now)
                "mov {t0}, {t1}\n",
                "mov {t1}, {t2}\n",
                "mov {t2}, {t3}\n",
                "mov {t3}, {t4}\n",
            )
        };
    }
    // SAFETY: the assembly reads 4 limbs from each of `a`, `b` and `m`
    // (valid references to [u64; 4]) and writes only the named registers;
    // it uses BMI2 and ADX instructions, which the caller has checked the
    // CPU has (`enabled()` is true only where `cpu_has_adx()` is). The
    // flags are clobbered (no `preserves_flags`), the stack is not touched.
    unsafe {
        std::arch::asm!(
            "xor {t0:e}, {t0:e}",
            "xor {t1:e}, {t1:e}",
            "xor {t2:e}, {t2:e}",
            "xor {t3:e}, {t3:e}",
            row!("0"),
            row!("8"),
            row!("16"),
            row!("24"),
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_ptr(),
            m = in(reg) m.as_ptr(),
            inv = in(reg) inv,
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            t2 = out(reg) t2,
            t3 = out(reg) t3,
            t4 = out(reg) _,
            hi = out(reg) _,
            lo = out(reg) _,
            out("rdx") _,
            options(pure, readonly, nostack),
        );
    }
    [t0, t1, t2, t3]
}

#[cfg(test)]
mod tests {
    use super::super::{FieldParams, Fq, FqParams, Fr, FrParams};
    use super::*;

    fn portable<P: FieldParams>(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
        super::super::Fp::<P>::from_mont(a)
            .mul_portable(&super::super::Fp::<P>::from_mont(b))
            .0
    }

    fn check<P: FieldParams>(values: &[[u64; 4]]) {
        for a in values {
            for b in values {
                let got = super::super::Fp::<P>::from_mont(mont_mul(a, b, &P::MODULUS, P::INV))
                    .reduce_once();
                assert_eq!(got.0, portable::<P>(*a, *b), "{a:x?} * {b:x?}");
            }
        }
    }

    fn values(m: [u64; 4], seed: u64) -> Vec<[u64; 4]> {
        let minus = |k: u64| {
            let mut v = m;
            v[0] = v[0].wrapping_sub(k);
            v
        };
        let mut out = vec![
            [0; 4],
            [1, 0, 0, 0],
            [2, 0, 0, 0],
            minus(1),
            minus(2),
            [u64::MAX, u64::MAX, 0, 0],
        ];
        // Random values below m (top limb below m's).
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            out.push([next(), next(), next(), next() % m[3]]);
        }
        out
    }

    #[test]
    fn the_adx_multiplication_gives_the_portable_result_bit_for_bit() {
        // A CPU without BMI2/ADX cannot run this: that fails the test,
        // unless skipping is allowed (AZTEC_PROVER_TEST_ALLOW_SKIP=1).
        if !cpu_has_adx() {
            assert!(
                std::env::var("AZTEC_PROVER_TEST_ALLOW_SKIP").is_ok_and(|v| v == "1"),
                "this CPU has no BMI2/ADX: the ADX multiplication cannot be tested here \
                 (AZTEC_PROVER_TEST_ALLOW_SKIP=1 skips it)"
            );
            eprintln!("NOT RUN: this CPU has no BMI2/ADX");
            return;
        }
        check::<FqParams>(&values(FqParams::MODULUS, 0x9e3779b97f4a7c15));
        check::<FrParams>(&values(FrParams::MODULUS, 0xd1b54a32d192ed03));
        // Through Fp::mul with the switch on, results are unchanged.
        let (a, b) = (
            Fq::from_canonical([5, 6, 7, 8]),
            Fr::from_canonical([9, 10, 11, 12]),
        );
        let (qa, rb) = (a.mul(&a), b.mul(&b));
        enable();
        assert_eq!(a.mul(&a), qa);
        assert_eq!(b.mul(&b), rb);
    }
}

//! Field multiplication throughput and latency, ours against arkworks.

// A benchmark binary: a panic is its report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use ark_ff::{PrimeField, UniformRand};
use ark_std::rand::{SeedableRng, rngs::StdRng};
use aztec_backend_cpu::field::Fq;
use std::hint::black_box;

fn main() {
    let mut rng = StdRng::seed_from_u64(1);
    let a: Vec<ark_bn254::Fq> = (0..8).map(|_| ark_bn254::Fq::rand(&mut rng)).collect();
    let b = ark_bn254::Fq::rand(&mut rng);
    let ours: Vec<Fq> = a
        .iter()
        .map(|x| Fq::from_canonical(x.into_bigint().0))
        .collect();
    let ob = Fq::from_canonical(b.into_bigint().0);
    let iters = 5_000_000u64;
    // throughput: 8 independent chains
    let t = std::time::Instant::now();
    let mut acc: [ark_bn254::Fq; 8] = a.clone().try_into().unwrap();
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x *= b;
        }
    }
    let ark_tp = t.elapsed().as_nanos() as f64 / (iters * 8) as f64;
    black_box(&acc);
    let t = std::time::Instant::now();
    let mut acc2: [Fq; 8] = ours.clone().try_into().unwrap();
    for _ in 0..iters {
        for x in acc2.iter_mut() {
            *x = x.mul(&ob);
        }
    }
    let our_tp = t.elapsed().as_nanos() as f64 / (iters * 8) as f64;
    black_box(&acc2);
    // latency: one chain
    let t = std::time::Instant::now();
    let mut x = a[0];
    for _ in 0..iters * 4 {
        x *= b;
    }
    let ark_lat = t.elapsed().as_nanos() as f64 / (iters * 4) as f64;
    black_box(x);
    let t = std::time::Instant::now();
    let mut y = ours[0];
    for _ in 0..iters * 4 {
        y = y.mul(&ob);
    }
    let our_lat = t.elapsed().as_nanos() as f64 / (iters * 4) as f64;
    black_box(y);
    assert_eq!(y.to_canonical(), x.into_bigint().0);
    println!(
        "mul throughput: ours {our_tp:.2} ns, arkworks {ark_tp:.2} ns; latency: ours {our_lat:.2} ns, arkworks {ark_lat:.2} ns"
    );
    if aztec_backend_cpu::field::adx::enable() {
        let t = std::time::Instant::now();
        let mut acc3: [Fq; 8] = ours.clone().try_into().unwrap();
        for _ in 0..iters {
            for x in acc3.iter_mut() {
                *x = x.mul(&ob);
            }
        }
        let adx_tp = t.elapsed().as_nanos() as f64 / (iters * 8) as f64;
        assert_eq!(acc3, acc2);
        let t = std::time::Instant::now();
        let mut y3 = ours[0];
        for _ in 0..iters * 4 {
            y3 = y3.mul(&ob);
        }
        let adx_lat = t.elapsed().as_nanos() as f64 / (iters * 4) as f64;
        assert_eq!(y3, y);
        println!("adx mul throughput: {adx_tp:.2} ns; latency: {adx_lat:.2} ns");
        aztec_backend_cpu::field::adx::disable();
    }
    // inversion: a chain, each inverse feeding the next (ours by divsteps,
    // Fermat's x^(p-2) as before, arkworks)
    use ark_ff::Field as _;
    let inv_iters = 20_000u32;
    let t = std::time::Instant::now();
    let mut z = ours[1];
    for _ in 0..inv_iters {
        z = z.inverse().expect("nonzero").add(&Fq::ONE);
    }
    let our_inv = t.elapsed().as_nanos() as f64 / f64::from(inv_iters);
    let mut e =
        <aztec_backend_cpu::field::FqParams as aztec_backend_cpu::field::FieldParams>::MODULUS;
    e[0] -= 2;
    let t = std::time::Instant::now();
    let mut w = ours[1];
    for _ in 0..inv_iters {
        w = w.pow(&e).add(&Fq::ONE);
    }
    let fermat_inv = t.elapsed().as_nanos() as f64 / f64::from(inv_iters);
    let t = std::time::Instant::now();
    let mut v = a[1];
    for _ in 0..inv_iters {
        v = v.inverse().expect("nonzero") + ark_bn254::Fq::ONE;
    }
    let ark_inv = t.elapsed().as_nanos() as f64 / f64::from(inv_iters);
    assert_eq!(z.to_canonical(), v.into_bigint().0);
    assert_eq!(w, z);
    println!("inverse: ours {our_inv:.0} ns, Fermat {fermat_inv:.0} ns, arkworks {ark_inv:.0} ns");
    #[cfg(target_arch = "x86_64")]
    if aztec_backend_cpu::dispatch::cpu_has_ifma() {
        // SAFETY: the CPU has IFMA.
        #[allow(unsafe_code)]
        let per = unsafe { ifma_throughput(iters / 4) };
        println!("ifma mul throughput: {per:.2} ns per element (8 lanes x 4 chains)");
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn ifma_throughput(iters: u64) -> f64 {
    use aztec_backend_cpu::field::ifma::{FQ, Field8};
    let f = Field8::new(&FQ);
    let mut acc = [f.one; 4];
    let b = f.double(&f.one);
    let t = std::time::Instant::now();
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = f.mul(a, &b);
        }
    }
    black_box(&acc);
    t.elapsed().as_nanos() as f64 / (iters * 32) as f64
}

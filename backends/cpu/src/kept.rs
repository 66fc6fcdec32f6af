//! Kept Fr vectors (ABI version 3) for the CPU backend: host memory, held as
//! canonical 32-byte encodings so that the byte NTT, the MSM's scalar
//! decoding and downloads take them as they are. Nothing crosses a bus
//! here, so the backend does not set `KEPT_VECTORS`; the entries exist so
//! that every backend serves the same table and a caller's code path can be
//! tested on any machine.

use std::sync::Mutex;

use rayon::prelude::*;

use crate::field::{Fr, limbs_from_bytes, limbs_to_bytes};

/// One kept vector.
#[derive(Debug)]
pub struct Vector {
    bytes: Mutex<Vec<u8>>,
    n: usize,
}

impl aztec_backend_abi::export::KeptVector for Vector {
    fn len(&self) -> usize {
        self.n
    }
}

/// Grain of the parallel element loops.
const CHUNK: usize = 1 << 12;

fn element(b: &[u8]) -> [u8; 32] {
    let mut w = [0u8; 32];
    w.copy_from_slice(b);
    w
}

impl Vector {
    /// Keeps `data` (32-byte elements), each reduced modulo r.
    pub fn new(data: &[u8]) -> Vector {
        let mut bytes = data.to_vec();
        bytes.par_chunks_mut(32 * CHUNK).for_each(|part| {
            for e in part.chunks_exact_mut(32) {
                let reduced = Fr::reduce(limbs_from_bytes(&element(e)));
                e.copy_from_slice(&limbs_to_bytes(&reduced));
            }
        });
        Vector {
            n: data.len() / 32,
            bytes: Mutex::new(bytes),
        }
    }

    /// Runs `f` on the elements.
    pub fn with<T>(&self, f: impl FnOnce(&mut [u8]) -> T) -> T {
        let mut g = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// `(a[i]·b[i] − c[i])·scale` over the three equal parts.
    pub fn ab_minus_c(&self, scale: &[u8; 32]) -> Vector {
        let s = Fr::from_bytes_reduce(scale);
        let n = self.n / 3;
        let mut out = vec![0u8; 32 * n];
        self.with(|v| {
            let (a, rest) = v.split_at(32 * n);
            let (b, c) = rest.split_at(32 * n);
            out.par_chunks_mut(32 * CHUNK)
                .enumerate()
                .for_each(|(k, o)| {
                    let at = 32 * CHUNK * k;
                    for (j, e) in o.chunks_exact_mut(32).enumerate() {
                        let i = at + 32 * j;
                        let get = |x: &[u8]| Fr::from_bytes_reduce(&element(&x[i..i + 32]));
                        let h = get(a).mul(&get(b)).sub(&get(c)).mul(&s);
                        e.copy_from_slice(&h.to_bytes());
                    }
                });
        });
        Vector {
            n,
            bytes: Mutex::new(out),
        }
    }
}

//! The portable MSM kernel: buckets of affine points of `F`, added in
//! batches with one shared inversion, on 64-bit arithmetic any CPU has.

use crate::curve::{Affine, Jacobian};
use crate::field::Field;

use super::{Kernel, NEG, add_with_inverse, batch_invert, msm_with, pair_denominator};

/// The portable kernel: affine points of `F`.
pub struct Portable<F>(std::marker::PhantomData<F>);

impl<F> Default for Portable<F> {
    fn default() -> Self {
        Portable(std::marker::PhantomData)
    }
}

impl<F: Field> Portable<F> {
    #[inline(always)]
    fn get(points: &[Affine<F>], r: u32) -> Affine<F> {
        let p = &points[(r & !NEG) as usize];
        if r & NEG != 0 { p.neg() } else { *p }
    }
}

impl<F: Field> Kernel for Portable<F> {
    type F = F;
    type Points = Vec<Affine<F>>;
    type Buckets = Vec<Affine<F>>;
    fn count(&self, points: &Self::Points) -> usize {
        points.len()
    }
    fn input_is_identity(&self, points: &Self::Points, i: usize) -> bool {
        points[i].infinity
    }
    fn new_buckets(&self, nb: usize) -> Self::Buckets {
        vec![Affine::IDENTITY; nb]
    }
    fn bucket_is_empty(&self, buckets: &Self::Buckets, b: usize) -> bool {
        buckets[b].infinity
    }
    fn set_bucket(&self, buckets: &mut Self::Buckets, b: usize, points: &Self::Points, r: u32) {
        buckets[b] = Self::get(points, r);
    }
    fn add_batch(&self, buckets: &mut Self::Buckets, points: &Self::Points, batch: &[(u32, u32)]) {
        let mut den: Vec<F> = batch
            .iter()
            .map(|&(b, r)| pair_denominator(&buckets[b as usize], &Self::get(points, r)))
            .collect();
        let mut prefix = Vec::with_capacity(den.len());
        batch_invert(&mut den, &mut prefix);
        for (j, &(b, r)) in batch.iter().enumerate() {
            buckets[b as usize] =
                add_with_inverse(&buckets[b as usize], &Self::get(points, r), &den[j]);
        }
    }
    fn bucket_values(&self, buckets: &Self::Buckets) -> Vec<Affine<F>> {
        buckets.clone()
    }
}

/// `sum scalars[i] * points[i]` on the portable path.
pub fn msm<F: Field>(points: &[Affine<F>], scalars: &[[u64; 4]], threads: usize) -> Jacobian<F> {
    msm_with(
        &Portable::<F>::default(),
        &points.to_vec(),
        scalars,
        threads,
    )
}

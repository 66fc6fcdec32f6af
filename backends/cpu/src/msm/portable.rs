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

/// A task's buckets and the scratch space its batches reuse.
pub struct Buckets<F: Field> {
    values: Vec<Affine<F>>,
    /// Each addition's point, loaded (and negated) once.
    loaded: Vec<Affine<F>>,
    den: Vec<F>,
    prefix: Vec<F>,
}

impl<F: Field> Kernel for Portable<F> {
    type F = F;
    type Points = Vec<Affine<F>>;
    type Buckets = Buckets<F>;
    fn count(&self, points: &Self::Points) -> usize {
        points.len()
    }
    fn input_is_identity(&self, points: &Self::Points, i: usize) -> bool {
        points[i].infinity
    }
    fn new_buckets(&self, nb: usize) -> Self::Buckets {
        Buckets {
            values: vec![Affine::IDENTITY; nb],
            loaded: Vec::new(),
            den: Vec::new(),
            prefix: Vec::new(),
        }
    }
    fn bucket_is_empty(&self, buckets: &Self::Buckets, b: usize) -> bool {
        buckets.values[b].infinity
    }
    fn set_bucket(&self, buckets: &mut Self::Buckets, b: usize, points: &Self::Points, r: u32) {
        buckets.values[b] = Self::get(points, r);
    }
    fn add_batch(&self, buckets: &mut Self::Buckets, points: &Self::Points, batch: &[(u32, u32)]) {
        let Buckets {
            values,
            loaded,
            den,
            prefix,
        } = buckets;
        loaded.clear();
        den.clear();
        for (j, &(b, r)) in batch.iter().enumerate() {
            // A few additions ahead: the point (points are read almost in
            // order, but across a whole window's worth of memory) and the
            // bucket (the batch's own prefetch may have been lost).
            if let Some(&(b, r)) = batch.get(j + 8) {
                super::prefetch(&points[(r & !NEG) as usize]);
                super::prefetch(&values[b as usize]);
            }
            let q = Self::get(points, r);
            den.push(pair_denominator(&values[b as usize], &q));
            loaded.push(q);
        }
        batch_invert(den, prefix);
        for ((&(b, _), q), d) in batch.iter().zip(loaded.iter()).zip(den.iter()) {
            let slot = &mut values[b as usize];
            *slot = add_with_inverse(slot, q, d);
        }
    }
    fn prefetch_bucket(&self, buckets: &Self::Buckets, b: usize) {
        super::prefetch(&buckets.values[b]);
    }
    fn bucket_values(&self, buckets: &Self::Buckets) -> Vec<Affine<F>> {
        buckets.values.clone()
    }
    fn reduce(&self, buckets: &Self::Buckets, first: &[u32]) -> Jacobian<F> {
        super::segmented_sums(&buckets.values, first)
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

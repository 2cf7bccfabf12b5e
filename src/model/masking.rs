//! Per-sample patch masks of a masked autoencoder ([`PatchMasks`]): which patches
//! each image keeps visible, drawn from seeded noise as MAE's `random_masking` does,
//! or given by the caller.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::model::arch::Masking;

/// Mixed into the seed of the masking noise, so that it is not the stream that
/// initializes the weights.
const NOISE_SALT: u64 = 0x6d61_655f_6d61_736b;
/// The noise stream of the fixed validation masks (training steps count from 1).
const VALIDATION_STREAM: u64 = 0;

/// The masks of a batch of images: per image, `kept` visible patches and the others
/// removed (to reconstruct). Kept patches are listed in patch order (the encoder's
/// attention does not depend on their order).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchMasks {
    masking: Masking,
    keep: Vec<u32>,
    restore: Vec<u32>,
    mask: Vec<f32>,
}

/// A run of rows of [`PatchMasks`], in the layouts of [`MaskVars`](crate::model::MaskVars).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskRows<'a> {
    /// The shape of every row.
    pub masking: Masking,
    /// `[rows, kept]` visible patch indices.
    pub keep: &'a [u32],
    /// `[rows, patches + 1]` decoder ids (class token first).
    pub restore: &'a [u32],
    /// `[rows, patches + 1]` loss weights (1 = removed; class token 0).
    pub mask: &'a [f32],
}

impl MaskRows<'_> {
    /// The number of images.
    pub fn rows(&self) -> usize {
        self.mask.len() / (self.masking.patches() + 1)
    }

    /// Rows `start..start + rows`.
    pub fn slice(&self, start: usize, rows: usize) -> Self {
        let (k, n1) = (self.masking.kept, self.masking.patches() + 1);
        MaskRows {
            masking: self.masking,
            keep: &self.keep[start * k..(start + rows) * k],
            restore: &self.restore[start * n1..(start + rows) * n1],
            mask: &self.mask[start * n1..(start + rows) * n1],
        }
    }
}

impl PatchMasks {
    /// MAE's masks for `noise` (`[rows, patches]`, row-major): each row keeps the
    /// `kept` patches of smallest noise (ties broken by patch index) and removes the
    /// rest, as `argsort(noise)` does. Fails if `noise` is not whole rows or holds a
    /// non-finite value.
    pub fn from_noise(masking: Masking, noise: &[f32]) -> Result<Self> {
        let n = masking.patches();
        if n == 0 || !noise.len().is_multiple_of(n) || noise.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidConfig(format!(
                "masking noise must be finite, {n} values per image ({} values given)",
                noise.len()
            )));
        }
        let removed: Vec<bool> = noise
            .chunks_exact(n)
            .flat_map(|row| {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| row[a].total_cmp(&row[b]).then(a.cmp(&b)));
                let mut removed = vec![true; n];
                order[..masking.kept]
                    .iter()
                    .for_each(|&i| removed[i] = false);
                removed
            })
            .collect();
        Self::from_removed(masking, &removed)
    }

    /// The masks that remove the patches marked `true` in `removed` (`[rows,
    /// patches]`); each row must remove exactly `patches - kept`.
    pub fn from_removed(masking: Masking, removed: &[bool]) -> Result<Self> {
        let n = masking.patches();
        let whole = n > 0 && removed.len().is_multiple_of(n);
        let bad_row = removed
            .chunks(n.max(1))
            .position(|row| row.iter().filter(|&&r| !r).count() != masking.kept);
        if !whole || bad_row.is_some() {
            return Err(Error::InvalidConfig(format!(
                "masks of {n} patches each must keep exactly {} (row {bad_row:?} does not, or \
                 {} values are not whole rows)",
                masking.kept,
                removed.len()
            )));
        }
        let rows = removed.len() / n;
        let mut masks = Self {
            masking,
            keep: Vec::with_capacity(rows * masking.kept),
            restore: Vec::with_capacity(rows * (n + 1)),
            mask: Vec::with_capacity(rows * (n + 1)),
        };
        for row in removed.chunks_exact(n) {
            masks.push_row(row);
        }
        Ok(masks)
    }

    /// Appends one image's masks.
    fn push_row(&mut self, removed: &[bool]) {
        let kept = self.masking.kept as u32;
        let (mut visible, mut hidden) = (0u32, 0u32);
        self.restore.push(0);
        self.mask.push(0.0);
        for (i, &r) in removed.iter().enumerate() {
            if r {
                self.restore.push(kept + 1 + hidden);
                hidden += 1;
            } else {
                self.keep.push(i as u32);
                self.restore.push(1 + visible);
                visible += 1;
            }
            self.mask.push(f32::from(u8::from(r)));
        }
    }

    /// The masking noise of `rows` images at training step `step` (1-based; step 0 is
    /// [`PatchMasks::validation`]'s) of a run with `seed`: uniform in `[0, 1)`,
    /// deterministic per (seed, step, image), whatever the batch size.
    pub fn noise(seed: u64, step: u64, rows: usize, patches: usize) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ NOISE_SALT);
        rng.set_stream(step);
        (0..rows * patches).map(|_| rng.random::<f32>()).collect()
    }

    /// The masks of training step `step` for `rows` images (from
    /// [`PatchMasks::noise`]).
    pub fn for_step(masking: Masking, seed: u64, step: u64, rows: usize) -> Self {
        let noise = Self::noise(seed, step, rows, masking.patches());
        Self::from_noise(masking, &noise).expect("drawn noise is finite and whole rows")
    }

    /// The fixed validation masks of `rows` images: the same for every run, so that
    /// runs are compared on the same reconstruction problems.
    pub fn validation(masking: Masking, rows: usize) -> Self {
        Self::for_step(masking, 0, VALIDATION_STREAM, rows)
    }

    /// The shape these masks are for.
    pub fn masking(&self) -> Masking {
        self.masking
    }

    /// The number of images.
    pub fn rows(&self) -> usize {
        self.mask.len() / (self.masking.patches() + 1)
    }

    /// Whether image `row`'s patch `patch` is removed.
    pub fn is_removed(&self, row: usize, patch: usize) -> bool {
        self.mask[row * (self.masking.patches() + 1) + 1 + patch] > 0.0
    }

    /// Every row, in the graph's layouts.
    pub fn all(&self) -> MaskRows<'_> {
        MaskRows {
            masking: self.masking,
            keep: &self.keep,
            restore: &self.restore,
            mask: &self.mask,
        }
    }
}

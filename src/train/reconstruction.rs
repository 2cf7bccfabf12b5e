//! What two masked autoencoders make of the same masked images, for people to look
//! at: `coptim compare --model mae`'s `reconstructions.png` and the browser page's
//! reconstruction panels.
//!
//! A shown reconstruction is the input's visible patches as given and the model's
//! prediction at the removed ones, in the data's pixel units (`[0, 1]`): the
//! prediction is un-standardized, and with normalized targets (`norm_pix_loss`) first
//! un-normalized with the true patch's mean and variance, as the MAE demo notebook
//! does to show it (the model never sees those statistics; they only put its
//! normalized answer in the picture's units).

use crate::error::{Error, Result};
use crate::model::{Masking, PatchGrid, PatchMasks, Task};
use crate::train::inputs::Standardize;
use crate::train::{Lockstep, ModelSpec, TrainData};

/// How many test images `coptim compare --model mae` and the browser page show.
pub const SHOWN_IMAGES: usize = 8;
/// The epsilon of normalized targets' variance (MAE's `1e-6`; see
/// [`GraphBuilder::masked_mse`](crate::nn::GraphBuilder::masked_mse)).
const NORM_PIX_EPS: f64 = 1e-6;

/// Images, their masks and two runs' reconstructions of them, in the data's pixel
/// units clamped to `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstructions {
    /// Every image's shape, `[channels, height, width]`.
    pub shape: [usize; 3],
    /// The masks the images were reconstructed under (one row per image).
    pub masks: PatchMasks,
    /// The images as given, `[count, channels, height, width]`.
    pub images: Vec<f32>,
    /// Per run (base first): the visible patches as given, the removed ones as
    /// predicted, laid out as [`Reconstructions::images`].
    pub runs: [Vec<f32>; 2],
}

impl Reconstructions {
    /// The number of images.
    pub fn count(&self) -> usize {
        self.masks.rows()
    }

    /// Whether pixel `index` (into one image, `c * h * w + y * w + x` order) of image
    /// `row` lies in a removed patch.
    pub fn is_removed(&self, row: usize, index: usize) -> bool {
        let grid = self.masks.masking().grid;
        self.masks.is_removed(row, grid.patch_of(index))
    }

    /// Both reconstructing runs' answers for the first `count` (at most the test
    /// set's size) test images under the fixed validation masks; `None` when the runs'
    /// model does not reconstruct or trains on text.
    pub async fn of_test_images(runs: &mut Lockstep, count: usize) -> Result<Option<Self>> {
        let Some(masking) = masking(&runs.run(0).config().model) else {
            return Ok(None);
        };
        let TrainData::Images(data) = runs.run(0).data().clone() else {
            return Ok(None);
        };
        let count = count.min(data.test.len());
        let images = &data.test.images()[..count * data.test.image_len()];
        let masks = PatchMasks::validation(masking, count);
        Self::of_images(runs, images, masks).await.map(Some)
    }

    /// Both reconstructing runs' answers for one image (`[channels, height, width]` in
    /// the data's units, e.g. a drawing) under a random mask drawn from `mask_seed`.
    /// Fails when the runs' model does not reconstruct or the image has the wrong size.
    pub async fn of_drawing(runs: &mut Lockstep, image: &[f32], mask_seed: u64) -> Result<Self> {
        let model = &runs.run(0).config().model;
        let masking = masking(model).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "the {} model does not reconstruct masked images",
                model.name()
            ))
        })?;
        let masks = PatchMasks::for_step(masking, mask_seed, 1, 1);
        Self::of_images(runs, image, masks).await
    }

    /// Both reconstructing runs' answers for `images` (`[count, channels, height,
    /// width]` in the data's units, count = `masks.rows()`) under `masks`.
    pub async fn of_images(runs: &mut Lockstep, images: &[f32], masks: PatchMasks) -> Result<Self> {
        let config = runs.run(0).config().clone();
        let norm_pix = matches!(&config.model, ModelSpec::Mae(m) if m.norm_pix_loss);
        let standardize = match (config.normalize, runs.run(0).data()) {
            (true, TrainData::Images(data)) => Standardize::of(&data.train),
            _ => Standardize::IDENTITY,
        };
        let shape = <[usize; 3]>::try_from(config.model.architecture().io().sample_shape)
            .map_err(|_| Error::InvalidConfig("reconstructions need [c, h, w] images".into()))?;
        let mut inputs = images.to_vec();
        standardize.apply(&mut inputs);
        let mut shown = Self {
            shape,
            images: images.iter().map(|v| v.clamp(0.0, 1.0)).collect(),
            runs: [Vec::new(), Vec::new()],
            masks,
        };
        for run in 0..2 {
            let (model, _) = runs.run_mut(run).parts_mut();
            let predicted = model
                .reconstruct(&inputs, &shown.masks, shown.count())
                .await?;
            shown.runs[run] = shown.composite(&inputs, &predicted, norm_pix, standardize);
        }
        Ok(shown)
    }

    /// The visible pixels of `inputs` (standardized) and the removed ones of
    /// `predicted` (the model's units), un-normalized per patch when `norm_pix` and
    /// un-standardized, clamped to `[0, 1]`.
    fn composite(
        &self,
        inputs: &[f32],
        predicted: &[f32],
        norm_pix: bool,
        standardize: Standardize,
    ) -> Vec<f32> {
        let grid = self.masks.masking().grid;
        let per_image = grid.sample_len();
        let mut out = inputs.to_vec();
        for row in 0..self.count() {
            let image = row * per_image..(row + 1) * per_image;
            let stats = patch_stats(&inputs[image.clone()], grid);
            for i in 0..per_image {
                if self.is_removed(row, i) {
                    let (mean, std) = stats[grid.patch_of(i)];
                    let v = f64::from(predicted[image.start + i]);
                    let v = if norm_pix { v * std + mean } else { v };
                    out[image.start + i] = v as f32;
                }
            }
        }
        out.iter()
            .map(|v| (v * standardize.std + standardize.mean).clamp(0.0, 1.0))
            .collect()
    }
}

/// The patch grid of a reconstructing model (`None` for other models).
fn masking(model: &ModelSpec) -> Option<Masking> {
    match model.architecture().io().task {
        Task::Reconstruct(m) => Some(m),
        Task::Classify => None,
    }
}

/// Per patch of one image (row-major over the grid): the mean and
/// `sqrt(unbiased variance + eps)` of its values, the statistics normalized targets
/// divide by.
fn patch_stats(image: &[f32], grid: PatchGrid) -> Vec<(f64, f64)> {
    let mut values = vec![Vec::with_capacity(grid.patch_len()); grid.num_patches()];
    for (i, &v) in image.iter().enumerate() {
        values[grid.patch_of(i)].push(f64::from(v));
    }
    values
        .iter()
        .map(|patch| {
            let n = patch.len() as f64;
            let mean = patch.iter().sum::<f64>() / n;
            let var = patch.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            (mean, (var + NORM_PIX_EPS).sqrt())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4x4 images of one channel in 2x2 patches.
    const GRID: PatchGrid = PatchGrid {
        channels: 1,
        image_size: 4,
        patch: 2,
    };

    /// A 4x4 image of 2x2 patches, patch `n` holding values `10 n + 0..4`.
    fn image() -> Vec<f32> {
        (0..16)
            .map(|i| {
                let (y, x) = (i / 4, i % 4);
                (10 * ((y / 2) * 2 + x / 2) + (y % 2) * 2 + x % 2) as f32
            })
            .collect()
    }

    fn shown(removed: &[bool]) -> Reconstructions {
        let masking = Masking {
            grid: GRID,
            kept: 2,
        };
        Reconstructions {
            shape: [1, 4, 4],
            masks: PatchMasks::from_removed(masking, removed).unwrap(),
            images: Vec::new(),
            runs: [Vec::new(), Vec::new()],
        }
    }

    #[test]
    fn patch_stats_are_the_normalized_targets_mean_and_unbiased_std() {
        let stats = patch_stats(&image(), GRID);
        // Patch n holds 10 n + {0, 1, 2, 3}: mean 10 n + 1.5, unbiased variance 5/3.
        for (n, (mean, std)) in stats.into_iter().enumerate() {
            assert_eq!(mean, 10.0 * n as f64 + 1.5);
            assert!((std - (5.0f64 / 3.0 + NORM_PIX_EPS).sqrt()).abs() < 1e-12);
        }
    }

    #[test]
    fn composite_keeps_visible_patches_and_unnormalizes_removed_ones() {
        let shown = shown(&[false, true, true, false]);
        let inputs = image();
        let predicted = vec![-1.0; 16];
        let scale = Standardize {
            mean: 0.5,
            std: 0.01,
        };
        let raw = shown.composite(&inputs, &predicted, false, scale);
        let normed = shown.composite(&inputs, &predicted, true, scale);
        let std = (5.0f64 / 3.0 + NORM_PIX_EPS).sqrt();
        for i in 0..16 {
            let n = (i / 4 / 2) * 2 + i % 4 / 2;
            let expected = match n {
                0 | 3 => f64::from(inputs[i]),
                _ => -std + 10.0 * n as f64 + 1.5,
            };
            let expected = (expected * 0.01 + 0.5).clamp(0.0, 1.0);
            let expected_raw = if n == 0 || n == 3 { expected } else { 0.49 };
            assert!((f64::from(normed[i]) - expected).abs() < 1e-6, "pixel {i}");
            assert!((f64::from(raw[i]) - expected_raw).abs() < 1e-6, "pixel {i}");
            assert_eq!(shown.is_removed(0, i), n == 1 || n == 2, "pixel {i}");
        }
    }
}

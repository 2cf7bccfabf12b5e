//! The input pipeline of a training run: which samples each step sees, their random
//! translation, and standardization. Everything is a function of the seed and the
//! step, so a resumed run sees exactly the batches it would have seen.

use crate::data::batcher::{epoch_rng, uniform_below};
use crate::data::{Batcher, Dataset};
use crate::train::config::TrainConfig;

/// Salt of the augmentation streams, so they differ from the shuffling streams of
/// the same seed.
const AUGMENT_SALT: u64 = 0x6175_676d_656e_7421;

/// Mean and standard deviation of a dataset's pixels, for standardization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standardize {
    /// Mean pixel value.
    pub mean: f32,
    /// Standard deviation of the pixel values (1 for a constant dataset).
    pub std: f32,
}

impl Standardize {
    /// The identity (mean 0, std 1).
    pub const IDENTITY: Standardize = Standardize {
        mean: 0.0,
        std: 1.0,
    };

    /// The mean and standard deviation of every pixel of `data`, computed in f64.
    pub fn of(data: &Dataset) -> Self {
        let n = data.images().len().max(1) as f64;
        let mean = data.images().iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = data
            .images()
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        Self {
            mean: mean as f32,
            std: std as f32,
        }
    }

    /// Standardizes `images` in place.
    pub fn apply(&self, images: &mut [f32]) {
        let inv = 1.0 / self.std;
        for x in images {
            *x = (*x - self.mean) * inv;
        }
    }
}

/// The deterministic stream of training batches: step `s` (1-based) takes batch
/// `(s - 1) % batches_per_epoch` of epoch `(s - 1) / batches_per_epoch` of a
/// [`Batcher`] with `drop_last`, translated by up to `shift` pixels per image.
#[derive(Debug, Clone)]
pub struct BatchStream {
    batcher: Batcher,
    seed: u64,
    shift: usize,
    standardize: Standardize,
    epoch: Option<(u64, Vec<usize>)>,
}

impl BatchStream {
    /// The stream over `data` for `seed`. `batch_size` must not exceed the
    /// dataset's size (checked by the session).
    pub fn new(
        data: &Dataset,
        batch_size: usize,
        seed: u64,
        shift: usize,
        standardize: Standardize,
    ) -> Self {
        Self {
            batcher: Batcher::new(data.len(), batch_size, seed).with_drop_last(true),
            seed,
            shift,
            standardize,
            epoch: None,
        }
    }

    /// The stream a run of `config` trains on over `train`: standardized with
    /// `train`'s statistics when `config.normalize`.
    pub fn for_run(config: &TrainConfig, train: &Dataset) -> Self {
        let standardize = match config.normalize {
            true => Standardize::of(train),
            false => Standardize::IDENTITY,
        };
        Self::new(
            train,
            config.batch_size,
            config.seed,
            config.augment_shift,
            standardize,
        )
    }

    /// The standardization applied to every batch.
    pub fn standardize(&self) -> Standardize {
        self.standardize
    }

    /// The sample indices of step `step` (1-based).
    pub fn indices(&mut self, step: u64) -> &[usize] {
        let per_epoch = self.batcher.batches_per_epoch().max(1) as u64;
        let epoch = (step - 1) / per_epoch;
        let index = ((step - 1) % per_epoch) as usize;
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.epoch = Some((epoch, self.batcher.epoch_order(epoch)));
        }
        let order = &self.epoch.as_ref().expect("just set").1;
        let b = self.batcher.batch_size();
        &order[index * b..(index + 1) * b]
    }

    /// Fills `images` and `labels` with the batch of step `step`, augmented and
    /// standardized.
    pub fn batch_into(
        &mut self,
        data: &Dataset,
        step: u64,
        images: &mut Vec<f32>,
        labels: &mut Vec<u32>,
    ) {
        let indices = self.indices(step).to_vec();
        data.batch_into(&indices, images, labels);
        if self.shift > 0 {
            let mut rng = epoch_rng(self.seed ^ AUGMENT_SALT, step);
            let [c, h, w] = data.image_shape();
            for image in images.chunks_exact_mut(c * h * w) {
                let span = 2 * self.shift as u64 + 1;
                let dy = uniform_below(&mut rng, span) as isize - self.shift as isize;
                let dx = uniform_below(&mut rng, span) as isize - self.shift as isize;
                translate(image, c, h, w, dy, dx);
            }
        }
        self.standardize.apply(images);
    }
}

/// Moves every channel of `image` (`c x h x w`) down by `dy` and right by `dx`
/// pixels (negative: up, left), filling with zeros.
pub fn translate(image: &mut [f32], c: usize, h: usize, w: usize, dy: isize, dx: isize) {
    if dy == 0 && dx == 0 {
        return;
    }
    let src = image.to_vec();
    image.fill(0.0);
    for ch in 0..c {
        for y in 0..h as isize {
            let sy = y - dy;
            if !(0..h as isize).contains(&sy) {
                continue;
            }
            for x in 0..w as isize {
                let sx = x - dx;
                if (0..w as isize).contains(&sx) {
                    image[(ch * h + y as usize) * w + x as usize] =
                        src[(ch * h + sy as usize) * w + sx as usize];
                }
            }
        }
    }
}

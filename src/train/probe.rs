//! The linear probe: MAE's evaluation of a pretrained encoder. The frozen encoder's
//! class-token features of every image (all patches visible), standardized with the
//! training set's mean and variance (MAE's BatchNorm without affine parameters),
//! feed a linear softmax classifier trained on the training set with a fixed short
//! schedule; the result is its accuracy on the held-out test set. Computed on the CPU
//! in f64 (the classifier is tiny), deterministic.

use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::model::{Mae, NamedTensor, rng_for_seed};

/// Passes over the training features.
pub const PROBE_EPOCHS: usize = 30;
/// Features per SGD step.
pub const PROBE_BATCH: usize = 256;
/// Peak learning rate (cosine-decayed to 0 over the steps).
pub const PROBE_LR: f64 = 0.1;
/// SGD momentum.
pub const PROBE_MOMENTUM: f64 = 0.9;
/// The standardization's epsilon (BatchNorm's default), added to each variance.
const STANDARDIZE_EPS: f64 = 1e-5;
/// The seed of the order the training features are visited in.
const SHUFFLE_SEED: u64 = 0x9e37;

/// Labelled feature vectors, `values` row-major `[labels.len(), dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Values per sample.
    pub dim: usize,
    /// The features.
    pub values: Vec<f64>,
    /// One class per sample.
    pub labels: Vec<u32>,
}

impl Features {
    /// A sample's features.
    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Checks the shape (`what` names the set in errors): some samples, whole rows,
    /// finite values, labels below `classes`.
    fn check(&self, what: &str, classes: usize) -> Result<()> {
        let n = self.labels.len();
        if n == 0 || self.dim == 0 {
            return Err(Error::InvalidConfig(format!(
                "the probe's {what} set is empty"
            )));
        }
        if self.values.len() != n * self.dim {
            return Err(Error::LengthMismatch {
                what: format!("the probe's {what} features ({n} samples of {})", self.dim),
                expected: (n * self.dim) as u64,
                got: self.values.len() as u64,
            });
        }
        if let Some(&l) = self.labels.iter().find(|&&l| l as usize >= classes) {
            return Err(Error::InvalidConfig(format!(
                "the probe's {what} label {l} is not below the {classes} classes"
            )));
        }
        match self.values.iter().all(|v| v.is_finite()) {
            true => Ok(()),
            false => Err(Error::InvalidConfig(format!(
                "the probe's {what} features are not all finite"
            ))),
        }
    }
}

/// Per-feature mean and reciprocal standard deviation of the training set.
struct Standardizer {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
}

impl Standardizer {
    /// The statistics of `f` (population variance, as BatchNorm's running estimate).
    fn of(f: &Features) -> Self {
        let n = f.labels.len() as f64;
        let column = |j: usize| (0..f.labels.len()).map(move |i| f.row(i)[j]);
        let mean: Vec<f64> = (0..f.dim).map(|j| column(j).sum::<f64>() / n).collect();
        let inv_std = (0..f.dim)
            .map(|j| {
                let var = column(j).map(|v| (v - mean[j]).powi(2)).sum::<f64>() / n;
                1.0 / (var + STANDARDIZE_EPS).sqrt()
            })
            .collect();
        Self { mean, inv_std }
    }

    /// `f` standardized.
    fn apply(&self, f: &Features) -> Features {
        let values = f
            .values
            .chunks_exact(f.dim)
            .flat_map(|row| {
                row.iter()
                    .zip(self.mean.iter().zip(&self.inv_std))
                    .map(|(v, (m, s))| (v - m) * s)
            })
            .collect();
        Features {
            values,
            ..f.clone()
        }
    }
}

/// A linear classifier `logits = W x + b`, `W` `[classes, dim]`.
struct Linear {
    dim: usize,
    classes: usize,
    /// `W` then `b`.
    params: Vec<f64>,
}

impl Linear {
    /// The logits of `x`.
    fn logits(&self, x: &[f64]) -> Vec<f64> {
        let (w, b) = self.params.split_at(self.classes * self.dim);
        w.chunks_exact(self.dim)
            .zip(b)
            .map(|(row, b)| b + row.iter().zip(x).map(|(w, x)| w * x).sum::<f64>())
            .collect()
    }

    /// The gradient of the mean cross-entropy over `rows` of `f`.
    fn gradient(&self, f: &Features, rows: &[usize]) -> Vec<f64> {
        let mut grad = vec![0.0; self.params.len()];
        let scale = 1.0 / rows.len() as f64;
        for &i in rows {
            let x = f.row(i);
            let p = softmax(&self.logits(x));
            for (c, pc) in p.iter().enumerate() {
                let dz = (pc - f64::from(u8::from(f.labels[i] as usize == c))) * scale;
                let row = &mut grad[c * self.dim..(c + 1) * self.dim];
                row.iter_mut().zip(x).for_each(|(g, x)| *g += dz * x);
                grad[self.classes * self.dim + c] += dz;
            }
        }
        grad
    }

    /// The fraction of `f` classified correctly.
    fn accuracy(&self, f: &Features) -> f64 {
        let correct = (0..f.labels.len())
            .filter(|&i| argmax(&self.logits(f.row(i))) == f.labels[i] as usize)
            .count();
        correct as f64 / f.labels.len() as f64
    }
}

/// The softmax of `z`.
fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// The index of the largest value (the first of ties).
fn argmax(z: &[f64]) -> usize {
    z.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| match v > best.1 {
            true => (i, v),
            false => best,
        })
        .0
}

/// Trains a linear softmax classifier over `classes` on standardized `train`
/// features (zero initialization; SGD with momentum [`PROBE_MOMENTUM`], batches of
/// [`PROBE_BATCH`] in a seeded order, [`PROBE_EPOCHS`] epochs, learning rate
/// [`PROBE_LR`] cosine-decayed to 0) and returns its accuracy on `test`, standardized
/// with `train`'s statistics. Fails on empty sets, mis-sized or non-finite features,
/// feature widths that differ, or a label not below `classes`.
pub fn linear_probe(train: &Features, test: &Features, classes: usize) -> Result<f64> {
    train.check("training", classes)?;
    test.check("test", classes)?;
    if train.dim != test.dim {
        return Err(Error::InvalidConfig(format!(
            "the probe's training features have {} values, its test features {}",
            train.dim, test.dim
        )));
    }
    let standardize = Standardizer::of(train);
    let (train, test) = (standardize.apply(train), standardize.apply(test));
    let mut model = Linear {
        dim: train.dim,
        classes,
        params: vec![0.0; (train.dim + 1) * classes],
    };
    let mut velocity = vec![0.0; model.params.len()];
    let mut order: Vec<usize> = (0..train.labels.len()).collect();
    let mut rng = rng_for_seed(SHUFFLE_SEED);
    let steps = PROBE_EPOCHS * order.len().div_ceil(PROBE_BATCH);
    let mut step = 0;
    for _ in 0..PROBE_EPOCHS {
        order.shuffle(&mut rng);
        for rows in order.chunks(PROBE_BATCH) {
            let lr =
                PROBE_LR * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps as f64).cos());
            let grad = model.gradient(&train, rows);
            for ((p, v), g) in model.params.iter_mut().zip(&mut velocity).zip(&grad) {
                *v = PROBE_MOMENTUM * *v + g;
                *p -= lr * *v;
            }
            step += 1;
        }
    }
    Ok(model.accuracy(&test))
}

/// MAE's linear-probe accuracy of a trained `mae` (its `params`): class-token features
/// of `train_images` and `test_images` (flat, as the model sees them) with every
/// patch visible ([`Mae::class_features`]), then [`linear_probe`].
pub fn mae_probe_accuracy(
    mae: &Mae,
    params: &[NamedTensor],
    train: (&[f32], &[u32]),
    test: (&[f32], &[u32]),
    classes: usize,
) -> Result<f64> {
    let features = |(images, labels): (&[f32], &[u32])| -> Result<Features> {
        Ok(Features {
            dim: mae.encoder.dim,
            values: mae.class_features(params, images)?,
            labels: labels.to_vec(),
        })
    };
    linear_probe(&features(train)?, &features(test)?, classes)
}

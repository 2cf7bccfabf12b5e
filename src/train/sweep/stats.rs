//! The statistics of a sweep: the bootstrap interval of a median over seeds, the
//! choice of each optimizer's learning rate, and the per-seed speed-ups.
//!
//! Bootstrap: the per-seed values are resampled with replacement ([`BOOTSTRAP_RESAMPLES`]
//! resamples of as many values as there are seeds, seed indices drawn uniformly by a
//! ChaCha8 stream seeded with [`BOOTSTRAP_SEED`]); the statistic is the median of each
//! resample, and the 95% interval is the percentile interval: the resampled medians'
//! order statistics at ranks `floor(0.025 B)` and `ceil(0.975 B) - 1` (0-based) of
//! `B` resamples.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::batcher::uniform_below;
use crate::train::compare::Spread;
use crate::train::metrics::{History, median};

/// Resamples of the bootstrap.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// Seed of the bootstrap's random stream (fixed: the interval is reproducible).
pub const BOOTSTRAP_SEED: u64 = 0x5357_4545_5043_4931;

/// A median with its bootstrap 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// The median of the values (`None` without values).
    pub median: Option<f64>,
    /// The 95% percentile-bootstrap interval of the median, `[lo, hi]`.
    pub ci95: Option<[f64; 2]>,
}

/// The median of `values` and its percentile-bootstrap 95% interval over `resamples`
/// resamples drawn from `seed` (see the module docs).
pub fn bootstrap_median(values: &[f64], resamples: usize, seed: u64) -> Interval {
    let n = values.len();
    if n == 0 || resamples == 0 {
        return Interval {
            median: None,
            ci95: None,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sample = vec![0.0; n];
    let mut medians: Vec<f64> = (0..resamples)
        .map(|_| {
            for v in &mut sample {
                *v = values[uniform_below(&mut rng, n as u64) as usize];
            }
            median(&mut sample).expect("a resample is never empty")
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let (lo, hi) = percentile_ranks(resamples);
    Interval {
        median: median(&mut values.to_vec()),
        ci95: Some([medians[lo], medians[hi]]),
    }
}

/// The 0-based ranks of the 2.5th and 97.5th percentiles among `resamples` sorted
/// values: `floor(0.025 B)` and `ceil(0.975 B) - 1` (`resamples` at least 1).
fn percentile_ranks(resamples: usize) -> (usize, usize) {
    let lo = (0.025 * resamples as f64).floor() as usize;
    let hi = ((0.975 * resamples as f64).ceil() as usize).clamp(1, resamples) - 1;
    (lo.min(hi), hi)
}

/// One learning rate of one optimizer's grid, over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridPoint {
    /// The learning rate.
    pub lr: f64,
    /// Mean final validation loss over the seeds; `None` when a seed diverged or
    /// has no result (such a point is never chosen).
    pub mean_val_loss: Option<f64>,
    /// Median and range of the final validation loss over the seeds that finished.
    pub val_loss: Spread,
    /// Seeds whose run diverged (non-finite loss).
    pub diverged: usize,
}

impl GridPoint {
    /// The point at `lr` from each seed's final validation loss (`None`: diverged).
    pub fn of(lr: f64, val_losses: &[Option<f64>]) -> Self {
        let finite: Vec<f64> = val_losses.iter().flatten().copied().collect();
        let complete = !val_losses.is_empty() && finite.len() == val_losses.len();
        Self {
            lr,
            mean_val_loss: complete.then(|| finite.iter().sum::<f64>() / finite.len() as f64),
            val_loss: Spread::of(&finite),
            diverged: val_losses.len() - finite.len(),
        }
    }
}

/// The learning rate with the lowest mean validation loss (the smaller rate on a
/// tie); `None` when no point has one.
pub fn tuned_lr(points: &[GridPoint]) -> Option<f64> {
    points
        .iter()
        .filter_map(|p| p.mean_val_loss.map(|l| (p.lr, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)))
        .map(|(lr, _)| lr)
}

/// One seed's speed-up: the base run's evaluations to its own final validation
/// loss against the other run's to the same target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeedSpeedup {
    /// The seed.
    pub seed: u64,
    /// Steps the base run took to first reach its own final validation loss.
    pub base_steps: u64,
    /// Steps the other run took to reach it; `None`: never within its budget.
    pub steps: Option<u64>,
    /// `base_steps / steps`; a run that never reached the target counts as
    /// reaching it at its last step (`base_steps / budget`), an upper bound on its
    /// true speed-up, which is below that.
    pub speedup: f64,
}

impl SeedSpeedup {
    /// The speed-up of `other` over `base` (same seed) to `base`'s final validation
    /// loss within `budget` steps; `None` when `base` has no evaluation.
    pub fn of(seed: u64, base: &History, other: Option<&History>, budget: u64) -> Option<Self> {
        let target = base.last_eval()?.loss;
        let base_steps = base.evals_to_reach(target)?;
        let steps = other.and_then(|h| h.evals_to_reach(target));
        let speedup = base_steps as f64 / steps.unwrap_or(budget).max(1) as f64;
        Some(Self {
            seed,
            base_steps,
            steps,
            speedup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_of_equal_values_is_that_value() {
        let i = bootstrap_median(&[1.25; 5], BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
        assert_eq!(i.median, Some(1.25));
        assert_eq!(i.ci95, Some([1.25, 1.25]));
    }

    #[test]
    fn bootstrap_of_three_values_spans_them() {
        // The median of a resample of {1, 2, 3} is 1 with probability 7/27 (two or
        // three draws of 1), far above 2.5%: the interval is [1, 3] for any stream.
        let i = bootstrap_median(&[3.0, 1.0, 2.0], BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
        assert_eq!(i.median, Some(2.0));
        assert_eq!(i.ci95, Some([1.0, 3.0]));
    }

    #[test]
    fn bootstrap_is_deterministic_and_seeded() {
        let values: Vec<f64> = (0..9).map(|i| 1.0 + (i * i) as f64 / 10.0).collect();
        let a = bootstrap_median(&values, 2000, 7);
        assert_eq!(a, bootstrap_median(&values, 2000, 7));
        let [lo, hi] = a.ci95.unwrap();
        assert!(lo < a.median.unwrap() && a.median.unwrap() < hi, "{a:?}");
        assert!(lo >= 1.0 && hi <= 7.4, "{a:?}");
    }

    #[test]
    fn percentile_ranks_follow_the_stated_rule() {
        assert_eq!(percentile_ranks(BOOTSTRAP_RESAMPLES), (250, 9749));
        assert_eq!(percentile_ranks(40), (1, 38));
        assert_eq!(percentile_ranks(1), (0, 0));
        assert_eq!(bootstrap_median(&[], 40, 3).ci95, None);
    }

    #[test]
    fn bootstrap_interval_of_a_skewed_sample() {
        // Nineteen 1s and one 9: a resample's median is 9 only when at least 10 of
        // its 20 draws are the 9 (probability about 1e-8), so both ends are 1.
        let mut v = vec![1.0; 19];
        v.push(9.0);
        let i = bootstrap_median(&v, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
        assert_eq!((i.median, i.ci95), (Some(1.0), Some([1.0, 1.0])));
    }

    #[test]
    fn the_tuned_rate_is_the_argmin_of_the_mean_and_skips_divergence() {
        let points = [
            GridPoint::of(1e-3, &[Some(0.5), Some(0.7)]),
            GridPoint::of(2e-3, &[Some(0.4), Some(0.5)]),
            GridPoint::of(4e-3, &[Some(0.1), None]),
            GridPoint::of(8e-3, &[Some(0.45), Some(0.45)]),
        ];
        assert_eq!(points[2].mean_val_loss, None);
        assert_eq!(points[2].diverged, 1);
        assert_eq!(tuned_lr(&points), Some(2e-3));
        assert_eq!(tuned_lr(&points[2..3]), None);
        let tie = [
            GridPoint::of(3.0, &[Some(1.0)]),
            GridPoint::of(2.0, &[Some(1.0)]),
        ];
        assert_eq!(tuned_lr(&tie), Some(2.0));
    }

    fn evals(losses: &[(u64, f64)]) -> History {
        History {
            steps: Vec::new(),
            evals: losses
                .iter()
                .map(|&(step, loss)| crate::train::EvalMetrics {
                    step,
                    loss,
                    accuracy: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn speedups_count_never_reached_at_the_budget() {
        let base = evals(&[(10, 0.9), (20, 0.5), (30, 0.6), (40, 0.5)]);
        let fast = evals(&[(10, 0.5), (20, 0.3), (30, 0.2), (40, 0.1)]);
        let slow = evals(&[(10, 0.9), (20, 0.8), (30, 0.7), (40, 0.6)]);
        let s = SeedSpeedup::of(1, &base, Some(&fast), 40).unwrap();
        assert_eq!((s.base_steps, s.steps, s.speedup), (20, Some(10), 2.0));
        let s = SeedSpeedup::of(1, &base, Some(&slow), 40).unwrap();
        assert_eq!((s.steps, s.speedup), (None, 0.5));
        let s = SeedSpeedup::of(1, &base, None, 40).unwrap();
        assert_eq!(s.speedup, 0.5);
        assert_eq!(SeedSpeedup::of(1, &evals(&[]), Some(&fast), 40), None);
    }
}

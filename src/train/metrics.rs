//! Per-step and per-evaluation metrics of a training run, and the summaries the
//! comparison derives from them.

use serde::{Deserialize, Serialize};

/// What one training step measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// The step (1-based).
    pub step: u64,
    /// Mean softmax cross-entropy of the step's batch (before the update).
    pub loss: f32,
    /// Fraction of the batch classified correctly (before the update).
    pub accuracy: f32,
    /// Learning rate of the step's update.
    pub lr: f64,
    /// Fraction of coordinates the cautious mask kept (1 without caution), from the
    /// step's one readback record. `None` only in histories of older checkpoints.
    pub kept_fraction: Option<f64>,
    /// Wall-clock milliseconds from the step's submission (or the previous step's
    /// completion, if later) until its results were seen; `None` for the first step
    /// after a resume. Meaningful when the driver waits for each step, as the native
    /// runner does.
    pub step_ms: Option<f64>,
}

/// A full pass over the test set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Steps completed when it was taken.
    pub step: u64,
    /// Mean softmax cross-entropy over the test set.
    pub loss: f64,
    /// Fraction of the test set classified correctly.
    pub accuracy: f64,
}

/// Everything a run has measured so far, in step order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One entry per completed step.
    pub steps: Vec<StepMetrics>,
    /// One entry per evaluation.
    pub evals: Vec<EvalMetrics>,
}

impl History {
    /// The window of [`History::smoothed_loss`] for a run of `steps` steps: 5% of
    /// them, at least 1.
    pub fn smoothing_window(steps: u64) -> usize {
        (steps / 20).max(1) as usize
    }

    /// The trailing mean of the training loss over `window` steps, per step (the
    /// first entries average over the steps so far).
    pub fn smoothed_loss(&self, window: usize) -> Vec<f64> {
        let window = window.max(1);
        let mut out = Vec::with_capacity(self.steps.len());
        let mut sum = 0.0;
        for (i, m) in self.steps.iter().enumerate() {
            sum += m.loss as f64;
            if i >= window {
                sum -= self.steps[i - window].loss as f64;
            }
            out.push(sum / (i + 1).min(window) as f64);
        }
        out
    }

    /// The final training loss: the mean over the last `window` steps.
    pub fn final_loss(&self, window: usize) -> Option<f64> {
        self.smoothed_loss(window).last().copied()
    }

    /// The first step at which the trailing mean loss (over `window` steps) is at
    /// most `target`, if any.
    pub fn steps_to_reach(&self, target: f64, window: usize) -> Option<u64> {
        self.smoothed_loss(window)
            .iter()
            .zip(&self.steps)
            .find(|(l, _)| **l <= target)
            .map(|(_, m)| m.step)
    }

    /// The step of the first evaluation whose loss is at most `target`, if any.
    pub fn evals_to_reach(&self, target: f64) -> Option<u64> {
        self.evals.iter().find(|e| e.loss <= target).map(|e| e.step)
    }

    /// The last evaluation, if any.
    pub fn last_eval(&self) -> Option<&EvalMetrics> {
        self.evals.last()
    }

    /// Mean kept fraction over the steps that have one.
    pub fn mean_kept_fraction(&self) -> Option<f64> {
        let kept: Vec<f64> = self.steps.iter().filter_map(|m| m.kept_fraction).collect();
        (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
    }

    /// Median step time in milliseconds over the steps that have one.
    pub fn median_step_ms(&self) -> Option<f64> {
        let mut t: Vec<f64> = self.steps.iter().filter_map(|m| m.step_ms).collect();
        median(&mut t)
    }
}

/// The median of `values` (mean of the middle two for an even count), reordering
/// them; `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(losses: &[f32]) -> History {
        History {
            steps: losses
                .iter()
                .enumerate()
                .map(|(i, &loss)| StepMetrics {
                    step: i as u64 + 1,
                    loss,
                    accuracy: 0.0,
                    lr: 0.0,
                    kept_fraction: None,
                    step_ms: None,
                })
                .collect(),
            evals: Vec::new(),
        }
    }

    #[test]
    fn smoothing_and_reaching() {
        let h = history(&[4.0, 2.0, 3.0, 1.0]);
        assert_eq!(h.smoothed_loss(2), vec![4.0, 3.0, 2.5, 2.0]);
        assert_eq!(h.final_loss(2), Some(2.0));
        assert_eq!(h.steps_to_reach(2.5, 2), Some(3));
        assert_eq!(h.steps_to_reach(1.0, 2), None);
        assert_eq!(h.steps_to_reach(1.0, 1), Some(4));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}

//! Learning-rate schedules, evaluated on the CPU for each step.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A multiplier of the base learning rate as a function of the step (1-based).
///
/// Convention (the same as PyTorch): step `s` uses the value that
/// `torch.optim.lr_scheduler.LambdaLR` gives after `s - 1` calls of
/// `scheduler.step()`, one after every `optimizer.step()`, i.e. `lambda(t)` at the
/// 0-based index `t = s - 1`. The cosine decay is torch's `CosineAnnealingLR`
/// closed form (and timm's `CosineLRScheduler`): `floor + (1 - floor) * 0.5 *
/// (1 + cos(pi * t' / T))` over the `T` decay steps, `t' = 0, 1, ...`, so the first
/// decay step runs at the peak and the floor is reached one step after the last,
/// as in torch. The linear warm-up over `w` steps is `lambda(t) = (t + 1) / w`:
/// it reaches the peak on its last step and never runs a step at learning rate 0
/// (timm and Hugging Face start their warm-up at 0 instead).
///
/// ```
/// use coptim::optim::LrSchedule;
/// let s = LrSchedule::WarmupCosine { warmup: 10, total: 110, floor: 0.1 };
/// assert!((s.factor(5) - 0.5).abs() < 1e-12);
/// assert!((s.factor(10) - 1.0).abs() < 1e-12); // last warm-up step
/// assert!((s.factor(11) - 1.0).abs() < 1e-12); // first decay step
/// assert!((s.factor(111) - 0.1).abs() < 1e-12); // one past the end
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// Always 1.
    #[default]
    Constant,
    /// Linear ramp from 1/warmup to 1 over `warmup` steps, then 1.
    LinearWarmup {
        /// Warm-up steps.
        warmup: u64,
    },
    /// Cosine decay over `total` steps from 1 at step 1 towards `floor`, reached at
    /// step `total + 1` and kept after.
    Cosine {
        /// Steps of the decay.
        total: u64,
        /// Final multiplier.
        floor: f64,
    },
    /// Linear warm-up, then cosine decay over the remaining `total - warmup` steps
    /// towards `floor` (the paper's setup).
    WarmupCosine {
        /// Warm-up steps.
        warmup: u64,
        /// Steps of warm-up and decay together.
        total: u64,
        /// Final multiplier.
        floor: f64,
    },
}

impl LrSchedule {
    /// The multiplier at `step` (1-based; step 0 is treated as step 1).
    pub fn factor(&self, step: u64) -> f64 {
        let t = step.max(1) - 1;
        let warmup = |w: u64| ((t + 1) as f64 / w as f64).min(1.0);
        let cosine = |start: u64, total: u64, floor: f64| {
            let span = total.saturating_sub(start).max(1) as f64;
            let progress = (t.saturating_sub(start) as f64 / span).min(1.0);
            floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        };
        match *self {
            LrSchedule::Constant => 1.0,
            LrSchedule::LinearWarmup { warmup: 0 } => 1.0,
            LrSchedule::LinearWarmup { warmup: w } => warmup(w),
            LrSchedule::Cosine { total, floor } => cosine(0, total, floor),
            LrSchedule::WarmupCosine {
                warmup: w,
                total,
                floor,
            } => {
                if t < w {
                    warmup(w)
                } else {
                    cosine(w, total, floor)
                }
            }
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let floor_ok = |f: f64| (0.0..=1.0).contains(&f);
        match *self {
            LrSchedule::Cosine { floor, .. } | LrSchedule::WarmupCosine { floor, .. }
                if !floor_ok(floor) =>
            {
                Err(Error::InvalidConfig(format!(
                    "schedule floor {floor} is not in [0, 1]"
                )))
            }
            LrSchedule::WarmupCosine { warmup, total, .. } if warmup > total => Err(
                Error::InvalidConfig(format!("warmup {warmup} exceeds total {total}")),
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Learning-rate multipliers from PyTorch 2.15: `LambdaLR` with the lambda of
    /// [`LrSchedule`]'s doc, read before each of `total` optimizer steps (for
    /// `warmup = 0` they equal `CosineAnnealingLR(T_max=total, eta_min=floor)`).
    const TORCH_W0_T10: [f64; 10] = [
        1.0,
        0.9755282581475768,
        0.9045084971874737,
        0.7938926261462366,
        0.6545084971874737,
        0.5,
        0.34549150281252633,
        0.2061073738537635,
        0.09549150281252633,
        0.024471741852423234,
    ];
    const TORCH_W2_T20: [f64; 20] = [
        0.5,
        1.0,
        1.0,
        0.9924038765061041,
        0.9698463103929542,
        0.9330127018922194,
        0.883022221559489,
        0.8213938048432696,
        0.75,
        0.6710100716628344,
        0.5868240888334653,
        0.5,
        0.41317591116653485,
        0.3289899283371658,
        0.2500000000000001,
        0.17860619515673032,
        0.11697777844051105,
        0.06698729810778076,
        0.03015368960704584,
        0.00759612349389599,
    ];

    /// Same values up to f64 rounding of the cosine (a few ulps).
    const TOL: f64 = 1e-14;

    #[test]
    fn matches_torch_lambda_lr_step_for_step() {
        let cases: [(LrSchedule, &[f64]); 3] = [
            (
                LrSchedule::WarmupCosine {
                    warmup: 0,
                    total: 10,
                    floor: 0.0,
                },
                &TORCH_W0_T10,
            ),
            (
                LrSchedule::Cosine {
                    total: 10,
                    floor: 0.0,
                },
                &TORCH_W0_T10,
            ),
            (
                LrSchedule::WarmupCosine {
                    warmup: 2,
                    total: 20,
                    floor: 0.0,
                },
                &TORCH_W2_T20,
            ),
        ];
        for (schedule, torch) in cases {
            for (i, &want) in torch.iter().enumerate() {
                let got = schedule.factor(i as u64 + 1);
                assert!(
                    (got - want).abs() < TOL,
                    "{schedule:?} step {}: {got} vs {want}",
                    i + 1
                );
            }
        }
    }

    #[test]
    fn first_step_at_peak_last_above_floor_then_floor() {
        let c = LrSchedule::Cosine {
            total: 100,
            floor: 0.25,
        };
        assert_eq!(c.factor(1), 1.0);
        assert!(c.factor(100) > 0.25);
        assert!((c.factor(101) - 0.25).abs() < TOL);
        assert!((c.factor(500) - 0.25).abs() < TOL);
        assert_eq!(LrSchedule::Constant.factor(100), 1.0);
        let w = LrSchedule::LinearWarmup { warmup: 4 };
        assert_eq!(w.factor(1), 0.25);
        assert_eq!(w.factor(4), 1.0);
        assert_eq!(w.factor(9), 1.0);
    }
}

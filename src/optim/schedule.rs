//! Learning-rate schedules, evaluated on the CPU for each step.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A multiplier of the base learning rate as a function of the step (1-based).
///
/// ```
/// use coptim::optim::LrSchedule;
/// let s = LrSchedule::WarmupCosine { warmup: 10, total: 110, floor: 0.1 };
/// assert!((s.factor(5) - 0.5).abs() < 1e-12);
/// assert!((s.factor(110) - 0.1).abs() < 1e-12);
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
    /// Cosine decay from 1 at step 1 to `floor` at step `total`, then `floor`.
    Cosine {
        /// Steps of the decay.
        total: u64,
        /// Final multiplier.
        floor: f64,
    },
    /// Linear warm-up, then cosine decay to `floor` at step `total` (the paper's setup).
    WarmupCosine {
        /// Warm-up steps.
        warmup: u64,
        /// Last step of the decay.
        total: u64,
        /// Final multiplier.
        floor: f64,
    },
}

impl LrSchedule {
    /// The multiplier at `step` (1-based; step 0 is treated as step 1).
    pub fn factor(&self, step: u64) -> f64 {
        let step = step.max(1);
        let cosine = |t: u64, start: u64, total: u64, floor: f64| {
            let span = total.saturating_sub(start).max(1) as f64;
            let progress = (t.saturating_sub(start) as f64 / span).min(1.0);
            floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        };
        match *self {
            LrSchedule::Constant => 1.0,
            LrSchedule::LinearWarmup { warmup } => {
                if warmup == 0 {
                    1.0
                } else {
                    (step as f64 / warmup as f64).min(1.0)
                }
            }
            LrSchedule::Cosine { total, floor } => cosine(step, 1, total, floor),
            LrSchedule::WarmupCosine {
                warmup,
                total,
                floor,
            } => {
                if step <= warmup {
                    step as f64 / warmup as f64
                } else {
                    cosine(step, warmup, total, floor)
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

    #[test]
    fn shapes() {
        assert_eq!(LrSchedule::Constant.factor(100), 1.0);
        let w = LrSchedule::LinearWarmup { warmup: 4 };
        assert_eq!(w.factor(1), 0.25);
        assert_eq!(w.factor(9), 1.0);
        let c = LrSchedule::Cosine {
            total: 101,
            floor: 0.0,
        };
        assert!((c.factor(1) - 1.0).abs() < 1e-12);
        assert!((c.factor(51) - 0.5).abs() < 1e-12);
        assert!(c.factor(101).abs() < 1e-12);
        assert!(c.factor(500).abs() < 1e-12);
    }
}

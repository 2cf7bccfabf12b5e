//! What one optimizer step takes from the caller besides the gradients: its learning
//! rate (or a scale of the base rate, or the configured schedule), optional per-group
//! overrides, and optionally where the model wrote the step's loss.

use crate::error::{Error, Result};
use crate::optim::config::OptimizerConfig;
use crate::optim::schedule::LrSchedule;

/// Where the learning rate of the default group comes from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum LrSource {
    /// The optimizer's base rate times its configured schedule at this step.
    #[default]
    Schedule,
    /// This learning rate.
    Lr(f64),
    /// The optimizer's base rate times this factor.
    Scale(f64),
}

/// The step inputs of [`Optimizer::record_step`](crate::Optimizer::record_step).
///
/// Each group's learning rate is the step's rate times the group's `lr_scale`, unless
/// [`StepInputs::with_group_lr`] sets it outright.
///
/// ```
/// use coptim::optim::{LrSchedule, StepInputs};
/// let fixed = StepInputs::lr(3e-4);
/// let warm = StepInputs::from_schedule(&LrSchedule::Cosine { total: 100, floor: 0.0 }, 1e-3, 10);
/// let per_group = StepInputs::scale(0.5).with_group_lr(0, 1e-5);
/// # let _ = (fixed, warm, per_group);
/// ```
#[derive(Debug, Clone, Default)]
pub struct StepInputs<'a> {
    lr: LrSource,
    group_lrs: Vec<(usize, f64)>,
    loss: Option<(&'a wgpu::Buffer, u64)>,
}

impl StepInputs<'static> {
    /// The optimizer's base rate times its configured schedule (what
    /// [`Optimizer::step`](crate::Optimizer::step) uses).
    pub fn scheduled() -> Self {
        Self::default()
    }

    /// A learning rate for this step (the configured schedule is not applied).
    pub fn lr(lr: f64) -> Self {
        Self {
            lr: LrSource::Lr(lr),
            ..Self::default()
        }
    }

    /// The optimizer's base rate ([`Optimizer::learning_rate`](crate::Optimizer::learning_rate))
    /// times `factor` (the configured schedule is not applied).
    pub fn scale(factor: f64) -> Self {
        Self {
            lr: LrSource::Scale(factor),
            ..Self::default()
        }
    }

    /// `base_lr` times `schedule` at (1-based) `step`: any schedule, held by the caller.
    pub fn from_schedule(schedule: &LrSchedule, base_lr: f64, step: u64) -> Self {
        Self::lr(base_lr * schedule.factor(step))
    }
}

impl<'a> StepInputs<'a> {
    /// Sets group `g`'s learning rate outright (`g == groups.len()` is the default
    /// group, which holds every tensor no group claims).
    pub fn with_group_lr(mut self, g: usize, lr: f64) -> Self {
        self.group_lrs.retain(|(k, _)| *k != g);
        self.group_lrs.push((g, lr));
        self
    }

    /// Copies the f32 at byte `offset` of `buffer` (a model's loss; needs `COPY_SRC`)
    /// into this step's record ([`StepStats::loss`](crate::optim::StepStats::loss)).
    pub fn with_loss<'b>(self, buffer: &'b wgpu::Buffer, offset: u64) -> StepInputs<'b> {
        StepInputs {
            lr: self.lr,
            group_lrs: self.group_lrs,
            loss: Some((buffer, offset)),
        }
    }

    /// Where the step's loss is, if the caller named it.
    pub(crate) fn loss(&self) -> Option<(&'a wgpu::Buffer, u64)> {
        self.loss
    }

    /// The learning rate of every group (the default group last) at `scheduled`
    /// steps, for an optimizer whose base rate is `base_lr`. Fails on a negative or
    /// non-finite rate, an unknown group, or a loss offset that is not a multiple of 4.
    pub(crate) fn group_lrs(
        &self,
        config: &OptimizerConfig,
        base_lr: f64,
        scheduled: u64,
    ) -> Result<Vec<f64>> {
        let groups = config.groups.len() + 1;
        if let Some((g, _)) = self.group_lrs.iter().find(|(g, _)| *g >= groups) {
            return Err(Error::InvalidConfig(format!(
                "step inputs name group {g}, the optimizer has {groups} (the default group last)"
            )));
        }
        if let Some((buffer, offset)) = self.loss
            && (!offset.is_multiple_of(4) || offset + 4 > buffer.size())
        {
            return Err(Error::InvalidConfig(format!(
                "loss at byte {offset} of a {}-byte buffer: need 4 aligned bytes inside it",
                buffer.size()
            )));
        }
        let step_lr = match self.lr {
            LrSource::Schedule => base_lr * config.schedule.factor(scheduled),
            LrSource::Lr(lr) => lr,
            LrSource::Scale(f) => base_lr * f,
        };
        let lrs: Vec<f64> = (0..groups)
            .map(|g| match self.group_lrs.iter().find(|(k, _)| *k == g) {
                Some(&(_, lr)) => lr,
                None => step_lr * config.group_hyper(g).0,
            })
            .collect();
        if let Some(bad) = lrs.iter().find(|lr| !lr.is_finite() || **lr < 0.0) {
            return Err(Error::InvalidConfig(format!(
                "learning rate {bad} is not a finite non-negative number"
            )));
        }
        Ok(lrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::GroupConfig;

    fn config() -> OptimizerConfig {
        OptimizerConfig::adamw(1e-3)
            .with_schedule(LrSchedule::Cosine {
                total: 10,
                floor: 0.0,
            })
            .with_group(GroupConfig {
                name: "half".into(),
                tensors: vec!["b".into()],
                lr_scale: 0.5,
                weight_decay: 0.0,
            })
    }

    #[test]
    fn sources_resolve_per_group() {
        let cfg = config();
        let scheduled = StepInputs::scheduled().group_lrs(&cfg, 1e-3, 3).unwrap();
        let f = cfg.schedule.factor(3);
        assert_eq!(scheduled, vec![1e-3 * f * 0.5, 1e-3 * f]);
        assert_eq!(
            StepInputs::lr(0.1).group_lrs(&cfg, 1e-3, 3).unwrap(),
            vec![0.05, 0.1]
        );
        assert_eq!(
            StepInputs::scale(2.0).group_lrs(&cfg, 1e-3, 3).unwrap(),
            vec![1e-3, 2e-3]
        );
        let overridden = StepInputs::lr(0.1).with_group_lr(0, 7.0);
        assert_eq!(overridden.group_lrs(&cfg, 1e-3, 3).unwrap(), vec![7.0, 0.1]);
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let cfg = config();
        for bad in [
            StepInputs::lr(f64::NAN),
            StepInputs::lr(-1.0),
            StepInputs::scale(f64::INFINITY),
            StepInputs::lr(0.1).with_group_lr(2, 0.1),
        ] {
            assert!(matches!(
                bad.group_lrs(&cfg, 1e-3, 1),
                Err(Error::InvalidConfig(_))
            ));
        }
    }
}

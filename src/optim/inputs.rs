//! What one optimizer step takes from the caller besides the gradients: its learning
//! rate (or a scale of the base rate, or the configured schedule), optional per-group
//! overrides, and optionally where the model wrote the step's loss and other values
//! to read back with the step's record.

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
    values: Vec<(&'a wgpu::Buffer, u64)>,
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
    pub fn with_loss(mut self, buffer: &'a wgpu::Buffer, offset: u64) -> Self {
        self.loss = Some((buffer, offset));
        self
    }

    /// Also copies the 4 bytes at `offset` of `buffer` (needs `COPY_SRC`) into this
    /// step's record, after the values named before
    /// ([`StepStats::values`](crate::optim::StepStats::values)): the caller's own
    /// per-step numbers (a model's correct count, say) travel in the same readback.
    pub fn with_value(mut self, buffer: &'a wgpu::Buffer, offset: u64) -> Self {
        self.values.push((buffer, offset));
        self
    }

    /// Where the step's loss is, if the caller named it.
    pub(crate) fn loss(&self) -> Option<(&'a wgpu::Buffer, u64)> {
        self.loss
    }

    /// Where the step's other values are, in order.
    pub(crate) fn values(&self) -> &[(&'a wgpu::Buffer, u64)] {
        &self.values
    }

    /// The learning rate of every group (the default group last) at `scheduled`
    /// steps, for an optimizer whose base rate is `base_lr`. Fails on a negative or
    /// non-finite rate, an unknown group, or a loss or value that is not 4 aligned
    /// bytes inside a `COPY_SRC` buffer.
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
        self.check_values()?;
        let step_lr = self.step_lr(&config.schedule, base_lr, scheduled);
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

impl StepInputs<'_> {
    fn check_values(&self) -> Result<()> {
        for &(buffer, offset) in self.loss.iter().chain(&self.values) {
            check_value(buffer, offset)?;
        }
        Ok(())
    }

    /// The step's rate before any group's scale.
    fn step_lr(&self, schedule: &LrSchedule, base_lr: f64, scheduled: u64) -> f64 {
        match self.lr {
            LrSource::Schedule => base_lr * schedule.factor(scheduled),
            LrSource::Lr(lr) => lr,
            LrSource::Scale(f) => base_lr * f,
        }
    }

    /// The learning rate of an optimizer without parameter groups (Muon, Adafactor)
    /// whose base rate is `base_lr` and schedule `schedule`, at `scheduled` steps.
    /// Fails like [`StepInputs::group_lrs`] (group 0 is the only one).
    #[cfg(feature = "nn")]
    pub(crate) fn single_lr(
        &self,
        schedule: &LrSchedule,
        base_lr: f64,
        scheduled: u64,
    ) -> Result<f64> {
        if let Some((g, _)) = self.group_lrs.iter().find(|(g, _)| *g > 0) {
            return Err(Error::InvalidConfig(format!(
                "step inputs name group {g}; this optimizer has only the default group 0"
            )));
        }
        self.check_values()?;
        let lr = match self.group_lrs.first() {
            Some(&(_, lr)) => lr,
            None => self.step_lr(schedule, base_lr, scheduled),
        };
        if !lr.is_finite() || lr < 0.0 {
            return Err(Error::InvalidConfig(format!(
                "learning rate {lr} is not a finite non-negative number"
            )));
        }
        Ok(lr)
    }
}

/// Fails unless 4 aligned bytes at `offset` of `buffer` can be copied into a record.
fn check_value(buffer: &wgpu::Buffer, offset: u64) -> Result<()> {
    let size = buffer.size();
    if !offset.is_multiple_of(4) || offset.saturating_add(4) > size {
        return Err(Error::InvalidConfig(format!(
            "step value at byte {offset} of a {size}-byte buffer: need 4 aligned bytes inside it"
        )));
    }
    if !buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
        return Err(Error::InvalidConfig(format!(
            "a step value's buffer lacks COPY_SRC usage (it has {:?})",
            buffer.usage()
        )));
    }
    Ok(())
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

//! Optimizer configuration: the algorithm, caution, and per-group hyperparameters.
//!
//! Every variant that the reference implementations disagree on is an explicit
//! option here (see `CAUTIOUS_OPTIMIZERS.md`): the caution normalization, the eps
//! placement of AdamW, Nesterov momentum.

use serde::{Deserialize, Serialize};

use crate::arena::ElementType;
use crate::error::{Error, Result};
use crate::optim::algorithms::Algorithm;
use crate::optim::schedule::LrSchedule;
use crate::setters::setters;

/// How the kept coordinates are rescaled, per tensor, from the kept count k out of n
/// (for a soft mask, from the mask sum `k + factor * (n - k)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalization {
    /// `1 / max(mean(mask), min)`: timm for every optimizer, C-Optim's C-AdamW
    /// (`min` = 1e-3).
    MeanClamp {
        /// Lower clamp of the mask mean.
        min: f64,
    },
    /// `n / (sum(mask) + 1)`: C-Optim's C-Lion and C-Adafactor, pytorch_optimizer.
    NumelOverCountPlusOne,
    /// `1 / (mean(mask) + eps)`: the paper's Algorithm 1.
    MeanPlusEps {
        /// Added to the mask mean.
        eps: f64,
    },
}

impl Normalization {
    /// The timm / C-Optim C-AdamW default: `mean_clamp` with min 1e-3.
    pub fn mean_clamp() -> Self {
        Normalization::MeanClamp { min: 1e-3 }
    }

    /// The scale for a mask whose values sum to `mask_sum` over `n` coordinates.
    pub fn scale(&self, mask_sum: f64, n: f64) -> f64 {
        match *self {
            Normalization::MeanClamp { min } => 1.0 / (mask_sum / n).max(min),
            Normalization::NumelOverCountPlusOne => n / (mask_sum + 1.0),
            Normalization::MeanPlusEps { eps } => 1.0 / (mask_sum / n + eps),
        }
    }
}

/// Caution: which coordinates of the update are kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Caution {
    /// The plain optimizer.
    #[default]
    Off,
    /// Keep coordinates where `u * g > 0`, zero the rest, rescale.
    Hard {
        /// The rescaling rule.
        normalization: Normalization,
    },
    /// Keep agreeing coordinates, keep the rest at `factor` (in (0, 1)), rescale.
    Soft {
        /// Weight of disagreeing coordinates.
        factor: f64,
        /// The rescaling rule.
        normalization: Normalization,
    },
}

impl Caution {
    /// Hard mask with timm's `mean_clamp` (min 1e-3): the usual C-AdamW / C-Lion.
    pub fn hard() -> Self {
        Caution::Hard {
            normalization: Normalization::mean_clamp(),
        }
    }

    /// Whether a mask is applied.
    pub fn is_on(&self) -> bool {
        !matches!(self, Caution::Off)
    }

    /// Mask weight of a disagreeing coordinate (0 for a hard mask, 1 when off).
    pub fn disagree_weight(&self) -> f64 {
        match *self {
            Caution::Off => 1.0,
            Caution::Hard { .. } => 0.0,
            Caution::Soft { factor, .. } => factor,
        }
    }

    /// The normalization's kind (`NORM_*` of `shaders/lib/caution_scale.wgsl`) and
    /// parameter (`mean_clamp`'s min, `mean_plus_eps`'s eps) as the kernels take them;
    /// `(0, 0.0)` when off (the kernels then never scale).
    pub(crate) fn norm_words(&self) -> (u32, f64) {
        match *self {
            Caution::Off => (0, 0.0),
            Caution::Hard { normalization } | Caution::Soft { normalization, .. } => {
                match normalization {
                    Normalization::MeanClamp { min } => (0, min),
                    Normalization::NumelOverCountPlusOne => (1, 0.0),
                    Normalization::MeanPlusEps { eps } => (2, eps),
                }
            }
        }
    }

    /// The per-tensor scale for `kept` agreeing coordinates out of `n`.
    pub fn scale(&self, kept: u64, n: u64) -> f64 {
        match *self {
            Caution::Off => 1.0,
            Caution::Hard { normalization } => normalization.scale(kept as f64, n as f64),
            Caution::Soft {
                factor,
                normalization,
            } => normalization.scale(kept as f64 + factor * (n - kept) as f64, n as f64),
        }
    }

    fn validate(&self) -> Result<()> {
        let norm = match *self {
            Caution::Off => return Ok(()),
            Caution::Hard { normalization } => normalization,
            Caution::Soft {
                factor,
                normalization,
            } => {
                if !(positive(factor) && factor < 1.0) {
                    return Err(Error::InvalidConfig(format!(
                        "soft caution factor {factor} is not in (0, 1)"
                    )));
                }
                normalization
            }
        };
        match norm {
            Normalization::MeanClamp { min } if !(positive(min) && min <= 1.0) => Err(
                Error::InvalidConfig(format!("mean_clamp min {min} is not in (0, 1]")),
            ),
            Normalization::MeanPlusEps { eps } if !positive(eps) => Err(Error::InvalidConfig(
                format!("normalization eps {eps} must be positive"),
            )),
            _ => Ok(()),
        }
    }
}

/// How weight decay is applied, beside the update mask (both off: timm's and torch's
/// decoupled decay `p *= 1 - lr * wd` on every coordinate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DecayMode {
    /// Cautious weight decay (arXiv 2510.12402; pytorch_optimizer's
    /// `apply_cautious_weight_decay`): decay only coordinates where the update
    /// direction, before any caution mask, and the parameter agree in sign
    /// (`u * p >= 0`), with no rescale.
    #[serde(default)]
    pub cautious: bool,
    /// timm's corrected decay (`corrected_weight_decay=True`): the decay is
    /// `lr^2 / max_lr * wd` instead of `lr * wd`, `max_lr` being the configured base
    /// rate [`OptimizerConfig::lr`] (timm's constructor-lr snapshot).
    #[serde(default)]
    pub corrected: bool,
}

impl DecayMode {
    /// Cautious decay at the plain rate `lr * wd`.
    pub const CAUTIOUS: DecayMode = DecayMode {
        cautious: true,
        corrected: false,
    };

    /// timm's corrected decay on every coordinate.
    pub const CORRECTED: DecayMode = DecayMode {
        cautious: false,
        corrected: true,
    };

    /// The factor that multiplies `wd` in the decay of a step with learning rate `lr`
    /// under base rate `max_lr`: `lr`, or `lr^2 / max_lr` when corrected.
    pub fn lr_factor(&self, lr: f64, max_lr: f64) -> f64 {
        if self.corrected { lr * lr / max_lr } else { lr }
    }

    /// The weight decay that, multiplied by `lr`, gives this mode's decay rate
    /// (`wd * lr / max_lr` when corrected, `wd` otherwise; no division by `lr`).
    pub fn weight_decay_for_lr(&self, wd: f64, lr: f64, max_lr: f64) -> f64 {
        if self.corrected { wd * lr / max_lr } else { wd }
    }
}

/// What to do when a gradient holds NaN or infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NonFinite {
    /// Check every gradient on the GPU; if any is non-finite, skip the whole step
    /// (parameters, state and step count untouched) and report it (the default).
    #[default]
    SkipStep,
    /// Do not check (saves one read of the gradients for plain optimizers).
    Ignore,
}

/// Hyperparameters that may differ between parameter groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConfig {
    /// Group name, e.g. `decay` or `no_decay`.
    pub name: String,
    /// Names of the tensors in the group.
    pub tensors: Vec<String>,
    /// Multiplies the scheduled learning rate.
    pub lr_scale: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// A complete optimizer configuration.
///
/// ```
/// use coptim::optim::{Caution, OptimizerConfig};
/// let cfg = OptimizerConfig::adamw(1e-3).with_caution(Caution::hard()).with_weight_decay(0.01);
/// assert_eq!(cfg.algorithm.name(), "adamw");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// The algorithm and its hyperparameters.
    pub algorithm: Algorithm,
    /// Caution mode.
    pub caution: Caution,
    /// Base learning rate (the schedule multiplies it).
    pub lr: f64,
    /// Default decoupled weight decay for tensors not in any group.
    pub weight_decay: f64,
    /// Which coordinates weight decay reaches and how it scales with the learning rate.
    #[serde(default)]
    pub decay: DecayMode,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Clip the global gradient norm to this value before the step.
    pub clip_grad_norm: Option<f64>,
    /// Non-finite gradient handling.
    pub non_finite: NonFinite,
    /// Parameter groups; tensors in no group use `weight_decay` and `lr_scale` 1.
    pub groups: Vec<GroupConfig>,
    /// Storage type of the optimizer state (moments).
    pub state_dtype: ElementType,
}

impl OptimizerConfig {
    /// A configuration with `algorithm`, learning rate `lr`, no weight decay, no
    /// caution, a constant schedule and no clipping.
    pub fn new(algorithm: Algorithm, lr: f64) -> Self {
        Self {
            algorithm,
            caution: Caution::Off,
            lr,
            weight_decay: 0.0,
            decay: DecayMode::default(),
            schedule: LrSchedule::Constant,
            clip_grad_norm: None,
            non_finite: NonFinite::SkipStep,
            groups: Vec::new(),
            state_dtype: ElementType::F32,
        }
    }

    /// AdamW with torch defaults.
    pub fn adamw(lr: f64) -> Self {
        Self::new(Algorithm::adamw(), lr)
    }

    /// Lion with timm defaults.
    pub fn lion(lr: f64) -> Self {
        Self::new(Algorithm::lion(), lr)
    }

    /// SGD with momentum 0.9.
    pub fn sgd(lr: f64, nesterov: bool) -> Self {
        Self::new(Algorithm::sgd(nesterov), lr)
    }

    setters! {
        /// Sets the caution mode.
        with_caution(caution: Caution);
        /// Sets the default weight decay.
        with_weight_decay(weight_decay: f64);
        /// Sets how weight decay is applied (cautious, corrected).
        with_decay(decay: DecayMode);
        /// Sets the learning-rate schedule.
        with_schedule(schedule: LrSchedule);
        /// Sets the state storage type.
        with_state_dtype(state_dtype: ElementType);
    }

    /// Clips the global gradient norm.
    pub fn with_clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip_grad_norm = Some(max_norm);
        self
    }

    /// Adds a parameter group.
    pub fn with_group(mut self, group: GroupConfig) -> Self {
        self.groups.push(group);
        self
    }

    /// Checks every value is in range.
    pub fn validate(&self) -> Result<()> {
        let wd_ok = |x: f64| x >= 0.0 && x.is_finite();
        self.algorithm.validate()?;
        self.caution.validate()?;
        self.schedule.validate()?;
        if !wd_ok(self.lr) {
            return Err(Error::InvalidConfig(format!(
                "lr = {} must be finite and >= 0",
                self.lr
            )));
        }
        if !wd_ok(self.weight_decay) {
            return Err(Error::InvalidConfig(format!(
                "weight_decay = {} must be finite and >= 0",
                self.weight_decay
            )));
        }
        if let Algorithm::Lamb(lamb) = self.algorithm
            && self.decay.corrected
            && !lamb.decoupled
        {
            return Err(Error::InvalidConfig(
                "corrected weight decay needs decoupled decay for LAMB (timm `lambw`)".into(),
            ));
        }
        if self.decay.cautious && self.algorithm.coupled_decay() {
            return Err(Error::InvalidConfig(format!(
                "cautious weight decay needs decoupled decay; `{}` adds weight decay to the \
                 gradient (timm `adoptw` decouples it)",
                self.algorithm.name()
            )));
        }
        if self.caution.is_on() && !self.algorithm.rules().caution_applies() {
            return Err(Error::InvalidConfig(format!(
                "caution has nothing to mask in `{}` with this configuration \
                 (RMSpropTF masks its momentum buffer: set momentum > 0)",
                self.algorithm.name()
            )));
        }
        if self.decay.corrected && !positive(self.lr) {
            return Err(Error::InvalidConfig(format!(
                "corrected weight decay needs a positive base lr (the max lr), got {}",
                self.lr
            )));
        }
        if let Some(c) = self.clip_grad_norm
            && !positive(c)
        {
            return Err(Error::InvalidConfig(format!(
                "clip_grad_norm = {c} must be positive"
            )));
        }
        for g in &self.groups {
            if !(wd_ok(g.weight_decay) && wd_ok(g.lr_scale)) {
                return Err(Error::InvalidConfig(format!(
                    "group `{}` has an invalid lr_scale or weight_decay",
                    g.name
                )));
            }
        }
        Ok(())
    }
}

impl OptimizerConfig {
    /// For each tensor name, the index of its group in `self.groups`, or
    /// `self.groups.len()` for the implicit default group. Unknown names and tensors
    /// listed in two groups are errors.
    pub fn group_of_tensors<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<usize>> {
        let default = self.groups.len();
        let mut out = vec![default; names.len()];
        let position: std::collections::HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_ref(), i))
            .collect();
        for (g, group) in self.groups.iter().enumerate() {
            for t in &group.tensors {
                let &i = position
                    .get(t.as_str())
                    .ok_or_else(|| Error::UnknownTensor(t.clone()))?;
                if out[i] != default {
                    return Err(Error::InvalidConfig(format!(
                        "tensor `{t}` is in groups `{}` and `{}`",
                        self.groups[out[i]].name, group.name
                    )));
                }
                out[i] = g;
            }
        }
        Ok(out)
    }

    /// (lr_scale, weight_decay) of group `g`, where `g == groups.len()` is the default.
    pub fn group_hyper(&self, g: usize) -> (f64, f64) {
        self.groups
            .get(g)
            .map(|grp| (grp.lr_scale, grp.weight_decay))
            .unwrap_or((1.0, self.weight_decay))
    }
}

/// `x` is a positive finite number (false for NaN).
fn positive(x: f64) -> bool {
    x > 0.0 && x.is_finite()
}

//! The CPU reference: every optimizer and caution mode in f64, written to read like
//! `CAUTIOUS_OPTIMIZERS.md`. The GPU kernels are tested against it.

use crate::error::{Error, Result};
use crate::optim::algorithms::{Decay, Direction, RefStep};
use crate::optim::config::{Caution, NonFinite, OptimizerConfig};

/// What one reference step did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceStep {
    /// The step was skipped because a gradient was not finite.
    pub skipped: bool,
    /// Kept (agreeing) coordinates per tensor; `n` when caution is off.
    pub kept: Vec<u64>,
    /// Coordinates per tensor whose direction is so close to zero (relative to its
    /// inputs) that f32 rounding may flip its sign: counts may differ by this much.
    pub ambiguous: Vec<u64>,
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f64,
}

/// An f64 optimizer over plain vectors, one per tensor.
#[derive(Debug, Clone)]
pub struct ReferenceOptimizer {
    config: OptimizerConfig,
    groups: Vec<usize>,
    /// Each tensor's number of dimensions.
    ranks: Vec<usize>,
    /// Each tensor's segment length (0: none; see `Algorithm::segment_len`).
    seg_lens: Vec<usize>,
    /// State tensors: `state[k][i]` is state `k` (e.g. exp_avg, exp_avg_sq) of tensor `i`.
    pub state: Vec<Vec<Vec<f64>>>,
    /// Completed (not skipped) steps.
    pub step: u64,
    /// Scheduled steps (skipped ones included): drives the learning-rate schedule.
    pub scheduled: u64,
    /// Per group (the default group last), the learning rate of each completed step.
    lr_history: Vec<Vec<f64>>,
}

/// Relative size under which an f32 computation may get the sign of a direction wrong.
pub(crate) const AMBIGUOUS_REL: f64 = 8.0 * f32::EPSILON as f64;

impl ReferenceOptimizer {
    /// A reference optimizer for 1-D tensors with these names and lengths.
    pub fn new<S: AsRef<str>>(config: OptimizerConfig, tensors: &[(S, usize)]) -> Result<Self> {
        let shapes: Vec<(&str, Vec<usize>)> = tensors
            .iter()
            .map(|(s, n)| (s.as_ref(), vec![*n]))
            .collect();
        Self::with_shapes(config, &shapes)
    }

    /// A reference optimizer for tensors with these names and shapes (MARS steps 1-D
    /// tensors differently; AdamP's segments are rows).
    pub fn with_shapes<S: AsRef<str>>(
        config: OptimizerConfig,
        tensors: &[(S, Vec<usize>)],
    ) -> Result<Self> {
        config.validate()?;
        let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_ref()).collect();
        let groups = config.group_of_tensors(&names)?;
        let nstate = config.algorithm.state_names().len();
        let numel = |shape: &[usize]| shape.iter().product::<usize>();
        let state = (0..nstate)
            .map(|_| tensors.iter().map(|(_, s)| vec![0.0; numel(s)]).collect())
            .collect();
        let seg_lens = tensors
            .iter()
            .map(|(_, s)| config.algorithm.segment_len(s) as usize)
            .collect();
        let lr_history = vec![Vec::new(); config.groups.len() + 1];
        Ok(Self {
            config,
            groups,
            ranks: tensors.iter().map(|(_, s)| s.len()).collect(),
            seg_lens,
            state,
            step: 0,
            scheduled: 0,
            lr_history,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// One step: updates `params` in place from `grads`.
    pub fn step(&mut self, params: &mut [Vec<f64>], grads: &[Vec<f64>]) -> Result<ReferenceStep> {
        if params.len() != self.groups.len() || grads.len() != self.groups.len() {
            return Err(Error::LengthMismatch {
                what: "reference tensors".into(),
                expected: self.groups.len() as u64,
                got: params.len().min(grads.len()) as u64,
            });
        }
        self.scheduled += 1;
        let cfg = &self.config;
        let sumsq: f64 = grads.iter().flatten().map(|g| g * g).sum();
        let grad_norm = sumsq.sqrt();
        let n = params.len();
        if cfg.non_finite == NonFinite::SkipStep && grads.iter().flatten().any(|g| !g.is_finite()) {
            return Ok(ReferenceStep {
                skipped: true,
                kept: vec![0; n],
                ambiguous: vec![0; n],
                grad_norm,
            });
        }
        let mut clip = match cfg.clip_grad_norm {
            Some(max) => (max / (grad_norm + 1e-6)).min(1.0),
            None => 1.0,
        };
        if let Some(max) = cfg.algorithm.rules().max_grad_norm() {
            clip /= (grad_norm * clip / max).max(1.0);
        }
        self.step += 1;
        let t = self.step as i32;
        let lr_base = cfg.lr * cfg.schedule.factor(self.scheduled);
        for (g, history) in self.lr_history.iter_mut().enumerate() {
            history.push(lr_base * cfg.group_hyper(g).0);
        }
        let mut kept = Vec::with_capacity(n);
        let mut ambiguous = Vec::with_capacity(n);
        for (i, (p, g_raw)) in params.iter_mut().zip(grads).enumerate() {
            let (lr_scale, wd) = cfg.group_hyper(self.groups[i]);
            let lr = lr_base * lr_scale;
            let coupled = if cfg.algorithm.coupled_decay() {
                wd
            } else {
                0.0
            };
            let g: Vec<f64> = g_raw
                .iter()
                .zip(p.iter())
                .map(|(g, p)| g * clip + coupled * p)
                .collect();
            let lrs = &self.lr_history[self.groups[i]];
            let x = TensorStep {
                p,
                state: self.state.iter_mut().map(|s| &mut s[i]).collect(),
                step: RefStep {
                    t,
                    lrs,
                    g: &g,
                    rank: self.ranks[i],
                },
                wd,
                decay: DecayRate {
                    rate: cfg.decay.lr_factor(lr, cfg.lr) * wd,
                    cautious: cfg.decay.cautious,
                },
                caution: cfg.caution,
                seg_len: self.seg_lens[i],
            };
            let (k, amb) = cfg.algorithm.rules().reference_step(x);
            kept.push(k);
            ambiguous.push(amb);
        }
        Ok(ReferenceStep {
            skipped: false,
            kept,
            ambiguous,
            grad_norm,
        })
    }
}

/// One tensor of a reference step.
pub(crate) struct TensorStep<'a> {
    /// Parameters, updated in place.
    pub p: &'a mut [f64],
    /// The tensor's state, in the order of the algorithm's state names.
    pub state: Vec<&'a mut Vec<f64>>,
    /// The step number, learning rates and clipped gradient.
    pub step: RefStep<'a>,
    /// The group's weight decay as configured (coupled decay adds `wd * p`).
    pub wd: f64,
    /// The decoupled decay of this step.
    pub decay: DecayRate,
    /// The caution mode.
    pub caution: Caution,
    /// Elements per segment of the tensor (0: none).
    pub seg_len: usize,
}

/// The decoupled weight decay of one tensor at one step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecayRate {
    /// `lr * wd` (`lr^2 / max_lr * wd` when corrected).
    pub rate: f64,
    /// Decay only where the unmasked direction and the parameter agree in sign.
    pub cautious: bool,
}

impl DecayRate {
    /// Whether the decay reaches a coordinate whose unmasked direction is `u`.
    pub fn reaches(&self, p: f64, u: f64) -> bool {
        !self.cautious || u * p >= 0.0
    }

    /// `p` decayed, where `u` is the unmasked update direction of that coordinate.
    pub fn apply(&self, p: f64, u: f64) -> f64 {
        if self.reaches(p, u) {
            p * (1.0 - self.rate)
        } else {
            p
        }
    }
}

/// The caution mask of one tensor: each coordinate's factor (its mask weight times
/// the tensor's scale; 1 when caution is off) and the counts.
pub(crate) struct Mask {
    /// Per-coordinate multiplier of the update.
    pub factors: Vec<f64>,
    /// (kept, ambiguous) coordinates: `(n, 0)` when caution is off.
    pub counts: (u64, u64),
}

impl Mask {
    /// The mask of direction `dir` against gradient `g`.
    pub fn new(caution: Caution, g: &[f64], dir: &Direction) -> Self {
        let n = g.len();
        if !caution.is_on() {
            return Self {
                factors: vec![1.0; n],
                counts: (n as u64, 0),
            };
        }
        let agree: Vec<bool> = (0..n).map(|j| dir.sign_src[j] * g[j] > 0.0).collect();
        let k = agree.iter().filter(|&&a| a).count() as u64;
        let amb = (0..n)
            .filter(|&j| dir.sign_src[j].abs() <= AMBIGUOUS_REL * dir.sign_mag[j] && g[j] != 0.0)
            .count() as u64;
        let scale = caution.scale(k, n as u64);
        let w = caution.disagree_weight();
        Self {
            factors: agree
                .iter()
                .map(|&a| if a { scale } else { w * scale })
                .collect(),
            counts: (k, amb),
        }
    }
}

/// The element-wise step: decoupled (possibly cautious) weight decay, before or after
/// the step as `place` says (the cautious test always sees the pre-step parameter; none
/// when the decay is in the gradient), and the masked direction. Returns (kept, ambiguous) coordinate counts.
pub(crate) fn apply_masked_update(x: TensorStep<'_>, dir: &Direction, place: Decay) -> (u64, u64) {
    let mask = Mask::new(x.caution, x.step.g, dir);
    apply_factors(x, &dir.delta, &mask.factors, place);
    mask.counts
}

/// `p -= delta * factors` with decoupled (possibly cautious, judged on the unmasked
/// `delta`) weight decay before or after it, as `place` says.
pub(crate) fn apply_factors(x: TensorStep<'_>, delta: &[f64], factors: &[f64], place: Decay) {
    for j in 0..delta.len() {
        let step = delta[j] * factors[j];
        x.p[j] = match place {
            Decay::BeforeStep => x.decay.apply(x.p[j], delta[j]) - step,
            Decay::AfterStep if x.decay.reaches(x.p[j], delta[j]) => {
                (x.p[j] - step) * (1.0 - x.decay.rate)
            }
            Decay::AfterStep | Decay::InGradient => x.p[j] - step,
        };
    }
}

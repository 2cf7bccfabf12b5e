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
const AMBIGUOUS_REL: f64 = 8.0 * f32::EPSILON as f64;

impl ReferenceOptimizer {
    /// A reference optimizer for tensors with these names and lengths.
    pub fn new<S: AsRef<str>>(config: OptimizerConfig, tensors: &[(S, usize)]) -> Result<Self> {
        config.validate()?;
        let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_ref()).collect();
        let groups = config.group_of_tensors(&names)?;
        let nstate = config.algorithm.state_names().len();
        let state = (0..nstate)
            .map(|_| tensors.iter().map(|&(_, n)| vec![0.0; n]).collect())
            .collect();
        let lr_history = vec![Vec::new(); config.groups.len() + 1];
        Ok(Self {
            config,
            groups,
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
        let clip = match cfg.clip_grad_norm {
            Some(max) => (max / (grad_norm + 1e-6)).min(1.0),
            None => 1.0,
        };
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
            let g: Vec<f64> = g_raw.iter().map(|g| g * clip).collect();
            let mut state: Vec<&mut Vec<f64>> = self.state.iter_mut().map(|s| &mut s[i]).collect();
            let rules = cfg.algorithm.rules();
            let lrs = &self.lr_history[self.groups[i]];
            let dir = rules.reference_direction(&mut state, &g, &RefStep { t, lrs });
            let decay = (rules.decay(), 1.0 - lr_base * lr_scale * wd);
            let (k, amb) = apply_masked_update(cfg.caution, p, &g, &dir, decay);
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

/// Applies decoupled weight decay (the factor `decay.1`, before or after the step) and
/// the (cautiously masked) step to `p`.
/// Returns (kept, ambiguous) coordinate counts: `(n, 0)` when caution is off.
fn apply_masked_update(
    caution: Caution,
    p: &mut [f64],
    g: &[f64],
    dir: &Direction,
    decay: (Decay, f64),
) -> (u64, u64) {
    let agree: Vec<bool> = (0..g.len()).map(|j| dir.sign_src[j] * g[j] > 0.0).collect();
    let k = agree.iter().filter(|&&a| a).count() as u64;
    let amb = (0..g.len())
        .filter(|&j| dir.sign_src[j].abs() <= AMBIGUOUS_REL * dir.sign_mag[j] && g[j] != 0.0)
        .count() as u64;
    let scale = caution.scale(k, g.len() as u64);
    let w = caution.disagree_weight();
    for j in 0..g.len() {
        let phi = if !caution.is_on() || agree[j] { 1.0 } else { w };
        let mult = if caution.is_on() { phi * scale } else { 1.0 };
        p[j] = match decay {
            (Decay::BeforeStep, f) => p[j] * f - dir.delta[j] * mult,
            (Decay::AfterStep, f) => (p[j] - dir.delta[j] * mult) * f,
        };
    }
    if caution.is_on() {
        (k, amb)
    } else {
        (g.len() as u64, 0)
    }
}

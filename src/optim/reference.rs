//! The CPU reference: every optimizer and caution mode in f64, written to read like
//! `CAUTIOUS_OPTIMIZERS.md`. The GPU kernels are tested against it.

use crate::error::{Error, Result};
use crate::optim::config::{Algorithm, Caution, EpsStyle, NonFinite, OptimizerConfig};
use crate::optim::reference_lamb::{Lamb, LambTensor};

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
}

/// Relative size under which an f32 computation may get the sign of a direction wrong.
pub(crate) const AMBIGUOUS_REL: f64 = 8.0 * f32::EPSILON as f64;

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
        Ok(Self {
            config,
            groups,
            state,
            step: 0,
            scheduled: 0,
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
        if let Algorithm::Lamb { options, .. } = cfg.algorithm
            && let Some(max) = options.max_grad_norm
        {
            clip /= (grad_norm * clip / max).max(1.0);
        }
        self.step += 1;
        let lr_base = cfg.lr * cfg.schedule.factor(self.scheduled);
        let mut kept = Vec::with_capacity(n);
        let mut ambiguous = Vec::with_capacity(n);
        for (i, (p, g_raw)) in params.iter_mut().zip(grads).enumerate() {
            let g: Vec<f64> = g_raw.iter().map(|g| g * clip).collect();
            let (k, amb) = self.step_tensor(i, p, &g, lr_base);
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

impl ReferenceOptimizer {
    /// Steps tensor `i` with its clipped gradient `g` at base rate `lr_base`; returns
    /// (kept, ambiguous) coordinate counts.
    fn step_tensor(&mut self, i: usize, p: &mut [f64], g: &[f64], lr_base: f64) -> (u64, u64) {
        let cfg = &self.config;
        let t = self.step as i32;
        let (lr_scale, wd) = cfg.group_hyper(self.groups[i]);
        let lr = lr_base * lr_scale;
        let decay = Decay {
            rate: cfg.decay.lr_factor(lr, cfg.lr) * wd,
            cautious: cfg.decay.cautious,
        };
        if let Algorithm::Lamb {
            beta1,
            beta2,
            eps,
            options,
        } = cfg.algorithm
        {
            let (m, v) = two_mut(&mut self.state, i);
            let lamb = Lamb {
                betas: (beta1, beta2),
                eps,
                options,
                caution: cfg.caution,
            };
            return lamb.step(LambTensor { p, m, v, g }, t, lr, wd, decay);
        }
        let dir = direction(&cfg.algorithm, &mut self.state, i, g, t);
        let counts = apply_masked_update(cfg.caution, p, g, &dir, lr, decay);
        if let Algorithm::Lion { beta2, .. } = cfg.algorithm {
            let m = &mut self.state[0][i];
            for j in 0..g.len() {
                m[j] = beta2 * m[j] + (1.0 - beta2) * g[j];
            }
        }
        counts
    }
}

/// The direction of tensor `i` at step `t` from its clipped gradient `g`, with
/// the state updates that happen before the step.
fn direction(
    algorithm: &Algorithm,
    state: &mut [Vec<Vec<f64>>],
    i: usize,
    g: &[f64],
    t: i32,
) -> Direction {
    match *algorithm {
        Algorithm::AdamW {
            beta1,
            beta2,
            eps,
            eps_style,
        } => {
            let (m, v) = two_mut(state, i);
            adamw_direction(m, v, g, (beta1, beta2), eps, eps_style, t)
        }
        Algorithm::Lion { beta1, .. } => lion_direction(&state[0][i], g, beta1),
        Algorithm::Sgd { momentum, nesterov } => {
            sgd_direction(&mut state[0][i], g, momentum, nesterov, t == 1)
        }
        Algorithm::Lamb { .. } => unreachable!("LAMB steps through reference_lamb (step_tensor)"),
    }
}

/// A direction before masking, with the quantity whose sign decides agreement.
struct Direction {
    /// The update direction `u` (the step is `-lr * u`, before caution).
    u: Vec<f64>,
    /// The quantity whose sign is compared with the gradient's.
    sign_src: Vec<f64>,
    /// The size of the terms summed into `sign_src` (for the ambiguity bound).
    sign_mag: Vec<f64>,
}

/// AdamW: updates the moments `m` and `v` and returns the bias-corrected direction.
fn adamw_direction(
    m: &mut [f64],
    v: &mut [f64],
    g: &[f64],
    (beta1, beta2): (f64, f64),
    eps: f64,
    eps_style: EpsStyle,
    t: i32,
) -> Direction {
    let bc1 = 1.0 - beta1.powi(t);
    let bc2 = 1.0 - beta2.powi(t);
    let mut u = Vec::with_capacity(g.len());
    let mut mag = Vec::with_capacity(g.len());
    for j in 0..g.len() {
        mag.push((beta1 * m[j]).abs() + ((1.0 - beta1) * g[j]).abs());
        m[j] = beta1 * m[j] + (1.0 - beta1) * g[j];
        v[j] = beta2 * v[j] + (1.0 - beta2) * g[j] * g[j];
        let (den, step) = match eps_style {
            EpsStyle::Torch => (v[j].sqrt() / bc2.sqrt() + eps, 1.0 / bc1),
            EpsStyle::Hf => (v[j].sqrt() + eps, bc2.sqrt() / bc1),
        };
        u.push(step * m[j] / den);
    }
    Direction {
        u,
        sign_src: m.to_vec(),
        sign_mag: mag,
    }
}

/// Lion: the sign of the interpolation of `m` and `g` (the state update comes
/// after the step).
fn lion_direction(m: &[f64], g: &[f64], beta1: f64) -> Direction {
    let raw: Vec<f64> = (0..g.len())
        .map(|j| beta1 * m[j] + (1.0 - beta1) * g[j])
        .collect();
    let mag = (0..g.len())
        .map(|j| (beta1 * m[j]).abs() + ((1.0 - beta1) * g[j]).abs())
        .collect();
    Direction {
        u: raw.iter().map(|&x| sign(x)).collect(),
        sign_src: raw,
        sign_mag: mag,
    }
}

/// SGD with momentum: updates the buffer `buf` (set to `g` on the `first` step)
/// and returns the plain or Nesterov direction.
fn sgd_direction(
    buf: &mut [f64],
    g: &[f64],
    momentum: f64,
    nesterov: bool,
    first: bool,
) -> Direction {
    let mut mag = Vec::with_capacity(g.len());
    for j in 0..g.len() {
        if first {
            buf[j] = g[j];
            mag.push(g[j].abs());
        } else {
            mag.push((momentum * buf[j]).abs() + g[j].abs());
            buf[j] = momentum * buf[j] + g[j];
        }
    }
    let u: Vec<f64> = if nesterov {
        (0..g.len()).map(|j| g[j] + momentum * buf[j]).collect()
    } else {
        buf.to_vec()
    };
    let mag = if nesterov {
        (0..g.len())
            .map(|j| g[j].abs() + momentum * (buf[j].abs() + mag[j]))
            .collect()
    } else {
        mag
    };
    Direction {
        u: u.clone(),
        sign_src: u,
        sign_mag: mag,
    }
}

/// The decoupled weight decay of one tensor at one step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decay {
    /// `lr * wd` (`lr^2 / max_lr * wd` when corrected).
    pub rate: f64,
    /// Decay only where the unmasked direction and the parameter agree in sign.
    pub cautious: bool,
}

impl Decay {
    /// `p` decayed, where `u` is the unmasked update direction of that coordinate.
    pub fn apply(&self, p: f64, u: f64) -> f64 {
        if self.cautious && u * p < 0.0 {
            p
        } else {
            p * (1.0 - self.rate)
        }
    }
}

/// Applies decoupled weight decay and the (cautiously masked) step to `p`.
/// Returns (kept, ambiguous) coordinate counts: `(n, 0)` when caution is off.
fn apply_masked_update(
    caution: Caution,
    p: &mut [f64],
    g: &[f64],
    dir: &Direction,
    lr: f64,
    decay: Decay,
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
        p[j] = decay.apply(p[j], dir.u[j]) - lr * dir.u[j] * mult;
    }
    if caution.is_on() {
        (k, amb)
    } else {
        (g.len() as u64, 0)
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Mutable access to state 0 and state 1 of tensor `i`.
pub(crate) fn two_mut(state: &mut [Vec<Vec<f64>>], i: usize) -> (&mut Vec<f64>, &mut Vec<f64>) {
    let (a, b) = state.split_at_mut(1);
    (&mut a[0][i], &mut b[0][i])
}

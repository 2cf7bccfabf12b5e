//! LAMB's f64 reference, read from timm/optim/lamb.py:337-371 (single-tensor path):
//! the Adam update, the caution mask on it before weight decay, coupled or decoupled
//! decay, then the trust ratio `||p|| / ||update||` on the masked update.

use crate::optim::config::{Caution, LambOptions};
use crate::optim::reference::{AMBIGUOUS_REL, Decay};

/// One LAMB tensor: parameters, moments and this step's (clipped) gradient.
pub(crate) struct LambTensor<'a> {
    pub p: &'a mut [f64],
    pub m: &'a mut [f64],
    pub v: &'a mut [f64],
    pub g: &'a [f64],
}

/// LAMB's hyperparameters and caution.
pub(crate) struct Lamb {
    pub betas: (f64, f64),
    pub eps: f64,
    pub options: LambOptions,
    pub caution: Caution,
}

impl Lamb {
    /// One step of a tensor at step `t` with learning rate `lr`, raw weight decay `wd`
    /// (coupled decay adds `wd * p`) and the decoupled `decay`; returns (kept,
    /// ambiguous) coordinate counts (`(n, 0)` without caution).
    pub fn step(&self, x: LambTensor<'_>, t: i32, lr: f64, wd: f64, decay: Decay) -> (u64, u64) {
        let (beta1, beta2) = self.betas;
        let o = self.options;
        let beta3 = if o.grad_averaging { 1.0 - beta1 } else { 1.0 };
        let (bc1, bc2) = if o.bias_correction {
            (1.0 - beta1.powi(t), 1.0 - beta2.powi(t))
        } else {
            (1.0, 1.0)
        };
        let n = x.g.len();
        let mut ambiguous = 0;
        let mut u = Vec::with_capacity(n);
        for j in 0..n {
            let mag = (beta1 * x.m[j]).abs() + (beta3 * x.g[j]).abs();
            x.m[j] = beta1 * x.m[j] + beta3 * x.g[j];
            x.v[j] = beta2 * x.v[j] + (1.0 - beta2) * x.g[j] * x.g[j];
            if x.m[j].abs() <= AMBIGUOUS_REL * mag && x.g[j] != 0.0 {
                ambiguous += 1;
            }
            u.push((x.m[j] / bc1) / (x.v[j].sqrt() / bc2.sqrt() + self.eps));
        }
        let agree: Vec<bool> = (0..n).map(|j| u[j] * x.g[j] > 0.0).collect();
        let kept = agree.iter().filter(|&&a| a).count() as u64;
        let scale = self.caution.scale(kept, n as u64);
        let weight = self.caution.disagree_weight();
        let mut update: Vec<f64> = (0..n)
            .map(|j| match (self.caution.is_on(), agree[j]) {
                (false, _) => u[j],
                (true, true) => u[j] * scale,
                (true, false) => u[j] * weight * scale,
            })
            .collect();
        for j in 0..n {
            let reaches = !decay.cautious || u[j] * x.p[j] >= 0.0;
            if o.decoupled {
                x.p[j] = decay.apply(x.p[j], u[j]);
            } else if reaches {
                update[j] += wd * x.p[j];
            }
        }
        let ratio = if wd != 0.0 || o.always_adapt {
            trust_ratio(norm(x.p), norm(&update), o.trust_clip)
        } else {
            1.0
        };
        for (p, u) in x.p.iter_mut().zip(&update) {
            *p -= lr * ratio * u;
        }
        match self.caution.is_on() {
            true => (kept, ambiguous),
            false => (n as u64, 0),
        }
    }
}

/// `w_norm / u_norm`, 1 if either is 0 (timm's `_lamb_trust_ratio`), at most 1 with
/// `clip`.
fn trust_ratio(w_norm: f64, u_norm: f64, clip: bool) -> f64 {
    let r = if w_norm > 0.0 && u_norm > 0.0 {
        w_norm / u_norm
    } else {
        1.0
    };
    if clip { r.min(1.0) } else { r }
}

fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

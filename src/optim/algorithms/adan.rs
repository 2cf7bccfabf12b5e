//! Adan and C-Adan (timm `adan`/`cadan`, `adanw`/`cadanw`; timm/optim/adan.py):
//! hyperparameters, f64 reference, WGSL hooks (`shaders/adan.wgsl`) and timm names.
//!
//! Three moments: of the gradient `g`, of the gradient difference `g - g_prev`, and of
//! the square of the corrected gradient `g + beta2 * (g - g_prev)`; the previous
//! gradient is state (as timm's `neg_pre_grad = -g_prev`). At step 1 the previous
//! gradient is the gradient itself (timm/optim/adan.py:159-160), so the difference is
//! 0. Caution masks only the first-moment term; the difference term is never masked
//! (adan.py:238-247). Weight decay is proximal, `p /= 1 + lr * wd` after the step
//! (`no_prox=False`, timm `adan`), or decoupled, `p *= 1 - lr * wd` before it
//! (`no_prox=True`, timm `adanw`; adan.py:244-251).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Algorithm, Direction, GroupHyper, HOOK_NEEDS, HOOKS, Member, RefStep, Rules};
use crate::error::{Error, Result};
use crate::optim::config::Caution;
use crate::optim::reference::{Mask, TensorStep};
use crate::optim::timm::{CAUTION, TimmArgs, TimmDefault, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// Adan's hyperparameters, as timm's `Adan` names them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adan {
    /// First-moment decay (of `g`).
    pub beta1: f64,
    /// Decay of the gradient-difference moment; also the Nesterov factor of the
    /// corrected gradient `g + beta2 * (g - g_prev)`.
    pub beta2: f64,
    /// Decay of the second moment of the corrected gradient.
    pub beta3: f64,
    /// Added to the root of the bias-corrected second moment.
    pub eps: f64,
    /// Decoupled decay before the step (`no_prox`, timm `adanw`) instead of the
    /// proximal `p /= 1 + lr * wd` after it.
    pub no_prox: bool,
}

impl Default for Adan {
    /// timm's defaults: betas (0.98, 0.92, 0.99), eps 1e-8, proximal decay
    /// (timm/optim/adan.py:65-74).
    fn default() -> Self {
        Self {
            beta1: 0.98,
            beta2: 0.92,
            beta3: 0.99,
            eps: 1e-8,
            no_prox: false,
        }
    }
}

/// `adan.wgsl`: Adan's hooks.
static SHADER: Part = shader_part!("adan.wgsl", HOOKS, HOOK_NEEDS);

impl Rules for Adan {
    fn member(&self) -> Member {
        let name = if self.no_prox { "adanw" } else { "adan" };
        let states = &["exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"];
        let hyper = GroupHyper::betas(self.beta1, self.beta2).beta3(self.beta3);
        Member::new(name, states, hyper.eps(self.eps))
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module.constant("ADAN_NO_PROX", self.no_prox).part(&SHADER)
    }

    /// Updates the four state tensors and returns the masked (first-moment) term
    /// `lr / bc1 * m / den` (the reference step adds the unmasked difference term).
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        self.moments(state, step).0
    }

    fn reference_step(&self, mut x: TensorStep<'_>) -> (u64, u64) {
        let (dir, diff) = self.moments(&mut x.state, &x.step);
        let mask = Mask::new(x.caution, x.step.g, &dir);
        let rate = x.decay.rate;
        for (j, p) in x.p.iter_mut().enumerate() {
            // The cautious-decay test sees the whole unmasked update.
            let reaches = x.decay.reaches(*p, dir.delta[j] + diff[j]);
            let step = dir.delta[j] * mask.factors[j] + diff[j];
            *p = match (self.no_prox, reaches) {
                (true, true) => *p * (1.0 - rate) - step,
                (false, true) => (*p - step) / (1.0 + rate),
                (_, false) => *p - step,
            };
        }
        mask.counts
    }

    fn timm_keywords(&self) -> Value {
        json!({"no_prox": self.no_prox})
    }
}

impl Adan {
    /// One step of the moments (timm/optim/adan.py:226-236): the first-moment term as
    /// a [`Direction`] and the difference term `lr * beta2 / bc2 * d / den`.
    fn moments(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> (Direction, Vec<f64>) {
        let [m, v, d, neg_prev] = state else {
            unreachable!("Adan keeps four state tensors")
        };
        let (g, t, lr) = (step.g, step.t, step.lr());
        let (beta1, beta2, beta3) = (self.beta1, self.beta2, self.beta3);
        let bc1 = 1.0 - beta1.powi(t);
        let bc2 = 1.0 - beta2.powi(t);
        let bc3 = 1.0 - beta3.powi(t);
        let n = g.len();
        let (mut delta, mut mag, mut diff_term) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for j in 0..n {
            // Step 1: the previous gradient is this one (adan.py:159-160).
            let diff = if t == 1 { 0.0 } else { g[j] + neg_prev[j] };
            mag.push((beta1 * m[j]).abs() + ((1.0 - beta1) * g[j]).abs());
            m[j] = beta1 * m[j] + (1.0 - beta1) * g[j];
            d[j] = beta2 * d[j] + (1.0 - beta2) * diff;
            let corrected = g[j] + beta2 * diff;
            v[j] = beta3 * v[j] + (1.0 - beta3) * corrected * corrected;
            let den = v[j].sqrt() / bc3.sqrt() + self.eps;
            delta.push(lr / bc1 * m[j] / den);
            diff_term.push(lr * beta2 / bc2 * d[j] / den);
            neg_prev[j] = -g[j];
        }
        let dir = Direction {
            delta,
            sign_src: m.to_vec(),
            sign_mag: mag,
        };
        (dir, diff_term)
    }
}

/// timm.optim.Adan.
const ADAN: TimmName = TimmName::new("adan", 1e-3, timm_adan).betas().eps();
const NO_PROX: (&str, TimmDefault) = ("no_prox", TimmDefault::Bool(true));
const PROX: (&str, TimmDefault) = ("no_prox", TimmDefault::Bool(false));

/// timm's Adan names (timm/optim/_optim_factory.py: `adan`, `adanw`, `cadan`,
/// `cadanw`).
pub(crate) const TIMM: &[TimmName] = &[
    ADAN.alias("adan", &[PROX]),
    ADAN.alias("adanw", &[NO_PROX]),
    ADAN.alias("cadan", &[CAUTION, PROX]),
    ADAN.alias("cadanw", &[CAUTION, NO_PROX]),
];

/// The keywords of timm.optim.Adan (timm/optim/adan.py:65-74).
fn timm_adan(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let d = Adan::default();
    let betas = args.f64_list("betas", &[d.beta1, d.beta2, d.beta3])?;
    let [beta1, beta2, beta3] = betas[..] else {
        return Err(Error::InvalidConfig(format!(
            "timm keyword `betas` of Adan needs 3 values, got {}",
            betas.len()
        )));
    };
    let adan = Adan {
        beta1,
        beta2,
        beta3,
        eps: args.f64("eps", d.eps)?,
        no_prox: args.bool("no_prox", d.no_prox)?,
    };
    args.only("corrected_weight_decay", Value::Bool(false))?;
    Ok((Algorithm::Adan(adan), args.caution()?))
}

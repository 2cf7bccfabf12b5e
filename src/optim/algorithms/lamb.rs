//! LAMB and C-LAMB (timm `lamb`/`clamb`, `lambw`/`clambw`, `lambc`, `lambcw`, `lambcd`;
//! timm/optim/lamb.py): hyperparameters, f64 reference, WGSL hooks (`shaders/lamb.wgsl`)
//! and timm names.
//!
//! The update is AdamW's direction scaled per tensor by the trust ratio
//! `||p|| / ||update||`; caution masks the update before weight decay and before the
//! trust ratio, which sees the masked update (timm/optim/lamb.py:353-369). The norms
//! come from the per-tensor sums of the measuring pass ([`Rules::tensor_sums`]).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Algorithm, Direction, HOOK_NEEDS, Member, RefStep, Rules, hooks, positive, timm_betas,
};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::reference::{Mask, TensorStep};
use crate::optim::timm::{CAUTION, CORRECTED, DECOUPLED_DECAY, TimmArgs, TimmDefault, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// LAMB's hyperparameters and switches, as timm's `Lamb` names them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lamb {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon (torch-style: `sqrt(v) / sqrt(bc2) + eps`).
    pub eps: f64,
    /// Decoupled decay `p *= 1 - lr * wd` (`decoupled_decay`, timm `lambw`) instead of
    /// adding `wd * p` to the update before the trust ratio.
    pub decoupled: bool,
    /// Clamp the trust ratio at 1 (`trust_clip`, LAMBC).
    pub trust_clip: bool,
    /// Apply the trust ratio to tensors without weight decay too (`always_adapt`).
    pub always_adapt: bool,
    /// `m = lerp(m, g, 1 - beta1)`; otherwise `m = beta1 * m + g` (`grad_averaging`).
    pub grad_averaging: bool,
    /// Bias-correct both moments (`bias_correction`).
    pub bias_correction: bool,
    /// Divide every gradient by `max(global_norm / this, 1)` first (`max_grad_norm`).
    pub max_grad_norm: Option<f64>,
}

impl Default for Lamb {
    /// timm's defaults: betas (0.9, 0.999), eps 1e-6, coupled decay, no trust clip,
    /// grad averaging, bias correction, `max_grad_norm` 1.0.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
            decoupled: false,
            trust_clip: false,
            always_adapt: false,
            grad_averaging: true,
            bias_correction: true,
            max_grad_norm: Some(1.0),
        }
    }
}

/// `lamb.wgsl`: LAMB's hooks, its tensor terms included.
static SHADER: Part = shader_part!("lamb.wgsl", hooks!("tensor_terms"), HOOK_NEEDS);

impl Rules for Lamb {
    fn member(&self) -> Member {
        let name = if self.decoupled { "lambw" } else { "lamb" };
        Member::adam(name, self.beta1, self.beta2, self.eps)
    }

    fn validate(&self) -> Result<()> {
        self.group_hyper().validate()?;
        self.max_grad_norm
            .map_or(Ok(()), |m| positive("LAMB max_grad_norm", m))
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module
            .constant("LAMB_DECOUPLED", self.decoupled)
            .constant("LAMB_TRUST_CLIP", self.trust_clip)
            .constant("LAMB_ALWAYS_ADAPT", self.always_adapt)
            .constant("LAMB_GRAD_AVERAGING", self.grad_averaging)
            .constant("LAMB_BIAS_CORRECTION", self.bias_correction)
            .part(&SHADER)
    }

    fn tensor_sums(&self) -> bool {
        true
    }

    fn count_states(&self) -> usize {
        2
    }

    fn max_grad_norm(&self) -> Option<f64> {
        self.max_grad_norm
    }

    /// Updates both moments and returns the Adam update `(m / bc1) / (sqrt(v) /
    /// sqrt(bc2) + eps)` before the mask (timm/optim/lamb.py:344-351).
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let g = step.g;
        let t = step.t;
        let lr = step.lr();
        let [m, v] = state else {
            unreachable!("LAMB keeps two state tensors")
        };
        let (beta1, beta2) = (self.beta1, self.beta2);
        let beta3 = if self.grad_averaging {
            1.0 - beta1
        } else {
            1.0
        };
        let (bc1, bc2) = if self.bias_correction {
            (1.0 - beta1.powi(t), 1.0 - beta2.powi(t))
        } else {
            (1.0, 1.0)
        };
        let mut u = Vec::with_capacity(g.len());
        let mut mag = Vec::with_capacity(g.len());
        for j in 0..g.len() {
            mag.push((beta1 * m[j]).abs() + (beta3 * g[j]).abs());
            m[j] = beta1 * m[j] + beta3 * g[j];
            v[j] = beta2 * v[j] + (1.0 - beta2) * g[j] * g[j];
            u.push(lr * ((m[j] / bc1) / (v[j].sqrt() / bc2.sqrt() + self.eps)));
        }
        Direction {
            delta: u,
            sign_src: m.to_vec(),
            sign_mag: mag,
        }
    }

    /// The mask on the update, then coupled or decoupled (possibly cautious) decay,
    /// then the trust ratio on the masked update (timm/optim/lamb.py:353-371).
    fn reference_step(&self, mut x: TensorStep<'_>) -> (u64, u64) {
        // The update before the learning rate: the direction at a unit rate.
        let dir = self.reference_direction(&mut x.state, &x.step.at_unit_rate());
        let u = &dir.delta;
        let mask = Mask::new(x.caution, x.step.g, &dir);
        let mut update: Vec<f64> = u.iter().zip(&mask.factors).map(|(u, f)| u * f).collect();
        for (j, p) in x.p.iter_mut().enumerate() {
            if self.decoupled {
                *p = x.decay.apply(*p, u[j]);
            } else if x.decay.reaches(*p, u[j]) {
                update[j] += x.wd * *p;
            }
        }
        let ratio = if x.wd != 0.0 || self.always_adapt {
            trust_ratio(norm(x.p), norm(&update), self.trust_clip)
        } else {
            1.0
        };
        for (p, u) in x.p.iter_mut().zip(&update) {
            *p -= x.step.lr() * ratio * u;
        }
        mask.counts
    }

    fn lr_family(&self) -> super::LrFamily {
        super::LrFamily::TrustRatio
    }

    fn timm_keywords(&self) -> Value {
        json!({
            "bias_correction": self.bias_correction,
            "grad_averaging": self.grad_averaging,
            "max_grad_norm": self.max_grad_norm,
            "trust_clip": self.trust_clip,
            "always_adapt": self.always_adapt,
            "decoupled_decay": self.decoupled,
        })
    }
}

/// `w_norm / u_norm`, 1 if either is 0 (timm's `_lamb_trust_ratio`,
/// timm/optim/lamb.py:301-313), at most 1 with `clip`.
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

/// timm.optim.Lamb.
const LAMB: TimmName = TimmName::new("lamb", 1e-3, timm_lamb).betas().eps();
const TRUST_CLIP: (&str, TimmDefault) = ("trust_clip", TimmDefault::Bool(true));

/// timm's LAMB names (timm/optim/_optim_factory.py: `_register_lamb_lars`, the
/// corrected-decay and the cautious registrations).
pub(crate) const TIMM: &[TimmName] = &[
    LAMB,
    LAMB.alias("lambc", &[TRUST_CLIP]),
    LAMB.alias("lambw", &[DECOUPLED_DECAY]),
    LAMB.alias("lambcw", &[TRUST_CLIP, DECOUPLED_DECAY]),
    LAMB.alias("lambcd", &[DECOUPLED_DECAY, CORRECTED]),
    LAMB.alias("clamb", &[CAUTION]),
    LAMB.alias("clambw", &[CAUTION, DECOUPLED_DECAY]),
];

/// The keywords of timm.optim.Lamb.
fn timm_lamb(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let d = Lamb::default();
    let (beta1, beta2) = timm_betas(args, [d.beta1, d.beta2])?;
    let lamb = Lamb {
        beta1,
        beta2,
        eps: args.f64("eps", d.eps)?,
        decoupled: args.bool("decoupled_decay", d.decoupled)?,
        trust_clip: args.bool("trust_clip", d.trust_clip)?,
        always_adapt: args.bool("always_adapt", d.always_adapt)?,
        grad_averaging: args.bool("grad_averaging", d.grad_averaging)?,
        bias_correction: args.bool("bias_correction", d.bias_correction)?,
        max_grad_norm: args.optional_f64("max_grad_norm", d.max_grad_norm)?,
    };
    // Checked by the configuration: corrected decay needs decoupled decay.
    args.corrected_decay()?;
    Ok((Algorithm::Lamb(lamb), args.caution()?))
}

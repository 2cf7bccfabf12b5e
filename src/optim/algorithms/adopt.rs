//! ADOPT and C-ADOPT (timm `adopt`/`cadopt`, `adoptw`/`cadoptw`, `adoptc`/`cadoptc`;
//! timm/optim/adopt.py, arXiv 2411.02853): the first moment averages the gradient
//! normalized by the second moment of the steps BEFORE it, clipped at `(t - 1)^clip_exp`;
//! step 1 only initializes the second moment. Hyperparameters, f64 reference, WGSL hooks
//! (`shaders/adopt.wgsl`) and timm names.
//!
//! Weight decay is coupled by default (`g += wd * p` before anything else, so the state
//! and the caution mask see it: timm/optim/adopt.py:318-319) or, with `decoupled`,
//! `p *= 1 - lr * wd` from step 2 on (:326-328; timm's corrected rate with
//! `corrected_weight_decay`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Algorithm, Decay, Direction, HOOK_NEEDS, HOOKS, Member, RefStep, Rules, timm_betas};
use crate::error::{Error, Result};
use crate::optim::config::Caution;
use crate::optim::reference::{TensorStep, apply_masked_update};
use crate::optim::timm::{CAUTION, CORRECTED, TimmArgs, TimmDefault, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// ADOPT's hyperparameters, as timm's `Adopt` names them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adopt {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Lower bound of `sqrt(v)` in the normalization.
    pub eps: f64,
    /// The normalized gradient is clipped to `±(t - 1)^clip_exp` at step t (`None`: no
    /// clip).
    pub clip_exp: Option<f64>,
    /// Decoupled decay `p *= 1 - lr * wd` (timm `adoptw`) instead of adding `wd * p` to
    /// the gradient.
    pub decoupled: bool,
}

impl Default for Adopt {
    /// timm's defaults: betas (0.9, 0.9999), eps 1e-6, clip_exp 0.333, coupled decay.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.9999,
            eps: 1e-6,
            clip_exp: Some(0.333),
            decoupled: false,
        }
    }
}

/// `adopt.wgsl`: ADOPT's hooks.
static SHADER: Part = shader_part!("adopt.wgsl", HOOKS, HOOK_NEEDS);

impl Adopt {
    /// The normalized gradient `g / max(sqrt(v), eps)`, clipped at step `t`.
    fn normalized(&self, g: f64, v: f64, t: i32) -> f64 {
        let n = g / v.sqrt().max(self.eps);
        match self.clip_exp {
            Some(e) => {
                let bound = f64::from(t - 1).powf(e);
                n.clamp(-bound, bound)
            }
            None => n,
        }
    }
}

impl Rules for Adopt {
    fn member(&self) -> Member {
        let name = if self.decoupled { "adoptw" } else { "adopt" };
        Member::adam(name, self.beta1, self.beta2, self.eps)
    }

    fn validate(&self) -> Result<()> {
        self.group_hyper().validate()?;
        match self.clip_exp {
            Some(e) if !e.is_finite() => Err(Error::InvalidConfig(format!(
                "ADOPT clip_exp = {e} must be finite (or none)"
            ))),
            _ => Ok(()),
        }
    }

    /// The new first moment needs the second moment.
    fn count_states(&self) -> usize {
        2
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module
            .constant("ADOPT_DECOUPLED", self.decoupled)
            .constant("ADOPT_CLIP", self.clip_exp.is_some())
            .constant("ADOPT_CLIP_EXP", self.clip_exp.unwrap_or(0.0) as f32)
            .part(&SHADER)
    }

    /// Step 1 sets `v = g * g` and has no direction; later steps move the first moment
    /// towards the clipped normalized gradient, then update `v`
    /// (timm/optim/adopt.py:322-347).
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let g = step.g;
        let [m, v] = state else {
            unreachable!("ADOPT keeps two state tensors")
        };
        let first = step.t == 1;
        let beta1 = self.beta1;
        let mut mag = vec![0.0; g.len()];
        for j in 0..g.len() {
            if !first {
                let n = self.normalized(g[j], v[j], step.t);
                mag[j] = (beta1 * m[j]).abs() + ((1.0 - beta1) * n).abs();
                m[j] = beta1 * m[j] + (1.0 - beta1) * n;
            }
            v[j] = if first {
                g[j] * g[j]
            } else {
                self.beta2 * v[j] + (1.0 - self.beta2) * g[j] * g[j]
            };
        }
        let src = if first {
            vec![0.0; g.len()]
        } else {
            m.to_vec()
        };
        Direction {
            delta: src.iter().map(|x| step.lr() * x).collect(),
            sign_src: src,
            sign_mag: mag,
        }
    }

    /// Step 1 changes no parameter (no decay either); with caution it keeps nothing.
    fn reference_step(&self, mut x: TensorStep<'_>) -> (u64, u64) {
        let dir = self.reference_direction(&mut x.state, &x.step);
        if x.step.t == 1 {
            let n = x.step.g.len() as u64;
            return (if x.caution.is_on() { 0 } else { n }, 0);
        }
        apply_masked_update(x, &dir, self.decay())
    }

    fn decay(&self) -> Decay {
        Decay::coupled_unless(self.decoupled)
    }

    fn timm_keywords(&self) -> Value {
        json!({
            "clip_exp": self.clip_exp,
            "decoupled": self.decoupled,
        })
    }
}

/// timm.optim.Adopt.
const ADOPT: TimmName = TimmName::new("adopt", 1e-3, timm_adopt).betas().eps();
const DECOUPLED: (&str, TimmDefault) = ("decoupled", TimmDefault::Bool(true));

/// timm's ADOPT names (timm/optim/_optim_factory.py: the Adam family, the corrected
/// decay and the cautious registrations).
pub(crate) const TIMM: &[TimmName] = &[
    ADOPT,
    ADOPT.alias("adoptw", &[DECOUPLED]),
    ADOPT.alias("adoptc", &[DECOUPLED, CORRECTED]),
    ADOPT.alias("cadopt", &[CAUTION]),
    ADOPT.alias("cadoptw", &[DECOUPLED, CAUTION]),
    ADOPT.alias("cadoptc", &[DECOUPLED, CAUTION, CORRECTED]),
];

/// The keywords of timm.optim.Adopt (timm/optim/adopt.py:65-81).
fn timm_adopt(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let d = Adopt::default();
    let (beta1, beta2) = timm_betas(args, [d.beta1, d.beta2])?;
    let adopt = Adopt {
        beta1,
        beta2,
        eps: args.f64("eps", d.eps)?,
        clip_exp: args.optional_f64("clip_exp", d.clip_exp)?,
        decoupled: args.bool("decoupled", d.decoupled)?,
    };
    // timm corrects only the decoupled rate; coupled decay ignores it.
    args.corrected_decay()?;
    Ok((Algorithm::Adopt(adopt), args.caution()?))
}

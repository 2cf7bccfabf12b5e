//! AdamW and C-AdamW (torch.optim.AdamW, timm `adamw`/`cadamw`): hyperparameters,
//! f64 reference, WGSL hooks (`shaders/adamw.wgsl`) and timm names.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Algorithm, Direction, HOOK_NEEDS, HOOKS, Member, RefStep, Rules, timm_betas};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::timm::{CAUTION, CORRECTED, TimmArgs, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// Where AdamW adds eps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EpsStyle {
    /// `den = sqrt(v) / sqrt(bc2) + eps`, step `lr / bc1` (torch, timm; the default).
    #[default]
    Torch,
    /// `den = sqrt(v) + eps`, step `lr * sqrt(bc2) / bc1` (C-Optim's loop path, HF).
    Hf,
}

/// AdamW's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Where eps goes.
    pub eps_style: EpsStyle,
}

impl Default for AdamW {
    /// torch/timm defaults: betas (0.9, 0.999), eps 1e-8, torch-style eps.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            eps_style: EpsStyle::Torch,
        }
    }
}

/// `adamw.wgsl`: AdamW's hooks.
pub(super) static SHADER: Part = shader_part!("adamw.wgsl", HOOKS, HOOK_NEEDS);

impl Rules for AdamW {
    fn member(&self) -> Member {
        Member::adam("adamw", self.beta1, self.beta2, self.eps)
    }

    fn variant(&self) -> u32 {
        (self.eps_style == EpsStyle::Hf) as u32
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module.constant("NESTEROV_MOMENT", false).part(&SHADER)
    }

    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        adam_direction(self, state, step, false)
    }
}

/// The moments `m`, `v` (`state`) after a step with gradient `step.g`, and the bias-corrected
/// direction from `m`, or from its Nesterov look-ahead `lerp(m, g, 1 - beta1)` (NAdamW).
pub(super) fn adam_direction(
    adam: &AdamW,
    state: &mut [&mut Vec<f64>],
    step: &RefStep,
    nesterov: bool,
) -> Direction {
    let g = step.g;
    let [m, v] = state else {
        unreachable!("Adam keeps two state tensors")
    };
    let (beta1, beta2) = (adam.beta1, adam.beta2);
    let bc1 = 1.0 - beta1.powi(step.t);
    let bc2 = 1.0 - beta2.powi(step.t);
    let lr = step.lr();
    let mut delta = Vec::with_capacity(g.len());
    let mut src = Vec::with_capacity(g.len());
    let mut mag = Vec::with_capacity(g.len());
    for j in 0..g.len() {
        mag.push((beta1 * m[j]).abs() + ((1.0 - beta1) * g[j]).abs());
        m[j] = beta1 * m[j] + (1.0 - beta1) * g[j];
        v[j] = beta2 * v[j] + (1.0 - beta2) * g[j] * g[j];
        let moment = if nesterov {
            mag[j] = (beta1 * m[j]).abs() + ((1.0 - beta1) * g[j]).abs();
            beta1 * m[j] + (1.0 - beta1) * g[j]
        } else {
            m[j]
        };
        let (den, step_size) = match adam.eps_style {
            EpsStyle::Torch => (v[j].sqrt() / bc2.sqrt() + adam.eps, lr / bc1),
            EpsStyle::Hf => (v[j].sqrt() + adam.eps, lr * bc2.sqrt() / bc1),
        };
        delta.push(step_size * moment / den);
        src.push(moment);
    }
    Direction {
        delta,
        sign_src: src,
        sign_mag: mag,
    }
}

/// timm `adamw` (torch.optim.AdamW), `cadamw` (timm's AdamWLegacy, caution on) and the
/// corrected-decay `adamc`, `cadamc` (AdamWLegacy).
pub(crate) const TIMM: &[TimmName] = &[
    TimmName::new("adamw", 1e-3, torch_adamw).betas().eps(),
    LEGACY.alias("cadamw", &[CAUTION]),
    LEGACY.alias("adamc", &[CORRECTED]),
    LEGACY.alias("cadamc", &[CAUTION, CORRECTED]),
];

/// timm's AdamWLegacy; the table names it through its aliases.
const LEGACY: TimmName = TimmName::new("cadamw", 1e-3, legacy_adamw).betas().eps();

/// The keywords of torch.optim.AdamW.
fn torch_adamw(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    args.only("amsgrad", Value::Bool(false))?;
    Ok((Algorithm::AdamW(common_kwargs(args)?), Caution::Off))
}

/// The keywords of timm's AdamWLegacy.
fn legacy_adamw(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let adamw = common_kwargs(args)?;
    args.only("amsgrad", Value::Bool(false))?;
    args.corrected_decay()?;
    args.only("clipping_threshold", Value::Null)?;
    Ok((Algorithm::AdamW(adamw), args.caution()?))
}

/// betas and eps, shared by the Adam classes.
pub(super) fn common_kwargs(args: &mut TimmArgs) -> Result<AdamW> {
    let d = AdamW::default();
    let (beta1, beta2) = timm_betas(args, [d.beta1, d.beta2])?;
    let eps = args.f64("eps", d.eps)?;
    Ok(AdamW {
        beta1,
        beta2,
        eps,
        eps_style: EpsStyle::Torch,
    })
}

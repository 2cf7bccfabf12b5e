//! LaProp and C-LaProp (timm `laprop`/`claprop`, timm/optim/laprop.py): the first
//! moment accumulates the learning-rate-weighted, second-moment-normalized gradient;
//! decay comes after the step. Hyperparameters, f64 reference, WGSL hooks
//! (`shaders/laprop.wgsl`) and timm names.

use serde::{Deserialize, Serialize};

use super::{Algorithm, Decay, Direction, HOOK_NEEDS, HOOKS, Member, RefStep, Rules, timm_betas};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::timm::{CAUTION, CORRECTED, TimmArgs, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// LaProp's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LaProp {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the bias-corrected second moment.
    pub eps: f64,
}

impl Default for LaProp {
    /// timm's defaults: betas (0.9, 0.999), eps 1e-15.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-15,
        }
    }
}

/// `laprop.wgsl`: LaProp's hooks.
static SHADER: Part = shader_part!("laprop.wgsl", HOOKS, HOOK_NEEDS);

impl Rules for LaProp {
    fn member(&self) -> Member {
        Member::adam("laprop", self.beta1, self.beta2, self.eps)
    }

    /// The new first moment needs the new second moment.
    fn count_states(&self) -> usize {
        2
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module.part(&SHADER)
    }

    /// The step is `(lr / ema_lr) * m`, `ema_lr` the beta1-EMA of the learning rates so
    /// far (timm's `exp_avg_lr_1`); `m` already carries this step's learning rate.
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let g = step.g;
        let [m, v] = state else {
            unreachable!("LaProp keeps two state tensors")
        };
        let (beta1, beta2) = (self.beta1, self.beta2);
        let lr = step.lr();
        let ema_lr = step
            .lrs
            .iter()
            .fold(0.0, |ema, lr| beta1 * ema + (1.0 - beta1) * lr);
        let bc2 = 1.0 - beta2.powi(step.t);
        let mut mag = Vec::with_capacity(g.len());
        for j in 0..g.len() {
            v[j] = beta2 * v[j] + (1.0 - beta2) * g[j] * g[j];
            let normalized = lr * (1.0 - beta1) * g[j] / ((v[j] / bc2).sqrt() + self.eps);
            mag.push((beta1 * m[j]).abs() + normalized.abs());
            m[j] = beta1 * m[j] + normalized;
        }
        let step_size = if ema_lr == 0.0 { 0.0 } else { lr / ema_lr };
        Direction {
            delta: m.iter().map(|x| step_size * x).collect(),
            sign_src: m.to_vec(),
            sign_mag: mag,
        }
    }

    fn decay(&self) -> Decay {
        Decay::AfterStep
    }
}

/// timm `laprop`, `claprop` and the corrected-decay `lapropc` (timm.optim.LaProp; decay
/// `lr^2 / max_lr * wd` after the step, timm/optim/laprop.py:278-280; timm registers no
/// cautious corrected name for it).
pub(crate) const TIMM: &[TimmName] = &[
    LAPROP,
    LAPROP.alias("claprop", &[CAUTION]),
    LAPROP.alias("lapropc", &[CORRECTED]),
];

/// timm.optim.LaProp.
const LAPROP: TimmName = TimmName::new("laprop", 4e-4, timm_laprop).betas().eps();

/// The keywords of timm.optim.LaProp.
fn timm_laprop(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let d = LaProp::default();
    let (beta1, beta2) = timm_betas(args, [d.beta1, d.beta2])?;
    let eps = args.f64("eps", d.eps)?;
    args.corrected_decay()?;
    let laprop = LaProp { beta1, beta2, eps };
    Ok((Algorithm::LaProp(laprop), args.caution()?))
}

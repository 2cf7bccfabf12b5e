//! Lion and C-Lion (timm `lion`/`clion`; C-Optim c_lion.py): hyperparameters, f64
//! reference, WGSL hooks (`shaders/lion.wgsl`) and timm names.

use serde::{Deserialize, Serialize};

use super::{
    Algorithm, Direction, GroupHyper, HOOK_NEEDS, HOOKS, Member, RefStep, Rules, sign, timm_betas,
};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::timm::{CAUTION, CORRECTED, TimmArgs, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// Lion's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lion {
    /// Interpolation factor for the update direction.
    pub beta1: f64,
    /// Momentum decay (applied after the step).
    pub beta2: f64,
}

impl Default for Lion {
    /// timm's defaults: betas (0.9, 0.99).
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.99,
        }
    }
}

/// `lion.wgsl`: Lion's hooks.
static SHADER: Part = shader_part!("lion.wgsl", HOOKS, HOOK_NEEDS);

impl Rules for Lion {
    fn member(&self) -> Member {
        Member::new(
            "lion",
            &["exp_avg"],
            GroupHyper::betas(self.beta1, self.beta2),
        )
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module.part(&SHADER)
    }

    /// The sign of the interpolation of `m` and `g`; `m` moves on afterwards (its new
    /// value does not enter this step).
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let g = step.g;
        let [m] = state else {
            unreachable!("Lion keeps one state tensor")
        };
        let (beta1, beta2) = (self.beta1, self.beta2);
        let raw: Vec<f64> = (0..g.len())
            .map(|j| beta1 * m[j] + (1.0 - beta1) * g[j])
            .collect();
        let mag = (0..g.len())
            .map(|j| (beta1 * m[j]).abs() + ((1.0 - beta1) * g[j]).abs())
            .collect();
        for j in 0..g.len() {
            m[j] = beta2 * m[j] + (1.0 - beta2) * g[j];
        }
        Direction {
            delta: raw.iter().map(|&x| step.lr() * sign(x)).collect(),
            sign_src: raw,
            sign_mag: mag,
        }
    }

    fn lr_family(&self) -> super::LrFamily {
        super::LrFamily::SignBased
    }
}

/// timm `lion`, `clion` and the corrected-decay `lionc`, `clionc` (timm.optim.Lion).
pub(crate) const TIMM: &[TimmName] = &[
    LION,
    LION.alias("clion", &[CAUTION]),
    LION.alias("lionc", &[CORRECTED]),
    LION.alias("clionc", &[CAUTION, CORRECTED]),
];

/// timm.optim.Lion.
const LION: TimmName = TimmName::new("lion", 1e-4, timm_lion).betas();

/// The keywords of timm.optim.Lion.
fn timm_lion(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let d = Lion::default();
    let (beta1, beta2) = timm_betas(args, [d.beta1, d.beta2])?;
    args.corrected_decay()?;
    Ok((Algorithm::Lion(Lion { beta1, beta2 }), args.caution()?))
}

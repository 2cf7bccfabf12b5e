//! Lion and C-Lion (timm `lion`/`clion`; C-Optim c_lion.py): hyperparameters, f64
//! reference, WGSL hooks (`shaders/lion.wgsl`) and timm names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    Algorithm, Direction, HOOK_NEEDS, HOOKS, RefStep, Rules, sign, timm_betas, unit_interval,
};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::gpu_types::GpuGroupParams;
use crate::optim::timm::{TimmArgs, TimmDefault, TimmName};
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
    fn name(&self) -> &'static str {
        "lion"
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["exp_avg"]
    }

    fn validate(&self) -> Result<()> {
        unit_interval("beta1", self.beta1)?;
        unit_interval("beta2", self.beta2)
    }

    fn pack(&self, group: &mut GpuGroupParams) {
        group.set_betas(self.beta1, self.beta2);
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module.part(&SHADER)
    }

    /// The sign of the interpolation of `m` and `g`; `m` moves on afterwards (its new
    /// value does not enter this step).
    fn reference_direction(
        &self,
        state: &mut [&mut Vec<f64>],
        g: &[f64],
        step: &RefStep,
    ) -> Direction {
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

    fn timm_group(&self) -> Map<String, Value> {
        let group = json!({"betas": [self.beta1, self.beta2]});
        group.as_object().cloned().unwrap_or_default()
    }
}

/// timm `lion`, `clion` and the corrected-decay `lionc`, `clionc` (timm.optim.Lion).
pub(crate) const TIMM: &[TimmName] = &[
    TimmName {
        name: "lion",
        lr: 1e-4,
        defaults: &[],
        has_momentum: false,
        has_eps: false,
        has_betas: true,
        build: timm_lion,
    },
    TimmName {
        name: "clion",
        lr: 1e-4,
        defaults: &[("caution", TimmDefault::Bool(true))],
        has_momentum: false,
        has_eps: false,
        has_betas: true,
        build: timm_lion,
    },
    TimmName {
        name: "lionc",
        lr: 1e-4,
        defaults: &[("corrected_weight_decay", TimmDefault::Bool(true))],
        has_momentum: false,
        has_eps: false,
        has_betas: true,
        build: timm_lion,
    },
    TimmName {
        name: "clionc",
        lr: 1e-4,
        defaults: &[
            ("caution", TimmDefault::Bool(true)),
            ("corrected_weight_decay", TimmDefault::Bool(true)),
        ],
        has_momentum: false,
        has_eps: false,
        has_betas: true,
        build: timm_lion,
    },
];

/// The keywords of timm.optim.Lion.
fn timm_lion(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let d = Lion::default();
    let (beta1, beta2) = timm_betas(args, [d.beta1, d.beta2])?;
    args.corrected_decay()?;
    Ok((Algorithm::Lion(Lion { beta1, beta2 }), args.caution()?))
}

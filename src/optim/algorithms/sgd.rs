//! SGD with momentum and C-SGD (timm `sgdw`/`csgdw`), plain or Nesterov:
//! hyperparameters, f64 reference, WGSL hooks (`shaders/sgd.wgsl`) and timm names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Algorithm, Direction, HOOK_NEEDS, HOOKS, RefStep, Rules, unit_interval};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::gpu_types::GpuGroupParams;
use crate::optim::timm::{TimmArgs, TimmDefault, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// SGD's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    /// Momentum factor (buffer = momentum * buffer + g; first step buffer = g).
    pub momentum: f64,
    /// Nesterov: the direction is g + momentum * buffer.
    pub nesterov: bool,
}

impl Default for Sgd {
    /// timm's `sgdw` defaults: momentum 0.9, Nesterov.
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: true,
        }
    }
}

/// `sgd.wgsl`: SGD's hooks (Nesterov or not through the generated constant `NESTEROV`).
static SHADER: Part = shader_part!("sgd.wgsl", HOOKS, HOOK_NEEDS);

impl Rules for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["momentum_buffer"]
    }

    fn validate(&self) -> Result<()> {
        unit_interval("momentum", self.momentum)
    }

    fn pack(&self, group: &mut GpuGroupParams) {
        group.momentum = self.momentum as f32;
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module.constant("NESTEROV", self.nesterov).part(&SHADER)
    }

    /// Updates the momentum buffer (set to `g` on the first step) and returns the
    /// plain or Nesterov direction.
    fn reference_direction(
        &self,
        state: &mut [&mut Vec<f64>],
        g: &[f64],
        step: &RefStep,
    ) -> Direction {
        let [buf] = state else {
            unreachable!("SGD keeps one state tensor")
        };
        let momentum = self.momentum;
        let mut mag = Vec::with_capacity(g.len());
        for j in 0..g.len() {
            if step.t == 1 {
                buf[j] = g[j];
                mag.push(g[j].abs());
            } else {
                mag.push((momentum * buf[j]).abs() + g[j].abs());
                buf[j] = momentum * buf[j] + g[j];
            }
        }
        let (u, mag) = if self.nesterov {
            (
                (0..g.len()).map(|j| g[j] + momentum * buf[j]).collect(),
                (0..g.len())
                    .map(|j| g[j].abs() + momentum * (buf[j].abs() + mag[j]))
                    .collect(),
            )
        } else {
            (buf.to_vec(), mag)
        };
        Direction {
            delta: u.iter().map(|x| step.lr() * x).collect(),
            sign_src: u,
            sign_mag: mag,
        }
    }

    fn timm_group(&self) -> Map<String, Value> {
        let group = json!({"momentum": self.momentum, "nesterov": self.nesterov, "dampening": 0.0});
        group.as_object().cloned().unwrap_or_default()
    }
}

/// timm `sgdw`, `csgdw` and the corrected-decay `sgdc`, `csgdc` (timm.optim.SGDW,
/// Nesterov by default).
pub(crate) const TIMM: &[TimmName] = &[
    TimmName {
        name: "sgdw",
        lr: 1e-3,
        defaults: &[("nesterov", TimmDefault::Bool(true))],
        has_momentum: true,
        has_eps: false,
        has_betas: false,
        build: timm_sgdw,
    },
    TimmName {
        name: "csgdw",
        lr: 1e-3,
        defaults: &[
            ("nesterov", TimmDefault::Bool(true)),
            ("caution", TimmDefault::Bool(true)),
        ],
        has_momentum: true,
        has_eps: false,
        has_betas: false,
        build: timm_sgdw,
    },
    TimmName {
        name: "sgdc",
        lr: 1e-3,
        defaults: &[
            ("nesterov", TimmDefault::Bool(true)),
            ("corrected_weight_decay", TimmDefault::Bool(true)),
        ],
        has_momentum: true,
        has_eps: false,
        has_betas: false,
        build: timm_sgdw,
    },
    TimmName {
        name: "csgdc",
        lr: 1e-3,
        defaults: &[
            ("nesterov", TimmDefault::Bool(true)),
            ("caution", TimmDefault::Bool(true)),
            ("corrected_weight_decay", TimmDefault::Bool(true)),
        ],
        has_momentum: true,
        has_eps: false,
        has_betas: false,
        build: timm_sgdw,
    },
];

/// The keywords of timm.optim.SGDW.
fn timm_sgdw(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let momentum = args.f64("momentum", 0.0)?;
    let nesterov = args.bool("nesterov", false)?;
    args.only("dampening", Value::from(0.0))?;
    args.corrected_decay()?;
    Ok((Algorithm::Sgd(Sgd { momentum, nesterov }), args.caution()?))
}

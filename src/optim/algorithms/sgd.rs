//! SGD with momentum and C-SGD (timm `sgdw`/`csgdw`), plain or Nesterov:
//! hyperparameters, f64 reference, WGSL hooks (`shaders/sgd.wgsl`) and timm names.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Algorithm, Direction, GroupHyper, HOOKS, Member, RefStep, Rules, hook_needs};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::timm::{CAUTION, CORRECTED, TimmArgs, TimmDefault, TimmName};
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
static SHADER: Part = shader_part!("sgd.wgsl", HOOKS, hook_needs!("momentum_update"));
/// `momentum.wgsl`: the (Nesterov) momentum update SGD and SGDP share.
pub(super) static MOMENTUM: Part = shader_part!("momentum.wgsl", &["momentum_update"], &[]);

impl Rules for Sgd {
    fn member(&self) -> Member {
        Member::new(
            "sgd",
            &["momentum_buffer"],
            GroupHyper::momentum(self.momentum),
        )
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module
            .constant("NESTEROV", self.nesterov)
            .part(&MOMENTUM)
            .part(&SHADER)
    }

    /// Updates the momentum buffer (set to `g` on the first step) and returns the
    /// plain or Nesterov direction.
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let g = step.g;
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

    fn lr_family(&self) -> super::LrFamily {
        super::LrFamily::SgdLike
    }

    fn timm_keywords(&self) -> Value {
        json!({"nesterov": self.nesterov, "dampening": 0.0})
    }
}

/// timm `sgdw`, `csgdw` and the corrected-decay `sgdc`, `csgdc` (timm.optim.SGDW,
/// Nesterov by default).
pub(crate) const TIMM: &[TimmName] = &[
    SGDW.alias("sgdw", &[NESTEROV]),
    SGDW.alias("csgdw", &[NESTEROV, CAUTION]),
    SGDW.alias("sgdc", &[NESTEROV, CORRECTED]),
    SGDW.alias("csgdc", &[NESTEROV, CAUTION, CORRECTED]),
];

/// timm.optim.SGDW.
const SGDW: TimmName = TimmName::new("sgdw", 1e-3, timm_sgdw).momentum();
/// The `OptimInfo.defaults` entry of every SGDW name.
const NESTEROV: (&str, TimmDefault) = ("nesterov", TimmDefault::Bool(true));

/// The keywords of timm.optim.SGDW.
fn timm_sgdw(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let momentum = args.f64("momentum", 0.0)?;
    let nesterov = args.bool("nesterov", false)?;
    args.only("dampening", Value::from(0.0))?;
    args.corrected_decay()?;
    Ok((Algorithm::Sgd(Sgd { momentum, nesterov }), args.caution()?))
}

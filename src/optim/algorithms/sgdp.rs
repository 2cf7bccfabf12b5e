//! SGDP and C-SGDP (timm `sgdp`/`csgdp`; timm/optim/sgdp.py): hyperparameters, f64
//! reference, WGSL hooks (`shaders/sgdp.wgsl` on `shaders/projection.wgsl`) and timm
//! names.
//!
//! SGD with momentum (timm/optim/sgdp.py:224-230; the buffer starts at zero), AdamP's
//! projection (:233-239, `projection` in timm/optim/adamp.py:29-61), weight decay
//! `lr * wd * ratio / (1 - momentum)` (:242-243), then `p -= lr * u` (:246).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::projection::{Projection, collect_direction};
use super::sgd::MOMENTUM;
use super::{Algorithm, Direction, GroupHyper, Member, RefStep, Rules, hook_needs, hooks};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::reference::TensorStep;
use crate::optim::timm::{CAUTION, TimmArgs, TimmDefault, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// SGDP's hyperparameters, as timm's `SGDP` names them (dampening 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sgdp {
    /// Momentum factor (buffer = momentum * buffer + g, from 0).
    pub momentum: f64,
    /// Nesterov: the update is `g + momentum * buffer`.
    pub nesterov: bool,
    /// The projection's norm epsilon.
    pub eps: f64,
    /// Projection threshold: a view projects when |cos(p, g)| < delta / sqrt(its length).
    pub delta: f64,
    /// Weight decay ratio where the update is projected.
    pub wd_ratio: f64,
}

impl Default for Sgdp {
    /// timm's `sgdp` defaults: momentum 0.9 (the factory's), Nesterov, eps 1e-8,
    /// delta 0.1, wd_ratio 0.1.
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: true,
            eps: 1e-8,
            delta: 0.1,
            wd_ratio: 0.1,
        }
    }
}

/// `sgdp.wgsl` on `projection.wgsl`.
static SHADER: Part = shader_part!(
    "sgdp.wgsl",
    hooks!("perturb"),
    hook_needs!("projected_step", "momentum_update"),
);

impl Sgdp {
    fn projection(&self) -> Projection {
        Projection {
            delta: self.delta,
            wd_ratio: self.wd_ratio,
            eps: self.eps,
        }
    }
}

impl Rules for Sgdp {
    fn member(&self) -> Member {
        Member::new(
            "sgdp",
            &["momentum"],
            self.projection()
                .group_hyper(GroupHyper::momentum(self.momentum).eps(self.eps)),
        )
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        let module = module.constant("SGDP_NESTEROV", self.nesterov);
        Projection::shader(module.part(&MOMENTUM), &SHADER)
    }

    fn segment_len(&self, shape: &[usize]) -> u64 {
        Projection::row_len(shape)
    }

    fn lr_family(&self) -> super::LrFamily {
        super::LrFamily::SgdLike
    }

    fn segment_sums(&self) -> bool {
        true
    }

    /// Updates the buffer and returns `lr * u` before the projection
    /// (timm/optim/sgdp.py:225-230).
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let [buf] = state else {
            unreachable!("SGDP keeps one state tensor")
        };
        let mu = self.momentum;
        collect_direction(step.g.len(), |j| {
            let g = step.g[j];
            let old = (mu * buf[j]).abs() + g.abs();
            buf[j] = mu * buf[j] + g;
            let (u, mag) = if self.nesterov {
                (g + mu * buf[j], g.abs() + mu * old)
            } else {
                (buf[j], old)
            };
            (step.lr() * u, u, mag)
        })
    }

    /// The projection and mask, then decay scaled by `ratio / (1 - momentum)`, then
    /// the step.
    fn reference_step(&self, x: TensorStep<'_>) -> (u64, u64) {
        self.projection()
            .reference_step(self, x, 1.0 - self.momentum)
    }

    fn timm_keywords(&self) -> Value {
        json!({"dampening": 0, "nesterov": self.nesterov})
    }
}

const NESTEROV: (&str, TimmDefault) = ("nesterov", TimmDefault::Bool(true));
/// timm.optim.SGDP (its `lr` is required; coptim's default when none is given: 1e-3).
const SGDP: TimmName = TimmName::new("sgdp", 1e-3, timm_sgdp).momentum().eps();

/// timm's SGDP names (timm/optim/_optim_factory.py: `sgdp`, `csgdp`).
pub(crate) const TIMM: &[TimmName] = &[
    SGDP.alias("sgdp", &[NESTEROV]),
    SGDP.alias("csgdp", &[NESTEROV, CAUTION]),
];

/// The keywords of timm.optim.SGDP.
fn timm_sgdp(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    args.only("dampening", Value::from(0.0))?;
    let sgdp = Sgdp {
        momentum: args.f64("momentum", 0.0)?,
        nesterov: args.bool("nesterov", false)?,
        eps: args.f64("eps", 1e-8)?,
        delta: args.f64("delta", 0.1)?,
        wd_ratio: args.f64("wd_ratio", 0.1)?,
    };
    Ok((Algorithm::Sgdp(sgdp), args.caution()?))
}

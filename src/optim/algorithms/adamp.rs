//! AdamP and C-AdamP (timm `adamp`/`cadamp`; timm/optim/adamp.py): hyperparameters, f64
//! reference, WGSL hooks (`shaders/adamp.wgsl` on `shaders/projection.wgsl`) and timm
//! names.
//!
//! Adam's update (timm/optim/adamp.py:117-130), projected off the parameter where the
//! gradient is nearly orthogonal to it (`projection`, :29-61; rank > 1 only, :133-142),
//! with weight decay scaled by `wd_ratio` where projected (:145-146). The projection's
//! sums per row and per tensor come from the segment sums of the measuring pass
//! ([`Rules::segment_sums`]).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::projection::{Projection, collect_direction};
use super::{Algorithm, Direction, Member, RefStep, Rules, hook_needs, hooks, timm_betas};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::reference::TensorStep;
use crate::optim::timm::{CAUTION, TimmArgs, TimmDefault, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// AdamP's hyperparameters, as timm's `AdamP` names them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamP {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon (torch-style), also the projection's norm epsilon.
    pub eps: f64,
    /// Projection threshold: a view projects when |cos(p, g)| < delta / sqrt(its length).
    pub delta: f64,
    /// Weight decay ratio where the update is projected.
    pub wd_ratio: f64,
    /// Nesterov: the update uses `beta1 * m + (1 - beta1) * g`.
    pub nesterov: bool,
}

impl Default for AdamP {
    /// timm's `adamp` defaults: betas (0.9, 0.999), eps 1e-8, delta 0.1, wd_ratio 0.01,
    /// Nesterov (the class itself defaults to wd_ratio 0.1, no Nesterov).
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            delta: 0.1,
            wd_ratio: 0.01,
            nesterov: true,
        }
    }
}

/// `adamp.wgsl` on `projection.wgsl`.
static SHADER: Part = shader_part!(
    "adamp.wgsl",
    hooks!("perturb"),
    hook_needs!("projected_step")
);
impl AdamP {
    fn projection(&self) -> Projection {
        Projection {
            delta: self.delta,
            wd_ratio: self.wd_ratio,
            eps: self.eps,
        }
    }
}

impl Rules for AdamP {
    fn member(&self) -> Member {
        let adam = Member::adam("adamp", self.beta1, self.beta2, self.eps);
        Member {
            hyper: self.projection().group_hyper(adam.hyper),
            ..adam
        }
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        let module = module.constant("ADAMP_NESTEROV", self.nesterov);
        Projection::shader(module, &SHADER)
    }

    fn count_states(&self) -> usize {
        2
    }

    fn segment_len(&self, shape: &[usize]) -> u64 {
        Projection::row_len(shape)
    }

    fn segment_sums(&self) -> bool {
        true
    }

    /// Updates both moments and returns `(lr / bc1) * u`, `u = m / den` (or Nesterov's
    /// look-ahead), before the projection (timm/optim/adamp.py:117-130).
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let [m, v] = state else {
            unreachable!("AdamP keeps two state tensors")
        };
        let (b1, b2) = (self.beta1, self.beta2);
        let bc1 = 1.0 - b1.powi(step.t);
        let bc2 = 1.0 - b2.powi(step.t);
        let size = step.lr() / bc1;
        collect_direction(step.g.len(), |j| {
            let g = step.g[j];
            let old = (b1 * m[j]).abs() + ((1.0 - b1) * g).abs();
            m[j] = b1 * m[j] + (1.0 - b1) * g;
            v[j] = b2 * v[j] + (1.0 - b2) * g * g;
            let den = v[j].sqrt() / bc2.sqrt() + self.eps;
            let (n, mag) = if self.nesterov {
                (
                    b1 * m[j] + (1.0 - b1) * g,
                    b1 * old + ((1.0 - b1) * g).abs(),
                )
            } else {
                (m[j], old)
            };
            (size * n / den, n, mag)
        })
    }

    /// The projection and mask, then decay scaled by the ratio, then the step.
    fn reference_step(&self, x: TensorStep<'_>) -> (u64, u64) {
        self.projection().reference_step(self, x, 1.0)
    }

    fn timm_keywords(&self) -> Value {
        json!({"nesterov": self.nesterov})
    }
}

/// The `OptimInfo.defaults` of `adamp` and `cadamp`.
const WD_RATIO: (&str, TimmDefault) = ("wd_ratio", TimmDefault::F64(0.01));
const NESTEROV: (&str, TimmDefault) = ("nesterov", TimmDefault::Bool(true));
/// timm.optim.AdamP.
const ADAMP: TimmName = TimmName::new("adamp", 1e-3, timm_adamp).betas().eps();

/// timm's AdamP names (timm/optim/_optim_factory.py: `adamp`, `cadamp`).
pub(crate) const TIMM: &[TimmName] = &[
    ADAMP.alias("adamp", &[WD_RATIO, NESTEROV]),
    ADAMP.alias("cadamp", &[WD_RATIO, NESTEROV, CAUTION]),
];

/// The keywords of timm.optim.AdamP.
fn timm_adamp(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let (beta1, beta2) = timm_betas(args, [0.9, 0.999])?;
    let adamp = AdamP {
        beta1,
        beta2,
        eps: args.f64("eps", 1e-8)?,
        delta: args.f64("delta", 0.1)?,
        wd_ratio: args.f64("wd_ratio", 0.1)?,
        nesterov: args.bool("nesterov", false)?,
    };
    Ok((Algorithm::AdamP(adamp), args.caution()?))
}

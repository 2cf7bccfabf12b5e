//! NAdamW and C-NAdamW (timm `nadamw`/`cnadamw`, timm/optim/nadamw.py): AdamW whose
//! update uses the Nesterov look-ahead `lerp(m, g, 1 - beta1)` of the new first moment.
//! The WGSL is `shaders/adamw.wgsl` with `NESTEROV_MOMENT`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::adamw::{self, AdamW, adam_direction};
use super::{Algorithm, Direction, Member, RefStep, Rules};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::timm::{CAUTION, CORRECTED, TimmArgs, TimmName};
use crate::wgsl::ShaderBuilder;

/// NAdamW's hyperparameters: AdamW's (betas (0.9, 0.999), eps 1e-8 by default; only
/// torch-style eps, as timm's).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct NAdamW {
    /// The moments and eps, as AdamW's.
    #[serde(flatten)]
    pub adam: AdamW,
}

impl Rules for NAdamW {
    fn member(&self) -> Member {
        Member {
            name: "nadamw",
            ..self.adam.member()
        }
    }

    fn variant(&self) -> u32 {
        self.adam.variant()
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module
            .constant("NESTEROV_MOMENT", true)
            .part(&adamw::SHADER)
    }

    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        adam_direction(&self.adam, state, step, true)
    }
}

/// timm `nadamw`, `cnadamw` and the corrected-decay `nadamc`, `cnadamc`
/// (timm.optim.NAdamW; decay rate `lr^2 / max_lr * wd`, timm/optim/nadamw.py:275).
pub(crate) const TIMM: &[TimmName] = &[
    NADAMW,
    NADAMW.alias("cnadamw", &[CAUTION]),
    NADAMW.alias("nadamc", &[CORRECTED]),
    NADAMW.alias("cnadamc", &[CAUTION, CORRECTED]),
];

/// timm.optim.NAdamW.
const NADAMW: TimmName = TimmName::new("nadamw", 1e-3, timm_nadamw).betas().eps();

/// The keywords of timm.optim.NAdamW.
fn timm_nadamw(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let adam = adamw::common_kwargs(args)?;
    args.corrected_decay()?;
    args.only("clipping_threshold", Value::Null)?;
    Ok((Algorithm::NAdamW(NAdamW { adam }), args.caution()?))
}

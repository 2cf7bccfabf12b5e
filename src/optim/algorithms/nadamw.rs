//! NAdamW and C-NAdamW (timm `nadamw`/`cnadamw`, timm/optim/nadamw.py): AdamW whose
//! update uses the Nesterov look-ahead `lerp(m, g, 1 - beta1)` of the new first moment.
//! The WGSL is `shaders/adamw.wgsl` with `NESTEROV_MOMENT`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::adamw::{self, AdamW, adam_direction};
use super::{Algorithm, Direction, RefStep, Rules};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::gpu_types::GpuGroupParams;
use crate::optim::timm::{TimmArgs, TimmDefault, TimmName};
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
    fn name(&self) -> &'static str {
        "nadamw"
    }

    fn state_names(&self) -> &'static [&'static str] {
        self.adam.state_names()
    }

    fn validate(&self) -> Result<()> {
        self.adam.validate()
    }

    fn pack(&self, group: &mut GpuGroupParams) {
        self.adam.pack(group);
    }

    fn variant(&self) -> u32 {
        self.adam.variant()
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        module
            .constant("NESTEROV_MOMENT", true)
            .part(&adamw::SHADER)
    }

    fn reference_direction(
        &self,
        state: &mut [&mut Vec<f64>],
        g: &[f64],
        step: &RefStep,
    ) -> Direction {
        adam_direction(&self.adam, state, g, step, true)
    }

    fn timm_group(&self) -> Map<String, Value> {
        self.adam.timm_group()
    }
}

/// timm `nadamw` and `cnadamw` (timm.optim.NAdamW).
pub(crate) const TIMM: &[TimmName] = &[
    TimmName {
        name: "nadamw",
        lr: 1e-3,
        defaults: &[],
        has_momentum: false,
        has_eps: true,
        has_betas: true,
        build: timm_nadamw,
    },
    TimmName {
        name: "cnadamw",
        lr: 1e-3,
        defaults: &[("caution", TimmDefault::Bool(true))],
        has_momentum: false,
        has_eps: true,
        has_betas: true,
        build: timm_nadamw,
    },
];

/// The keywords of timm.optim.NAdamW.
fn timm_nadamw(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let adam = adamw::common_kwargs(args)?;
    args.only("corrected_weight_decay", Value::Bool(false))?;
    args.only("clipping_threshold", Value::Null)?;
    Ok((Algorithm::NAdamW(NAdamW { adam }), args.caution()?))
}

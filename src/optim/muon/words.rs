//! The uniform blocks of `shaders/muon.wgsl`: a step's rates and switches
//! (`MuonStep`) and one matrix's sizes and places (`MuonTensor`), as Rust mirrors
//! whose layout a test checks against naga's.

use crate::optim::config::Caution;
use crate::optim::muon::Muon;
#[cfg(test)]
use crate::wgsl::WgslStruct;
use crate::wgsl::wgsl_struct;

wgsl_struct! {
    /// `MuonStep` of `muon.wgsl` (`step`): this step's rates and switches.
    pub(crate) struct MuonStep {
        lr: f32,
        momentum: f32,
        weight_decay: f32,
        eps: f32,
        nesterov: u32,
        caution: u32,
        /// Mask weight of a disagreeing coordinate (0: hard mask).
        disagree: f32,
        /// `NORM_*` of `lib/caution_scale.wgsl`.
        norm_kind: u32,
        /// min of mean_clamp, eps of mean_plus_eps.
        norm_param: f32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

wgsl_struct! {
    /// `MuonTensor` of `muon.wgsl` (`tensor`): one matrix's sizes and places.
    pub(crate) struct MuonTensor {
        pub len: u32,
        pub rows: u32,
        pub cols: u32,
        pub transposed: u32,
        pub param_base: u32,
        pub grad_base: u32,
        pub x_base: u32,
        pub partial_base: u32,
        pub chunks: u32,
        pub index: u32,
        /// lr scale of timm's adjust_lr_fn for this matrix.
        pub lr_scale: f32,
        pub pad: u32,
    }
}

/// The hyperparameters a step's `MuonStep` holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepWords {
    pub muon: Muon,
    pub caution: Caution,
    pub weight_decay: f64,
}

impl StepWords {
    /// `MuonStep` at learning rate `lr`.
    pub fn at(&self, lr: f64) -> MuonStep {
        let (norm_kind, norm_param) = self.caution.norm_words();
        MuonStep {
            lr: lr as f32,
            momentum: self.muon.momentum as f32,
            weight_decay: self.weight_decay as f32,
            eps: self.muon.eps as f32,
            nesterov: self.muon.nesterov as u32,
            caution: self.caution.is_on() as u32,
            disagree: self.caution.disagree_weight() as f32,
            norm_kind,
            norm_param: norm_param as f32,
            ..Default::default()
        }
    }
}

/// The layouts of its mirror structs (checked by `own_kernels`' test).
#[cfg(test)]
pub(crate) fn mirrors() -> Vec<crate::wgsl::MirrorLayout> {
    vec![MuonStep::mirror(), MuonTensor::mirror()]
}

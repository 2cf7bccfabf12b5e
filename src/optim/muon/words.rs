//! The uniform blocks of `shaders/muon.wgsl`: a step's rates and switches
//! (`MuonStep`) and one matrix's sizes and places (`MuonTensor`), as Rust mirrors
//! whose layout a test checks against naga's.

use crate::optim::config::Caution;
use crate::optim::muon::Muon;

/// `MuonStep` of `muon.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GpuMuonStep {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    eps: f32,
    nesterov: u32,
    caution: u32,
    disagree: f32,
    norm_kind: u32,
    norm_param: f32,
    pad: [u32; 3],
}

/// `MuonTensor` of `muon.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GpuMuonTensor {
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
    pub lr_scale: f32,
    pub pad: u32,
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
    pub fn at(&self, lr: f64) -> GpuMuonStep {
        let (norm_kind, norm_param) = self.caution.norm_words();
        GpuMuonStep {
            lr: lr as f32,
            momentum: self.muon.momentum as f32,
            weight_decay: self.weight_decay as f32,
            eps: self.muon.eps as f32,
            nesterov: self.muon.nesterov as u32,
            caution: self.caution.is_on() as u32,
            disagree: self.caution.disagree_weight() as f32,
            norm_kind,
            norm_param: norm_param as f32,
            pad: [0; 3],
        }
    }
}

/// The layouts of its mirror structs (checked by `own_kernels`' test).
#[cfg(test)]
pub(crate) fn mirrors() -> Vec<crate::wgsl::MirrorLayout> {
    use crate::wgsl::mirror_layout;
    vec![
        mirror_layout!(
            GpuMuonStep,
            "MuonStep",
            [
                lr,
                momentum,
                weight_decay,
                eps,
                nesterov,
                caution,
                disagree,
                norm_kind,
                norm_param
            ]
        ),
        mirror_layout!(
            GpuMuonTensor,
            "MuonTensor",
            [
                len,
                rows,
                cols,
                transposed,
                param_base,
                grad_base,
                x_base,
                partial_base,
                chunks,
                index,
                lr_scale
            ]
        ),
    ]
}

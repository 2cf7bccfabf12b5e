//! Rust mirrors of the uniform and storage structs in `shaders/optim_common.wgsl`.

use crate::optim::kernels::MAX_GROUPS;

/// `TensorEntry`: per-tensor table; `scale` and `kept` are written on the GPU.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuTensorEntry {
    pub group: u32,
    pub numel: u32,
    pub first_block: u32,
    pub num_blocks: u32,
    pub scale: f32,
    pub kept: u32,
    pub pad: [u32; 2],
}

/// `GroupParams`: one group's hyperparameters for the current step.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuGroupParams {
    pub lr: f32,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    pub eps: f32,
    pub momentum: f32,
}

/// `StepParams`: rewritten before every step.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuStepParams {
    pub caution: u32,
    pub norm_kind: u32,
    pub norm_param: f32,
    pub disagree_weight: f32,
    pub clip_max_norm: f32,
    pub skip_nonfinite: u32,
    pub num_groups: u32,
    pub eps_style: u32,
    pub groups: [GpuGroupParams; MAX_GROUPS],
}

/// `StatusView` / `StatusRw`: the GPU-side step state.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuStatus {
    pub found_inf: u32,
    pub step: u32,
    pub clip_coef: f32,
    pub grad_norm: f32,
    pub bias: [[f32; 4]; MAX_GROUPS],
}

/// `WindowInfo`, padded to 16 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuWindowInfo {
    pub num_blocks: u32,
    pub grid_x: u32,
    pub pad: [u32; 2],
}

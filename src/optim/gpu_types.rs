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
    /// Elements per segment (0: no segments).
    pub seg_len: u32,
    /// The tensor's first segment record in the partials.
    pub first_segment: u32,
    pub sums: [f32; 4],
    pub rank: u32,
    pub pad: [u32; 3],
}

/// `BlockPartial`: one block's agreement count and float sums.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuBlockPartial {
    pub sums: [f32; 4],
    pub count: u32,
    /// A block's first piece record: its first segment.
    pub first: u32,
    /// A block's first piece record: its number of pieces.
    pub pieces: u32,
    /// A segment's resolved record: the algorithm's switch.
    pub flag: u32,
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
    pub beta3: f32,
    pub one_minus_beta3: f32,
    pub delta: f32,
    pub wd_ratio: f32,
}

impl GpuGroupParams {
    /// Sets `beta1`, `beta2` and their complements (computed in f64).
    pub fn set_betas(&mut self, beta1: f64, beta2: f64) {
        self.beta1 = beta1 as f32;
        self.beta2 = beta2 as f32;
        self.one_minus_beta1 = (1.0 - beta1) as f32;
        self.one_minus_beta2 = (1.0 - beta2) as f32;
    }

    /// Sets a third moment decay `beta3` and its complement (computed in f64).
    pub fn set_beta3(&mut self, beta3: f64) {
        self.beta3 = beta3 as f32;
        self.one_minus_beta3 = (1.0 - beta3) as f32;
    }
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
    pub variant: u32,
    pub cautious_decay: u32,
    pub clip_max_ratio: f32,
    /// First piece record in the partials (the number of blocks).
    pub piece_base: u32,
    pub pad: u32,
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

/// The layouts of every mirror struct above, for the test against naga's layout.
#[cfg(test)]
pub(crate) fn mirrors() -> Vec<crate::wgsl::MirrorLayout> {
    [record_mirrors(), step_mirrors()].concat()
}

/// The mirrors of the per-tensor and per-block records.
#[cfg(test)]
fn record_mirrors() -> Vec<crate::wgsl::MirrorLayout> {
    use crate::wgsl::mirror_layout;
    vec![
        mirror_layout!(
            GpuTensorEntry,
            "TensorEntry",
            [
                group,
                numel,
                first_block,
                num_blocks,
                scale,
                kept,
                seg_len,
                first_segment,
                sums,
                rank
            ]
        ),
        mirror_layout!(
            GpuBlockPartial,
            "BlockPartial",
            [sums, count, first, pieces, flag]
        ),
    ]
}

/// The mirrors of the step parameters, the status, the window and the block table.
#[cfg(test)]
fn step_mirrors() -> Vec<crate::wgsl::MirrorLayout> {
    use crate::wgsl::mirror_layout;
    vec![
        mirror_layout!(
            GpuGroupParams,
            "GroupParams",
            [
                lr,
                weight_decay,
                beta1,
                beta2,
                one_minus_beta1,
                one_minus_beta2,
                eps,
                momentum,
                beta3,
                one_minus_beta3,
                delta,
                wd_ratio
            ]
        ),
        mirror_layout!(
            GpuStepParams,
            "StepParams",
            [
                caution,
                norm_kind,
                norm_param,
                disagree_weight,
                clip_max_norm,
                skip_nonfinite,
                num_groups,
                variant,
                cautious_decay,
                clip_max_ratio,
                piece_base,
                groups
            ]
        ),
        mirror_layout!(
            GpuStatus,
            "StatusView",
            [found_inf, step, clip_coef, grad_norm, bias]
        ),
        mirror_layout!(
            GpuStatus,
            "StatusRw",
            [found_inf, step, clip_coef, grad_norm, bias]
        ),
        mirror_layout!(GpuWindowInfo, "WindowInfo", [num_blocks, grid_x]),
        mirror_layout!(
            crate::optim::plan::GpuBlock,
            "Block",
            [
                tensor,
                len,
                global,
                state_start,
                param_start,
                grad_start,
                elem
            ]
        ),
    ]
}

#[cfg(test)]
mod tests {
    use crate::arena::{ElementType, ParamAccess};
    use crate::optim::algorithms::Algorithm;
    use crate::optim::kernels::{algorithm_source, reduce_source};
    use crate::stream::StreamShape;
    use crate::wgsl::layout_check::check_mirrors;

    /// Every mirror matches naga's layout in every module variant that declares it
    /// (each algorithm, with and without subgroups, each state dtype, each parameter
    /// access, and the reductions), and every mirror is declared somewhere.
    #[test]
    fn mirrors_match_every_shader_variant() {
        let mirrors = super::mirrors();
        let mut seen = vec![false; mirrors.len()];
        let mut check = |label: &str, src: &str| {
            for (i, m) in mirrors.iter().enumerate() {
                if check_mirrors(label, src, std::slice::from_ref(m)) > 0 {
                    seen[i] = true;
                }
            }
        };
        for algorithm in Algorithm::members() {
            for subgroups in [false, true] {
                for dtype in [ElementType::F32, ElementType::Bf16, ElementType::F16] {
                    for access in [ParamAccess::Vec4, ParamAccess::Scalar] {
                        let label = format!(
                            "{} {subgroups} {} {access:?}",
                            algorithm.name(),
                            dtype.name()
                        );
                        check(
                            &label,
                            &algorithm_source(
                                &algorithm,
                                subgroups,
                                dtype,
                                access,
                                StreamShape::GPU,
                            ),
                        );
                    }
                }
            }
        }
        for access in [ParamAccess::Vec4, ParamAccess::Scalar] {
            check(
                &format!("reduce {access:?}"),
                &reduce_source(access, StreamShape::CPU),
            );
        }
        for (m, seen) in mirrors.iter().zip(seen) {
            assert!(seen, "no module declares `{}`", m.wgsl_name);
        }
    }
}

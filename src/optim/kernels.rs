//! WGSL sources of the optimizer kernels and their compute pipelines.
//!
//! Each optimizer module is assembled from files in `shaders/`: the shared
//! declarations, the parameter access variant (vec4 for coptim's arenas, scalar for
//! views of a caller's buffers), the agreement-count reduction (subgroup or workgroup
//! variant), the state storage variant, the shared count and update entry points, and the
//! algorithm's hooks (its caution direction and its per-vec4 update).

use crate::arena::{ElementType, ParamAccess};
use crate::context::GpuContext;
use crate::optim::config::Algorithm;

/// Shared structs, constants and helpers.
pub const COMMON_WGSL: &str = include_str!("../../shaders/optim_common.wgsl");
/// Parameters and gradients as whole vec4s (coptim's arenas).
pub const PARAMS_VEC4_WGSL: &str = include_str!("../../shaders/params_vec4.wgsl");
/// Parameters and gradients one f32 at a time (a caller's buffers at any offset).
pub const PARAMS_SCALAR_WGSL: &str = include_str!("../../shaders/params_scalar.wgsl");
/// Agreement-count reduction with subgroup operations.
pub const COUNT_SUBGROUP_WGSL: &str = include_str!("../../shaders/count_subgroup.wgsl");
/// Agreement-count reduction with a workgroup atomic (portable fallback).
pub const COUNT_WORKGROUP_WGSL: &str = include_str!("../../shaders/count_workgroup.wgsl");
/// f32 optimizer state.
pub const STATE_F32_WGSL: &str = include_str!("../../shaders/state_f32.wgsl");
/// bf16 optimizer state, two per u32 (every adapter).
pub const STATE_BF16_WGSL: &str = include_str!("../../shaders/state_bf16.wgsl");
/// f16 optimizer state (needs `shader-f16`).
pub const STATE_F16_WGSL: &str = include_str!("../../shaders/state_f16.wgsl");
/// The count and update entry points shared by every algorithm.
pub const STEP_WGSL: &str = include_str!("../../shaders/optim_step.wgsl");
/// AdamW's hooks.
pub const ADAMW_WGSL: &str = include_str!("../../shaders/adamw.wgsl");
/// Lion's hooks.
pub const LION_WGSL: &str = include_str!("../../shaders/lion.wgsl");
/// SGD's hooks.
pub const SGD_WGSL: &str = include_str!("../../shaders/sgd.wgsl");
/// Reductions: finite check, gradient norm, clip, caution scale, step advance.
pub const REDUCE_WGSL: &str = include_str!("../../shaders/reduce.wgsl");

/// Invocations per workgroup in every optimizer kernel (`WG_SIZE`).
pub const WG_SIZE: u32 = 256;
/// Elements one workgroup handles (`BLOCK_ELEMS`).
pub const BLOCK_ELEMS: u64 = 4096;
/// Parameter groups a single optimizer supports (`MAX_GROUPS`).
pub const MAX_GROUPS: usize = 16;

/// The WGSL that declares and accesses parameters and gradients.
fn access_source(access: ParamAccess) -> &'static str {
    match access {
        ParamAccess::Vec4 => PARAMS_VEC4_WGSL,
        ParamAccess::Scalar => PARAMS_SCALAR_WGSL,
    }
}

/// The full WGSL of an algorithm's module (with `enable f16;` for f16 state).
pub fn algorithm_source(
    algorithm: &Algorithm,
    subgroups: bool,
    state: ElementType,
    access: ParamAccess,
) -> String {
    let count = if subgroups {
        COUNT_SUBGROUP_WGSL
    } else {
        COUNT_WORKGROUP_WGSL
    };
    let state_src = match state {
        ElementType::F32 => STATE_F32_WGSL,
        ElementType::Bf16 => STATE_BF16_WGSL,
        ElementType::F16 => STATE_F16_WGSL,
    };
    // `enable` directives must precede every declaration.
    let enable = if state == ElementType::F16 {
        "enable f16;\n"
    } else {
        ""
    };
    let body = match algorithm {
        Algorithm::AdamW { .. } => ADAMW_WGSL,
        Algorithm::Lion { .. } => LION_WGSL,
        Algorithm::Sgd { .. } => SGD_WGSL,
    };
    [
        enable,
        COMMON_WGSL,
        access_source(access),
        count,
        state_src,
        STEP_WGSL,
        body,
    ]
    .join("\n")
}

/// The full WGSL of the reduction module.
pub fn reduce_source(access: ParamAccess) -> String {
    [COMMON_WGSL, access_source(access), REDUCE_WGSL].join("\n")
}

/// The compiled pipelines one optimizer uses.
#[derive(Debug)]
pub(crate) struct Pipelines {
    pub count: wgpu::ComputePipeline,
    pub update: wgpu::ComputePipeline,
    pub check_finite: wgpu::ComputePipeline,
    pub grad_sumsq: wgpu::ComputePipeline,
    pub finalize_clip: wgpu::ComputePipeline,
    pub finalize_scale: wgpu::ComputePipeline,
    pub advance_step: wgpu::ComputePipeline,
}

impl Pipelines {
    /// Compiles the pipelines inside error scopes ([`GpuContext::guarded`]).
    pub fn new(
        ctx: &GpuContext,
        algorithm: &Algorithm,
        state: ElementType,
        access: ParamAccess,
    ) -> crate::error::Result<Self> {
        ctx.guarded("compiling the optimizer's pipelines", || {
            Self::compile(ctx, algorithm, state, access)
        })
    }

    fn compile(
        ctx: &GpuContext,
        algorithm: &Algorithm,
        state: ElementType,
        access: ParamAccess,
    ) -> Self {
        let device = ctx.device();
        let subgroups = ctx.capabilities().subgroups;
        let algo = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(algorithm.name()),
            source: wgpu::ShaderSource::Wgsl(
                algorithm_source(algorithm, subgroups, state, access).into(),
            ),
        });
        let reduce = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("coptim reduce"),
            source: wgpu::ShaderSource::Wgsl(reduce_source(access).into()),
        });
        let nesterov = matches!(algorithm, Algorithm::Sgd { nesterov: true, .. });
        let constants: &[(&str, f64)] = if matches!(algorithm, Algorithm::Sgd { .. }) {
            if nesterov {
                &[("NESTEROV", 1.0)]
            } else {
                &[("NESTEROV", 0.0)]
            }
        } else {
            &[]
        };
        let make = |module: &wgpu::ShaderModule, entry: &str, constants: &[(&str, f64)]| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: true,
                },
                cache: None,
            })
        };
        Self {
            count: make(&algo, "count_agreement", constants),
            update: make(&algo, "update", constants),
            check_finite: make(&reduce, "check_finite", &[]),
            grad_sumsq: make(&reduce, "grad_sumsq", &[]),
            finalize_clip: make(&reduce, "finalize_clip", &[]),
            finalize_scale: make(&reduce, "finalize_scale", &[]),
            advance_step: make(&reduce, "advance_step", &[]),
        }
    }
}

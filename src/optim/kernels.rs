//! WGSL sources of the optimizer kernels and their compute pipelines.
//!
//! Each optimizer module is assembled by [`ShaderBuilder`] from generated constants
//! and parts in `shaders/`: the shared
//! declarations, the parameter access variant (vec4 for coptim's arenas, scalar for
//! views of a caller's buffers), the agreement-count reduction (subgroup or workgroup
//! variant), the state storage variant, the shared count and update entry points, the
//! gradient the algorithm sees (with coupled weight decay or without), and the
//! algorithm's hooks (its caution direction and its per-vec4 update), which its file
//! in `src/optim/algorithms/` adds.

use crate::arena::{ElementType, ParamAccess};
use crate::context::GpuContext;
use crate::optim::algorithms::Algorithm;
use crate::stream::StreamShape;
use crate::wgsl::{Part, ShaderBuilder, shader_part, workgroup_sum_part};

/// Shared structs, constants and block indexing.
pub static COMMON: Part = shader_part!(
    "optim_common.wgsl",
    &[
        "block_elem",
        "block_at",
        "block_lane",
        "block_index",
        "window_block",
        "grad_lane",
        "lane_grad",
        "lanes_valid",
        "is_finite4",
        "caution_mask",
        "decayed",
        "decay_reaches",
        "clipping",
        "count_agree",
        "count_nonfinite",
        "flag_loaded_nonfinite",
        "one_minus_pow",
        "torch_lerp",
    ],
    &["load_grad"],
);
/// The hooks every parameter access variant provides.
const PARAM_ACCESS: &[&str] = &["load_param", "store_param", "load_grad"];
/// Parameters and gradients as whole vec4s (coptim's arenas).
pub static PARAMS_VEC4: Part = shader_part!("params_vec4.wgsl", PARAM_ACCESS, &[]);
/// Parameters and gradients one f32 at a time (a caller's buffers at any offset).
pub static PARAMS_SCALAR: Part = shader_part!("params_scalar.wgsl", PARAM_ACCESS, &[]);
/// Agreement-count reduction with subgroup operations.
pub static COUNT_SUBGROUP: Part = shader_part!("count_subgroup.wgsl", &["add_block_count"], &[]);
/// Agreement-count reduction with a workgroup atomic (portable fallback).
pub static COUNT_WORKGROUP: Part = shader_part!("count_workgroup.wgsl", &["add_block_count"], &[]);
/// The codec every state storage variant provides: its `StateWord` (four elements)
/// and the conversions to and from f32 (the slots themselves come from [`state_slots`]).
const STATE_CODEC: &[&str] = &["state_decode", "state_encode"];
/// f32 optimizer state.
pub static STATE_F32: Part = shader_part!("state_f32.wgsl", STATE_CODEC, &[]);
/// bf16 optimizer state, two per u32 (every adapter).
pub static STATE_BF16: Part = shader_part!("state_bf16.wgsl", STATE_CODEC, &[]);
/// f16 optimizer state (needs `shader-f16`).
pub static STATE_F16: Part = shader_part!("state_f16.wgsl", STATE_CODEC, &[]);
/// The count and update entry points shared by every algorithm; the algorithm part
/// supplies its caution direction, its tensor terms and its fused per-vec4 update.
pub static STEP: Part = shader_part!(
    "optim_step.wgsl",
    &[
        "count_agreement",
        "update",
        "update_block",
        "measuring_context",
        "measuring_clip",
        "measuring_block",
    ],
    &[
        "caution_direction",
        "tensor_terms",
        "step_vec4",
        "step_grad",
        "add_block_count",
        "add_block_sums",
        "load_grad",
        "block_lane",
        "block_index",
        "window_block",
        "grad_lane",
    ],
);
/// Per-block float sums of an algorithm's tensor terms (LAMB).
pub static TENSOR_SUMS_BLOCK: Part = shader_part!(
    "tensor_sums_block.wgsl",
    &["add_block_sums"],
    &["workgroup_sum4", "tensor_terms"],
);
/// No tensor sums: the hooks of every element-wise algorithm.
pub static TENSOR_SUMS_NONE: Part = shader_part!(
    "tensor_sums_none.wgsl",
    &["tensor_terms", "add_block_sums"],
    &[],
);
/// The norm pass: per-block sums of an algorithm's norm terms (MARS), before the
/// measuring pass.
pub static MEASURE_NORMS: Part = shader_part!(
    "measure_norms.wgsl",
    &["measure_norms"],
    &[
        "norm_terms",
        "measuring_block",
        "grad_lane",
        "flag_loaded_nonfinite",
        "workgroup_sum4",
    ],
);
/// Per-segment float sums (AdamP's rows): the measuring rounds and the helpers of the
/// algorithm's per-tensor passes.
pub static TENSOR_SEGMENTS: Part = shader_part!(
    "tensor_segments.wgsl",
    &[
        "measure_segments",
        "count_segments",
        "update_segments",
        "segment_total",
        "segment_record",
    ],
    &[
        "segment_terms",
        "masked_terms",
        "segment_records_used",
        "step_vec4",
        "step_grad",
        "add_block_count",
        "measuring_block",
        "update_block",
        "block_elem",
        "block_at",
        "lane_grad",
        "load_grad",
        "flag_loaded_nonfinite",
    ],
);
/// The clipped gradient as the algorithm sees it (decoupled decay, or none).
pub static GRAD_DECAY_NONE: Part = shader_part!("grad_decay_none.wgsl", &["step_grad"], &[]);
/// The clipped gradient plus `wd * p` (coupled decay: reads the parameters).
pub static GRAD_DECAY_COUPLED: Part =
    shader_part!("grad_decay_coupled.wgsl", &["step_grad"], &["load_param"]);
/// A vec4 sum over a workgroup in a fixed order (`workgroup_sum4`; the vec4 twin of
/// [`crate::wgsl::lib::WORKGROUP_SUM`], with its own scratch).
pub static WORKGROUP_SUM4: Part =
    workgroup_sum_part!("workgroup_sum4", "sum4_scratch", "vec4<f32>");
/// Reductions: finite check, gradient norm, clip, caution scale, step advance.
pub static REDUCE: Part = shader_part!(
    "reduce.wgsl",
    &[
        "check_finite",
        "grad_sumsq",
        "finalize_clip",
        "finalize_sums",
        "finalize_scale",
        "advance_step",
    ],
    &[
        "window_block",
        "grad_lane",
        "flag_loaded_nonfinite",
        "block_index",
        "workgroup_sum",
        "workgroup_sum4",
        "caution_scale",
        "clip_coefficient"
    ],
);

/// Elements one workgroup handles (`BLOCK_ELEMS`): every [`StreamShape`] covers
/// this block (`4 * WG_SIZE * VEC_PER_THREAD`).
pub const BLOCK_ELEMS: u64 = 4096;
/// Segments one block touches at most (`MAX_PIECES`, tensor_segments.wgsl): each
/// block keeps this many piece records (its per-segment sums).
pub const SEGMENT_PIECES: u64 = 8;
/// Workgroup memory, in vec4s, of one sum over a block's pieces
/// (tensor_segments.wgsl's `piece_scratch`: `PIECE_BATCH` pieces of `WG_SIZE` each):
/// 8 KiB, which leaves room for the modules' other workgroup variables under
/// WebGPU's default 16 KiB.
const PIECE_SCRATCH_VEC4: u32 = 512;

/// Pieces one workgroup sums at once (`PIECE_BATCH`) in workgroups of `wg_size`: as
/// many as fit `PIECE_SCRATCH_VEC4` (512) vec4s, so that a workgroup pays for one
/// sum's barriers per batch of pieces instead of one per piece (all of a block's
/// pieces at once in small CPU-shaped workgroups, two at a time in a GPU's 256).
pub fn piece_batch(wg_size: u32) -> u32 {
    (PIECE_SCRATCH_VEC4 / wg_size).clamp(1, SEGMENT_PIECES as u32)
}

/// Parameter groups a single optimizer supports (`MAX_GROUPS`).
pub const MAX_GROUPS: usize = 16;
/// State tensors an algorithm may keep (bindings `STATE0` ..).
pub const MAX_STATES: usize = 4;

/// Binding indices of the optimizer modules (group 0), named once: Rust binds by these
/// and the WGSL reads them as `BINDING_<NAME>`.
pub mod binding {
    /// Declares each binding's constant and the table [`ALL`] from one list, so that a
    /// binding is named once.
    macro_rules! bindings {
        ($($(#[$doc:meta])* $name:ident = $index:literal;)*) => {
            $($(#[$doc])* pub const $name: u32 = $index;)*

            /// Every binding by its WGSL name (without the `BINDING_` prefix).
            pub const ALL: &[(&str, u32)] = &[$((stringify!($name), $name)),*];
        };
    }

    bindings! {
        /// Parameter window (`params`).
        PARAMS = 0;
        /// Gradient window (`grads`).
        GRADS = 1;
        /// First state tensor (`state0`).
        STATE0 = 2;
        /// Second state tensor (`state1`: AdamW, LAMB, ...).
        STATE1 = 3;
        /// Block table of the dispatch (`blocks`).
        BLOCKS = 4;
        /// Per-tensor table (`tensors`).
        TENSORS = 5;
        /// Step parameters (`step`).
        STEP = 6;
        /// Status, read as a uniform (`status`).
        STATUS = 7;
        /// Dispatch grid (`window`).
        WINDOW = 8;
        /// Per-block records: agreement count and float sums (`partials`).
        PARTIALS = 9;
        /// Status, written by the reductions (`status_rw`).
        STATUS_RW = 10;
        /// Third state tensor (`state2`).
        STATE2 = 11;
        /// Fourth state tensor (`state3`).
        STATE3 = 12;
    }

    /// The state bindings, in state order: state `k` is bound at `STATES[k]`.
    pub const STATES: [u32; super::MAX_STATES] = [STATE0, STATE1, STATE2, STATE3];
}

/// Declares the state slots `state0` .. `state3` (array<StateWord> at `BINDING_STATE<k>`)
/// and their `load_state<k>(i)` / `store_state<k>(i, v)` through the state variant's
/// codec. A pass binds only the slots its entry point reads.
fn state_slots(mut module: ShaderBuilder) -> ShaderBuilder {
    for k in 0..MAX_STATES {
        module = module
            .declare(format!(
                "@group(0) @binding(BINDING_STATE{k}) var<storage, read_write> state{k}: array<StateWord>;"
            ))
            .function(
                format!("load_state{k}"),
                format!("fn load_state{k}(i: u32) -> vec4<f32> {{ return state_decode(state{k}[i]); }}"),
            )
            .function(
                format!("store_state{k}"),
                format!("fn store_state{k}(i: u32, v: vec4<f32>) {{ state{k}[i] = state_encode(v); }}"),
            );
    }
    module
}

/// The generated constants every optimizer module starts with, and its shared parts.
fn base_module(label: &str, access: ParamAccess, shape: StreamShape) -> ShaderBuilder {
    ShaderBuilder::new(label)
        .bindings(binding::ALL)
        .constant("WG_SIZE", shape.wg_size)
        .constant("VEC_PER_THREAD", shape.vec_per_thread)
        .constant("MAX_GROUPS", MAX_GROUPS as u32)
        .part(&crate::wgsl::lib::GRID)
        .part(&COMMON)
        .part(match access {
            ParamAccess::Vec4 => &PARAMS_VEC4,
            ParamAccess::Scalar => &PARAMS_SCALAR,
        })
}

/// The builder of an algorithm's module, its workgroups shaped by `shape`.
pub fn algorithm_module(
    algorithm: &Algorithm,
    subgroups: bool,
    state: ElementType,
    access: ParamAccess,
    shape: StreamShape,
) -> ShaderBuilder {
    let mut module = base_module(algorithm.name(), access, shape);
    if state == ElementType::F16 {
        module = module.enable("f16");
    }
    module = state_slots(module)
        .part(if subgroups {
            &COUNT_SUBGROUP
        } else {
            &COUNT_WORKGROUP
        })
        .part(match state {
            ElementType::F32 => &STATE_F32,
            ElementType::Bf16 => &STATE_BF16,
            ElementType::F16 => &STATE_F16,
        })
        .part(&STEP)
        .part(if algorithm.coupled_decay() {
            &GRAD_DECAY_COUPLED
        } else {
            &GRAD_DECAY_NONE
        })
        .part(if algorithm.needs_tensor_sums() {
            &TENSOR_SUMS_BLOCK
        } else {
            &TENSOR_SUMS_NONE
        });
    if algorithm.norm_pass_states().is_some() {
        module = module.part(&MEASURE_NORMS);
    }
    if algorithm.needs_segment_sums() {
        module = module
            .constant("MAX_PIECES", SEGMENT_PIECES as u32)
            .constant("PIECE_BATCH", piece_batch(shape.wg_size))
            .part(&TENSOR_SEGMENTS);
    }
    if algorithm.needs_tensor_sums()
        || algorithm.needs_segment_sums()
        || algorithm.norm_pass_states().is_some()
    {
        module = module.part(&WORKGROUP_SUM4);
    }
    algorithm.rules().shader(module)
}

/// The full WGSL of an algorithm's module (see [`algorithm_module`]).
pub fn algorithm_source(
    algorithm: &Algorithm,
    subgroups: bool,
    state: ElementType,
    access: ParamAccess,
    shape: StreamShape,
) -> String {
    algorithm_module(algorithm, subgroups, state, access, shape)
        .build()
        .expect("the optimizer's parts fit together (tested)")
}

/// The builder of the reduction module, its workgroups shaped by `shape`.
pub fn reduce_module(access: ParamAccess, shape: StreamShape) -> ShaderBuilder {
    base_module("coptim reduce", access, shape)
        .part(&crate::wgsl::lib::WORKGROUP_SUM)
        .part(&WORKGROUP_SUM4)
        .part(&crate::wgsl::lib::CAUTION_SCALE)
        .part(&crate::wgsl::lib::CLIP_COEFFICIENT)
        .part(&REDUCE)
}

/// The full WGSL of the reduction module (see [`reduce_module`]).
pub fn reduce_source(access: ParamAccess, shape: StreamShape) -> String {
    reduce_module(access, shape)
        .build()
        .expect("the reduction's parts fit together (tested)")
}

/// The pipelines of a norm pass ([`Algorithm::norm_pass_states`]).
#[derive(Debug)]
pub(crate) struct NormPipelines {
    pub measure: wgpu::ComputePipeline,
    pub finalize: wgpu::ComputePipeline,
}

/// The compiled pipelines one optimizer uses.
#[derive(Debug)]
pub(crate) struct Pipelines {
    pub count: wgpu::ComputePipeline,
    pub update: wgpu::ComputePipeline,
    pub check_finite: wgpu::ComputePipeline,
    pub grad_sumsq: wgpu::ComputePipeline,
    pub finalize_clip: wgpu::ComputePipeline,
    /// The norm pass and its per-tensor sums, for algorithms with one.
    pub norms: Option<NormPipelines>,
    pub finalize_scale: wgpu::ComputePipeline,
    pub advance_step: wgpu::ComputePipeline,
    /// The segment passes of an algorithm with segment sums.
    pub segments: Option<SegmentPipelines>,
}

/// The passes of an algorithm with segment sums (tensor_segments.wgsl): round 1 and
/// its per-tensor pass; the per-tensor pass of round 2 (`count_segments`, which is
/// then [`Pipelines::count`]).
#[derive(Debug)]
pub(crate) struct SegmentPipelines {
    pub measure: wgpu::ComputePipeline,
    pub finalize: wgpu::ComputePipeline,
    pub finalize_masked: wgpu::ComputePipeline,
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
        let shape = ctx.stream_shape();
        let algo = algorithm_module(algorithm, subgroups, state, access, shape)
            .create_module(device)
            .expect("the optimizer's parts fit together (tested)");
        let reduce = reduce_module(access, shape)
            .create_module(device)
            .expect("the reduction's parts fit together (tested)");
        let make = |module: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[],
                    zero_initialize_workgroup_memory: true,
                },
                cache: None,
            })
        };
        let segmented = algorithm.needs_segment_sums();
        let segments = segmented.then(|| SegmentPipelines {
            measure: make(&algo, "measure_segments"),
            finalize: make(&algo, "finalize_segments"),
            finalize_masked: make(&algo, "finalize_masked"),
        });
        Self {
            count: make(
                &algo,
                if segmented {
                    "count_segments"
                } else {
                    "count_agreement"
                },
            ),
            segments,
            update: make(
                &algo,
                if segmented {
                    "update_segments"
                } else {
                    "update"
                },
            ),
            check_finite: make(&reduce, "check_finite"),
            grad_sumsq: make(&reduce, "grad_sumsq"),
            finalize_clip: make(&reduce, "finalize_clip"),
            norms: algorithm.norm_pass_states().map(|_| NormPipelines {
                measure: make(&algo, "measure_norms"),
                finalize: make(&reduce, "finalize_sums"),
            }),
            finalize_scale: make(&reduce, "finalize_scale"),
            advance_step: make(&reduce, "advance_step"),
        }
    }
}

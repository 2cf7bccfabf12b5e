//! The GPU buffers and bind groups one optimizer owns: its tensor table, step
//! parameters, status and scratch, and the bind groups of every dispatch.
//!
//! Binding indices are the named ones of [`binding`], which the WGSL reads as
//! generated `BINDING_*` constants.

use wgpu::util::DeviceExt;

use crate::arena::{Arena, ParamSet, Window};
use crate::error::{Error, Result};
use crate::optim::algorithms::Algorithm;
use crate::optim::gpu_types::{
    GpuBlockPartial, GpuStatus, GpuStepParams, GpuTensorEntry, GpuWindowInfo,
};
use crate::optim::kernels::{MAX_GROUPS, Pipelines, SEGMENT_PIECES, binding};
use crate::optim::plan::{Placement, Plan, Span, WindowPlan};

/// Bindings used by the update pass, besides every state tensor.
const UPDATE: &[u32] = &[
    binding::PARAMS,
    binding::GRADS,
    binding::BLOCKS,
    binding::TENSORS,
    binding::STEP,
    binding::STATUS,
    binding::WINDOW,
];
/// Bindings used by the count pass, besides the state tensors it reads.
const COUNT: &[u32] = &[
    binding::GRADS,
    binding::BLOCKS,
    binding::TENSORS,
    binding::STEP,
    binding::WINDOW,
    binding::PARTIALS,
    binding::STATUS_RW,
];
/// Bindings used by the norm pass, besides the state tensors it reads.
const NORMS: &[u32] = &[
    binding::GRADS,
    binding::BLOCKS,
    binding::TENSORS,
    binding::STEP,
    binding::WINDOW,
    binding::PARTIALS,
    binding::STATUS_RW,
];
const CHECK_FINITE: &[u32] = &[
    binding::GRADS,
    binding::BLOCKS,
    binding::WINDOW,
    binding::STATUS_RW,
];
const GRAD_SUMSQ: &[u32] = &[
    binding::GRADS,
    binding::BLOCKS,
    binding::WINDOW,
    binding::STATUS_RW,
    binding::PARTIALS,
];
const FINALIZE_SCALE: &[u32] = &[
    binding::TENSORS,
    binding::STEP,
    binding::WINDOW,
    binding::PARTIALS,
];
const FINALIZE_SUMS: &[u32] = &[binding::TENSORS, binding::WINDOW, binding::PARTIALS];
const FINALIZE_CLIP: &[u32] = &[binding::STEP, binding::STATUS_RW, binding::PARTIALS];
/// Bindings of the per-tensor passes of the segment sums (an algorithm's own).
const FINALIZE_SEGMENTS: &[u32] = FINALIZE_SCALE;
const ADVANCE_STEP: &[u32] = &[binding::STEP, binding::STATUS_RW];
/// The bindings read as uniforms; every other binding is a storage buffer.
const UNIFORMS: &[u32] = &[binding::STEP, binding::STATUS, binding::WINDOW];

/// `base` and the first `k` state bindings: a pass that reads `k` state tensors binds
/// those.
fn with_states(base: &[u32], k: usize) -> Vec<u32> {
    [base, &binding::STATES[..k]].concat()
}

/// The bindings of the update pass of an algorithm keeping `states` state tensors
/// (and reading its segment records when `segments`).
fn update_bindings(states: usize, segments: bool) -> Vec<u32> {
    let mut update = with_states(UPDATE, states);
    if segments {
        update.push(binding::PARTIALS);
    }
    update
}

/// The bindings of the measuring pass, which reads the first `states` state tensors
/// (and the parameters when `reads_params`: tensor sums, coupled decay).
fn count_bindings(states: usize, reads_params: bool) -> Vec<u32> {
    let mut count = with_states(COUNT, states);
    if reads_params {
        count.push(binding::PARAMS);
    }
    count
}

/// Checks that every pass of `algorithm` binds no more storage buffers than the
/// device's `max_storage_buffers_per_shader_stage` (WebGPU's default is 8), so that a
/// member too wide for the device fails at construction with
/// [`Error::LimitExceeded`] rather than when its pipelines are created.
pub(crate) fn check_storage_budget(algorithm: &Algorithm, limits: &wgpu::Limits) -> Result<()> {
    let mut passes = vec![
        (
            "update",
            update_bindings(
                algorithm.state_names().len(),
                algorithm.needs_segment_sums(),
            ),
        ),
        (
            "measuring",
            count_bindings(
                algorithm.count_pass_states(),
                algorithm.count_reads_params(),
            ),
        ),
        ("gradient norm", GRAD_SUMSQ.to_vec()),
    ];
    if let Some(k) = algorithm.norm_pass_states() {
        passes.push(("norm", with_states(NORMS, k)));
    }
    let allowed = limits.max_storage_buffers_per_shader_stage;
    for (pass, used) in passes {
        let needed = used.iter().filter(|b| !UNIFORMS.contains(b)).count() as u32;
        if needed > allowed {
            return Err(Error::LimitExceeded {
                what: format!(
                    "the {pass} pass of `{}` (storage buffers per shader stage, \
                     max_storage_buffers_per_shader_stage)",
                    algorithm.name()
                ),
                needed: needed.into(),
                allowed: allowed.into(),
            });
        }
    }
    Ok(())
}

/// The buffers every dispatch of a step shares.
#[derive(Debug)]
pub(crate) struct StepBuffers {
    /// Per-tensor table (`TensorEntry`).
    pub tensor_table: wgpu::Buffer,
    /// `StepParams`, rewritten (through the upload ring) before every step.
    pub step_params: wgpu::Buffer,
    /// `StatusRw` / `StatusView`.
    pub status: wgpu::Buffer,
    /// Per-block records (`BlockPartial`): agreement counts and float sums; then, for
    /// an algorithm with segment sums, the piece and segment records.
    pub partials: wgpu::Buffer,
    /// The records of the blocks themselves (the first ones of `partials`).
    pub block_records: u64,
}

/// Where the records of `partials` lie (`shaders/tensor_segments.wgsl`).
#[derive(Debug, Clone)]
pub(crate) struct PartialsLayout {
    /// Records of the blocks (and the first piece record).
    pub blocks: u64,
    /// Each tensor's segment length and first segment record.
    pub segments: Vec<(u64, u64)>,
    /// Records in all.
    pub records: u64,
}

impl PartialsLayout {
    /// The records of `plan` for tensors with segments of `seg_lens[t]` elements
    /// (all 0: only the blocks' records).
    pub fn new(plan: &Plan, numel: &[u64], seg_lens: &[u64]) -> Self {
        let blocks = plan.total_blocks.max(1) as u64;
        let mut next = if seg_lens.iter().any(|&l| l != 0) {
            blocks * (1 + SEGMENT_PIECES)
        } else {
            blocks
        };
        let segments = numel
            .iter()
            .zip(seg_lens)
            .map(|(&n, &len)| {
                let first = next;
                next += 2 * n.checked_div(len).unwrap_or(0);
                (len, first)
            })
            .collect();
        Self {
            blocks,
            segments,
            records: next,
        }
    }

    /// Bytes of the partials buffer.
    pub fn bytes(&self) -> u64 {
        self.records * std::mem::size_of::<GpuBlockPartial>() as u64
    }
}

impl StepBuffers {
    /// Creates the shared buffers for `plan` with each tensor's group and the
    /// partials laid out as `partials` says.
    pub fn new(
        device: &wgpu::Device,
        set: &ParamSet,
        plan: &Plan,
        groups: &[usize],
        partials: &PartialsLayout,
    ) -> Self {
        let entries: Vec<GpuTensorEntry> = set
            .tensors()
            .iter()
            .enumerate()
            .map(|(t, info)| GpuTensorEntry {
                group: groups[t] as u32,
                numel: info.len as u32,
                first_block: plan.tensors[t].first,
                num_blocks: plan.tensors[t].count,
                scale: 1.0,
                kept: 0,
                seg_len: partials.segments[t].0 as u32,
                first_segment: partials.segments[t].1 as u32,
                rank: info.shape.len() as u32,
                pad: [0; 3],
                sums: [0.0; 4],
            })
            .collect();
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let initial_status = GpuStatus {
            found_inf: 0,
            step: 0,
            clip_coef: 1.0,
            grad_norm: 0.0,
            bias: [[0.0; 4]; MAX_GROUPS],
        };
        Self {
            tensor_table: device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("coptim tensor table"),
                contents: bytemuck::cast_slice(&entries),
                usage: storage,
            }),
            step_params: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("coptim step params"),
                size: std::mem::size_of::<GpuStepParams>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            status: device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("coptim status"),
                contents: bytemuck::bytes_of(&initial_status),
                usage: storage | wgpu::BufferUsages::UNIFORM,
            }),
            partials: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("coptim block partials"),
                size: partials.bytes(),
                usage: storage,
                mapped_at_creation: false,
            }),
            block_records: partials.blocks,
        }
    }
}

/// Bind groups of one dispatch (one binding window).
#[derive(Debug)]
pub(crate) struct WindowBindings {
    pub grid: (u32, u32),
    pub count: wgpu::BindGroup,
    pub update: wgpu::BindGroup,
    pub check_finite: wgpu::BindGroup,
    pub grad_sumsq: wgpu::BindGroup,
    /// The norm pass, for algorithms with one.
    pub norms: Option<wgpu::BindGroup>,
    /// Round 1 of the segment sums (`measure_segments`), for algorithms with them.
    pub measure: Option<wgpu::BindGroup>,
}

/// Bind groups of the one-workgroup and per-tensor reductions.
#[derive(Debug)]
pub(crate) struct ReduceBindings {
    pub finalize_scale: wgpu::BindGroup,
    pub tensor_grid: (u32, u32),
    pub finalize_clip: wgpu::BindGroup,
    pub advance: wgpu::BindGroup,
    /// The per-tensor sums after a norm pass, for algorithms with one.
    pub finalize_sums: Option<wgpu::BindGroup>,
    /// The per-tensor passes of the segment sums (rounds 1 and 2), for algorithms with
    /// them.
    pub segments: Option<(wgpu::BindGroup, wgpu::BindGroup)>,
}

/// What the bind groups of every dispatch are built from.
pub(crate) struct BindingSources<'a> {
    pub device: &'a wgpu::Device,
    pub pipelines: &'a Pipelines,
    pub buffers: &'a StepBuffers,
    /// The distinct buffers holding parameters and gradients.
    pub tensor_buffers: &'a [wgpu::Buffer],
    pub state: &'a [Arena],
    /// The algorithm's measuring pass reads the parameters (tensor terms, coupled decay).
    pub count_reads_params: bool,
    /// How many state tensors (the first ones) the count pass reads.
    pub count_states: usize,
    /// How many state tensors (the first ones) the norm pass reads, if it runs.
    pub norm_states: Option<usize>,
}

impl BindingSources<'_> {
    /// The bind groups of dispatch `w`.
    pub fn window(&self, w: usize, wp: &WindowPlan) -> WindowBindings {
        let blocks = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("coptim block table"),
                contents: if wp.blocks.is_empty() {
                    &[0u8; std::mem::size_of::<crate::optim::plan::GpuBlock>()]
                } else {
                    bytemuck::cast_slice(&wp.blocks)
                },
                usage: wgpu::BufferUsages::STORAGE,
            });
        let info = self.window_info("coptim window info", wp.blocks.len() as u32, wp.grid.0);
        let mut all = self.step_entries(&info);
        all.extend([
            (
                binding::PARAMS,
                span_resource(self.tensor_buffers, wp.param),
            ),
            (binding::GRADS, span_resource(self.tensor_buffers, wp.grad)),
            (binding::BLOCKS, blocks.as_entire_binding()),
            (binding::STATUS, self.buffers.status.as_entire_binding()),
        ]);
        for (slot, arena) in binding::STATES.iter().zip(self.state) {
            all.push((*slot, window_resource(arena, wp.window)));
        }
        let p = self.pipelines;
        let make = |pipeline: &wgpu::ComputePipeline, used: &[u32], label: &str| {
            bind_group(
                self.device,
                pipeline,
                &all,
                used,
                &format!("{label} window {w}"),
            )
        };
        let update = update_bindings(self.state.len(), p.segments.is_some());
        let count = count_bindings(self.count_states, self.count_reads_params);
        let norms = p
            .norms
            .as_ref()
            .zip(self.norm_states)
            .map(|(n, k)| make(&n.measure, &with_states(NORMS, k), "measure_norms"));
        WindowBindings {
            grid: wp.grid,
            count: make(&p.count, &count, "count"),
            update: make(&p.update, &update, "update"),
            check_finite: make(&p.check_finite, CHECK_FINITE, "check_finite"),
            grad_sumsq: make(&p.grad_sumsq, GRAD_SUMSQ, "grad_sumsq"),
            norms,
            measure: p
                .segments
                .as_ref()
                .map(|s| make(&s.measure, &count, "measure")),
        }
    }

    /// The bind groups of the reductions over `num_tensors` tensors laid on `grid`.
    pub fn reduce(&self, num_tensors: u32, grid: (u32, u32)) -> ReduceBindings {
        let info = self.window_info("coptim tensor grid", num_tensors, grid.0);
        let all = self.step_entries(&info);
        let p = self.pipelines;
        let make = |pipeline: &wgpu::ComputePipeline, used: &[u32], label: &str| {
            bind_group(self.device, pipeline, &all, used, label)
        };
        // The clip sums every record it is given: only the blocks' are bound.
        let bytes = self.buffers.block_records * std::mem::size_of::<GpuBlockPartial>() as u64;
        let mut blocks_only = self.step_entries(&info);
        for (b, resource) in &mut blocks_only {
            if *b == binding::PARTIALS {
                *resource = wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.buffers.partials,
                    offset: 0,
                    size: wgpu::BufferSize::new(bytes),
                });
            }
        }
        ReduceBindings {
            finalize_scale: make(&p.finalize_scale, FINALIZE_SCALE, "finalize_scale"),
            tensor_grid: grid,
            finalize_clip: bind_group(
                self.device,
                &p.finalize_clip,
                &blocks_only,
                FINALIZE_CLIP,
                "finalize_clip",
            ),
            advance: make(&p.advance_step, ADVANCE_STEP, "advance_step"),
            finalize_sums: p
                .norms
                .as_ref()
                .map(|n| make(&n.finalize, FINALIZE_SUMS, "finalize_sums")),
            segments: p.segments.as_ref().map(|s| {
                (
                    make(&s.finalize, FINALIZE_SEGMENTS, "finalize_segments"),
                    make(&s.finalize_masked, FINALIZE_SEGMENTS, "finalize_masked"),
                )
            }),
        }
    }

    /// The entries every dispatch of a step can bind: the shared step buffers and the
    /// dispatch's grid `info`.
    fn step_entries<'a>(&'a self, info: &'a wgpu::Buffer) -> Vec<(u32, wgpu::BindingResource<'a>)> {
        let b = self.buffers;
        vec![
            (binding::TENSORS, b.tensor_table.as_entire_binding()),
            (binding::STEP, b.step_params.as_entire_binding()),
            (binding::WINDOW, info.as_entire_binding()),
            (binding::PARTIALS, b.partials.as_entire_binding()),
            (binding::STATUS_RW, b.status.as_entire_binding()),
        ]
    }

    fn window_info(&self, label: &str, num_blocks: u32, grid_x: u32) -> wgpu::Buffer {
        let info = GpuWindowInfo {
            num_blocks,
            grid_x,
            pad: [0; 2],
        };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(&info),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }
}

/// The distinct buffers holding parameters and gradients, and where each tensor's
/// parameters and gradients are in them.
pub(crate) fn buffer_places(set: &ParamSet) -> (Vec<wgpu::Buffer>, Vec<Placement>) {
    let mut buffers: Vec<wgpu::Buffer> = Vec::new();
    let mut index_of = |b: &wgpu::Buffer| match buffers.iter().position(|x| x == b) {
        Some(i) => i,
        None => {
            buffers.push(b.clone());
            buffers.len() - 1
        }
    };
    let places = set
        .tensors()
        .iter()
        .map(|t| Placement {
            param: (index_of(&t.param.buffer), t.param.offset),
            grad: (index_of(&t.grad.buffer), t.grad.offset),
        })
        .collect();
    (buffers, places)
}

/// The binding of a span of one of `buffers`.
fn span_resource(buffers: &[wgpu::Buffer], span: Span) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: &buffers[span.buffer],
        offset: span.offset,
        size: wgpu::BufferSize::new(span.size),
    })
}

/// The part of `arena` that a window covers.
fn window_resource(arena: &Arena, win: Window) -> wgpu::BindingResource<'_> {
    let bytes = arena.dtype().bytes();
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: &arena.buffers()[win.segment],
        offset: win.start * bytes,
        size: wgpu::BufferSize::new((win.len * bytes).next_multiple_of(4)),
    })
}

/// A bind group for `pipeline` with the entries of `all` whose binding is in `used`.
fn bind_group(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    all: &[(u32, wgpu::BindingResource<'_>)],
    used: &[u32],
    label: &str,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = all
        .iter()
        .filter(|(b, _)| used.contains(b))
        .map(|(b, r)| wgpu::BindGroupEntry {
            binding: *b,
            resource: r.clone(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::kernels::MAX_STATES;

    /// Every member's state tensors have a slot each.
    #[test]
    fn every_member_fits_the_state_slots() {
        for algorithm in Algorithm::members() {
            assert!(
                algorithm.state_names().len() <= MAX_STATES,
                "{}",
                algorithm.name()
            );
        }
    }
}

//! The GPU buffers and bind groups one optimizer owns: its tensor table, step
//! parameters, status and scratch, and the bind groups of every dispatch.
//!
//! Binding indices are the named ones of [`binding`], which the WGSL reads as
//! generated `BINDING_*` constants.

use wgpu::util::DeviceExt;

use crate::arena::{Arena, ParamSet, Window};
use crate::optim::gpu_types::{
    GpuBlockPartial, GpuStatus, GpuStepParams, GpuTensorEntry, GpuWindowInfo,
};
use crate::optim::kernels::{MAX_GROUPS, Pipelines, binding};
use crate::optim::plan::{Placement, Plan, Span, WindowPlan};

/// The state bindings, in state order: a pass that reads `k` state tensors binds the
/// first `k`.
const STATES: &[u32] = &[binding::STATE0, binding::STATE1, binding::STATE2];
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
const FINALIZE_CLIP: &[u32] = &[binding::STEP, binding::STATUS_RW, binding::PARTIALS];
const ADVANCE_STEP: &[u32] = &[binding::STEP, binding::STATUS_RW];

/// The buffers every dispatch of a step shares.
#[derive(Debug)]
pub(crate) struct StepBuffers {
    /// Per-tensor table (`TensorEntry`).
    pub tensor_table: wgpu::Buffer,
    /// `StepParams`, rewritten (through the upload ring) before every step.
    pub step_params: wgpu::Buffer,
    /// `StatusRw` / `StatusView`.
    pub status: wgpu::Buffer,
    /// Per-block records (`BlockPartial`): agreement counts and float sums.
    pub partials: wgpu::Buffer,
}

impl StepBuffers {
    /// Creates the shared buffers for `plan` with each tensor's group.
    pub fn new(device: &wgpu::Device, set: &ParamSet, plan: &Plan, groups: &[usize]) -> Self {
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
                pad: [0; 2],
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
        let partial_bytes =
            (plan.total_blocks.max(1) as u64) * std::mem::size_of::<GpuBlockPartial>() as u64;
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
                size: partial_bytes,
                usage: storage,
                mapped_at_creation: false,
            }),
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
}

/// Bind groups of the one-workgroup and per-tensor reductions.
#[derive(Debug)]
pub(crate) struct ReduceBindings {
    pub finalize_scale: wgpu::BindGroup,
    pub tensor_grid: (u32, u32),
    pub finalize_clip: wgpu::BindGroup,
    pub advance: wgpu::BindGroup,
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
        for (k, arena) in self.state.iter().enumerate() {
            all.push((STATES[k], window_resource(arena, wp.window)));
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
        let with_states = |base: &[u32], k: usize| [base, &STATES[..k]].concat();
        let update = with_states(UPDATE, self.state.len());
        let mut count = with_states(COUNT, self.count_states);
        if self.count_reads_params {
            // 8 storage bindings with two states: WebGPU's default per-stage limit.
            count.push(binding::PARAMS);
        }
        WindowBindings {
            grid: wp.grid,
            count: make(&p.count, &count, "count"),
            update: make(&p.update, &update, "update"),
            check_finite: make(&p.check_finite, CHECK_FINITE, "check_finite"),
            grad_sumsq: make(&p.grad_sumsq, GRAD_SUMSQ, "grad_sumsq"),
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
        ReduceBindings {
            finalize_scale: make(&p.finalize_scale, FINALIZE_SCALE, "finalize_scale"),
            tensor_grid: grid,
            finalize_clip: make(&p.finalize_clip, FINALIZE_CLIP, "finalize_clip"),
            advance: make(&p.advance_step, ADVANCE_STEP, "advance_step"),
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

//! The global gradient norm of the optimizers with kernels of their own (Muon, the
//! Adafactor family; `shaders/grad_norm.wgsl`): before their step, one pass over every
//! gradient sums the squares per chunk and flags a NaN or infinity, and one workgroup
//! sums the chunks in a fixed order into the norm and its clip coefficient (the
//! element-wise engine's two passes, `reduce.wgsl`'s `grad_sumsq` and
//! `finalize_clip`, on the per-chunk partials of `lib/chunk_partials.wgsl`). The
//! step's status (`OwnStatus`) then tells their passes whether to skip the step and
//! by what to scale the gradients, and the step's record reads it.

use wgpu::util::DeviceExt;

use crate::arena::ParamTensor;
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::own_kernels::{
    CHUNK, Slot, bind_group, chunked_module, layout, pipelines, view_binding,
};
use crate::optim::plan::grid_for;
use crate::wgsl::{Part, ShaderBuilder, WgslStruct, lib, shader_part, wgsl_struct};

/// `grad_norm.wgsl`.
static GRAD_NORM: Part = shader_part!(
    "grad_norm.wgsl",
    &[],
    &[
        "chunk_of",
        "chunk_element",
        "workgroup_sum",
        "partials_sum",
        "clip_coefficient",
        "skipping",
    ]
);

/// Bytes of one chunk's partial (two words).
const PARTIAL_BYTES: u64 = 8;
/// `grad_norm.wgsl`'s bindings: tensor, grad, partials, status.
const SLOTS: [Slot; 4] = [Slot::Uniform, Slot::Read, Slot::ReadWrite, Slot::ReadWrite];
/// The entry points, in pass order.
const ENTRIES: [&str; 2] = ["measure_norm", "finalize_norm"];
/// Bytes of `OwnStatus`.
pub(crate) const STATUS_BYTES: u64 = std::mem::size_of::<GpuOwnStatus>() as u64;
/// Byte offset of `OwnStatus.step` (completed steps).
const STEP_OFFSET: u64 = 4;
/// Byte offset of `NormTensor.clip_max_norm`.
const CLIP_OFFSET: u64 = 16;

/// `OwnStatus` of `lib/own_status.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GpuOwnStatus {
    pub found_inf: u32,
    pub step: u32,
    pub clip_coef: f32,
    pub grad_norm: f32,
    pub skipped: u32,
    pub pad: [u32; 3],
}

wgsl_struct! {
    /// The kernels' uniform (`tensor`): one tensor's gradient elements and chunk
    /// partials (`finalize_norm`: every chunk, from 0) and the clip norm (0: none).
    struct NormTensor {
        len: u32,
        grad_base: u32,
        partial_base: u32,
        chunks: u32,
        clip_max_norm: f32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

/// The module of `grad_norm.wgsl` with its constants and helpers.
pub(crate) fn shader() -> ShaderBuilder {
    chunked_module("coptim gradient norm")
        .declare(NormTensor::WGSL)
        .part(&lib::CLIP_COEFFICIENT)
        .part(&lib::OWN_STATUS)
        .part(&GRAD_NORM)
}

/// One dispatch with everything bound.
#[derive(Debug)]
struct Launch {
    /// Its `NormTensor`.
    words: wgpu::Buffer,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    grid: (u32, u32),
}

/// The norm passes over a set of gradients and the step status they leave.
#[derive(Debug)]
pub(crate) struct GradNorm {
    launches: Vec<Launch>,
    status: wgpu::Buffer,
}

impl GradNorm {
    /// The passes over the gradients of `tensors`, not clipping (the coefficient
    /// stays 1 until [`GradNorm::set_clip`]); `who` names the optimizer in errors.
    pub fn new(ctx: &GpuContext, tensors: &[ParamTensor], who: &str) -> Result<Self> {
        let layout = layout(ctx, "coptim gradient norm", &SLOTS);
        let pipes = pipelines(ctx, &shader(), &layout, &ENTRIES, who)?;
        let total: u64 = tensors.iter().map(|t| t.len.div_ceil(CHUNK)).sum();
        let device = ctx.device();
        let partials = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("coptim gradient norm partials"),
            size: total.max(1) * PARTIAL_BYTES,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let status = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("coptim optimizer status"),
            size: STATUS_BYTES,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let shared = Shared {
            ctx,
            layout: &layout,
            partials: &partials,
            status: &status,
        };
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        let mut launches = Vec::with_capacity(tensors.len() + 1);
        let mut partial_base = 0u64;
        for t in tensors {
            let (grad, grad_base) = view_binding(ctx, t, &t.grad, who)?;
            let chunks = t.len.div_ceil(CHUNK);
            let words = NormTensor {
                len: t.len as u32,
                grad_base,
                partial_base: partial_base as u32,
                chunks: chunks as u32,
                ..Default::default()
            };
            let grid = grid_for(chunks as u32, max)?;
            launches.push(shared.launch(&pipes[0], words, grad, grid));
            partial_base += chunks;
        }
        if let Some(first) = tensors.first() {
            let (grad, _) = view_binding(ctx, first, &first.grad, who)?;
            let words = NormTensor {
                chunks: total as u32,
                ..Default::default()
            };
            launches.push(shared.launch(&pipes[1], words, grad, (1, 1)));
        }
        Ok(Self { launches, status })
    }

    /// Clips the global norm of the steps recorded from now on to `max_norm`
    /// (`None`: no clipping). Fails, changing nothing, unless it is finite and
    /// positive.
    pub fn set_clip(&self, ctx: &GpuContext, max_norm: Option<f64>, who: &str) -> Result<()> {
        let word = match max_norm {
            None => 0.0f32,
            Some(c) if c.is_finite() && c > 0.0 => c as f32,
            Some(c) => {
                return Err(Error::InvalidConfig(format!(
                    "{who}: clip_grad_norm {c} is not a finite positive number"
                )));
            }
        };
        for l in &self.launches {
            ctx.queue()
                .write_buffer(&l.words, CLIP_OFFSET, bytemuck::bytes_of(&word));
        }
        Ok(())
    }

    /// Records the step's norm passes into `encoder` (after clearing the flag).
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.clear_buffer(&self.status, 0, Some(4));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("coptim gradient norm"),
            timestamp_writes: None,
        });
        for l in &self.launches {
            pass.set_pipeline(&l.pipeline);
            pass.set_bind_group(0, &l.bind_group, &[]);
            pass.dispatch_workgroups(l.grid.0, l.grid.1, 1);
        }
    }

    /// The status buffer (`OwnStatus`).
    pub fn status(&self) -> &wgpu::Buffer {
        &self.status
    }

    /// Reads the status (every recorded step must have been submitted).
    pub async fn read(&self, ctx: &GpuContext) -> Result<GpuOwnStatus> {
        let bytes = crate::arena::read_buffer(ctx, &self.status, 0, STATUS_BYTES).await?;
        Ok(bytemuck::pod_read_unaligned(&bytes))
    }

    /// Queues a write of the completed steps (a restored state's).
    pub fn set_completed(&self, ctx: &GpuContext, steps: u32) {
        ctx.queue()
            .write_buffer(&self.status, STEP_OFFSET, bytemuck::bytes_of(&steps));
    }
}

/// What every launch binds besides its tensor.
struct Shared<'a> {
    ctx: &'a GpuContext,
    layout: &'a wgpu::BindGroupLayout,
    partials: &'a wgpu::Buffer,
    status: &'a wgpu::Buffer,
}

impl Shared<'_> {
    /// The launch of `pipeline` over the chunks `words` describe.
    fn launch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        words: NormTensor,
        grad: wgpu::BufferBinding<'_>,
        grid: (u32, u32),
    ) -> Launch {
        let words = uniform_rw(self.ctx, bytemuck::bytes_of(&words));
        let bindings = [
            words.as_entire_buffer_binding(),
            grad,
            self.partials.as_entire_buffer_binding(),
            self.status.as_entire_buffer_binding(),
        ];
        let bind_group = bind_group(self.ctx, self.layout, &bindings);
        Launch {
            words,
            pipeline: pipeline.clone(),
            bind_group,
            grid,
        }
    }
}

/// A uniform buffer holding `bytes` that later queue writes may change.
fn uniform_rw(ctx: &GpuContext, bytes: &[u8]) -> wgpu::Buffer {
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("coptim gradient norm tensor"),
            contents: bytes,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
}

/// The layouts of its mirror structs (checked by `own_kernels`' test).
#[cfg(test)]
pub(crate) fn mirrors() -> Vec<crate::wgsl::MirrorLayout> {
    use crate::wgsl::mirror_layout;
    vec![
        NormTensor::mirror(),
        mirror_layout!(
            GpuOwnStatus,
            "OwnStatus",
            [found_inf, step, clip_coef, grad_norm, skipped]
        ),
    ]
}

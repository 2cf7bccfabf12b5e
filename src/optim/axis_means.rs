//! The reduction along an axis that Adafactor's factored second moment needs: for each
//! tensor of a table, the means of `x^2 + eps` over each of two of its dimensions
//! (`shaders/axis_means.wgsl`), recorded into the caller's encoder. The per-tensor
//! sums an update needs beyond these (the update's RMS for clipping, the parameter's
//! RMS for the relative step) are the engine's per-tensor sums
//! (`shaders/measure_norms.wgsl`).

use wgpu::util::DeviceExt;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::factored::AxisView;
use crate::optim::plan::grid_for;
use crate::wgsl::{Part, ShaderBuilder, WgslStruct, lib, shader_part, wgsl_struct};

/// `axis_means.wgsl`.
static AXIS_MEANS: Part = shader_part!(
    "axis_means.wgsl",
    &["axis_means", "line_term"],
    &["workgroup_linear", "flat_index", "line_sum"]
);

/// Invocations per workgroup.
const WG_SIZE: u32 = 64;
/// Terms summed in order before their chunk joins the line's total.
const SUM_CHUNK: u32 = 32;
/// Bytes of one `f32`.
const F32_BYTES: u64 = 4;

/// One tensor of the table: where its elements start in the source buffer and how it
/// is factored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisTensor {
    /// Offset of its first element in the source buffer, in elements.
    pub src: u64,
    /// Its view for the two dimensions.
    pub view: AxisView,
}

wgsl_struct! {
    /// One tensor of the kernel's table (`tensors`): where its elements start in
    /// `src` and its means in `out`, and its view `[outer, n_p, mid, n_q, inner]`.
    struct AxisEntry {
        src: u32,
        out: u32,
        outer: u32,
        n_p: u32,
        mid: u32,
        n_q: u32,
        inner: u32,
        pad: u32,
    }
}

wgsl_struct! {
    /// The kernel's uniform (`params`): the table's length, the outputs in all and the
    /// `eps` added to every square.
    struct AxisParams {
        num_tensors: u32,
        num_outputs: u32,
        eps: f32,
        pad: u32,
    }
}

/// The means of `x^2 + eps` along two dimensions of every tensor of a table, written
/// into an output buffer of the kernel's own: per tensor, from
/// [`AxisMeans::offsets`], its means over the later dimension `q` (shape
/// `[outer, n_p, mid, inner]`), then its means over the earlier `p` (shape
/// `[outer, mid, n_q, inner]`).
#[derive(Debug)]
pub struct AxisMeans {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    grid: (u32, u32),
    out: wgpu::Buffer,
    offsets: Vec<u64>,
}

impl AxisMeans {
    /// Binds the kernel to `src` (f32 elements, storage usage) for `tensors`, adding
    /// `eps` to every square. `max_workgroups_per_dim` caps the grid below the
    /// device's limit (tests lower it to exercise 2-D grids).
    pub fn new(
        ctx: &GpuContext,
        src: &wgpu::Buffer,
        tensors: &[AxisTensor],
        eps: f32,
        max_workgroups_per_dim: Option<u32>,
    ) -> Result<Self> {
        let (table, offsets) = table(ctx, src, tensors)?;
        let outputs = *offsets.last().expect("the table has an end");
        let max_dim = max_workgroups_per_dim
            .unwrap_or(u32::MAX)
            .min(ctx.limits().max_compute_workgroups_per_dimension);
        let grid = grid_for(outputs.div_ceil(WG_SIZE as u64) as u32, max_dim)?;
        let device = ctx.device();
        let module = shader().create_module(device)?;
        let (pipeline, out, bind_group) = ctx.guarded("creating the axis-means kernel", || {
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("coptim axis means"),
                layout: None,
                module: &module,
                entry_point: Some("axis_means"),
                compilation_options: Default::default(),
                cache: None,
            });
            let out = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("coptim axis means"),
                size: outputs.max(1) * F32_BYTES,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let params = AxisParams {
                num_tensors: tensors.len() as u32,
                num_outputs: outputs as u32,
                eps,
                pad: 0,
            };
            let bind_group = bind(device, &pipeline, [src, &out], &table, &params);
            (pipeline, out, bind_group)
        })?;
        Ok(Self {
            pipeline,
            bind_group,
            grid,
            out,
            offsets,
        })
    }

    /// Where each tensor's means start in [`AxisMeans::output`] (in elements), and the
    /// total last.
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// The buffer the means are written to.
    pub fn output(&self) -> &wgpu::Buffer {
        &self.out
    }

    /// Records the reduction (one compute pass, one dispatch) into `encoder`.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("coptim axis means"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.grid.0, self.grid.1, 1);
    }
}

/// The kernel's module.
pub(crate) fn shader() -> ShaderBuilder {
    ShaderBuilder::new("coptim axis means")
        .constant("WG_SIZE", WG_SIZE)
        .constant("SUM_CHUNK", SUM_CHUNK)
        .declare(AxisEntry::WGSL)
        .declare(AxisParams::WGSL)
        .part(&lib::GRID)
        .part(&lib::LINE_SUM)
        .part(&AXIS_MEANS)
}

/// The GPU table of `tensors` and their output offsets (the total last), after
/// checking that every tensor lies inside `src`, that the table is not empty and that
/// `src` fits one storage binding.
fn table(
    ctx: &GpuContext,
    src: &wgpu::Buffer,
    tensors: &[AxisTensor],
) -> Result<(Vec<AxisEntry>, Vec<u64>)> {
    if tensors.is_empty() {
        return Err(Error::InvalidConfig(
            "axis means need at least one tensor".into(),
        ));
    }
    let allowed = ctx.limits().max_storage_buffer_binding_size;
    if src.size() > allowed {
        return Err(Error::LimitExceeded {
            what: "bytes of the axis means' source binding".into(),
            needed: src.size(),
            allowed,
        });
    }
    let mut offsets = vec![0u64];
    let mut rows = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let v = t.view;
        let end = t.src + v.numel() as u64;
        if v.numel() == 0 || end * F32_BYTES > src.size() || end > u32::MAX as u64 {
            return Err(Error::InvalidConfig(format!(
                "axis-means tensor {i} (elements {}..{end}) is empty or lies outside its \
                 source buffer of {} elements",
                t.src,
                src.size() / F32_BYTES
            )));
        }
        let out = *offsets.last().expect("starts with 0");
        rows.push(AxisEntry {
            src: t.src as u32,
            out: out as u32,
            outer: v.outer as u32,
            n_p: v.n_p as u32,
            mid: v.mid as u32,
            n_q: v.n_q as u32,
            inner: v.inner as u32,
            pad: 0,
        });
        offsets.push(out + (v.q_means_len() + v.p_means_len()) as u64);
    }
    let total = *offsets.last().expect("starts with 0");
    if total > u32::MAX as u64 {
        return Err(Error::LimitExceeded {
            what: "axis means in one table".into(),
            needed: total,
            allowed: u32::MAX as u64,
        });
    }
    Ok((rows, offsets))
}

/// The kernel's bind group over `[src, out]`, a new table buffer and a new uniform.
fn bind(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    [src, out]: [&wgpu::Buffer; 2],
    table: &[AxisEntry],
    params: &AxisParams,
) -> wgpu::BindGroup {
    let table = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("coptim axis means table"),
        contents: bytemuck::cast_slice(table),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("coptim axis means params"),
        contents: bytemuck::bytes_of(params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let entries: Vec<wgpu::BindGroupEntry<'_>> = [src, out, &table, &params]
        .into_iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("coptim axis means"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// The layouts of its mirror structs (checked by `own_kernels`' test).
#[cfg(test)]
pub(crate) fn mirrors() -> Vec<crate::wgsl::MirrorLayout> {
    vec![AxisEntry::mirror(), AxisParams::mirror()]
}

//! The application's side of the embedding examples, shared by them the way wgpu's
//! own examples share a framework: a device the program requests itself, its toy
//! problem (fitting the fields of a buffer of its own to a target, with its own
//! buffers and WGSL) and its training loop, which records its kernels and coptim's
//! step into one encoder per iteration.

use coptim::optim::{Optimizer, StepInputs, StepStats};
use coptim::{Error, GpuContext};
use wgpu::util::DeviceExt;

/// The application's own device and queue: any adapter, default features and limits.
pub fn app_device() -> coptim::Result<(wgpu::Device, wgpu::Queue)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .map_err(|e| Error::NoAdapter(e.to_string()))?;
    pollster::block_on(adapter.request_device(&Default::default()))
        .map_err(|e| Error::DeviceRequest(e.to_string()))
}

/// The application's toy problem, shared by both examples: fit the floats that follow
/// a header in `x` (its last `arrayLength(&target_fields)` floats) to `target_fields`,
/// minimizing `loss = 0.5 * |fields - target|^2`.
///
/// Bindings: 0 `x` (header, then the fields; read), 1 `target_fields` (read),
/// 2 `grads` (packed like `x`; written after the header), 3 `loss` (one float).
const FIT_SHADER: &str = r#"
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> target_fields: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

// Words in front of the fields, untouched.
fn header_words() -> u32 {
    return arrayLength(&x) - arrayLength(&target_fields);
}

// grads = fields - target, over the fields (never the header).
@compute @workgroup_size(256)
fn gradient(@builtin(global_invocation_id) id: vec3<u32>) {
    let k = id.x;
    if k < arrayLength(&target_fields) {
        let at = header_words() + k;
        grads[at] = x[at] - target_fields[k];
    }
}

// The loss, summed by one invocation in field order: the data is small, and one
// thread needs no barrier.
@compute @workgroup_size(1)
fn total_loss() {
    let header = header_words();
    var acc = 0.0;
    for (var k = 0u; k < arrayLength(&target_fields); k++) {
        let d = x[header + k] - target_fields[k];
        acc += d * d;
    }
    loss[0] = 0.5 * acc;
}
"#;

/// Invocations per workgroup of the `gradient` kernel (its `@workgroup_size`).
const GRADIENT_WORKGROUP: u64 = 256;

/// The application's fit: its buffers and its two kernels.
pub struct Fit {
    /// The header words, then the fields (starting at zero); stepped in place.
    pub x: wgpu::Buffer,
    /// Packed like `x`: the kernels write the gradient after the header.
    pub grads: wgpu::Buffer,
    /// The loss of the fields, one float, written before the gradient.
    pub loss: wgpu::Buffer,
    gradient: wgpu::ComputePipeline,
    total_loss: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    gradient_workgroups: u32,
}

impl Fit {
    /// The buffers of a fit of `target.len()` fields that follow `header` in `x`
    /// (fields and gradient starting at zero), and its kernels bound to them.
    pub fn new(device: &wgpu::Device, header: &[u32], target: &[f32]) -> Self {
        let mut packed = header.to_vec();
        packed.resize(header.len() + target.len(), 0);
        let packed: &[u8] = bytemuck::cast_slice(&packed);
        let x = storage_buffer(device, "x", packed, wgpu::BufferUsages::COPY_SRC);
        let grads = storage_buffer(device, "grads", packed, wgpu::BufferUsages::empty());
        let loss = storage_buffer(device, "loss", &[0; 4], wgpu::BufferUsages::COPY_SRC);
        let target_buf = storage_buffer(
            device,
            "target",
            bytemuck::cast_slice(target),
            wgpu::BufferUsages::empty(),
        );
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("fit"),
            source: wgpu::ShaderSource::Wgsl(FIT_SHADER.into()),
        });
        let bound = [
            (&x, true),
            (&target_buf, true),
            (&grads, false),
            (&loss, false),
        ];
        let layout_entries: Vec<wgpu::BindGroupLayoutEntry> = (0u32..)
            .zip(bound)
            .map(|(binding, (_, read_only))| storage_layout_entry(binding, read_only))
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("fit"),
            entries: &layout_entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("fit"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let group_entries: Vec<wgpu::BindGroupEntry<'_>> = (0u32..)
            .zip(bound)
            .map(|(binding, (buffer, _))| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("fit"),
            layout: &layout,
            entries: &group_entries,
        });
        Self {
            gradient: pipeline("gradient"),
            total_loss: pipeline("total_loss"),
            bind_group,
            gradient_workgroups: (target.len() as u64).div_ceil(GRADIENT_WORKGROUP) as u32,
            x,
            grads,
            loss,
        }
    }

    /// Records the loss of the current fields, then their gradient.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.set_pipeline(&self.total_loss);
        pass.dispatch_workgroups(1, 1, 1);
        pass.set_pipeline(&self.gradient);
        pass.dispatch_workgroups(self.gradient_workgroups, 1, 1);
    }
}

/// A storage buffer holding `contents`, with `extra` usages besides `STORAGE`.
fn storage_buffer(
    device: &wgpu::Device,
    label: &str,
    contents: &[u8],
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: wgpu::BufferUsages::STORAGE | extra,
    })
}

/// A compute-stage storage buffer binding of a bind group layout.
fn storage_layout_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// The application's loop: for steps 1..=`steps`, `record_app` records the program's
/// own work (its gradient) and returns the step's inputs, coptim's step follows in the
/// same encoder, and one submit ends the iteration. Returns every step's record, in
/// order (collected as they arrive, never by waiting inside the loop).
pub fn train<'a>(
    ctx: &GpuContext,
    opt: &mut Optimizer,
    steps: u64,
    mut record_app: impl FnMut(&mut wgpu::CommandEncoder, u64) -> StepInputs<'a>,
) -> coptim::Result<Vec<StepStats>> {
    let mut records = Vec::new();
    for step in 1..=steps {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let inputs = record_app(&mut encoder, step);
        opt.record_step(&mut encoder, &inputs)?;
        ctx.queue().submit([encoder.finish()]);
        records.extend(opt.take_stats()?);
    }
    ctx.wait_idle()?;
    records.extend(opt.take_stats()?);
    Ok(records)
}

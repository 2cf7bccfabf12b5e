//! The application's side of the embedding examples, shared by them the way wgpu's
//! own examples share a framework: a device the program requests itself, its storage
//! buffers and compute kernels, and its training loop, which records its kernels and
//! coptim's step into one encoder per iteration.

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

/// A storage buffer holding `contents`, with `extra` usages besides `STORAGE`.
pub fn storage_buffer(
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

/// One storage buffer a kernel binds, and whether the kernels only read it.
pub struct Binding<'a> {
    /// The buffer, bound whole.
    pub buffer: &'a wgpu::Buffer,
    /// `var<storage, read>` in the WGSL (else `read_write`).
    pub read_only: bool,
}

/// The application's compute kernels: every entry point of one WGSL module, over one
/// bind group of storage buffers at bindings 0, 1, ... in order.
pub struct Kernels {
    pipelines: Vec<(&'static str, wgpu::ComputePipeline)>,
    bind_group: wgpu::BindGroup,
}

impl Kernels {
    /// Compiles `entry_points` of `source` with an explicit layout of `bindings`.
    pub fn new(
        device: &wgpu::Device,
        source: &str,
        entry_points: &[&'static str],
        bindings: &[Binding<'_>],
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("application kernels"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let layout_entries: Vec<wgpu::BindGroupLayoutEntry> = (0u32..)
            .zip(bindings)
            .map(|(binding, b)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: b.read_only,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("application kernels"),
            entries: &layout_entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("application kernels"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = entry_points
            .iter()
            .map(|&entry| {
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                (entry, pipeline)
            })
            .collect();
        let group_entries: Vec<wgpu::BindGroupEntry<'_>> = (0u32..)
            .zip(bindings)
            .map(|(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.buffer.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("application kernels"),
            layout: &layout,
            entries: &group_entries,
        });
        Self {
            pipelines,
            bind_group,
        }
    }

    /// Records `(entry point, workgroups along x)` dispatches, in order, in one pass.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder, dispatches: &[(&str, u32)]) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_bind_group(0, &self.bind_group, &[]);
        for &(entry, workgroups) in dispatches {
            let (_, pipeline) = self
                .pipelines
                .iter()
                .find(|(name, _)| *name == entry)
                .expect("dispatches name entry points the kernels were built with");
            pass.set_pipeline(pipeline);
            pass.dispatch_workgroups(workgroups, 1, 1);
        }
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

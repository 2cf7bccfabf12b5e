//! A splatting-style trainer that keeps every weight in ONE interleaved buffer of its
//! own, and lets coptim step the tensors inside it in place.
//!
//! The buffer starts with a 12-byte header (count, version, flags) followed by the
//! splats' fields as struct-of-arrays: positions `[N, 3]`, log-scales `[N, 3]`,
//! opacities `[N]` and colors `[N, 3]`, so every tensor starts at an odd offset (12,
//! 12 + 12N, ...) that no storage binding could start at. The gradients use the same
//! packing in a second buffer. The program's shaders write the gradient of
//! `0.5 * |fields - target|^2` and the loss; coptim registers views of both buffers,
//! uses a per-group learning rate (colors faster), and records each step's loss in
//! its per-step record. The header is never touched.
//!
//! Run with `cargo run --example embed_interleaved`; `cargo test --example
//! embed_interleaved` checks it.

use coptim::arena::{BufferView, ParamSet, ParamSpec};
use coptim::optim::{Caution, GroupConfig, Optimizer, OptimizerConfig, StepInputs, StepStats};
use coptim::{Error, GpuContext};
use wgpu::util::DeviceExt;

const SPLATS: usize = 1000;
const HEADER_WORDS: usize = 3;
/// Floats per splat: position 3, log-scale 3, opacity 1, color 3.
const FIELDS: usize = 10;
const STEPS: u64 = 200;
const LR: f64 = 0.02;

const SHADERS: &str = r#"
const HEADER_WORDS: u32 = 3u;
const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> splats: array<f32>;
@group(0) @binding(1) var<storage, read> target_fields: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

var<workgroup> partial: array<f32, WG>;

// grad = fields - target, over the packed fields (never the header).
@compute @workgroup_size(WG)
fn gradient(@builtin(global_invocation_id) id: vec3<u32>) {
    let k = id.x;
    if k < arrayLength(&target_fields) {
        grads[HEADER_WORDS + k] = splats[HEADER_WORDS + k] - target_fields[k];
    }
}

// loss[0] = 0.5 * sum((fields - target)^2), one workgroup, fixed order.
@compute @workgroup_size(WG)
fn total_loss(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var k = lid; k < arrayLength(&target_fields); k += WG) {
        let d = splats[HEADER_WORDS + k] - target_fields[k];
        acc += 0.5 * d * d;
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if lid < stride {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        loss[0] = partial[0];
    }
}
"#;

/// The tensors of the packing: name, shape, first float after the header.
fn tensors() -> Vec<(&'static str, Vec<usize>, usize)> {
    let n = SPLATS;
    vec![
        ("position", vec![n, 3], 0),
        ("log_scale", vec![n, 3], 3 * n),
        ("opacity", vec![n], 6 * n),
        ("color", vec![n, 3], 7 * n),
    ]
}

/// A run's per-step records and its final header.
struct Outcome {
    records: Vec<StepStats>,
    header: Vec<u32>,
}

fn main() -> coptim::Result<()> {
    let outcome = run(STEPS)?;
    println!("header after training: {:?}", outcome.header);
    for r in outcome.records.iter().step_by(40) {
        println!(
            "step {:4}  loss {:9.4}  lr {:.4}  kept {:.3}",
            r.scheduled_step,
            r.loss.unwrap_or(f32::NAN),
            r.lr,
            r.kept_fraction()
        );
    }
    Ok(())
}

fn run(steps: u64) -> coptim::Result<Outcome> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .map_err(|e| Error::NoAdapter(e.to_string()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))
        .map_err(|e| Error::DeviceRequest(e.to_string()))?;

    // The program's packed buffers: header + fields (starting at 0), and the target.
    let data_floats = SPLATS * FIELDS;
    let header = [SPLATS as u32, 1, 0xC0FFEE];
    let mut packed: Vec<u32> = header.to_vec();
    packed.resize(HEADER_WORDS + data_floats, 0);
    let target: Vec<f32> = (0..data_floats)
        .map(|k| ((k * 37 % 101) as f32) / 50.0 - 1.0)
        .collect();
    let buffer = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE | usage,
        })
    };
    let splats = buffer(
        "splats",
        bytemuck::cast_slice(&packed),
        wgpu::BufferUsages::COPY_SRC,
    );
    let grads = buffer(
        "splat grads",
        bytemuck::cast_slice(&packed),
        wgpu::BufferUsages::empty(),
    );
    let target_buf = buffer(
        "target",
        bytemuck::cast_slice(&target),
        wgpu::BufferUsages::empty(),
    );
    let loss = buffer("loss", &[0; 4], wgpu::BufferUsages::COPY_SRC);

    let ctx = GpuContext::from_device(device.clone(), queue.clone());
    let params = splat_params(&ctx, &splats, &grads)?;
    let cfg = OptimizerConfig::adamw(LR)
        .with_caution(Caution::hard())
        .with_group(GroupConfig {
            name: "color".into(),
            tensors: vec!["color".into()],
            lr_scale: 2.0,
            weight_decay: 0.0,
        });
    let mut opt = Optimizer::new(&ctx, &params, cfg)?;
    let shaders = Shaders::new(&device, [&splats, &target_buf, &grads, &loss]);

    let mut records = Vec::new();
    for _ in 0..steps {
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_bind_group(0, &shaders.bind_group, &[]);
            pass.set_pipeline(&shaders.total_loss);
            pass.dispatch_workgroups(1, 1, 1);
            pass.set_pipeline(&shaders.gradient);
            pass.dispatch_workgroups(data_floats.div_ceil(256) as u32, 1, 1);
        }
        let inputs = StepInputs::lr(LR).with_loss(&loss, 0);
        opt.record_step(&mut encoder, &inputs)?;
        queue.submit([encoder.finish()]);
        records.extend(opt.take_stats()?);
    }
    ctx.wait_idle()?;
    records.extend(opt.take_stats()?);
    let bytes = pollster::block_on(coptim::arena::read_buffer(&ctx, &splats, 0, 12))?;
    Ok(Outcome {
        records,
        header: bytemuck::cast_slice(&bytes).to_vec(),
    })
}

/// Views of every packed tensor in the splat buffer and the gradient buffer.
fn splat_params(
    ctx: &GpuContext,
    splats: &wgpu::Buffer,
    grads: &wgpu::Buffer,
) -> coptim::Result<ParamSet> {
    let specs: Vec<ParamSpec> = tensors()
        .into_iter()
        .map(|(name, shape, first)| {
            let offset = 4 * (HEADER_WORDS + first) as u64;
            ParamSpec::new(name, &shape, BufferView::new(splats, offset))
                .with_grad(BufferView::new(grads, offset))
        })
        .collect();
    ParamSet::from_views(ctx, &specs)
}

/// The program's two kernels and their bind group.
struct Shaders {
    gradient: wgpu::ComputePipeline,
    total_loss: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
}

impl Shaders {
    /// Pipelines over (splats, target, grads, loss).
    fn new(device: &wgpu::Device, buffers: [&wgpu::Buffer; 4]) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("splat shaders"),
            source: wgpu::ShaderSource::Wgsl(SHADERS.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("splat shaders"),
            entries: &[
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, false),
                storage_entry(3, false),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("splat shaders"),
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
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("splat shaders"),
            layout: &layout,
            entries: &entries,
        });
        Self {
            gradient: pipeline("gradient"),
            total_loss: pipeline("total_loss"),
            bind_group,
        }
    }
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
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

#[cfg(test)]
mod tests {
    /// Every step has its record, in order, with the loss the program wrote; the loss
    /// falls, and the header in front of the packed tensors is untouched.
    #[test]
    fn interleaved_buffer_trains_in_place() {
        let outcome = super::run(super::STEPS).unwrap();
        let steps: Vec<u64> = outcome.records.iter().map(|r| r.scheduled_step).collect();
        assert_eq!(steps, (1..=super::STEPS).collect::<Vec<_>>());
        let first = outcome.records[0].loss.unwrap();
        let last = outcome.records.last().unwrap().loss.unwrap();
        assert!(last < 0.05 * first, "loss {first} -> {last}");
        assert_eq!(outcome.header, [super::SPLATS as u32, 1, 0xC0FFEE]);
    }
}

//! Embedding coptim in a wgpu program that owns its device, queue and encoders.
//!
//! The program fits `w` to a target by minimizing `0.5 * |w - target|^2`: its own
//! compute shader writes the gradient `w - target` straight into coptim's gradient
//! arena, and C-AdamW's passes are recorded into the same command encoder. One
//! submit per iteration, no readback inside the loop.
//!
//! Run with `cargo run --example embed`.

use coptim::optim::{Caution, LrSchedule, Optimizer, OptimizerConfig};
use coptim::{GpuContext, ParamStore};
use wgpu::util::DeviceExt;

const N: usize = 10_000;

const GRAD_SHADER: &str = r#"
@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> goal: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i < arrayLength(&grad) {
        grad[i] = w[i] - goal[i];
    }
}
"#;

fn main() -> coptim::Result<()> {
    // The application's own device: any adapter, default features, its own queue.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .map_err(|e| coptim::Error::NoAdapter(e.to_string()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))
        .map_err(|e| coptim::Error::DeviceRequest(e.to_string()))?;

    // coptim works on the application's device.
    let ctx = GpuContext::from_device(device.clone(), queue.clone());
    let store = ParamStore::new(&ctx, &[("w", vec![N])])?;
    let w_id = store.layout().id("w")?;
    let cfg = OptimizerConfig::adamw(0.05)
        .with_caution(Caution::hard())
        .with_schedule(LrSchedule::Cosine {
            total: 300,
            floor: 0.0,
        });
    let mut opt = Optimizer::new(&ctx, &store, cfg)?;

    // The application's own buffers and pipeline, binding single tensors of the arena.
    let target: Vec<f32> = (0..N).map(|i| ((i as f32) * 0.001).sin()).collect();
    let target_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("target"),
        contents: bytemuck::cast_slice(&target),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("gradient"),
        source: wgpu::ShaderSource::Wgsl(GRAD_SHADER.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("gradient"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("gradient"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(store.params.binding(w_id)?),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: target_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: wgpu::BindingResource::Buffer(store.grads.binding(w_id)?),
            },
        ],
    });

    for step in 1..=300 {
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(N.div_ceil(64) as u32, 1, 1);
        }
        opt.record_step(&mut encoder)?;
        queue.submit([encoder.finish()]);
        if step % 50 == 0 {
            let w = store.params.read_blocking(&ctx, w_id)?;
            let loss: f32 = w
                .iter()
                .zip(&target)
                .map(|(a, b)| 0.5 * (a - b) * (a - b))
                .sum();
            let kept = opt
                .latest_stats()
                .map(|s| s.kept_fraction())
                .unwrap_or(f64::NAN);
            println!("step {step:4}  loss {loss:10.4}  kept fraction {kept:.3}");
        }
    }
    Ok(())
}

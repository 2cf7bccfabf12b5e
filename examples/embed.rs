//! Embedding coptim in a wgpu program that owns its device, queue, encoders and
//! buffers.
//!
//! The program keeps its weights `w` and their gradient in its own buffers and fits
//! `w` to a target by minimizing `0.5 * |w - target|^2`. coptim registers views of
//! those buffers (a [`ParamSet`]) and allocates only its optimizer state; the
//! program's compute shader writes the gradient, C-AdamW's passes are recorded into
//! the same command encoder, and the learning rate of every step is the program's own
//! (a cosine it computes itself). One submit per iteration, no readback inside the
//! loop: the per-step records arrive, in order, through `take_stats`.
//!
//! Run with `cargo run --example embed`; `cargo test --example embed` checks it.

use coptim::arena::{BufferView, ParamSet, ParamSpec};
use coptim::optim::{Caution, Optimizer, OptimizerConfig, StepInputs};
use coptim::{Error, GpuContext};
use wgpu::util::DeviceExt;

const N: usize = 10_000;
const STEPS: u64 = 300;
const PEAK_LR: f64 = 0.05;

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

/// What a run ends with.
struct Outcome {
    loss: f32,
    records: usize,
    mean_kept: f64,
}

fn main() -> coptim::Result<()> {
    let outcome = run(STEPS)?;
    println!(
        "{} steps: final loss {:.5}, {} step records, mean kept fraction {:.3}",
        STEPS, outcome.loss, outcome.records, outcome.mean_kept
    );
    Ok(())
}

fn run(steps: u64) -> coptim::Result<Outcome> {
    // The application's own device: any adapter, default features, its own queue.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .map_err(|e| Error::NoAdapter(e.to_string()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))
        .map_err(|e| Error::DeviceRequest(e.to_string()))?;

    // The application's own buffers: weights (starting at zero), target, gradient.
    let target: Vec<f32> = (0..N).map(|i| ((i as f32) * 0.001).sin()).collect();
    let storage = |label: &str, contents: &[f32], extra: wgpu::BufferUsages| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(contents),
            usage: wgpu::BufferUsages::STORAGE | extra,
        })
    };
    let w_buf = storage("w", &vec![0.0; N], wgpu::BufferUsages::COPY_SRC);
    let target_buf = storage("target", &target, wgpu::BufferUsages::empty());
    let grad_buf = storage("grad", &vec![0.0; N], wgpu::BufferUsages::empty());

    // coptim works on the application's device and steps its buffers in place.
    let ctx = GpuContext::from_device(device.clone(), queue.clone());
    let params = ParamSet::from_views(
        &ctx,
        &[ParamSpec::new("w", &[N], BufferView::new(&w_buf, 0))
            .with_grad(BufferView::new(&grad_buf, 0))],
    )?;
    let cfg = OptimizerConfig::adamw(PEAK_LR).with_caution(Caution::hard());
    let mut opt = Optimizer::new(&ctx, &params, cfg)?;

    let pipeline = gradient_pipeline(&device);
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("gradient"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[entry(0, &w_buf), entry(1, &target_buf), entry(2, &grad_buf)],
    });

    let mut records = Vec::new();
    for step in 1..=steps {
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(N.div_ceil(64) as u32, 1, 1);
        }
        // The program's own schedule: a cosine from PEAK_LR to 0.
        let progress = (step - 1) as f64 / steps as f64;
        let lr = PEAK_LR * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        opt.record_step(&mut encoder, &StepInputs::lr(lr))?;
        queue.submit([encoder.finish()]);
        records.extend(opt.take_stats()?);
    }
    ctx.wait_idle()?;
    records.extend(opt.take_stats()?);

    let bytes = pollster::block_on(coptim::arena::read_buffer(&ctx, &w_buf, 0, 4 * N as u64))?;
    let w: &[f32] = bytemuck::cast_slice(&bytes);
    let loss = w
        .iter()
        .zip(&target)
        .map(|(a, b)| 0.5 * (a - b) * (a - b))
        .sum();
    let mean_kept =
        records.iter().map(|r| r.kept_fraction()).sum::<f64>() / records.len().max(1) as f64;
    Ok(Outcome {
        loss,
        records: records.len(),
        mean_kept,
    })
}

fn gradient_pipeline(device: &wgpu::Device) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("gradient"),
        source: wgpu::ShaderSource::Wgsl(GRAD_SHADER.into()),
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("gradient"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

#[cfg(test)]
mod tests {
    /// The fit converges (the loss starts at 0.5 * |target|^2, about 2,300), every
    /// step's record arrives, and caution masks part of the update (near the optimum
    /// momentum and gradient disagree often: the mean kept fraction was 0.167).
    #[test]
    fn example_converges_with_a_record_per_step() {
        let outcome = super::run(super::STEPS).unwrap();
        assert!(outcome.loss < 1e-2, "final loss {}", outcome.loss);
        assert_eq!(outcome.records, super::STEPS as usize);
        assert!(outcome.mean_kept > 0.0 && outcome.mean_kept < 1.0);
    }
}

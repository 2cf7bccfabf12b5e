//! A splatting-style trainer that keeps every weight in ONE interleaved buffer of its
//! own, and lets coptim step the tensors inside it in place.
//!
//! The buffer starts with a 12-byte header (count, version, flags) followed by the
//! splats' fields as struct-of-arrays: positions `[N, 3]`, log-scales `[N, 3]`,
//! opacities `[N]` and colors `[N, 3]`, so every tensor starts at an odd offset (12,
//! 12 + 12N, ...) that no storage binding could start at. The gradients use the same
//! packing in a second buffer. The program's shaders (in `support`) write the
//! gradient of `0.5 * |fields - target|^2` and the loss; coptim registers views of
//! both buffers, uses a per-group learning rate (colors faster), and records each
//! step's loss in its per-step record. The header is never touched.
//!
//! Run with `cargo run --example embed_interleaved`; `cargo test --example
//! embed_interleaved` checks it.

mod support;

use coptim::GpuContext;
use coptim::arena::{BufferView, ParamSet, ParamSpec};
use coptim::optim::{Caution, GroupConfig, Optimizer, OptimizerConfig, StepInputs, StepStats};
use support::Fit;

const SPLATS: usize = 1000;
/// The buffer's header: splat count, version, flags.
const HEADER: [u32; 3] = [SPLATS as u32, 1, 0xC0FFEE];
const HEADER_WORDS: usize = HEADER.len();
/// Floats per splat: position 3, log-scale 3, opacity 1, color 3.
const FIELDS: usize = 10;
const STEPS: u64 = 200;
const LR: f64 = 0.02;

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
    let (device, queue) = support::app_device()?;

    // The program's packed buffers `fit.x` and `fit.grads` (header, then the fields
    // starting at zero), the loss `fit.loss`, and its kernels.
    let target: Vec<f32> = (0..SPLATS * FIELDS)
        .map(|k| ((k * 37 % 101) as f32) / 50.0 - 1.0)
        .collect();
    let fit = Fit::new(&device, &HEADER, &target);

    let ctx = GpuContext::from_device(device.clone(), queue);
    let params = splat_params(&ctx, &fit.x, &fit.grads)?;
    let cfg = OptimizerConfig::adamw(LR)
        .with_caution(Caution::hard())
        .with_group(GroupConfig {
            name: "color".into(),
            tensors: vec!["color".into()],
            lr_scale: 2.0,
            weight_decay: 0.0,
        });
    let mut opt = Optimizer::new(&ctx, &params, cfg)?;
    let records = support::train(&ctx, &mut opt, steps, |encoder, _| {
        fit.record(encoder);
        StepInputs::lr(LR).with_loss(&fit.loss, 0)
    })?;
    let bytes = pollster::block_on(coptim::arena::read_buffer(&ctx, &fit.x, 0, 12))?;
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
        assert_eq!(outcome.header, super::HEADER);
    }
}

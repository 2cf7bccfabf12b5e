//! Embedding coptim in a wgpu program that owns its device, queue, encoders and
//! buffers.
//!
//! The program keeps its weights `w` and their gradient in its own buffers and fits
//! `w` to a target by minimizing `0.5 * |w - target|^2`. coptim registers views of
//! those buffers (a [`ParamSet`]) and allocates only its optimizer state; the
//! program's compute shaders (in `support`) write the loss and the gradient, the
//! step's record carries that loss, C-AdamW's passes are recorded into
//! the same command encoder, and the learning rate of every step is the program's own
//! (a cosine it computes itself). One submit per iteration, no readback inside the
//! loop: the per-step records arrive, in order, through `take_stats`.
//!
//! Run with `cargo run --example embed`; `cargo test --example embed` checks it.

mod support;

use coptim::GpuContext;
use coptim::arena::{BufferView, ParamSet, ParamSpec};
use coptim::optim::{Caution, Optimizer, OptimizerConfig, StepInputs};
use support::Fit;

const N: usize = 10_000;
const STEPS: u64 = 300;
const PEAK_LR: f64 = 0.05;

/// The values `w` is fitted to.
fn target() -> Vec<f32> {
    (0..N).map(|i| ((i as f32) * 0.001).sin()).collect()
}

/// What a run ends with.
struct Outcome {
    /// The loss the program's kernel wrote before the first step (from its record).
    first_loss: f32,
    /// The loss of the final weights, computed on the CPU.
    loss: f32,
    records: usize,
    mean_kept: f64,
}

fn main() -> coptim::Result<()> {
    let outcome = run(STEPS)?;
    println!(
        "{} steps: loss {:.1} -> {:.5}, {} step records, mean kept fraction {:.3}",
        STEPS, outcome.first_loss, outcome.loss, outcome.records, outcome.mean_kept
    );
    Ok(())
}

fn run(steps: u64) -> coptim::Result<Outcome> {
    let (device, queue) = support::app_device()?;

    // The application's own buffers: weights `fit.x` (starting at zero, no header),
    // their gradient `fit.grads` and the loss `fit.loss`, and its kernels.
    let target = target();
    let fit = Fit::new(&device, &[], &target);

    // coptim works on the application's device and steps its buffers in place.
    let ctx = GpuContext::from_device(device.clone(), queue);
    let params = ParamSet::from_views(
        &ctx,
        &[ParamSpec::new("w", &[N], BufferView::new(&fit.x, 0))
            .with_grad(BufferView::new(&fit.grads, 0))],
    )?;
    let cfg = OptimizerConfig::adamw(PEAK_LR).with_caution(Caution::hard());
    let mut opt = Optimizer::new(&ctx, &params, cfg)?;

    let records = support::train(&ctx, &mut opt, steps, |encoder, step| {
        fit.record(encoder);
        // The program's own schedule: a cosine from PEAK_LR to 0.
        let progress = (step - 1) as f64 / steps as f64;
        StepInputs::lr(PEAK_LR * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
            .with_loss(&fit.loss, 0)
    })?;

    let bytes = pollster::block_on(coptim::arena::read_buffer(&ctx, &fit.x, 0, 4 * N as u64))?;
    let w: &[f32] = bytemuck::cast_slice(&bytes);
    let loss = w
        .iter()
        .zip(&target)
        .map(|(a, b)| 0.5 * (a - b) * (a - b))
        .sum();
    let mean_kept =
        records.iter().map(|r| r.kept_fraction()).sum::<f64>() / records.len().max(1) as f64;
    Ok(Outcome {
        first_loss: records.first().and_then(|r| r.loss).unwrap_or(f32::NAN),
        loss,
        records: records.len(),
        mean_kept,
    })
}

#[cfg(test)]
mod tests {
    /// The fit converges (the loss starts at 0.5 * |target|^2, about 2,300), every
    /// step's record arrives, and caution masks part of the update (near the optimum
    /// momentum and gradient disagree often: the mean kept fraction was 0.167).
    #[test]
    fn example_converges_with_a_record_per_step() {
        let outcome = super::run(super::STEPS).unwrap();
        // The first record carries the program's loss at w = 0. Tolerance 1e-3
        // relative: a serial f32 sum of 10,000 positive terms errs by at most
        // 10,000 * 6e-8 = 6e-4 of the sum.
        let start: f64 = super::target()
            .iter()
            .map(|&t| 0.5 * f64::from(t * t))
            .sum();
        let err = (f64::from(outcome.first_loss) - start).abs() / start;
        assert!(err < 1e-3, "first loss {} vs {start}", outcome.first_loss);
        assert!(outcome.loss < 1e-2, "final loss {}", outcome.loss);
        assert_eq!(outcome.records, super::STEPS as usize);
        assert!(outcome.mean_kept > 0.0 && outcome.mean_kept < 1.0);
    }
}

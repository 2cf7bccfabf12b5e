//! Models learn: a few dozen AdamW steps on small synthetic problems cut the loss.

mod common;

use common::*;
use coptim::model::{Batch, BatchMetrics, Mlp, Model, PatchGrid, Vit, VitEncoder};
use coptim::nn::Activation;
use coptim::optim::StepInputs;
use coptim::{GpuContext, Optimizer, OptimizerConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Two Gaussian blobs in `dim` dimensions, centred at -1 and +1 on the first half of
/// the coordinates (noise 1): label 0 or 1.
fn blobs(rng: &mut ChaCha8Rng, n: usize, dim: usize) -> (Vec<f32>, Vec<u32>) {
    let mut images = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let label = rng.random_range(0..2u32);
        let centre = if label == 0 { -1.0 } else { 1.0 };
        for j in 0..dim {
            let noise: f32 = (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0;
            images.push(if j < dim / 2 { centre + noise } else { noise });
        }
        labels.push(label);
    }
    (images, labels)
}

/// Trains for `steps` steps on fresh batches and returns the per-step losses.
fn train(
    ctx: &GpuContext,
    model: &mut Model,
    lr: f64,
    steps: usize,
    batch: usize,
    seed: u64,
) -> Vec<f32> {
    let mut opt = Optimizer::new(ctx, model.store(), OptimizerConfig::adamw(lr)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dim = model.sample_len();
    for _ in 0..steps {
        let (images, labels) = blobs(&mut rng, batch, dim);
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let outputs = model
            .record_forward_backward(&mut encoder, Batch::new(&images, &labels))
            .unwrap();
        opt.record_step(&mut encoder, &outputs.step_inputs(StepInputs::scheduled()))
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
    }
    (0..steps)
        .map(|i| {
            let record = pollster::block_on(opt.next_stats()).unwrap();
            assert_eq!(record.scheduled_step as usize, i + 1);
            BatchMetrics::from_record(&record, batch).unwrap().loss
        })
        .collect()
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

#[test]
fn mlp_learns_two_blobs() {
    let ctx = ctx();
    let arch = Mlp {
        input: 16,
        hidden: vec![32, 32],
        classes: 2,
        activation: Activation::GeluTanh,
    };
    let mut model = Model::new(&ctx, arch, 0).unwrap();
    let losses = train(&ctx, &mut model, 1e-2, 40, 64, 1);
    let (first, last) = (mean(&losses[..5]), mean(&losses[35..]));
    assert!(
        first > 0.4,
        "the untrained loss {first} should be near ln 2"
    );
    assert!(
        last < 0.25 * first,
        "loss fell only from {first} to {last}: {losses:?}"
    );
    // Held-out accuracy, through the inference path.
    let (images, labels) = blobs(&mut ChaCha8Rng::seed_from_u64(99), 300, 16);
    let eval = model.evaluate_blocking(&images, &labels, 128).unwrap();
    assert!(
        eval.accuracy() > 0.9,
        "held-out accuracy {}",
        eval.accuracy()
    );
    assert_eq!(eval.count, 300);
}

#[test]
fn vit_learns_two_blobs() {
    let ctx = ctx();
    let arch = Vit {
        encoder: VitEncoder {
            grid: PatchGrid {
                channels: 1,
                image_size: 4,
                patch: 2,
            },
            dim: 16,
            depth: 1,
            heads: 2,
            mlp_ratio: 2.0,
        },
        classes: 2,
    };
    let mut model = Model::new(&ctx, arch, 0).unwrap();
    let losses = train(&ctx, &mut model, 3e-3, 40, 32, 2);
    let (first, last) = (mean(&losses[..5]), mean(&losses[35..]));
    assert!(
        last < 0.5 * first,
        "loss fell only from {first} to {last}: {losses:?}"
    );
}

//! Parity with PyTorch: the same MLP, from the same initial weights, on the same
//! batches, trained for 20 steps with coptim's AdamW and C-AdamW and with
//! `torch.optim.AdamW` and timm's `cadamw` (`scripts/parity.py`). The committed
//! `tests/parity/losses.json` holds PyTorch's loss at every step; coptim's must be
//! within [`TOLERANCE`] of it.
//!
//! Regenerate with `/opt/torchenv/bin/python scripts/parity.py`, which first runs the
//! ignored test `export_parity_inputs` to write the initial weights, the batches and
//! the learning rates of every step to `target/parity/inputs.safetensors`.

mod common;

use std::sync::Arc;

use common::*;
use coptim::data::bundled_mnist;
use coptim::train::inputs::BatchStream;
use coptim::train::{OptimizerKind, Session, TrainConfig};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// Largest allowed |coptim loss - PyTorch loss| at any step. Both compute in f32 with
/// different summation orders; measured on lavapipe: 3.6e-7 (AdamW) and 2.4e-7
/// (C-AdamW) over the 20 steps, so this leaves room for other adapters.
const TOLERANCE: f32 = 1e-5;
const STEPS: u64 = 20;

/// The parity run: a 784-64-10 MLP, 32 samples per step, no augmentation,
/// standardized inputs, the default warm-up + cosine schedule over 20 steps.
fn config(optimizer: OptimizerKind) -> TrainConfig {
    let mut c = mlp_run(64, optimizer, STEPS);
    c.batch_size = 32;
    c.augment_shift = 0;
    c.warmup_steps = 2;
    c.seed = 7;
    c
}

fn losses(optimizer: OptimizerKind) -> (Vec<f32>, Vec<(String, f64)>) {
    let ctx = ctx();
    let mut s = Session::new(&ctx, config(optimizer), Arc::new(bundled_mnist().unwrap())).unwrap();
    s.run_blocking(|_| {}).unwrap();
    let init_sums = coptim::model::Model::initial_values(
        config(optimizer).model.architecture(),
        config(optimizer).seed,
    )
    .unwrap()
    .iter()
    .map(|t| (t.name.clone(), t.values.iter().map(|&x| x as f64).sum()))
    .collect();
    (
        s.history().steps.iter().map(|m| m.loss).collect(),
        init_sums,
    )
}

#[test]
fn loss_matches_pytorch_at_every_step() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/parity/losses.json"
    ))
    .expect("tests/parity/losses.json (run scripts/parity.py)");
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (kind, key) in [
        (OptimizerKind::ADAMW, "adamw"),
        (OptimizerKind::C_ADAMW, "cadamw"),
    ] {
        let (ours, init_sums) = losses(kind);
        for (name, ours) in &init_sums {
            let theirs = reference["init_sums"][name]
                .as_f64()
                .expect("a sum per tensor");
            assert!(
                (ours - theirs).abs() < 1e-3,
                "the initial weights of {name} changed: {ours} vs {theirs}"
            );
        }
        let theirs: Vec<f32> = serde_json::from_value(reference[key].clone()).unwrap();
        assert_eq!(ours.len(), theirs.len());
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!("{key}: max |coptim - pytorch| loss over {STEPS} steps = {worst:.3e}");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b).abs() <= TOLERANCE,
                "{key} step {}: coptim {a} vs pytorch {b}",
                i + 1
            );
        }
    }
}

/// Writes what `scripts/parity.py` trains on: initial weights (`param.<name>`), the
/// standardized batches (`images` F32[steps, batch, 784], `labels` I64[steps, batch])
/// and each step's learning rate (`lr` F64[steps]), plus the config as metadata.
#[test]
#[ignore = "run by scripts/parity.py"]
fn export_parity_inputs() {
    let cfg = config(OptimizerKind::ADAMW);
    let data = bundled_mnist().unwrap();
    let init = coptim::model::Model::initial_values(cfg.model.architecture(), cfg.seed).unwrap();
    let mut stream = BatchStream::for_run(&cfg, &data.train);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let (mut all_images, mut all_labels) = (Vec::<f32>::new(), Vec::<i64>::new());
    for step in 1..=STEPS {
        stream.batch_into(&data.train, step, &mut images, &mut labels);
        all_images.extend(&images);
        all_labels.extend(labels.iter().map(|&l| l as i64));
    }
    let lrs: Vec<f64> = (1..=STEPS)
        .map(|s| cfg.lr * cfg.schedule().factor(s))
        .collect();
    let b = cfg.batch_size;
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = init
        .iter()
        .map(|t| {
            (
                format!("param.{}", t.name),
                Dtype::F32,
                t.shape.clone(),
                bytemuck::cast_slice(&t.values).to_vec(),
            )
        })
        .collect();
    tensors.push((
        "images".into(),
        Dtype::F32,
        vec![STEPS as usize, b, 784],
        bytemuck::cast_slice(&all_images).to_vec(),
    ));
    tensors.push((
        "labels".into(),
        Dtype::I64,
        vec![STEPS as usize, b],
        bytemuck::cast_slice(&all_labels).to_vec(),
    ));
    tensors.push((
        "lr".into(),
        Dtype::F64,
        vec![STEPS as usize],
        bytemuck::cast_slice(&lrs).to_vec(),
    ));
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, bytes)| (n.clone(), TensorView::new(*d, s.clone(), bytes).unwrap()))
        .collect();
    let meta = std::collections::HashMap::from([(
        "config".to_string(),
        serde_json::to_string(&cfg).unwrap(),
    )]);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/parity");
    std::fs::create_dir_all(&out).unwrap();
    let bytes = safetensors::serialize(views, Some(meta)).unwrap();
    std::fs::write(out.join("inputs.safetensors"), bytes).unwrap();
}

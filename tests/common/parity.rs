//! What the PyTorch parity tests share: running a session for its per-step losses
//! and its initial weights, exporting a run's inputs as safetensors for the Python
//! side, and checking coptim's losses against a committed PyTorch reference.

use std::collections::HashMap;
use std::path::Path;

use coptim::model::{Model, NamedTensor};
use coptim::train::{Session, TrainConfig, TrainData};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// How far a loss may be from PyTorch's.
#[derive(Debug, Clone, Copy)]
pub enum LossTolerance {
    /// `|ours - theirs| <= bound`.
    Absolute(f32),
    /// `|ours - theirs| <= bound * |theirs|`.
    Relative(f32),
}

impl LossTolerance {
    /// The error of `ours` against `theirs` in this tolerance's measure.
    fn error(self, ours: f32, theirs: f32) -> f32 {
        match self {
            LossTolerance::Absolute(_) => (ours - theirs).abs(),
            LossTolerance::Relative(_) => (ours - theirs).abs() / theirs.abs(),
        }
    }

    fn bound(self) -> f32 {
        match self {
            LossTolerance::Absolute(b) | LossTolerance::Relative(b) => b,
        }
    }
}

/// One tensor of an inputs file: name, dtype, shape and little-endian bytes.
pub type ExportTensor = (String, Dtype, Vec<usize>, Vec<u8>);

/// The initial weights of a run of `config`, as the model initializes them.
pub fn initial_weights(config: &TrainConfig) -> Vec<NamedTensor> {
    Model::initial_values(config.model.architecture(), config.seed).unwrap()
}

/// The loss of every step of a full run of `config` on `data`, and the f64 sum of
/// each initial tensor by name.
pub fn run_losses(
    config: &TrainConfig,
    data: impl Into<TrainData>,
) -> (Vec<f32>, Vec<(String, f64)>) {
    let ctx = super::ctx();
    let mut s = Session::new(&ctx, config.clone(), data).unwrap();
    s.run_blocking(|_| {}).unwrap();
    let init_sums = initial_weights(config)
        .iter()
        .map(|t| (t.name.clone(), t.values.iter().map(|&x| x as f64).sum()))
        .collect();
    (
        s.history().steps.iter().map(|m| m.loss).collect(),
        init_sums,
    )
}

/// `param.<name>` F32 tensors of `weights`.
pub fn param_tensors(weights: &[NamedTensor]) -> Vec<ExportTensor> {
    weights
        .iter()
        .map(|t| {
            (
                format!("param.{}", t.name),
                Dtype::F32,
                t.shape.clone(),
                bytemuck::cast_slice(&t.values).to_vec(),
            )
        })
        .collect()
}

/// The learning rate of each of the `config.steps` steps (the schedule applied).
pub fn step_lrs(config: &TrainConfig) -> Vec<f64> {
    (1..=config.steps)
        .map(|s| config.lr * config.schedule().factor(s))
        .collect()
}

/// Writes `tensors` with the metadata key `config` = `config_json` to
/// `target/parity/<file>`.
pub fn write_inputs(file: &str, tensors: &[ExportTensor], config_json: String) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, bytes)| (n.clone(), TensorView::new(*d, s.clone(), bytes).unwrap()))
        .collect();
    let meta = HashMap::from([("config".to_string(), config_json)]);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/parity");
    std::fs::create_dir_all(&out).unwrap();
    let bytes = safetensors::serialize(views, Some(meta)).unwrap();
    std::fs::write(out.join(file), bytes).unwrap();
}

/// The committed reference `tests/parity/<file>` (written by `script`).
pub fn read_reference(file: &str, script: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/parity")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} ({e}; run {script})", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Asserts that every initial tensor's sum is within 1e-3 of the reference's
/// `init_sums` (the weights PyTorch trained from are coptim's).
pub fn assert_init_sums(reference: &serde_json::Value, init_sums: &[(String, f64)]) {
    for (name, ours) in init_sums {
        let theirs = reference["init_sums"][name]
            .as_f64()
            .unwrap_or_else(|| panic!("the reference has no init sum of {name}"));
        assert!(
            (ours - theirs).abs() < 1e-3,
            "the initial weights of {name} changed: {ours} vs {theirs}"
        );
    }
    let names = reference["init_sums"].as_object().map_or(0, |m| m.len());
    assert_eq!(names, init_sums.len(), "the reference has other tensors");
}

/// Asserts that `ours` is within `tolerance` of the reference's losses under `key`
/// at every step; returns the largest error (in the tolerance's measure).
pub fn assert_losses_match(
    reference: &serde_json::Value,
    key: &str,
    ours: &[f32],
    tolerance: LossTolerance,
) -> f32 {
    let theirs: Vec<f32> = serde_json::from_value(reference[key].clone()).unwrap();
    assert_eq!(ours.len(), theirs.len(), "{key}: steps");
    let errors: Vec<f32> = ours
        .iter()
        .zip(&theirs)
        .map(|(&a, &b)| tolerance.error(a, b))
        .collect();
    let worst = errors.iter().copied().fold(0.0f32, f32::max);
    println!(
        "{key}: max {tolerance:?}-measure error of coptim vs pytorch loss over {} steps = {worst:.3e}",
        ours.len()
    );
    for (i, e) in errors.iter().enumerate() {
        assert!(
            *e <= tolerance.bound(),
            "{key} step {}: coptim {} vs pytorch {} (error {e:.3e} > {tolerance:?})",
            i + 1,
            ours[i],
            theirs[i]
        );
    }
    worst
}

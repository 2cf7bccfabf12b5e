//! Checkpoints that must not load (non-finite or impossible optimizer state, another
//! data set, an absurd model configuration), restoring into an existing session, and
//! the guard against parameters that turn NaN while the loss stays finite.

mod common;

use std::sync::Arc;

use common::*;
use coptim::data::{DatasetSplit, bundled_mnist};
use coptim::model::{NamedTensor, Vit, VitEncoder};
use coptim::train::{CheckpointFile, ModelSpec, OptimizerKind, Session, TrainConfig};
use coptim::{Error, GpuContext};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn small_data(offset: usize) -> Arc<DatasetSplit> {
    let full = bundled_mnist().expect("bundled data");
    let indices: Vec<usize> = (offset..offset + 256).collect();
    Arc::new(DatasetSplit {
        train: full.train.subset(&indices),
        test: full.test.take(64),
    })
}

fn tiny(steps: u64) -> TrainConfig {
    let mut c = mlp_run(16, OptimizerKind::C_ADAMW, steps);
    c.batch_size = 32;
    c.eval_batch_size = 64;
    c
}

/// A checkpoint after 3 of 6 steps.
fn checkpoint(ctx: &GpuContext, data: &Arc<DatasetSplit>) -> Vec<u8> {
    let mut s = Session::new(ctx, tiny(6), data.clone()).unwrap();
    for _ in 0..3 {
        s.step().unwrap();
    }
    s.wait().unwrap();
    pollster::block_on(s.checkpoint_bytes()).unwrap()
}

/// `bytes` with the first element of tensor `name` (f32) set to `value`.
fn with_value(bytes: &[u8], name: &str, value: f32) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let t = owned.iter_mut().find(|t| t.0 == name).expect(name);
    assert_eq!(t.1, Dtype::F32);
    t.3[..4].copy_from_slice(&value.to_le_bytes());
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, meta.metadata().clone()).unwrap()
}

#[test]
fn non_finite_or_impossible_state_is_rejected_on_load() {
    let ctx = ctx();
    let data = small_data(0);
    let good = checkpoint(&ctx, &data);
    Session::from_checkpoint_bytes(&ctx, data.clone(), &good, "good").expect("a good file loads");
    for (tensor, value) in [
        ("param.fc1.weight", f32::NAN),
        ("param.fc2.bias", f32::INFINITY),
        ("optimizer.exp_avg.fc1.weight", f32::NAN),
        ("optimizer.exp_avg_sq.fc2.weight", f32::NAN),
        ("optimizer.exp_avg_sq.fc1.bias", -1e-3),
        ("optimizer.coptim.bias_correction", f32::NAN),
    ] {
        let bad = with_value(&good, tensor, value);
        let err = Session::from_checkpoint_bytes(&ctx, data.clone(), &bad, "bad").unwrap_err();
        let Error::Checkpoint { reason, .. } = &err else {
            panic!("{tensor} = {value}: expected a checkpoint error, got {err}");
        };
        let short = tensor.rsplit_once('.').unwrap().0;
        let short = short.strip_prefix("param.").unwrap_or(short);
        let short = short.strip_prefix("optimizer.").unwrap_or(short);
        assert!(reason.contains(short), "{tensor}: {reason}");
    }
}

/// `bytes` with its `config` metadata changed by `edit`.
fn with_config(bytes: &[u8], edit: impl FnOnce(&mut TrainConfig)) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta = meta.metadata().clone().unwrap();
    let mut config: TrainConfig = serde_json::from_str(&meta["config"]).unwrap();
    edit(&mut config);
    meta.insert("config".into(), serde_json::to_string(&config).unwrap());
    safetensors::serialize(st.tensors(), Some(meta)).unwrap()
}

/// Found by fuzzing with a ViT checkpoint: a depth of 2^32 + 1 made listing the
/// model's parameters run (and allocate) without bound before any check.
#[test]
fn a_checkpoint_declaring_an_absurd_model_is_rejected_before_listing_it() {
    let ctx = ctx();
    let data = small_data(0);
    let good = checkpoint(&ctx, &data);
    for encoder in [
        VitEncoder {
            depth: (1 << 32) + 1,
            ..VitEncoder::default()
        },
        VitEncoder {
            dim: usize::MAX / 2,
            heads: 1,
            ..VitEncoder::default()
        },
    ] {
        let bad = with_config(&good, |c| {
            c.model = ModelSpec::Vit(Vit {
                encoder,
                ..Vit::default()
            })
        });
        let err = CheckpointFile::parse(&bad, &data.clone().into(), "bad").unwrap_err();
        assert!(
            matches!(&err, Error::Checkpoint { reason, .. } if reason.contains("ViT configuration")),
            "{err}"
        );
    }
}

/// A checkpoint restores into a session made with its configuration (resuming it
/// there exactly as a new session would), and into no other.
#[test]
fn restore_needs_the_sessions_own_configuration() {
    let ctx = ctx();
    let data = small_data(0);
    let bytes = checkpoint(&ctx, &data);
    let file = CheckpointFile::parse(&bytes, &data.clone().into(), "ckpt").unwrap();
    assert_eq!(file.step(), 3);
    let mut other = Session::new(&ctx, tiny(7), data.clone()).unwrap();
    let err = other.restore(&file).unwrap_err();
    assert!(err.to_string().contains("configuration"), "{err}");
    assert_eq!(other.steps_recorded(), 0);

    let mut fresh = Session::from_checkpoint_bytes(&ctx, data.clone(), &bytes, "ckpt").unwrap();
    let mut reused = Session::new(&ctx, tiny(6), data).unwrap();
    reused.step().unwrap();
    reused.wait().unwrap();
    reused.restore(&file).unwrap();
    for s in [&mut fresh, &mut reused] {
        s.run_blocking(|_| {}).unwrap();
    }
    let outcome = |s: &Session| {
        let steps: Vec<_> = s
            .history()
            .steps
            .iter()
            .map(|m| (m.step, m.loss, m.kept_fraction))
            .collect();
        (steps, s.history().evals.clone())
    };
    assert_eq!(outcome(&fresh), outcome(&reused));
    assert_eq!(
        fresh.model().read_parameters_blocking().unwrap(),
        reused.model().read_parameters_blocking().unwrap()
    );
}

#[test]
fn a_checkpoint_resumes_only_on_its_own_data() {
    let ctx = ctx();
    let data = small_data(0);
    let bytes = checkpoint(&ctx, &data);
    let other = small_data(256);
    assert_eq!(other.train.image_shape(), data.train.image_shape());
    let err = Session::from_checkpoint_bytes(&ctx, other, &bytes, "ckpt").unwrap_err();
    assert!(err.to_string().contains("different data"), "{err}");
}

#[test]
fn nan_parameters_stop_the_run_even_when_the_loss_stays_finite() {
    let ctx = ctx();
    let data = small_data(0);
    let mut s = Session::new(&ctx, tiny(4), data).unwrap();
    let mut params: Vec<NamedTensor> = s.model().read_parameters_blocking().unwrap();
    // One first-layer weight of one hidden unit: ReLU may hide it from the loss.
    let fc1 = params.iter_mut().find(|t| t.name == "fc1.weight").unwrap();
    fc1.values[0] = f32::NAN;
    s.model().write_parameters(&params).unwrap();
    let err = s.run_blocking(|_| {}).unwrap_err();
    // The loss may stay finite (ReLU hides the NaN); the parameter check does not.
    assert!(
        matches!(err, Error::NonFiniteParameters { ref tensor, .. } if tensor == "fc1.weight"),
        "{err}"
    );
}

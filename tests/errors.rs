//! Bad input gets a typed error, never a panic or a GPU validation failure, and
//! loses nothing.

mod common;

use common::*;
use coptim::arena::ArenaLimits;
use coptim::optim::{AdamW, Algorithm, Caution, GroupConfig, Normalization, OptimizerConfig};
use coptim::{ContextOptions, Error, GpuContext, Layout, Optimizer, ParamStore, TensorId};

#[test]
fn wrong_lengths_and_names() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &[("w", vec![4, 3]), ("b", vec![4])]).unwrap();
    store.params.write_named(&ctx, "b", &[1.0; 4]).unwrap();
    let err = store.params.write_named(&ctx, "b", &[1.0; 5]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 4,
                got: 5,
                ..
            }
        ),
        "{err}"
    );
    let err = store.grads.write(&ctx, TensorId(0), &[]).unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { .. }), "{err}");
    let err = store.params.write_named(&ctx, "nope", &[1.0]).unwrap_err();
    assert!(
        matches!(err, Error::UnknownTensor(ref n) if n == "nope"),
        "{err}"
    );
    let err = store
        .params
        .write_bytes(&ctx, TensorId(1), &[0u8; 15])
        .unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { .. }), "{err}");
    // Nothing was written by the failed calls.
    assert_eq!(
        store.params.read_named_blocking(&ctx, "b").unwrap(),
        [1.0; 4]
    );
}

#[test]
fn bad_layouts() {
    let ctx = ctx();
    let err = ParamStore::new(&ctx, &[("w", vec![3, 0])]).unwrap_err();
    assert!(matches!(err, Error::EmptyTensor(_)), "{err}");
    let err = ParamStore::new(&ctx, &[("w", vec![3]), ("w", vec![3])]).unwrap_err();
    assert!(matches!(err, Error::DuplicateTensor(_)), "{err}");
    let limits = ArenaLimits::from_limits(ctx.limits()).capped(1024, 4096);
    let err = ParamStore::with_limits(&ctx, &[("w", vec![2000])], limits).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    // A tensor larger than a binding cannot be bound alone by a caller.
    let limits = ArenaLimits::from_limits(ctx.limits()).capped(1024, 1 << 20);
    let store = ParamStore::with_limits(&ctx, &[("w", vec![1000])], limits).unwrap();
    assert!(matches!(
        store.params.binding(TensorId(0)),
        Err(Error::LimitExceeded { .. })
    ));
    let layout = Layout::new(&[("a", vec![1])], limits).unwrap();
    assert!(matches!(layout.id("b"), Err(Error::UnknownTensor(_))));
}

#[test]
fn bad_configs() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &[("w", vec![8]), ("b", vec![2])]).unwrap();
    let bad = [
        OptimizerConfig::new(
            Algorithm::AdamW(AdamW {
                beta1: 1.0,
                beta2: 0.999,
                eps: 1e-8,
                eps_style: Default::default(),
            }),
            1e-3,
        ),
        OptimizerConfig::new(
            Algorithm::AdamW(AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 0.0,
                eps_style: Default::default(),
            }),
            1e-3,
        ),
        OptimizerConfig::lion(-1.0),
        OptimizerConfig::lion(f64::NAN),
        OptimizerConfig::sgd(1e-2, false).with_weight_decay(-0.1),
        OptimizerConfig::sgd(1e-2, false).with_clip_grad_norm(0.0),
        OptimizerConfig::adamw(1e-3).with_caution(Caution::Soft {
            factor: 1.5,
            normalization: Normalization::mean_clamp(),
        }),
        OptimizerConfig::adamw(1e-3).with_caution(Caution::Hard {
            normalization: Normalization::MeanClamp { min: 0.0 },
        }),
    ];
    for cfg in bad {
        let err = Optimizer::new(&ctx, &store, cfg.clone()).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{cfg:?}: {err}");
    }
    let group = |name: &str, tensors: &[&str]| GroupConfig {
        name: name.into(),
        tensors: tensors.iter().map(|s| s.to_string()).collect(),
        lr_scale: 1.0,
        weight_decay: 0.0,
    };
    let err = Optimizer::new(
        &ctx,
        &store,
        OptimizerConfig::adamw(1e-3).with_group(group("g", &["missing"])),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownTensor(_)), "{err}");
    let cfg = OptimizerConfig::adamw(1e-3)
        .with_group(group("a", &["w"]))
        .with_group(group("b", &["w"]));
    assert!(matches!(
        Optimizer::new(&ctx, &store, cfg).unwrap_err(),
        Error::InvalidConfig(_)
    ));
    let mut cfg = OptimizerConfig::adamw(1e-3);
    for i in 0..16 {
        cfg = cfg.with_group(group(&format!("g{i}"), &[]));
    }
    assert!(matches!(
        Optimizer::new(&ctx, &store, cfg).unwrap_err(),
        Error::LimitExceeded { .. }
    ));
}

#[test]
fn missing_feature_is_a_typed_error() {
    let candidates = [
        wgpu::Features::TEXTURE_COMPRESSION_ASTC_HDR,
        wgpu::Features::EXPERIMENTAL_RAY_QUERY,
        wgpu::Features::SHADER_F64,
        wgpu::Features::PIPELINE_STATISTICS_QUERY,
    ];
    let ctx = ctx();
    let have = ctx.device().features();
    let Some(&missing) = candidates.iter().find(|f| !have.contains(**f)) else {
        eprintln!("skipped: this adapter has every candidate feature");
        return;
    };
    let opts = ContextOptions {
        required_features: missing,
        ..Default::default()
    };
    let err = GpuContext::new_blocking(&opts).unwrap_err();
    assert!(matches!(err, Error::MissingFeature { .. }), "{err}");
}

#[test]
fn lost_device_is_reported() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &[("w", vec![8])]).unwrap();
    let mut opt = Optimizer::new(&ctx, &store, OptimizerConfig::adamw(1e-3)).unwrap();
    ctx.device().destroy();
    let _ = ctx.device().poll(wgpu::PollType::Poll);
    let err = opt.step().unwrap_err();
    assert!(matches!(err, Error::DeviceLost(_)), "{err}");
    let err = store.params.read_blocking(&ctx, TensorId(0)).unwrap_err();
    assert!(matches!(err, Error::DeviceLost(_)), "{err}");
}

//! Behaviour around the step: non-finite gradients, clipping, groups, schedules,
//! empty masks, the portable (no-subgroup) reduction and determinism.

mod common;

use common::*;
use coptim::arena::ParamSet;
use coptim::optim::{
    Caution, GroupConfig, LrSchedule, OptimizerConfig, OptimizerOptions, ReferenceOptimizer,
};
use coptim::{Optimizer, ParamStore, TensorId};

const TOL: f64 = 1e-6;

fn shapes() -> Vec<(String, Vec<usize>)> {
    vec![
        ("fc.weight".into(), vec![31, 9]),
        ("fc.bias".into(), vec![31]),
        ("norm.weight".into(), vec![1]),
        ("big".into(), vec![5000]),
    ]
}

fn bits(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter()
        .map(|t| t.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[test]
fn nonfinite_gradient_skips_the_step_and_changes_nothing() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &shapes()).unwrap();
    for cfg in [
        OptimizerConfig::adamw(1e-2).with_caution(Caution::hard()),
        OptimizerConfig::adamw(1e-2),
        OptimizerConfig::lion(1e-3).with_clip_grad_norm(1.0),
    ] {
        let mut opt = Optimizer::new(&ctx, &store, cfg.clone()).unwrap();
        let mut r = rng(5);
        for (i, (_, s)) in shapes().iter().enumerate() {
            let n: usize = s.iter().product();
            store
                .params
                .write(&ctx, TensorId(i), &to_f32(&randn(&mut r, n, 1.0)))
                .unwrap();
            store
                .grads
                .write(&ctx, TensorId(i), &to_f32(&randn(&mut r, n, 1.0)))
                .unwrap();
        }
        opt.step_blocking().unwrap();
        let params = store.params.read_all_blocking(&ctx).unwrap();
        let state = opt.state()[0].read_all_blocking(&ctx).unwrap();
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut g = vec![0.5f32; 5000];
            g[4321] = bad;
            store.grads.write(&ctx, TensorId(3), &g).unwrap();
            opt.step_blocking().unwrap();
            let stats = opt.stats_blocking().unwrap();
            assert!(
                stats.skipped,
                "{cfg:?}: a {bad} gradient must skip the step"
            );
            assert!(
                stats.kept.iter().all(|&k| k == 0),
                "{cfg:?}: a skipped step keeps nothing: {:?}",
                stats.kept
            );
            assert_eq!(stats.completed_steps, 1);
            assert_eq!(
                bits(&store.params.read_all_blocking(&ctx).unwrap()),
                bits(&params)
            );
            assert_eq!(
                bits(&opt.state()[0].read_all_blocking(&ctx).unwrap()),
                bits(&state)
            );
        }
        // A finite gradient steps again, as step 2.
        store
            .grads
            .write(&ctx, TensorId(3), &vec![0.5f32; 5000])
            .unwrap();
        opt.step_blocking().unwrap();
        let stats = opt.stats_blocking().unwrap();
        assert!(!stats.skipped);
        assert_eq!(stats.completed_steps, 2);
    }
}

/// After a skipped step the bias correction continues from the last completed step,
/// as in the reference (and PyTorch's GradScaler, which skips `optimizer.step()`).
#[test]
fn skipped_steps_match_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &shapes()).unwrap();
    let cfg = OptimizerConfig::adamw(1e-2)
        .with_caution(Caution::hard())
        .with_weight_decay(0.1);
    let set = ParamSet::from(&store);
    let names = tensor_names(&set);
    let mut reference = ReferenceOptimizer::new(cfg.clone(), &names).unwrap();
    let mut opt = Optimizer::new(&ctx, &store, cfg).unwrap();
    let mut r = rng(9);
    let mut params = random_tensors(&mut r, &names, 1.0);
    upload_params(&ctx, &set, &params);
    for step in 0..5 {
        let mut grads = random_tensors(&mut r, &names, 1.0);
        if step == 2 {
            grads[1][3] = f64::NAN;
        }
        upload_grads(&ctx, &set, &grads);
        opt.step_blocking().unwrap();
        let report = reference.step(&mut params, &grads).unwrap();
        assert_eq!(report.skipped, step == 2);
        for (g, p) in store
            .params
            .read_all_blocking(&ctx)
            .unwrap()
            .iter()
            .zip(&params)
        {
            assert!(rel_err(&to_f64(g), p) <= TOL);
        }
    }
}

#[test]
fn clipping_groups_and_schedule_match_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &shapes()).unwrap();
    let no_decay = GroupConfig {
        name: "no_decay".into(),
        tensors: vec!["fc.bias".into(), "norm.weight".into()],
        lr_scale: 0.5,
        weight_decay: 0.0,
    };
    for base in [
        OptimizerConfig::adamw(1e-2),
        OptimizerConfig::lion(1e-3),
        OptimizerConfig::sgd(1e-2, false),
    ] {
        let cfg = base
            .with_caution(Caution::hard())
            .with_weight_decay(0.05)
            .with_group(no_decay.clone())
            .with_clip_grad_norm(0.5)
            .with_schedule(LrSchedule::WarmupCosine {
                warmup: 2,
                total: 5,
                floor: 0.1,
            });
        compare_with_reference(&ctx, &store, cfg, OptimizerOptions::default(), 5, 21, TOL);
    }
}

/// An all-zero gradient gives an empty mask: under mean_clamp the scale is 0, so the
/// tensor only receives weight decay.
#[test]
fn zero_gradient_tensor_only_decays() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &[("w", vec![300])]).unwrap();
    let p0: Vec<f32> = (0..300).map(|i| i as f32 / 100.0 - 1.5).collect();
    store.params.write(&ctx, TensorId(0), &p0).unwrap();
    let mut opt = Optimizer::new(
        &ctx,
        &store,
        OptimizerConfig::adamw(0.1)
            .with_caution(Caution::hard())
            .with_weight_decay(0.5),
    )
    .unwrap();
    opt.step_blocking().unwrap();
    let stats = opt.stats_blocking().unwrap();
    assert_eq!(stats.kept, [0]);
    let p1 = store.params.read_blocking(&ctx, TensorId(0)).unwrap();
    let decay = 1.0f32 - 0.1 * 0.5;
    for (a, b) in p1.iter().zip(&p0) {
        assert_eq!(*a, b * decay);
    }
}

#[test]
fn portable_reduction_without_subgroups_matches_reference() {
    let ctx = ctx().without(true, false);
    assert!(!ctx.capabilities().subgroups);
    let store = ParamStore::new(&ctx, &shapes()).unwrap();
    for base in [
        OptimizerConfig::adamw(1e-2),
        OptimizerConfig::lion(1e-3),
        OptimizerConfig::sgd(1e-2, true),
    ] {
        let cfg = base.with_caution(Caution::hard()).with_weight_decay(0.01);
        compare_with_reference(&ctx, &store, cfg, OptimizerOptions::default(), 3, 31, TOL);
    }
}

/// The same inputs give the same bits, clipping included.
#[test]
fn steps_are_deterministic() {
    let ctx = ctx();
    let run = || {
        let store = ParamStore::new(&ctx, &shapes()).unwrap();
        let mut r = rng(77);
        for (i, (_, s)) in shapes().iter().enumerate() {
            store
                .params
                .write(
                    &ctx,
                    TensorId(i),
                    &to_f32(&randn(&mut r, s.iter().product(), 1.0)),
                )
                .unwrap();
        }
        let cfg = OptimizerConfig::adamw(1e-2)
            .with_caution(Caution::hard())
            .with_clip_grad_norm(0.3);
        let mut opt = Optimizer::new(&ctx, &store, cfg).unwrap();
        let mut norms = Vec::new();
        for _ in 0..4 {
            for (i, (_, s)) in shapes().iter().enumerate() {
                store
                    .grads
                    .write(
                        &ctx,
                        TensorId(i),
                        &to_f32(&randn(&mut r, s.iter().product(), 2.0)),
                    )
                    .unwrap();
            }
            opt.step_blocking().unwrap();
            norms.push(opt.stats_blocking().unwrap().grad_norm.to_bits());
        }
        (bits(&store.params.read_all_blocking(&ctx).unwrap()), norms)
    };
    assert_eq!(run(), run());
}

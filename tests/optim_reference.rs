//! GPU optimizers against the f64 CPU reference.

mod common;

use common::*;
use coptim::optim::{
    AdamW, Algorithm, Caution, DecayMode, EpsStyle, GroupConfig, LrSchedule, Normalization,
    OptimizerConfig, OptimizerOptions,
};
use coptim::stream::StreamShape;
use coptim::{GpuContext, ParamStore};

/// Parameters after a few f32 steps stay within this relative error
/// (max |gpu - ref| / max |ref| per tensor) of the f64 reference: each step adds a few
/// f32 roundings (about 6e-8 each) to values of order 1, and Adam's division by
/// sqrt(v) + eps can amplify an ulp of v by a factor of a few.
const TOL: f64 = 1e-6;

const ODD_SIZES: [usize; 6] = [1, 7, 255, 256, 257, 5000];

/// Runs `cfg` (default options) against the reference for `steps` steps of the
/// gradients of `seed` within [`TOL`], printing the largest error seen.
fn check(ctx: &GpuContext, store: &ParamStore, cfg: OptimizerConfig, steps: usize, seed: u64) {
    let label = format!("{} {:?}", cfg.algorithm.name(), cfg.caution);
    let opt = OptimizerOptions::default();
    let c = compare_with_reference(ctx, store, cfg, opt, steps, seed, TOL);
    eprintln!("{label}: max rel {:e}", c.max_rel);
}

#[test]
fn cautious_adamw_matches_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &flat_shapes(&ODD_SIZES)).unwrap();
    let cfg = OptimizerConfig::adamw(1e-2)
        .with_caution(Caution::hard())
        .with_weight_decay(0.01);
    check(&ctx, &store, cfg, 4, 1);
}

/// ADOPT's weight decay in every mode, under a cosine schedule and a global clip:
/// coupled (into the gradient, per group, the mask seeing it; timm's correction does not
/// touch it), decoupled, corrected, cautious; and without the normalized-gradient clip
/// (the golden cases `timm_*adopt_noclip` have it with coupled decay).
#[test]
fn adopt_decay_modes_match_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &flat_shapes(&ODD_SIZES)).unwrap();
    let timm = |name: &str, kwargs: serde_json::Value| {
        OptimizerConfig::from_timm(name, &kwargs)
            .unwrap()
            .with_schedule(LrSchedule::Cosine {
                total: 5,
                floor: 0.1,
            })
            .with_clip_grad_norm(20.0)
    };
    let no_decay = GroupConfig {
        name: "no_decay".into(),
        tensors: vec!["t1".into(), "t4".into()],
        lr_scale: 0.5,
        weight_decay: 0.0,
    };
    let wd = serde_json::json!({"lr": 1e-2, "weight_decay": 0.1});
    for cfg in [
        timm("cadopt", wd.clone()).with_group(no_decay.clone()),
        timm(
            "adopt",
            serde_json::json!({"weight_decay": 0.1, "corrected_weight_decay": true}),
        ),
        timm("cadoptw", wd.clone()).with_decay(DecayMode::CAUTIOUS),
        timm("cadoptc", wd.clone()).with_group(no_decay),
        // Unclipped, the first update divides by |g_1 + wd * p|, which f32 cancellation
        // can make arbitrarily inexact: without decay.
        timm("cadopt", serde_json::json!({"clip_exp": null})),
    ] {
        check(&ctx, &store, cfg, 5, 7);
    }
}

/// Adan's decay modes under a cosine schedule, a global clip and a no-decay group:
/// proximal (`adan`) and decoupled (`adanw`), plain and cautious, cautious weight decay
/// (tested against the whole unmasked update) and coptim's corrected decay.
#[test]
fn adan_decay_modes_match_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &flat_shapes(&ODD_SIZES)).unwrap();
    let no_decay = GroupConfig {
        name: "no_decay".into(),
        tensors: vec!["t1".into(), "t4".into()],
        lr_scale: 0.5,
        weight_decay: 0.0,
    };
    let timm = |name: &str| {
        OptimizerConfig::from_timm(name, &serde_json::json!({"lr": 1e-2, "weight_decay": 0.5}))
            .unwrap()
            .with_schedule(LrSchedule::Cosine {
                total: 5,
                floor: 0.1,
            })
            .with_clip_grad_norm(20.0)
            .with_group(no_decay.clone())
    };
    for cfg in [
        timm("adan"),
        timm("cadan").with_decay(DecayMode::CAUTIOUS),
        timm("adanw").with_decay(DecayMode::CAUTIOUS),
        timm("cadanw").with_decay(DecayMode::CORRECTED),
    ] {
        check(&ctx, &store, cfg, 5, 9);
    }
}

#[test]
fn plain_adamw_lion_sgd_match_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &flat_shapes(&ODD_SIZES)).unwrap();
    for cfg in [
        OptimizerConfig::adamw(1e-2),
        OptimizerConfig::lion(1e-3).with_weight_decay(0.1),
        OptimizerConfig::sgd(1e-2, false),
        OptimizerConfig::sgd(1e-2, true).with_weight_decay(0.01),
    ] {
        check(&ctx, &store, cfg, 3, 2);
    }
}

#[test]
fn every_caution_mode_matches_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &flat_shapes(&ODD_SIZES)).unwrap();
    let modes = [
        Caution::hard(),
        Caution::Hard {
            normalization: Normalization::NumelOverCountPlusOne,
        },
        Caution::Hard {
            normalization: Normalization::MeanPlusEps { eps: 1e-8 },
        },
        Caution::Soft {
            factor: 0.1,
            normalization: Normalization::mean_clamp(),
        },
    ];
    for caution in modes {
        for base in [
            OptimizerConfig::adamw(1e-2),
            OptimizerConfig::lion(1e-3),
            OptimizerConfig::sgd(1e-2, true),
        ] {
            check(
                &ctx,
                &store,
                base.with_caution(caution).with_weight_decay(0.01),
                3,
                3,
            );
        }
    }
}

/// The HF-style eps placement (`sqrt(v) + eps`, step `lr * sqrt(bc2) / bc1`).
#[test]
fn hf_eps_style_matches_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &flat_shapes(&ODD_SIZES)).unwrap();
    let algorithm = Algorithm::AdamW(AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-6,
        eps_style: EpsStyle::Hf,
    });
    for caution in [Caution::Off, Caution::hard()] {
        let cfg = OptimizerConfig::new(algorithm, 1e-2)
            .with_caution(caution)
            .with_weight_decay(0.01);
        check(&ctx, &store, cfg, 4, 4);
    }
}

/// Every stream shape (the GPU's 256 x 4 and the CPU adapters' long runs, forced on
/// whatever adapter runs the tests), with and without subgroups, matches the
/// reference: the update, the count pass, and the clipping reductions whose
/// summation order the shape changes (still within TOL: a different order of f32
/// additions of positive terms moves the norm by a few ulps).
#[test]
fn every_stream_shape_matches_reference() {
    let base = ctx();
    // Odd sizes plus a tensor of two full blocks and a ragged third.
    let mut sizes = ODD_SIZES.to_vec();
    sizes.push(2 * 4096 + 5);
    for shape in StreamShape::ALL {
        for no_subgroups in [false, true] {
            let ctx = base.with_stream_shape(shape).without(no_subgroups, false);
            assert_eq!(ctx.stream_shape(), shape);
            let store = ParamStore::new(&ctx, &flat_shapes(&sizes)).unwrap();
            for cfg in [
                OptimizerConfig::adamw(1e-2)
                    .with_caution(Caution::hard())
                    .with_clip_grad_norm(0.5),
                OptimizerConfig::lion(1e-3).with_caution(Caution::hard()),
                OptimizerConfig::sgd(1e-2, true).with_weight_decay(0.01),
            ] {
                let opt = OptimizerOptions::default();
                let c = compare_with_reference(&ctx, &store, cfg.clone(), opt, 3, 5, TOL);
                eprintln!(
                    "{} {} subgroups={}: max rel {:e}",
                    shape.name(),
                    cfg.algorithm.name(),
                    !no_subgroups,
                    c.max_rel
                );
            }
        }
    }
}

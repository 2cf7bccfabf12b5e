//! RMSpropTF on the GPU against the f64 reference in every state layout (1, 2 or 3
//! state tensors), with the learning rate changing every step (the momentum buffer
//! stores lr-scaled values when `lr_in_momentum`, so a GPU step that used another
//! step's rate would drift from the reference), and its configuration errors.

mod common;

use common::*;
use coptim::Error;
use coptim::optim::{
    Algorithm, Caution, DecayMode, LrSchedule, OptimizerConfig, OptimizerOptions, RmsPropTf,
};
use coptim::{GpuContext, ParamStore};

/// Parameters after 4 f32 steps stay within this relative error of the f64 reference:
/// each step adds a few f32 roundings (about 6e-8 each) to values of order 1, and the
/// division by sqrt(square_avg + eps) can amplify an ulp of square_avg by a few.
const TOL: f64 = 1e-6;

const ODD_SIZES: [usize; 6] = [1, 7, 255, 256, 257, 5000];

/// A cosine schedule: a different learning rate every step.
const COSINE: LrSchedule = LrSchedule::Cosine {
    total: 4,
    floor: 0.1,
};

fn rmsprop(momentum: f64, centered: bool, lr_in_momentum: bool, decoupled: bool) -> RmsPropTf {
    RmsPropTf {
        momentum,
        centered,
        lr_in_momentum,
        decoupled,
        ..RmsPropTf::default()
    }
}

/// Every layout, both momentum conventions, coupled and decoupled decay, cautious
/// where there is a momentum buffer to mask, under a per-step learning rate.
#[test]
fn every_layout_matches_reference_under_a_schedule() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &flat_shapes(&ODD_SIZES)).unwrap();
    let mut runs = 0;
    for momentum in [0.0, 0.9] {
        for centered in [false, true] {
            for lr_in_momentum in [true, false] {
                for decoupled in [false, true] {
                    let rms = rmsprop(momentum, centered, lr_in_momentum, decoupled);
                    for caution in [Caution::Off, Caution::hard()] {
                        if caution.is_on() && momentum == 0.0 {
                            continue;
                        }
                        check(&ctx, &store, rms, caution);
                        runs += 1;
                    }
                }
            }
        }
    }
    assert_eq!(runs, 24);
}

fn check(ctx: &GpuContext, store: &ParamStore, rms: RmsPropTf, caution: Caution) {
    let cfg = OptimizerConfig::new(Algorithm::RmsPropTf(rms), 1e-2)
        .with_caution(caution)
        .with_weight_decay(0.05)
        .with_schedule(COSINE);
    let c = compare_with_reference(ctx, store, cfg, OptimizerOptions::default(), 4, 3, TOL);
    eprintln!("{rms:?} {caution:?}: max rel {:e}", c.max_rel);
}

fn invalid(cfg: OptimizerConfig) -> String {
    match cfg.validate() {
        Err(Error::InvalidConfig(msg)) => msg,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// Caution without momentum has nothing to mask, and coupled decay has no decoupled
/// decay to make cautious: clear errors. Out-of-range hyperparameters
/// name themselves. timm's `crmsproptf` with momentum 0 masks nothing, so its caution
/// is off.
#[test]
fn configurations_it_cannot_apply_are_errors() {
    let no_momentum = Algorithm::RmsPropTf(rmsprop(0.0, false, true, false));
    let msg = invalid(OptimizerConfig::new(no_momentum, 1e-2).with_caution(Caution::hard()));
    assert!(msg.contains("momentum"), "{msg}");
    let coupled = Algorithm::RmsPropTf(RmsPropTf::default());
    let msg = invalid(OptimizerConfig::new(coupled, 1e-2).with_decay(DecayMode::CAUTIOUS));
    assert!(msg.contains("decoupled"), "{msg}");
    for (bad, name) in [
        (
            RmsPropTf {
                alpha: 1.0,
                ..RmsPropTf::default()
            },
            "alpha",
        ),
        (
            RmsPropTf {
                eps: 0.0,
                ..RmsPropTf::default()
            },
            "eps",
        ),
        (
            RmsPropTf {
                momentum: -0.1,
                ..RmsPropTf::default()
            },
            "momentum",
        ),
    ] {
        let msg = invalid(OptimizerConfig::new(Algorithm::RmsPropTf(bad), 1e-2));
        assert!(msg.contains(name), "{msg}");
    }
    let cfg = OptimizerConfig::from_timm("crmsproptf", &serde_json::json!({"momentum": 0.0}));
    assert!(!cfg.unwrap().caution.is_on());
}

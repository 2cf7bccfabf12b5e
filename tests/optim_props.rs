//! Property tests (proptest) of the GPU optimizers.

mod common;

use common::*;
use coptim::optim::{Adopt, Algorithm, Caution, Lamb, Normalization, OptimizerConfig};
use coptim::{GpuContext, Optimizer, ParamStore, TensorId};
use proptest::prelude::*;
use std::sync::OnceLock;

fn shared_ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(ctx)
}

/// The family: every member with timm's defaults, and SGD without Nesterov. LAMB runs
/// without its global clip, and ADOPT with a negligible eps (its 1e-6 floor under
/// `sqrt(v)`), neither of which is scale-invariant (the golden cases and
/// tests/tensor_sums.rs cover them).
fn family() -> Vec<Algorithm> {
    let mut all: Vec<Algorithm> = Algorithm::members()
        .into_iter()
        .map(|a| match a {
            Algorithm::Lamb(lamb) => Algorithm::Lamb(Lamb {
                max_grad_norm: None,
                ..lamb
            }),
            Algorithm::Adopt(adopt) => Algorithm::Adopt(Adopt {
                eps: 1e-20,
                ..adopt
            }),
            other => other,
        })
        .collect();
    all.push(Algorithm::sgd(false));
    all
}

/// How the first state tensor scales when the gradients it was accumulated from are
/// scaled by c: as c (a momentum of g), or not at all (LaProp's and ADOPT's momentum of
/// the normalized gradient).
fn state0_scales_with_gradient(cfg: &OptimizerConfig) -> bool {
    !matches!(cfg.algorithm, Algorithm::LaProp(_) | Algorithm::Adopt(_))
}

/// Steps until the first update: ADOPT's first step only sets its second moment.
fn steps_to_first_update(cfg: &OptimizerConfig) -> usize {
    if matches!(cfg.algorithm, Algorithm::Adopt(_)) {
        2
    } else {
        1
    }
}

/// Member `kind` (modulo the family's size) with learning rate `lr`.
fn base(kind: u8, lr: f64) -> OptimizerConfig {
    let all = family();
    OptimizerConfig::new(all[kind as usize % all.len()], lr)
}

/// Runs the steps up to the first update (one, two for ADOPT), every one with the given
/// gradients, from the given params and (initial) state; returns params, first state
/// and kept counts of the last.
fn one_step(
    cfg: OptimizerConfig,
    sizes: &[usize],
    params: &[Vec<f32>],
    grads: &[Vec<f32>],
    state0: Option<&[Vec<f32>]>,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<u64>) {
    let ctx = shared_ctx();
    let store = ParamStore::new(ctx, &flat_shapes(sizes)).unwrap();
    let steps = steps_to_first_update(&cfg);
    let mut opt = Optimizer::new(ctx, &store, cfg).unwrap();
    for i in 0..sizes.len() {
        store.params.write(ctx, TensorId(i), &params[i]).unwrap();
        store.grads.write(ctx, TensorId(i), &grads[i]).unwrap();
        if let Some(s) = state0 {
            opt.state()[0].write(ctx, TensorId(i), &s[i]).unwrap();
        }
    }
    for _ in 0..steps {
        opt.step_blocking().unwrap();
    }
    let stats = opt.stats_blocking().unwrap();
    (
        store.params.read_all_blocking(ctx).unwrap(),
        opt.state()[0].read_all_blocking(ctx).unwrap(),
        stats.kept,
    )
}

fn tensors(sizes: &[usize], seed: u64, scale: f64) -> Vec<Vec<f32>> {
    let mut r = rng(seed);
    sizes
        .iter()
        .map(|&n| to_f32(&randn(&mut r, n, scale)))
        .collect()
}

fn nonzero(v: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    v.into_iter()
        .map(|t| {
            t.into_iter()
                .map(|x| if x == 0.0 { 1e-3 } else { x })
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// With caution off the GPU step equals the plain optimizer (the f64 reference).
    #[test]
    fn caution_off_is_the_plain_optimizer(kind in 0u8..16, sizes in prop::collection::vec(1usize..600, 1..4), seed in 0u64..1000, wd in 0.0f64..0.2) {
        let cfg = base(kind, 1e-2).with_weight_decay(wd);
        let store = ParamStore::new(shared_ctx(), &flat_shapes(&sizes)).unwrap();
        compare_with_reference(shared_ctx(), &store, cfg, Default::default(), 2, seed, 1e-6);
    }

    /// Rescaling the gradient (and the momentum it was accumulated from) by a positive
    /// factor leaves the mask, and so the kept counts, unchanged.
    #[test]
    fn positive_rescale_keeps_the_mask(kind in 0u8..16, sizes in prop::collection::vec(1usize..600, 1..4), seed in 0u64..1000, log_c in -3.0f64..3.0) {
        let c = 10f64.powf(log_c) as f32;
        let cfg = base(kind, 1e-3).with_caution(Caution::hard());
        let params = tensors(&sizes, seed, 1.0);
        let grads = tensors(&sizes, seed + 1, 1.0);
        let state = tensors(&sizes, seed + 2, 0.5);
        let scaled = |v: &Vec<Vec<f32>>, c: f32| v.iter().map(|t| t.iter().map(|x| x * c).collect()).collect::<Vec<Vec<f32>>>();
        // Adam's first step is independent of v; give every member a non-zero momentum.
        let state_c = if state0_scales_with_gradient(&cfg) { c } else { 1.0 };
        let (_, _, kept) = one_step(cfg.clone(), &sizes, &params, &grads, Some(&state));
        let (_, _, kept_scaled) = one_step(cfg, &sizes, &params, &scaled(&grads, c), Some(&scaled(&state, state_c)));
        prop_assert_eq!(kept, kept_scaled);
    }

    /// When every coordinate agrees (the first update of every optimizer, non-zero
    /// gradients), mean_clamp caution is exactly the plain step.
    #[test]
    fn full_agreement_equals_plain(kind in 0u8..16, sizes in prop::collection::vec(1usize..600, 1..4), seed in 0u64..1000) {
        let params = tensors(&sizes, seed, 1.0);
        let grads = nonzero(tensors(&sizes, seed + 1, 1.0));
        let (plain, _, _) = one_step(base(kind, 1e-2), &sizes, &params, &grads, None);
        let cfg = base(kind, 1e-2).with_caution(Caution::Hard { normalization: Normalization::mean_clamp() });
        let (cautious, _, kept) = one_step(cfg, &sizes, &params, &grads, None);
        prop_assert_eq!(kept, sizes.iter().map(|&n| n as u64).collect::<Vec<_>>());
        prop_assert_eq!(plain, cautious);
    }

    /// A step with a non-finite gradient anywhere changes no parameter and no state.
    #[test]
    fn nonfinite_step_changes_nothing(kind in 0u8..16, sizes in prop::collection::vec(1usize..600, 1..4), seed in 0u64..1000, which in 0usize..3, pos in 0usize..600, caution in any::<bool>()) {
        let mut cfg = base(kind, 1e-2).with_weight_decay(0.1);
        if caution {
            cfg = cfg.with_caution(Caution::hard());
        }
        let params = tensors(&sizes, seed, 1.0);
        let mut grads = tensors(&sizes, seed + 1, 1.0);
        let state = tensors(&sizes, seed + 2, 0.5);
        let t = which % sizes.len();
        let p = pos % sizes[t];
        grads[t][p] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][seed as usize % 3];
        let (after, state_after, _) = one_step(cfg, &sizes, &params, &grads, Some(&state));
        prop_assert_eq!(after, params);
        prop_assert_eq!(state_after, state);
    }
}

//! Muon and C-Muon against timm's Muon (float64, f64 Newton-Schulz) and C-Optim's
//! c_muon.py rule: `tests/golden/muon/*.safetensors` from `scripts/golden_muon.py`.
//!
//! Compared: the displacement `p_s - p_0` after every step s, normwise per tensor
//! (max |diff| / max |ref|).
//! - f64 reference: `REF_TOL` = 1e-10 (the same operations in another order).
//! - GPU (f32 storage and products): `GPU_TOL` = 2e-4. Newton-Schulz alone stays
//!   within 5e-5 of the f64 iteration (tests/muon_newton_schulz.rs derives it); the
//!   displacement adds six such updates and f32 rounding of p itself (about 6e-8 of
//!   |p| against steps of lr * 0.2 * sqrt(40) = 0.025 per step), and the C-Muon mask
//!   or the fallback AdamW's caution count may flip on a coordinate where `m * g` is
//!   within f32 rounding of 0. Measured on lavapipe: at most 3.1e-5 (first step, where
//!   the displacement is smallest).

mod common;
mod support;

use std::collections::HashMap;

use coptim::ParamStore;
use coptim::optim::Caution;
use coptim::optim::muon::reference::MuonReference;
use coptim::optim::muon::{AdjustLr, Muon, MuonOptimizer, NsCoefficients, NsPrecision};
use serde_json::Value;

use common::{ctx, golden_store, rel_err, replay_step};
use support::clipped_step;

const REF_TOL: f64 = 1e-10;
const GPU_TOL: f64 = 2e-4;
const STEPS: usize = 6;
const CASES: [&str; 5] = [
    "timm_muon",
    "timm_nmuon",
    "timm_muon_options",
    "cmuon",
    "cmuon_nesterov",
];

struct Case {
    tensors: HashMap<String, Vec<f64>>,
    shapes: Vec<Vec<usize>>,
    muon: Muon,
    caution: Caution,
    lr: f64,
    weight_decay: f64,
}

impl Case {
    fn load(name: &str) -> Self {
        let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        let path = format!("{root}/tests/golden/muon/{name}.safetensors");
        let (meta, tensors) = common::read_safetensors::<f64>(&path);
        let kw: Value = serde_json::from_str(&meta["case"]).unwrap();
        let d = Muon::default();
        let num = |k: &str, default: f64| kw.get(k).and_then(Value::as_f64).unwrap_or(default);
        let muon = Muon {
            momentum: num("momentum", d.momentum),
            nesterov: kw.get("nesterov").and_then(Value::as_bool).unwrap_or(false),
            ns_steps: num("ns_steps", d.ns_steps as f64) as usize,
            ns_coefficients: kw
                .get("ns_coefficients")
                .and_then(Value::as_str)
                .map(|s| NsCoefficients::by_name(s).unwrap())
                .unwrap_or(d.ns_coefficients),
            adjust_lr: match kw.get("adjust_lr_fn").and_then(Value::as_str) {
                Some("original") => AdjustLr::Original,
                Some("rms_to_rms") => AdjustLr::RmsToRms,
                _ => AdjustLr::MatchRmsAdamw,
            },
            fallback_lr_scale: num("fallback_lr_scale", 1.0),
            ..d
        };
        let caution = if kw["caution"].as_bool().unwrap() {
            Caution::hard()
        } else {
            Caution::Off
        };
        Self {
            tensors,
            shapes: serde_json::from_str(&meta["shapes"]).unwrap(),
            muon,
            caution,
            lr: kw["lr"].as_f64().unwrap(),
            weight_decay: kw["weight_decay"].as_f64().unwrap(),
        }
    }

    fn get(&self, key: String) -> &Vec<f64> {
        &self.tensors[&key]
    }

    fn inits(&self) -> Vec<Vec<f64>> {
        (0..self.shapes.len())
            .map(|i| self.get(format!("init.{i}")).clone())
            .collect()
    }

    fn grads(&self, s: usize) -> Vec<Vec<f64>> {
        (0..self.shapes.len())
            .map(|i| self.get(format!("grad.{s}.{i}")).clone())
            .collect()
    }

    /// The worst displacement error of `params` after step `s`, per tensor.
    fn error(&self, s: usize, params: &[Vec<f64>]) -> Vec<f64> {
        params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let p0 = self.get(format!("init.{i}"));
                let want = self.get(format!("param.{s}.{i}"));
                let d = |v: &[f64]| v.iter().zip(p0).map(|(a, b)| a - b).collect::<Vec<_>>();
                rel_err(&d(p), &d(want))
            })
            .collect()
    }
}

fn worst(errors: &[f64]) -> f64 {
    errors.iter().cloned().fold(0.0, f64::max)
}

#[test]
fn reference_matches_timm_muon_and_c_muon() {
    for name in CASES {
        let case = Case::load(name);
        let mut reference = MuonReference::new(
            case.muon,
            case.caution,
            case.lr,
            case.weight_decay,
            &case.shapes,
        )
        .unwrap();
        let mut params = case.inits();
        for s in 1..=STEPS {
            reference.step(&mut params, &case.grads(s)).unwrap();
            let err = worst(&case.error(s, &params));
            assert!(err <= REF_TOL, "{name} step {s}: {err:.3e}");
        }
        assert!(
            reference.is_matrix(0) && !reference.is_matrix(3),
            "{name}: routing"
        );
    }
}

#[test]
fn gpu_matches_timm_muon_and_c_muon() {
    let ctx = ctx();
    for name in CASES {
        let case = Case::load(name);
        let store = golden_store(&ctx, &case.shapes, &case.inits());
        let mut opt = MuonOptimizer::new(
            &ctx,
            &store,
            case.muon,
            case.caution,
            case.weight_decay,
            NsPrecision::F32,
        )
        .unwrap();
        let mut errors = vec![0.0; case.shapes.len()];
        for s in 1..=STEPS {
            let params = replay_step(&ctx, &store, &case.grads(s), |encoder| {
                opt.record_step(encoder, case.lr).unwrap()
            });
            for (e, new) in errors.iter_mut().zip(case.error(s, &params)) {
                *e = f64::max(*e, new);
            }
        }
        let shown: Vec<String> = errors.iter().map(|e| format!("{e:.2e}")).collect();
        eprintln!("{name}: per-tensor error {shown:?}");
        assert!(worst(&errors) <= GPU_TOL, "{name}: {shown:?}");
    }
}

#[test]
fn bad_hyperparameters_are_typed_errors() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &[("w", vec![8, 8])]).unwrap();
    for muon in [
        Muon {
            momentum: 1.0,
            ..Muon::default()
        },
        Muon {
            ns_steps: 0,
            ..Muon::default()
        },
        Muon {
            eps: 0.0,
            ..Muon::default()
        },
    ] {
        let err = MuonOptimizer::new(&ctx, &store, muon, Caution::Off, 0.0, NsPrecision::F32)
            .unwrap_err();
        assert!(matches!(err, coptim::Error::InvalidConfig(_)), "{err}");
    }
    let mut opt = c_muon(&ctx, &store, 0.0);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    assert!(opt.record_step(&mut encoder, f64::NAN).is_err());
}

/// C-Muon (timm's defaults, hard mask, f32 Newton-Schulz) with `weight_decay` over
/// `store`.
fn c_muon(ctx: &coptim::GpuContext, store: &ParamStore, weight_decay: f64) -> MuonOptimizer {
    MuonOptimizer::new(
        ctx,
        store,
        Muon::default(),
        Caution::hard(),
        weight_decay,
        NsPrecision::F32,
    )
    .unwrap()
}

/// A Muon matrix (t0) and a fallback vector (t1) with C-Muon, from fixed parameters.
fn robust_setup(ctx: &coptim::GpuContext) -> (ParamStore, MuonOptimizer) {
    let shapes = vec![vec![16, 24], vec![10]];
    let inits: Vec<Vec<f64>> = shapes
        .iter()
        .map(|s| common::randn(&mut common::rng(3), s.iter().product(), 0.5))
        .collect();
    let store = golden_store(ctx, &shapes, &inits);
    let opt = c_muon(ctx, &store, 0.01);
    (store, opt)
}

/// Gradients of step `seed` for `robust_setup`'s tensors.
fn robust_grads(seed: u64) -> Vec<Vec<f64>> {
    let mut r = common::rng(seed);
    vec![
        common::randn(&mut r, 16 * 24, 1.0),
        common::randn(&mut r, 10, 1.0),
    ]
}

/// The parameters' and the matrix momentum's bits.
fn robust_bits(ctx: &coptim::GpuContext, store: &ParamStore, opt: &MuonOptimizer) -> Vec<Vec<u32>> {
    let mut bits: Vec<Vec<u32>> = store
        .params
        .read_all_blocking(ctx)
        .unwrap()
        .iter()
        .map(|p| p.iter().map(|x| x.to_bits()).collect())
        .collect();
    let momentum = opt.momentum(0).unwrap().read_f32_blocking(ctx).unwrap();
    bits.push(momentum.iter().map(|x| x.to_bits()).collect());
    bits
}

/// A NaN in the matrix's gradient, then an infinity in the fallback vector's, each
/// skip the whole step: parameters, momentum and the fallback's state stay bit for bit,
/// both are counted, and the next finite step lands exactly where it lands without the
/// skipped ones.
#[test]
fn non_finite_gradients_skip_the_whole_step() {
    let ctx = ctx();
    let (store, mut opt) = robust_setup(&ctx);
    let (clean_store, mut clean) = robust_setup(&ctx);
    let lr = 0.02;
    let step = |store: &ParamStore, opt: &mut MuonOptimizer, grads: &[Vec<f64>]| {
        replay_step(&ctx, store, grads, |encoder| {
            opt.record_step(encoder, lr).unwrap()
        });
    };
    step(&store, &mut opt, &robust_grads(1));
    step(&clean_store, &mut clean, &robust_grads(1));
    let before = robust_bits(&ctx, &store, &opt);
    for (tensor, bad) in [(0, f64::NAN), (1, f64::INFINITY)] {
        let mut grads = robust_grads(2);
        grads[tensor][5] = bad;
        step(&store, &mut opt, &grads);
        assert_eq!(
            robust_bits(&ctx, &store, &opt),
            before,
            "{bad} in t{tensor}"
        );
    }
    assert_eq!(pollster::block_on(opt.read_skipped_steps()).unwrap(), 2);
    step(&store, &mut opt, &robust_grads(3));
    step(&clean_store, &mut clean, &robust_grads(3));
    let after = robust_bits(&ctx, &store, &opt);
    assert_ne!(after, before);
    assert_eq!(after, robust_bits(&ctx, &clean_store, &clean));
    assert_eq!(pollster::block_on(clean.read_skipped_steps()).unwrap(), 0);
}

/// Steps allocate no buffers once the first submissions have completed: Muon's upload
/// ring and the fallback's uploads and records keep their staging buffers.
#[test]
fn steps_reuse_their_staging_buffers() {
    let ctx = ctx();
    let (store, mut opt) = robust_setup(&ctx);
    let run = |opt: &mut MuonOptimizer, steps: u64| {
        for s in 0..steps {
            replay_step(&ctx, &store, &robust_grads(s), |encoder| {
                opt.record_step(encoder, 0.02).unwrap()
            });
            ctx.wait_idle().unwrap();
        }
    };
    run(&mut opt, 3);
    let warm = opt.staging_buffers();
    run(&mut opt, 20);
    assert_eq!(opt.staging_buffers(), warm);
    let in_flight = opt.fallback().unwrap().stats_in_flight();
    assert!(in_flight <= 1, "{in_flight} fallback records in flight");
}

/// With no matrix to orthogonalize, the norm pass still checks the fallback's
/// gradients: a NaN skips its step and `read_skipped_steps` counts it.
#[test]
fn a_fallback_only_set_counts_its_skipped_steps() {
    let ctx = ctx();
    let store = golden_store(&ctx, &[vec![10]], &[vec![0.5; 10]]);
    let mut opt = c_muon(&ctx, &store, 0.0);
    let mut grads = vec![vec![0.25; 10]];
    grads[0][3] = f64::NAN;
    let params = replay_step(&ctx, &store, &grads, |encoder| {
        opt.record_step(encoder, 0.1).unwrap()
    });
    assert_eq!(params, vec![vec![0.5; 10]]);
    assert_eq!(pollster::block_on(opt.read_skipped_steps()).unwrap(), 1);
    let params = replay_step(&ctx, &store, &[vec![0.25; 10]], |encoder| {
        opt.record_step(encoder, 0.1).unwrap()
    });
    assert!(params[0].iter().all(|&p| p < 0.5), "{params:?}");
    assert_eq!(pollster::block_on(opt.read_skipped_steps()).unwrap(), 1);
}

/// Clipping at this global norm clips every step of `clipping_is_the_step_on_scaled_gradients`.
const MAX_NORM: f64 = 0.5;

/// `with_clip_grad_norm`: each GPU step is the f64 reference's step on the gradients
/// scaled by `min(1, MAX_NORM / (norm + 1e-6))`, `norm` the f64 global norm over every
/// tensor's gradient (the fallback vector's included), at GPU_TOL. Each step's
/// gradients have another scale, so the clipped run differs from the unclipped one
/// by far more than the tolerance.
#[test]
fn clipping_is_the_step_on_scaled_gradients() {
    let ctx = ctx();
    let (store, opt) = robust_setup(&ctx);
    let mut opt = opt.with_clip_grad_norm(MAX_NORM).unwrap();
    let shapes = vec![vec![16, 24], vec![10]];
    let (lr, wd) = (0.02, 0.01);
    let reference = || MuonReference::new(Muon::default(), Caution::hard(), lr, wd, &shapes);
    let (mut clipped_ref, mut plain_ref) = (reference().unwrap(), reference().unwrap());
    let p0: Vec<Vec<f64>> = store
        .params
        .read_all_blocking(&ctx)
        .unwrap()
        .iter()
        .map(|p| p.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let (mut clipped, mut plain) = (p0.clone(), p0.clone());
    let displacement_error = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        let d = |v: &[f64], p0: &[f64]| v.iter().zip(p0).map(|(x, y)| x - y).collect::<Vec<_>>();
        let errors: Vec<f64> = (0..a.len())
            .map(|i| rel_err(&d(&a[i], &p0[i]), &d(&b[i], &p0[i])))
            .collect();
        worst(&errors)
    };
    for (s, scale) in [1.0, 8.0, 0.25, 3.0].into_iter().enumerate() {
        let step = clipped_step(&robust_grads(s as u64 + 1), scale, MAX_NORM);
        assert!(step.coef < 1.0, "step {s} is clipped");
        let gpu = replay_step(&ctx, &store, &step.grads, |encoder| {
            opt.record_step(encoder, lr).unwrap()
        });
        clipped_ref.step(&mut clipped, &step.scaled).unwrap();
        plain_ref.step(&mut plain, &step.grads).unwrap();
        let err = displacement_error(&gpu, &clipped);
        eprintln!("clipped step {}: error {err:.2e}", s + 1);
        assert!(err <= GPU_TOL, "step {}: {err:.2e}", s + 1);
    }
    let unclipped = displacement_error(&plain, &clipped);
    assert!(
        unclipped > 100.0 * GPU_TOL,
        "clipping changed nothing: {unclipped:.2e}"
    );
}

#[test]
fn a_bad_clip_norm_is_a_typed_error() {
    let ctx = ctx();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let (_, opt) = robust_setup(&ctx);
        let err = opt.with_clip_grad_norm(bad).unwrap_err();
        assert!(
            matches!(err, coptim::Error::InvalidConfig(_)),
            "{bad}: {err}"
        );
    }
}

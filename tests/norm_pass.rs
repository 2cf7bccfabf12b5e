//! The norm pass (per-tensor sums of an algorithm's norm terms, before the measuring
//! pass: MARS's norm of the corrected gradient) against f64 sums, deterministic, and
//! MARS against the f64 reference on matrices spanning several blocks, binding
//! windows, buffers and 2-D grids, with its unit-norm clip both on and off.

mod common;

use common::*;
use coptim::optim::{Algorithm, Caution, DecayMode, Mars, MarsType, Optimizer, OptimizerConfig};
use coptim::stream::StreamShape;
use coptim::{GpuContext, ParamStore};

/// Sums of up to 40,000 f32 terms added in f32 (as tests/tensor_sums.rs): at most
/// about (terms per run + tree depths) * 2^-24 of the sum of |terms|, under 2e-5.
const SUM_TOL: f64 = 2e-5;
/// MARS parameters after several steps against the f64 reference (the golden rule).
const TOL: f64 = 1e-6;

/// Matrices (the MARS path) from 1 element to several 4096-element blocks and one 1-D
/// tensor (the AdamW path), with 16 KiB bindings (one block per window) and 192 KiB
/// buffers, so large tensors cross windows and the set spans two buffers.
fn store(ctx: &GpuContext) -> ParamStore {
    let shapes = [
        vec![1, 1],
        vec![7],
        vec![64, 64],
        vec![17, 241],
        vec![3, 4099],
        vec![200, 200],
    ];
    windowed_store(ctx, shapes)
}

/// Gradient scale per tensor: the corrected gradient's norm stays under 1 (no clip)
/// for tensors 2 and 4 and exceeds it for 3 and 5.
const GRAD_SCALES: [f64; 6] = [0.3, 0.5, 1e-3, 0.5, 2e-3, 0.05];

fn mars(options: Mars, caution: Caution) -> OptimizerConfig {
    OptimizerConfig::new(Algorithm::Mars(options), 1e-2)
        .with_caution(caution)
        .with_weight_decay(0.1)
}

/// Every MARS variant, with caution and cautious decay, follows the f64 reference.
#[test]
fn mars_matches_reference_across_windows_and_grids() {
    let ctx = ctx();
    let store = store(&ctx);
    let options = grid_capped_at(3);
    let lion = Mars {
        mars_type: MarsType::Lion,
        ..Mars::default()
    };
    let every_tensor = Mars {
        optimize_1d: true,
        ..Mars::default()
    };
    let own_1d = Mars {
        lr_1d_factor: 0.5,
        beta1_1d: 0.8,
        beta2_1d: 0.95,
        ..Mars::default()
    };
    let configs = [
        mars(Mars::default(), Caution::Off),
        mars(Mars::default(), Caution::hard()).with_decay(DecayMode::CAUTIOUS),
        mars(lion, Caution::hard()),
        mars(lion, Caution::Off).with_decay(DecayMode::CAUTIOUS),
        mars(every_tensor, Caution::hard()),
        mars(own_1d, Caution::hard()).with_clip_grad_norm(5.0),
    ];
    for cfg in configs {
        let c = compare_with_reference(&ctx, &store, cfg.clone(), options, 4, 21, TOL);
        eprintln!("{:?}: max relative error {:.2e}", cfg.algorithm, c.max_rel);
    }
}

/// The norm sums (`sums.x`) of the second step of MARS from seed 7, with `caution`.
fn second_step_norms(ctx: &GpuContext, caution: Caution) -> Vec<f32> {
    let store = store(ctx);
    let mut opt = Optimizer::new(ctx, &store, mars(Mars::default(), caution)).unwrap();
    let mut r = rng(7);
    write_grads(ctx, &store, &mut r, &GRAD_SCALES);
    opt.step_blocking().unwrap();
    write_grads(ctx, &store, &mut r, &GRAD_SCALES);
    opt.step_blocking().unwrap();
    let sums = pollster::block_on(opt.read_tensor_sums()).unwrap();
    sums.iter().map(|s| s[0]).collect()
}

/// f64 `||c||^2` of the second step's corrected gradient per tensor (0 for 1-D
/// tensors), and the sum of the squared magnitudes of its terms (the error scale).
fn f64_norms(store: &ParamStore) -> Vec<(f64, f64)> {
    let coef = 0.025 * (0.9 / (1.0 - 0.9));
    let mut r = rng(7);
    let first = draw_grads(store, &mut r, &GRAD_SCALES);
    let second = draw_grads(store, &mut r, &GRAD_SCALES);
    let tensors = store.layout().tensors();
    (0..tensors.len())
        .map(|i| {
            if tensors[i].shape.len() < 2 {
                return (0.0, 0.0);
            }
            let (g, last) = (&second[i], &first[i]);
            let c = (0..g.len()).map(|j| g[j] + coef * (g[j] - last[j]));
            let mag = (0..g.len()).map(|j| g[j].abs() + coef * (g[j] - last[j]).abs());
            (c.map(|x| x * x).sum(), mag.map(|x| x * x).sum())
        })
        .collect()
}

/// The per-tensor norms against f64 sums, with the clip both triggered and not;
/// bit-identical between two runs, and with and without caution (whose measuring pass
/// re-sums the norm pass's block records), on every stream shape.
#[test]
fn norm_sums_match_f64_and_are_deterministic() {
    for shape in StreamShape::ALL {
        norms_match_f64_and_are_deterministic(&ctx().with_stream_shape(shape));
    }
}

fn norms_match_f64_and_are_deterministic(ctx: &GpuContext) {
    let got = second_step_norms(ctx, Caution::Off);
    let want = f64_norms(&store(ctx));
    for (t, (g, (w, scale))) in got.iter().zip(&want).enumerate() {
        let err = (*g as f64 - w).abs() / scale.max(f64::MIN_POSITIVE);
        assert!(err <= SUM_TOL, "tensor {t}: {g} vs {w}: {err:e}");
    }
    assert!(
        want.iter().any(|&(w, _)| w > 1.0),
        "the clip never triggers"
    );
    assert!(
        want.iter().any(|&(w, _)| w > 0.0 && w < 1.0),
        "the clip always triggers"
    );
    assert_eq!(
        got,
        second_step_norms(ctx, Caution::Off),
        "not deterministic"
    );
    assert_eq!(
        got,
        second_step_norms(ctx, Caution::hard()),
        "caution changed them"
    );
}

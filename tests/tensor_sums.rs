//! The per-tensor float sums of the measuring pass (LAMB's trust-ratio norms) and its
//! per-segment sums (AdamP's rows) against f64 sums, and LAMB, AdamP and SGDP against
//! the f64 reference, on tensors spanning several blocks, binding windows, buffers and
//! 2-D grids, with rows longer and shorter than a block.

mod common;

use common::*;
use coptim::arena::ArenaLimits;
use coptim::arena::ParamSet;
use coptim::optim::{Algorithm, Caution, DecayMode, Lamb, Optimizer, OptimizerConfig};
use coptim::stream::StreamShape;
use coptim::{GpuContext, ParamStore, TensorId};

/// Sums of up to 40,000 f32 terms, each within a few ulps of its f64 value, added in
/// f32: a run of `VEC_PER_THREAD` vec4s per invocation, a tree over the workgroup, a
/// strided loop and a tree over blocks. The rounding error is at most about (terms per
/// run + tree depths) * 2^-24 of the sum of |terms|, under 2e-5 for every stream shape.
const SUM_TOL: f64 = 2e-5;
/// LAMB parameters after several steps against the f64 reference (the golden rule).
const TOL: f64 = 1e-6;

/// Sizes from 1 element to several 4096-element blocks, with 16 KiB bindings (one
/// block per window) and 192 KiB buffers, so large tensors cross windows and the set
/// spans two buffers.
fn store(ctx: &GpuContext) -> ParamStore {
    windowed_store(ctx, [1, 7, 4096, 4097, 12_289, 40_000].map(|n| vec![n]))
}

fn lamb(options: Lamb, caution: Caution, decay: DecayMode) -> OptimizerConfig {
    OptimizerConfig::new(Algorithm::Lamb(options), 1e-2)
        .with_caution(caution)
        .with_weight_decay(0.1)
        .with_decay(decay)
}

/// Every LAMB variant with caution and cautious decay follows the f64 reference.
#[test]
fn lamb_matches_reference_across_windows_and_grids() {
    let ctx = ctx();
    let store = store(&ctx);
    let options = grid_capped_at(3);
    let coupled = Lamb::default();
    let decoupled = Lamb {
        decoupled: true,
        trust_clip: true,
        ..coupled
    };
    let configs = [
        lamb(coupled, Caution::Off, DecayMode::default()),
        lamb(coupled, Caution::hard(), DecayMode::CAUTIOUS),
        lamb(decoupled, Caution::hard(), DecayMode::default()),
        lamb(decoupled, Caution::hard(), DecayMode::CAUTIOUS),
    ];
    for cfg in configs {
        let c = compare_with_reference(&ctx, &store, cfg.clone(), options, 4, 21, TOL);
        eprintln!("{:?}: max relative error {:.2e}", cfg.algorithm, c.max_rel);
    }
}

/// f64 sums of LAMB's four tensor terms at the optimizer's current state and `grads`
/// (the second step: m, v and p read back from the GPU after the first).
fn f64_sums(
    ctx: &GpuContext,
    opt: &Optimizer,
    store: &ParamStore,
    grads: &[Vec<f64>],
) -> Vec<[f64; 4]> {
    let (b1, b2, eps) = (0.9, 0.999, 1e-6);
    let (bc1, bc2) = (1.0 - b1 * b1, 1.0 - b2 * b2);
    let m = opt.state()[0].read_all_blocking(ctx).unwrap();
    let v = opt.state()[1].read_all_blocking(ctx).unwrap();
    let p = store.params.read_all_blocking(ctx).unwrap();
    (0..grads.len())
        .map(|i| {
            let (g, p, m, v) = (&grads[i], to_f64(&p[i]), to_f64(&m[i]), to_f64(&v[i]));
            let mut s = [0.0; 4];
            for j in 0..g.len() {
                let m_new = b1 * m[j] + (1.0 - b1) * g[j];
                let v_new = b2 * v[j] + (1.0 - b2) * g[j] * g[j];
                let u = (m_new / bc1) / (v_new.sqrt() / bc2.sqrt() + eps);
                let a = if u * g[j] > 0.0 { u } else { 0.0 };
                let c = if u * p[j] >= 0.0 { p[j] } else { 0.0 };
                s[0] += a * a;
                s[1] += a * c;
                s[2] += c * c;
                s[3] += p[j] * p[j];
            }
            s
        })
        .collect()
}

/// Gradients at scale 0.5 for every tensor of `store`, written to its gradient arena.
fn write_half_grads(
    ctx: &GpuContext,
    store: &ParamStore,
    r: &mut rand_chacha::ChaCha8Rng,
) -> Vec<Vec<f64>> {
    write_grads(ctx, store, r, &vec![0.5; store.layout().tensors().len()])
}

/// The sums of the second step of a cautious LAMB with cautious decay (and no gradient
/// clip, so the sums see the raw gradients) from seed 7.
fn second_step_sums(ctx: &GpuContext) -> (Vec<[f32; 4]>, Vec<[f64; 4]>) {
    let unclipped = Lamb {
        max_grad_norm: None,
        ..Lamb::default()
    };
    let cfg = lamb(unclipped, Caution::hard(), DecayMode::CAUTIOUS);
    let store = store(ctx);
    let mut r = rng(7);
    for (i, t) in store.layout().tensors().iter().enumerate() {
        let p = to_f32(&randn(&mut r, t.len as usize, 1.0));
        store.params.write(ctx, TensorId(i), &p).unwrap();
    }
    let mut opt = Optimizer::new(ctx, &store, cfg).unwrap();
    write_half_grads(ctx, &store, &mut r);
    opt.step_blocking().unwrap();
    let grads = write_half_grads(ctx, &store, &mut r);
    let want = f64_sums(ctx, &opt, &store, &grads);
    opt.step_blocking().unwrap();
    (pollster::block_on(opt.read_tensor_sums()).unwrap(), want)
}

/// The four per-tensor sums against f64 sums of the same terms (the cross term
/// against max(x, z), which bounds the sum of its |terms| by Cauchy-Schwarz), and
/// bit-identical between two runs of the same steps, on every stream shape.
#[test]
fn tensor_sums_match_f64_and_are_deterministic() {
    for shape in StreamShape::ALL {
        sums_match_f64_and_are_deterministic(&ctx().with_stream_shape(shape));
    }
}

fn sums_match_f64_and_are_deterministic(ctx: &GpuContext) {
    let (got, want) = second_step_sums(ctx);
    for (t, (g, w)) in got.iter().zip(&want).enumerate() {
        for k in 0..4 {
            let scale = if k == 1 { w[0].max(w[2]) } else { w[k] };
            let err = (g[k] as f64 - w[k]).abs() / scale.max(f64::MIN_POSITIVE);
            assert!(
                err <= SUM_TOL,
                "tensor {t} sum {k}: {} vs {}: {err:e}",
                g[k],
                w[k]
            );
        }
    }
    let (again, _) = second_step_sums(ctx);
    assert_eq!(got, again, "the sums are not deterministic");
}

/// Row-major tensors whose rows are longer than a block (`long`: each row crosses
/// blocks and 16 KiB binding windows), exactly a block, much shorter (`short`: many
/// rows per block), shorter than a vec4 (`triple`, `single`: a vec4 spans two to four
/// rows), one row, rank 3, and a vector (no segments).
const SEGMENT_SHAPES: &[(&str, &[usize])] = &[
    ("long", &[3, 5000]),
    ("block", &[5, 4096]),
    ("short", &[700, 7]),
    ("triple", &[301, 3]),
    ("single", &[129, 1]),
    ("row", &[1, 9000]),
    ("cube", &[4, 3, 350]),
    ("vec", &[12_289]),
];

fn shaped_store(ctx: &GpuContext, shapes: &[(&str, &[usize])]) -> ParamStore {
    let limits = ArenaLimits::from_limits(ctx.limits()).capped(16 * 1024, 192 * 1024);
    let shapes: Vec<(String, Vec<usize>)> = shapes
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect();
    ParamStore::with_limits(ctx, &shapes, limits).unwrap()
}

/// timm's `name` with a learning rate and weight decay.
fn timm(name: &str) -> OptimizerConfig {
    OptimizerConfig::from_timm(name, &serde_json::json!({"lr": 1e-2, "weight_decay": 0.1})).unwrap()
}

/// The first-round segment sums of AdamP's first step from seed 11, and their f64
/// values: per row (p.g, p.p, g.g, p.u) with the first step's Nesterov update
/// u = (1 - b1)(1 + b1) g / (|g| + eps).
/// Per tensor, four sums per segment.
type SegmentSums<T> = Vec<Vec<[T; 4]>>;

fn first_step_segment_sums(ctx: &GpuContext) -> (SegmentSums<f32>, SegmentSums<f64>) {
    let store = shaped_store(ctx, SEGMENT_SHAPES);
    let mut r = rng(11);
    let mut params = Vec::new();
    for (i, t) in store.layout().tensors().iter().enumerate() {
        let p = to_f32(&randn(&mut r, t.len as usize, 1.0));
        store.params.write(ctx, TensorId(i), &p).unwrap();
        params.push(to_f64(&p));
    }
    let mut opt = Optimizer::new(ctx, &store, timm("adamp")).unwrap();
    let grads = write_half_grads(ctx, &store, &mut r);
    opt.step_blocking().unwrap();
    let (b1, eps) = (0.9, 1e-8);
    let want = store
        .layout()
        .tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.shape.len() < 2 {
                return Vec::new();
            }
            let len = t.shape[1..].iter().product::<usize>();
            let rows = params[i].chunks(len).zip(grads[i].chunks(len));
            rows.map(|(p, g)| {
                let mut s = [0.0; 4];
                for (p, g) in p.iter().zip(g) {
                    let u = (1.0 - b1) * (1.0 + b1) * g / (g.abs() + eps);
                    s[0] += p * g;
                    s[1] += p * p;
                    s[2] += g * g;
                    s[3] += p * u;
                }
                s
            })
            .collect()
        })
        .collect();
    (pollster::block_on(opt.read_segment_sums()).unwrap(), want)
}

/// Every row's four sums against f64 (each within SUM_TOL of the sum of its |terms|,
/// bounded by Cauchy-Schwarz through the squares), bit-identical between two runs, on
/// every stream shape.
#[test]
fn segment_sums_match_f64_and_are_deterministic() {
    for shape in StreamShape::ALL {
        let ctx = ctx().with_stream_shape(shape);
        let (got, want) = first_step_segment_sums(&ctx);
        for (t, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(got.len(), want.len(), "tensor {t}: segments");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let bounds = [(w[1] * w[2]).sqrt(), w[1], w[2], w[1].sqrt() * w[2].sqrt()];
                for k in 0..4 {
                    let err = (g[k] as f64 - w[k]).abs() / bounds[k].max(f64::MIN_POSITIVE);
                    assert!(
                        err <= SUM_TOL,
                        "tensor {t} row {i} sum {k}: {} vs {}: {err:e}",
                        g[k],
                        w[k]
                    );
                }
            }
        }
        let (again, _) = first_step_segment_sums(&ctx);
        assert_eq!(got, again, "the segment sums are not deterministic");
    }
}

/// `x` less its component along `p` on each run of `len` elements.
fn orthogonal(p: &[f64], x: &[f64], len: usize) -> Vec<f64> {
    p.chunks(len)
        .zip(x.chunks(len))
        .flat_map(|(p, x)| {
            let k = p.iter().zip(x).map(|(p, x)| p * x).sum::<f64>()
                / p.iter().map(|p| p * p).sum::<f64>();
            p.iter().zip(x).map(move |(p, x)| x - k * p)
        })
        .collect()
}

/// Shapes for the projection: `chan`, `chan_odd` and `layer` get gradients orthogonal
/// to their parameters per row and over the whole tensor (the channel and the layer view
/// project), the others random ones (nothing projects). Rows of 350, 30 and 27 elements
/// put two rows in one vec4, with coefficients of their own in `chan_odd`.
const PROJECTION_SHAPES: &[(&str, &[usize])] = &[
    ("chan", &[6, 700]),
    ("layer", &[40, 30]),
    ("rand", &[300, 20]),
    ("conv", &[8, 3, 3, 3]),
    ("vec", &[257]),
    ("one", &[1]),
    ("chan_odd", &[9, 350]),
];

fn projected_gradients(
    r: &mut rand_chacha::ChaCha8Rng,
    set: &ParamSet,
    p: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    set.tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let g = randn(r, t.len as usize, 0.5);
            let g = match t.name.as_str() {
                "chan" | "chan_odd" => orthogonal(&p[i], &g, t.shape[1]),
                "layer" => orthogonal(&p[i], &g, g.len()),
                _ => g,
            };
            to_f64(&to_f32(&g))
        })
        .collect()
}

/// AdamP and SGDP, plain and cautious (timm's "spherical" caution), with cautious
/// weight decay too, follow the f64 reference where the channel view, the layer view
/// or nothing projects, on every stream shape.
#[test]
fn adamp_and_sgdp_match_reference_where_projected() {
    let configs = [
        timm("adamp"),
        timm("cadamp"),
        timm("cadamp").with_decay(DecayMode::CAUTIOUS),
        timm("sgdp"),
        timm("csgdp"),
    ];
    for shape in StreamShape::ALL {
        let ctx = ctx().with_stream_shape(shape);
        let store = shaped_store(&ctx, PROJECTION_SHAPES);
        let options = grid_capped_at(8);
        for cfg in &configs {
            let mut grads = projected_gradients;
            let c = compare_with_gradients(
                &ctx,
                &store,
                cfg.clone(),
                options,
                (5, 23, TOL),
                &mut grads,
            );
            eprintln!(
                "{} {:?} {:?}: max relative error {:.2e}",
                shape.name(),
                cfg.algorithm,
                cfg.caution,
                c.max_rel
            );
        }
    }
}

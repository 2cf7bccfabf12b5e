//! Gradient checks of every nn op, at odd sizes that are not multiples of the tiles
//! (1, 3, 7, 33, 65, 70, 129 against 64x64 matmul tiles and 256-wide workgroups).
//!
//! Each case checks two things:
//! 1. GPU against the f64 CPU reference (`coptim::nn::reference`), forward value and
//!    the gradient of every input, for a random upstream gradient `R` (the GPU
//!    backward pass is seeded with `R`, i.e. it differentiates `sum(R * y)`). Inputs
//!    are rounded to f32 first, so both sides see the same numbers. Tolerance
//!    `GPU_TOL = 2e-5`, as max |gpu - ref| / max |ref| per tensor: f32 has a unit
//!    roundoff of 6e-8 and the sums here have at most a few hundred terms, so correct
//!    kernels land at 1e-7 to 2e-6 on lavapipe (the largest: GELU-tanh and
//!    cross-entropy with logits of +-60, where `tanh` / `exp` / `log` contribute a few
//!    ulps each); the margin of 10x allows other drivers' transcendental functions. A
//!    wrong index, stride, sign or missing term gives errors of order 1 (checked by
//!    planting such bugs in the kernels).
//!    The row kernels (LayerNorm, softmax, cross-entropy) and attention also run on
//!    every row-kernel variant, forced: one invocation per row; one workgroup per row
//!    with subgroup reductions (lavapipe has subgroups); one workgroup per row with
//!    subgroups switched off (the workgroup-memory fallback), each against the same
//!    tolerance.
//! 2. The reference's analytic gradients against central finite differences of the
//!    reference forward in f64 (`h = 1e-5`, up to 24 coordinates per tensor),
//!    tolerance `FD_TOL = 1e-6` relative to the largest gradient: truncation error is
//!    O(h^2) ~ 1e-10 and rounding ~ 1e-16 / h ~ 1e-11.

mod common;

use std::sync::OnceLock;

use coptim::arena::UploadRing;
use coptim::nn::{Activation, GraphBuilder, Kernels, RowLayout, Var, reference as r};
use coptim::{Error, GpuContext, ParamStore, Result};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::graph::graph_over;
use common::matmul::MatmulCase;
use common::{rel_err, to_f32, to_f64};

const GPU_TOL: f64 = 2e-5;
const FD_TOL: f64 = 1e-6;
const FD_STEP: f64 = 1e-5;
const FD_SAMPLES: usize = 24;

/// (rows, row length) of the row kernels' cases (LayerNorm, softmax, cross-entropy):
/// rows shorter, longer and not a multiple of ROW_WG_SIZE (64), 1-element rows, ten
/// classes as in MNIST, and more rows than one workgroup reduces for LayerNorm's
/// parameter gradients.
const ROW_SHAPES: [(usize, usize); 9] = [
    (1, 1),
    (3, 7),
    (33, 65),
    (7, 129),
    (70, 3),
    (2, 1000),
    (130, 64),
    (5, 1),
    (33, 10),
];

fn gpu() -> &'static (GpuContext, Kernels) {
    static GPU: OnceLock<(GpuContext, Kernels)> = OnceLock::new();
    GPU.get_or_init(|| {
        let ctx = GpuContext::new_blocking(&Default::default())
            .expect("a GPU adapter (install mesa-vulkan-drivers)");
        let kernels = Kernels::new(&ctx);
        (ctx, kernels)
    })
}

/// Every variant of the row kernels, forced: one invocation per row; one workgroup
/// per row with subgroup reductions (where the adapter has subgroups); one workgroup
/// per row with the workgroup-memory fallback (subgroups switched off).
fn row_variants() -> &'static [(GpuContext, Kernels); 3] {
    static GPUS: OnceLock<[(GpuContext, Kernels); 3]> = OnceLock::new();
    GPUS.get_or_init(|| {
        let ctx = gpu().0.clone();
        let fallback = ctx.without(true, false);
        [
            (
                ctx.clone(),
                Kernels::new(&ctx).with_row_layout(RowLayout::PerInvocation),
            ),
            (
                ctx.clone(),
                Kernels::new(&ctx).with_row_layout(RowLayout::PerWorkgroup),
            ),
            (
                fallback.clone(),
                Kernels::new(&fallback).with_row_layout(RowLayout::PerWorkgroup),
            ),
        ]
    })
}

/// Uniform values in [-scale, scale], rounded to f32.
fn rand_vec(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * scale) as f32 as f64)
        .collect()
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Declares the op under test on its inputs (and labels, if any).
type BuildFn<'a> = Box<dyn Fn(&mut GraphBuilder, &[Var], Option<Var>) -> Result<Var> + 'a>;

/// One op instance: named inputs (shape, values), optional labels (or token ids),
/// the upstream gradient, and how to build it.
struct Case<'a> {
    name: String,
    inputs: Vec<(Vec<usize>, Vec<f64>)>,
    labels: Option<Vec<u32>>,
    /// The shape of the labels' input ([`GraphBuilder::ids`]); empty: `[labels]`
    /// ([`GraphBuilder::labels`]).
    label_shape: Vec<usize>,
    build: BuildFn<'a>,
    /// Also run on every row-kernel variant (ops with row reductions).
    fallback_too: bool,
    /// Largest relative error of the GPU against the reference (GPU_TOL unless the
    /// op's GPU computation is deliberately not the reference's, as RoPE's angles).
    gpu_tol: f64,
}

impl Case<'_> {
    /// Marks the case to run on every row-kernel variant as well.
    fn with_fallback(mut self) -> Self {
        self.fallback_too = true;
        self
    }

    /// Compares the GPU against the reference with tolerance `tol` instead of GPU_TOL.
    fn with_gpu_tol(mut self, tol: f64) -> Self {
        self.gpu_tol = tol;
        self
    }

    /// Gives the case u32 ids of `shape` (a [`GraphBuilder::ids`] input).
    fn with_ids(mut self, shape: &[usize], ids: Vec<u32>) -> Self {
        assert_eq!(numel(shape), ids.len());
        self.label_shape = shape.to_vec();
        self.labels = Some(ids);
        self
    }
}

/// Runs the op on the GPU (forward and backward, twice) and returns the forward
/// value and the gradient of every input.
fn run_gpu(
    (ctx, kernels): &(GpuContext, Kernels),
    case: &Case<'_>,
    upstream: &[f64],
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let names: Vec<String> = (0..case.inputs.len()).map(|i| format!("in{i}")).collect();
    let decl: Vec<(&str, Vec<usize>)> = names
        .iter()
        .zip(&case.inputs)
        .map(|(n, (s, _))| (n.as_str(), s.clone()))
        .collect();
    let store = ParamStore::new(ctx, &decl).unwrap();
    for (n, (_, v)) in names.iter().zip(&case.inputs) {
        store.params.write_named(ctx, n, &to_f32(v)).unwrap();
    }
    let mut g = GraphBuilder::new(store.layout().clone());
    let vars: Vec<Var> = names.iter().map(|n| g.param(n).unwrap()).collect();
    let labels = case
        .labels
        .as_ref()
        .map(|l| match case.label_shape.is_empty() {
            true => g.labels(l.len()),
            false => g.ids(&case.label_shape),
        });
    let out = (case.build)(&mut g, &vars, labels).unwrap();
    let graph = g.build(kernels, &store, &[out]).unwrap();
    graph
        .grad(out)
        .unwrap()
        .write_f32(ctx, &to_f32(upstream))
        .unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    if let (Some(v), Some(l)) = (labels, &case.labels) {
        graph
            .record_write_ids(v, &mut UploadRing::new("test labels"), ctx, &mut encoder, l)
            .unwrap();
    }
    // Twice: the second pass must overwrite, not add to, every gradient.
    for _ in 0..2 {
        graph.record_forward(&mut encoder);
        graph.record_backward(&mut encoder);
    }
    ctx.queue().submit([encoder.finish()]);
    let y = to_f64(&graph.value(out).read_f32_blocking(ctx).unwrap());
    let grads = store
        .grads
        .read_all_blocking(ctx)
        .unwrap()
        .iter()
        .map(|g| to_f64(g))
        .collect();
    (y, grads)
}

/// [`check`] of an op with one differentiable input.
fn check_unary(
    case: Case<'_>,
    forward: impl Fn(&[f64]) -> Vec<f64>,
    backward: impl Fn(&[f64], &[f64]) -> Vec<f64>,
) {
    check(
        case,
        &[true],
        |x| forward(&x[0]),
        |x, dy| vec![backward(&x[0], dy)],
    );
}

/// Checks a case: GPU against the reference, and the reference's gradients against
/// finite differences. `forward` maps the inputs to the output, `backward` maps the
/// inputs and the upstream gradient to the input gradients (only `differentiable`
/// inputs are compared).
fn check(
    case: Case<'_>,
    differentiable: &[bool],
    forward: impl Fn(&[Vec<f64>]) -> Vec<f64>,
    backward: impl Fn(&[Vec<f64>], &[f64]) -> Vec<Vec<f64>>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(case.name.len() as u64 * 7919);
    let xs: Vec<Vec<f64>> = case.inputs.iter().map(|(_, v)| v.clone()).collect();
    let y_ref = forward(&xs);
    let upstream = rand_vec(&mut rng, y_ref.len(), 1.0);
    let g_ref = backward(&xs, &upstream);
    let mut contexts = vec![gpu()];
    if case.fallback_too {
        contexts.extend(row_variants());
    }
    // The largest errors seen: GPU forward, GPU gradients, finite differences
    // (reported with --nocapture).
    let mut worst = [0.0f64; 3];
    for gpu in contexts {
        let subgroups = gpu.0.capabilities().subgroups;
        let layout = gpu.1.row_layout();
        let (y_gpu, g_gpu) = run_gpu(gpu, &case, &upstream);
        let e = rel_err(&y_gpu, &y_ref);
        worst[0] = worst[0].max(e);
        assert!(
            e <= case.gpu_tol,
            "{} ({layout:?}, subgroups {subgroups}): forward relative error {e:e}",
            case.name
        );
        for (i, _) in differentiable.iter().enumerate().filter(|(_, d)| **d) {
            let e = rel_err(&g_gpu[i], &g_ref[i]);
            worst[1] = worst[1].max(e);
            assert!(
                e <= case.gpu_tol,
                "{} ({layout:?}, subgroups {subgroups}): gradient of input {i}: relative error {e:e}",
                case.name
            );
        }
    }
    for (i, d) in differentiable.iter().enumerate() {
        if !d {
            continue;
        }
        // Finite differences of L = sum(upstream * f(x)) on the reference.
        let scale = g_ref[i]
            .iter()
            .map(|v| v.abs())
            .fold(0.0, f64::max)
            .max(1e-12);
        let n = xs[i].len();
        let step = (n / FD_SAMPLES).max(1);
        for j in (0..n).step_by(step).take(FD_SAMPLES) {
            let loss = |delta: f64| {
                let mut xp = xs.clone();
                xp[i][j] += delta;
                forward(&xp)
                    .iter()
                    .zip(&upstream)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            };
            let fd = (loss(FD_STEP) - loss(-FD_STEP)) / (2.0 * FD_STEP);
            let err = (fd - g_ref[i][j]).abs() / scale;
            worst[2] = worst[2].max(err);
            assert!(
                err <= FD_TOL,
                "{}: input {i}[{j}]: analytic {} vs finite difference {fd} ({err:e})",
                case.name,
                g_ref[i][j]
            );
        }
    }
    let [fwd, grad, fd] = worst;
    eprintln!(
        "{}: GPU vs reference forward {fwd:.1e}, gradients {grad:.1e}; reference vs finite differences {fd:.1e}",
        case.name
    );
}

fn case<'a>(
    name: String,
    rng: &mut ChaCha8Rng,
    shapes: &[Vec<usize>],
    build: impl Fn(&mut GraphBuilder, &[Var], Option<Var>) -> Result<Var> + 'a,
) -> Case<'a> {
    Case {
        name,
        inputs: shapes
            .iter()
            .map(|s| (s.clone(), rand_vec(rng, numel(s), 1.0)))
            .collect(),
        labels: None,
        label_shape: Vec::new(),
        build: Box::new(build),
        fallback_too: false,
        gpu_tol: GPU_TOL,
    }
}

#[test]
fn matmul_plain_transposed_and_batched() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for m in MatmulCase::all(&[(1, 1, 1), (3, 7, 5), (33, 65, 7), (70, 33, 129)]) {
        let c = case(m.name(), &mut rng, &m.operand_shapes(), move |g, v, _| {
            g.matmul(v[0], v[1], m.ta, m.tb)
        });
        check(
            c,
            &[true, true],
            move |x| m.forward(&x[0], &x[1]),
            move |x, dy| m.backward(&x[0], &x[1], dy).to_vec(),
        );
    }
}

#[test]
fn linear_with_and_without_bias() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (lead, inp, out) in [
        (vec![1], 1, 1),
        (vec![3], 7, 3),
        (vec![33], 65, 129),
        (vec![70], 33, 7),
        (vec![3, 5], 7, 33),
    ] {
        let rows = numel(&lead);
        for bias in [true, false] {
            let mut shapes = vec![[&lead[..], &[inp]].concat(), vec![out, inp]];
            if bias {
                shapes.push(vec![out]);
            }
            let c = case(
                format!("linear {lead:?}x{inp} -> {out} bias {bias}"),
                &mut rng,
                &shapes,
                move |g, v, _| g.linear(v[0], v[1], v.get(2).copied()),
            );
            let fwd = move |x: &[Vec<f64>]| {
                r::linear(&x[0], &x[1], x.get(2).map(|b| &b[..]), rows, inp, out)
            };
            let bwd = move |x: &[Vec<f64>], dy: &[f64]| {
                let (dx, dw, db) = r::linear_backward(&x[0], &x[1], dy, rows, inp, out);
                if bias { vec![dx, dw, db] } else { vec![dx, dw] }
            };
            check(c, &[true, true, bias], fwd, bwd);
        }
    }
}

#[test]
fn broadcast_adds() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (a, b) in [
        (vec![1], vec![1]),
        (vec![3, 7, 33], vec![3, 7, 33]),
        (vec![70, 33], vec![33]),
        (vec![3, 7, 33], vec![1, 7, 33]),
    ] {
        let period = numel(&b);
        let c = case(
            format!("add {a:?} + {b:?}"),
            &mut rng,
            &[a, b],
            |g, v, _| g.add(v[0], v[1]),
        );
        let fwd = |x: &[Vec<f64>]| {
            let mut y = x[0].clone();
            r::add_broadcast(&mut y, &x[1]);
            y
        };
        let bwd = move |_: &[Vec<f64>], dy: &[f64]| vec![dy.to_vec(), r::sum_rows(dy, period)];
        check(c, &[true, true], fwd, bwd);
    }
}

#[test]
fn activations() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for kind in [Activation::Relu, Activation::GeluTanh, Activation::GeluErf] {
        for n in [1, 7, 1000] {
            let mut c = case(
                format!("{kind:?} {n}"),
                &mut rng,
                &[vec![n]],
                move |g, v, _| g.activation(v[0], kind),
            );
            // Spread over [-6, 6] for the tails, away from ReLU's kink.
            for x in c.inputs[0].1.iter_mut() {
                let v = *x * 6.0;
                *x = (if v.abs() < 0.01 { v + 0.05 } else { v }) as f32 as f64;
            }
            check_unary(
                c,
                move |x| r::activation(x, kind),
                move |x, dy| r::activation_backward(x, dy, kind),
            );
        }
    }
}

#[test]
fn layer_norm() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let eps = 1e-5;
    for (rows, dim) in ROW_SHAPES {
        let c = case(
            format!("layer_norm {rows}x{dim}"),
            &mut rng,
            &[vec![rows, dim], vec![dim], vec![dim]],
            move |g, v, _| g.layer_norm(v[0], v[1], v[2], eps as f32),
        )
        .with_fallback();
        check(
            c,
            &[true, true, true],
            move |x| r::layer_norm(&x[0], &x[1], &x[2], dim, eps),
            move |x, dy| {
                let (dx, dw, db) = r::layer_norm_backward(&x[0], &x[1], dy, dim, eps);
                vec![dx, dw, db]
            },
        );
    }
}

#[test]
fn softmax() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for (rows, dim) in ROW_SHAPES {
        let c = case(
            format!("softmax {rows}x{dim}"),
            &mut rng,
            &[vec![rows, dim]],
            |g, v, _| g.softmax(v[0]),
        )
        .with_fallback();
        check_unary(
            c,
            move |x| r::softmax(x, dim),
            move |x, dy| r::softmax_backward(&r::softmax(x, dim), dy, dim),
        );
    }
}

/// (batch, tokens, dim, heads) of the attention cases, plain and causal: fused up to
/// 24 tokens with heads up to 32 wide (including 1 token, the cut-over itself, the
/// ViT's 17 tokens of head_dim 16, the widest fused head, and head counts that leave a
/// 256-wide workgroup partly idle), the matmul path for longer sequences and for
/// wider heads (48).
const ATTENTION_SHAPES: [(usize, usize, usize, usize); 10] = [
    (1, 1, 3, 1),
    (2, 7, 12, 3),
    (9, 17, 64, 4),
    (2, 24, 16, 4),
    (2, 5, 64, 2),
    (2, 6, 48, 1),
    (3, 33, 8, 2),
    (1, 64, 16, 2),
    (2, 70, 16, 4),
    (1, 129, 32, 4),
];

/// The reference's shape of an attention case.
fn attention_shape(batch: usize, tokens: usize, dim: usize, heads: usize) -> r::AttentionShape {
    r::AttentionShape {
        batch,
        tokens,
        dim,
        heads,
    }
}

/// Attention in both layouts: one packed qkv (the ViT's, not causal) and three
/// separate tensors (the language model's, causal).
#[test]
fn attention() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (batch, tokens, dim, heads) in ATTENTION_SHAPES {
        let s = attention_shape(batch, tokens, dim, heads);
        let c = case(
            format!("attention b{batch} n{tokens} d{dim} h{heads}"),
            &mut rng,
            &[vec![batch, tokens, 3 * dim]],
            move |g, v, _| g.attention(v[0], heads),
        )
        .with_fallback();
        check_unary(
            c,
            move |x| r::attention(x, s),
            move |x, dy| r::attention_backward(x, dy, s),
        );
        let c = case(
            format!("causal attention b{batch} n{tokens} d{dim} h{heads}"),
            &mut rng,
            &vec![vec![batch, tokens, dim]; 3],
            move |g, v, _| g.causal_attention(v[0], v[1], v[2], heads),
        )
        .with_fallback();
        check(
            c,
            &[true; 3],
            move |x| r::multi_head_attention([&x[0], &x[1], &x[2]], s, true),
            move |x, dy| {
                r::multi_head_attention_backward([&x[0], &x[1], &x[2]], dy, s, true).to_vec()
            },
        );
    }
}

#[test]
fn patchify() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for (shape, p) in [
        ([1, 1, 7, 7], 7),
        ([2, 3, 6, 9], 3),
        ([3, 1, 28, 28], 4),
        ([1, 1, 1, 1], 1),
    ] {
        let c = case(
            format!("patchify {shape:?} / {p}"),
            &mut rng,
            &[shape.to_vec()],
            move |g, v, _| g.patchify(v[0], p),
        );
        check_unary(
            c,
            move |x| r::patchify(x, shape, p),
            move |_, dy| r::patchify_backward(dy, shape, p),
        );
    }
}

#[test]
fn class_token_and_pooling() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (b, n, d) in [(1, 1, 1), (3, 7, 33), (2, 49, 65)] {
        let c = case(
            format!("prepend {b}x{n}x{d}"),
            &mut rng,
            &[vec![b, n, d], vec![1, 1, d]],
            |g, v, _| g.prepend_token(v[0], v[1]),
        );
        check(
            c,
            &[true, true],
            move |x| r::prepend_token(&x[0], &x[1], b, n),
            move |_, dy| {
                let (dx, dt) = r::prepend_token_backward(dy, b, n, d);
                vec![dx, dt]
            },
        );
        let c = case(
            format!("mean {b}x{n}x{d}"),
            &mut rng,
            &[vec![b, n, d]],
            |g, v, _| g.mean_tokens(v[0]),
        );
        check_unary(
            c,
            move |x| r::mean_tokens(x, b, n, d),
            move |_, dy| r::mean_tokens_backward(dy, b, n, d),
        );
        for index in [0, n - 1] {
            let c = case(
                format!("select {index} of {b}x{n}x{d}"),
                &mut rng,
                &[vec![b, n, d]],
                move |g, v, _| g.select_token(v[0], index),
            );
            check_unary(
                c,
                move |x| r::select_token(x, b, n, d, index),
                move |_, dy| r::select_token_backward(dy, b, n, d, index),
            );
        }
    }
}

#[test]
fn cross_entropy_and_correct_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    // Logits of scale 1, 5 and 60 in turn over the row shapes.
    let scales = [1.0, 5.0, 60.0].into_iter().cycle();
    for ((rows, classes), scale) in ROW_SHAPES.into_iter().zip(scales) {
        let labels: Vec<u32> = (0..rows)
            .map(|_| rng.random_range(0..classes as u32))
            .collect();
        let mut c = case(
            format!("cross_entropy {rows}x{classes} scale {scale}"),
            &mut rng,
            &[vec![rows, classes]],
            |g, v, l| g.cross_entropy(v[0], l.unwrap()),
        )
        .with_fallback();
        // Large logits (scale 60) would overflow a naive exp in f32.
        for x in c.inputs[0].1.iter_mut() {
            *x = (*x * scale) as f32 as f64;
        }
        let logits = c.inputs[0].1.clone();
        c.labels = Some(labels.clone());
        let l2 = labels.clone();
        check_unary(
            c,
            move |x| vec![r::cross_entropy(x, &labels, classes)],
            move |x, dy| r::cross_entropy_backward(x, &l2, classes, dy[0]),
        );
        // The correct count: forward only, exact.
        let (ctx, kernels) = gpu();
        let store = ParamStore::new(ctx, &[("logits", vec![rows, classes])]).unwrap();
        store
            .params
            .write_named(ctx, "logits", &to_f32(&logits))
            .unwrap();
        let mut g = GraphBuilder::new(store.layout().clone());
        let x = g.param("logits").unwrap();
        let lv = g.labels(rows);
        let count = g.correct_count(x, lv).unwrap();
        let graph = g.build(kernels, &store, &[]).unwrap();
        let labels: Vec<u32> = (0..rows).map(|i| (i % classes) as u32).collect();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        graph
            .value(lv)
            .record_write(
                &mut UploadRing::new("test labels"),
                ctx,
                &mut encoder,
                &labels,
            )
            .unwrap();
        graph.record_forward(&mut encoder);
        ctx.queue().submit([encoder.finish()]);
        let got = graph.value(count).read_f32_blocking(ctx).unwrap()[0];
        assert_eq!(got as usize, r::correct_count(&logits, &labels, classes));
    }
}

/// A variable read by several ops collects every contribution (the first op in
/// backward order overwrites its gradient, the others add).
#[test]
fn shared_variables_accumulate_and_grads_are_overwritten() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (rows, dim) = (5, 7);
    // y = gelu(x @ w^T) + x, then y @ w^T again: x and w are each read twice.
    let c = case(
        "composite".into(),
        &mut rng,
        &[vec![rows, dim], vec![dim, dim]],
        |g, v, _| {
            let h = g.linear(v[0], v[1], None)?;
            let h = g.activation(h, Activation::GeluTanh)?;
            let h = g.add(h, v[0])?;
            g.linear(h, v[1], None)
        },
    );
    let kind = Activation::GeluTanh;
    let fwd = move |x: &[Vec<f64>]| {
        let h = r::activation(&r::linear(&x[0], &x[1], None, rows, dim, dim), kind);
        let h: Vec<f64> = h.iter().zip(&x[0]).map(|(a, b)| a + b).collect();
        r::linear(&h, &x[1], None, rows, dim, dim)
    };
    let bwd = move |x: &[Vec<f64>], dy: &[f64]| {
        let z = r::linear(&x[0], &x[1], None, rows, dim, dim);
        let h: Vec<f64> = r::activation(&z, kind)
            .iter()
            .zip(&x[0])
            .map(|(a, b)| a + b)
            .collect();
        let (dh, dw2, _) = r::linear_backward(&h, &x[1], dy, rows, dim, dim);
        let dz = r::activation_backward(&z, &dh, kind);
        let (dx1, dw1, _) = r::linear_backward(&x[0], &x[1], &dz, rows, dim, dim);
        let dx: Vec<f64> = dx1.iter().zip(&dh).map(|(a, b)| a + b).collect();
        let dw: Vec<f64> = dw1.iter().zip(&dw2).map(|(a, b)| a + b).collect();
        vec![dx, dw]
    };
    check(c, &[true, true], fwd, bwd);
}

/// Every row-kernel variant runs above: on lavapipe (CI) the subgroup variant really
/// has subgroups, and the fallback never does.
#[test]
fn every_row_variant_is_exercised() {
    let [per_invocation, subgroup, fallback] = row_variants();
    assert_eq!(per_invocation.1.row_layout(), RowLayout::PerInvocation);
    assert_eq!(subgroup.1.row_layout(), RowLayout::PerWorkgroup);
    assert_eq!(fallback.1.row_layout(), RowLayout::PerWorkgroup);
    assert!(!fallback.0.capabilities().subgroups);
    if subgroup.0.adapter_info().name.contains("llvmpipe") {
        assert!(subgroup.0.capabilities().subgroups);
    }
}

// RMSNorm, RoPE and the SiLU gate (the LLaMA model's ops).

#[test]
fn rms_norm() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let shapes = ROW_SHAPES.map(|(rows, dim)| vec![rows, dim]);
    for shape in shapes.into_iter().chain([vec![2, 3, 33]]) {
        let dim = *shape.last().unwrap();
        // LLaMA's eps. A 1-feature row is ill-conditioned with it: dx is
        // rstd * dy * w * (1 - xhat^2) with xhat^2 = x^2 / (x^2 + eps), whose f32
        // cancellation leaves eps / x^2 ~ 1e-6 to about 6e-8 / 1e-6 = 6% in any f32
        // implementation; those rows take a large eps, where 1 - xhat^2 is well
        // conditioned.
        let eps = if dim == 1 { 0.5 } else { 1e-6 };
        let c = case(
            format!("rms_norm {shape:?}"),
            &mut rng,
            &[shape, vec![dim]],
            move |g, v, _| g.rms_norm(v[0], v[1], eps as f32),
        )
        .with_fallback();
        check(
            c,
            &[true, true],
            move |x| r::rms_norm(&x[0], &x[1], dim, eps),
            move |x, dy| {
                let (dx, dw) = r::rms_norm_backward(&x[0], &x[1], dy, dim, eps);
                vec![dx, dw]
            },
        );
    }
}

/// RoPE's GPU error against the f64 reference grows with the position: the kernel
/// rotates by PyTorch's f32 angles, `f32(t) * f32(theta^(-2i/hd))`, whose error is up
/// to t * (ln(theta) + 3) * 2^-24 radians (the exponent's rounding, amplified by
/// ln(theta) = 9.2, plus three roundings), moving each output by that times
/// sqrt(2) max |x|: 1.03e-6 per position for theta = 1e4. This allows 1.5e-6 per
/// position, for theta up to 5e5 (ln 13.1: 1.4e-6), on top of GPU_TOL.
const ROPE_TOL_PER_POSITION: f64 = 1.5e-6;

#[test]
fn rope() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    // (batch, tokens, heads, head_dim, theta): the smallest head, head dims that are
    // and are not powers of two, LLaMA's 128-token context and LLaMA 3's theta.
    for (batch, tokens, heads, head_dim, theta) in [
        (1, 1, 1, 2, 10_000.0),
        (2, 7, 3, 4, 10_000.0),
        (3, 33, 2, 6, 10_000.0),
        (2, 130, 2, 16, 10_000.0),
        (1, 65, 4, 32, 500_000.0),
        (2, 5, 1, 128, 10_000.0),
    ] {
        let s = r::RopeShape {
            tokens,
            heads,
            head_dim,
            theta,
        };
        let c = case(
            format!("rope b{batch} t{tokens} h{heads} hd{head_dim} theta {theta}"),
            &mut rng,
            &[vec![batch, tokens, heads * head_dim]],
            move |g, v, _| g.rope(v[0], heads, theta as f32),
        )
        .with_gpu_tol(GPU_TOL + ROPE_TOL_PER_POSITION * (tokens - 1) as f64);
        check_unary(
            c,
            move |x| r::rope(x, s),
            move |_, dy| r::rope_backward(dy, s),
        );
    }
}

#[test]
fn silu_gate() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    for shape in [vec![1], vec![7], vec![1000], vec![3, 5, 33]] {
        let mut c = case(
            format!("silu_gate {shape:?}"),
            &mut rng,
            &[shape.clone(), shape],
            |g, v, _| g.silu_gate(v[0], v[1]),
        );
        // Gates over [-8, 8], and far in both tails where there is room (exp(-x)
        // overflows f32 below x = -88).
        let gate = &mut c.inputs[0].1;
        gate.iter_mut().for_each(|v| *v *= 8.0);
        for (v, tail) in gate.iter_mut().skip(3).zip([-100.0, 95.0, -60.0]) {
            *v = tail;
        }
        check(
            c,
            &[true, true],
            |x| r::silu_gate(&x[0], &x[1]),
            |x, dy| {
                let (dgate, dup) = r::silu_gate_backward(&x[0], &x[1], dy);
                vec![dgate, dup]
            },
        );
    }
}

/// The three ops reject inputs that do not fit with a typed error, and the builder
/// stays usable: a graph with the valid ops still builds after the rejections.
#[test]
fn rms_norm_rope_and_silu_gate_reject_bad_input() {
    let (ctx, kernels) = gpu();
    let (store, mut g, [x, w, w_short, w_2d, flat]) = graph_over(
        ctx,
        [
            ("x", vec![2, 3, 12]),
            ("w", vec![12]),
            ("w_short", vec![11]),
            ("w_2d", vec![1, 12]),
            ("flat", vec![6, 12]),
        ],
    );
    let labels = g.labels(12);
    let shape_err = |r: Result<Var>| matches!(r, Err(Error::ShapeMismatch { .. }));
    let config_err = |r: Result<Var>| matches!(r, Err(Error::InvalidConfig(_)));

    assert!(shape_err(g.rms_norm(x, w_short, 1e-6)));
    assert!(shape_err(g.rms_norm(x, w_2d, 1e-6)));
    assert!(shape_err(g.rms_norm(labels, w, 1e-6)));
    assert!(shape_err(g.rms_norm(x, labels, 1e-6)));
    for eps in [0.0, -1e-6, f32::NAN] {
        assert!(config_err(g.rms_norm(x, w, eps)), "eps {eps}");
    }

    assert!(shape_err(g.rope(flat, 2, 1e4)), "not [batch, tokens, dim]");
    assert!(shape_err(g.rope(x, 5, 1e4)), "heads do not divide dim");
    assert!(shape_err(g.rope(x, 4, 1e4)), "odd head dim 3");
    assert!(shape_err(g.rope(x, 12, 1e4)), "odd head dim 1");
    assert!(shape_err(g.rope(x, 0, 1e4)), "no heads");
    assert!(shape_err(g.rope(w, 1, 1e4)));
    for theta in [0.0, -1e4, f32::NAN, f32::INFINITY] {
        assert!(config_err(g.rope(x, 2, theta)), "theta {theta}");
    }

    assert!(shape_err(g.silu_gate(x, flat)), "shapes differ");
    assert!(shape_err(g.silu_gate(w, w_2d)), "same length, other shape");
    assert!(shape_err(g.silu_gate(labels, w)));
    assert!(shape_err(g.silu_gate(w, labels)));

    let h = g.rms_norm(x, w, 1e-6).unwrap();
    let h = g.rope(h, 2, 1e4).unwrap();
    let y = g.silu_gate(h, x).unwrap();
    assert_eq!(g.shape(y), [2, 3, 12]);
    g.build(kernels, &store, &[y]).unwrap();
}

// ---- Language-model ops: token embedding, causal attention, per-token loss ----

/// Random ids below `vocab` (repeats included).
fn rand_ids(rng: &mut ChaCha8Rng, n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|_| rng.random_range(0..vocab as u32)).collect()
}

#[test]
fn embedding() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    // (vocab, dim, ids shape, all ids equal): one token; rows left unused; a
    // character-level vocabulary of 73 with a dim not a multiple of the workgroup;
    // every token on one row (the longest token list).
    for (vocab, dim, shape, same) in [
        (1, 1, vec![1], false),
        (5, 3, vec![2, 7], false),
        (73, 33, vec![3, 65], false),
        (7, 129, vec![300], false),
        (3, 17, vec![8, 64], true),
    ] {
        let n = numel(&shape);
        let ids = match same {
            true => vec![2; n],
            false => rand_ids(&mut rng, n, vocab),
        };
        let c = case(
            format!("embedding {vocab}x{dim} ids {shape:?} same {same}"),
            &mut rng,
            &[vec![vocab, dim]],
            |g, v, ids| g.embedding(v[0], ids.unwrap()),
        )
        .with_ids(&shape, ids.clone());
        let i2 = ids.clone();
        check_unary(
            c,
            move |x| r::embedding(x, &ids, dim),
            move |_, dy| r::embedding_backward(&i2, dy, vocab, dim),
        );
    }
}

/// The table read by the embedding and by a tied output head (`h @ table^T`): the
/// head's gradient is written first (overwrite), the embedding's scatter-add adds to
/// it (accumulate).
#[test]
fn embedding_tied_to_the_output_head() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let (vocab, dim, shape) = (11, 6, [3, 5]);
    let n = numel(&shape);
    let ids = rand_ids(&mut rng, n, vocab);
    let c = case(
        "embedding tied".into(),
        &mut rng,
        &[vec![vocab, dim]],
        |g, v, ids| {
            let h = g.embedding(v[0], ids.unwrap())?;
            let h = g.activation(h, Activation::GeluTanh)?;
            g.linear(h, v[0], None)
        },
    )
    .with_ids(&shape, ids.clone());
    let kind = Activation::GeluTanh;
    let i2 = ids.clone();
    let fwd = move |x: &[f64]| {
        let h = r::activation(&r::embedding(x, &ids, dim), kind);
        r::linear(&h, x, None, n, dim, vocab)
    };
    let bwd = move |x: &[f64], dy: &[f64]| {
        let e = r::embedding(x, &i2, dim);
        let h = r::activation(&e, kind);
        let (dh, dw, _) = r::linear_backward(&h, x, dy, n, dim, vocab);
        let de = r::activation_backward(&e, &dh, kind);
        let scatter = r::embedding_backward(&i2, &de, vocab, dim);
        dw.iter().zip(&scatter).map(|(a, b)| a + b).collect()
    };
    check_unary(c, fwd, bwd);
}

/// Ids at or above the vocabulary (or a loss's classes) are refused where they are
/// written, and nothing is recorded; ids that bypass the check read the last row.
#[test]
fn embedding_ids_out_of_range() {
    let (ctx, kernels) = gpu();
    let (vocab, dim) = (5, 3);
    let store = ParamStore::new(ctx, &[("table", vec![vocab, dim])]).unwrap();
    let table: Vec<f32> = (0..vocab * dim).map(|i| i as f32).collect();
    store.params.write_named(ctx, "table", &table).unwrap();
    let mut g = GraphBuilder::new(store.layout().clone());
    let t = g.param("table").unwrap();
    let ids = g.ids(&[2, 2]);
    let y = g.embedding(t, ids).unwrap();
    // The same ids as labels of a 4-class loss: the tighter bound wins.
    let head = g.input(&[4, dim]);
    let logits = g.linear(y, head, None).unwrap();
    let loss = g.cross_entropy(logits, ids).unwrap();
    let graph = g.build(kernels, &store, &[loss]).unwrap();
    let mut uploads = UploadRing::new("test ids");
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    // Unchecked ids of 99 gather the last row.
    graph
        .value(ids)
        .record_write(&mut uploads, ctx, &mut encoder, &[0u32, 99, 4, 99])
        .unwrap();
    // Refused writes record nothing: the forward pass still sees the ids above.
    for (bad, index, label) in [([0, 5, 1, 2], 1, 5), ([0, 1, 2, 4], 3, 4)] {
        let err = graph
            .record_write_ids(ids, &mut uploads, ctx, &mut encoder, &bad)
            .unwrap_err();
        assert!(
            matches!(err, coptim::Error::LabelOutOfRange { index: i, label: l, classes: 4 } if i == index && l == label),
            "{err}"
        );
    }
    graph.record_forward(&mut encoder);
    ctx.queue().submit([encoder.finish()]);
    let got = graph.value(y).read_f32_blocking(ctx).unwrap();
    let rows = [0, 4, 4, 4].map(|r| &table[r * dim..(r + 1) * dim]);
    assert_eq!(got, rows.concat());
}

#[test]
fn language_model_ops_refuse_bad_shapes() {
    let (ctx, _) = gpu();
    let (_store, mut g, [table, cube, x]) = graph_over(
        ctx,
        [
            ("table", vec![7, 4]),
            ("cube", vec![2, 3, 4]),
            ("x", vec![2, 3, 4]),
        ],
    );
    let ids = g.ids(&[2, 3]);
    let wrong = |r: Result<Var>| matches!(r, Err(coptim::Error::ShapeMismatch { .. }));
    // Embedding: a 3-D table, f32 ids, u32 table.
    assert!(wrong(g.embedding(cube, ids)));
    assert!(wrong(g.embedding(table, x)));
    assert!(wrong(g.embedding(ids, ids)));
    // Causal attention: heads not dividing dim, mismatched shapes, u32 operands.
    assert!(wrong(g.causal_attention(x, x, x, 3)));
    assert!(wrong(g.causal_attention(x, x, x, 0)));
    assert!(wrong(g.causal_attention(x, table, x, 2)));
    assert!(wrong(g.causal_attention(x, x, ids, 1)));
    // Per-token loss: labels must be the logits' leading shape.
    let (long, flat) = (g.ids(&[2, 4]), g.ids(&[6]));
    assert!(wrong(g.cross_entropy(x, long)));
    assert!(wrong(g.cross_entropy(x, flat)));
    assert!(g.cross_entropy(x, ids).is_ok());
}

/// One variable as q, k and v: the three gradients add up (fused and matmul path).
#[test]
fn causal_attention_on_one_variable() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    for (batch, tokens, dim, heads) in [(2, 9, 8, 2), (1, 70, 8, 2)] {
        let s = attention_shape(batch, tokens, dim, heads);
        let c = case(
            format!("causal self-attention b{batch} n{tokens}"),
            &mut rng,
            &[vec![batch, tokens, dim]],
            move |g, v, _| g.causal_attention(v[0], v[0], v[0], heads),
        );
        check_unary(
            c,
            move |x| r::multi_head_attention([x, x, x], s, true),
            move |x, dy| {
                let [dq, dk, dv] = r::multi_head_attention_backward([x, x, x], dy, s, true);
                (0..x.len()).map(|i| dq[i] + dk[i] + dv[i]).collect()
            },
        );
    }
}

/// Keys and values that want gradients while the queries (an input) do not: the
/// fused path still computes dS for dK (into a scratch dQ); both paths.
#[test]
fn causal_attention_without_query_gradient() {
    let (ctx, kernels) = gpu();
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    for (batch, tokens, dim, heads) in [(2, 9, 8, 2), (1, 70, 8, 2)] {
        let s = attention_shape(batch, tokens, dim, heads);
        let shape = [batch, tokens, dim];
        let [q, k, v, dy] = [(); 4].map(|_| rand_vec(&mut rng, numel(&shape), 1.0));
        let store = ParamStore::new(ctx, &[("k", shape.to_vec()), ("v", shape.to_vec())]).unwrap();
        store.params.write_named(ctx, "k", &to_f32(&k)).unwrap();
        store.params.write_named(ctx, "v", &to_f32(&v)).unwrap();
        let mut g = GraphBuilder::new(store.layout().clone());
        let qv = g.input(&shape);
        let (kv, vv) = (g.param("k").unwrap(), g.param("v").unwrap());
        let out = g.causal_attention(qv, kv, vv, heads).unwrap();
        let graph = g.build(kernels, &store, &[out]).unwrap();
        assert!(graph.grad(qv).is_none());
        graph.value(qv).write_f32(ctx, &to_f32(&q)).unwrap();
        graph
            .grad(out)
            .unwrap()
            .write_f32(ctx, &to_f32(&dy))
            .unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        graph.record_forward(&mut encoder);
        graph.record_backward(&mut encoder);
        ctx.queue().submit([encoder.finish()]);
        let got = store.grads.read_all_blocking(ctx).unwrap();
        let [_, dk, dv] = r::multi_head_attention_backward([&q, &k, &v], &dy, s, true);
        for (name, g, want) in [("dK", &got[0], &dk), ("dV", &got[1], &dv)] {
            let e = rel_err(&to_f64(g), want);
            assert!(e <= GPU_TOL, "n{tokens} {name}: relative error {e:e}");
        }
    }
}

/// The existing cross-entropy as a language model's loss: logits `[batch, tokens,
/// vocab]` (and `[rows, vocab]`) against next-token ids from the same u32 input
/// kind as the embedding's, at a character vocabulary of 73 and 4096+ rows.
#[test]
fn cross_entropy_per_token() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let vocab = 73;
    for shape in [vec![33, 128], vec![4097]] {
        let n = numel(&shape);
        let labels = rand_ids(&mut rng, n, vocab);
        let logits_shape = [&shape[..], &[vocab]].concat();
        let mut c = case(
            format!("cross_entropy {shape:?} x {vocab}"),
            &mut rng,
            &[logits_shape],
            |g, v, l| g.cross_entropy(v[0], l.unwrap()),
        )
        .with_fallback()
        .with_ids(&shape, labels.clone());
        for x in c.inputs[0].1.iter_mut() {
            *x = (*x * 5.0) as f32 as f64;
        }
        let l2 = labels.clone();
        check_unary(
            c,
            move |x| vec![r::cross_entropy(x, &labels, vocab)],
            move |x, dy| r::cross_entropy_backward(x, &l2, vocab, dy[0]),
        );
    }
}

// ---- Masked autoencoder ops: visible-token gather, unshuffle with the mask token,
// masked MSE on (normalized) patches ----

/// MAE's `random_masking` ids for `batch` samples of `n` patches keeping `keep`:
/// `(ids_keep [batch, keep], ids_restore [batch, n])`, from a random permutation
/// (argsort of the noise) per sample.
fn mae_ids(rng: &mut ChaCha8Rng, batch: usize, n: usize, keep: usize) -> (Vec<u32>, Vec<u32>) {
    let (mut ids_keep, mut ids_restore) = (Vec::new(), vec![0; batch * n]);
    for b in 0..batch {
        let mut shuffle: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            shuffle.swap(i, rng.random_range(0..=i));
        }
        ids_keep.extend_from_slice(&shuffle[..keep]);
        for (rank, &patch) in shuffle.iter().enumerate() {
            ids_restore[b * n + patch as usize] = rank as u32;
        }
    }
    (ids_keep, ids_restore)
}

/// (batch, n, keep, dim, repeated ids) of the gather cases: one token; the digits' 16
/// patches keeping 4 at an encoder width; every patch kept; more outputs than sources
/// with ids repeating (each source sums the outputs that read it); 196 patches keeping
/// 49.
const GATHER_CASES: [(usize, usize, usize, usize, bool); 5] = [
    (1, 1, 1, 1, false),
    (2, 16, 4, 64, false),
    (3, 7, 7, 5, false),
    (2, 5, 9, 3, true),
    (2, 196, 49, 17, false),
];

/// (batch, n, keep, dim, mask token shape [1, 1, dim] as MAE's or [dim]) of the
/// unshuffle cases: the digits' decoder; one kept patch; nothing masked (the mask
/// token's gradient is 0); 196 patches keeping 49 over more samples than one slot per
/// invocation.
const UNSHUFFLE_CASES: [(usize, usize, usize, usize, bool); 4] = [
    (2, 16, 4, 32, true),
    (3, 7, 1, 5, false),
    (1, 5, 5, 3, true),
    (8, 196, 49, 9, false),
];

#[test]
fn gather_tokens() {
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    for (batch, n, keep, dim, repeats) in GATHER_CASES {
        let ids = match repeats {
            true => rand_ids(&mut rng, batch * keep, n),
            false => mae_ids(&mut rng, batch, n, keep).0,
        };
        let s = r::GatherShape {
            batch,
            sources: n,
            tokens: keep,
            dim,
        };
        let c = case(
            format!("gather_tokens b{batch} n{n} keep {keep} d{dim} repeats {repeats}"),
            &mut rng,
            &[vec![batch, n, dim]],
            |g, v, ids| g.gather_tokens(v[0], ids.unwrap()),
        )
        .with_ids(&[batch, keep], ids.clone());
        let i2 = ids.clone();
        check_unary(
            c,
            move |x| r::gather_tokens(x, &ids, None, s),
            move |_, dy| r::gather_tokens_backward(&i2, dy, s).0,
        );
    }
}

#[test]
fn unshuffle_tokens() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for (batch, n, keep, dim, mae_shape) in UNSHUFFLE_CASES {
        let ids_restore = mae_ids(&mut rng, batch, n, keep).1;
        let s = r::GatherShape {
            batch,
            sources: keep,
            tokens: n,
            dim,
        };
        let token = match mae_shape {
            true => vec![1, 1, dim],
            false => vec![dim],
        };
        let c = case(
            format!("unshuffle_tokens b{batch} n{n} keep {keep} d{dim} token {token:?}"),
            &mut rng,
            &[vec![batch, keep, dim], token],
            |g, v, ids| g.unshuffle_tokens(v[0], ids.unwrap(), v[1]),
        )
        .with_ids(&[batch, n], ids_restore.clone());
        let i2 = ids_restore.clone();
        check(
            c,
            &[true, true],
            move |x| r::gather_tokens(&x[0], &ids_restore, Some(&x[1]), s),
            move |_, dy| {
                let (dx, dtoken) = r::gather_tokens_backward(&i2, dy, s);
                vec![dx, dtoken]
            },
        );
    }
}

/// A target row of equal values whose f32 mean is exact (49 * 0.25 and 12.25 / 49 are
/// exact): its normalized target is 0 in f32 as in f64, as for MAE's blank patches.
const FLAT_PATCH_VALUE: f64 = 0.25;

#[test]
fn masked_mse() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    // (batch, n, patch): the smallest normalizable patch; the digits' 16 patches of
    // 7 x 7 pixels; more rows than the reduction's workgroup (256).
    for (batch, n, patch) in [(1, 1, 2), (2, 16, 49), (3, 5, 7), (2, 300, 3)] {
        for norm in [false, true] {
            let rows = batch * n;
            let mut c = case(
                format!("masked_mse b{batch} n{n} p{patch} norm_pix {norm}"),
                &mut rng,
                &[vec![batch, n, patch], vec![batch, n, patch], vec![batch, n]],
                move |g, v, _| g.masked_mse(v[0], v[1], v[2], norm),
            );
            // About 3 in 4 patches masked, the first always (a mask summing to 0 has
            // no mean), and the last target row flat.
            c.inputs[2].1 = (0..rows)
                .map(|r| (r == 0 || rng.random_range(0..4) > 0) as u32 as f64)
                .collect();
            let target = &mut c.inputs[1].1;
            let last = target.len() - patch;
            target[last..].fill(FLAT_PATCH_VALUE);
            check(
                c,
                &[true, false, false],
                move |x| vec![r::masked_mse(&x[0], &x[1], &x[2], patch, norm)],
                move |x, dy| {
                    let inputs = (&x[0][..], &x[1][..], &x[2][..]);
                    let dpred = r::masked_mse_backward(inputs, patch, norm, dy[0]);
                    vec![dpred, vec![0.0; x[1].len()], vec![0.0; x[2].len()]]
                },
            );
        }
    }
}

/// A graph over the tensors the MAE-op refusal tests feed: `x`, `flat`, `token`,
/// `token5`, `target`, `mask`, `pixel`, `pixel_mask`.
fn mae_graph() -> (ParamStore, GraphBuilder, [Var; 8]) {
    graph_over(
        &gpu().0,
        [
            ("x", vec![2, 6, 4]),
            ("flat", vec![12, 4]),
            ("token", vec![1, 1, 4]),
            ("token5", vec![5]),
            ("target", vec![2, 6, 4]),
            ("mask", vec![2, 6]),
            ("pixel", vec![2, 6, 1]),
            ("pixel_mask", vec![2, 6]),
        ],
    )
}

#[test]
fn mae_ops_refuse_bad_input() {
    let (_store, mut g, [x, flat, token, token5, target, mask, pixel, pixel_mask]) = mae_graph();
    let (keep, restore, other_batch) = (g.ids(&[2, 3]), g.ids(&[2, 6]), g.ids(&[3, 3]));
    let (flat_ids, labels) = (g.ids(&[6]), g.labels(6));
    let shape_err = |r: Result<Var>| matches!(r, Err(Error::ShapeMismatch { .. }));

    assert!(
        shape_err(g.gather_tokens(flat, keep)),
        "tokens not [b, n, d]"
    );
    assert!(shape_err(g.gather_tokens(x, flat_ids)), "ids not [b, k]");
    assert!(shape_err(g.gather_tokens(x, other_batch)), "batch differs");
    assert!(shape_err(g.gather_tokens(x, mask)), "f32 ids");
    assert!(shape_err(g.gather_tokens(x, labels)));
    assert!(
        shape_err(g.unshuffle_tokens(x, restore, token5)),
        "token width"
    );
    assert!(
        shape_err(g.unshuffle_tokens(x, restore, flat)),
        "token not [d]"
    );
    assert!(shape_err(g.unshuffle_tokens(x, mask, token)), "f32 ids");

    assert!(
        shape_err(g.masked_mse(x, flat, mask, false)),
        "pred, target shapes"
    );
    assert!(shape_err(g.masked_mse(x, target, x, false)), "mask shape");
    assert!(
        shape_err(g.masked_mse(x, target, restore, false)),
        "u32 mask"
    );
    assert!(
        shape_err(g.masked_mse(restore, restore, mask, false)),
        "u32 pred"
    );
    assert!(
        shape_err(g.masked_mse(pixel, pixel, pixel_mask, true)),
        "1 value"
    );
    g.masked_mse(pixel, pixel, pixel_mask, false).unwrap();
}

#[test]
fn mae_ids_beyond_their_tokens_are_refused_on_upload() {
    let (ctx, kernels) = gpu();
    let (store, mut g, [x, _, token, _, target, mask, _, _]) = mae_graph();
    let (keep, restore) = (g.ids(&[2, 3]), g.ids(&[2, 6]));
    let visible = g.gather_tokens(x, keep).unwrap();
    let full = g.unshuffle_tokens(visible, restore, token).unwrap();
    let loss = g.masked_mse(full, target, mask, true).unwrap();
    let graph = g.build(kernels, &store, &[loss]).unwrap();
    let mut uploads = UploadRing::new("test ids");
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    for (ids, bad, index, label) in [
        (keep, vec![0, 1, 2, 5, 6, 0], 4, 6),
        (restore, vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 7], 11, 7),
    ] {
        let err = graph
            .record_write_ids(ids, &mut uploads, ctx, &mut encoder, &bad)
            .unwrap_err();
        assert!(
            matches!(err, Error::LabelOutOfRange { index: i, label: l, classes: 6 } if i == index && l == label),
            "{err}"
        );
    }
}

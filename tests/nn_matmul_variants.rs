//! Every matmul variant, forced on the test adapter (lavapipe in CI), against the f64
//! CPU reference at every shape class: tiny (1x1x1, 3x5x2), skinny (1xKxN, MxKx1),
//! square, sizes that are not multiples of any tile (and larger than the biggest
//! tile, so several workgroups meet), batched, and every transpose of A and B. Each
//! case runs forward and backward (the backward products read transposed views and
//! write through them), so one case checks three products. `linear` (fused bias) and
//! `attention` (scaled, accumulating, strided heads inside qkv) run on every variant
//! too.
//!
//! Error measure: max |gpu - ref| / max |ref| per tensor, inputs uniform in [-1, 1]
//! and rounded to f32 first.
//! - `F32_TOL = 2e-5`: f32 unit roundoff 6e-8 times sums of at most 300 terms lands
//!   at 1e-7..2e-6; the 10x margin allows other drivers' fma contraction. A wrong
//!   index, stride or missing term gives errors of order 1.
//! - `F16_TOL = 3e-3` for `tiled_f16`: its inputs are rounded to f16 (unit roundoff
//!   4.9e-4) before the f32 accumulation, so each product carries up to ~1e-3
//!   relative error; random signs keep the sum's error near 1e-4 of the largest
//!   output (measured: see the test's message on failure), the rest is margin.

mod common;

use std::sync::OnceLock;

use coptim::nn::{GraphBuilder, Kernels, MatmulVariant, Var, reference as r};
use coptim::{Error, GpuContext, ParamStore};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::matmul::MatmulCase;
use common::{rel_err, to_f64};

const F32_TOL: f64 = 2e-5;
const F16_TOL: f64 = 3e-3;

fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        GpuContext::new_blocking(&Default::default())
            .expect("a GPU adapter (install mesa-vulkan-drivers)")
    })
}

fn tolerance(v: MatmulVariant) -> f64 {
    match v {
        MatmulVariant::TiledF16 => F16_TOL,
        _ => F32_TOL,
    }
}

/// The kernels of `v`, or `None` (with a note) when the adapter lacks its feature;
/// the lavapipe adapter of CI has every feature, so there every variant runs.
fn kernels(v: MatmulVariant) -> Option<Kernels> {
    match Kernels::with_matmul(ctx(), v) {
        Ok(k) => Some(k),
        Err(Error::MissingFeature { feature, .. }) => {
            eprintln!("skipping {}: adapter lacks {feature}", v.name());
            None
        }
        Err(e) => panic!("{}: {e}", v.name()),
    }
}

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| (rng.random::<f64>() * 2.0 - 1.0) as f32 as f64)
        .collect()
}

/// Runs the graph that `build` declares on `inputs` (parameters `in0`, `in1`, ...),
/// seeded with `upstream`, and returns the output and every input's gradient.
fn run(
    kernels: &Kernels,
    inputs: &[(Vec<usize>, Vec<f64>)],
    upstream: &[f64],
    build: impl Fn(&mut GraphBuilder, &[Var]) -> coptim::Result<Var>,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let ctx = ctx();
    let names: Vec<String> = (0..inputs.len()).map(|i| format!("in{i}")).collect();
    let decl: Vec<(&str, Vec<usize>)> = names
        .iter()
        .zip(inputs)
        .map(|(n, (s, _))| (n.as_str(), s.clone()))
        .collect();
    let store = ParamStore::new(ctx, &decl).unwrap();
    for (n, (_, v)) in names.iter().zip(inputs) {
        let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        store.params.write_named(ctx, n, &v).unwrap();
    }
    let mut g = GraphBuilder::new(store.layout().clone());
    let vars: Vec<Var> = names.iter().map(|n| g.param(n).unwrap()).collect();
    let out = build(&mut g, &vars).unwrap();
    let graph = g.build(kernels, &store, &[out]).unwrap();
    let up: Vec<f32> = upstream.iter().map(|&x| x as f32).collect();
    graph.grad(out).unwrap().write_f32(ctx, &up).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    graph.record_forward(&mut encoder);
    graph.record_backward(&mut encoder);
    ctx.queue().submit([encoder.finish()]);
    let y = graph.value(out).read_f32_blocking(ctx).unwrap();
    (y, store.grads.read_all_blocking(ctx).unwrap())
}

/// Asserts every GPU tensor matches its reference within the variant's tolerance.
fn assert_close(v: MatmulVariant, case: &str, gpu: &[&[f32]], reference: &[&[f64]]) {
    for (i, (g, r)) in gpu.iter().zip(reference).enumerate() {
        let e = rel_err(&to_f64(g), r);
        assert!(
            e <= tolerance(v),
            "{} {case}: tensor {i} (0 output, then gradients) relative error {e:e}",
            v.name()
        );
    }
}

/// (m, k, n) of every shape class. (70, 33, 31) and (97, 49, 32) are narrow (at
/// most 32 columns: `rows_subgroup`'s 4-column block) with several row blocks and k
/// not a multiple of 8; their backward products are narrow (dB) and wide (dA).
const SHAPES: [(usize, usize, usize); 10] = [
    (1, 1, 1),
    (3, 5, 2),
    (1, 300, 70),
    (70, 300, 1),
    (128, 128, 128),
    (33, 65, 7),
    (70, 33, 129),
    (200, 100, 150),
    (70, 33, 31),
    (97, 49, 32),
];

fn check_matmul(v: MatmulVariant, kernels: &Kernels, rng: &mut ChaCha8Rng) {
    for c in MatmulCase::all(&SHAPES) {
        let nb = c.matrices();
        let a = rand_vec(rng, nb * c.m * c.k);
        let b = rand_vec(rng, nb * c.k * c.n);
        let dy = rand_vec(rng, nb * c.m * c.n);
        let [a_shape, b_shape] = c.operand_shapes();
        let inputs = [(a_shape, a.clone()), (b_shape, b.clone())];
        let (y, grads) = run(kernels, &inputs, &dy, |g, x| {
            g.matmul(x[0], x[1], c.ta, c.tb)
        });
        let [rda, rdb] = c.backward(&a, &b, &dy);
        let ry = c.forward(&a, &b);
        assert_close(
            v,
            &c.name(),
            &[&y, &grads[0], &grads[1]],
            &[&ry, &rda, &rdb],
        );
    }
}

fn check_linear(v: MatmulVariant, kernels: &Kernels, rng: &mut ChaCha8Rng) {
    for (rows, inp, out) in [(1, 1, 1), (130, 37, 10), (67, 200, 150)] {
        let (x, w, b) = (
            rand_vec(rng, rows * inp),
            rand_vec(rng, out * inp),
            rand_vec(rng, out),
        );
        let dy = rand_vec(rng, rows * out);
        let inputs = [
            (vec![rows, inp], x.clone()),
            (vec![out, inp], w.clone()),
            (vec![out], b.clone()),
        ];
        let (y, g) = run(kernels, &inputs, &dy, |gb, v| {
            gb.linear(v[0], v[1], Some(v[2]))
        });
        let ry = r::linear(&x, &w, Some(&b), rows, inp, out);
        let (dx, dw, db) = r::linear_backward(&x, &w, &dy, rows, inp, out);
        let case = format!("linear {rows}x{inp}->{out}");
        assert_close(v, &case, &[&y, &g[0], &g[1], &g[2]], &[&ry, &dx, &dw, &db]);
    }
}

fn check_attention(v: MatmulVariant, kernels: &Kernels, rng: &mut ChaCha8Rng) {
    let s = r::AttentionShape {
        batch: 3,
        tokens: 17,
        dim: 24,
        heads: 2,
    };
    let qkv = rand_vec(rng, s.batch * s.tokens * 3 * s.dim);
    let dy = rand_vec(rng, s.batch * s.tokens * s.dim);
    let inputs = [(vec![s.batch, s.tokens, 3 * s.dim], qkv.clone())];
    let (y, g) = run(kernels, &inputs, &dy, |gb, v| gb.attention(v[0], s.heads));
    let ry = r::attention(&qkv, s);
    let rg = r::attention_backward(&qkv, &dy, s);
    assert_close(v, "attention", &[&y, &g[0]], &[&ry, &rg]);
}

#[test]
fn every_variant_matches_the_reference() {
    for v in MatmulVariant::ALL {
        let Some(kernels) = kernels(v) else { continue };
        assert_eq!(kernels.matmul_variant(), v);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        check_matmul(v, &kernels, &mut rng);
        check_linear(v, &kernels, &mut rng);
        check_attention(v, &kernels, &mut rng);
    }
}

#[test]
fn optional_variants_need_their_feature() {
    let plain = ctx().without(true, true);
    for (v, feature) in [
        (MatmulVariant::RowsSubgroup, "SUBGROUP"),
        (MatmulVariant::Subgroup, "SUBGROUP"),
        (MatmulVariant::TiledF16, "SHADER_F16"),
    ] {
        match Kernels::with_matmul(&plain, v) {
            Err(Error::MissingFeature { feature: f, .. }) => assert_eq!(f, feature),
            other => panic!("{}: expected MissingFeature, got {other:?}", v.name()),
        }
    }
    for v in [MatmulVariant::Rows, MatmulVariant::Tiled] {
        assert!(Kernels::with_matmul(&plain, v).is_ok(), "{}", v.name());
    }
}

/// CPU adapters get `rows_subgroup` where subgroups of 8 lanes or more are enabled
/// (lavapipe) and fall back to `rows` without them; GPUs get `tiled`.
#[test]
fn cpu_adapters_get_a_rows_variant() {
    let info = ctx().adapter_info();
    let cpu = info.device_type == wgpu::DeviceType::Cpu;
    let with_subgroups = ctx().capabilities().subgroups && info.subgroup_min_size >= 8;
    let (expected, fallback) = match (cpu, with_subgroups) {
        (true, true) => (MatmulVariant::RowsSubgroup, MatmulVariant::Rows),
        (true, false) => (MatmulVariant::Rows, MatmulVariant::Rows),
        (false, _) => (MatmulVariant::Tiled, MatmulVariant::Tiled),
    };
    assert_eq!(Kernels::new(ctx()).matmul_variant(), expected);
    let plain = ctx().without(true, false);
    assert_eq!(Kernels::new(&plain).matmul_variant(), fallback);
}

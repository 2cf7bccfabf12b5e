//! Throughput of the matmul kernel and of the model steps on the default adapter.
//! Ignored by default (timing, not correctness); run with
//! `cargo test --release --test nn_speed -- --ignored --nocapture --test-threads=1`
//! (one at a time: they time the whole machine).

use std::time::Instant;

use coptim::nn::{GraphBuilder, Kernels};
use coptim::{GpuContext, ParamStore};

/// Seconds per call of `record`, submitted `iters` times after one warm-up.
fn time_it(ctx: &GpuContext, iters: usize, record: impl Fn(&mut wgpu::CommandEncoder)) -> f64 {
    let run = |n: usize| {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        for _ in 0..n {
            record(&mut encoder);
        }
        ctx.queue().submit([encoder.finish()]);
        ctx.wait_idle().unwrap();
    };
    run(1);
    let t = Instant::now();
    run(iters);
    t.elapsed().as_secs_f64() / iters as f64
}

#[test]
#[ignore]
fn matmul_gflops() {
    let ctx = GpuContext::new_blocking(&Default::default()).unwrap();
    let kernels = Kernels::new(&ctx);
    println!("adapter: {}", ctx.adapter_info().name);
    for (m, k, n, ta, tb) in [
        (256, 784, 256, false, false),
        (256, 784, 256, false, true),
        (256, 784, 256, true, false),
        (1024, 1024, 1024, false, false),
        (128, 256, 10, false, true),
    ] {
        let a = if ta { vec![k, m] } else { vec![m, k] };
        let b = if tb { vec![n, k] } else { vec![k, n] };
        let store = ParamStore::new(&ctx, &[("a", a), ("b", b)]).unwrap();
        let mut g = GraphBuilder::new(store.layout().clone());
        let (va, vb) = (g.param("a").unwrap(), g.param("b").unwrap());
        let _c = g.matmul(va, vb, ta, tb).unwrap();
        let graph = g.build(&kernels, &store, &[]).unwrap();
        let s = time_it(&ctx, 20, |e| graph.record_forward(e));
        let gflops = 2.0 * (m * k * n) as f64 / s / 1e9;
        println!(
            "matmul {m}x{k} @ {k}x{n} (ta {ta}, tb {tb}): {:.3} ms, {gflops:.1} GFLOP/s",
            s * 1e3
        );
    }
}

/// Forward + backward of one training batch of 128 (no optimizer step).
fn step_time(arch: impl coptim::model::Architecture + 'static, label: &str) {
    use coptim::model::{Batch, Model};
    let ctx = GpuContext::new_blocking(&Default::default()).unwrap();
    let mut model = Model::new(&ctx, arch, 0).unwrap();
    let batch = 128;
    let images = vec![0.5f32; batch * model.sample_len()];
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let model = std::cell::RefCell::new(&mut model);
    let s = time_it(&ctx, 10, |e| {
        model
            .borrow_mut()
            .record_forward_backward(e, Batch::new(&images, &labels))
            .unwrap();
    });
    let n = model.borrow().num_parameters();
    println!(
        "{label} ({n} parameters): forward+backward of batch {batch}: {:.1} ms ({:.0} samples/s)",
        s * 1e3,
        batch as f64 / s
    );
}

#[test]
#[ignore]
fn model_step_times() {
    step_time(coptim::model::Mlp::default(), "MLP 784-256-256-10");
    step_time(
        coptim::model::Vit::default(),
        "ViT patch 7, dim 64, depth 4, heads 4",
    );
}

/// Every matmul variant at two shapes of the default models (the full table is
/// `coptim bench --nn`).
#[test]
#[ignore]
fn matmul_variant_gflops() {
    use coptim::bench::nn::{MatmulShape, time_matmul};
    use coptim::nn::MatmulVariant;
    let ctx = GpuContext::new_blocking(&Default::default()).unwrap();
    for (m, k, n) in [(2176, 64, 192), (128, 784, 256)] {
        let label = String::new();
        let shape = MatmulShape { label, m, k, n };
        for v in MatmulVariant::ALL {
            let Ok(kernels) = Kernels::with_matmul(&ctx, v) else {
                continue;
            };
            let gflops = time_matmul(&ctx, &kernels, &shape).unwrap();
            println!("{m}x{k}x{n} {}: {gflops:.2} GFLOP/s", v.name());
        }
    }
}

/// Forward and backward time of the row ops and attention at the ViT's shapes (batch
/// 128, 17 tokens, width 64, 4 heads), under each row-kernel layout.
#[test]
#[ignore]
fn row_op_and_attention_times() {
    use coptim::nn::{Activation, RowLayout};
    let ctx = GpuContext::new_blocking(&Default::default()).unwrap();
    let layouts = [
        (ctx.clone(), RowLayout::PerInvocation),
        (ctx.clone(), RowLayout::PerWorkgroup),
        (ctx.without(true, false), RowLayout::PerWorkgroup),
    ];
    for (ctx, layout) in layouts {
        let kernels = Kernels::new(&ctx).with_row_layout(layout);
        let subgroups = ctx.capabilities().subgroups;
        for op in ["layer_norm", "softmax", "attention", "gelu"] {
            let decl: Vec<(&str, Vec<usize>)> = match op {
                "layer_norm" => vec![("x", vec![2176, 64]), ("w", vec![64]), ("b", vec![64])],
                "softmax" => vec![("x", vec![8704, 17])],
                "attention" => vec![("x", vec![128, 17, 192])],
                _ => vec![("x", vec![2176, 128])],
            };
            let store = ParamStore::new(&ctx, &decl).unwrap();
            let mut g = GraphBuilder::new(store.layout().clone());
            let v: Vec<_> = decl.iter().map(|(n, _)| g.param(n).unwrap()).collect();
            let y = match op {
                "layer_norm" => g.layer_norm(v[0], v[1], v[2], 1e-6),
                "softmax" => g.softmax(v[0]),
                "attention" => g.attention(v[0], 4),
                _ => g.activation(v[0], Activation::GeluErf),
            }
            .unwrap();
            let graph = g.build(&kernels, &store, &[y]).unwrap();
            let f = time_it(&ctx, 5, |e| graph.record_forward(e));
            let b = time_it(&ctx, 5, |e| graph.record_backward(e));
            println!(
                "{layout:?} (subgroups {subgroups}) {op} {:?}: forward {:.2} ms, backward {:.2} ms",
                decl[0].1,
                f * 1e3,
                b * 1e3
            );
        }
    }
}

/// Forward and backward time of the language model's ops (issue 11) at its default
/// sizes: 4096 tokens per batch (32 x 128, or 64 x 64 for the fused attention),
/// width 128, 4 heads, a vocabulary of 73.
#[test]
#[ignore]
fn language_model_op_times() {
    lm_op_times(128, (32, 128), (64, 64));
}

/// The `llama` preset of `coptim compare` (context 32, width 64, 2 blocks, 4 heads,
/// FFN 172, batch 32): its ops' forward and backward times, then the whole model's
/// training forward + backward at batch 32 and its validation forward at batch 128.
#[test]
#[ignore]
fn llama_preset_step_times() {
    use coptim::model::{Batch, Llama, Model};
    lm_op_times(64, (32, 32), (32, 32));
    let ctx = GpuContext::new_blocking(&Default::default()).unwrap();
    let arch = Llama {
        context: 32,
        ..Llama::default()
    };
    let vocab = arch.vocab;
    let mut model = Model::new(&ctx, arch, 0).unwrap();
    for (batch, train) in [(32, true), (128, false)] {
        let ids: Vec<u32> = (0..batch * 32).map(|i| (i * 7 % vocab) as u32).collect();
        let model = std::cell::RefCell::new(&mut model);
        let s = time_it(&ctx, 5, |e| {
            let data = Batch::tokens(&ids, &ids);
            let mut m = model.borrow_mut();
            match train {
                true => m.record_forward_backward(e, data),
                false => m.record_forward(e, data),
            }
            .unwrap();
        });
        let pass = if train { "forward+backward" } else { "forward" };
        println!(
            "llama preset {pass} of batch {batch}: {:.1} ms ({:.0} tokens/s)",
            s * 1e3,
            (batch * 32) as f64 / s
        );
    }
}

/// The language model's ops [`lm_op_times`] measures; "(matmul path)" in an attention
/// op's name forces that path.
const LM_OPS: [&str; 4] = [
    "embedding",
    "causal_attention (matmul path)",
    "causal_attention (fused)",
    "cross_entropy",
];

/// Forward and backward time of each of [`LM_OPS`] at width `dim`, 4 heads, a
/// vocabulary of 73, on `(batch, tokens)`: `fused` for the fused attention, `shape`
/// for the others.
fn lm_op_times(dim: usize, shape: (usize, usize), fused: (usize, usize)) {
    use coptim::arena::UploadRing;
    let ctx = GpuContext::new_blocking(&Default::default()).unwrap();
    let (vocab, heads) = (73, 4);
    for op in LM_OPS {
        let (batch, tokens) = match op {
            "causal_attention (fused)" => fused,
            _ => shape,
        };
        let kernels = match op.contains("matmul path") {
            true => Kernels::new(&ctx).with_fused_attention_max(0),
            false => Kernels::new(&ctx),
        };
        let x = vec![batch, tokens, dim];
        let decl: Vec<(&str, Vec<usize>)> = match op {
            "embedding" => vec![("table", vec![vocab, dim])],
            "cross_entropy" => vec![("logits", vec![batch, tokens, vocab])],
            _ => vec![("q", x.clone()), ("k", x.clone()), ("v", x)],
        };
        let store = ParamStore::new(&ctx, &decl).unwrap();
        let mut g = GraphBuilder::new(store.layout().clone());
        let p: Vec<_> = decl.iter().map(|(n, _)| g.param(n).unwrap()).collect();
        let ids = g.ids(&[batch, tokens]);
        let y = match op {
            "embedding" => g.embedding(p[0], ids),
            "cross_entropy" => g.cross_entropy(p[0], ids),
            _ => g.causal_attention(p[0], p[1], p[2], heads),
        }
        .unwrap();
        let graph = g.build(&kernels, &store, &[y]).unwrap();
        let values: Vec<u32> = (0..batch * tokens)
            .map(|i| (i * 7 % vocab) as u32)
            .collect();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let mut uploads = UploadRing::new("ids");
        graph
            .record_write_ids(ids, &mut uploads, &ctx, &mut encoder, &values)
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
        let f = time_it(&ctx, 5, |e| graph.record_forward(e));
        let b = time_it(&ctx, 5, |e| graph.record_backward(e));
        println!(
            "{op} [{batch}, {tokens}, width {dim}]: forward {:.2} ms, backward {:.2} ms",
            f * 1e3,
            b * 1e3
        );
    }
}

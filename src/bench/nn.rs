//! Benchmarks of the nn stack behind `coptim bench --nn`: the matmul kernels at the
//! shapes the default models use ([`model_matmul_shapes`], [`time_matmul`]) and the
//! training throughput of each model preset ([`training_samples_per_s`]). Wall-clock
//! timing: many products are recorded into one encoder and submitted once, so the
//! submit and wait overhead is spread over at least [`MIN_TIMED_SECONDS`].

use std::time::Instant;

use serde::Serialize;

use crate::arena::ParamStore;
use crate::context::GpuContext;
use crate::error::Result;
use crate::model::{Batch, Mlp, Vit};
use crate::nn::{GraphBuilder, Kernels};
use crate::optim::{Optimizer, StepInputs};
use crate::train::{ModelSpec, OptimizerKind, TrainConfig};

/// Shortest timed run of one measurement, in seconds.
pub const MIN_TIMED_SECONDS: f64 = 0.3;

/// One matrix product `[m, k] @ [k, n]` of a model, as the model computes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatmulShape {
    /// Where the product occurs (`mlp fc1`, `vit qkv`, ...).
    pub label: String,
    /// Rows of the output.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of the output.
    pub n: usize,
}

fn shape(label: impl Into<String>, m: usize, k: usize, n: usize) -> MatmulShape {
    MatmulShape {
        label: label.into(),
        m,
        k,
        n,
    }
}

/// The forward products (`x @ W^T`) of the default MLP and of a ViT with `vit`'s
/// configuration at `batch` samples: each distinct shape once. Backward products have
/// the same sizes permuted.
pub fn model_matmul_shapes(mlp: &Mlp, vit: &Vit, batch: usize, vit_name: &str) -> Vec<MatmulShape> {
    let mut out = Vec::new();
    let mut width = mlp.input;
    for (i, &h) in mlp.hidden.iter().chain([&mlp.classes]).enumerate() {
        out.push(shape(format!("mlp fc{}", i + 1), batch, width, h));
        width = h;
    }
    let grid = vit.encoder.grid;
    let tokens = grid.num_patches() + 1;
    let rows = batch * tokens;
    let patch_len = grid.patch_len();
    let (d, hidden) = (vit.encoder.dim, vit.encoder.mlp_hidden());
    out.extend([
        shape(
            format!("{vit_name} patch embed"),
            batch * grid.num_patches(),
            patch_len,
            d,
        ),
        shape(format!("{vit_name} qkv"), rows, d, 3 * d),
        shape(format!("{vit_name} proj"), rows, d, d),
        shape(format!("{vit_name} mlp fc1"), rows, d, hidden),
        shape(format!("{vit_name} mlp fc2"), rows, hidden, d),
        shape(format!("{vit_name} head"), batch, d, vit.classes),
    ]);
    out.dedup_by(|a, b| (a.m, a.k, a.n) == (b.m, b.k, b.n));
    out
}

/// Seconds per call of `record`: one untimed call, then enough calls in one encoder
/// to fill [`MIN_TIMED_SECONDS`].
fn seconds_per_call(
    ctx: &GpuContext,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<f64> {
    let mut run = |n: usize| -> Result<f64> {
        let t = Instant::now();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        for _ in 0..n {
            record(&mut encoder)?;
        }
        ctx.queue().submit([encoder.finish()]);
        ctx.wait_idle()?;
        Ok(t.elapsed().as_secs_f64())
    };
    let once = run(1)?.max(1e-6);
    let n = (MIN_TIMED_SECONDS / once).ceil().clamp(2.0, 2000.0) as usize;
    Ok(run(n)? / n as f64)
}

/// GFLOP/s of `[m, k] @ ([n, k])^T` (the layout of a linear layer's forward pass)
/// with `kernels`' matmul variant.
pub fn time_matmul(ctx: &GpuContext, kernels: &Kernels, s: &MatmulShape) -> Result<f64> {
    let store = ParamStore::new(ctx, &[("a", vec![s.m, s.k]), ("b", vec![s.n, s.k])])?;
    let mut g = GraphBuilder::new(store.layout().clone());
    let (a, b) = (g.param("a")?, g.param("b")?);
    g.matmul(a, b, false, true)?;
    let graph = g.build(kernels, &store, &[])?;
    let seconds = seconds_per_call(ctx, |e| {
        graph.record_forward(e);
        Ok(())
    })?;
    Ok(2.0 * (s.m * s.k * s.n) as f64 / seconds / 1e9)
}

/// The model presets `coptim bench --nn` times: `mlp` and `vit` (the defaults of
/// `coptim compare`), plus `vit_p7` (patch 7, width 64, depth 4: [`Vit::default`])
/// when the `vit` preset differs from it.
pub fn model_presets() -> Vec<(&'static str, ModelSpec)> {
    let mut presets = vec![
        ("mlp", ModelSpec::default_mlp()),
        ("vit", ModelSpec::default_vit()),
    ];
    let p7 = ModelSpec::Vit(Vit::default());
    if presets[1].1 != p7 {
        presets.push(("vit_p7", p7));
    }
    presets
}

/// Training samples per second of `spec` at `batch`: forward, backward and a C-AdamW
/// step, one submit per step as a training run does (inputs of zeros).
pub fn training_samples_per_s(ctx: &GpuContext, spec: &ModelSpec, batch: usize) -> Result<f64> {
    let mut model = spec.build(ctx, 0)?;
    let config = TrainConfig::for_model(spec.clone(), OptimizerKind::C_ADAMW);
    let mut optimizer = Optimizer::new(ctx, model.store(), config.optimizer_config()?)?;
    let images = vec![0.0f32; batch * model.sample_len()];
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let mut step = || -> Result<f64> {
        let t = Instant::now();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let batch = Batch::new(&images, &labels);
        let outputs = model.record_forward_backward(&mut encoder, batch)?;
        optimizer.record_step(&mut encoder, &outputs.step_inputs(StepInputs::scheduled()))?;
        ctx.queue().submit([encoder.finish()]);
        ctx.wait_idle()?;
        optimizer.take_stats()?;
        Ok(t.elapsed().as_secs_f64())
    };
    let first = step()?.max(1e-6);
    let steps = (MIN_TIMED_SECONDS / first).ceil().clamp(3.0, 200.0) as usize;
    let total: f64 = (0..steps).map(|_| step()).sum::<Result<f64>>()?;
    Ok((batch * steps) as f64 / total)
}

/// Muon's step on the parameters of one model, beside the same Newton-Schulz
/// products timed one by one through the plain matmul bench ([`time_matmul`]).
#[derive(Debug, Clone, Serialize)]
pub struct MuonTiming {
    /// Tensors Newton-Schulz orthogonalizes.
    pub matrices: usize,
    /// Tensors the fallback AdamW steps.
    pub fallback: usize,
    /// Milliseconds per Muon step (all passes, fallback included).
    pub step_ms: f64,
    /// GFLOP of one step's Newton-Schulz products.
    pub ns_gflop: f64,
    /// Milliseconds the same products take as single plain matmuls.
    pub plain_matmul_ms: f64,
}

/// Times a Muon (`caution`: C-Muon) step with the Newton-Schulz products in
/// `precision` on the parameters of `spec`'s model (gradients of zeros: the work
/// does not depend on the values).
pub fn time_muon_step(
    ctx: &GpuContext,
    spec: &ModelSpec,
    caution: crate::optim::Caution,
    precision: crate::optim::muon::NsPrecision,
) -> Result<MuonTiming> {
    use crate::optim::muon::{Muon, MuonOptimizer, muon_matrix};
    let model = spec.build(ctx, 0)?;
    let store = model.store();
    let muon = Muon::default();
    let mut opt = MuonOptimizer::new(ctx, store, muon, caution, 0.05, precision)?;
    let seconds = seconds_per_call(ctx, |e| opt.record_step(e, 0.02))?;
    let kernels = Kernels::with_matmul(ctx, precision.variant(ctx)?)?;
    let matrices: Vec<(usize, usize)> = store
        .layout()
        .tensors()
        .iter()
        .filter_map(|t| muon_matrix(&t.shape))
        .map(|(r, c)| (r.min(c), r.max(c)))
        .collect();
    let mut plain = 0.0;
    let mut timed = std::collections::HashMap::new();
    for &(r, c) in &matrices {
        for (m, k, n) in [(r, c, r), (r, r, r), (r, r, c)] {
            let flops = 2.0 * (m * k * n) as f64;
            let gflops = match timed.get(&(m, k, n)) {
                Some(&g) => g,
                None => {
                    let g = time_matmul(ctx, &kernels, &shape("muon", m, k, n))?;
                    timed.insert((m, k, n), g);
                    g
                }
            };
            plain += muon.ns_steps as f64 * flops / (gflops * 1e9);
        }
    }
    Ok(MuonTiming {
        matrices: matrices.len(),
        fallback: store.layout().num_tensors() - matrices.len(),
        step_ms: seconds * 1e3,
        ns_gflop: opt.newton_schulz_flops() as f64 / 1e9,
        plain_matmul_ms: plain * 1e3,
    })
}

/// One step of an Adafactor-family member on a model's parameters, and the state it
/// keeps.
#[derive(Debug, Clone, Serialize)]
pub struct AdafactorTiming {
    /// Tensors whose second moment is factored.
    pub factored: usize,
    /// Milliseconds per step.
    pub step_ms: f64,
    /// Bytes of optimizer state per parameter (AdamW keeps 8).
    pub state_bytes_per_param: f64,
}

/// Times a step of `rule` with `caution` on the parameters of `spec`'s model
/// (gradients of zeros: the work does not depend on their values).
pub fn time_adafactor_step(
    ctx: &GpuContext,
    spec: &ModelSpec,
    rule: crate::optim::adafactor_reference::AdafactorRule,
    caution: crate::optim::Caution,
) -> Result<AdafactorTiming> {
    use crate::optim::adafactor::AdafactorOptimizer;
    let model = spec.build(ctx, 0)?;
    let store = model.store();
    let mut opt = AdafactorOptimizer::new(ctx, store, rule, caution)?;
    let seconds = seconds_per_call(ctx, |e| opt.record_step(e))?;
    let tensors = store.layout().tensors();
    Ok(AdafactorTiming {
        factored: tensors
            .iter()
            .filter(|t| rule.factored_dims(&t.shape).is_some())
            .count(),
        step_ms: seconds * 1e3,
        state_bytes_per_param: opt.state_size() as f64 / store.layout().total_len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_models() {
        let mlp = Mlp {
            hidden: vec![256],
            ..Mlp::default()
        };
        let shapes = model_matmul_shapes(&mlp, &Vit::default(), 128, "vit");
        let dims: Vec<(usize, usize, usize)> = shapes.iter().map(|s| (s.m, s.k, s.n)).collect();
        assert_eq!(dims[..2], [(128, 784, 256), (128, 256, 10)]);
        // 16 patches of 7x7 and a class token, width 64, MLP hidden 128.
        assert!(dims.contains(&(2048, 49, 64)));
        assert!(dims.contains(&(2176, 64, 192)));
        assert!(dims.contains(&(2176, 128, 64)));
    }
}

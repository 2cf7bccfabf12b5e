//! Helpers shared by the integration tests.
#![allow(dead_code)]

use coptim::arena::{ArenaLimits, ParamSet};
use coptim::optim::{
    Caution, OptimizerConfig, OptimizerOptions, ReferenceOptimizer, ReferenceStep,
};
use coptim::{GpuContext, Optimizer, ParamStore, TensorId};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "nn")]
pub mod graph;
#[cfg(feature = "nn")]
pub mod matmul;
#[cfg(feature = "nn")]
pub mod model;
#[cfg(feature = "train")]
pub mod parity;
#[cfg(feature = "train")]
pub mod session;

/// Parses and validates a WGSL module with naga, panicking with the located error
/// and the module's `name`.
pub fn validate_wgsl(name: &str, source: &str) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
}

/// The metadata and the tensors (each read as a vector of `T`) of the safetensors file
/// at `path`.
pub fn read_safetensors<T: bytemuck::Pod>(
    path: &str,
) -> (
    std::collections::HashMap<String, String>,
    std::collections::HashMap<String, Vec<T>>,
) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = metadata.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, bytemuck::pod_collect_to_vec::<u8, T>(v.data())))
        .collect();
    (meta, tensors)
}

/// A device on the default adapter (lavapipe in CI).
pub fn ctx() -> GpuContext {
    GpuContext::new_blocking(&Default::default())
        .expect("a GPU adapter (install mesa-vulkan-drivers)")
}

/// A run of a 784-`hidden`-10 MLP with `optimizer` for `steps` steps (the other
/// settings are `TrainConfig`'s defaults).
#[cfg(feature = "train")]
pub fn mlp_run(
    hidden: usize,
    optimizer: coptim::train::OptimizerKind,
    steps: u64,
) -> coptim::train::TrainConfig {
    let mlp = coptim::model::Mlp {
        hidden: vec![hidden],
        ..Default::default()
    };
    coptim::train::TrainConfig::for_model(coptim::train::ModelSpec::Mlp(mlp), optimizer)
        .with_steps(steps)
}

/// The first `train` training and `test` test digits of the bundled set.
#[cfg(feature = "data")]
pub fn bundled_subset(train: usize, test: usize) -> std::sync::Arc<coptim::data::DatasetSplit> {
    let full = coptim::data::bundled_mnist().expect("bundled data");
    std::sync::Arc::new(coptim::data::DatasetSplit {
        train: full.train.take(train),
        test: full.test.take(test),
    })
}

/// Standard-normal-ish values from a seed (sum of uniforms, deterministic everywhere).
pub fn randn(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let s: f64 = (0..4).map(|_| rng.random::<f64>()).sum();
            (s - 2.0) * 1.7320508 * scale
        })
        .collect()
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// One 1-D tensor `t{i}` per size.
pub fn flat_shapes(sizes: &[usize]) -> Vec<(String, Vec<usize>)> {
    named_shapes(sizes.iter().map(|&n| vec![n]))
}

/// The tensors of `shapes`, named `t0`, `t1`, ...
pub fn named_shapes(shapes: impl IntoIterator<Item = Vec<usize>>) -> Vec<(String, Vec<usize>)> {
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, s)| (format!("t{i}"), s))
        .collect()
}

/// A store of tensors `t0`, `t1`, ... of `shapes` holding `inits` (rounded to f32):
/// where a golden replay starts.
pub fn golden_store(ctx: &GpuContext, shapes: &[Vec<usize>], inits: &[Vec<f64>]) -> ParamStore {
    let store = ParamStore::new(ctx, &named_shapes(shapes.iter().cloned())).unwrap();
    for (i, p) in inits.iter().enumerate() {
        store.params.write(ctx, TensorId(i), &to_f32(p)).unwrap();
    }
    store
}

/// One step of a golden replay: writes `grads` (rounded to f32) into `store`, records
/// the optimizer's step with `record`, submits it and reads the parameters back as
/// f64.
pub fn replay_step(
    ctx: &GpuContext,
    store: &ParamStore,
    grads: &[Vec<f64>],
    record: impl FnOnce(&mut wgpu::CommandEncoder),
) -> Vec<Vec<f64>> {
    for (i, g) in grads.iter().enumerate() {
        store.grads.write(ctx, TensorId(i), &to_f32(g)).unwrap();
    }
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    record(&mut encoder);
    ctx.queue().submit([encoder.finish()]);
    let params = store.params.read_all_blocking(ctx).unwrap();
    params.iter().map(|p| to_f64(p)).collect()
}

/// Options that cap the dispatch grid at `per_dim` workgroups per dimension.
pub fn grid_capped_at(per_dim: u32) -> OptimizerOptions {
    OptimizerOptions {
        max_workgroups_per_dim: Some(per_dim),
    }
}

/// The name and element count of every tensor of `set` (what the reference takes).
pub fn tensor_names(set: &ParamSet) -> Vec<(String, usize)> {
    set.tensors()
        .iter()
        .map(|t| (t.name.clone(), t.len as usize))
        .collect()
}

/// Random values of `scale` for every tensor of `names`, rounded to f32 so that the
/// GPU and the f64 reference start from the same numbers.
pub fn random_tensors(r: &mut ChaCha8Rng, names: &[(String, usize)], scale: f64) -> Vec<Vec<f64>> {
    names
        .iter()
        .map(|(_, n)| to_f64(&to_f32(&randn(r, *n, scale))))
        .collect()
}

/// Writes `values` into the parameters of `set`, tensor by tensor.
pub fn upload_params(ctx: &GpuContext, set: &ParamSet, values: &[Vec<f64>]) {
    for (i, v) in values.iter().enumerate() {
        set.write_param(ctx, TensorId(i), &to_f32(v)).unwrap();
    }
}

/// Writes `values` into the gradients of `set`, tensor by tensor.
pub fn upload_grads(ctx: &GpuContext, set: &ParamSet, values: &[Vec<f64>]) {
    for (i, v) in values.iter().enumerate() {
        set.write_grad(ctx, TensorId(i), &to_f32(v)).unwrap();
    }
}

/// max |a - b| / max |b| over one tensor (0 when b is all zero and a == b).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let den = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    if den == 0.0 { num } else { num / den }
}

/// One configuration of each algorithm with hard caution, plus weight decay (AdamW)
/// and gradient-norm clipping (SGD with Nesterov momentum).
pub fn hard_caution_configs() -> [OptimizerConfig; 3] {
    [
        OptimizerConfig::adamw(1e-2)
            .with_caution(Caution::hard())
            .with_weight_decay(0.01),
        OptimizerConfig::lion(1e-3).with_caution(Caution::hard()),
        OptimizerConfig::sgd(1e-2, true)
            .with_caution(Caution::hard())
            .with_clip_grad_norm(1.0),
    ]
}

/// Runs `steps` steps on the GPU and in the f64 reference with the same random
/// gradients, and checks every tensor's parameters within `tol` (relative) and the
/// kept counts exactly (up to the reference's ambiguous coordinates).
pub struct Comparison {
    pub max_rel: f64,
    pub steps: Vec<ReferenceStep>,
}

pub fn compare_with_reference(
    ctx: &GpuContext,
    params: impl Into<ParamSet>,
    config: OptimizerConfig,
    options: coptim::optim::OptimizerOptions,
    steps: usize,
    seed: u64,
    tol: f64,
) -> Comparison {
    let mut random = |r: &mut ChaCha8Rng, set: &ParamSet, _: &[Vec<f64>]| {
        tensor_names(set)
            .iter()
            .enumerate()
            .map(|(i, (_, n))| to_f64(&to_f32(&randn(r, *n, 0.5 + i as f64 * 0.25))))
            .collect()
    };
    compare_with_gradients(
        ctx,
        params,
        config,
        options,
        (steps, seed, tol),
        &mut random,
    )
}

/// Makes a step's gradients from the random source, the tensors and the parameters
/// before the step (f64 reference values).
pub type GradientMaker<'a> =
    dyn FnMut(&mut ChaCha8Rng, &ParamSet, &[Vec<f64>]) -> Vec<Vec<f64>> + 'a;

/// [`compare_with_reference`] with the gradients `grads` makes; `run` is (steps,
/// seed, tol).
pub fn compare_with_gradients(
    ctx: &GpuContext,
    params: impl Into<ParamSet>,
    config: OptimizerConfig,
    options: coptim::optim::OptimizerOptions,
    run: (usize, u64, f64),
    grads_of: &mut GradientMaker<'_>,
) -> Comparison {
    let (steps, seed, tol) = run;
    let set: ParamSet = params.into();
    let names = tensor_names(&set);
    let shapes: Vec<(String, Vec<usize>)> = set
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let mut r = rng(seed);
    let mut params = random_tensors(&mut r, &names, 1.0);
    upload_params(ctx, &set, &params);
    let mut opt = Optimizer::with_options(ctx, &set, config.clone(), options).unwrap();
    let mut reference = ReferenceOptimizer::with_shapes(config, &shapes).unwrap();
    let mut max_rel: f64 = 0.0;
    let mut reports = Vec::new();
    for step in 0..steps {
        let grads = grads_of(&mut r, &set, &params);
        upload_grads(ctx, &set, &grads);
        opt.step().unwrap();
        let stats = opt.stats_blocking().unwrap();
        let report = reference.step(&mut params, &grads).unwrap();
        assert_eq!(stats.skipped, report.skipped, "step {step}: skipped");
        for (i, (&k_gpu, &k_ref)) in stats.kept.iter().zip(&report.kept).enumerate() {
            let diff = k_gpu.abs_diff(k_ref);
            assert!(
                diff <= report.ambiguous[i],
                "step {step} tensor {}: kept {k_gpu} on the GPU, {k_ref} in the reference ({} ambiguous)",
                names[i].0,
                report.ambiguous[i]
            );
        }
        let gpu: Vec<Vec<f32>> = (0..names.len())
            .map(|i| set.read_param_blocking(ctx, coptim::TensorId(i)).unwrap())
            .collect();
        for (i, (g, p)) in gpu.iter().zip(&params).enumerate() {
            let e = rel_err(&to_f64(g), p);
            max_rel = max_rel.max(e);
            assert!(
                e <= tol,
                "step {step} tensor {} ({} elements): relative error {e:e} > {tol:e}",
                names[i].0,
                names[i].1
            );
        }
        reports.push(report);
    }
    Comparison {
        max_rel,
        steps: reports,
    }
}

/// A store of `shapes` (named `t0`, `t1`, ...) with 16 KiB bindings (one 4096-element
/// block per window) and 192 KiB buffers, checked to cross windows inside a buffer.
pub fn windowed_store(
    ctx: &GpuContext,
    shapes: impl IntoIterator<Item = Vec<usize>>,
) -> ParamStore {
    let limits = ArenaLimits::from_limits(ctx.limits()).capped(16 * 1024, 192 * 1024);
    let store = ParamStore::with_limits(ctx, &named_shapes(shapes), limits).unwrap();
    assert!(store.layout().windows().len() > store.params.buffers().len());
    store
}

/// Random f32-representable gradients for every tensor of `store`, tensor `i` at
/// `scales[i]`, without writing them.
pub fn draw_grads(store: &ParamStore, r: &mut ChaCha8Rng, scales: &[f64]) -> Vec<Vec<f64>> {
    store
        .layout()
        .tensors()
        .iter()
        .zip(scales)
        .map(|(t, &scale)| to_f64(&to_f32(&randn(r, t.len as usize, scale))))
        .collect()
}

/// [`draw_grads`], written to the store's gradient arena.
pub fn write_grads(
    ctx: &GpuContext,
    store: &ParamStore,
    r: &mut ChaCha8Rng,
    scales: &[f64],
) -> Vec<Vec<f64>> {
    let grads = draw_grads(store, r, scales);
    for (i, g) in grads.iter().enumerate() {
        store.grads.write(ctx, TensorId(i), &to_f32(g)).unwrap();
    }
    grads
}

//! Whole-model checks against an f64 CPU reference: random parameters far from the
//! initialization, the GPU's gradients by name, and the reference's gradients by
//! central differences.

use std::collections::HashMap;

use coptim::GpuContext;
use coptim::model::{Architecture, Batch, Mae, Model, NamedTensor, Vit, VitEncoder};

use super::{randn, rel_err, rng, to_f64};

/// A model's parameters by name, in f64.
pub type Params = HashMap<String, Vec<f64>>;

/// A masked autoencoder small enough to compare in a test on the 28x28 digits: patch
/// 7 (16 patches, 4 kept), widths 16, one block of 2 heads each, MLP ratio 2,
/// normalized targets.
pub fn tiny_digit_mae() -> Mae {
    Mae {
        encoder: VitEncoder {
            dim: 16,
            depth: 1,
            heads: 2,
            mlp_ratio: 2.0,
            ..VitEncoder::default()
        },
        decoder_dim: 16,
        decoder_depth: 1,
        decoder_heads: 2,
        ..Mae::default()
    }
}

/// A ViT for the 28x28 digits with one block of 2 heads at width `dim` (patch 7,
/// MLP ratio 2, 10 classes).
pub fn tiny_digit_vit(dim: usize) -> Vit {
    Vit {
        encoder: VitEncoder {
            dim,
            depth: 1,
            heads: 2,
            ..VitEncoder::default()
        },
        ..Vit::default()
    }
}

/// Random parameters of `arch` far from the initialization (so attention is not
/// uniform and the norms' weights matter): N(0, 0.5) weights, norm weights (every
/// tensor whose name contains `norm`) 1 + N(0, 0.3).
pub fn random_parameters(arch: &dyn Architecture, seed: u64) -> Vec<NamedTensor> {
    let mut r = rng(seed);
    arch.parameters()
        .unwrap()
        .into_iter()
        .map(|s| {
            let n = s.shape.iter().product();
            let is_norm = s.name.contains("norm");
            let values = randn(&mut r, n, if is_norm { 0.3 } else { 0.5 })
                .into_iter()
                .map(|v| if is_norm { 1.0 + v } else { v } as f32)
                .collect();
            NamedTensor {
                name: s.name,
                shape: s.shape,
                values,
            }
        })
        .collect()
}

/// `params` by name, in f64.
pub fn params_f64(params: &[NamedTensor]) -> Params {
    params
        .iter()
        .map(|t| (t.name.clone(), to_f64(&t.values)))
        .collect()
}

/// The gradients in `store.grads` after a backward pass, by the names of `arch`.
pub fn grads_by_name(
    ctx: &GpuContext,
    arch: &dyn Architecture,
    store: &coptim::ParamStore,
) -> Params {
    let grads = store.grads.read_all_blocking(ctx).unwrap();
    let names = arch.parameters().unwrap().into_iter().map(|s| s.name);
    names.zip(grads.iter().map(|g| to_f64(g))).collect()
}

/// Every parameter's gradient of the f64 `loss`, by central differences.
pub fn central_differences(p: &Params, loss: impl Fn(&Params) -> f64) -> Params {
    // f64 central differences: truncation error ~h^2, rounding ~1e-16 / h, both far
    // below the f32 tolerance the GPU is held to.
    const H: f64 = 1e-5;
    let mut p = p.clone();
    let names: Vec<String> = p.keys().cloned().collect();
    names
        .into_iter()
        .map(|name| {
            let grad = (0..p[&name].len())
                .map(|i| {
                    let x = p[&name][i];
                    p.get_mut(&name).unwrap()[i] = x + H;
                    let up = loss(&p);
                    p.get_mut(&name).unwrap()[i] = x - H;
                    let down = loss(&p);
                    p.get_mut(&name).unwrap()[i] = x;
                    (up - down) / (2.0 * H)
                })
                .collect();
            (name, grad)
        })
        .collect()
}

/// The GPU's loss and gradients (by name) of a fresh `arch` holding `params`, for
/// one `batch`.
fn gpu_loss_and_grads<A: Architecture + Clone + 'static>(
    ctx: &GpuContext,
    arch: &A,
    params: &[NamedTensor],
    batch: Batch<'_>,
) -> (f64, Params) {
    let mut model = Model::new(ctx, arch.clone(), 0).unwrap();
    model.write_parameters(params).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let out = model.record_forward_backward(&mut encoder, batch).unwrap();
    ctx.queue().submit([encoder.finish()]);
    let loss = pollster::block_on(out.read(ctx)).unwrap().loss as f64;
    (loss, grads_by_name(ctx, arch, model.store()))
}

/// Holds the GPU's loss and gradients of `arch` holding [`random_parameters`] (from
/// `seed`) on `batch` to the f64 `reference` loss of the same parameters: the loss
/// within 1e-5 relative (f32 sums over a small model), every gradient within 1e-3 of
/// central differences of `reference` by [`rel_err`] (f32 backward against an
/// O(h^2) estimate).
pub fn assert_matches_reference<A: Architecture + Clone + 'static>(
    ctx: &GpuContext,
    label: &str,
    arch: &A,
    seed: u64,
    batch: Batch<'_>,
    reference: impl Fn(&Params) -> f64,
) {
    let params = random_parameters(arch, seed);
    let p = params_f64(&params);
    let (loss, grads) = gpu_loss_and_grads(ctx, arch, &params, batch);
    let want_loss = reference(&p);
    assert!(
        (loss - want_loss).abs() <= 1e-5 * want_loss.abs(),
        "{label}: loss {loss}, reference {want_loss}"
    );
    let want = central_differences(&p, reference);
    assert_eq!(grads.len(), want.len());
    for (name, w) in &want {
        let err = rel_err(&grads[name], w);
        assert!(err <= 1e-3, "{label}: gradient of {name} off by {err:.2e}");
    }
}

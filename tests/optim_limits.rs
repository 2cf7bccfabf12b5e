//! Limits: arenas spanning several buffers, tensors split over binding windows, 2-D
//! dispatch grids, and a tensor larger than the device's binding limit.

mod common;

use common::*;
use coptim::ParamStore;
use coptim::arena::ArenaLimits;
use coptim::optim::{Caution, OptimizerConfig, OptimizerOptions};

const TOL: f64 = 1e-6;

/// Small binding and buffer limits force several segments and several windows for
/// the large tensors; a workgroup cap of 3 per dimension forces 2-D grids.
#[test]
fn arena_spanning_many_buffers_and_windows_matches_reference() {
    let ctx = ctx();
    let base = ArenaLimits::from_limits(ctx.limits());
    // 16 KiB bindings = 4096 f32 = one block per window.
    let limits = base.capped(16 * 1024, 64 * 1024);
    let shapes: Vec<(String, Vec<usize>)> = [1, 7, 255, 256, 257, 9000, 4096, 13, 12_289]
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("t{i}"), vec![n]))
        .collect();
    let store = ParamStore::with_limits(&ctx, &shapes, limits).unwrap();
    assert!(
        store.params.buffers().len() >= 4,
        "expected several segments"
    );
    assert!(store.layout().windows().len() > store.params.buffers().len());
    for cfg in [
        OptimizerConfig::adamw(1e-2)
            .with_caution(Caution::hard())
            .with_weight_decay(0.01),
        OptimizerConfig::lion(1e-3).with_caution(Caution::hard()),
        OptimizerConfig::sgd(1e-2, true)
            .with_caution(Caution::hard())
            .with_clip_grad_norm(1.0),
    ] {
        let options = OptimizerOptions {
            max_workgroups_per_dim: Some(3),
        };
        compare_with_reference(&ctx, &store, cfg, options, 3, 11, TOL);
    }
}

/// A 2-D grid: 1,000,003 elements make 245 blocks; with at most 16 workgroups per
/// dimension the dispatch is 16 x 16.
#[test]
fn two_dimensional_grid_matches_reference() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &[("big", vec![1_000_003]), ("b", vec![3])]).unwrap();
    let cfg = OptimizerConfig::adamw(1e-3)
        .with_caution(Caution::hard())
        .with_weight_decay(0.1);
    let options = OptimizerOptions {
        max_workgroups_per_dim: Some(16),
    };
    compare_with_reference(&ctx, &store, cfg, options, 2, 12, TOL);
}

/// A tensor larger than the device's storage-binding limit (128 MiB on lavapipe) is
/// stepped in several binding windows with the device's real limits.
#[test]
fn tensor_larger_than_binding_limit_matches_reference() {
    let ctx = ctx();
    let binding = ctx.limits().max_storage_buffer_binding_size;
    let n = (binding / 4 + 4099) as usize;
    if (n as u64) * 4 > ctx.limits().max_buffer_size {
        eprintln!("skipped: the adapter's buffers are no larger than its bindings");
        return;
    }
    let store = ParamStore::new(&ctx, &[("huge", vec![n]), ("bias", vec![5])]).unwrap();
    assert!(store.layout().windows().len() >= 2);
    let cfg = OptimizerConfig::adamw(1e-3)
        .with_caution(Caution::hard())
        .with_weight_decay(0.01);
    compare_with_reference(&ctx, &store, cfg, OptimizerOptions::default(), 1, 13, TOL);
}

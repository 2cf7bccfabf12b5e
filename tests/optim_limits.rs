//! Limits: arenas spanning several buffers, tensors split over binding windows, 2-D
//! dispatch grids, a tensor larger than the device's binding limit, and the device's
//! storage-buffer budget per shader stage.

mod common;

use common::*;
use coptim::Error;
use coptim::ParamStore;
use coptim::arena::ArenaLimits;
use coptim::optim::{Algorithm, Caution, OptimizerConfig, OptimizerOptions};

const TOL: f64 = 1e-6;

/// Small binding and buffer limits force several segments and several windows for
/// the large tensors; a workgroup cap of 3 per dimension forces 2-D grids.
#[test]
fn arena_spanning_many_buffers_and_windows_matches_reference() {
    let ctx = ctx();
    let base = ArenaLimits::from_limits(ctx.limits());
    // 16 KiB bindings = 4096 f32 = one block per window.
    let limits = base.capped(16 * 1024, 64 * 1024);
    let shapes = flat_shapes(&[1, 7, 255, 256, 257, 9000, 4096, 13, 12_289]);
    let store = ParamStore::with_limits(&ctx, &shapes, limits).unwrap();
    assert!(
        store.params.buffers().len() >= 4,
        "expected several segments"
    );
    assert!(store.layout().windows().len() > store.params.buffers().len());
    for cfg in hard_caution_configs() {
        compare_with_reference(&ctx, &store, cfg, grid_capped_at(3), 3, 11, TOL);
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
    compare_with_reference(&ctx, &store, cfg, grid_capped_at(16), 2, 12, TOL);
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

/// One tensor of 65,537 blocks (more than 65,535 workgroups' worth: 268,439,553
/// elements, 1 GiB per arena), with the device's real limits. C-SGD's first step has
/// the closed form `p * (1 - lr * wd) - lr * scale * g` with every non-zero gradient
/// kept, so the expected values and the exact kept count are computed on the fly
/// without an f64 copy of the tensor.
#[test]
fn tensor_needing_more_than_65535_workgroups() {
    let ctx = ctx();
    let n = 65_536 * coptim::optim::kernels::BLOCK_ELEMS as usize + 1;
    if (n as u64) * 4 > ctx.limits().max_buffer_size {
        eprintln!("skipped: the adapter's max_buffer_size is below 1 GiB");
        return;
    }
    let store = ParamStore::new(&ctx, &[("huge", vec![n])]).unwrap();
    let (lr, wd) = (1e-2f32, 0.1f32);
    let cfg = OptimizerConfig::sgd(lr as f64, false)
        .with_caution(Caution::hard())
        .with_weight_decay(wd as f64);
    let mut opt = coptim::Optimizer::new(&ctx, &store, cfg).unwrap();
    let p0 = |i: usize| ((i.wrapping_mul(2_654_435_761) >> 7) % 65_536) as f32 / 32_768.0 - 1.0;
    // Every 1000th gradient is zero: it is not kept.
    let g0 = |i: usize| {
        if i % 1000 == 7 {
            0.0
        } else {
            ((i.wrapping_mul(40_503) >> 3) % 4096) as f32 / 1024.0 - 2.0 + 1e-3
        }
    };
    let id = coptim::TensorId(0);
    store
        .params
        .write(&ctx, id, &(0..n).map(p0).collect::<Vec<_>>())
        .unwrap();
    store
        .grads
        .write(&ctx, id, &(0..n).map(g0).collect::<Vec<_>>())
        .unwrap();
    opt.step_blocking().unwrap();
    let stats = opt.stats_blocking().unwrap();
    let zeros = (0..n).filter(|i| g0(*i) == 0.0).count() as u64;
    let kept = n as u64 - zeros;
    assert_eq!(stats.kept, [kept]);
    let scale = 1.0 / (kept as f64 / n as f64);
    let p1 = store.params.read_blocking(&ctx, id).unwrap();
    let mut max_err: f64 = 0.0;
    for (i, &p) in p1.iter().enumerate() {
        let want = p0(i) as f64 * (1.0 - lr as f64 * wd as f64) - lr as f64 * scale * g0(i) as f64;
        max_err = max_err.max((p as f64 - want).abs());
    }
    assert!(max_err <= 1e-6, "max abs error {max_err:e}");
}

/// A device on the default adapter that allows only `storage` storage buffers per
/// shader stage (an embedder's device; WebGPU's default is 8).
fn ctx_with_storage_buffers(storage: u32) -> coptim::GpuContext {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("a GPU adapter (install mesa-vulkan-drivers)");
    let limits = wgpu::Limits {
        max_storage_buffers_per_shader_stage: storage,
        ..adapter.limits()
    };
    let descriptor = wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    };
    let (device, queue) =
        pollster::block_on(adapter.request_device(&descriptor)).expect("a device");
    coptim::GpuContext::from_device(device, queue)
}

/// Every member, cautious, steps on a device with WebGPU's default of 8 storage
/// buffers per shader stage (the count of each pass matches what wgpu validates);
/// with 6, the members that need more fail at construction with a typed error
/// naming the limit, and the others still step.
#[test]
fn storage_buffer_budget_is_checked_against_the_device() {
    let shapes = [("w", vec![33, 5]), ("b", vec![1])];
    for (storage, members_fit) in [(8, true), (6, false)] {
        let ctx = ctx_with_storage_buffers(storage);
        let store = ParamStore::new(&ctx, &shapes).unwrap();
        let mut refused = Vec::new();
        for algorithm in Algorithm::members() {
            let cfg = OptimizerConfig::new(algorithm, 1e-3).with_caution(Caution::hard());
            match coptim::Optimizer::new(&ctx, &store, cfg) {
                Ok(mut opt) => {
                    opt.step_blocking().unwrap();
                    opt.stats_blocking().unwrap();
                }
                Err(Error::LimitExceeded {
                    what,
                    needed,
                    allowed,
                }) => {
                    assert!(
                        what.contains("max_storage_buffers_per_shader_stage"),
                        "{what}"
                    );
                    assert!(needed > allowed && allowed == storage as u64, "{what}");
                    refused.push(algorithm.name());
                }
                Err(e) => panic!("{}: {e}", algorithm.name()),
            }
        }
        assert_eq!(refused.is_empty(), members_fit, "refused {refused:?}");
        if !members_fit {
            // AdamW (6 in each pass) fits; LAMB's measuring pass needs 8.
            assert!(!refused.contains(&"adamw") && refused.contains(&"lamb"));
            // Adan's update pass binds its 4 state tensors: 8 in all.
            assert!(refused.contains(&"adan"));
        }
    }
}

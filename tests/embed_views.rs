//! Caller-owned parameters: views of the caller's buffers at odd offsets, in several
//! buffers, with tensors larger than one binding, against the f64 reference; the
//! checks every view must pass; per-step learning rates; and one record per step.

mod common;

use common::*;
use coptim::arena::{ArenaLimits, BufferView, ParamSet, ParamSpec};
use coptim::optim::{Caution, OptimizerConfig, OptimizerOptions, StepInputs};
use coptim::{Error, GpuContext, Optimizer, ParamStore};

/// The reference tolerance of tests/optim_limits.rs: f32 kernels against f64 on a few
/// steps stay within a few ulps of the parameters' scale.
const TOL: f64 = 1e-6;

const RW: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

fn buffer(ctx: &GpuContext, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("caller buffer"),
        size: bytes,
        usage,
        mapped_at_creation: false,
    })
}

/// Tensors of `lens` packed one after another from byte `start` of `buf`, each at a
/// 4-byte (never 16-byte) aligned offset, with a gap of `gap` floats between them.
fn packed_views(buf: &wgpu::Buffer, start: u64, lens: &[usize], gap: u64) -> Vec<BufferView> {
    let mut at = start;
    lens.iter()
        .map(|&n| {
            let view = BufferView::new(buf, at);
            at += 4 * (n as u64 + gap);
            view
        })
        .collect()
}

/// Parameters in two caller buffers and gradients in a third, all at odd offsets,
/// with 16 KiB bindings: tensors cross binding windows, one (9,000 floats) is larger
/// than a binding, and a 2-D grid is forced.
#[test]
fn caller_views_at_odd_offsets_match_reference() {
    let ctx = ctx();
    let limits = ArenaLimits::from_limits(ctx.limits()).capped(16 * 1024, 64 * 1024);
    let lens = [1usize, 7, 255, 4097, 9000, 13, 3];
    let (a, b) = (buffer(&ctx, 64 * 1024, RW), buffer(&ctx, 64 * 1024, RW));
    let grads = buffer(&ctx, 128 * 1024, RW);
    let mut params = packed_views(&a, 4, &lens[..4], 1);
    params.extend(packed_views(&b, 36, &lens[4..], 3));
    let grad_views = packed_views(&grads, 8, &lens, 5);
    let specs: Vec<ParamSpec> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            ParamSpec::new(format!("t{i}"), &[n], params[i].clone())
                .with_grad(grad_views[i].clone())
        })
        .collect();
    let set = ParamSet::from_views_with_limits(&ctx, &specs, limits).unwrap();
    let options = grid_capped_at(3);
    // C-ADOPT's coupled decay reads the parameters in the count pass too.
    let cadopt = serde_json::json!({"lr": 1e-2, "weight_decay": 0.1});
    let cadopt = OptimizerConfig::from_timm("cadopt", &cadopt).unwrap();
    for cfg in hard_caution_configs().into_iter().chain([cadopt]) {
        compare_with_reference(&ctx, &set, cfg, options, 3, 17, TOL);
    }
}

/// Neighbouring data of the caller's buffer (between and around the tensors) is never
/// written, and gradients coptim allocates itself work like the caller's.
#[test]
fn neighbours_untouched_and_owned_gradients() {
    let ctx = ctx();
    let words = 600u64;
    let buf = buffer(&ctx, 4 * words, RW);
    let sentinel: Vec<f32> = (0..words).map(|i| 1000.0 + i as f32).collect();
    ctx.queue()
        .write_buffer(&buf, 0, bytemuck::cast_slice(&sentinel));
    let specs = [
        ParamSpec::new("a", &[5, 3], BufferView::new(&buf, 4 * 3)),
        ParamSpec::new("b", &[301], BufferView::new(&buf, 4 * 19)),
    ];
    let set = ParamSet::from_views(&ctx, &specs).unwrap();
    assert!(set.grad_arena().is_some());
    let cfg = OptimizerConfig::adamw(1e-2).with_caution(Caution::hard());
    compare_with_reference(&ctx, &set, cfg, OptimizerOptions::default(), 2, 5, TOL);
    let after = pollster::block_on(coptim::arena::read_buffer(&ctx, &buf, 0, 4 * words)).unwrap();
    let after: &[f32] = bytemuck::cast_slice(&after);
    let inside = |i: u64| (3..18).contains(&i) || (19..320).contains(&i);
    for i in (0..words).filter(|&i| !inside(i)) {
        assert_eq!(
            after[i as usize], sentinel[i as usize],
            "word {i} was written"
        );
    }
}

fn view_error(ctx: &GpuContext, specs: &[ParamSpec]) -> String {
    match ParamSet::from_views(ctx, specs) {
        Err(Error::InvalidView { tensor, reason }) => format!("{tensor}: {reason}"),
        other => panic!("expected InvalidView, got {other:?}"),
    }
}

#[test]
fn bad_views_are_rejected_with_clear_errors() {
    let ctx = ctx();
    let good = buffer(&ctx, 1024, RW);
    let grads = buffer(&ctx, 1024, RW);
    let spec = |name: &str, n: usize, buf: &wgpu::Buffer, offset: u64| {
        ParamSpec::new(name, &[n], BufferView::new(buf, offset))
            .with_grad(BufferView::new(&grads, 0))
    };
    let not_storage = buffer(&ctx, 1024, wgpu::BufferUsages::COPY_DST);
    assert!(view_error(&ctx, &[spec("u", 4, &not_storage, 0)]).contains("STORAGE"));
    assert!(view_error(&ctx, &[spec("m", 4, &good, 6)]).contains("multiple of 4"));
    assert!(view_error(&ctx, &[spec("o", 251, &good, 24)]).contains("past the buffer"));
    let overlap = [spec("x", 10, &good, 0), spec("y", 10, &good, 36)];
    assert!(view_error(&ctx, &overlap).contains("overlap"));
    let shared =
        ParamSpec::new("s", &[4], BufferView::new(&good, 0)).with_grad(BufferView::new(&good, 512));
    assert!(view_error(&ctx, &[shared]).contains("share a buffer"));
    // Two devices of one instance: a buffer of the other is refused. (Buffers of
    // another wgpu Instance cannot be told apart by wgpu-core; see ParamSet.)
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let mine = pollster::block_on(GpuContext::from_adapter(&adapter, &Default::default())).unwrap();
    let theirs =
        pollster::block_on(GpuContext::from_adapter(&adapter, &Default::default())).unwrap();
    let foreign = buffer(&theirs, 1024, RW);
    let own_grads = buffer(&mine, 1024, RW);
    let spec_foreign = ParamSpec::new("f", &[4], BufferView::new(&foreign, 0))
        .with_grad(BufferView::new(&own_grads, 0));
    assert!(view_error(&mine, &[spec_foreign]).contains("cannot be bound"));
    assert!(matches!(
        ParamSet::from_views(&ctx, &[spec("e", 0, &good, 0)]),
        Err(Error::EmptyTensor(_))
    ));
    assert!(matches!(
        ParamSet::from_views(&ctx, &[spec("d", 4, &good, 0), spec("d", 4, &good, 64)]),
        Err(Error::DuplicateTensor(_))
    ));
}

/// A step's learning rate from its inputs equals the same rate from the config, the
/// base rate follows `set_learning_rate`, and bad inputs change nothing.
#[test]
fn per_step_learning_rate_matches_configured_rate() {
    let ctx = ctx();
    let run = |config_lr: f64, inputs: &dyn Fn(&mut Optimizer) -> StepInputs<'static>| {
        let store = ParamStore::new(&ctx, &[("w", vec![300]), ("b", vec![7])]).unwrap();
        let set = ParamSet::from(&store);
        let names = tensor_names(&set);
        let mut r = rng(3);
        upload_params(&ctx, &set, &random_tensors(&mut r, &names, 1.0));
        let cfg = OptimizerConfig::adamw(config_lr).with_caution(Caution::hard());
        let mut opt = Optimizer::new(&ctx, &store, cfg).unwrap();
        for _ in 0..3 {
            upload_grads(&ctx, &set, &random_tensors(&mut r, &names, 1.0));
            let step_inputs = inputs(&mut opt);
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            opt.record_step(&mut encoder, &step_inputs).unwrap();
            ctx.queue().submit([encoder.finish()]);
        }
        ctx.wait_idle().unwrap();
        let lrs: Vec<f64> = opt.take_stats().unwrap().iter().map(|s| s.lr).collect();
        (store.params.read_all_blocking(&ctx).unwrap(), lrs)
    };
    let (scheduled, lrs) = run(1e-2, &|_| StepInputs::scheduled());
    assert_eq!(lrs, [1e-2; 3]);
    assert_eq!(run(5.0, &|_| StepInputs::lr(1e-2)).0, scheduled);
    assert_eq!(run(1e-3, &|_| StepInputs::scale(10.0)).0, scheduled);
    let set_lr = |opt: &mut Optimizer| {
        opt.set_learning_rate(1e-2).unwrap();
        StepInputs::scheduled()
    };
    assert_eq!(run(7.0, &set_lr).0, scheduled);
    let per_group = |_: &mut Optimizer| StepInputs::lr(3.0).with_group_lr(0, 1e-2);
    assert_eq!(run(1.0, &per_group).0, scheduled);

    let store = ParamStore::new(&ctx, &[("w", vec![4])]).unwrap();
    let mut opt = Optimizer::new(&ctx, &store, OptimizerConfig::adamw(1e-3)).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    for bad in [
        StepInputs::lr(f64::NAN),
        StepInputs::lr(-1.0),
        StepInputs::lr(1.0).with_group_lr(5, 1.0),
    ] {
        assert!(matches!(
            opt.record_step(&mut encoder, &bad),
            Err(Error::InvalidConfig(_))
        ));
    }
    assert!(matches!(
        opt.set_learning_rate(f64::INFINITY),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(opt.scheduled_steps(), 0);
    assert_eq!(opt.learning_rate(), 1e-3);
}

/// Many steps recorded without reading anything back (first 40 in one encoder, then
/// 25 submits) all come back, in order, with their step numbers and learning rates;
/// the step-parameter uploads reuse their buffers once submissions complete.
#[test]
fn every_step_record_arrives_in_order() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &[("w", vec![100]), ("b", vec![3])]).unwrap();
    store.grads.write_named(&ctx, "w", &[0.5; 100]).unwrap();
    store.grads.write_named(&ctx, "b", &[-0.5; 3]).unwrap();
    let cfg = OptimizerConfig::sgd(1e-2, false).with_caution(Caution::hard());
    let mut opt = Optimizer::new(&ctx, &store, cfg).unwrap();
    let lr_of = |step: u64| 1e-3 * step as f64;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    for step in 1..=40 {
        opt.record_step(&mut encoder, &StepInputs::lr(lr_of(step)))
            .unwrap();
    }
    ctx.queue().submit([encoder.finish()]);
    for step in 41..=65 {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        opt.record_step(&mut encoder, &StepInputs::lr(lr_of(step)))
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
        // Each submission completes before the next step is recorded, so the ring
        // reuses its buffer: the count below does not depend on the machine's load.
        ctx.wait_idle().unwrap();
    }
    assert_eq!(opt.stats_in_flight(), 65);
    ctx.wait_idle().unwrap();
    let records = opt.take_stats().unwrap();
    let steps: Vec<u64> = records.iter().map(|r| r.scheduled_step).collect();
    assert_eq!(steps, (1..=65).collect::<Vec<_>>());
    for r in &records {
        assert_eq!(r.completed_steps, r.scheduled_step);
        assert_eq!(r.lr, lr_of(r.scheduled_step));
        assert_eq!(r.kept, [100, 3]);
        assert_eq!(r.loss, None);
    }
    assert_eq!(opt.stats_in_flight(), 0);
    assert!(
        opt.upload_buffers() <= 41,
        "{} upload buffers",
        opt.upload_buffers()
    );
}

//! Saving, loading and resuming optimizer state; corrupt and mismatched files.

mod common;

use common::*;
use coptim::optim::{Algorithm, Caution, DecayMode, Lamb, LrSchedule, OptimizerConfig, RmsPropTf};
use coptim::{Error, Optimizer, ParamStore, TensorId};

fn shapes() -> Vec<(String, Vec<usize>)> {
    vec![
        ("w".into(), vec![33, 17]),
        ("b".into(), vec![33]),
        ("s".into(), vec![1]),
    ]
}

fn grads_for(step: usize) -> Vec<Vec<f32>> {
    let mut r = rng(100 + step as u64);
    shapes()
        .iter()
        .map(|(_, s)| to_f32(&randn(&mut r, s.iter().product(), 1.0)))
        .collect()
}

fn write_grads(ctx: &coptim::GpuContext, store: &ParamStore, step: usize) {
    for (i, g) in grads_for(step).iter().enumerate() {
        store.grads.write(ctx, TensorId(i), g).unwrap();
    }
}

fn config() -> OptimizerConfig {
    OptimizerConfig::adamw(1e-2)
        .with_caution(Caution::hard())
        .with_weight_decay(0.05)
}

/// A store holding the shapes of [`shapes`] at their seeded initial values.
fn initial_store(ctx: &coptim::GpuContext) -> ParamStore {
    let store = ParamStore::new(ctx, &shapes()).unwrap();
    let mut r = rng(7);
    for (i, (_, s)) in shapes().iter().enumerate() {
        let values = to_f32(&randn(&mut r, s.iter().product(), 1.0));
        store.params.write(ctx, TensorId(i), &values).unwrap();
    }
    store
}

/// Steps `opt` on the gradients of each of `steps`, waiting for each step.
fn run_steps(
    ctx: &coptim::GpuContext,
    store: &ParamStore,
    opt: &mut Optimizer,
    steps: std::ops::Range<usize>,
) {
    for s in steps {
        write_grads(ctx, store, s);
        opt.step_blocking().unwrap();
    }
}

/// LAMB (per-tensor sums, its own clip) with cautious decay, and decoupled LAMB with
/// corrected decay under a schedule.
fn lamb_configs() -> [OptimizerConfig; 2] {
    let decoupled = Lamb {
        decoupled: true,
        ..Lamb::default()
    };
    [
        OptimizerConfig::new(Algorithm::Lamb(Lamb::default()), 1e-2)
            .with_caution(Caution::hard())
            .with_weight_decay(0.05)
            .with_decay(DecayMode::CAUTIOUS),
        OptimizerConfig::new(Algorithm::Lamb(decoupled), 1e-2)
            .with_caution(Caution::hard())
            .with_weight_decay(0.05)
            .with_decay(DecayMode::CORRECTED)
            .with_schedule(LrSchedule::Cosine {
                total: 6,
                floor: 0.1,
            }),
    ]
}

/// An optimizer with `config` on `store` stepped `steps` times, its state saved at `path`.
fn saved_after(
    ctx: &coptim::GpuContext,
    store: &ParamStore,
    config: OptimizerConfig,
    steps: usize,
    path: &std::path::Path,
) -> Optimizer {
    let mut opt = Optimizer::new(ctx, store, config).unwrap();
    run_steps(ctx, store, &mut opt, 0..steps);
    opt.save_state(path).unwrap();
    opt
}

/// For every member of the family, cautious: a run saved after 3 steps and resumed in
/// a fresh optimizer ends where the uninterrupted run does, bit for bit.
#[test]
fn resume_continues_bit_for_bit() {
    for algorithm in Algorithm::members() {
        let cfg = OptimizerConfig::new(algorithm, 1e-2)
            .with_caution(Caution::hard())
            .with_weight_decay(0.05);
        resume_matches(cfg);
    }
    for cfg in lamb_configs() {
        resume_matches(cfg);
    }
    // RMSpropTF's three state tensors (centered, with momentum) under decoupled decay.
    let centered = RmsPropTf {
        centered: true,
        decoupled: true,
        ..RmsPropTf::default()
    };
    resume_matches(
        OptimizerConfig::new(Algorithm::RmsPropTf(centered), 1e-2)
            .with_caution(Caution::hard())
            .with_weight_decay(0.05),
    );
}

fn resume_matches(config: OptimizerConfig) {
    let ctx = ctx();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");
    let name = config.algorithm.name();

    let store = initial_store(&ctx);
    let mut opt = saved_after(&ctx, &store, config.clone(), 3, &path);
    let params_at_3 = store.params.read_all_blocking(&ctx).unwrap();
    run_steps(&ctx, &store, &mut opt, 3..6);
    let straight = store.params.read_all_blocking(&ctx).unwrap();

    let store2 = ParamStore::new(&ctx, &shapes()).unwrap();
    for (i, p) in params_at_3.iter().enumerate() {
        store2.params.write(&ctx, TensorId(i), p).unwrap();
    }
    let mut opt2 = Optimizer::new(&ctx, &store2, config).unwrap();
    opt2.load_state(&path).unwrap();
    assert_eq!(opt2.scheduled_steps(), 3);
    run_steps(&ctx, &store2, &mut opt2, 3..6);
    let resumed = store2.params.read_all_blocking(&ctx).unwrap();
    for (a, b) in straight.iter().zip(&resumed) {
        let a: Vec<u32> = a.iter().map(|x| x.to_bits()).collect();
        let b: Vec<u32> = b.iter().map(|x| x.to_bits()).collect();
        assert_eq!(a, b, "{name}: resumed run must match bit for bit");
    }
}

/// Loading a bad file fails with a clear error and leaves the optimizer as it was.
#[test]
fn bad_state_files_are_rejected_and_change_nothing() {
    let ctx = ctx();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    let store = initial_store(&ctx);
    saved_after(&ctx, &store, config(), 1, &good);
    let bytes = std::fs::read(&good).unwrap();

    // A second optimizer with two steps of history: its state must survive every
    // failed load untouched.
    let mut victim = Optimizer::new(&ctx, &store, config()).unwrap();
    run_steps(&ctx, &store, &mut victim, 0..2);
    let before = pollster::block_on(victim.state_bytes()).unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("garbage", vec![0xAB; 64]),
        ("empty", Vec::new()),
    ];
    for (name, data) in cases {
        let p = dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&p, data).unwrap();
        let err = victim.load_state(&p).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{name}: {err}");
    }
    // Config mismatch: the file was written by a different learning rate.
    let other_cfg = Optimizer::new(&ctx, &store, config().with_weight_decay(0.0)).unwrap();
    let p = dir.path().join("other_config.safetensors");
    other_cfg.save_state(&p).unwrap();
    let err = victim.load_state(&p).unwrap_err();
    assert!(err.to_string().contains("config differs"), "{err}");
    // Shape mismatch: same names, different shape.
    let store_b = ParamStore::new(
        &ctx,
        &[("w", vec![17, 33]), ("b", vec![33]), ("s", vec![1])],
    )
    .unwrap();
    let p = dir.path().join("other_shape.safetensors");
    Optimizer::new(&ctx, &store_b, config())
        .unwrap()
        .save_state(&p)
        .unwrap();
    let err = victim.load_state(&p).unwrap_err();
    assert!(err.to_string().contains("tensor `exp_avg.w`"), "{err}");
    // Missing file.
    let err = victim
        .load_state(dir.path().join("nope.safetensors"))
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");

    let after = pollster::block_on(victim.state_bytes()).unwrap();
    assert!(
        same_tensors(&before, &after),
        "a failed load must not change the optimizer"
    );
    assert_eq!(victim.scheduled_steps(), 2);
}

#[test]
fn state_file_names_are_documented() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &shapes()).unwrap();
    let opt = Optimizer::new(&ctx, &store, config()).unwrap();
    let bytes = pollster::block_on(opt.state_bytes()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        [
            "coptim.bias_correction",
            "coptim.bias_correction3",
            "coptim.lr_ema",
            "coptim.steps",
            "exp_avg.b",
            "exp_avg.s",
            "exp_avg.w",
            "exp_avg_sq.b",
            "exp_avg_sq.s",
            "exp_avg_sq.w"
        ]
    );
}

/// Whether two state files hold the same tensors with the same bytes (metadata
/// key order may differ between serializations).
fn same_tensors(a: &[u8], b: &[u8]) -> bool {
    let a = safetensors::SafeTensors::deserialize(a).unwrap();
    let b = safetensors::SafeTensors::deserialize(b).unwrap();
    let mut names = a.names();
    names.sort();
    let mut names_b = b.names();
    names_b.sort();
    names == names_b
        && names
            .iter()
            .all(|n| a.tensor(n).unwrap().data() == b.tensor(n).unwrap().data())
}

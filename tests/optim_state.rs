//! Saving, loading and resuming optimizer state; corrupt and mismatched files.

mod common;

use common::*;
use coptim::optim::{Algorithm, Caution, DecayMode, Lamb, LrSchedule, OptimizerConfig};
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

fn init(ctx: &coptim::GpuContext, store: &ParamStore) {
    let mut r = rng(7);
    for (i, (_, s)) in shapes().iter().enumerate() {
        store
            .params
            .write(
                ctx,
                TensorId(i),
                &to_f32(&randn(&mut r, s.iter().product(), 1.0)),
            )
            .unwrap();
    }
}

/// LAMB (per-tensor sums, its own clip) with cautious decay, and decoupled LAMB with
/// corrected decay under a schedule.
fn lamb_configs() -> [OptimizerConfig; 2] {
    let cautious = DecayMode {
        cautious: true,
        corrected: false,
    };
    let corrected = DecayMode {
        cautious: false,
        corrected: true,
    };
    let decoupled = Lamb {
        decoupled: true,
        ..Lamb::default()
    };
    [
        OptimizerConfig::new(Algorithm::Lamb(Lamb::default()), 1e-2)
            .with_caution(Caution::hard())
            .with_weight_decay(0.05)
            .with_decay(cautious),
        OptimizerConfig::new(Algorithm::Lamb(decoupled), 1e-2)
            .with_caution(Caution::hard())
            .with_weight_decay(0.05)
            .with_decay(corrected)
            .with_schedule(LrSchedule::Cosine {
                total: 6,
                floor: 0.1,
            }),
    ]
}

#[test]
fn resume_continues_bit_for_bit() {
    for cfg in [config()].into_iter().chain(lamb_configs()) {
        resume_matches_straight_run(cfg);
    }
}

fn resume_matches_straight_run(config: OptimizerConfig) {
    let ctx = ctx();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");

    let store = ParamStore::new(&ctx, &shapes()).unwrap();
    init(&ctx, &store);
    let mut opt = Optimizer::new(&ctx, &store, config.clone()).unwrap();
    for s in 0..3 {
        write_grads(&ctx, &store, s);
        opt.step_blocking().unwrap();
    }
    opt.save_state(&path).unwrap();
    let params_at_3 = store.params.read_all_blocking(&ctx).unwrap();
    for s in 3..6 {
        write_grads(&ctx, &store, s);
        opt.step_blocking().unwrap();
    }
    let straight = store.params.read_all_blocking(&ctx).unwrap();

    let store2 = ParamStore::new(&ctx, &shapes()).unwrap();
    for (i, p) in params_at_3.iter().enumerate() {
        store2.params.write(&ctx, TensorId(i), p).unwrap();
    }
    let mut opt2 = Optimizer::new(&ctx, &store2, config).unwrap();
    opt2.load_state(&path).unwrap();
    assert_eq!(opt2.scheduled_steps(), 3);
    for s in 3..6 {
        write_grads(&ctx, &store2, s);
        opt2.step_blocking().unwrap();
    }
    let resumed = store2.params.read_all_blocking(&ctx).unwrap();
    for (a, b) in straight.iter().zip(&resumed) {
        let a: Vec<u32> = a.iter().map(|x| x.to_bits()).collect();
        let b: Vec<u32> = b.iter().map(|x| x.to_bits()).collect();
        assert_eq!(a, b, "resumed run must match bit for bit");
    }
}

/// Loading a bad file fails with a clear error and leaves the optimizer as it was.
#[test]
fn bad_state_files_are_rejected_and_change_nothing() {
    let ctx = ctx();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    let store = ParamStore::new(&ctx, &shapes()).unwrap();
    init(&ctx, &store);
    let mut opt = Optimizer::new(&ctx, &store, config()).unwrap();
    write_grads(&ctx, &store, 0);
    opt.step_blocking().unwrap();
    opt.save_state(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    // A second optimizer with two steps of history: its state must survive every
    // failed load untouched.
    let mut victim = Optimizer::new(&ctx, &store, config()).unwrap();
    for s in 0..2 {
        write_grads(&ctx, &store, s);
        victim.step_blocking().unwrap();
    }
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

//! Muon and the Adafactor family in the training loop: short sessions on a tiny MLP
//! (falling loss, finite metrics, one record per step with the loss and kept
//! counts), their names, options they reject, and bit-exact resume with their state
//! files (other engines' and damaged files rejected).

mod common;

use std::sync::Arc;

use common::*;
use coptim::Error;
use coptim::data::DatasetSplit;
use coptim::optim::{EngineConfig, StepInputs, TrainOptimizer};
use coptim::train::{OptimizerKind, Session, TrainConfig};
use serde_json::json;

/// The names this file covers, plain then cautious.
const NAMES: [&str; 8] = [
    "muon",
    "cmuon",
    "nmuon",
    "cnmuon",
    "adafactor",
    "cadafactor",
    "adafactorbv",
    "cadafactorbv",
];

fn kind(name: &str) -> OptimizerKind {
    OptimizerKind::from_name(name).unwrap()
}

/// A 784-32-10 MLP, 64 samples per step, on 1,024 training digits.
fn tiny(name: &str, steps: u64) -> (TrainConfig, Arc<DatasetSplit>) {
    let mut c = mlp_run(32, kind(name), steps);
    c.batch_size = 64;
    c.eval_batch_size = 100;
    (c, bundled_subset(1024, 256))
}

fn params(s: &Session) -> Vec<Vec<f32>> {
    let tensors = s.model().read_parameters_blocking().unwrap();
    tensors.into_iter().map(|t| t.values).collect()
}

#[test]
fn every_new_kind_learns_with_one_record_per_step() {
    let ctx = ctx();
    for name in NAMES {
        let (config, data) = tiny(name, 30);
        let mut s = Session::new(&ctx, config, data).unwrap();
        s.run_blocking(|_| {}).unwrap();
        let steps = &s.history().steps;
        assert_eq!(steps.len(), 30, "{name}");
        let mean = |r: &[coptim::train::StepMetrics]| {
            r.iter().map(|m| f64::from(m.loss)).sum::<f64>() / r.len() as f64
        };
        let (first, last) = (mean(&steps[..5]), mean(&steps[25..]));
        assert!(last < 0.85 * first, "{name}: loss {first} -> {last}");
        for (i, m) in steps.iter().enumerate() {
            assert_eq!(m.step, i as u64 + 1);
            assert!(
                m.loss.is_finite() && m.lr.is_finite() && m.lr > 0.0,
                "{name}: {m:?}"
            );
            assert!((0.0..=1.0).contains(&m.accuracy), "{name}: {m:?}");
            let kept = m.kept_fraction.unwrap();
            if kind(name).is_cautious() {
                // The mask drops some coordinates, never most.
                assert!(kept > 0.3 && kept <= 1.0, "{name}: kept {kept}");
            } else {
                assert_eq!(kept, 1.0, "{name}");
            }
        }
        if kind(name).is_cautious() {
            // Once the momentum has history, it disagrees with some gradients.
            let masked = steps[5..].iter().filter(|m| m.kept_fraction < Some(1.0));
            assert_eq!(masked.count(), 25, "{name}");
        }
        let eval = s.history().last_eval().unwrap();
        assert!(eval.accuracy > 0.5, "{name}: {eval:?}");
    }
}

/// The record of a C-Muon step counts every tensor's agreeing coordinates: the
/// matrices' from their chunks, the bias's from the fallback AdamW's table.
#[test]
fn a_cmuon_record_counts_each_tensor() {
    let ctx = ctx();
    let store = coptim::ParamStore::new(&ctx, &[("w", vec![16, 24]), ("b", vec![16])]).unwrap();
    let grads: Vec<f32> = (0..16 * 24)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1)
        .collect();
    let bias: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) * 0.1).collect();
    store
        .grads
        .write(&ctx, coptim::TensorId(0), &grads)
        .unwrap();
    store.grads.write(&ctx, coptim::TensorId(1), &bias).unwrap();
    let config = kind("cmuon").config(0.02, 0.0);
    let mut opt = TrainOptimizer::new(&ctx, &store, &config).unwrap();
    for step in 0..2 {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        opt.record_step(&mut encoder, &StepInputs::lr(0.01))
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
        ctx.wait_idle().unwrap();
        let records = opt.take_stats().unwrap();
        let r = &records[0];
        assert_eq!(
            (r.scheduled_step, r.lr, r.numel.clone()),
            (step + 1, 0.01, vec![384, 16])
        );
        // Step 1: the momentum is (1 - 0.9) g, agreeing wherever g is not 0.
        let nonzero = |v: &[f32]| v.iter().filter(|x| **x != 0.0).count() as u64;
        if step == 0 {
            assert_eq!(r.kept, vec![nonzero(&grads), nonzero(&bias)]);
        }
    }
    let bad = StepInputs::lr(0.01).with_group_lr(1, 0.1);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    assert!(matches!(
        opt.record_step(&mut encoder, &bad),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn names_parse_and_unknown_names_list_them() {
    for name in NAMES {
        let k = kind(name);
        assert_eq!(k.name(), name);
        assert!(!k.is_elementwise());
        assert_eq!(k.is_cautious(), name.starts_with('c'), "{name}");
        assert_eq!(OptimizerKind::from_name(&name.to_uppercase()).unwrap(), k);
    }
    for (alias, name) in [
        ("c-muon", "cmuon"),
        ("c-nmuon", "cnmuon"),
        ("c-adafactor", "cadafactor"),
        ("c-adafactorbv", "cadafactorbv"),
    ] {
        assert_eq!(kind(alias), kind(name));
    }
    assert_eq!(kind("muon").with_caution(true), Some(kind("cmuon")));
    assert_eq!(
        kind("adafactorbv").with_caution(true),
        Some(kind("cadafactorbv"))
    );
    assert_eq!(kind("cmuon").label(), "C-Muon");
    // The page's pair selector (the registry's plain members with a cautious twin)
    // offers them; `adafactor` has none (timm's `cadafactor` also adds a first moment).
    let pairs: Vec<String> = coptim::train::presets::pairs()
        .into_iter()
        .map(|p| p.label)
        .collect();
    for label in [
        "Muon vs C-Muon",
        "NMuon vs C-NMuon",
        "Adafactor (big_vision) vs C-Adafactor (big_vision)",
    ] {
        assert!(pairs.iter().any(|p| p == label), "{label} in {pairs:?}");
    }
    assert_eq!(kind("adafactor").with_caution(true), None);
    match OptimizerKind::from_name("muonx") {
        Err(Error::UnknownOptimizer { known, .. }) => {
            for name in NAMES {
                assert!(known.iter().any(|k| k == name), "{name} not in {known:?}");
            }
        }
        other => panic!("{other:?}"),
    }

    // timm's factory: Muon's momentum 0.9, cadafactor's betas (0.9, 0.999).
    match EngineConfig::from_timm("nmuon", &json!({"lr": 0.05})).unwrap() {
        EngineConfig::Muon(m) => {
            assert_eq!((m.lr, m.muon.momentum, m.muon.nesterov), (0.05, 0.9, true));
        }
        other => panic!("{other:?}"),
    }
    assert!(EngineConfig::from_timm("cadafactor", &json!({})).is_ok());
    for (name, kwargs) in [
        ("muon", json!({"conv_mode": "chunk"})),
        ("muon", json!({"bogus": 1})),
        ("muon", json!({"adjust_lr_fn": "nope"})),
        ("adafactor", json!({"caution": true})),
        ("adafactorbv", json!({"momentum": null, "caution": true})),
        ("muonx", json!({})),
    ] {
        let err = EngineConfig::from_timm(name, &kwargs).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig(_)),
            "{name} {kwargs}: {err}"
        );
    }
}

/// Clipping applies to them (their presets leave it off; an explicit norm reaches
/// the engine), the cautious and corrected decay modes are rejected.
#[test]
fn clipping_applies_to_them_and_decay_modes_are_rejected() {
    for name in ["muon", "cadafactor"] {
        let (mut config, _) = tiny(name, 5);
        assert_eq!(config.clip_grad_norm, None);
        config.clip_grad_norm = Some(1.0);
        config.validate().unwrap();
        let clip = match config.engine_config() {
            EngineConfig::Muon(m) => m.clip_grad_norm,
            EngineConfig::Adafactor(a) => a.clip_grad_norm,
            other => panic!("{other:?}"),
        };
        assert_eq!(clip, Some(1.0), "{name}");
        // A session clips: a norm far under the gradients' changes the weights.
        let ctx = ctx();
        let (plain, data) = tiny(name, 3);
        let mut clipped = plain.clone();
        clipped.clip_grad_norm = Some(1e-3);
        let run = |c: TrainConfig| {
            let mut s = Session::new(&ctx, c, data.clone()).unwrap();
            s.run_blocking(|_| {}).unwrap();
            params(&s)
        };
        assert_ne!(run(clipped), run(plain), "{name}");
        config.clip_grad_norm = Some(-1.0);
        assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
    }
    let (mut config, _) = tiny("cadafactor", 5);
    config.decay.cautious = true;
    assert!(matches!(
        config.validate(),
        Err(Error::InvalidConfig(m)) if m.contains("weight decay")
    ));
    assert!(matches!(
        config.optimizer_config(),
        Err(Error::InvalidConfig(_))
    ));
}

/// Relative error of the records' gradient norm against the f64 norm of the same f32
/// gradients: the GPU sums each chunk's 1,024 squares (four per invocation, then a
/// tree of 256) and the chunks by a strided loop and a tree, each add rounding by at
/// most 2^-24 relative, about 20 adds deep: 20 * 6e-8 on the sum, half on the norm.
const GRAD_NORM_TOL: f64 = 1e-6;

/// Gradients of `shapes` whose values depend on `seed`.
fn test_grads(shapes: &[(&str, Vec<usize>)], seed: usize) -> Vec<Vec<f32>> {
    shapes
        .iter()
        .enumerate()
        .map(|(t, (_, shape))| {
            let n: usize = shape.iter().product();
            (0..n)
                .map(|i| (((i * 7 + t * 3 + seed * 5) % 17) as f32 - 8.0) * 0.05)
                .collect()
        })
        .collect()
}

/// Records one step of `opt` with `grads` and returns its record.
fn record_of(
    ctx: &coptim::GpuContext,
    store: &coptim::ParamStore,
    opt: &mut TrainOptimizer,
    grads: &[Vec<f32>],
) -> coptim::optim::StepStats {
    for (i, g) in grads.iter().enumerate() {
        store.grads.write(ctx, coptim::TensorId(i), g).unwrap();
    }
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    opt.record_step(&mut encoder, &StepInputs::lr(0.01))
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    ctx.wait_idle().unwrap();
    let mut records = opt.take_stats().unwrap();
    assert_eq!(records.len(), 1);
    records.remove(0)
}

/// Muon's and the Adafactor family's records carry what the element-wise engine's
/// do: the global gradient norm of every step (against the f64 norm of the same
/// gradients, the fallback bias's included) and the skipped flag of a step with a NaN
/// or an infinity (kept counts 0, completed steps unchanged).
#[test]
fn their_records_carry_the_gradient_norm_and_the_skipped_flag() {
    let ctx = ctx();
    let shapes = [("w", vec![32, 24]), ("b", vec![32]), ("v", vec![20, 40])];
    for name in ["cmuon", "muon", "cadafactor", "cadafactorbv"] {
        let store = coptim::ParamStore::new(&ctx, &shapes).unwrap();
        let config = kind(name).config(0.01, 0.0);
        let mut opt = TrainOptimizer::new(&ctx, &store, &config).unwrap();
        for (step, bad) in [
            (1, None),
            (2, Some(f32::NAN)),
            (3, Some(f32::INFINITY)),
            (4, None),
        ] {
            let mut grads = test_grads(&shapes, step);
            if let Some(bad) = bad {
                grads[step % 3][5] = bad;
            }
            let r = record_of(&ctx, &store, &mut opt, &grads);
            let completed = if step == 1 {
                1
            } else if step == 4 {
                2
            } else {
                1
            };
            assert_eq!(r.scheduled_step, step as u64, "{name}");
            assert_eq!(r.completed_steps, completed, "{name} step {step}");
            assert_eq!(r.skipped, bad.is_some(), "{name} step {step}");
            if bad.is_some() {
                assert!(!r.grad_norm.is_finite(), "{name}: {}", r.grad_norm);
                assert_eq!(r.kept, vec![0; 3], "{name}");
                continue;
            }
            let norm = grads
                .iter()
                .flatten()
                .map(|&g| f64::from(g) * f64::from(g))
                .sum::<f64>()
                .sqrt();
            let err = (f64::from(r.grad_norm) - norm).abs() / norm;
            assert!(
                err <= GRAD_NORM_TOL,
                "{name} step {step}: {} vs {norm}: {err:.2e}",
                r.grad_norm
            );
            assert!(r.kept.iter().all(|&k| k > 0), "{name}: {:?}", r.kept);
        }
    }
}

#[test]
fn resume_continues_bit_for_bit_and_foreign_state_is_rejected() {
    let ctx = ctx();
    let dir = tempfile::tempdir().unwrap();
    for name in ["cmuon", "cadafactor", "cadafactorbv"] {
        let (config, data) = tiny(name, 10);
        let mut straight = Session::new(&ctx, config.clone(), data.clone()).unwrap();
        straight.run_blocking(|_| {}).unwrap();
        let path = dir.path().join(format!("{name}.safetensors"));
        let mut resumed =
            common::session::stop_and_resume(&ctx, config.clone(), data.clone(), 6, &path);
        assert_eq!(resumed.optimizer().scheduled_steps(), 6, "{name}");
        resumed.run_blocking(|_| {}).unwrap();
        assert_eq!(params(&resumed), params(&straight), "{name}");
        let losses = |s: &Session| s.history().steps.iter().map(|m| m.loss).collect::<Vec<_>>();
        assert_eq!(losses(&resumed), losses(&straight), "{name}");
    }
}

/// Another engine's state file, and a damaged one, are rejected and change nothing.
#[test]
fn foreign_and_damaged_state_files_are_rejected() {
    let ctx = ctx();
    let shapes = [("w", vec![32, 24]), ("b", vec![32])];
    let store = coptim::ParamStore::new(&ctx, &shapes).unwrap();
    let g: Vec<f32> = (0..32 * 24)
        .map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.01)
        .collect();
    store.grads.write(&ctx, coptim::TensorId(0), &g).unwrap();
    let mut muon = TrainOptimizer::new(&ctx, &store, &kind("cmuon").config(0.02, 0.0)).unwrap();
    let ada = TrainOptimizer::new(&ctx, &store, &kind("cadafactor").config(1e-3, 0.0)).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    muon.record_step(&mut encoder, &StepInputs::scheduled())
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    let own = pollster::block_on(muon.state_bytes()).unwrap();
    let foreign = pollster::block_on(ada.state_bytes()).unwrap();
    let other_config = TrainOptimizer::new(&ctx, &store, &kind("muon").config(0.02, 0.0)).unwrap();
    let other = pollster::block_on(other_config.state_bytes()).unwrap();
    for bad in [&foreign[..], &own[..own.len() / 2], &other[..]] {
        let err = muon.load_state_bytes(bad, "bad").unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    }
    let after = pollster::block_on(muon.state_bytes()).unwrap();
    assert_eq!(contents(&after), contents(&own));
}

/// A tensor's name and bytes.
type Named = (String, Vec<u8>);

/// A safetensors file's metadata and tensors, in name order (the serialized
/// metadata's order varies).
fn contents(bytes: &[u8]) -> (Vec<(String, String)>, Vec<Named>) {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut meta: Vec<_> = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    meta.sort();
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect();
    tensors.sort();
    (meta, tensors)
}

/// Muon's state file with a NaN momentum is rejected.
#[test]
fn a_non_finite_muon_momentum_is_rejected() {
    let ctx = ctx();
    let store = coptim::ParamStore::new(&ctx, &[("w", vec![8, 8]), ("b", vec![8])]).unwrap();
    let config = kind("muon").config(0.02, 0.0);
    let mut opt = TrainOptimizer::new(&ctx, &store, &config).unwrap();
    let bytes = pollster::block_on(opt.state_bytes()).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let nan: Vec<u8> = [f32::NAN; 64]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| match name.as_str() {
            "momentum.w" => (
                name,
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![64], &nan)
                    .unwrap(),
            ),
            _ => (name, view),
        })
        .collect();
    let poisoned = safetensors::serialize(tensors, meta.metadata().clone()).unwrap();
    let err = opt.load_state_bytes(&poisoned, "nan").unwrap_err();
    assert!(
        matches!(&err, Error::Checkpoint { reason, .. } if reason.contains("NaN")),
        "{err}"
    );
}

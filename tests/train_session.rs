//! Training sessions on lavapipe: tiny models, few steps. Exact resume, same init and
//! batches across optimizers, non-finite stops, the input pipeline, the comparison's
//! summary and reports, and bad inputs.

mod common;

use std::sync::Arc;

use common::*;
use coptim::Error;
use coptim::data::DatasetSplit;
use coptim::model::{Mlp, Model};
use coptim::train::compare::{CompareConfig, compare};
use coptim::train::inputs::{BatchStream, Standardize, translate};
use coptim::train::{
    Event, Lockstep, ModelSpec, OptimizerKind, Runner, Session, TrainConfig, report,
};

/// 1,024 training and 256 test digits of the bundled set.
fn small_data() -> Arc<DatasetSplit> {
    bundled_subset(1024, 256)
}

/// A 784-32-10 MLP, 64 samples per step.
fn tiny(optimizer: OptimizerKind, steps: u64) -> TrainConfig {
    let mut c = mlp_run(32, optimizer, steps);
    c.batch_size = 64;
    c.eval_batch_size = 100;
    c
}

/// A C-AdamW session of `steps` steps on the small data, with its configuration and
/// data (for other sessions to compare with).
fn c_adamw_session(
    ctx: &coptim::GpuContext,
    steps: u64,
) -> (Session, TrainConfig, Arc<DatasetSplit>) {
    let data = small_data();
    let config = tiny(OptimizerKind::C_ADAMW, steps);
    let s = Session::new(ctx, config.clone(), data.clone()).unwrap();
    (s, config, data)
}

fn params(s: &Session) -> Vec<Vec<f32>> {
    s.model()
        .read_parameters_blocking()
        .unwrap()
        .into_iter()
        .map(|t| t.values)
        .collect()
}

#[test]
fn tiny_mlp_learns_with_every_metric() {
    let ctx = ctx();
    let mut s = Session::new(&ctx, tiny(OptimizerKind::C_ADAMW, 40), small_data()).unwrap();
    s.run_blocking(|_| {}).unwrap();
    let h = s.history();
    assert_eq!(h.steps.len(), 40);
    assert!(
        h.steps
            .iter()
            .enumerate()
            .all(|(i, m)| m.step == i as u64 + 1)
    );
    let first: f32 = h.steps[..5].iter().map(|m| m.loss).sum::<f32>() / 5.0;
    let last: f32 = h.steps[35..].iter().map(|m| m.loss).sum::<f32>() / 5.0;
    assert!(last < 0.6 * first, "loss {first} -> {last}");
    for m in &h.steps {
        let k = m
            .kept_fraction
            .expect("the runner waits, so every step has stats");
        assert!(k > 0.0 && k <= 1.0, "kept fraction {k}");
        assert!(m.step_ms.unwrap() >= 0.0);
        assert!((0.0..=1.0).contains(&m.accuracy));
    }
    assert!(
        h.mean_kept_fraction().unwrap() < 0.9,
        "the mask drops coordinates"
    );
    // Warm-up, then cosine decay towards 0, reached one step after the last.
    assert!(h.steps[0].lr < h.steps[1].lr);
    assert!(h.steps[39].lr < h.steps[38].lr);
    assert!(h.steps[39].lr > 0.0 && h.steps[39].lr < 0.01 * h.steps[2].lr);
    let eval = h.last_eval().unwrap();
    assert_eq!(eval.step, 40);
    assert!(eval.accuracy > 0.6, "test accuracy {}", eval.accuracy);
    assert!(s.step().is_err(), "stepping past the budget fails");
}

/// Every step's metrics come from the optimizer's one readback record of the step:
/// its loss is the loss the model computed on the step's batch (checked against an
/// evaluation of that batch with the same initial weights, by a second model), and
/// the record's staging buffer is reused from step to step, or grows (never drops a
/// step) while steps are submitted faster than they are read.
#[test]
fn each_step_reads_back_one_record_with_the_models_loss() {
    let ctx = ctx();
    let (mut s, config, data) = c_adamw_session(&ctx, 8);
    for _ in 0..4 {
        s.step().unwrap();
        s.wait().unwrap();
    }
    assert_eq!(
        s.optimizer().record_buffers(),
        1,
        "one staging buffer, reused"
    );
    for _ in 0..3 {
        s.step().unwrap();
    }
    assert_eq!(s.optimizer().stats_in_flight(), 3);
    assert_eq!(s.wait().unwrap().len(), 3);
    assert_eq!(s.optimizer().record_buffers(), 3, "grown, none dropped");

    let mut stream = BatchStream::for_run(&config, &data.train);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    stream.batch_into(&data.train, 1, &mut images, &mut labels);
    let ModelSpec::Mlp(mlp) = &config.model else {
        unreachable!("tiny() is an MLP")
    };
    let mut fresh = Model::new(&ctx, mlp.clone(), config.seed).unwrap();
    let eval = fresh
        .evaluate_blocking(&images, &labels, config.batch_size)
        .unwrap();
    let first = s.history().steps[0];
    // The training and inference graphs reduce the same batch in the same order;
    // 1e-6 allows for the f64 weighting of the evaluation's mean.
    assert!(
        (first.loss as f64 - eval.loss).abs() <= 1e-6 * eval.loss,
        "recorded loss {} vs the model's {}",
        first.loss,
        eval.loss
    );
    assert_eq!(first.accuracy as f64, eval.accuracy());
    for (i, m) in s.history().steps.iter().enumerate() {
        assert_eq!(m.step, i as u64 + 1);
        assert_eq!(m.lr, s.lr_at(m.step));
        assert!(m.kept_fraction.is_some_and(|k| k > 0.0 && k <= 1.0));
    }
}

#[test]
fn plain_kinds_keep_everything_and_same_seed_means_same_start() {
    let ctx = ctx();
    let data = small_data();
    let mut firsts = Vec::new();
    for kind in OptimizerKind::all() {
        let mut s = Session::new(&ctx, tiny(kind, 3), data.clone()).unwrap();
        if kind == OptimizerKind::ADAMW {
            let other = Session::new(&ctx, tiny(OptimizerKind::C_LION, 3), data.clone()).unwrap();
            assert_eq!(
                params(&s),
                params(&other),
                "same seed, same initial weights"
            );
        }
        s.run_blocking(|_| {}).unwrap();
        let h = s.history();
        if !kind.is_cautious() {
            assert!(h.steps.iter().all(|m| m.kept_fraction == Some(1.0)));
        }
        firsts.push(h.steps[0].loss);
    }
    // The first loss is computed before any update: same weights, same batch.
    assert!(firsts.iter().all(|&l| l == firsts[0]), "{firsts:?}");
    // A different seed starts elsewhere.
    let mut c = tiny(OptimizerKind::ADAMW, 3);
    c.seed = 1;
    let a = Session::new(&ctx, c, data.clone()).unwrap();
    let b = Session::new(&ctx, tiny(OptimizerKind::ADAMW, 3), data).unwrap();
    assert_ne!(params(&a), params(&b));
}

#[test]
fn resume_from_a_checkpoint_continues_bit_for_bit() {
    let ctx = ctx();
    let (mut straight, config, data) = c_adamw_session(&ctx, 12);
    straight.run_blocking(|_| {}).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let mut resumed = common::session::stop_and_resume(&ctx, config, data.clone(), 7, &path);
    assert_eq!(resumed.steps_recorded(), 7);
    assert_eq!(resumed.history().steps.len(), 7);
    resumed.run_blocking(|_| {}).unwrap();

    assert_eq!(params(&resumed), params(&straight));
    let losses = |s: &Session| s.history().steps.iter().map(|m| m.loss).collect::<Vec<_>>();
    assert_eq!(losses(&resumed), losses(&straight));
    assert_eq!(
        resumed.history().last_eval().unwrap(),
        straight.history().last_eval().unwrap()
    );

    // A damaged file is rejected with a typed error.
    let bytes = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        Session::resume(&ctx, data.clone(), &bad),
        Err(Error::Checkpoint { .. })
    ));
    assert!(matches!(
        Session::resume(&ctx, data, dir.path().join("missing")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let ctx = ctx();
    let data = small_data();
    let mut config = tiny(OptimizerKind::SGD, 40);
    config.lr = 1e30;
    config.warmup_steps = 0;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let runner = Runner {
        checkpoint: Some(path.clone()),
        checkpoint_every: 1,
        ..Runner::default()
    };
    let mut s = Session::new(&ctx, config, data.clone()).unwrap();
    let err = runner.run(&mut s, |_| {}).unwrap_err();
    let Error::NonFiniteLoss { step, loss } = err else {
        panic!("expected a non-finite loss, got {err}");
    };
    assert!(!loss.is_finite());
    assert!(err_message_is_clear(step));
    assert!(matches!(s.step(), Err(Error::NonFiniteLoss { .. })));
    let good = Session::resume(&ctx, data, &path).unwrap();
    assert_eq!(good.steps_recorded(), step - 1);
    assert!(good.history().steps.iter().all(|m| m.loss.is_finite()));
}

fn err_message_is_clear(step: u64) -> bool {
    let msg = Error::NonFiniteLoss {
        step,
        loss: f32::NAN,
    }
    .to_string();
    msg.contains(&format!("step {step}")) && msg.contains("not finite")
}

#[test]
fn input_pipeline_is_a_function_of_seed_and_step() {
    let data = small_data();
    let std = Standardize::of(&data.train);
    assert!(
        std.mean > 0.05 && std.mean < 0.2 && std.std > 0.2,
        "{std:?}"
    );
    let mut a = BatchStream::new(&data.train, 100, 3, 2, std);
    let mut b = BatchStream::new(&data.train, 100, 3, 2, std);
    let (mut xa, mut ya, mut xb, mut yb) = (vec![], vec![], vec![], vec![]);
    // 10 batches per epoch (drop_last): step 11 starts epoch 1, in any order.
    b.batch_into(&data.train, 11, &mut xb, &mut yb);
    a.batch_into(&data.train, 3, &mut xa, &mut ya);
    a.batch_into(&data.train, 11, &mut xa, &mut ya);
    assert_eq!((xa.clone(), ya.clone()), (xb.clone(), yb.clone()));
    let epoch0: Vec<usize> = (1..=10).flat_map(|s| a.indices(s).to_vec()).collect();
    let mut sorted = epoch0.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 1000, "an epoch has no repeats");
    assert_ne!(a.indices(1).to_vec(), a.indices(11).to_vec());

    // Translation: a single lit pixel moves, and what leaves the image is dropped.
    let mut img = vec![0.0; 2 * 3 * 4];
    img[4 + 1] = 1.0; // channel 0, row 1, column 1
    img[12 + 11] = 2.0; // channel 1, row 2, column 3
    translate(&mut img, 2, 3, 4, 1, -1);
    let mut want = vec![0.0; 24];
    want[2 * 4] = 1.0;
    assert_eq!(img, want);
}

#[test]
fn comparison_summary_and_reports() {
    let ctx = ctx();
    let config = CompareConfig::new(tiny(OptimizerKind::ADAMW, 8), 2, "bundled-mnist (1024)");
    let mut steps_seen = 0;
    let summary = compare(&ctx, small_data(), &config, |e| {
        if let coptim::train::compare::CompareEvent::Step { .. } = e {
            steps_seen += 1
        }
    })
    .unwrap();
    assert_eq!(steps_seen, 4 * 8);
    assert_eq!(summary.runs.len(), 4);
    let json: serde_json::Value = serde_json::from_str(&report::summary_json(&summary)).unwrap();
    for key in ["model", "dataset", "steps", "pair", "runs", "speedup"] {
        assert!(json.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(json["model"], "mlp");
    assert_eq!(json["pair"], serde_json::json!(["adamw", "c-adamw"]));
    for run in json["runs"].as_array().unwrap() {
        for key in [
            "optimizer",
            "seed",
            "final_train_loss",
            "test_accuracy",
            "steps_to_base_final_loss",
            "wall_s",
        ] {
            assert!(run.get(key).is_some(), "a run lacks {key}");
        }
    }
    for key in ["median", "min", "max"] {
        assert!(json["speedup"].get(key).is_some());
    }
    // The base run reaches its own final loss by its last step.
    for r in summary.runs_of(OptimizerKind::ADAMW) {
        assert!(r.steps_to_base_final_loss.unwrap() <= 8);
        assert_eq!(r.measured.mean_kept_fraction, Some(1.0));
    }
    let csv = report::metrics_csv(&summary);
    assert_eq!(csv.lines().count(), 1 + 4 * 8);
    assert_eq!(csv.lines().next().unwrap(), report::CSV_HEADER);
    assert!(report::table(&summary).contains("speed-up of c-adamw over adamw"));
    let dir = tempfile::tempdir().unwrap();
    report::write_reports(&summary, dir.path()).unwrap();
    coptim::train::chart::write_charts(&summary, dir.path()).unwrap();
    for f in ["metrics.csv", "summary.json", "curves.png", "curves.svg"] {
        assert!(
            std::fs::metadata(dir.path().join(f)).unwrap().len() > 100,
            "{f}"
        );
    }
}

#[test]
fn tiny_vit_steps_and_bad_inputs_are_typed_errors() {
    let ctx = ctx();
    let data = small_data();
    let vit = ModelSpec::Vit(common::model::tiny_digit_vit(16));
    let mut c = TrainConfig::for_model(vit, OptimizerKind::C_ADAMW).with_steps(3);
    c.batch_size = 16;
    c.eval_batch_size = 128;
    let mut s = Session::new(&ctx, c, data.clone()).unwrap();
    s.run_blocking(|_| {}).unwrap();
    assert!(s.history().steps.iter().all(|m| m.loss.is_finite()));
    assert_eq!(s.history().last_eval().unwrap().step, 3);

    let mut big = tiny(OptimizerKind::ADAMW, 3);
    big.batch_size = 2000;
    assert!(matches!(
        Session::new(&ctx, big, data.clone()),
        Err(Error::InvalidConfig(_))
    ));
    let wrong_input = TrainConfig::for_model(
        ModelSpec::Mlp(Mlp {
            input: 100,
            ..Mlp::default()
        }),
        OptimizerKind::ADAMW,
    );
    assert!(matches!(
        Session::new(&ctx, wrong_input, data.clone()),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut no_steps = tiny(OptimizerKind::ADAMW, 3);
    no_steps.steps = 0;
    assert!(matches!(
        Session::new(&ctx, no_steps, data.clone()),
        Err(Error::InvalidConfig(_))
    ));
    let mut bad_lr = tiny(OptimizerKind::ADAMW, 3);
    bad_lr.lr = f64::NAN;
    assert!(matches!(
        Session::new(&ctx, bad_lr, data),
        Err(Error::InvalidConfig(_))
    ));
    assert!("adam".parse::<OptimizerKind>().is_err());
    for k in OptimizerKind::all() {
        assert_eq!(k.name().parse::<OptimizerKind>().unwrap(), k);
        assert_eq!(k.with_caution(k.is_cautious()), Some(k));
        // Not every timm name has a twin (`lambc`), but a twin differs in the mask.
        if let Some(twin) = k.with_caution(!k.is_cautious()) {
            assert_ne!(twin.is_cautious(), k.is_cautious());
        }
    }
}

/// The losses and final parameters of `sessions` after they ran.
fn outcome(sessions: &[&Session]) -> Vec<(Vec<f32>, Vec<Vec<f32>>)> {
    sessions
        .iter()
        .map(|s| {
            let losses = s.history().steps.iter().map(|m| m.loss).collect();
            (losses, params(s))
        })
        .collect()
}

#[test]
fn lockstep_runs_match_the_same_runs_alone_bit_for_bit() {
    let ctx = ctx();
    let data = small_data();
    let configs = [
        TrainConfig {
            seed: 3,
            ..tiny(OptimizerKind::ADAMW, 6)
        },
        TrainConfig {
            seed: 3,
            ..tiny(OptimizerKind::C_LION, 4)
        },
    ];
    let mut alone: Vec<Session> = configs
        .iter()
        .map(|c| Session::new(&ctx, c.clone(), data.clone()).unwrap())
        .collect();
    for s in &mut alone {
        s.run_blocking(|_| {}).unwrap();
    }
    let expected = outcome(&alone.iter().collect::<Vec<_>>());
    assert_eq!(expected[0].0.len(), 6);
    assert_eq!(expected[1].0.len(), 4, "a finished run is skipped");

    // The native driver: each run waited for in turn.
    let sessions = configs
        .iter()
        .map(|c| Session::new(&ctx, c.clone(), data.clone()).unwrap())
        .collect();
    let mut lockstep = Lockstep::new(sessions).unwrap();
    let mut seen = [0, 0];
    Runner::default()
        .run_lockstep(&mut lockstep, |i, e| {
            if let Event::Step(m) = e {
                seen[i] += 1;
                assert_eq!(m.step, seen[i], "run {i} reports its steps in order");
            }
        })
        .unwrap();
    assert_eq!(seen, [6, 4]);
    assert!(lockstep.busy_s(0) > 0.0 && lockstep.busy_s(1) > 0.0);
    assert_eq!(outcome(&lockstep.runs().collect::<Vec<_>>()), expected);

    // The pipelined driver (the browser's): every step submitted, then read back.
    let sessions = configs
        .iter()
        .map(|c| Session::new(&ctx, c.clone(), data.clone()).unwrap())
        .collect();
    let mut lockstep = Lockstep::new(sessions).unwrap();
    while !lockstep.is_finished() {
        lockstep.step().unwrap();
    }
    for i in 0..lockstep.len() {
        lockstep.run_mut(i).wait().unwrap();
    }
    assert_eq!(lockstep.in_flight(), 0);
    assert_eq!(outcome(&lockstep.runs().collect::<Vec<_>>()), expected);
}

#[test]
fn lockstep_refuses_no_runs_and_one_checkpoint_for_two() {
    let ctx = ctx();
    let data = small_data();
    assert!(matches!(
        Lockstep::<Session>::new(Vec::new()),
        Err(Error::InvalidConfig(_))
    ));
    let sessions = [OptimizerKind::ADAMW, OptimizerKind::C_ADAMW]
        .map(|o| Session::new(&ctx, tiny(o, 2), data.clone()).unwrap())
        .into_iter()
        .collect();
    let mut lockstep = Lockstep::new(sessions).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner {
        checkpoint: Some(dir.path().join("checkpoint.safetensors")),
        checkpoint_every: 0,
        ..Runner::default()
    };
    let err = runner.run_lockstep(&mut lockstep, |_, _| {}).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    assert_eq!(lockstep.run(0).steps_recorded(), 0, "nothing was stepped");
}

//! `compare` on several devices at once (`coptim compare --jobs`): the same results
//! as one device training the runs one after the other, every run's events, the
//! first failure returned, and bad job counts refused.

mod common;

use common::model::tiny_digit_mae;
use common::*;
use coptim::Error;
use coptim::train::compare::{CompareConfig, CompareEvent, Summary, compare, compare_on};
use coptim::train::{History, ModelSpec, OptimizerKind, TrainConfig};

/// A tiny masked autoencoder compared over 2 seeds (4 runs) with an evaluation every
/// 2 of its 4 steps and the linear probe: every per-run result the summary holds.
fn tiny_mae_comparison() -> CompareConfig {
    let mut run = TrainConfig::for_model(ModelSpec::Mae(tiny_digit_mae()), OptimizerKind::ADAMW)
        .with_steps(4);
    run.batch_size = 32;
    run.eval_batch_size = 100;
    run.eval_every = 2;
    let mut config = CompareConfig::new(run, 2, "bundled-mnist (300)");
    config.probe = true;
    config
}

/// A history without its timings.
fn untimed(history: &History) -> History {
    let mut h = history.clone();
    h.steps.iter_mut().for_each(|m| m.step_ms = None);
    h
}

/// Runs `config` on `contexts`, counting each run's start, steps and end events.
fn run_counting(
    contexts: &[coptim::GpuContext],
    config: &CompareConfig,
) -> (Summary, Vec<[u32; 3]>) {
    let mut events = vec![[0u32; 3]; config.runs().len()];
    let summary = compare_on(contexts, bundled_subset(300, 100), config, |e| match e {
        CompareEvent::Started { index } => events[index][0] += 1,
        CompareEvent::Step { index, .. } => events[index][1] += 1,
        CompareEvent::Finished { index, .. } => events[index][2] += 1,
    })
    .unwrap();
    (summary, events)
}

/// Two devices give exactly what one gives: every step's loss, accuracy, learning
/// rate and kept fraction, every evaluation, the probe, the steps to the base's
/// final loss, the speed-ups and the reconstructions picture; only times differ.
#[test]
fn two_devices_give_the_results_of_one() {
    let config = tiny_mae_comparison();
    let (one, one_events) = run_counting(&[ctx()], &config);
    let (two, two_events) = run_counting(&[ctx(), ctx()], &config);
    assert_eq!(one_events, vec![[1, 4, 1]; 4]);
    assert_eq!(two_events, one_events);
    assert_eq!(one.runs.len(), 4);
    for (a, b) in one.runs.iter().zip(&two.runs) {
        let (a_run, b_run) = (&a.measured, &b.measured);
        assert_eq!((a_run.optimizer, a_run.seed), (b_run.optimizer, b_run.seed));
        assert_eq!(untimed(&a.history), untimed(&b.history));
        assert_eq!(a.history.evals.len(), 2);
        assert_eq!(a_run.val_loss, b_run.val_loss);
        assert_eq!(a_run.final_train_loss, b_run.final_train_loss);
        assert_eq!(a.probe_accuracy, b.probe_accuracy);
        assert!(a.probe_accuracy.is_some());
        assert_eq!(a.steps_to_base_final_loss, b.steps_to_base_final_loss);
        assert_eq!(a_run.mean_kept_fraction, b_run.mean_kept_fraction);
    }
    assert_eq!(one.speedup_per_seed, two.speedup_per_seed);
    assert_eq!(one.baseline_val_loss, two.baseline_val_loss);
    assert_eq!(one.parameters, two.parameters);
    assert!(one.reconstructions.is_some());
    assert_eq!(one.reconstructions, two.reconstructions);
    // The seeds' runs differ (the comparison did not train one run four times).
    assert_ne!(untimed(&one.runs[0].history), untimed(&one.runs[2].history));
}

/// A run that fails on one device stops the comparison with its error, however many
/// devices train; no contexts at all is refused before any training.
#[test]
fn a_failing_run_stops_the_comparison_and_no_device_is_refused() {
    let mut config = tiny_mae_comparison();
    config.probe = false;
    config.run.lr = 1e30;
    config.run.warmup_steps = 0;
    for contexts in [vec![ctx()], vec![ctx(), ctx()]] {
        let err = compare_on(&contexts, bundled_subset(300, 100), &config, |_| {}).unwrap_err();
        assert!(matches!(err, Error::NonFiniteLoss { .. }), "{err}");
    }
    let mut steps = 0;
    let err = compare_on(&[], bundled_subset(300, 100), &config, |_| steps += 1).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    assert!(err.to_string().contains("GPU context"), "{err}");
    assert_eq!(steps, 0);
    // `compare` is `compare_on` one device.
    assert!(matches!(
        compare(&ctx(), bundled_subset(300, 100), &config, |_| {}),
        Err(Error::NonFiniteLoss { .. })
    ));
}

/// `--jobs` takes 1 to 64.
#[test]
fn the_cli_refuses_job_counts_out_of_range() {
    for jobs in ["0", "65", "two"] {
        let msg = common::cli::fails(&["compare", "--jobs", jobs, "--steps", "1"]);
        assert!(msg.contains("--jobs"), "{jobs}: {msg}");
    }
}

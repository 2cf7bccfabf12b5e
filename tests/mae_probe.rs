//! The linear probe of a masked autoencoder's frozen encoder: the classifier on its
//! own (a separable case, a case with nothing to learn, bad input) and inside
//! `compare` (a tiny model on a few digits: every run gets a probe accuracy in the
//! JSON summary and the table; a model without an encoder is refused).

mod common;

use common::model::tiny_digit_mae;
use common::*;
use coptim::Error;
use coptim::model::Mae;
use coptim::train::compare::{CompareConfig, compare};
use coptim::train::probe::{Features, linear_probe};
use coptim::train::report::{summary_json, table};
use coptim::train::{ModelSpec, OptimizerKind, TrainConfig};

/// `count` samples of `dim` features, `classes` classes in turn; class `c`'s
/// features are N(0, noise) plus `shift` on feature `c`.
fn clusters(count: usize, dim: usize, classes: usize, shift: f64, seed: u64) -> Features {
    let mut values = randn(&mut rng(seed), count * dim, 1.0);
    let labels: Vec<u32> = (0..count).map(|i| (i % classes) as u32).collect();
    for (row, &l) in values.chunks_mut(dim).zip(&labels) {
        row[l as usize] += shift;
    }
    Features {
        dim,
        values,
        labels,
    }
}

/// Well-separated clusters (means 8 standard deviations apart, offset and scaled to
/// test the standardization) are classified almost perfectly; with the labels
/// unrelated to the features the probe stays near chance.
#[test]
fn the_probe_separates_separable_classes_and_only_those() {
    let scaled = |mut f: Features| {
        f.values.iter_mut().for_each(|v| *v = 1e3 + 50.0 * *v);
        f
    };
    let train = scaled(clusters(600, 6, 4, 8.0, 1));
    let test = scaled(clusters(200, 6, 4, 8.0, 2));
    let accuracy = linear_probe(&train, &test, 4).unwrap();
    assert!(accuracy > 0.98, "{accuracy}");

    let noise = clusters(600, 6, 4, 0.0, 3);
    let accuracy = linear_probe(&noise, &clusters(400, 6, 4, 0.0, 4), 4).unwrap();
    // Chance is 0.25; 400 test samples give a standard deviation of about 0.022.
    assert!((0.1..0.4).contains(&accuracy), "{accuracy}");
    // Deterministic.
    assert_eq!(
        linear_probe(&train, &test, 4).unwrap(),
        linear_probe(&train, &test, 4).unwrap()
    );
}

/// Empty sets, partial rows, non-finite values, labels out of range and feature
/// widths that differ are errors that name the problem.
#[test]
fn bad_probe_input_is_refused() {
    let good = clusters(20, 3, 2, 1.0, 5);
    let edited = |edit: &dyn Fn(&mut Features)| {
        let mut f = good.clone();
        edit(&mut f);
        f
    };
    let cases: [(Features, &str); 5] = [
        (edited(&|f| f.labels.clear()), "empty"),
        (
            edited(&|f| _ = f.values.pop()),
            "features (20 samples of 3)",
        ),
        (edited(&|f| f.values[4] = f64::NAN), "not all finite"),
        (
            edited(&|f| f.labels[3] = 2),
            "label 2 is not below the 2 classes",
        ),
        (
            clusters(20, 4, 2, 1.0, 6),
            "training features have 3 values",
        ),
    ];
    for (bad, says) in cases {
        let err = linear_probe(&good, &bad, 2).unwrap_err();
        assert!(err.to_string().contains(says), "{err} should say {says:?}");
        if bad.dim == good.dim {
            let err = linear_probe(&bad, &good, 2).unwrap_err();
            assert!(err.to_string().contains(says), "{err} should say {says:?}");
        }
    }
    let err = linear_probe(&good, &edited(&|f| _ = f.values.pop()), 2).unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { .. }), "{err}");
}

/// A tiny MAE compared with the probe: every run has a probe accuracy, above chance
/// (even a barely trained encoder's class token mixes every patch of the digit),
/// in the JSON summary and in the table; without the probe there is none.
#[test]
fn compare_probes_every_run_s_encoder() {
    let ctx = ctx();
    let mut run = TrainConfig::for_model(
        ModelSpec::Mae(Mae {
            norm_pix_loss: false,
            ..tiny_digit_mae()
        }),
        OptimizerKind::ADAMW,
    )
    .with_steps(4);
    run.batch_size = 32;
    run.eval_batch_size = 100;
    let mut config = CompareConfig::new(run, 1, "bundled-mnist (500)");
    config.probe = true;
    let summary = compare(&ctx, bundled_subset(500, 200), &config, |_| {}).unwrap();
    for r in &summary.runs {
        let accuracy = r.probe_accuracy.expect("a probe accuracy per run");
        assert!((0.2..=1.0).contains(&accuracy), "{accuracy}: chance is 0.1");
    }
    let json: serde_json::Value = serde_json::from_str(&summary_json(&summary)).unwrap();
    for r in json["runs"].as_array().unwrap() {
        assert!(r["probe_accuracy"].as_f64().is_some(), "{r}");
    }
    assert!(json["optimizers"][0]["probe_accuracy"]["median"].is_number());
    let text = table(&summary);
    assert!(text.contains("linear probe test accuracy"), "{text}");

    config.probe = false;
    let plain = compare(&ctx, bundled_subset(500, 200), &config, |_| {}).unwrap();
    assert!(plain.runs.iter().all(|r| r.probe_accuracy.is_none()));
    assert!(!table(&plain).contains("linear probe"));
}

/// A classifier has no encoder to probe: refused before any training.
#[test]
fn the_probe_needs_a_masked_autoencoder() {
    let ctx = ctx();
    let run = TrainConfig::mlp(OptimizerKind::ADAMW).with_steps(2);
    let mut config = CompareConfig::new(run, 1, "bundled-mnist (500)");
    config.probe = true;
    let mut steps = 0;
    let err = compare(&ctx, bundled_subset(500, 200), &config, |_| steps += 1).unwrap_err();
    assert!(err.to_string().contains("linear probe"), "{err}");
    assert_eq!(steps, 0, "nothing trained");
}

/// The command line says so too, naming the flag's purpose.
#[test]
fn the_cli_refuses_a_probe_without_an_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let err = common::cli::fails(&[
        "compare", "--model", "mlp", "--probe", "--seeds", "1", "--steps", "1", "--out", out,
    ]);
    assert!(err.contains("linear probe"), "{err}");
}

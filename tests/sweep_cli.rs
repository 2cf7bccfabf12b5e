//! `coptim sweep` end to end on tiny grids: the JSON's shape, the choice of the
//! learning rate, resuming, concurrency and bad input.

use std::collections::BTreeMap;
use std::path::Path;

mod common;

use common::cli::{fails, json, stderr, succeeds};

/// A tiny sweep's arguments into `out` with `extra` appended.
fn tiny<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sweep",
        "--steps",
        "6",
        "--batch-size",
        "16",
        "--eval-every",
        "3",
        "--seeds",
        "2",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Per optimizer, the rate of its grid with the lowest mean validation loss over
/// its runs (a drop-in run outside the grid does not count).
fn argmin_of_runs(v: &serde_json::Value) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<(String, u64), (f64, f64, usize)> = BTreeMap::new();
    for r in v["runs"].as_array().unwrap() {
        let lr = r["lr"].as_f64().unwrap();
        let optimizer = r["optimizer"].as_str().unwrap();
        if !v["lrs"][optimizer].as_array().unwrap().contains(&r["lr"]) {
            continue;
        }
        let key = (optimizer.to_string(), lr.to_bits());
        let e = sums.entry(key).or_insert((lr, 0.0, 0));
        e.1 += r["val_loss"].as_f64().unwrap();
        e.2 += 1;
    }
    let mut best: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for ((o, _), (lr, sum, n)) in sums {
        let mean = sum / n as f64;
        let b = best.entry(o).or_insert((lr, mean));
        if mean < b.1 {
            *b = (lr, mean);
        }
    }
    best.into_iter().map(|(o, (lr, _))| (o, lr)).collect()
}

#[test]
fn sweep_json_has_the_issue_shape_and_tunes_by_validation_loss() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let v = json(&succeeds(&tiny(out, &["--lrs", "5e-4,4e-3", "--json"])));
    assert_eq!(v["model"], "mlp");
    assert_eq!(v["pair"], serde_json::json!(["adamw", "c-adamw"]));
    assert_eq!(v["lrs"]["adamw"], serde_json::json!([5e-4, 4e-3]));
    assert_eq!(v["lrs"]["c-adamw"], v["lrs"]["adamw"]);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2 * 2 * 2);
    for r in runs {
        for key in ["optimizer", "lr", "seed", "val_loss", "test_accuracy"] {
            assert!(!r[key].is_null(), "{key} in {r}");
        }
    }
    for key in ["speedup", "speedup_at_base_lr"] {
        let ci = v[key]["ci95"].as_array().unwrap();
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        let median = v[key]["median"].as_f64().unwrap();
        assert!(lo <= median && median <= hi, "{key}: {}", v[key]);
    }
    let tuned: BTreeMap<String, f64> = serde_json::from_value(v["tuned_lr"].clone()).unwrap();
    assert_eq!(tuned, argmin_of_runs(&v));
    assert_eq!(v["test_metric"], "accuracy");
    for f in [
        "runs.jsonl",
        "sweep.json",
        "grid.csv",
        "metrics.csv",
        "sweep.png",
        "sweep.svg",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    assert_eq!(lines(&dir.path().join("runs.jsonl")).len(), 8);
    assert_eq!(lines(&dir.path().join("grid.csv")).len(), 9);
}

#[test]
fn a_pair_with_different_grids_runs_the_cautious_one_at_the_base_rate_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let v = json(&succeeds(&tiny(out, &["--pair", "adamw,c-lion", "--json"])));
    let grid = |o: &str| v["lrs"][o].as_array().unwrap().clone();
    assert_eq!(grid("adamw").len(), 5);
    assert_eq!(grid("c-lion").len(), 5);
    let tuned: BTreeMap<String, f64> = serde_json::from_value(v["tuned_lr"].clone()).unwrap();
    assert_eq!(tuned, argmin_of_runs(&v));
    let base_lr = serde_json::json!(tuned["adamw"]);
    assert!(
        !grid("c-lion").contains(&base_lr),
        "the preset rates of AdamW and Lion differ, so the grids do"
    );
    let drop_in: Vec<_> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["optimizer"] == "c-lion" && r["lr"] == base_lr)
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(drop_in, [0, 1], "one drop-in run per seed");
    assert_eq!(v["runs"].as_array().unwrap().len(), 2 * 5 * 2 + 2);
    assert_eq!(v["speedup_at_base_lr"]["lr"], base_lr);
    assert_eq!(v["speedup_at_base_lr"]["base_lr"], base_lr);
    assert_eq!(lines(&dir.path().join("runs.jsonl")).len(), 22);
}

#[test]
fn an_interrupted_sweep_resumes_without_redoing_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let results = dir.path().join("runs.jsonl");
    let first = succeeds(&tiny(out, &["--lrs", "1e-3,4e-3", "--max-runs", "3"]));
    assert!(
        stderr(&first).contains("stopped after 3 runs"),
        "{}",
        stderr(&first)
    );
    assert!(!dir.path().join("sweep.json").exists());
    let partial = lines(&results);
    assert_eq!(partial.len(), 3);

    // A finished run's record is trusted, not redone: make one the best of its grid.
    let mut record: serde_json::Value = serde_json::from_str(&partial[0]).unwrap();
    record["val_loss"] = serde_json::json!(1e-6);
    let mut edited = vec![record.to_string()];
    edited.extend_from_slice(&partial[1..]);
    // The fourth run was being written when the sweep stopped: a torn last line.
    let torn = &partial[1][..partial[1].len() / 2];
    std::fs::write(&results, edited.join("\n") + "\n" + torn).unwrap();

    let second = succeeds(&tiny(out, &["--lrs", "1e-3,4e-3", "--json"]));
    assert!(
        stderr(&second).contains("3 runs already in runs.jsonl"),
        "{}",
        stderr(&second)
    );
    let all = lines(&results);
    assert_eq!(all.len(), 8, "no run was trained twice");
    assert_eq!(all[..3], edited[..]);
    let v = json(&second);
    let optimizer = record["optimizer"].as_str().unwrap();
    assert_eq!(v["tuned_lr"][optimizer], record["lr"]);
    let (lr, seed) = (&record["lr"], &record["seed"]);
    let row = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["optimizer"] == optimizer && r["lr"] == *lr && r["seed"] == *seed)
        .unwrap();
    assert_eq!(row["val_loss"], 1e-6);
}

#[test]
fn concurrent_runs_give_the_same_results_as_one_at_a_time() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let [one, four] = [0, 1].map(|i| {
        let out = dirs[i].path().to_str().unwrap();
        let concurrent = ["1", "4"][i];
        let args = [
            "sweep",
            "--steps",
            "5",
            "--batch-size",
            "16",
            "--seeds",
            "1",
            "--lrs",
            "1e-3,4e-3",
            "--concurrent",
            concurrent,
            "--out",
            out,
            "--json",
        ];
        json(&succeeds(&args))
    });
    let losses = |v: &serde_json::Value| -> Vec<(String, f64, f64)> {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let o = r["optimizer"].as_str().unwrap().to_string();
                (
                    o,
                    r["lr"].as_f64().unwrap(),
                    r["val_loss"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(losses(&one), losses(&four));
}

#[test]
fn the_language_model_sweeps_on_a_split_of_its_training_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "sweep",
        "--model",
        "llama-tiny",
        "--steps",
        "4",
        "--eval-every",
        "2",
        "--seeds",
        "1",
        "--lrs",
        "1e-3,3e-3",
        "--out",
        out,
        "--json",
    ];
    let v = json(&succeeds(&args));
    assert_eq!(v["model"], "llama");
    assert_eq!(v["test_metric"], "loss");
    assert_eq!(v["test_loss_unit"], "nats per token");
    assert!(
        v["split"].as_str().unwrap().contains("last 10%"),
        "{}",
        v["split"]
    );
    assert_eq!(v["runs"].as_array().unwrap().len(), 4);
    assert!(v["tuned"][0]["test_loss"]["median"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_masked_autoencoder_sweeps_scored_by_its_reconstruction_loss() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let extra = ["--model", "mae", "--lrs", "1e-3,3e-3", "--json"];
    let v = json(&succeeds(&tiny(out, &extra)));
    assert_eq!(v["model"], "mae");
    assert_eq!(v["test_metric"], "loss");
    assert_eq!(
        v["test_loss_unit"],
        "mean squared error on the masked patches"
    );
    assert_eq!(v["runs"].as_array().unwrap().len(), 8);
    assert_eq!(
        v["tuned_lr"],
        serde_json::to_value(argmin_of_runs(&v)).unwrap()
    );
    assert!(v["tuned"][0]["test_loss"]["median"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_grids_and_results_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (lrs, expected) in [
        ("", "is not a number"),
        ("1e-3,,2e-3", "is not a number"),
        ("-1e-3,1e-3", "finite and positive"),
        ("0,1e-3", "finite and positive"),
        ("nan,1e-3", "finite and positive"),
        ("1e-3,inf", "finite and positive"),
        ("1e-3", "at least two distinct"),
        ("1e-3,1e-3", "at least two distinct"),
    ] {
        let err = fails(&tiny(out, &["--lrs", lrs]));
        assert!(err.contains(expected), "--lrs {lrs:?}: {err}");
    }
    let results = dir.path().join("runs.jsonl");
    std::fs::write(&results, "{\"optimizer\": \"adamw\"}\n").unwrap();
    let err = fails(&tiny(out, &["--lrs", "1e-3,2e-3"]));
    assert!(
        err.contains("runs.jsonl line 1: not a sweep run record"),
        "{err}"
    );

    std::fs::remove_file(&results).unwrap();
    succeeds(&tiny(out, &["--lrs", "1e-3,2e-3", "--max-runs", "1"]));
    let err = fails(&tiny(out, &["--lrs", "1e-3,2e-3", "--weight-decay", "0.5"]));
    assert!(err.contains("holds adamw runs of another sweep"), "{err}");
    assert_eq!(lines(&results).len(), 1, "the refused sweep wrote nothing");
}

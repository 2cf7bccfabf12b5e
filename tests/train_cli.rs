//! The `coptim train` and `coptim compare` commands end to end, on tiny budgets.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

mod common;

use common::cli::{coptim, fails, json, stderr, succeeds};
use coptim::train::{ModelSpec, OptimizerKind, Session, TrainConfig};

#[test]
fn compare_json_has_the_documented_shape_and_files() {
    let (dir, v) = run_json(&[
        "compare",
        "--steps",
        "6",
        "--seeds",
        "1",
        "--batch-size",
        "32",
    ]);
    assert_eq!(v["model"], "mlp");
    assert_eq!(v["dataset"], "bundled-mnist");
    assert_eq!(v["steps"], 6);
    assert_eq!(v["pair"], serde_json::json!(["adamw", "c-adamw"]));
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert!(v["speedup"]["median"].is_number() || v["speedup"]["median"].is_null());
    for f in ["metrics.csv", "summary.json", "curves.png", "curves.svg"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
}

/// Four MNIST-format files of `train` + `test` random 28x28 digits from `seed`.
fn write_mnist_dir(dir: &Path, seed: u8, train: usize, test: usize) {
    use coptim::data::idx::encode_idx;
    let pixels = |n: usize, salt: u8| -> Vec<u8> {
        (0..n * 784)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ salt))
            .collect()
    };
    let labels =
        |n: usize| -> Vec<u8> { (0..n).map(|i| ((i + seed as usize) % 10) as u8).collect() };
    let files = [
        (
            "train-images-idx3-ubyte",
            encode_idx(&[train, 28, 28], &pixels(train, 1)),
        ),
        (
            "train-labels-idx1-ubyte",
            encode_idx(&[train], &labels(train)),
        ),
        (
            "t10k-images-idx3-ubyte",
            encode_idx(&[test, 28, 28], &pixels(test, 2)),
        ),
        ("t10k-labels-idx1-ubyte", encode_idx(&[test], &labels(test))),
    ];
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A tiny `coptim train` (3 steps of 16 samples) with `extra` arguments after.
fn tiny_train<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [&["train", "--steps", "3", "--batch-size", "16"][..], extra].concat()
}

/// `coptim train` with SGD at a learning rate that makes the loss non-finite
/// within its 30 steps, with `extra` arguments after.
fn train_until_it_diverges(extra: &[&str]) -> Output {
    let diverging = [
        "train",
        "--optimizer",
        "sgd",
        "--lr",
        "1e30",
        "--steps",
        "30",
    ];
    coptim(&[&diverging[..], extra].concat())
}

/// Runs `coptim args --json --out DIR` into a fresh directory, which must succeed;
/// returns the directory and the JSON printed.
fn run_json(args: &[&str]) -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let v = json(&succeeds(&[args, &["--json", "--out", out]].concat()));
    (dir, v)
}

/// The columns of `metrics.csv` that do not depend on timing.
fn untimed_columns(dir: &Path) -> Vec<Vec<String>> {
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    csv.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != 6)
                .map(|(_, c)| c.to_string())
                .collect()
        })
        .collect()
}

#[test]
fn resume_continues_a_run_stopped_mid_way_exactly() {
    let (straight, v) = run_json(&["train", "--steps", "6", "--batch-size", "32"]);

    // The same run (the CLI's defaults) stopped after 3 of its 6 steps.
    let resumed = tempfile::tempdir().unwrap();
    let ctx = coptim::GpuContext::new_blocking(&Default::default()).unwrap();
    let mut config =
        TrainConfig::for_model(ModelSpec::default_mlp(), OptimizerKind::C_ADAMW).with_steps(6);
    config.batch_size = 32;
    let data = Arc::new(coptim::data::bundled_mnist().unwrap());
    let mut session = Session::new(&ctx, config, data).unwrap();
    for _ in 0..3 {
        session.step().unwrap();
        session.wait().unwrap();
    }
    session
        .save_checkpoint(resumed.path().join("checkpoint.safetensors"))
        .unwrap();

    let resumed_out = resumed.path().to_str().unwrap();
    let o = succeeds(&["train", "--resume", "--json", "--out", resumed_out]);
    assert!(stderr(&o).contains("from step 3 of 6"), "{}", stderr(&o));
    let w = json(&o);
    assert_eq!(w["steps_completed"], 6);
    assert_eq!(w["test_accuracy"], v["test_accuracy"]);
    assert_eq!(w["final_train_loss"], v["final_train_loss"]);
    assert_eq!(
        untimed_columns(resumed.path()),
        untimed_columns(straight.path())
    );
    assert_eq!(untimed_columns(resumed.path()).len(), 7);
}

#[test]
fn resume_refuses_other_data_and_flags_it_would_ignore() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    write_mnist_dir(&a, 1, 64, 16);
    write_mnist_dir(&b, 2, 64, 16);
    let out = root.path().join("run");
    let out = out.to_str().unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    succeeds(&[
        "train",
        "--steps",
        "4",
        "--batch-size",
        "16",
        "--checkpoint-every",
        "2",
        "--data",
        a,
        "--out",
        out,
    ]);
    let before = std::fs::read(Path::new(out).join("checkpoint.safetensors")).unwrap();

    let msg = fails(&["train", "--resume", "--data", b, "--out", out]);
    assert!(msg.contains("different data"), "{msg}");
    // The bundled digits are not the run's data either.
    let msg = fails(&["train", "--resume", "--out", out]);
    assert!(msg.contains("different data"), "{msg}");
    let msg = fails(&[
        "train", "--resume", "--data", a, "--lr", "0.5", "--seed", "3", "--out", out,
    ]);
    assert!(msg.contains("--lr") && msg.contains("--seed"), "{msg}");
    assert_eq!(
        std::fs::read(Path::new(out).join("checkpoint.safetensors")).unwrap(),
        before
    );
}

#[test]
fn train_refuses_a_directory_holding_another_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    succeeds(&tiny_train(&["--out", out]));
    let before = std::fs::read(dir.path().join("checkpoint.safetensors")).unwrap();
    let msg = fails(&tiny_train(&["--optimizer", "sgd", "--out", out]));
    assert!(msg.contains("--overwrite"), "{msg}");
    assert_eq!(
        std::fs::read(dir.path().join("checkpoint.safetensors")).unwrap(),
        before
    );
    succeeds(&tiny_train(&["--out", out, "--overwrite", "--json"]));
}

#[test]
fn a_nan_stop_before_any_checkpoint_names_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let o = train_until_it_diverges(&["--batch-size", "16", "--out", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let msg = stderr(&o);
    assert!(msg.contains("not finite"), "{msg}");
    assert!(msg.contains("no checkpoint was written"), "{msg}");
    assert!(!msg.contains("step 0"), "{msg}");
    assert!(!dir.path().join("checkpoint.safetensors").exists());
}

#[test]
fn an_unwritable_output_directory_fails_before_training() {
    // `/proc` exists as a directory that nobody, root included, can create files in.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let msg = fails(&tiny_train(&["--out", "/proc"]));
    assert!(msg.contains("not writable"), "{msg}");
}

#[test]
fn a_later_write_error_does_not_hide_the_training_error() {
    // `metrics.csv` is a directory, so writing it fails after the run diverges.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("metrics.csv")).unwrap();
    let o = train_until_it_diverges(&["--batch-size", "16", "--out", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let msg = stderr(&o);
    assert!(msg.contains("error: training stopped"), "{msg}");
    assert!(
        msg.contains("metrics.csv"),
        "the write error is still reported: {msg}"
    );
}

#[test]
fn compare_accepts_the_documented_pair_forms_and_bounds_seeds() {
    for (pair, names) in [
        (&["adamw,c-adamw"][..], ["adamw", "c-adamw"]),
        (&["sgd", "c-sgd"][..], ["sgd", "c-sgd"]),
        (&["nadamw,cnadamw"][..], ["nadamw", "cnadamw"]),
        (&["laprop", "claprop"][..], ["laprop", "claprop"]),
    ] {
        let base = [
            "compare",
            "--steps",
            "2",
            "--seeds",
            "1",
            "--batch-size",
            "16",
        ];
        let (_, v) = run_json(&[&base[..], &["--pair"], pair].concat());
        assert_eq!(v["pair"], serde_json::json!(names));
    }
    let msg = fails(&["compare", "--pair", "adamw,c-adamw,lion"]);
    assert!(msg.contains("two optimizers"), "{msg}");
    let msg = fails(&["compare", "--seeds", "18446744073709551615"]);
    assert!(!msg.contains("panicked"), "{msg}");
    assert!(msg.contains("--seeds"), "{msg}");
}

#[test]
fn train_takes_every_registered_name() {
    for optimizer in ["cnadamw", "claprop", "cadopt", "cadoptw"] {
        let (_, v) = run_json(&tiny_train(&["--optimizer", optimizer]));
        assert_eq!(v["steps_completed"], 3, "{optimizer}");
        assert_eq!(v["config"]["optimizer"], optimizer);
        assert!(
            v["final_train_loss"].as_f64().unwrap().is_finite(),
            "{optimizer}"
        );
    }
}

#[test]
fn a_timm_alias_writes_the_first_name_and_its_checkpoint_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    succeeds(&[
        "train",
        "--optimizer",
        "cadamw",
        "--steps",
        "2",
        "--batch-size",
        "16",
        "--out",
        out,
        "--checkpoint-every",
        "1",
    ]);
    let bytes = std::fs::read(dir.path().join("checkpoint.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&meta.metadata().as_ref().unwrap()["config"]).unwrap();
    // The spelling checkpoints had before the registry, so theirs still load.
    assert_eq!(config["optimizer"], "c-adamw");
    let o = succeeds(&["train", "--resume", "--json", "--out", out]);
    assert_eq!(json(&o)["steps_completed"], 2);
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let msg = fails(&["train", "--optimizer", "adam"]);
    assert!(msg.contains("unknown optimizer `adam`"), "{msg}");
    for name in ["c-adamw", "cnadamw", "claprop", "sgd"] {
        assert!(msg.contains(name), "{name} listed in {msg}");
    }
    let msg = fails(&["compare", "--data", "/nonexistent-coptim-dir"]);
    assert!(msg.contains("missing file"), "{msg}");
    let o = train_until_it_diverges(&[
        "--checkpoint-every",
        "1",
        "--out",
        tempfile::tempdir().unwrap().path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not finite"), "{}", stderr(&o));
}

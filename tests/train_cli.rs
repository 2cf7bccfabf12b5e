//! The `coptim train` and `coptim compare` commands end to end, on tiny budgets.

use std::process::Command;

fn coptim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coptim"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("the coptim binary runs")
}

#[test]
fn compare_json_has_the_documented_shape_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = coptim(&[
        "compare",
        "--steps",
        "6",
        "--seeds",
        "1",
        "--batch-size",
        "32",
        "--json",
        "--out",
        out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON only");
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

#[test]
fn train_writes_a_checkpoint_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = coptim(&[
        "train",
        "--steps",
        "4",
        "--batch-size",
        "32",
        "--out",
        out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["steps_completed"], 4);
    assert!(dir.path().join("checkpoint.safetensors").exists());
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    let o = coptim(&["train", "--resume", "--out", out, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(w["test_accuracy"], v["test_accuracy"]);
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let o = coptim(&["train", "--optimizer", "adam"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown optimizer `adam`"));
    let o = coptim(&["compare", "--data", "/nonexistent-coptim-dir"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing file"));
    let o = coptim(&[
        "train",
        "--optimizer",
        "sgd",
        "--lr",
        "1e30",
        "--steps",
        "30",
        "--checkpoint-every",
        "1",
        "--out",
        tempfile::tempdir().unwrap().path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not finite"));
}

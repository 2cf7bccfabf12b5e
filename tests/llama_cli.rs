//! `coptim train|compare --model llama` end to end on a small text: the JSON summary's
//! language-model fields, the reports, and bad text input.

use std::path::{Path, PathBuf};

mod common;

use common::cli::{coptim, fails, json, stderr, succeeds};

/// Runs `coptim args`, which must succeed; returns its stdout as JSON.
fn succeeds_json(args: &[&str]) -> serde_json::Value {
    json(&succeeds(args))
}

/// Writes `text` to `name` in `dir`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A fresh directory holding `small.txt` (the small text), and the path `out` in it;
/// returns the directory (kept alive by the caller), the text's path and `out`'s path.
fn small_text_run(out: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "small.txt", &small_text());
    let out = dir.path().join(out);
    (dir, text, out)
}

/// A small text of about 6 KB (two vocabularies' worth of characters).
fn small_text() -> String {
    (0..120)
        .map(|i| format!("line {i}: the cat sat on the mat.\n"))
        .collect()
}

/// The arguments of the command line `template`, split at spaces, with each `{}`
/// replaced by the next of `values` (whole: a path holding a space stays one argument).
fn args<'a>(template: &'a str, values: &[&'a str]) -> Vec<&'a str> {
    let mut values = values.iter();
    let out = template
        .split(' ')
        .map(|word| match word {
            "{}" => *values.next().expect("a value for each {}"),
            _ => word,
        })
        .collect();
    assert!(values.next().is_none(), "a {{}} for each value");
    out
}

/// A path as an argument.
fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A tiny budget on `text` (the preset's model, 3 steps of 4 windows).
fn tiny<'a>(command: &'a str, text: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut line = vec![command];
    line.extend(args(
        "--model llama --text {} --steps 3 --batch-size 4 --out {} --json",
        &[text, out],
    ));
    line
}

#[test]
fn compare_llama_reports_validation_losses_and_the_bigram_yardstick() {
    let (_dir, text, out) = small_text_run("cmp");
    let (text, out_s) = (arg(&text), arg(&out));
    let v = succeeds_json(&[&tiny("compare", text, out_s)[..], &["--seeds", "1"]].concat());
    assert_eq!(v["model"], "llama");
    assert_eq!(v["dataset"], text);
    let bigram = v["bigram_val_loss"].as_f64().unwrap();
    assert!(bigram > 0.0 && bigram < (20f64).ln(), "{bigram}");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        let val = r["val_loss"].as_f64().unwrap();
        let bpc = r["val_bits_per_char"].as_f64().unwrap();
        assert!((bpc - val / std::f64::consts::LN_2).abs() < 1e-9);
        assert!(r["tokens_per_s"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(v["config"]["clip_grad_norm"], 1.0);
    assert_eq!(v["config"]["weight_decay"], 0.0);
    for f in ["metrics.csv", "summary.json", "curves.png", "curves.svg"] {
        assert!(out.join(f).exists(), "{f}");
    }
}

#[test]
fn train_llama_checkpoints_its_vocabulary_and_refuses_other_text() {
    let (dir, text, out) = small_text_run("run");
    let (text_s, out_s) = (arg(&text), arg(&out));
    let v = succeeds_json(&tiny("train", text_s, out_s));
    assert!(v["test_loss"].as_f64().unwrap() > 0.0);
    assert!(v["val_bits_per_char"].as_f64().unwrap() > 0.0);
    // Sampling continues the prompt with `--length` characters of the vocabulary,
    // the same for the same seed; a prompt character outside it is an error.
    let ckpt = out.join("checkpoint.safetensors");
    let ckpt = arg(&ckpt);
    let sample = |seed: &str| {
        let o = coptim(&[
            "sample", "--from", ckpt, "--prompt", "the c", "--length", "24", "--seed", seed,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let a = sample("1");
    assert!(
        a.starts_with("the c") && a.strip_suffix('\n').unwrap().chars().count() == 5 + 24,
        "{a:?}"
    );
    assert!(a[5..].chars().all(|c| small_text().contains(c)), "{a:?}");
    assert_eq!(a, sample("1"));
    let err = fails(&["sample", "--from", ckpt, "--prompt", "the dog"]);
    assert!(err.contains("'d'") && err.contains("--prompt"), "{err}");
    let err = fails(&args(
        "sample --from {} --prompt the --temperature 0",
        &[ckpt],
    ));
    assert!(err.contains("temperature"), "{err}");
    // Resuming with a text holding a character the checkpoint's vocabulary lacks.
    let other = write(dir.path(), "other.txt", &small_text().replace("cat", "cow"));
    let err = fails(&args(
        "train --resume --out {} --text {}",
        &[out_s, arg(&other)],
    ));
    assert!(
        err.contains("'w'") && err.contains("not in the vocabulary"),
        "{err}"
    );
}

#[test]
fn bad_text_input_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = arg(&out);
    let short = write(dir.path(), "short.txt", "too short for one window\n");
    let err = fails(&tiny("train", arg(&short), out_s));
    assert!(err.contains("fewer than one window"), "{err}");
    let missing = dir.path().join("missing.txt");
    let err = fails(&tiny("train", arg(&missing), out_s));
    assert!(err.contains("missing.txt"), "{err}");
    let binary = dir.path().join("binary.txt");
    std::fs::write(&binary, [0x66, 0x6f, 0xff, 0x6f]).unwrap();
    let err = fails(&tiny("train", arg(&binary), out_s));
    assert!(err.contains("UTF-8"), "{err}");
    let text = write(dir.path(), "small.txt", &small_text());
    let err = fails(&args(
        "train --model mlp --text {} --out {}",
        &[arg(&text), out_s],
    ));
    assert!(err.contains("--text"), "{err}");
    let err = fails(&args(
        "train --model llama --data {} --out {}",
        &[arg(dir.path()), out_s],
    ));
    assert!(err.contains("--text"), "{err}");
}

/// The `param.` tensors of a checkpoint, by name.
fn params_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n.starts_with("param."))
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect();
    out.sort();
    out
}

#[test]
fn init_from_starts_from_the_weights_with_a_fresh_optimizer() {
    let (dir, text, first) = small_text_run("first");
    succeeds_json(&tiny("train", arg(&text), arg(&first)));
    let ckpt = first.join("checkpoint.safetensors");
    // Another text in the same characters; at learning rate 0 the weights stay the
    // checkpoint's, and the run counts its own steps from 1.
    let other = write(dir.path(), "other.txt", &small_text().replace("cat", "mat"));
    let second = dir.path().join("second");
    let v = succeeds_json(&args(
        "train --model llama --init-from {} --text {} --steps 1 --batch-size 4 --lr 0 --out {} --json",
        &[arg(&ckpt), arg(&other), arg(&second)],
    ));
    assert_eq!(v["steps_completed"], 1);
    assert_eq!(
        params_of(&second.join("checkpoint.safetensors")),
        params_of(&ckpt)
    );
    let third = dir.path().join("third");
    let err = fails(&args(
        "train --init-from {} --out {}",
        &[arg(&ckpt), arg(&third)],
    ));
    assert!(err.contains("--model llama"), "{err}");
}

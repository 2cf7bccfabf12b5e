//! `coptim bench --quick --json` runs and prints the documented JSON shape (no timing
//! assertions: speed lives in benchmarks).

use std::process::Command;

use serde_json::Value;

#[test]
fn quick_json_has_the_documented_shape() {
    let doc = run_quick_json();
    check_adapter_and_natives(&doc);
    check_copy_variants(&doc);
    check_results(&doc);
    // The step protocol sits at the top level, as BENCHMARKS.md documents it.
    assert_eq!(doc["warmup"], 1, "--quick: one warm-up step");
    assert_eq!(doc["steps"], 3, "--quick: three timed steps");
    assert_eq!(doc["nonfinite_check"], true);
}

/// Runs `coptim bench --quick --json` and parses its stdout.
fn run_quick_json() -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_coptim"))
        .args(["bench", "--quick", "--json"])
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("run coptim");
    assert!(
        out.status.success(),
        "coptim bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// The adapter, the copy yardstick and the native memcpy baselines.
fn check_adapter_and_natives(doc: &Value) {
    let adapter = &doc["adapter"];
    for key in ["name", "backend", "device_type"] {
        assert!(adapter[key].is_string(), "adapter.{key}");
    }
    assert!(doc["copy_gbps"].is_f64(), "copy_gbps");
    assert!(doc["native_gbps"].as_f64().unwrap() > 0.0, "native_gbps");
    // The steps' yardstick is the engine's own (strided) access.
    assert!(
        doc["copy_variant"]
            .as_str()
            .unwrap()
            .starts_with("strided-"),
        "{}",
        doc["copy_variant"]
    );
    let natives = doc["natives"].as_array().expect("natives is an array");
    let threads: Vec<u64> = natives
        .iter()
        .map(|n| n["threads"].as_u64().unwrap())
        .collect();
    assert_eq!(threads, [1, 2]);
    for n in natives {
        assert!(n["gbps"].as_f64().unwrap() > 0.0, "{n}");
    }
}

/// The copy-kernel variants: both access patterns, with their sizes and speeds.
fn check_copy_variants(doc: &Value) {
    let variants = doc["copy_variants"].as_array().expect("copy_variants");
    for pattern in ["strided", "contiguous"] {
        assert!(
            variants.iter().any(|v| v["pattern"] == pattern),
            "no {pattern} copy variant"
        );
    }
    for v in variants {
        for key in ["wg_size", "vec_per_thread", "bytes"] {
            assert!(v[key].is_u64(), "{key} in {v}");
        }
        for key in ["ms", "gbps", "fraction_of_native"] {
            assert!(v[key].as_f64().unwrap() > 0.0, "{key} in {v}");
        }
    }
}

/// The optimizer step results: every optimizer with and without caution.
fn check_results(doc: &Value) {
    let results = doc["results"].as_array().expect("results is an array");
    // 3 optimizers x caution off/on x (f32, bf16, and f16 where available).
    assert!(results.len() >= 12, "{} results", results.len());
    for r in results {
        assert!(
            ["adamw", "lion", "sgd"].contains(&r["optimizer"].as_str().unwrap()),
            "{r}"
        );
        assert!(r["caution"].is_boolean(), "{r}");
        assert!(
            ["f32", "bf16", "f16"].contains(&r["state_dtype"].as_str().unwrap()),
            "{r}"
        );
        for key in ["params", "tensors", "bytes_per_step"] {
            assert!(r[key].is_u64(), "{key} in {r}");
        }
        for key in [
            "step_ms",
            "gbps",
            "fraction_of_copy",
            "fraction_of_native",
            "native_gbps",
        ] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{key} in {r}");
        }
    }
    for opt in ["adamw", "lion", "sgd"] {
        for caution in [false, true] {
            assert!(
                results
                    .iter()
                    .any(|r| r["optimizer"] == opt && r["caution"] == caution),
                "{opt} caution={caution} missing"
            );
        }
    }
}

#[test]
fn sizes_beyond_the_device_or_memory_are_refused_before_allocating() {
    for params in ["4194304G", "2G"] {
        let out = Command::new(env!("CARGO_BIN_EXE_coptim"))
            .args(["bench", "--params", params, "--steps", "1", "--warmup", "0"])
            .env("NODEVICE_SELECT", "1")
            .output()
            .expect("run coptim");
        assert!(!out.status.success(), "{params} was accepted");
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(msg.contains("limit exceeded"), "{params}: {msg}");
        assert!(!msg.contains("panicked"), "{params}: {msg}");
    }
}

//! `OptimizerConfig::from_timm` against the parameter groups that
//! `timm.optim.create_optimizer_v2` builds (`tests/golden/timm_factory.json`, written by
//! `scripts/golden.py`), and its errors for what coptim cannot build.

use coptim::Error;
use coptim::optim::{Algorithm, DecayMode, OptimizerConfig, timm_names};
use serde_json::{Value, json};

/// Keys of a timm parameter group that coptim does not model, with the only value
/// coptim's behaviour matches (features that are off).
fn not_modelled() -> Vec<(&'static str, Value)> {
    vec![
        ("amsgrad", json!(false)),
        ("maximize", json!(false)),
        ("capturable", json!(false)),
        ("differentiable", json!(false)),
        ("clipping_threshold", Value::Null),
        // torch.optim.AdamW: decay is decoupled, as coptim's always is.
        ("decoupled_weight_decay", json!(true)),
    ]
}

/// Execution-only keys whose value does not matter.
const EXECUTION_ONLY: &[&str] = &["foreach", "fused", "max_lr_snapshot"];

fn fixture() -> Vec<Value> {
    let path = format!(
        "{}/tests/golden/timm_factory.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every (name, kwargs) of the fixture builds the parameter group timm builds: each
/// key coptim models has timm's value, every other key holds the value coptim's
/// behaviour matches.
#[test]
fn from_timm_matches_create_optimizer_v2() {
    let cases = fixture();
    assert!(cases.len() >= 12);
    let others = not_modelled();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let cfg = OptimizerConfig::from_timm(name, &case["kwargs"])
            .unwrap_or_else(|e| panic!("{name} {}: {e}", case["kwargs"]));
        let ours = cfg.timm_group();
        let timm = case["group"].as_object().unwrap();
        for (key, value) in timm {
            let label = format!("{name} {}: `{key}`", case["kwargs"]);
            if let Some(mine) = ours.get(key) {
                assert_eq!(mine, value, "{label}");
            } else if let Some((_, only)) = others.iter().find(|(k, _)| k == key) {
                assert_eq!(value, only, "{label} is not modelled");
            } else {
                assert!(EXECUTION_ONLY.contains(&key.as_str()), "{label} unknown");
            }
        }
        for (key, value) in &ours {
            // torch.optim.AdamW has no `caution` key: it is never cautious.
            let timm_value = timm.get(key).unwrap_or(&Value::Bool(false));
            assert_eq!(value, timm_value, "{name}: coptim's `{key}`");
        }
    }
}

fn invalid(name: &str, kwargs: Value) -> String {
    match OptimizerConfig::from_timm(name, &kwargs) {
        Err(Error::InvalidConfig(msg)) => msg,
        other => panic!("{name} {kwargs}: expected InvalidConfig, got {other:?}"),
    }
}

/// Unknown names and keywords, unsupported values and wrong types are errors that
/// name the culprit; execution-only keywords are accepted.
#[test]
fn from_timm_rejects_what_coptim_cannot_build() {
    assert!(invalid("adamz", json!({})).contains("adamz"));
    assert!(invalid("cadamw", json!({"lr_decay": 0.1})).contains("lr_decay"));
    assert!(invalid("cadamw", json!({"amsgrad": true})).contains("amsgrad"));
    assert!(invalid("adamw", json!({"maximize": true})).contains("maximize"));
    // torch.optim.AdamW (timm `adamw`) takes no `caution`: timm raises a TypeError.
    assert!(invalid("adamw", json!({"caution": true})).contains("caution"));
    assert!(invalid("csgdw", json!({"dampening": 0.5})).contains("dampening"));
    // timm's coupled LAMB ignores corrected decay; coptim says so instead.
    assert!(invalid("lamb", json!({"corrected_weight_decay": true})).contains("corrected"));
    assert!(invalid("clamb", json!({"max_grad_norm": "big"})).contains("max_grad_norm"));
    assert!(invalid("clamb", json!({"max_grad_norm": -1.0})).contains("max_grad_norm"));
    assert!(invalid("cadopt", json!({"clip_exp": "1/3"})).contains("clip_exp"));
    assert!(invalid("adopt", json!({"decoupled": 1})).contains("decoupled"));
    // Adan takes three betas; timm's Adan has no corrected decay.
    assert!(invalid("cadan", json!({"betas": [0.98, 0.92]})).contains("betas"));
    assert!(invalid("adan", json!({"betas": [0.98, 0.92, 1.0]})).contains("beta3"));
    assert!(invalid("adanw", json!({"corrected_weight_decay": true})).contains("corrected"));
    assert!(invalid("adan", json!({"no_prox": "yes"})).contains("no_prox"));
    assert!(invalid("lion", json!({"betas": [0.9]})).contains("betas"));
    assert!(invalid("lion", json!({"lr": "fast"})).contains("lr"));
    assert!(invalid("lion", json!([1e-3])).contains("not an object"));
    assert!(invalid("cadamw", json!({"betas": [1.0, 0.999]})).contains("beta1"));
    assert!(invalid("cmars", json!({"mars_type": "sgd"})).contains("mars_type"));
    assert!(invalid("mars", json!({"mars_type": 1})).contains("mars_type"));
    assert!(invalid("mars", json!({"betas_1d": [0.9]})).contains("betas_1d"));
    assert!(invalid("mars", json!({"betas_1d": [0.9, 1.5]})).contains("beta2_1d"));
    assert!(invalid("mars", json!({"gamma": -0.1})).contains("gamma"));
    // timm's Mars takes no corrected decay: timm raises a TypeError.
    assert!(invalid("cmars", json!({"corrected_weight_decay": true})).contains("corrected"));
    let cfg = OptimizerConfig::from_timm(
        "CAdamW",
        &json!({"foreach": true, "fused": null, "capturable": false, "differentiable": false,
                "maximize": false, "dampening": 0, "lr": null}),
    );
    assert!(cfg.is_err(), "cadamw has no `dampening`");
    let cfg = OptimizerConfig::from_timm(
        "CAdamW",
        &json!({"foreach": true, "capturable": false, "maximize": false, "lr": null}),
    )
    .unwrap();
    assert_eq!(cfg.lr, 1e-3);
    assert!(cfg.caution.is_on());
}

/// The `InvalidConfig` message of a configuration that must not validate.
fn rejected(cfg: &OptimizerConfig) -> String {
    match cfg.validate() {
        Err(Error::InvalidConfig(msg)) => msg,
        other => panic!("{cfg:?}: expected InvalidConfig, got {other:?}"),
    }
}

/// Cautious weight decay gates a decoupled decay: ADOPT's coupled decay (into the
/// gradient) has none to gate, its decoupled one does; a clip exponent must be finite.
#[test]
fn adopt_options_are_checked() {
    let build =
        |name: &str| OptimizerConfig::from_timm(name, &json!({"weight_decay": 0.1})).unwrap();
    let coupled = build("cadopt").with_decay(DecayMode::CAUTIOUS);
    assert!(rejected(&coupled).contains("decoupled"));
    build("cadoptw")
        .with_decay(DecayMode::CAUTIOUS)
        .validate()
        .unwrap();
    let mut cfg = build("adopt");
    let Algorithm::Adopt(adopt) = &mut cfg.algorithm else {
        panic!("timm `adopt` is ADOPT")
    };
    adopt.clip_exp = Some(f64::INFINITY);
    assert!(rejected(&cfg).contains("clip_exp"));
}

/// Every registered name builds with timm's defaults.
#[test]
fn every_timm_name_builds_with_defaults() {
    let names: Vec<&str> = timm_names().collect();
    for required in ["adamw", "cadamw", "lion", "clion", "sgdw", "csgdw"] {
        assert!(names.contains(&required), "{required} is not registered");
    }
    for name in names {
        let cfg = OptimizerConfig::from_timm(name, &json!({})).unwrap();
        assert_eq!(cfg.caution.is_on(), name.starts_with('c'), "{name}");
    }
}

/// AdamP's and SGDP's own keywords out of range, and what they do not take, are errors
/// that name the keyword.
#[test]
fn from_timm_rejects_bad_projection_keywords() {
    assert!(invalid("cadamp", json!({"delta": 0.0})).contains("delta"));
    assert!(invalid("adamp", json!({"wd_ratio": -0.5})).contains("wd_ratio"));
    assert!(invalid("adamp", json!({"corrected_weight_decay": true})).contains("corrected"));
    assert!(invalid("csgdp", json!({"dampening": 0.5})).contains("dampening"));
    // SGDP divides its decay by 1 - momentum.
    assert!(invalid("sgdp", json!({"momentum": 1.0})).contains("momentum"));
    assert!(invalid("sgdp", json!({"eps": 0.0})).contains("eps"));
}

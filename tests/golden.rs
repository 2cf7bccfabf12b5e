//! The GPU optimizers and the f64 reference against golden vectors produced by the
//! reference PyTorch implementations (`scripts/golden.py`, `tests/golden/README.md`).

mod common;

use std::collections::HashMap;

use common::*;
use coptim::optim::{
    AdamW, Algorithm, Caution, DecayMode, EpsStyle, Lamb, Lion, LrSchedule, NonFinite,
    Normalization, OptimizerConfig, ReferenceOptimizer, Sgd,
};
use coptim::stream::StreamShape;
use coptim::{GpuContext, ParamStore, TensorId};

/// Per tensor, max |coptim - torch| / max |torch| over every step. Both sides are f32;
/// torch's CPU kernels fuse some multiply-adds and compute bias corrections in f64,
/// coptim keeps them as f32 recurrences, so last-bit differences of a few ulps
/// (about 1e-7 relative) accumulate over 6 steps.
const TOL: f64 = 1e-6;

struct Case {
    name: String,
    meta: HashMap<String, String>,
    tensors: HashMap<String, Vec<f32>>,
    shapes: Vec<Vec<usize>>,
}

/// `tests/golden` of the checkout: under the crate root when cargo runs the test,
/// relative to the working directory when the executable runs on its own (the GPU
/// kit of `scripts/device-check.sh` runs it from a copy of the repository root).
fn golden_dir() -> String {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    format!("{root}/tests/golden")
}

fn load(name: &str) -> Case {
    let path = format!("{}/{name}.safetensors", golden_dir());
    let (meta, tensors) = common::read_safetensors::<f32>(&path);
    let shapes: Vec<Vec<usize>> = serde_json::from_str(&meta["shapes"]).unwrap();
    Case {
        name: name.into(),
        meta,
        tensors,
        shapes,
    }
}

/// The case's learning-rate schedule (constant unless its metadata names one).
fn schedule(case: &Case) -> LrSchedule {
    case.meta
        .get("schedule")
        .map(|s| serde_json::from_str(s).unwrap())
        .unwrap_or_default()
}

/// The case's configuration: through timm's factory when the case names its timm name
/// and keywords (then its schedule), otherwise from the hyperparameters in its metadata.
fn config(case: &Case) -> OptimizerConfig {
    if let Some(name) = case.meta.get("timm_name") {
        let kwargs: serde_json::Value = serde_json::from_str(&case.meta["timm_kwargs"]).unwrap();
        return OptimizerConfig::from_timm(name, &kwargs)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name))
            .with_schedule(schedule(case));
    }
    let f = |k: &str| case.meta[k].parse::<f64>().unwrap();
    let flag = |k: &str| case.meta.get(k).is_some_and(|v| v == "true");
    let algorithm = match case.meta["optimizer"].as_str() {
        "adamw" => Algorithm::AdamW(AdamW {
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            eps_style: EpsStyle::Torch,
        }),
        "lion" => Algorithm::Lion(Lion {
            beta1: f("beta1"),
            beta2: f("beta2"),
        }),
        "sgd" => Algorithm::Sgd(Sgd {
            momentum: f("momentum"),
            nesterov: case.meta["nesterov"] == "true",
        }),
        "lamb" => Algorithm::Lamb(Lamb {
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            decoupled: flag("decoupled"),
            trust_clip: flag("trust_clip"),
            always_adapt: flag("always_adapt"),
            grad_averaging: flag("grad_averaging"),
            bias_correction: flag("bias_correction"),
            max_grad_norm: case.meta["max_grad_norm"].parse().ok(),
        }),
        other => panic!("unknown optimizer {other}"),
    };
    let caution = match case.meta["caution"].as_str() {
        "off" => Caution::Off,
        "mean_clamp" => Caution::hard(),
        "numel_over_count_plus_one" => Caution::Hard {
            normalization: Normalization::NumelOverCountPlusOne,
        },
        other => panic!("unknown caution {other}"),
    };
    let mut cfg = OptimizerConfig::new(algorithm, f("lr"))
        .with_caution(caution)
        .with_weight_decay(f("weight_decay"))
        .with_schedule(schedule(case))
        .with_decay(DecayMode {
            cautious: flag("cautious_weight_decay"),
            corrected: flag("corrected_weight_decay"),
        });
    cfg.non_finite = NonFinite::SkipStep;
    cfg
}

/// Every golden case: the `.safetensors` files in `tests/golden`.
fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".safetensors").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 11, "golden cases missing: {names:?}");
    names
}

/// Every case on every stream shape (the adapter's own and the others, forced).
#[test]
fn gpu_matches_pytorch_golden_vectors() {
    for shape in StreamShape::ALL {
        let ctx = ctx().with_stream_shape(shape);
        for name in cases() {
            gpu_case_matches(&ctx, &name);
        }
    }
}

fn gpu_case_matches(ctx: &GpuContext, name: &str) {
    let case = load(name);
    let shapes = named_shapes(case.shapes.clone());
    let store = ParamStore::new(ctx, &shapes).unwrap();
    for i in 0..shapes.len() {
        store
            .params
            .write(ctx, TensorId(i), &case.tensors[&format!("param.{i}.init")])
            .unwrap();
    }
    let cfg = config(&case);
    let mut opt = coptim::Optimizer::new(ctx, &store, cfg.clone()).unwrap();
    let steps: usize = case.meta["steps"].parse().unwrap();
    let mut worst: f64 = 0.0;
    for s in 1..=steps {
        for i in 0..shapes.len() {
            store
                .grads
                .write(ctx, TensorId(i), &case.tensors[&format!("grad.{s}.{i}")])
                .unwrap();
        }
        opt.step_blocking().unwrap();
        let got = store.params.read_all_blocking(ctx).unwrap();
        for (i, g) in got.iter().enumerate() {
            let want = to_f64(&case.tensors[&format!("param.{i}.step{s}")]);
            let e = rel_err(&to_f64(g), &want);
            worst = worst.max(e);
            assert!(
                e <= TOL,
                "{}: step {s} tensor {i}: relative error {e:e}",
                case.name
            );
        }
    }
    for (k, key) in cfg.algorithm.state_names().iter().enumerate() {
        let got = opt.state()[k].read_all_blocking(ctx).unwrap();
        for (i, g) in got.iter().enumerate() {
            let want = to_f64(&case.tensors[&format!("state.{key}.{i}")]);
            let e = rel_err(&to_f64(g), &want);
            assert!(
                e <= TOL,
                "{}: state {key} tensor {i}: relative error {e:e}",
                case.name
            );
        }
    }
    eprintln!("{}: max relative error {worst:.2e}", case.name);
}

#[test]
fn reference_matches_pytorch_golden_vectors() {
    for name in cases() {
        let case = load(&name);
        let tensors = named_shapes(case.shapes.clone());
        let mut reference = ReferenceOptimizer::with_shapes(config(&case), &tensors).unwrap();
        let mut params: Vec<Vec<f64>> = (0..tensors.len())
            .map(|i| to_f64(&case.tensors[&format!("param.{i}.init")]))
            .collect();
        let steps: usize = case.meta["steps"].parse().unwrap();
        for s in 1..=steps {
            let grads: Vec<Vec<f64>> = (0..tensors.len())
                .map(|i| to_f64(&case.tensors[&format!("grad.{s}.{i}")]))
                .collect();
            reference.step(&mut params, &grads).unwrap();
            for (i, p) in params.iter().enumerate() {
                let want = to_f64(&case.tensors[&format!("param.{i}.step{s}")]);
                let e = rel_err(p, &want);
                assert!(
                    e <= TOL,
                    "{}: reference step {s} tensor {i}: relative error {e:e}",
                    case.name
                );
            }
        }
    }
}

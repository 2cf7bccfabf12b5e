//! The f64 reference of the Adafactor family (`coptim::optim::adafactor_reference`)
//! against golden vectors of timm's `Adafactor` and `AdafactorBigVision` and of
//! C-Optim's c_adafactor.py (`scripts/golden_adafactor.py`, `tests/golden/adafactor/`):
//! params after steps 1, 3 (tensor 3's gradient all zero) and 5, and every state
//! tensor after step 5, on golden.py's six tensors plus a square, a wide, a tall, a
//! one-row and a 4-D one; the same replay drives the GPU optimizer
//! (`coptim::optim::adafactor`) at the same tolerances.

mod common;
mod support;

use std::collections::HashMap;

use common::{ctx, golden_store, rel_err, replay_step};
use coptim::optim::adafactor::AdafactorOptimizer;
use coptim::optim::adafactor_reference::{
    AdafactorRule, AdafactorState, BigVisionAdafactor, TimmAdafactor,
};
use coptim::optim::factored::Factoring;
use coptim::optim::{Caution, Normalization};
use coptim::{GpuContext, ParamStore, TensorId};
use safetensors::SafeTensors;
use serde_json::Value;
use support::clipped_step;

/// Per tensor, max |f64 reference - reference| / max |reference|. The references run
/// in f32: each op rounds to about 6e-8, and the factored means, the RMS and the
/// relative step's RMS(p) sum up to 1,224 terms (torch sums pairwise), so the f32
/// results sit a few 1e-7 from exact after 5 steps.
const TOL: f64 = 1e-6;
/// The same for big_vision's bf16 momentum: the f64 reference rounds the momentum to
/// bf16 as torch does, but a momentum whose exact value lies within torch's f32
/// rounding of a bf16 rounding boundary can land one bf16 ulp (2^-8 relative) away,
/// which moves that coordinate by lr * 2^-8 * |m|: at lr 1e-2 and |m| <= 1 under 4e-5
/// of a unit parameter. (Measured: 5.7e-6, in the params of the tall and the 4-D
/// tensor after step 5 only; their states agree within 1e-6 again.)
const BF16_TOL: f64 = 4e-5;

/// The GPU's bf16 momentum against torch's: one bf16 ulp (2^-8 of a value in
/// [1, 2), so at most 2^-7 of the largest |m|). The GPU's f32 update differs from
/// torch's by a few f32 ulps (another summation order of the means and RMS), which
/// sends a momentum lying that close to a bf16 rounding boundary to the other side.
/// Measured: 5.6e-3 (a handful of coordinates); the params it moves stay within
/// BF16_TOL (measured 2.4e-5).
const BF16_STATE_TOL: f64 = 1.0 / 128.0;

struct Golden {
    meta: HashMap<String, String>,
    tensors: HashMap<String, Vec<f64>>,
}

fn load(name: &str) -> Golden {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let bytes = std::fs::read(format!("{root}/tests/golden/adafactor/{name}.safetensors")).unwrap();
    let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let f: Vec<f32> = bytemuck::pod_collect_to_vec(v.data());
            (n, f.iter().map(|&x| x as f64).collect())
        })
        .collect();
    Golden {
        meta: metadata.metadata().clone().unwrap_or_default(),
        tensors,
    }
}

/// The rule a case's reference and keywords describe.
fn rule(meta: &HashMap<String, String>) -> AdafactorRule {
    let kw: Value = serde_json::from_str(&meta["kwargs"]).unwrap();
    let f = |k: &str| kw.get(k).and_then(Value::as_f64);
    match meta["reference"].as_str() {
        "timm.Adafactor" => AdafactorRule::Timm(TimmAdafactor {
            lr: f("lr"),
            beta1: kw.get("betas").map(|b| b[0].as_f64().unwrap()),
            weight_decay: f("weight_decay").unwrap_or(0.0),
            warmup_init: kw.get("warmup_init").is_some_and(|w| w == true),
            factoring: Factoring::Timm {
                min_dim_size: f("min_dim_size_to_factor").unwrap_or(16.0) as usize,
            },
            ..TimmAdafactor::timm()
        }),
        "C-Optim.Adafactor" => AdafactorRule::Timm(TimmAdafactor {
            beta1: f("beta1"),
            weight_decay: f("weight_decay").unwrap_or(0.0),
            ..TimmAdafactor::coptim()
        }),
        "timm.AdafactorBigVision" => AdafactorRule::BigVision(BigVisionAdafactor {
            lr: f("lr").unwrap(),
            weight_decay: f("weight_decay").unwrap_or(0.0),
            clipping_threshold: f("clipping_threshold"),
            ..BigVisionAdafactor::default()
        }),
        other => panic!("unknown reference {other}"),
    }
}

fn caution(meta: &HashMap<String, String>) -> Caution {
    match meta["caution"].as_str() {
        "off" => Caution::Off,
        "mean_clamp" => Caution::hard(),
        "numel_over_count_plus_one" => Caution::Hard {
            normalization: Normalization::NumelOverCountPlusOne,
        },
        other => panic!("unknown caution {other}"),
    }
}

/// The state tensors under timm's keys (big_vision names its rows and columns `_r`
/// and `_c`).
fn state_tensors(rule: &AdafactorRule, s: &AdafactorState) -> Vec<(&'static str, Vec<f64>)> {
    let (row, col) = match rule {
        AdafactorRule::Timm(_) => ("exp_avg_sq_row", "exp_avg_sq_col"),
        AdafactorRule::BigVision(_) => ("exp_avg_sq_r", "exp_avg_sq_c"),
    };
    [
        ("exp_avg", &s.exp_avg),
        (row, &s.exp_avg_sq_row),
        (col, &s.exp_avg_sq_col),
        ("exp_avg_sq", &s.exp_avg_sq),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k, v.clone()))
    .collect()
}

/// An optimizer under test: the f64 reference or the GPU module.
trait Stepper {
    /// One step of every tensor; returns the params after it.
    fn step(&mut self, grads: &[Vec<f64>]) -> Vec<Vec<f64>>;
    /// Every tensor's state.
    fn states(&self) -> Vec<AdafactorState>;
}

struct Reference {
    rule: AdafactorRule,
    caution: Caution,
    shapes: Vec<Vec<usize>>,
    params: Vec<Vec<f64>>,
    states: Vec<AdafactorState>,
}

impl Stepper for Reference {
    fn step(&mut self, grads: &[Vec<f64>]) -> Vec<Vec<f64>> {
        for (i, shape) in self.shapes.iter().enumerate() {
            let (p, s) = (&mut self.params[i], &mut self.states[i]);
            self.rule.step(s, shape, p, &grads[i], self.caution);
        }
        self.params.clone()
    }

    fn states(&self) -> Vec<AdafactorState> {
        self.states.clone()
    }
}

struct Gpu {
    ctx: GpuContext,
    store: ParamStore,
    opt: AdafactorOptimizer,
}

impl Stepper for Gpu {
    fn step(&mut self, grads: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let opt = &mut self.opt;
        replay_step(&self.ctx, &self.store, grads, |encoder| {
            opt.record_step(encoder).unwrap()
        })
    }

    fn states(&self) -> Vec<AdafactorState> {
        (0..self.store.layout().num_tensors())
            .map(|i| pollster::block_on(self.opt.read_state(i)).unwrap())
            .collect()
    }
}

/// A golden case: the shared inputs, the case's file and its rule.
struct Case {
    inputs: Golden,
    shapes: Vec<Vec<usize>>,
    golden: Golden,
    rule: AdafactorRule,
    caution: Caution,
}

impl Case {
    fn load(name: &str) -> Self {
        let inputs = load("inputs");
        let shapes = serde_json::from_str(&inputs.meta["shapes"]).unwrap();
        let golden = load(name);
        let (rule, caution) = (rule(&golden.meta), caution(&golden.meta));
        rule.validate(caution).unwrap();
        Self {
            inputs,
            shapes,
            golden,
            rule,
            caution,
        }
    }

    fn start(&self) -> Start<'_> {
        Start {
            rule: self.rule,
            caution: self.caution,
            shapes: &self.shapes,
            inits: (0..self.shapes.len())
                .map(|i| self.inputs.tensors[&format!("param.{i}.init")].clone())
                .collect(),
        }
    }

    /// The gradients of step `s`.
    fn grads(&self, s: i32) -> Vec<Vec<f64>> {
        (0..self.shapes.len())
            .map(|i| self.inputs.tensors[&format!("grad.{s}.{i}")].clone())
            .collect()
    }
}

/// What a case starts from.
struct Start<'a> {
    rule: AdafactorRule,
    caution: Caution,
    shapes: &'a [Vec<usize>],
    inits: Vec<Vec<f64>>,
}

fn reference(start: Start<'_>) -> Box<dyn Stepper> {
    Box::new(Reference {
        states: start
            .shapes
            .iter()
            .map(|s| start.rule.init_state(s))
            .collect(),
        rule: start.rule,
        caution: start.caution,
        shapes: start.shapes.to_vec(),
        params: start.inits,
    })
}

fn gpu(start: Start<'_>) -> Box<dyn Stepper> {
    Box::new(gpu_stepper(start))
}

fn gpu_stepper(start: Start<'_>) -> Gpu {
    let ctx = ctx();
    let store = golden_store(&ctx, start.shapes, &start.inits);
    let opt = AdafactorOptimizer::new(&ctx, &store, start.rule, start.caution).unwrap();
    Gpu { ctx, store, opt }
}

/// The largest errors of a case.
#[derive(Debug, Default)]
struct Errors {
    /// Over big_vision's bf16 momentum.
    bf16_momentum: f64,
    /// Over the params and every other state.
    rest: f64,
}

impl Errors {
    fn max(&self) -> f64 {
        self.bf16_momentum.max(self.rest)
    }
}

/// Runs one case through the optimizer `make` builds.
fn run(name: &str, make: fn(Start<'_>) -> Box<dyn Stepper>) -> Errors {
    let case = Case::load(name);
    let (inputs, golden, rule) = (&case.inputs, &case.golden, case.rule);
    let steps: i32 = inputs.meta["steps"].parse().unwrap();
    let snapshots: Vec<i32> = serde_json::from_str(&golden.meta["snapshots"]).unwrap();
    let mut opt = make(case.start());
    let bf16 = matches!(rule, AdafactorRule::BigVision(a) if a.momentum_bf16);
    let mut errors = Errors::default();
    let mut check = |what: String, ours: &[f64]| {
        let err = rel_err(ours, &golden.tensors[&what]);
        if bf16 && what.starts_with("state.exp_avg.") {
            errors.bf16_momentum = errors.bf16_momentum.max(err);
        } else {
            errors.rest = errors.rest.max(err);
        }
    };
    for s in 1..=steps {
        let params = opt.step(&case.grads(s));
        for (i, p) in params.iter().enumerate().filter(|_| snapshots.contains(&s)) {
            check(format!("param.{i}.step{s}"), p);
        }
    }
    for (i, state) in opt.states().iter().enumerate() {
        assert_eq!(state.step, steps, "{name}: steps of state {i}");
        let ours = state_tensors(&rule, state);
        let keys = golden
            .tensors
            .keys()
            .filter(|k| k.ends_with(&format!(".{i}")));
        assert_eq!(
            keys.filter(|k| k.starts_with("state.")).count(),
            ours.len(),
            "{name}: state {i}"
        );
        for (key, v) in ours {
            check(format!("state.{key}.{i}"), &v);
        }
    }
    println!("{name}: max error {errors:?}");
    errors
}

const TIMM_CASES: [&str; 4] = [
    "timm_adafactor",
    "timm_adafactor_lr",
    "timm_cadafactor",
    "timm_cadafactor_warmup",
];
const BV_CASES: [&str; 2] = ["timm_adafactorbv", "timm_cadafactorbv"];

/// Runs each of `cases` through `make` and checks its largest error against `tol`.
fn assert_cases<'a>(
    cases: impl IntoIterator<Item = &'a str>,
    make: fn(Start<'_>) -> Box<dyn Stepper>,
    tol: f64,
) {
    for case in cases {
        let err = run(case, make).max();
        assert!(err <= tol, "{case}: {err:e}");
    }
}

#[test]
fn timm_adafactor_matches() {
    assert_cases(TIMM_CASES, reference, TOL);
}

#[test]
fn coptim_cadafactor_matches() {
    assert_cases(["coptim_cadafactor"], reference, TOL);
}

#[test]
fn timm_adafactor_big_vision_matches() {
    assert_cases(BV_CASES, reference, BF16_TOL);
}

#[test]
fn gpu_matches_timm_and_coptim() {
    assert_cases(
        TIMM_CASES.into_iter().chain(["coptim_cadafactor"]),
        gpu,
        TOL,
    );
}

#[test]
fn gpu_matches_timm_big_vision() {
    for case in BV_CASES {
        let err = run(case, gpu);
        assert!(err.rest <= BF16_TOL, "{case}: {err:?}");
        assert!(err.bf16_momentum <= BF16_STATE_TOL, "{case}: {err:?}");
    }
}

#[test]
fn gpu_rejects_caution_without_a_first_moment() {
    let ctx = ctx();
    let store = ParamStore::new(&ctx, &[("w", vec![20, 20])]).unwrap();
    let rule = AdafactorRule::Timm(TimmAdafactor::timm());
    let err = AdafactorOptimizer::new(&ctx, &store, rule, Caution::hard()).unwrap_err();
    assert!(matches!(err, coptim::Error::InvalidConfig(_)), "{err}");
    let opt = AdafactorOptimizer::new(&ctx, &store, rule, Caution::Off).unwrap();
    assert!(pollster::block_on(opt.read_state(1)).is_err());
}

/// The params of `gpu` as f32 bits.
fn param_bits(gpu: &Gpu) -> Vec<Vec<u32>> {
    let params = gpu.store.params.read_all_blocking(&gpu.ctx).unwrap();
    params
        .iter()
        .map(|p| p.iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// A state file's tensors and metadata, in name order (the metadata's order in the
/// header is a hash map's).
fn contents(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    let file = SafeTensors::deserialize(bytes).unwrap();
    out.extend(
        file.tensors()
            .into_iter()
            .map(|(n, v)| (n, v.data().to_vec())),
    );
    out.sort();
    out
}

/// The state file of `gpu`, as [`contents`].
fn saved(gpu: &Gpu) -> Vec<(String, Vec<u8>)> {
    contents(&pollster::block_on(gpu.opt.state_bytes()).unwrap())
}

#[test]
fn gpu_state_resumes_bit_for_bit() {
    // bf16 momentum of odd lengths, factored and full moments, no first moment.
    for name in ["timm_cadafactorbv", "coptim_cadafactor", "timm_adafactor"] {
        let case = Case::load(name);
        let mut first = gpu_stepper(case.start());
        for s in 1..=3 {
            first.step(&case.grads(s));
        }
        let bytes = pollster::block_on(first.opt.state_bytes()).unwrap();
        let mut resumed = gpu_stepper(case.start());
        resumed.opt.load_state_bytes(&bytes, "saved").unwrap();
        assert_eq!(resumed.opt.steps(), 3, "{name}");
        let params = first.store.params.read_all_blocking(&first.ctx).unwrap();
        for (i, p) in params.iter().enumerate() {
            resumed
                .store
                .params
                .write(&resumed.ctx, TensorId(i), p)
                .unwrap();
        }
        for s in 4..=5 {
            first.step(&case.grads(s));
            resumed.step(&case.grads(s));
        }
        assert!(param_bits(&first) == param_bits(&resumed), "{name}: params");
        assert!(saved(&first) == saved(&resumed), "{name}: states");
    }
}

#[test]
fn gpu_state_of_another_optimizer_is_rejected_unchanged() {
    let (timm, coptim) = (
        Case::load("timm_cadafactor"),
        Case::load("coptim_cadafactor"),
    );
    let mut other = gpu_stepper(timm.start());
    other.step(&timm.grads(1));
    let foreign = pollster::block_on(other.opt.state_bytes()).unwrap();
    let mut opt = gpu_stepper(coptim.start());
    opt.step(&coptim.grads(1));
    let own = pollster::block_on(opt.opt.state_bytes()).unwrap();
    for bad in [&foreign[..], &own[..own.len() / 2], b"not a state file"] {
        let err = opt.opt.load_state_bytes(bad, "bad").unwrap_err();
        assert!(matches!(err, coptim::Error::Checkpoint { .. }), "{err}");
    }
    assert!(saved(&opt) == contents(&own));
    assert_eq!(opt.opt.steps(), 1);
}

/// A case's gradients of step `s` with a NaN in the first tensor's and an infinity in
/// the last one's.
fn poisoned(case: &Case, s: i32) -> [Vec<Vec<f64>>; 2] {
    let (mut nan, mut inf) = (case.grads(s), case.grads(s));
    nan[0][0] = f64::NAN;
    let last = inf.last_mut().expect("tensors");
    let end = last.len() - 1;
    last[end] = f64::INFINITY;
    [nan, inf]
}

/// A NaN or an infinity in any gradient skips the whole step: params and every
/// state (factored and full second moments, first moments, the steps in the state
/// file) stay bit for bit, the skipped steps are counted, and the following finite
/// steps land bit for bit where a run that never saw the bad steps lands (the
/// relative step and the second-moment decay take t from the completed steps).
#[test]
fn non_finite_gradients_skip_the_whole_step() {
    for name in [
        "timm_adafactor",
        "timm_cadafactor_warmup",
        "coptim_cadafactor",
        "timm_cadafactorbv",
    ] {
        let case = Case::load(name);
        let mut opt = gpu_stepper(case.start());
        let mut clean = gpu_stepper(case.start());
        opt.step(&case.grads(1));
        clean.step(&case.grads(1));
        let (params, state) = (param_bits(&opt), saved(&opt));
        for bad in poisoned(&case, 2) {
            opt.step(&bad);
            assert!(param_bits(&opt) == params, "{name}: params moved");
            assert!(saved(&opt) == state, "{name}: state moved");
        }
        for s in 2..=3 {
            opt.step(&case.grads(s));
            clean.step(&case.grads(s));
        }
        assert!(param_bits(&opt) == param_bits(&clean), "{name}: params");
        assert!(saved(&opt) == saved(&clean), "{name}: states");
        let skipped = |g: &Gpu| pollster::block_on(g.opt.read_skipped_steps()).unwrap();
        assert_eq!((skipped(&opt), skipped(&clean)), (2, 0), "{name}");
        assert_eq!((opt.opt.steps(), clean.opt.steps()), (5, 3), "{name}");
    }
}

/// The clip norm of `clipping_is_the_step_on_scaled_gradients`: under every step's
/// global gradient norm.
const MAX_NORM: f64 = 1.0;
/// The clipped GPU step against the f64 reference on scaled gradients, per tensor as
/// TOL. The GPU's coefficient comes from its f32 norm (per-chunk sums of 1,024
/// squares, then a tree: a relative error of a few 1e-7) and its params sit within
/// TOL of the golden f32 results, which sit within TOL of the reference: twice TOL.
const CLIP_TOL: f64 = 2.0 * TOL;

/// `with_clip_grad_norm`: each GPU step is the f64 reference's step on the gradients
/// scaled by `min(1, MAX_NORM / (norm + 1e-6))`, `norm` the f64 global norm of every
/// tensor's gradient. Each step's gradients have another scale, so the clipped run
/// differs from the unclipped one by far more than the tolerance.
#[test]
fn clipping_is_the_step_on_scaled_gradients() {
    for name in ["timm_adafactor", "timm_cadafactor", "coptim_cadafactor"] {
        let case = Case::load(name);
        let mut gpu = gpu_stepper(case.start());
        gpu.opt = gpu.opt.with_clip_grad_norm(MAX_NORM).unwrap();
        let (mut clipped, mut plain) = (reference(case.start()), reference(case.start()));
        let (mut worst, mut unclipped) = (0.0f64, 0.0f64);
        for (s, scale) in (1..=5).zip([1.0, 8.0, 0.25, 3.0, 0.5]) {
            let step = clipped_step(&case.grads(s), scale, MAX_NORM);
            assert!(step.coef < 1.0, "{name}: step {s} is clipped");
            let ours = gpu.step(&step.grads);
            let want = clipped.step(&step.scaled);
            let unscaled = plain.step(&step.grads);
            for ((o, w), u) in ours.iter().zip(&want).zip(&unscaled) {
                worst = worst.max(rel_err(o, w));
                unclipped = unclipped.max(rel_err(u, w));
            }
        }
        println!("{name}: clipped step error {worst:.2e}");
        assert!(worst <= CLIP_TOL, "{name}: {worst:.2e}");
        assert!(unclipped > 100.0 * CLIP_TOL, "{name}: {unclipped:.2e}");
    }
}

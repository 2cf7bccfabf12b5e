//! The optimizer algorithms, one file each.
//!
//! A file holds only what is its algorithm's own: the hyperparameter struct with timm's
//! defaults; its [`Member`] line (name, state names, and the hyperparameters it keeps
//! in the shared GPU fields: [`GroupHyper`], which checks and packs them and names them
//! for timm); its other timm keywords; its WGSL hooks (`hooks!`, `hook_needs!`); its f64
//! reference direction; and its timm names ([`TimmName::new`] and `alias`) with the
//! parsing of timm's keyword arguments. What every member does alike lives here: the
//! default [`Rules`] methods, the element-wise reference step, the range checks.
//! [`Algorithm`] is the closed, serde-tagged list that configurations and state files
//! name; every question about an algorithm goes through [`Algorithm::rules`] to its
//! file.
//!
//! Adding a member: a file here implementing [`Rules`] (at least `member`, `shader` and
//! `reference_direction`), its variant in [`Algorithm`] (one arm in
//! [`Algorithm::rules`]), its entries in [`TIMM_NAMES`], its WGSL file and its golden
//! cases.

mod adamp;
mod adamw;
mod adan;
mod adopt;
mod lamb;
mod laprop;
mod lion;
mod mars;
mod nadamw;
mod projection;
mod rmsprop_tf;
mod sgd;
mod sgdp;

pub use adamp::AdamP;
pub use adamw::{AdamW, EpsStyle};
pub use adan::Adan;
pub use adopt::Adopt;
pub use lamb::Lamb;
pub use laprop::LaProp;
pub use lion::Lion;
pub use mars::{Mars, MarsType};
pub use nadamw::NAdamW;
pub use rmsprop_tf::RmsPropTf;
pub use sgd::Sgd;
pub use sgdp::Sgdp;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::config::OptimizerConfig;
use crate::optim::gpu_types::GpuGroupParams;
use crate::optim::reference::{TensorStep, apply_masked_update};
use crate::optim::timm::{TimmArgs, TimmName};

use crate::wgsl::ShaderBuilder;

/// What every algorithm file provides.
pub(crate) trait Rules {
    /// The member's name, state and shared GPU hyperparameters.
    fn member(&self) -> Member;

    /// Short name (see [`Member::name`]).
    fn name(&self) -> &'static str {
        self.member().name
    }

    /// Names of the per-tensor state (see [`Member::states`]).
    fn state_names(&self) -> &'static [&'static str] {
        self.member().states
    }

    /// The hyperparameters in the shared GPU fields (see [`Member::hyper`]).
    fn group_hyper(&self) -> GroupHyper {
        self.member().hyper
    }

    /// Checks every hyperparameter is in range (by default those of
    /// `Rules::group_hyper`).
    fn validate(&self) -> Result<()> {
        self.group_hyper().validate()
    }

    /// Writes the algorithm's hyperparameters into one group's GPU parameters (the
    /// runtime fills `lr` and `weight_decay`).
    fn pack(&self, group: &mut GpuGroupParams) {
        self.group_hyper().pack(group);
    }

    /// The algorithm-specific switch of `StepParams.variant` (0 unless the file says).
    fn variant(&self) -> u32 {
        0
    }

    /// How many state tensors (the first ones) `caution_direction` reads in the count
    /// pass.
    fn count_states(&self) -> usize {
        1
    }

    /// Adds the algorithm's WGSL hooks (and the constants they read) to its module.
    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder;

    /// The f64 reference: updates tensor state (`state[k]` is state `k` of
    /// `Rules::state_names`) from the clipped gradient `step.g` and returns the
    /// direction.
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction;

    /// Whether the caution mask has a quantity to act on (true by default; RMSpropTF
    /// without momentum has none, as timm's).
    fn caution_applies(&self) -> bool {
        true
    }

    /// Where decoupled weight decay sits relative to the step (before, by default).
    fn decay(&self) -> Decay {
        Decay::BeforeStep
    }

    /// The f64 reference step of one tensor; returns (kept, ambiguous) coordinate
    /// counts. By default the element-wise rule: the direction, its caution mask and
    /// decoupled weight decay.
    fn reference_step(&self, mut x: TensorStep<'_>) -> (u64, u64) {
        let dir = self.reference_direction(&mut x.state, &x.step);
        apply_masked_update(x, &dir, self.decay())
    }

    /// Whether the measuring pass sums per-tensor terms for the update (its WGSL
    /// provides `tensor_terms`; see `shaders/tensor_sums_block.wgsl`), so that pass
    /// runs even without caution.
    fn tensor_sums(&self) -> bool {
        false
    }

    /// `Some(k)`: a norm pass before the measuring pass sums per-tensor terms of the
    /// gradient and the first `k` state tensors (its WGSL provides `norm_terms`; see
    /// `shaders/measure_norms.wgsl`), which the count and update passes read as
    /// `StepContext.sums` (MARS's norm of the corrected gradient). The terms see the
    /// clipped gradient without coupled decay's `wd * p` (the pass does not bind p; no
    /// member with a norm pass has coupled decay).
    fn norm_pass_states(&self) -> Option<usize> {
        None
    }

    /// Elements per segment of a tensor of `shape` whose per-segment sums the update
    /// needs (`shaders/tensor_segments.wgsl`; 0: none). Non-zero for some tensor only
    /// when `Rules::segment_sums` is true.
    fn segment_len(&self, _shape: &[usize]) -> u64 {
        0
    }

    /// Whether the algorithm measures per-segment sums (its WGSL provides
    /// `segment_terms`, `masked_terms` and the per-tensor passes `finalize_segments`
    /// and `finalize_masked`); its caution count is then `count_segments`.
    fn segment_sums(&self) -> bool {
        false
    }

    /// The algorithm's own global gradient clip: every gradient is divided by
    /// `max(norm / this, 1)` (timm LAMB's `max_grad_norm`), after any configured clip.
    fn max_grad_norm(&self) -> Option<f64> {
        None
    }

    /// The hyperparameters under timm's keyword names (`betas`, `eps`, `momentum`,
    /// ...), as `create_optimizer_v2` puts them in a parameter group: a JSON object.
    /// By default those of `Rules::group_hyper` and `Rules::timm_keywords`.
    fn timm_group(&self) -> serde_json::Value {
        self.group_hyper().timm_group(self.timm_keywords())
    }

    /// The member's own timm keywords, beyond those of `Rules::group_hyper` (none by
    /// default): a JSON object.
    fn timm_keywords(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// The learning-rate family the model presets give the member a rate by
    /// (adam-like unless the file says).
    fn lr_family(&self) -> LrFamily {
        LrFamily::AdamLike
    }
}

/// What every member states first: its name, the state it keeps and the
/// hyperparameters it keeps in the shared fields of the GPU group parameters.
pub(crate) struct Member {
    /// Short name (`adamw`, `lion`, `sgd`): the module label and the report name.
    pub name: &'static str,
    /// Names of the per-tensor state, as torch/timm name them.
    pub states: &'static [&'static str],
    /// The hyperparameters in the shared fields of [`GpuGroupParams`].
    pub hyper: GroupHyper,
}

impl Member {
    /// A member named `name` keeping `states` and `hyper`.
    pub fn new(name: &'static str, states: &'static [&'static str], hyper: GroupHyper) -> Self {
        Self {
            name,
            states,
            hyper,
        }
    }

    /// A member of the Adam family: its two moments, betas and eps.
    pub fn adam(name: &'static str, beta1: f64, beta2: f64, eps: f64) -> Self {
        Self::new(name, ADAM_STATES, GroupHyper::betas(beta1, beta2).eps(eps))
    }
}

/// The state of the Adam family: the first and second moments.
const ADAM_STATES: &[&str] = &["exp_avg", "exp_avg_sq"];

/// How large a member's steps are at a given learning rate, which decides the
/// learning rate a model preset gives it (`train::presets::ModelPreset::hyper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrFamily {
    /// Steps of about the learning rate per coordinate, the gradient normalized by
    /// its second moment (AdamW, NAdamW, LaProp, ...).
    AdamLike,
    /// Steps of exactly the learning rate per coordinate (Lion: a momentum's sign).
    SignBased,
    /// Steps proportional to the gradient (SGD with momentum).
    SgdLike,
    /// Adam-like steps rescaled per tensor by the trust ratio `||p|| / ||u||` (LAMB):
    /// relative steps of the learning rate's size, which wants a larger rate.
    TrustRatio,
}

/// The base algorithm and its own hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Algorithm {
    /// AdamW with decoupled weight decay (torch.optim.AdamW, timm `adamw`/`cadamw`).
    AdamW(AdamW),
    /// Lion (timm `lion`/`clion`): sign of an interpolated momentum.
    Lion(Lion),
    /// SGD with momentum and decoupled weight decay (timm `sgdw`/`csgdw`).
    Sgd(Sgd),
    /// LAMB (timm `lamb`/`clamb`, `lambw`/`clambw`): an Adam update scaled per tensor
    /// by the trust ratio.
    Lamb(Lamb),
    /// AdamW with a Nesterov look-ahead first moment (timm `nadamw`/`cnadamw`).
    #[serde(rename = "nadamw")]
    NAdamW(NAdamW),
    /// LaProp: momentum of the normalized gradient (timm `laprop`/`claprop`).
    LaProp(LaProp),
    /// MARS: AdamW or Lion on the variance-reduced, norm-clipped gradient (timm
    /// `mars`/`cmars`).
    Mars(Mars),
    /// Adan: three moments and the previous gradient (timm `adan`/`cadan`,
    /// `adanw`/`cadanw`).
    Adan(Adan),
    /// RMSprop, TensorFlow style (timm `rmsproptf`/`crmsproptf`).
    #[serde(rename = "rmsproptf")]
    RmsPropTf(RmsPropTf),
    /// ADOPT (timm `adopt`/`cadopt`, `adoptw`/`cadoptw`): momentum of the gradient
    /// normalized by the previous second moment, clipped.
    Adopt(Adopt),
    /// AdamP: Adam with the update projected off the parameter where the gradient is
    /// nearly orthogonal to it (timm `adamp`/`cadamp`).
    #[serde(rename = "adamp")]
    AdamP(AdamP),
    /// SGDP: SGD with AdamP's projection (timm `sgdp`/`csgdp`).
    Sgdp(Sgdp),
}

impl Algorithm {
    /// The algorithm's file.
    pub(crate) fn rules(&self) -> &dyn Rules {
        match self {
            Algorithm::AdamW(a) => a,
            Algorithm::Lion(a) => a,
            Algorithm::Sgd(a) => a,
            Algorithm::Lamb(a) => a,
            Algorithm::NAdamW(a) => a,
            Algorithm::LaProp(a) => a,
            Algorithm::Mars(a) => a,
            Algorithm::Adan(a) => a,
            Algorithm::RmsPropTf(a) => a,
            Algorithm::Adopt(a) => a,
            Algorithm::AdamP(a) => a,
            Algorithm::Sgdp(a) => a,
        }
    }

    /// torch/timm AdamW defaults: betas (0.9, 0.999), eps 1e-8, torch-style eps.
    pub fn adamw() -> Self {
        Algorithm::AdamW(AdamW::default())
    }

    /// timm Lion defaults: betas (0.9, 0.99).
    pub fn lion() -> Self {
        Algorithm::Lion(Lion::default())
    }

    /// SGD with momentum 0.9, optionally Nesterov.
    pub fn sgd(nesterov: bool) -> Self {
        Algorithm::Sgd(Sgd {
            nesterov,
            ..Sgd::default()
        })
    }

    /// One of every algorithm, with timm's defaults (in registry order).
    pub fn members() -> Vec<Algorithm> {
        TIMM_NAMES
            .iter()
            .map(|names| {
                OptimizerConfig::from_timm(names[0].name, &serde_json::json!({}))
                    .expect("every member builds with timm's defaults (tested)")
                    .algorithm
            })
            .collect()
    }

    /// The algorithm named `name` (its `Rules::name`: `adamw`, `nadamw`, `lion`, `sgd`,
    /// ...) with timm's defaults.
    pub fn by_name(name: &str) -> Result<Algorithm> {
        Self::members()
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::members().iter().map(|a| a.name()).collect();
                Error::InvalidConfig(format!(
                    "unknown optimizer `{name}`; coptim has: {}",
                    names.join(", ")
                ))
            })
    }

    /// Short name (see `Rules::name`).
    pub fn name(&self) -> &'static str {
        self.rules().name()
    }

    /// Names of the per-tensor state (see `Rules::state_names`).
    pub fn state_names(&self) -> &'static [&'static str] {
        self.rules().state_names()
    }

    /// Checks every hyperparameter is in range.
    pub fn validate(&self) -> Result<()> {
        self.rules().validate()
    }

    /// Whether a step measures per-tensor sums for the update (see
    /// `Rules::tensor_sums`).
    pub fn needs_tensor_sums(&self) -> bool {
        self.rules().tensor_sums()
    }

    /// Whether a step measures per-segment sums (see `Rules::segment_sums`).
    pub fn needs_segment_sums(&self) -> bool {
        self.rules().segment_sums()
    }

    /// Elements per segment of a tensor of `shape` (see `Rules::segment_len`).
    pub fn segment_len(&self, shape: &[usize]) -> u64 {
        self.rules().segment_len(shape)
    }

    /// How many state tensors the caution count pass reads (the bytes it moves).
    pub fn count_pass_states(&self) -> usize {
        self.rules().count_states()
    }

    /// How many state tensors the norm pass reads, `None` without one (see
    /// `Rules::norm_pass_states`).
    pub fn norm_pass_states(&self) -> Option<usize> {
        self.rules().norm_pass_states()
    }

    /// The learning-rate family (see `Rules::lr_family`).
    pub fn lr_family(&self) -> LrFamily {
        self.rules().lr_family()
    }

    /// Whether weight decay enters the gradient (coupled L2 decay: the state and the
    /// caution mask see `g + wd * p`).
    pub fn coupled_decay(&self) -> bool {
        self.rules().decay() == Decay::InGradient
    }

    /// Whether the measuring pass reads the parameters (for tensor or segment sums, or
    /// for coupled decay's `wd * p`).
    pub fn count_reads_params(&self) -> bool {
        self.needs_tensor_sums() || self.needs_segment_sums() || self.coupled_decay()
    }
}

/// Every timm optimizer name coptim builds, with the algorithm that serves it.
pub(crate) const TIMM_NAMES: &[&[TimmName]] = &[
    adamw::TIMM,
    lion::TIMM,
    sgd::TIMM,
    nadamw::TIMM,
    laprop::TIMM,
    lamb::TIMM,
    mars::TIMM,
    adan::TIMM,
    rmsprop_tf::TIMM,
    adopt::TIMM,
    adamp::TIMM,
    sgdp::TIMM,
];

/// What a reference step of one tensor knows: the step, its learning rates, the gradient.
pub(crate) struct RefStep<'a> {
    /// Completed steps, this one included (from 1).
    pub t: i32,
    /// The learning rate of every completed step of the tensor's group, this one last.
    pub lrs: &'a [f64],
    /// The tensor's clipped gradient (plus `wd * p` under coupled decay).
    pub g: &'a [f64],
    /// The tensor's number of dimensions.
    pub rank: usize,
}

impl RefStep<'_> {
    /// This step's learning rate.
    pub fn lr(&self) -> f64 {
        *self.lrs.last().expect("a step has a learning rate")
    }

    /// The same step at a unit learning rate (a direction before its step size).
    pub fn at_unit_rate(&self) -> RefStep<'_> {
        RefStep {
            t: self.t,
            lrs: &[1.0],
            g: self.g,
            rank: self.rank,
        }
    }
}

/// Where weight decay sits: decoupled `p *= 1 - lr * wd` before or after the step, or
/// coupled into the gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decay {
    /// On the parameter before the step (AdamW, Lion, SGDW, ...).
    BeforeStep,
    /// On the parameter after the step (LaProp).
    AfterStep,
    /// Coupled (L2) decay: `wd * p` joins the clipped gradient before the algorithm
    /// sees it, so the state and the caution mask see it too; no decoupled decay
    /// (ADOPT without `decoupled`).
    InGradient,
}

impl Decay {
    /// Decoupled decay before the step when `decoupled`, otherwise coupled into the
    /// gradient.
    fn coupled_unless(decoupled: bool) -> Self {
        if decoupled {
            Decay::BeforeStep
        } else {
            Decay::InGradient
        }
    }
}

/// A direction before masking, with the quantity whose sign decides agreement.
pub(crate) struct Direction {
    /// The step before caution, learning rate included: `p -= delta * mask`.
    pub delta: Vec<f64>,
    /// The quantity whose sign is compared with the gradient's.
    pub sign_src: Vec<f64>,
    /// The size of the terms summed into `sign_src` (for the ambiguity bound).
    pub sign_mag: Vec<f64>,
}

/// The hyperparameters an algorithm keeps in the shared fields of [`GpuGroupParams`],
/// checked and packed the same way for every algorithm.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GroupHyper {
    /// `beta1`, `beta2`: each in [0, 1).
    betas: Option<(f64, f64)>,
    /// A positive denominator epsilon.
    eps: Option<f64>,
    /// A momentum factor in [0, 1).
    momentum: Option<f64>,
    /// A third moment decay in [0, 1) (Adan's `beta3`).
    beta3: Option<f64>,
    /// The projection's threshold factor (positive) and weight decay ratio (finite, not
    /// negative): AdamP's and SGDP's `delta` and `wd_ratio`.
    projection: Option<(f64, f64)>,
}

impl GroupHyper {
    /// Two moment decays.
    pub fn betas(beta1: f64, beta2: f64) -> Self {
        Self {
            betas: Some((beta1, beta2)),
            ..Self::default()
        }
    }

    /// A momentum factor.
    pub fn momentum(momentum: f64) -> Self {
        Self {
            momentum: Some(momentum),
            ..Self::default()
        }
    }

    /// These and a third moment decay.
    pub fn beta3(self, beta3: f64) -> Self {
        Self {
            beta3: Some(beta3),
            ..self
        }
    }

    /// These and a projection's `delta` and `wd_ratio`.
    pub fn projection(self, delta: f64, wd_ratio: f64) -> Self {
        Self {
            projection: Some((delta, wd_ratio)),
            ..self
        }
    }

    /// These and a denominator epsilon.
    pub fn eps(self, eps: f64) -> Self {
        Self {
            eps: Some(eps),
            ..self
        }
    }

    /// These under timm's keywords (`betas`, with Adan's third; `eps`; `momentum`),
    /// added to the member's `own` keywords (a JSON object).
    fn timm_group(&self, mut own: serde_json::Value) -> serde_json::Value {
        let group = own
            .as_object_mut()
            .expect("timm keywords are a JSON object");
        if let Some((beta1, beta2)) = self.betas {
            let betas = match self.beta3 {
                Some(beta3) => vec![beta1, beta2, beta3],
                None => vec![beta1, beta2],
            };
            group.insert("betas".into(), betas.into());
        }
        if let Some(eps) = self.eps {
            group.insert("eps".into(), eps.into());
        }
        if let Some(momentum) = self.momentum {
            group.insert("momentum".into(), momentum.into());
        }
        if let Some((delta, wd_ratio)) = self.projection {
            group.insert("delta".into(), delta.into());
            group.insert("wd_ratio".into(), wd_ratio.into());
        }
        own
    }

    /// Checks each one is in range.
    fn validate(&self) -> Result<()> {
        if let Some((beta1, beta2)) = self.betas {
            unit_interval("beta1", beta1)?;
            unit_interval("beta2", beta2)?;
        }
        if let Some(eps) = self.eps {
            positive("eps", eps)?;
        }
        if let Some(beta3) = self.beta3 {
            unit_interval("beta3", beta3)?;
        }
        if let Some((delta, wd_ratio)) = self.projection {
            positive("delta", delta)?;
            if !(wd_ratio >= 0.0 && wd_ratio.is_finite()) {
                return Err(Error::InvalidConfig(format!(
                    "wd_ratio = {wd_ratio} must be finite and not negative"
                )));
            }
        }
        match self.momentum {
            Some(momentum) => unit_interval("momentum", momentum),
            None => Ok(()),
        }
    }

    /// Writes them into `group`.
    fn pack(&self, group: &mut GpuGroupParams) {
        if let Some((beta1, beta2)) = self.betas {
            group.set_betas(beta1, beta2);
        }
        if let Some(eps) = self.eps {
            group.eps = eps as f32;
        }
        if let Some(momentum) = self.momentum {
            group.momentum = momentum as f32;
        }
        if let Some(beta3) = self.beta3 {
            group.set_beta3(beta3);
        }
        if let Some((delta, wd_ratio)) = self.projection {
            group.delta = delta as f32;
            group.wd_ratio = wd_ratio as f32;
        }
    }
}

/// `hooks!(extra, ...)`: the hooks every algorithm's WGSL file provides to
/// `optim_step.wgsl`, and the file's `extra` ones.
macro_rules! hooks {
    ($($extra:literal),* $(,)?) => {
        &["caution_direction", "step_vec4", $($extra),*]
    };
}
use hooks;

/// `hook_needs!(extra, ...)`: what every algorithm's WGSL file uses from the other
/// parts (the state slots' accessors are generated for every state), and the file's
/// `extra` needs.
macro_rules! hook_needs {
    ($($extra:literal),* $(,)?) => {
        &["load_param", "store_param", "load_state0", "store_state0", $($extra),*]
    };
}
use hook_needs;

/// The hooks of an element-wise algorithm's WGSL file.
const HOOKS: &[&str] = hooks!();
/// What an element-wise algorithm's WGSL file uses.
const HOOK_NEEDS: &[&str] = hook_needs!();

/// Declares `load_<name>(i)` and `store_<name>(i, v)` for each of an algorithm's
/// optional states `names`: the accessors of state `k` where `kept` (its
/// `Rules::state_names`) lists the name `k`-th, zeros and no store where it does not,
/// so that a WGSL file reads its optional states by name and its module binds only the
/// states the configuration keeps.
fn state_accessors(mut module: ShaderBuilder, names: &[&str], kept: &[&str]) -> ShaderBuilder {
    for name in names {
        module = module.declare(match kept.iter().position(|k| k == name) {
            Some(k) => format!(
                "fn load_{name}(i: u32) -> vec4<f32> {{ return load_state{k}(i); }}\n\
                 fn store_{name}(i: u32, v: vec4<f32>) {{ store_state{k}(i, v); }}"
            ),
            None => format!(
                "fn load_{name}(i: u32) -> vec4<f32> {{ return vec4<f32>(0.0); }}\n\
                 fn store_{name}(i: u32, v: vec4<f32>) {{}}"
            ),
        });
    }
    module
}

/// `Ok` when `v` is in [0, 1), otherwise an error naming `name`.
fn unit_interval(name: &str, v: f64) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} = {v} is not in [0, 1)"
        )))
    }
}

/// `Ok` when `v` is finite and not negative, otherwise an error naming `name`.
fn non_negative(name: &str, v: f64) -> Result<()> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} = {v} must be finite and not negative"
        )))
    }
}

/// `Ok` when `v` is positive and finite, otherwise an error naming `name`.
fn positive(name: &str, v: f64) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} = {v} must be positive"
        )))
    }
}

/// The sign of `x` (0 for 0), as torch.sign.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Uses the timm argument parser in the member files.
fn timm_betas(args: &mut TimmArgs, default: [f64; 2]) -> Result<(f64, f64)> {
    timm_pair("betas", &args.f64_list("betas", &default)?)
}

/// The two values of timm keyword `key`'s list `b`.
fn timm_pair(key: &str, b: &[f64]) -> Result<(f64, f64)> {
    match b[..] {
        [b1, b2] => Ok((b1, b2)),
        _ => Err(Error::InvalidConfig(format!(
            "timm keyword `{key}` needs 2 values, got {}",
            b.len()
        ))),
    }
}

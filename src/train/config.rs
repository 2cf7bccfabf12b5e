//! What one training run is: the model, the optimizer and its hyper-parameters, the
//! batch size, the budget, the seed and the input pipeline ([`TrainConfig`]).

use serde::{Deserialize, Serialize};

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::model::{Architecture, Llama, Mae, Mlp, Model, Vit};
use crate::optim::{
    Algorithm, Caution, DecayMode, EngineConfig, GroupConfig, LrFamily, LrSchedule,
    OptimizerConfig, matrix_names, timm_names,
};
use crate::train::presets::{MODEL_PRESETS, ModelPreset};
use crate::train::source::TrainData;

/// The model a session trains, with its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// A multi-layer perceptron on flattened images.
    Mlp(Mlp),
    /// A vision transformer.
    Vit(Vit),
    /// A LLaMA-style character-level language model.
    Llama(Llama),
    /// A masked autoencoder (trained without labels).
    Mae(Mae),
}

impl ModelSpec {
    /// The model of the `mlp` preset (see [`MODEL_PRESETS`](crate::train::presets::MODEL_PRESETS)).
    pub fn default_mlp() -> Self {
        (MODEL_PRESETS[0].model)()
    }

    /// The model of the `vit` preset (see [`MODEL_PRESETS`](crate::train::presets::MODEL_PRESETS)).
    pub fn default_vit() -> Self {
        (MODEL_PRESETS[1].model)()
    }

    /// `mlp`, `vit`, `llama` or `mae`.
    pub fn name(&self) -> &'static str {
        self.architecture().io().name
    }

    /// The architecture, as the model runtime takes it.
    pub fn architecture(&self) -> &dyn Architecture {
        match self {
            ModelSpec::Mlp(m) => m,
            ModelSpec::Vit(v) => v,
            ModelSpec::Llama(l) => l,
            ModelSpec::Mae(m) => m,
        }
    }

    /// The model on the GPU, initialized from `seed`.
    pub fn build(&self, ctx: &GpuContext, seed: u64) -> Result<Model> {
        match self {
            ModelSpec::Mlp(m) => Model::new(ctx, m.clone(), seed),
            ModelSpec::Vit(v) => Model::new(ctx, v.clone(), seed),
            ModelSpec::Llama(l) => Model::new(ctx, l.clone(), seed),
            ModelSpec::Mae(m) => Model::new(ctx, m.clone(), seed),
        }
    }
}

/// The names the six optimizers of coptim's first command line are written under,
/// with the timm name each one is. They stay these members' names (in checkpoints,
/// `run.json` and `summary.json`), so files written before the registry keep loading;
/// the timm names are accepted for them too.
const LEGACY_NAMES: [(&str, &str); 6] = [
    ("adamw", "adamw"),
    ("c-adamw", "cadamw"),
    ("lion", "lion"),
    ("c-lion", "clion"),
    ("sgd", "sgdw"),
    ("c-sgd", "csgdw"),
];

/// The optimizer of a training run: one member of the registry
/// ([`Algorithm::members`]) under one of timm's names ([`timm_names`]), or Muon or a
/// member of the Adafactor family ([`matrix_names`]), with timm's defaults for
/// everything but the learning rate and the weight decay.
///
/// Its name ([`OptimizerKind::name`]) is the timm name, except for the six members of
/// coptim's first command line, which keep `adamw`, `c-adamw`, `lion`, `c-lion`, `sgd`
/// (timm `sgdw`) and `c-sgd` (timm `csgdw`). Parsing also accepts the timm name of
/// those six and `c-NAME` for every cautious timm name `cNAME` (`c-nadamw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct OptimizerKind {
    /// The timm name, as the registry spells it.
    timm: &'static str,
}

impl OptimizerKind {
    /// `torch.optim.AdamW` (timm `adamw`).
    pub const ADAMW: Self = Self { timm: "adamw" };
    /// AdamW with the cautious mask (timm `cadamw`).
    pub const C_ADAMW: Self = Self { timm: "cadamw" };
    /// Lion (timm `lion`).
    pub const LION: Self = Self { timm: "lion" };
    /// Lion with the cautious mask (timm `clion`).
    pub const C_LION: Self = Self { timm: "clion" };
    /// SGD with Nesterov momentum 0.9 and decoupled weight decay (timm `sgdw`).
    pub const SGD: Self = Self { timm: "sgdw" };
    /// SGD with the cautious mask (timm `csgdw`).
    pub const C_SGD: Self = Self { timm: "csgdw" };

    /// Every registered optimizer, in registry order (plain then cautious for each
    /// algorithm), then Muon's and Adafactor's ([`matrix_names`]).
    pub fn all() -> Vec<OptimizerKind> {
        timm_names()
            .chain(matrix_names())
            .map(|timm| Self { timm })
            .collect()
    }

    /// The name runs are written under: `adamw`, `c-adamw`, `lion`, `c-lion`, `sgd`,
    /// `c-sgd`, then timm's (`nadamw`, `cnadamw`, ...).
    pub fn name(self) -> &'static str {
        LEGACY_NAMES
            .iter()
            .find(|(_, timm)| *timm == self.timm)
            .map_or(self.timm, |(name, _)| name)
    }

    /// The timm optimizer name (`cadamw` for `c-adamw`).
    pub fn timm_name(self) -> &'static str {
        self.timm
    }

    /// Every name [`OptimizerKind::from_name`] knows, each optimizer's
    /// [`name`](OptimizerKind::name) then its timm name where that differs.
    pub fn known_names() -> Vec<&'static str> {
        Self::all()
            .into_iter()
            .flat_map(|k| [Some(k.name()), (k.timm != k.name()).then_some(k.timm)])
            .flatten()
            .collect()
    }

    /// The optimizer called `name` (case-insensitive; see the type's documentation),
    /// or [`Error::UnknownOptimizer`] listing every known name.
    pub fn from_name(name: &str) -> Result<Self> {
        let lower = name.to_ascii_lowercase();
        let dashless = match lower.strip_prefix("c-") {
            Some(rest) => format!("c{rest}"),
            None => lower.clone(),
        };
        Self::all()
            .into_iter()
            .find(|k| k.name() == lower || k.timm == lower || k.timm == dashless)
            .ok_or_else(|| Error::UnknownOptimizer {
                name: name.to_string(),
                known: Self::known_names().into_iter().map(String::from).collect(),
            })
    }

    /// timm's configuration of this optimizer with its default learning rate and
    /// no weight decay.
    fn timm_defaults(self) -> EngineConfig {
        EngineConfig::from_timm(self.timm, &serde_json::json!({}))
            .expect("every registered timm name builds with timm's defaults (tested)")
    }

    /// The base algorithm with its (timm default) hyperparameters (`None` for Muon
    /// and the Adafactor family, which are not element-wise).
    pub fn algorithm(self) -> Option<Algorithm> {
        match self.timm_defaults() {
            EngineConfig::Elementwise(c) => Some(c.algorithm),
            _ => None,
        }
    }

    /// The learning-rate family the presets give it a rate by: its algorithm's, and
    /// adam-like for Muon (timm's `match_rms_adamw` scales its updates to AdamW's
    /// RMS, and its fallback is AdamW) and the Adafactor family (updates normalized
    /// by the second moment and clipped to RMS 1).
    pub fn lr_family(self) -> LrFamily {
        self.algorithm()
            .map_or(LrFamily::AdamLike, |a| a.lr_family())
    }

    /// Whether the training loop's decay modes and `no_decay` group apply (the
    /// element-wise engine's; Muon and Adafactor have neither, and their presets
    /// leave clipping off, though they clip when asked).
    pub fn is_elementwise(self) -> bool {
        self.algorithm().is_some()
    }

    /// Whether the cautious mask is on.
    pub fn is_cautious(self) -> bool {
        self.timm_defaults().caution().is_on()
    }

    /// The same optimizer with caution on or off: the registered one whose
    /// configuration differs from this one's at most in the mask (`None` when the
    /// registry has no such twin).
    pub fn with_caution(self, cautious: bool) -> Option<Self> {
        if self.is_cautious() == cautious {
            return Some(self);
        }
        let unmasked = |k: Self| k.timm_defaults().with_caution(Caution::Off);
        let target = unmasked(self);
        Self::all()
            .into_iter()
            .find(|&k| k.is_cautious() == cautious && unmasked(k) == target)
    }

    /// The name people write in prose: `AdamW`, `C-AdamW`, `NAdamW`, `C-LaProp`,
    /// `C-AdamW (corrected wd)`, ... (the algorithm's own spelling, or its short name
    /// for one not listed here).
    pub fn label(self) -> String {
        let defaults = match self.timm_defaults() {
            EngineConfig::Elementwise(c) => c,
            other => {
                let caution = if other.caution().is_on() { "C-" } else { "" };
                let label = other.matrix_label().expect("not element-wise");
                return format!("{caution}{label}");
            }
        };
        let algorithm = defaults.algorithm.name();
        let plain = ALGORITHM_LABELS
            .iter()
            .find(|(name, _)| *name == algorithm)
            .map_or(algorithm, |(_, label)| label);
        let caution = if defaults.caution.is_on() { "C-" } else { "" };
        let corrected = if defaults.decay.corrected {
            " (corrected wd)"
        } else {
            ""
        };
        format!("{caution}{plain}{corrected}")
    }

    /// The optimizer configuration with learning rate `lr` and weight decay `wd`, timm's
    /// defaults otherwise (cautious members use [`Caution::hard`], timm's mask).
    pub fn config(self, lr: f64, wd: f64) -> EngineConfig {
        self.timm_defaults().with_lr_and_decay(lr, wd)
    }
}

/// How prose spells each algorithm's short name ([`Algorithm::name`]).
const ALGORITHM_LABELS: &[(&str, &str)] = &[
    ("adamw", "AdamW"),
    ("lion", "Lion"),
    ("sgd", "SGD"),
    ("nadamw", "NAdamW"),
    ("laprop", "LaProp"),
    ("lamb", "LAMB"),
    ("lambw", "LAMBW"),
    ("adan", "Adan"),
    ("adanw", "AdanW"),
];

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s)
    }
}

impl<'de> Deserialize<'de> for OptimizerKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::from_name(&name).map_err(serde::de::Error::custom)
    }
}

impl From<OptimizerKind> for String {
    fn from(kind: OptimizerKind) -> String {
        kind.name().to_string()
    }
}

/// Everything that determines a training run. Two runs with equal configurations
/// (and data) produce the same parameters and metrics, bit for bit; runs that
/// differ only in [`TrainConfig::optimizer`] start from the same weights and see the
/// same batches in the same order, with the same augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model.
    pub model: ModelSpec,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Linear warm-up steps of the learning rate (then cosine decay towards
    /// `lr * lr_floor`, reached one step after the last; see
    /// [`LrSchedule`](crate::optim::LrSchedule) for the convention).
    pub warmup_steps: u64,
    /// Final learning-rate multiplier of the cosine decay, in `[0, 1]`.
    pub lr_floor: f64,
    /// Global gradient-norm clipping (`None`: off).
    pub clip_grad_norm: Option<f64>,
    /// AdamW's (and C-AdamW's) `(beta1, beta2)` (`None`: timm's (0.9, 0.999)); other
    /// optimizers keep theirs.
    #[serde(default)]
    pub adam_betas: Option<[f64; 2]>,
    /// Cautious and/or corrected weight decay on top of the optimizer's own (a timm
    /// name ending in `c`, e.g. `cadamc`, is corrected already; both off: the
    /// optimizer's decay).
    #[serde(default)]
    pub decay: DecayMode,
    /// Samples per training step.
    pub batch_size: usize,
    /// Training steps (the schedule ends here).
    pub steps: u64,
    /// Seed of the initialization, the data order and the augmentation.
    pub seed: u64,
    /// Evaluate on the test set every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Samples per evaluation batch.
    pub eval_batch_size: usize,
    /// Text runs: evaluate on at most this many validation windows, evenly spaced
    /// over the validation split (`None`: every window). Ignored for images.
    #[serde(default)]
    pub eval_windows: Option<usize>,
    /// Random translation of each training image by up to this many pixels in each
    /// direction (0: no augmentation).
    pub augment_shift: usize,
    /// Standardize inputs with the training set's mean and standard deviation.
    pub normalize: bool,
}

impl TrainConfig {
    /// The run `preset` describes, with `optimizer` and its learning rate and weight
    /// decay from the preset; seed 0, the preset's clipping and evaluation schedule,
    /// standardized inputs.
    pub fn from_preset(preset: &ModelPreset, optimizer: OptimizerKind) -> Self {
        Self::with_model((preset.model)(), preset, optimizer)
    }

    /// `model` trained with the defaults of the preset of its kind
    /// ([`ModelPreset::for_kind`]).
    pub fn for_model(model: ModelSpec, optimizer: OptimizerKind) -> Self {
        let preset = ModelPreset::for_kind(&model);
        Self::with_model(model, preset, optimizer)
    }

    fn with_model(model: ModelSpec, preset: &ModelPreset, optimizer: OptimizerKind) -> Self {
        let hyper = preset.hyper(optimizer);
        Self {
            model,
            optimizer,
            lr: hyper.lr,
            weight_decay: hyper.weight_decay,
            warmup_steps: preset.warmup_steps,
            lr_floor: preset.lr_floor,
            // Muon and Adafactor bound their updates themselves: their presets do not
            // clip (an explicit clip_grad_norm applies to them too).
            clip_grad_norm: preset.clip_grad_norm.filter(|_| optimizer.is_elementwise()),
            adam_betas: preset.adam_betas,
            decay: DecayMode::default(),
            batch_size: preset.batch_size,
            steps: preset.steps,
            seed: 0,
            eval_every: preset.eval_every,
            eval_batch_size: preset.eval_batch_size,
            eval_windows: preset.eval_windows,
            augment_shift: preset.augment_shift,
            normalize: true,
        }
    }

    /// The default MLP run with `optimizer`.
    pub fn mlp(optimizer: OptimizerKind) -> Self {
        Self::for_model(ModelSpec::default_mlp(), optimizer)
    }

    /// The default ViT run with `optimizer`.
    pub fn vit(optimizer: OptimizerKind) -> Self {
        Self::for_model(ModelSpec::default_vit(), optimizer)
    }

    /// Sets the number of steps, keeping the warm-up at 5% of them and, for a run
    /// that evaluates periodically, ten evaluations.
    pub fn with_steps(mut self, steps: u64) -> Self {
        self.steps = steps;
        self.warmup_steps = steps / 20;
        if self.eval_every > 0 {
            self.eval_every = (steps / 10).max(1);
        }
        self
    }

    /// The run fitted to `data`: a language model's vocabulary becomes the text's
    /// (its context stays the model's, which the corpus must have been cut for).
    /// Image runs are returned unchanged.
    pub fn for_data(mut self, data: &TrainData) -> Self {
        if let (ModelSpec::Llama(l), Some(vocab)) = (&mut self.model, data.vocab()) {
            l.vocab = vocab.len();
        }
        self
    }

    /// The learning-rate schedule: linear warm-up, then cosine decay to the floor.
    pub fn schedule(&self) -> LrSchedule {
        LrSchedule::WarmupCosine {
            warmup: self.warmup_steps,
            total: self.steps,
            floor: self.lr_floor,
        }
    }

    /// The optimizer configuration of this run: for an element-wise member, the
    /// model's [`no_weight_decay`](Architecture::no_weight_decay) tensors, if any, in a
    /// group `no_decay` without weight decay; Muon and Adafactor have no groups and
    /// decay every tensor. Every engine clips at [`TrainConfig::clip_grad_norm`].
    pub fn engine_config(&self) -> EngineConfig {
        match self.optimizer.config(self.lr, self.weight_decay) {
            EngineConfig::Elementwise(cfg) => EngineConfig::Elementwise(self.elementwise(cfg)),
            other => other
                .with_schedule(self.schedule())
                .with_clip_grad_norm(self.clip_grad_norm),
        }
    }

    /// The element-wise optimizer configuration of this run (see
    /// [`TrainConfig::engine_config`]); [`Error::InvalidConfig`] for Muon and Adafactor.
    pub fn optimizer_config(&self) -> Result<OptimizerConfig> {
        match self.engine_config() {
            EngineConfig::Elementwise(cfg) => Ok(cfg),
            _ => Err(Error::InvalidConfig(format!(
                "{} is not an element-wise optimizer",
                self.optimizer
            ))),
        }
    }

    /// `cfg` with this run's schedule, decay modes, betas, groups and clipping.
    fn elementwise(&self, cfg: OptimizerConfig) -> OptimizerConfig {
        let cfg = cfg.with_schedule(self.schedule());
        let decay = DecayMode {
            cautious: cfg.decay.cautious || self.decay.cautious,
            corrected: cfg.decay.corrected || self.decay.corrected,
        };
        let mut cfg = cfg.with_decay(decay);
        if let (Algorithm::AdamW(adam), Some([beta1, beta2])) =
            (&mut cfg.algorithm, self.adam_betas)
        {
            (adam.beta1, adam.beta2) = (beta1, beta2);
        }
        // An invalid model is reported by `validate`; its groups do not matter.
        let exempt = self
            .model
            .architecture()
            .no_weight_decay()
            .unwrap_or_default();
        if !exempt.is_empty() {
            cfg = cfg.with_group(GroupConfig {
                name: "no_decay".into(),
                tensors: exempt,
                lr_scale: 1.0,
                weight_decay: 0.0,
            });
        }
        match self.clip_grad_norm {
            Some(c) => cfg.with_clip_grad_norm(c),
            None => cfg,
        }
    }

    /// Fails unless the run's decay modes apply to its optimizer (Muon and Adafactor
    /// have none; they clip like the element-wise engine).
    fn check_engine_options(&self) -> Result<()> {
        if self.optimizer.is_elementwise() || self.decay == DecayMode::default() {
            return Ok(());
        }
        Err(Error::InvalidConfig(format!(
            "{} does not support cautious or corrected weight decay: it is not an \
             element-wise optimizer",
            self.optimizer
        )))
    }

    /// Checks the sizes and hyper-parameters (the optimizer's own checks included).
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return Err(Error::InvalidConfig("batch sizes must be positive".into()));
        }
        if self.steps == 0 {
            return Err(Error::InvalidConfig("steps must be positive".into()));
        }
        self.model.architecture().parameters()?;
        self.check_engine_options()?;
        self.engine_config().validate()
    }
}

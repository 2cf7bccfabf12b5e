//! What one training run is: the model, the optimizer and its hyper-parameters, the
//! batch size, the budget, the seed and the input pipeline ([`TrainConfig`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Architecture, Mlp, Vit};
use crate::optim::{Caution, DecayMode, LrSchedule, OptimizerConfig};
use crate::train::presets::{MODEL_PRESETS, ModelPreset};

/// The model a session trains, with its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// A multi-layer perceptron on flattened images.
    Mlp(Mlp),
    /// A vision transformer.
    Vit(Vit),
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

    /// `mlp` or `vit`.
    pub fn name(&self) -> &'static str {
        self.architecture().name()
    }

    /// The architecture, as the model runtime takes it.
    pub fn architecture(&self) -> &dyn Architecture {
        match self {
            ModelSpec::Mlp(m) => m,
            ModelSpec::Vit(v) => v,
        }
    }
}

/// The six optimizers of the command line: three algorithms, each plain or cautious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// `torch.optim.AdamW` (timm `adamw`).
    #[serde(rename = "adamw")]
    AdamW,
    /// AdamW with the cautious mask (timm `cadamw`).
    #[serde(rename = "c-adamw")]
    CAdamW,
    /// Lion (timm `lion`).
    Lion,
    /// Lion with the cautious mask (timm `clion`).
    CLion,
    /// SGD with Nesterov momentum 0.9 and decoupled weight decay (timm `sgdw`).
    Sgd,
    /// SGD with the cautious mask (timm `csgdw`).
    CSgd,
}

impl OptimizerKind {
    /// Every kind, plain then cautious for each algorithm.
    pub const ALL: [OptimizerKind; 6] = [
        OptimizerKind::AdamW,
        OptimizerKind::CAdamW,
        OptimizerKind::Lion,
        OptimizerKind::CLion,
        OptimizerKind::Sgd,
        OptimizerKind::CSgd,
    ];

    /// The command-line name: `adamw`, `c-adamw`, `lion`, `c-lion`, `sgd`, `c-sgd`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::CAdamW => "c-adamw",
            OptimizerKind::Lion => "lion",
            OptimizerKind::CLion => "c-lion",
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::CSgd => "c-sgd",
        }
    }

    /// The kind called `name` (see [`OptimizerKind::name`]).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "unknown optimizer `{name}` (expected one of adamw, c-adamw, lion, c-lion, sgd, c-sgd)"
                ))
            })
    }

    /// Whether the cautious mask is on.
    pub fn is_cautious(self) -> bool {
        matches!(
            self,
            OptimizerKind::CAdamW | OptimizerKind::CLion | OptimizerKind::CSgd
        )
    }

    /// The same algorithm with caution on or off.
    pub fn with_caution(self, cautious: bool) -> Self {
        use OptimizerKind::*;
        match (self, cautious) {
            (AdamW | CAdamW, false) => AdamW,
            (AdamW | CAdamW, true) => CAdamW,
            (Lion | CLion, false) => Lion,
            (Lion | CLion, true) => CLion,
            (Sgd | CSgd, false) => Sgd,
            (Sgd | CSgd, true) => CSgd,
        }
    }

    /// The optimizer configuration with learning rate `lr` and weight decay `wd`
    /// (torch/timm defaults otherwise; cautious kinds use [`Caution::hard`], timm's).
    pub fn config(self, lr: f64, wd: f64) -> OptimizerConfig {
        let base = match self {
            OptimizerKind::AdamW | OptimizerKind::CAdamW => OptimizerConfig::adamw(lr),
            OptimizerKind::Lion | OptimizerKind::CLion => OptimizerConfig::lion(lr),
            OptimizerKind::Sgd | OptimizerKind::CSgd => OptimizerConfig::sgd(lr, true),
        };
        let base = base.with_weight_decay(wd);
        match self.is_cautious() {
            true => base.with_caution(Caution::hard()),
            false => base,
        }
    }
}

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
    /// Cautious and/or corrected weight decay (both off: plain decoupled decay).
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
    /// Random translation of each training image by up to this many pixels in each
    /// direction (0: no augmentation).
    pub augment_shift: usize,
    /// Standardize inputs with the training set's mean and standard deviation.
    pub normalize: bool,
}

impl TrainConfig {
    /// The run `preset` describes, with `optimizer` and its learning rate and weight
    /// decay from the preset; seed 0, no clipping, evaluation only at the end,
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
            clip_grad_norm: None,
            decay: DecayMode::default(),
            batch_size: preset.batch_size,
            steps: preset.steps,
            seed: 0,
            eval_every: 0,
            eval_batch_size: 500,
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

    /// Sets the number of steps, keeping the warm-up at 5% of them.
    pub fn with_steps(mut self, steps: u64) -> Self {
        self.steps = steps;
        self.warmup_steps = steps / 20;
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

    /// The optimizer configuration of this run.
    pub fn optimizer_config(&self) -> OptimizerConfig {
        let cfg = self
            .optimizer
            .config(self.lr, self.weight_decay)
            .with_schedule(self.schedule())
            .with_decay(self.decay);
        match self.clip_grad_norm {
            Some(c) => cfg.with_clip_grad_norm(c),
            None => cfg,
        }
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
        self.optimizer_config().validate()
    }
}

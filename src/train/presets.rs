//! The one table of model and optimizer presets. The command line's defaults
//! (`coptim train|compare --model NAME`), the browser page (through the wasm
//! bindings' `presets()`) and the README's table (`coptim presets --markdown`,
//! checked by `tests/presets.rs`) all read [`MODEL_PRESETS`].
//!
//! Plain and cautious variants of an algorithm share a learning rate and weight
//! decay, so that a comparison changes only the mask. The table has rows for AdamW,
//! Lion and SGD; every other registered member takes the row of the learning-rate
//! family its algorithm file names ([`ModelPreset::hyper`]).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Llama, Mae, Mlp, PatchGrid, Vit, VitEncoder};
use crate::nn::Activation;
use crate::optim::LrFamily;
use crate::train::config::{ModelSpec, OptimizerKind};

/// Peak learning rate and decoupled weight decay of one algorithm on one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hyper {
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// A model with its tuned training defaults (image models on the bundled MNIST
/// digits, the language model on the bundled Shakespeare).
#[derive(Debug, Clone, Copy)]
pub struct ModelPreset {
    /// The name the command line and the page use, e.g. `mlp`.
    pub name: &'static str,
    /// Builds the model's configuration.
    pub model: fn() -> ModelSpec,
    /// Training steps.
    pub steps: u64,
    /// Samples per step.
    pub batch_size: usize,
    /// Linear warm-up steps, then cosine decay to `lr * lr_floor`.
    pub warmup_steps: u64,
    /// Final learning-rate multiplier of the cosine decay.
    pub lr_floor: f64,
    /// Random shifts of each training image by up to this many pixels.
    pub augment_shift: usize,
    /// Global gradient-norm clipping (`None`: off).
    pub clip_grad_norm: Option<f64>,
    /// AdamW's `(beta1, beta2)` (`None`: timm's defaults).
    pub adam_betas: Option<[f64; 2]>,
    /// Evaluate every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Samples per evaluation batch.
    pub eval_batch_size: usize,
    /// Text: validation windows per evaluation, evenly spaced (`None`: all).
    pub eval_windows: Option<usize>,
    /// AdamW and C-AdamW, and every other adaptive member (see [`ModelPreset::hyper`]).
    pub adamw: Hyper,
    /// Lion and C-Lion.
    pub lion: Hyper,
    /// SGD and C-SGD (Nesterov, momentum 0.9).
    pub sgd: Hyper,
    /// Offered on the browser page (small enough for a software WebGPU adapter).
    pub browser: bool,
}

/// The learning rate of a trust-ratio member (LAMB), as a multiple of the `adamw`
/// row's: its steps are the rate times each tensor's norm, and timm's LAMB recipes
/// use several times AdamW's rate. Measured with `coptim compare --pair lamb,clamb
/// --seeds 1 --lr X` on the `mlp` preset (500 steps; final train loss LAMB / C-LAMB,
/// test accuracy): 1x (3e-3) 0.611 / 0.661, 88.9% / 87.9%; 3.3x (1e-2) 0.186 / 0.208,
/// 96.0% / 95.5%; 10x (3e-2) 0.140 / 0.113, 95.4% / 96.6%, where AdamW / C-AdamW at
/// their 3e-3 reach 0.148 / 0.128, 96.0% / 96.4%. 10x it is.
pub const TRUST_RATIO_LR_SCALE: f64 = 10.0;

/// Every model preset; the first is the command line's default.
pub const MODEL_PRESETS: [ModelPreset; 7] = [
    MLP,
    VIT,
    ModelPreset {
        name: "mlp-small",
        model: || mlp(128),
        ..browser_sized(MLP)
    },
    ModelPreset {
        name: "vit-tiny",
        model: || vit(7, 32, 2),
        ..browser_sized(VIT)
    },
    LLAMA,
    ModelPreset {
        name: "llama-tiny",
        model: || {
            ModelSpec::Llama(Llama {
                context: 32,
                dim: 32,
                heads: 2,
                ffn_hidden: 88,
                ..Llama::default()
            })
        },
        batch_size: 16,
        eval_batch_size: 64,
        eval_windows: Some(64),
        browser: true,
        ..LLAMA
    },
    MAE,
];

/// The `mae` preset: MAE pretraining (He et al.'s recipe: AdamW betas (0.9, 0.95),
/// weight decay 0.05 except biases and norms, warm-up then cosine to 0, no clipping)
/// on the bundled digits, reconstructing 75% of the patches, in plain pixels (the
/// seed normalizes each target patch, which needs about twice the training to reach
/// 0.6 of the mean-patch baseline: see `scripts/mae_torch.py --fit`), with a
/// 2-block encoder and MLP ratio 2 (less than half the default model's work per
/// image); evaluated 10 times on the test digits with fixed masks.
const MAE: ModelPreset = ModelPreset {
    name: "mae",
    model: || {
        let mae = Mae::default();
        ModelSpec::Mae(Mae {
            encoder: VitEncoder {
                depth: 2,
                mlp_ratio: 2.0,
                ..mae.encoder
            },
            norm_pix_loss: false,
            ..mae
        })
    },
    steps: 1500,
    batch_size: 64,
    warmup_steps: 75,
    augment_shift: 0,
    adam_betas: Some([0.9, 0.95]),
    eval_every: 150,
    adamw: hyper(3e-3, 0.05),
    lion: hyper(3e-4, 0.5),
    browser: true,
    ..MLP
};

/// The `llama` preset, on the bundled Shakespeare.
const LLAMA: ModelPreset = ModelPreset {
    name: "llama",
    model: || {
        ModelSpec::Llama(Llama {
            context: 32,
            ..Llama::default()
        })
    },
    steps: 400,
    batch_size: 32,
    warmup_steps: 20,
    lr_floor: 0.1,
    augment_shift: 0,
    clip_grad_norm: Some(1.0),
    adam_betas: None,
    eval_every: 40,
    eval_batch_size: 128,
    eval_windows: Some(128),
    adamw: hyper(3e-3, 0.0),
    lion: hyper(3e-4, 0.0),
    sgd: hyper(5e-2, 0.0),
    browser: false,
};

/// The `mlp` preset, whose schedule and evaluation the other image presets share.
const MLP: ModelPreset = ModelPreset {
    name: "mlp",
    model: || mlp(256),
    steps: 500,
    batch_size: 128,
    warmup_steps: 25,
    lr_floor: 0.0,
    augment_shift: 2,
    clip_grad_norm: None,
    adam_betas: None,
    eval_every: 0,
    eval_batch_size: 500,
    eval_windows: None,
    adamw: hyper(3e-3, 0.01),
    lion: hyper(3e-4, 0.1),
    sgd: hyper(6e-2, 0.0),
    browser: false,
};

/// The `vit` preset: `mlp`'s schedule and evaluation, longer and without shifts.
const VIT: ModelPreset = ModelPreset {
    name: "vit",
    model: || vit(14, 64, 4),
    steps: 600,
    warmup_steps: 30,
    augment_shift: 0,
    adamw: hyper(3e-3, 0.05),
    lion: hyper(3e-4, 0.5),
    ..MLP
};

/// `full`'s training for a narrower model on the browser page: batches of 64, and
/// lower AdamW and SGD rates (`full`'s weight decays and Lion row).
const fn browser_sized(full: ModelPreset) -> ModelPreset {
    ModelPreset {
        batch_size: 64,
        adamw: hyper(1e-3, full.adamw.weight_decay),
        sgd: hyper(5e-2, full.sgd.weight_decay),
        browser: true,
        ..full
    }
}

/// A [`Hyper`] row: peak learning rate `lr`, decoupled weight decay `weight_decay`.
const fn hyper(lr: f64, weight_decay: f64) -> Hyper {
    Hyper { lr, weight_decay }
}

/// A 784-`hidden`-10 MLP with ReLU.
fn mlp(hidden: usize) -> ModelSpec {
    ModelSpec::Mlp(Mlp {
        hidden: vec![hidden],
        activation: Activation::Relu,
        ..Mlp::default()
    })
}

/// A ViT of 2 pre-norm blocks, MLP ratio 2, with a class token.
fn vit(patch: usize, dim: usize, heads: usize) -> ModelSpec {
    ModelSpec::Vit(Vit {
        encoder: VitEncoder {
            grid: PatchGrid {
                patch,
                ..PatchGrid::DIGITS
            },
            dim,
            depth: 2,
            heads,
            mlp_ratio: 2.0,
        },
        ..Vit::default()
    })
}

impl ModelPreset {
    /// The preset called `name`.
    pub fn named(name: &str) -> Result<&'static ModelPreset> {
        MODEL_PRESETS
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = MODEL_PRESETS.iter().map(|p| p.name).collect();
                Error::InvalidConfig(format!(
                    "unknown model `{name}` (expected one of {})",
                    names.join(", ")
                ))
            })
    }

    /// The training defaults of the architecture `model` belongs to: the first preset
    /// of the same kind (`mlp` or `vit`).
    pub fn for_kind(model: &ModelSpec) -> &'static ModelPreset {
        MODEL_PRESETS
            .iter()
            .find(|p| (p.model)().name() == model.name())
            .unwrap_or(&MODEL_PRESETS[0])
    }

    /// Learning rate and weight decay of `optimizer` on this model: the table's row of
    /// its algorithm's learning-rate family, which the algorithm's file names
    /// ([`Algorithm::lr_family`](crate::optim::Algorithm::lr_family); a new member needs nothing here): `adamw` for
    /// adam-like members (the default), `lion` for sign-based ones, `sgd` for
    /// momentum SGD, and for trust-ratio members (LAMB) the `adamw` row with
    /// [`TRUST_RATIO_LR_SCALE`] times its rate. Plain and cautious twins share a row.
    pub fn hyper(&self, optimizer: OptimizerKind) -> Hyper {
        match optimizer.lr_family() {
            LrFamily::AdamLike => self.adamw,
            LrFamily::SignBased => self.lion,
            LrFamily::SgdLike => self.sgd,
            LrFamily::TrustRatio => Hyper {
                lr: self.adamw.lr * TRUST_RATIO_LR_SCALE,
                ..self.adamw
            },
        }
    }

    /// The model in words, e.g. `MLP 784-256-10 (ReLU)`.
    pub fn describe(&self) -> String {
        match (self.model)() {
            ModelSpec::Mlp(m) => {
                let widths: Vec<String> = std::iter::once(m.input)
                    .chain(m.hidden.iter().copied())
                    .chain([m.classes])
                    .map(|w| w.to_string())
                    .collect();
                format!("MLP {} ({:?})", widths.join("-"), m.activation)
            }
            ModelSpec::Vit(v) => {
                let e = &v.encoder;
                format!(
                    "ViT: patch {}, width {}, {} blocks of {} heads, MLP ratio {}",
                    e.grid.patch, e.dim, e.depth, e.heads, e.mlp_ratio
                )
            }
            ModelSpec::Mae(m) => format!(
                "MAE: patch {}, mask {}%, encoder {}x{} ({} heads), decoder {}x{} ({} heads), \
                 MLP ratio {}{}",
                m.encoder.grid.patch,
                m.mask_ratio * 100.0,
                m.encoder.dim,
                m.encoder.depth,
                m.encoder.heads,
                m.decoder_dim,
                m.decoder_depth,
                m.decoder_heads,
                m.encoder.mlp_ratio,
                if m.norm_pix_loss {
                    ", normalized targets"
                } else {
                    ""
                }
            ),
            ModelSpec::Llama(l) => format!(
                "LLaMA: context {}, width {}, {} blocks of {} heads, SwiGLU {}{}",
                l.context,
                l.dim,
                l.depth,
                l.heads,
                l.ffn_hidden,
                if l.tied { ", tied head" } else { "" }
            ),
        }
    }

    /// The preset as the page reads it (JSON through the wasm bindings).
    pub fn view(&self) -> PresetView {
        PresetView {
            name: self.name,
            description: self.describe(),
            model: (self.model)(),
            steps: self.steps,
            batch_size: self.batch_size,
            warmup_steps: self.warmup_steps,
            lr_floor: self.lr_floor,
            augment_shift: self.augment_shift,
            optimizers: OptimizerKind::all()
                .into_iter()
                .map(|o| (o.name(), self.hyper(o)))
                .collect(),
            browser: self.browser,
        }
    }
}

/// A serializable copy of a [`ModelPreset`], with every optimizer's defaults.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresetView {
    /// The preset's name.
    pub name: &'static str,
    /// The model in words.
    pub description: String,
    /// The model's configuration.
    pub model: ModelSpec,
    /// Training steps.
    pub steps: u64,
    /// Samples per step.
    pub batch_size: usize,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// Final learning-rate multiplier.
    pub lr_floor: f64,
    /// Random shifts in pixels.
    pub augment_shift: usize,
    /// Learning rate and weight decay per optimizer name (`adamw`, `c-adamw`, ...).
    pub optimizers: std::collections::BTreeMap<&'static str, Hyper>,
    /// Offered on the browser page.
    pub browser: bool,
}

/// Every preset, serializable (what the page and `coptim presets --json` get).
pub fn views() -> Vec<PresetView> {
    MODEL_PRESETS.iter().map(ModelPreset::view).collect()
}

/// A plain optimizer with a cautious twin, as the page's pair selector offers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairView {
    /// The plain optimizer's name (`adamw`, `nadamw`, ...): the value the page sends.
    pub pair: &'static str,
    /// The pair in words, e.g. `AdamW vs C-AdamW`.
    pub label: String,
}

/// Every plain registered optimizer that has a cautious twin, in registry order: the
/// page's pair selector. A label that two pairs would share (`lamb` and `lambw` are
/// both LAMB) ends with the plain member's name.
pub fn pairs() -> Vec<PairView> {
    let mut pairs: Vec<PairView> = OptimizerKind::all()
        .into_iter()
        .filter(|o| !o.is_cautious())
        .filter_map(|plain| {
            let cautious = plain.with_caution(true)?;
            Some(PairView {
                pair: plain.name(),
                label: format!("{} vs {}", plain.label(), cautious.label()),
            })
        })
        .collect();
    let labels: Vec<String> = pairs.iter().map(|p| p.label.clone()).collect();
    for pair in &mut pairs {
        if labels.iter().filter(|l| **l == pair.label).count() > 1 {
            pair.label = format!("{} ({})", pair.label, pair.pair);
        }
    }
    pairs
}

/// The README's preset table, in Markdown (`coptim presets --markdown`).
pub fn markdown() -> String {
    let mut out = String::from(
        "| preset | model | steps | batch | schedule | shifts | AdamW lr, wd | Lion lr, wd | SGD lr, wd | page |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for p in &MODEL_PRESETS {
        let hyper = |h: Hyper| format!("{:e}, {}", h.lr, h.weight_decay);
        let schedule = format!("{} warm-up, cosine to {}", p.warmup_steps, p.lr_floor);
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {schedule} | {} | {} | {} | {} | {} |\n",
            p.name,
            p.describe(),
            p.steps,
            p.batch_size,
            p.augment_shift,
            hyper(p.adamw),
            hyper(p.lion),
            hyper(p.sgd),
            if p.browser { "yes" } else { "" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registered optimizer gets the row of the family its algorithm file
    /// names, with nothing per member here: LAMB's rate is AdamW's times
    /// [`TRUST_RATIO_LR_SCALE`], with AdamW's weight decay.
    #[test]
    fn every_member_takes_its_familys_row() {
        let lamb = OptimizerKind::from_name("clamb").unwrap();
        assert_eq!(lamb.lr_family(), LrFamily::TrustRatio);
        for preset in &MODEL_PRESETS {
            for optimizer in OptimizerKind::all() {
                let want = match optimizer.lr_family() {
                    LrFamily::AdamLike => preset.adamw,
                    LrFamily::SignBased => preset.lion,
                    LrFamily::SgdLike => preset.sgd,
                    LrFamily::TrustRatio => Hyper {
                        lr: 10.0 * preset.adamw.lr,
                        weight_decay: preset.adamw.weight_decay,
                    },
                };
                assert_eq!(preset.hyper(optimizer), want, "{} {optimizer}", preset.name);
            }
        }
        let families: Vec<LrFamily> = ["adamw", "lion", "sgd", "nadamw", "laprop"]
            .map(|n| OptimizerKind::from_name(n).unwrap().lr_family())
            .to_vec();
        use LrFamily::*;
        assert_eq!(families, [AdamLike, SignBased, SgdLike, AdamLike, AdamLike]);
    }
}

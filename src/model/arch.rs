//! [`Architecture`]: what a model declares (its parameters with their initializers,
//! its inputs and task ([`ModelIo`]), and how a batch of inputs becomes its
//! [`Output`]); the runtime in [`Model`](crate::model::Model) does the rest.

use std::fmt;

use crate::error::{Error, Result};
use crate::model::init::Init;
use crate::model::patch_grid::PatchGrid;
use crate::nn::{GraphBuilder, Var};

/// One parameter: its state-dict name, shape and initializer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// PyTorch state-dict key, e.g. `blocks.0.attn.qkv.weight`.
    pub name: String,
    /// Shape, as PyTorch has it.
    pub shape: Vec<usize>,
    /// How it is initialized.
    pub init: Init,
}

impl ParamSpec {
    /// A parameter.
    pub fn new(name: impl Into<String>, shape: &[usize], init: Init) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            init,
        }
    }
}

/// What a model reads: images with one label each, or token ids with one
/// next-token target each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// f32 images of [`ModelIo::sample_shape`], one class label per image.
    Images,
    /// u32 token ids, `sample_shape` = `[context]` per sample, one target (the next
    /// token, below [`ModelIo::classes`]) per id.
    Tokens,
}

/// What a model learns from its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Logits ([`Output::Logits`]) trained with softmax cross-entropy against the
    /// labels, scored by accuracy.
    Classify,
    /// The masked patches of its images ([`Output::Reconstruction`], a masked
    /// autoencoder), from per-sample masks of this shape; no labels.
    Reconstruct(Masking),
}

/// The patch grid of a reconstructing model and how many patches each mask keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masking {
    /// The images and their patches.
    pub grid: PatchGrid,
    /// Patches each mask keeps visible (`0 < kept < patches`).
    pub kept: usize,
}

impl Masking {
    /// Patches per image.
    pub fn patches(&self) -> usize {
        self.grid.num_patches()
    }
}

/// The graph inputs of a batch's masks (declared by the model, written by the runtime
/// each batch from [`PatchMasks`](crate::model::PatchMasks)); the decoder's sequence
/// has the class token first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskVars {
    /// u32 `[batch, kept]`: the visible patches, in patch order (for
    /// [`GraphBuilder::gather_tokens`]).
    pub keep: Var,
    /// u32 `[batch, patches + 1]`: the decoder sequence from the encoder's `[class,
    /// kept...]` output (for [`GraphBuilder::unshuffle_tokens`]): 0 for the class token,
    /// `1 + j` for the `j`-th kept patch, at least `kept + 1` (the mask token) for a
    /// removed one.
    pub restore: Var,
    /// f32 `[batch, patches + 1]`: 1 where a patch was removed (the loss is taken
    /// there), 0 for kept patches and the class token.
    pub mask: Var,
}

impl MaskVars {
    /// Declares the mask inputs of `batch` images masked as `masking` says.
    pub fn declare(g: &mut GraphBuilder, batch: usize, masking: Masking) -> Self {
        Self {
            keep: g.ids(&[batch, masking.kept]),
            restore: g.ids(&[batch, masking.patches() + 1]),
            mask: g.input(&[batch, masking.patches() + 1]),
        }
    }
}

/// What a reconstructing model's graph gives the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconstruction {
    /// The batch's mask inputs.
    pub masks: MaskVars,
    /// The `[1]` loss: mean over the removed patches.
    pub loss: Var,
    /// The predicted patches `[batch, patches + 1, values per patch]`, class token
    /// row first (what [`Model::reconstruct`](crate::model::Model::reconstruct) reads).
    pub prediction: Var,
}

/// What a model is to the runtime and its callers: its name, what it reads, and what
/// it learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelIo {
    /// A short name for reports, e.g. `mlp` or `vit`.
    pub name: &'static str,
    /// Shape of one input sample (without the batch dimension), e.g. `[784]` for an
    /// MLP, `[1, 28, 28]` for a ViT or `[context]` for a language model. Inputs are
    /// passed flat, row-major.
    pub sample_shape: Vec<usize>,
    /// Number of classes (the width of the logits; the vocabulary of a language
    /// model; 0 for a model that does not classify).
    pub classes: usize,
    /// What the model reads.
    pub input: InputKind,
    /// What the model learns.
    pub task: Task,
}

impl ModelIo {
    /// An image classifier called `name`: images of `sample_shape`, one label each
    /// below `classes`.
    pub fn image_classifier(name: &'static str, sample_shape: Vec<usize>, classes: usize) -> Self {
        Self {
            name,
            sample_shape,
            classes,
            input: InputKind::Images,
            task: Task::Classify,
        }
    }

    /// Values per input sample (the product of `sample_shape`).
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// Labels per sample: 1 for images, one per token (`context`) for tokens.
    pub fn labels_per_sample(&self) -> usize {
        match self.input {
            InputKind::Images => 1,
            InputKind::Tokens => self.sample_len(),
        }
    }
}

/// What a model's graph computes from a batch's inputs, as its [`Task`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A classifier's logits: `[batch, classes]` for images, `[batch, context,
    /// classes]` for tokens (`batch * labels_per_sample` rows of logits).
    Logits(Var),
    /// A masked autoencoder's loss and prediction, with the mask inputs it declared.
    Reconstruction(Reconstruction),
}

/// A model's structure: an image classifier, a language model or a masked
/// autoencoder.
pub trait Architecture: fmt::Debug + Send + Sync {
    /// Its name, inputs and task.
    fn io(&self) -> ModelIo;

    /// Names of the parameters trained without weight decay (none unless the model
    /// says otherwise).
    fn no_weight_decay(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Every parameter in state-dict order, which is also the initialization order.
    /// Fails with [`Error::InvalidConfig`](crate::Error::InvalidConfig) for an
    /// inconsistent configuration.
    fn parameters(&self) -> Result<Vec<ParamSpec>>;

    /// Declares the graph of `inputs` (`[batch, sample_shape..]`, f32 images or u32
    /// token ids as [`ModelIo::input`] says) using the parameters of
    /// [`Architecture::parameters`]: the logits of a [`Task::Classify`] model, the
    /// reconstruction of a [`Task::Reconstruct`] one.
    fn output(&self, g: &mut GraphBuilder, inputs: Var) -> Result<Output>;
}

/// The typed error of an inconsistent model configuration: `model` as the docs name
/// it, the whole configuration, and `why` it is refused.
pub(crate) fn config_error(model: &str, config: &impl fmt::Debug, why: impl fmt::Display) -> Error {
    Error::InvalidConfig(format!("{model} configuration {config:?}: {why}"))
}

/// `weight` and `bias` of a `torch.nn.Linear(fan_in, out)` with PyTorch's default
/// initialization.
pub(crate) fn torch_linear(prefix: &str, fan_in: usize, out: usize) -> [ParamSpec; 2] {
    [
        ParamSpec::new(
            format!("{prefix}.weight"),
            &[out, fan_in],
            Init::torch_default(fan_in),
        ),
        ParamSpec::new(
            format!("{prefix}.bias"),
            &[out],
            Init::torch_default(fan_in),
        ),
    ]
}

/// `x @ {prefix}.weight^T + {prefix}.bias`.
pub(crate) fn linear(g: &mut GraphBuilder, x: Var, prefix: &str) -> Result<Var> {
    let w = g.param(&format!("{prefix}.weight"))?;
    let b = g.param(&format!("{prefix}.bias"))?;
    g.linear(x, w, Some(b))
}

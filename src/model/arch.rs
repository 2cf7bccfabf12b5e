//! [`Architecture`]: what a model declares (its parameters with their initializers,
//! its kind of input, and how a batch of inputs becomes logits); the runtime in
//! [`Model`](crate::model::Model) does the rest.

use std::fmt;

use crate::error::Result;
use crate::model::init::Init;
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
    /// f32 images of [`Architecture::sample_shape`], one class label per image.
    Images,
    /// u32 token ids, `sample_shape` = `[context]` per sample, one target (the next
    /// token, below [`Architecture::num_classes`]) per id.
    Tokens,
}

/// A model's structure: an image classifier or a language model.
pub trait Architecture: fmt::Debug + Send + Sync {
    /// A short name for reports, e.g. `mlp` or `vit`.
    fn name(&self) -> &'static str;

    /// Shape of one input sample (without the batch dimension), e.g. `[784]` for an
    /// MLP, `[1, 28, 28]` for a ViT or `[context]` for a language model. Inputs are
    /// passed flat, row-major.
    fn sample_shape(&self) -> Vec<usize>;

    /// Number of classes (the width of the logits; the vocabulary of a language
    /// model).
    fn num_classes(&self) -> usize;

    /// What the model reads (images unless it says otherwise).
    fn input_kind(&self) -> InputKind {
        InputKind::Images
    }

    /// Labels per sample: 1 for images, one per token (`context`) for tokens.
    fn labels_per_sample(&self) -> usize {
        match self.input_kind() {
            InputKind::Images => 1,
            InputKind::Tokens => self.sample_shape().iter().product(),
        }
    }

    /// Every parameter in state-dict order, which is also the initialization order.
    /// Fails with [`Error::InvalidConfig`](crate::Error::InvalidConfig) for an
    /// inconsistent configuration.
    fn parameters(&self) -> Result<Vec<ParamSpec>>;

    /// Declares the logits of `inputs` (`[batch, sample_shape..]`, f32 images or u32
    /// token ids as [`Architecture::input_kind`] says) using the parameters of
    /// [`Architecture::parameters`]: `[batch, classes]` for images, `[batch, context,
    /// classes]` for tokens (`batch * labels_per_sample` rows of logits).
    fn logits(&self, g: &mut GraphBuilder, inputs: Var) -> Result<Var>;
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

//! [`Architecture`]: what a model declares (its parameters with their initializers,
//! and how images become logits); the runtime in [`Model`](crate::model::Model) does
//! the rest.

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

/// An image classifier's structure.
pub trait Architecture: fmt::Debug + Send + Sync {
    /// A short name for reports, e.g. `mlp` or `vit`.
    fn name(&self) -> &'static str;

    /// Shape of one input sample (without the batch dimension), e.g. `[784]` for an
    /// MLP or `[1, 28, 28]` for a ViT. Images are passed flat, row-major.
    fn sample_shape(&self) -> Vec<usize>;

    /// Number of classes (the width of the logits).
    fn num_classes(&self) -> usize;

    /// Every parameter in state-dict order, which is also the initialization order.
    /// Fails with [`Error::InvalidConfig`](crate::Error::InvalidConfig) for an
    /// inconsistent configuration.
    fn parameters(&self) -> Result<Vec<ParamSpec>>;

    /// Declares the logits `[batch, classes]` of `images` (`[batch, sample_shape..]`)
    /// using the parameters of [`Architecture::parameters`].
    fn logits(&self, g: &mut GraphBuilder, images: Var) -> Result<Var>;
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

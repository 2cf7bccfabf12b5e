//! [`Mlp`]: a multi-layer perceptron on flattened images.

use crate::error::{Error, Result};
use crate::model::arch::{Architecture, ModelIo, Output, ParamSpec, linear, torch_linear};
use crate::nn::{Activation, GraphBuilder, Var};

/// A multi-layer perceptron: `input -> hidden[0] -> ... -> classes`, with an
/// activation after every hidden layer. Parameters are `fc1.weight`, `fc1.bias`,
/// `fc2.weight`, ... (a PyTorch module with attributes `fc1`, `fc2`, ...), initialized
/// like `torch.nn.Linear`: weights and biases uniform in `±1/sqrt(fan_in)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mlp {
    /// Features per sample (784 for 28x28 images).
    pub input: usize,
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
    /// Activation after each hidden layer.
    pub activation: Activation,
}

impl Default for Mlp {
    /// 784-256-256-10 with ReLU, for 28x28 digits.
    fn default() -> Self {
        Self {
            input: 784,
            hidden: vec![256, 256],
            classes: 10,
            activation: Activation::Relu,
        }
    }
}

impl Mlp {
    fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.input];
        w.extend(&self.hidden);
        w.push(self.classes);
        w
    }
}

impl Architecture for Mlp {
    fn io(&self) -> ModelIo {
        ModelIo::image_classifier("mlp", vec![self.input], self.classes)
    }

    fn parameters(&self) -> Result<Vec<ParamSpec>> {
        let widths = self.widths();
        if widths.contains(&0) {
            return Err(Error::InvalidConfig(format!(
                "MLP widths {widths:?} must be positive"
            )));
        }
        Ok(widths
            .windows(2)
            .enumerate()
            .flat_map(|(i, w)| torch_linear(&format!("fc{}", i + 1), w[0], w[1]))
            .collect())
    }

    fn output(&self, g: &mut GraphBuilder, images: Var) -> Result<Output> {
        let layers = self.hidden.len() + 1;
        let mut x = images;
        for i in 1..=layers {
            x = linear(g, x, &format!("fc{i}"))?;
            if i < layers {
                x = g.activation(x, self.activation)?;
            }
        }
        Ok(Output::Logits(x))
    }
}

//! Image classifiers trained on the GPU: [`Mlp`] and [`Vit`] architectures and the
//! [`Model`] runtime that the training loop, the CLI and the browser demo build on.
//!
//! - An [`Architecture`] declares its parameters (PyTorch state-dict names, shapes and
//!   seeded initializers) and how a batch of images becomes logits, with the ops of
//!   [`crate::nn`].
//! - [`Model::new`] allocates the parameters in a [`ParamStore`](crate::ParamStore)
//!   and initializes them from a seed; an [`Optimizer`](crate::Optimizer) created on
//!   [`Model::store`] steps them in place.
//! - [`Model::record_forward_backward`] records a training step's passes (mean softmax
//!   cross-entropy, gradients into `store().grads`, overwritten) into the caller's
//!   encoder and returns where the batch's loss and correct count will be
//!   ([`BatchOutputs`]), for the optimizer's one record of the step.
//! - [`Model::evaluate`] and [`Model::predict_probabilities`] run inference over a
//!   data set (async, with blocking forms natively).

mod arch;
mod init;
mod metrics;
mod mlp;
mod runtime;
mod vit;

pub use arch::{Architecture, ParamSpec};
pub use init::{Init, rng_for_seed};
pub use metrics::{BatchMetrics, BatchOutputs};
pub use mlp::Mlp;
pub use runtime::{Batch, Evaluation, Model, NamedTensor};
pub use vit::Vit;

//! Models trained on the GPU: the image classifiers [`Mlp`] and [`Vit`], the
//! language model [`Llama`], the masked autoencoder [`Mae`] (its encoder a
//! [`VitEncoder`], as the ViT's is), and the [`Model`] runtime that the training loop, the
//! CLI and the browser demo build on.
//!
//! - An [`Architecture`] declares its parameters (PyTorch state-dict names, shapes and
//!   seeded initializers), its inputs and task ([`ModelIo`]) and how a batch of inputs
//!   (images or token ids) becomes its [`Output`] (logits, or a masked autoencoder's
//!   reconstruction), with the ops of [`crate::nn`].
//! - [`Model::new`] allocates the parameters in a [`ParamStore`](crate::ParamStore)
//!   and initializes them from a seed; an [`Optimizer`](crate::Optimizer) created on
//!   [`Model::store`] steps them in place.
//! - [`Model::record_forward_backward`] records a training step's passes (mean softmax
//!   cross-entropy, gradients into `store().grads`, overwritten) into the caller's
//!   encoder and returns where the batch's loss and correct count will be
//!   ([`BatchOutputs`]), for the optimizer's one record of the step.
//! - [`Model::evaluate`] / [`Model::evaluate_batches`] and [`Model::predict`] run
//!   inference over a data set (async, with blocking forms natively).

mod arch;
mod generate;
mod init;
mod llama;
mod mae;
mod mae_encoder;
mod masking;
mod metrics;
mod mlp;
mod patch_grid;
mod runtime;
mod vit;
mod vit_encoder;

pub use arch::{
    Architecture, InputKind, MaskVars, Masking, ModelIo, Output, ParamSpec, Reconstruction, Task,
};
#[cfg(not(target_arch = "wasm32"))]
pub use generate::generate_blocking;
pub use generate::{Sampling, generate};
pub use init::{Init, rng_for_seed};
pub use llama::Llama;
pub use mae::Mae;
pub use masking::{MaskRows, PatchMasks};
pub use metrics::{BatchMetrics, BatchOutputs};
pub use mlp::Mlp;
pub use patch_grid::PatchGrid;
pub use runtime::{Batch, Evaluation, Inputs, Model, NamedTensor};
pub use vit::Vit;
pub use vit_encoder::VitEncoder;

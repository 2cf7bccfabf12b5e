//! Tensors and reverse-mode automatic differentiation on the GPU.
//!
//! A [`Tensor`] is a shaped view of a GPU buffer. A [`GraphBuilder`] declares a
//! computation over inputs and the parameters of a [`ParamStore`](crate::ParamStore)
//! (matmul, linear, adds, activations, LayerNorm, RMSNorm, rotary position embedding,
//! SwiGLU's SiLU gate, softmax, multi-head attention on packed qkv or causal on
//! separate q/k/v, token embedding, patchify, class token, pooling, a masked
//! autoencoder's token gather and unshuffle with its mask token, softmax
//! cross-entropy over any number of rows, masked MSE); [`GraphBuilder::build`]
//! compiles it into a [`Graph`] that owns every activation and gradient buffer for
//! those shapes and records, per op, a forward WGSL kernel and the backward kernels.
//! Parameters are views into the store's `params` arena and their gradients are
//! written into `store.grads` at the same places, so an
//! [`Optimizer`](crate::Optimizer) steps them in place with no copy.
//!
//! Nothing is submitted or read back by the graph: the caller records
//! [`Graph::record_forward`] and [`Graph::record_backward`] into its own command
//! encoder. [`reference`](mod@reference) has f64 CPU implementations of every op and its gradient.

mod bindings;
mod dispatch;
mod graph;
mod kernels;
mod matmul_blocks;
mod matmul_variant;
mod modules;
mod ops;
pub mod reference;
mod tensor;

pub(crate) use dispatch::Dispatch;
pub use graph::{Activation, Graph, GraphBuilder, Var};
pub use kernels::{Kernels, ROW_WG_SIZE, RowLayout, WG_SIZE};
pub use matmul_variant::MatmulVariant;
pub use modules::shader_modules;
pub(crate) use ops::{Dims, GradMode, Product, View};
pub use tensor::{DType, Element, Tensor};

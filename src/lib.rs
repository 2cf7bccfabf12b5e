//! # coptim: cautious optimizers on WebGPU
//!
//! Exact, fused WGSL kernels for AdamW, Lion and SGD with momentum, each with the
//! "cautious" sign-agreement mask of Liang et al. (arXiv 2411.16085), and a Rust
//! runtime that owns (or borrows) GPU buffers for parameters, gradients and state.
//!
//! The modules, from the bottom up:
//! - [`stream`]: the shape of streaming kernels on CPU adapters and on GPUs;
//! - [`context`]: adapter, device, limits and optional features;
//! - [`wgsl`]: the one way every WGSL module is assembled;
//! - [`arena`]: flat, aligned GPU storage for named tensors;
//! - [`optim`]: optimizer configuration, schedules, the CPU reference, the GPU runtime
//!   and state files;
//! - [`data`]: datasets (bundled MNIST, IDX, CIFAR-10) and deterministic batching;
//! - [`nn`]: GPU tensors and reverse-mode autograd with WGSL kernels;
//! - [`model`]: the MLP and ViT classifiers, their initialization and runtime;
//! - [`train`]: training runs, checkpoints and the optimizer comparison;
//! - `bench` (native only): step timing against a copy kernel, behind `coptim bench`.

#![warn(missing_docs)]

pub mod arena;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod context;
pub mod data;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod file_io;
pub mod model;
pub mod nn;
pub mod optim;
pub mod stream;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
pub mod wgsl;

pub use arena::{Arena, ElementType, Layout, ParamStore, TensorId};
pub use context::{ContextOptions, GpuContext};
pub use error::{Error, Result};
pub use optim::{Caution, Optimizer, OptimizerConfig};

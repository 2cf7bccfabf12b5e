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
//!
//! Those are the engine, all that `default-features = false` builds. The
//! higher layers sit behind cargo features:
//! - `data` (feature `data`): datasets (bundled MNIST, IDX, CIFAR-10) and
//!   deterministic batching;
//! - `nn` (feature `nn`): GPU tensors and reverse-mode autograd with WGSL kernels;
//! - `model` (feature `nn`): the MLP and ViT classifiers, their initialization and runtime;
//! - `train` (feature `train` = `data` + `nn`): training runs, checkpoints and the
//!   optimizer comparison;
//! - `bench` (feature `bench`, native only): step timing against a copy kernel,
//!   behind `coptim bench`;
//! - `wasm` (feature `web`, wasm32 only): the browser bindings;
//! - the `coptim` binary (feature `cli`, on by default).

#![warn(missing_docs)]

pub mod arena;
#[cfg(all(feature = "bench", not(target_arch = "wasm32")))]
pub mod bench;
pub mod context;
#[cfg(feature = "data")]
pub mod data;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod file_io;
#[cfg(feature = "nn")]
pub mod model;
#[cfg(feature = "nn")]
pub mod nn;
pub mod optim;
mod setters;
pub mod stream;
#[cfg(feature = "train")]
pub mod train;
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod wasm;
pub mod wgsl;

pub use arena::{Arena, ElementType, Layout, ParamStore, TensorId};
pub use context::{ContextOptions, GpuContext};
pub use error::{Error, Result};
pub use optim::{Caution, Optimizer, OptimizerConfig};

//! Training on the GPU: runs, their metrics and checkpoints, and the comparison of a
//! plain optimizer with its cautious twin.
//!
//! - [`TrainConfig`]: everything that determines a run (model, optimizer,
//!   hyper-parameters, budget, seed, input pipeline), with tuned defaults.
//! - [`TrainData`]: what a run trains on, labelled images or a text corpus (for the
//!   language model, validated on its fixed windows).
//! - [`Session`]: one run, stepped by the caller and read without blocking; works in
//!   the browser. [`Session::checkpoint_bytes`] / [`Session::from_checkpoint_bytes`]
//!   save and resume it exactly.
//! - [`Runner`] (native): the loop with periodic evaluation and atomic checkpoints.
//! - [`compare`] (native): the multi-seed comparison of `coptim compare`, its summary
//!   and its reports.
//! - [`sweep`] (native): `coptim sweep`, both optimizers at their own best learning
//!   rates, with bootstrap intervals.
//! - [`reconstruction`]: two masked autoencoders' reconstructions of the same
//!   masked images, for the picture and the browser page.

#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod chart;
mod checkpoint;
mod clock;
#[cfg(not(target_arch = "wasm32"))]
pub mod compare;
mod config;
pub mod inputs;
mod lockstep;
#[cfg(not(target_arch = "wasm32"))]
mod measures;
mod metrics;
#[cfg(not(target_arch = "wasm32"))]
mod pair_setup;
pub mod presets;
#[cfg(not(target_arch = "wasm32"))]
pub mod probe;
pub mod reconstruction;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod reconstruction_chart;
#[cfg(not(target_arch = "wasm32"))]
pub mod report;
#[cfg(not(target_arch = "wasm32"))]
mod runner;
mod session;
mod source;
#[cfg(not(target_arch = "wasm32"))]
pub mod sweep;

pub use checkpoint::{CHECKPOINT_FORMAT, CheckpointFile};
pub use config::{ModelSpec, OptimizerKind, TrainConfig};
pub use lockstep::Lockstep;
#[cfg(not(target_arch = "wasm32"))]
pub use measures::RunMeasures;
pub use metrics::{EvalMetrics, History, StepMetrics, median};
#[cfg(not(target_arch = "wasm32"))]
pub use pair_setup::PairSetup;
#[cfg(not(target_arch = "wasm32"))]
pub use runner::{Event, Runner};
pub use session::Session;
pub use source::TrainData;

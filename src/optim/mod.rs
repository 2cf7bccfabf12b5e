//! Optimizers: configuration, learning-rate schedules, the f64 CPU reference, the
//! GPU runtime and its kernels, and state files.
//!
//! The names map to timm and C-Optim as follows: AdamW + [`Caution::hard`] is timm
//! `cadamw` / C-Optim `C-AdamW`; Lion + hard caution is timm `clion`; Lion with
//! [`Normalization::NumelOverCountPlusOne`] is C-Optim's C-Lion and pytorch_optimizer's
//! `Lion(cautious=True)`; SGD + caution is timm `csgdw`.

pub mod adafactor;
pub mod adafactor_reference;
mod algorithms;
pub mod axis_means;
mod bindings;
mod config;
#[cfg(feature = "nn")]
mod engine;
mod engine_config;
pub mod factored;
mod gpu_types;
mod grad_norm;
mod inputs;
pub mod kernels;
pub mod muon;
mod own_kernels;
pub mod plan;
pub mod reference;
mod runtime;
mod schedule;
mod state_io;
mod stats;
mod timm;

pub use algorithms::{
    AdamW, Adopt, Algorithm, EpsStyle, Lamb, Lion, LrFamily, Mars, MarsType, RmsPropTf, Sgd,
};
pub use config::{Caution, DecayMode, GroupConfig, NonFinite, Normalization, OptimizerConfig};
#[cfg(feature = "nn")]
pub use engine::TrainOptimizer;
pub use engine_config::{AdafactorConfig, EngineConfig, MuonConfig, matrix_names};
pub use inputs::StepInputs;
pub use reference::{ReferenceOptimizer, ReferenceStep};
pub use runtime::{Optimizer, OptimizerOptions};
pub use schedule::LrSchedule;
pub use state_io::STATE_FORMAT;
pub use stats::StepStats;
pub use timm::timm_names;

//! The Adafactor family on the GPU: timm's `Adafactor` (`adafactor`, `cadafactor`),
//! C-Optim's C-Adafactor (`TimmAdafactor::coptim()`) and big_vision's variant
//! (`adafactorbv`, `cadafactorbv`, momentum in bf16), as the f64 reference
//! [`crate::optim::adafactor_reference`] defines them.
//!
//! The engine's optimizers keep one state value per parameter; Adafactor keeps row and
//! column moments for factored tensors instead, so it is a module of its own
//! ([`AdafactorOptimizer`]): it binds the caller's parameters and gradients, owns its
//! state, and records each step into the caller's encoder (`shaders/axis_means.wgsl`,
//! then `shaders/adafactor.wgsl`).

pub(crate) mod gpu;
mod state_io;
pub(crate) mod words;

pub use gpu::AdafactorOptimizer;
pub use state_io::ADAFACTOR_STATE_FORMAT;

//! coptim

pub mod data;

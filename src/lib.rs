//! coptim

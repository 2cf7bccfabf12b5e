//! f64 CPU reference implementations of every nn op: forward and analytic backward.

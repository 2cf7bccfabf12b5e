//! Every WGSL module of the nn ops (every specialization of every matmul variant included) parses and
//! validates with naga.

mod common;

use common::validate_wgsl;

#[test]
fn nn_modules_validate() {
    for (name, source) in coptim::nn::shader_modules() {
        validate_wgsl(name, &source);
    }
}

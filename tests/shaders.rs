//! Every WGSL module the engine builds parses and validates with naga, in each
//! variant (subgroups on and off).

use coptim::ElementType;
use coptim::optim::{Algorithm, kernels};

fn validate(name: &str, source: &str) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
}

#[test]
fn optimizer_modules_validate() {
    for algorithm in [Algorithm::adamw(), Algorithm::lion(), Algorithm::sgd(true)] {
        for subgroups in [false, true] {
            let src = kernels::algorithm_source(&algorithm, subgroups, ElementType::F32);
            validate(&format!("{} subgroups={subgroups}", algorithm.name()), &src);
        }
    }
    validate("reduce", &kernels::reduce_source());
}

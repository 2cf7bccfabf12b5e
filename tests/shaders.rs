//! Every WGSL module the engine builds parses and validates with naga, in each
//! variant (subgroups on and off, every stream shape).

use coptim::ElementType;
use coptim::optim::{Algorithm, kernels};
use coptim::stream::StreamShape;

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
    for shape in StreamShape::ALL {
        for algorithm in [Algorithm::adamw(), Algorithm::lion(), Algorithm::sgd(true)] {
            for subgroups in [false, true] {
                let src = kernels::algorithm_source(&algorithm, subgroups, ElementType::F32, shape);
                let name = format!(
                    "{} subgroups={subgroups} {}",
                    algorithm.name(),
                    shape.name()
                );
                validate(&name, &src);
            }
        }
        validate(
            &format!("reduce {}", shape.name()),
            &kernels::reduce_source(shape),
        );
    }
}

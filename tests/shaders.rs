//! Every WGSL module the engine builds parses and validates with naga, in each
//! variant (subgroups on and off, vec4 and scalar parameter access).

use coptim::ElementType;
use coptim::arena::ParamAccess;
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
            for access in [ParamAccess::Vec4, ParamAccess::Scalar] {
                let src =
                    kernels::algorithm_source(&algorithm, subgroups, ElementType::F32, access);
                let name = format!("{} subgroups={subgroups} {access:?}", algorithm.name());
                validate(&name, &src);
            }
        }
    }
    for access in [ParamAccess::Vec4, ParamAccess::Scalar] {
        validate(
            &format!("reduce {access:?}"),
            &kernels::reduce_source(access),
        );
    }
}

//! Every WGSL module the engine builds parses and validates with naga, in each
//! variant (subgroups on and off, vec4 and scalar parameter access, every stream
//! shape).

mod common;

use coptim::ElementType;
use coptim::arena::ParamAccess;
use coptim::optim::{Algorithm, kernels};
use coptim::stream::StreamShape;

use common::validate_wgsl as validate;

#[test]
fn optimizer_modules_validate() {
    for shape in StreamShape::ALL {
        for algorithm in Algorithm::members() {
            for subgroups in [false, true] {
                for access in [ParamAccess::Vec4, ParamAccess::Scalar] {
                    let f32 = ElementType::F32;
                    let src = kernels::algorithm_source(&algorithm, subgroups, f32, access, shape);
                    let name = format!(
                        "{} subgroups={subgroups} {access:?} {}",
                        algorithm.name(),
                        shape.name()
                    );
                    validate(&name, &src);
                }
            }
        }
        for access in [ParamAccess::Vec4, ParamAccess::Scalar] {
            validate(
                &format!("reduce {access:?} {}", shape.name()),
                &kernels::reduce_source(access, shape),
            );
        }
    }
}

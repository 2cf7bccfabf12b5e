//! Building autograd graphs over a fresh parameter store in the nn tests.

use coptim::nn::{GraphBuilder, Var};
use coptim::{GpuContext, ParamStore};

/// A store of `tensors` (name, shape) and a graph builder over its layout, with
/// a parameter variable for each tensor, in order.
pub fn graph_over<const N: usize>(
    ctx: &GpuContext,
    tensors: [(&str, Vec<usize>); N],
) -> (ParamStore, GraphBuilder, [Var; N]) {
    let store = ParamStore::new(ctx, &tensors).unwrap();
    let mut g = GraphBuilder::new(store.layout().clone());
    let vars = tensors.map(|(name, _)| g.param(name).unwrap());
    (store, g, vars)
}

//! Softmax over the last dimension (attention probabilities, class probabilities).

use crate::error::Result;
use crate::nn::bindings::{DX, DY, Family, X, Y, uniform_block};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, GradMode, Plan, PlanOp, reject_shape};
use crate::nn::tensor::{DType, Tensor};

uniform_block! {
    /// The uniform block of `nn_softmax.wgsl`.
    struct SoftmaxParams {
        rows: u32,
        dim: u32,
        /// [`GradMode::flag`] of the input gradient.
        accumulate: u32,
        /// 1: rows are those of square `[dim, dim]` blocks and row `i` of a block is
        /// the softmax of its first `i + 1` entries, 0 after them (causal attention).
        causal: u32,
    }
}

/// The bindings of `nn_softmax.wgsl`.
pub(crate) const SOFTMAX: Family = Family::new::<SoftmaxParams>(&[X, Y, DY, DX]);

/// The uniform block for rows of `dim` in `t`, and the number of rows.
fn params(t: &Tensor, dim: usize, mode: GradMode, causal: bool) -> (SoftmaxParams, usize) {
    let rows = t.len() / dim;
    let p = SoftmaxParams {
        rows: rows as u32,
        dim: dim as u32,
        accumulate: mode.flag(),
        causal: causal as u32,
    };
    (p, rows)
}

/// `y = softmax(x)` over rows of `dim`; when `causal`, `x` is made of square
/// `[dim, dim]` blocks whose row `i` is the softmax of its first `i + 1` entries and
/// 0 after them.
pub(crate) fn softmax_forward(
    cx: &CompileCx<'_>,
    x: &Tensor,
    y: &Tensor,
    dim: usize,
    causal: bool,
) -> Dispatch {
    let (p, rows) = params(y, dim, GradMode::Overwrite, causal);
    cx.launch(Kernel::SoftmaxForward, &p, &[(X, x), (Y, y)], rows)
}

/// `dx (+)= y * (dy - sum(dy * y))` over rows of `dim` (0 wherever `y` is, so the
/// same for a causal softmax).
pub(crate) fn softmax_backward(
    cx: &CompileCx<'_>,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    dim: usize,
    mode: GradMode,
) -> Dispatch {
    let (p, rows) = params(y, dim, mode, false);
    cx.launch(
        Kernel::SoftmaxBackward,
        &p,
        &[(Y, y), (DY, dy), (DX, dx)],
        rows,
    )
}

/// Softmax over the last dimension.
pub(crate) fn softmax(g: &GraphBuilder, x: Var) -> Result<(PlanOp, Vec<usize>)> {
    reject_shape(
        g.dtype(x) != DType::F32,
        "softmax",
        || "input must be an f32 tensor",
    )?;
    let dim = *g.shape(x).last().unwrap_or(&0);
    let plan = Plan::new(Kernel::SoftmaxForward, &[Kernel::SoftmaxBackward]);
    let op = PlanOp::new(vec![x], plan, move |t: &Tensor, mode| {
        params(t, dim, mode, false)
    });
    Ok((op, g.shape(x).to_vec()))
}
